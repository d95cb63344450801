//! FUNCTION (LOAD, DELETE, LIST, STATS, KILL, FLUSH, DUMP, RESTORE, HELP) and the FCALL rows
//! (run by dispatch, `Run::Script`). Libraries are kept in the store, one record each under
//! the functions namespace (`keyspace::function_key`), so they survive a restart.

use bytes::Bytes;

use super::args::is;
use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult, help, subcommand_error};
use super::scripting::{busy_error, kill_reply};
use super::spec::flags::CONTAINER;
use super::spec::{ScriptCall, Spec, commands};
use crate::frame::Frame;
use crate::keyspace;
use crate::script::Library;

/// FUNCTION and FCALL.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "scripting";
    /// Invokes a function.
    "fcall", -3, 0, 0, 0, 0 => Run::Script(ScriptCall::Fcall { ro: false });
    /// Invokes a read-only function.
    "fcall_ro", -3, 0, 0, 0, 0 => Run::Script(ScriptCall::Fcall { ro: true });
    /// A container for function commands.
    // No transaction around it: KILL and STATS must answer while a script holds the writer
    // lock; the subcommands that change libraries write in a transaction of their own.
    "function", -2, CONTAINER, 0, 0, 0 => function;
};

fn function(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if let Some(e) = subcommand_error("function", args) {
        return Ok(e);
    }
    let sub = &args[1];
    let scripts = &ctx.shared.scripts;
    if is(sub, "load") {
        let mut replace = false;
        let mut i = 2;
        while i < args.len() - 1 {
            if is(&args[i], "replace") {
                replace = true;
            } else {
                return Ok(Frame::err(format!(
                    "Unknown option given: {}",
                    String::from_utf8_lossy(&args[i])
                )));
            }
            i += 1;
        }
        if i >= args.len() {
            return Ok(Frame::err("Function code is missing"));
        }
        return Ok(match scripts.load_library(&args[i], replace) {
            Ok(name) => {
                store(
                    ctx,
                    keyspace::function_key(name.as_bytes()),
                    Some(args[i].clone()),
                )?;
                Frame::bulk(name)
            }
            Err(e) => Frame::err(e),
        });
    }
    if is(sub, "delete") {
        let name = String::from_utf8_lossy(&args[2]).into_owned();
        if !scripts.delete_library(&name) {
            return Ok(Frame::err("Library not found"));
        }
        store(ctx, keyspace::function_key(name.as_bytes()), None)?;
        return Ok(Frame::OK);
    }
    if is(sub, "list") {
        return list(ctx, args);
    }
    if is(sub, "stats") {
        return Ok(stats(ctx));
    }
    if is(sub, "kill") {
        return Ok(kill_reply(scripts.kill(false), false));
    }
    if is(sub, "flush") {
        match args.get(2) {
            Some(m) if args.len() == 3 && (is(m, "sync") || is(m, "async")) => {}
            None => {}
            Some(_) if args.len() > 3 => return Err(subcommand_syntax(sub)),
            Some(_) => return Ok(Frame::err("FUNCTION FLUSH only supports SYNC|ASYNC option")),
        }
        scripts.flush_functions();
        persist_all(ctx, &[])?;
        return Ok(Frame::OK);
    }
    if is(sub, "dump") {
        let libs = scripts.libraries();
        return Ok(Frame::Bulk(Bytes::from(crate::rdb::dump_libraries(
            libs.iter().map(|l| &l.code[..]),
        ))));
    }
    if is(sub, "restore") {
        return restore(ctx, args);
    }
    if is(sub, "help") {
        return Ok(help(HELP));
    }
    Ok(Frame::err(format!(
        "unknown subcommand '{}'. Try FUNCTION HELP.",
        String::from_utf8_lossy(sub)
    )))
}

fn subcommand_syntax(sub: &[u8]) -> CmdError {
    super::reply::subcommand_syntax_error(sub, "function").into()
}

/// Runs `f` on the transaction the library changes go in: in a group, the command's own (what
/// the group replicates: every node reloads its libraries once it applies it); alone, one of
/// their own.
fn in_store(
    ctx: &mut Ctx<'_, '_>,
    f: impl FnOnce(&mut caskdb::Transaction<'_>) -> caskdb::Result<()>,
) -> Result<(), CmdError> {
    if ctx.shared.cluster.is_some() {
        ctx.conn.libraries_changed = true;
        f(ctx.tx()?)?;
    } else {
        ctx.shared.db.transaction(f)?;
    }
    Ok(())
}

/// Stores library record `key` (`None`: deletes it).
fn store(ctx: &mut Ctx<'_, '_>, key: Vec<u8>, code: Option<Bytes>) -> Result<(), CmdError> {
    in_store(ctx, |tx| match code {
        Some(code) => tx.put(key, code),
        None => tx.delete(key).map(|_| ()),
    })
}

/// Rewrites the functions namespace of the store to hold exactly `libs`, in one transaction.
fn persist_all(ctx: &mut Ctx<'_, '_>, libs: &[Library]) -> Result<(), CmdError> {
    let (start, end) = keyspace::functions_range();
    in_store(ctx, |tx| {
        let old: Vec<Bytes> = tx
            .range_keys(start.to_vec()..end.to_vec())
            .collect::<caskdb::Result<_>>()?;
        for k in old {
            tx.delete(&k)?;
        }
        for l in libs {
            tx.put(keyspace::function_key(l.name.as_bytes()), l.code.clone())?;
        }
        Ok(())
    })
}

/// FUNCTION RESTORE payload [FLUSH|APPEND|REPLACE]: all the payload's libraries or none.
fn restore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Err(subcommand_syntax(&args[1]));
    }
    #[derive(PartialEq)]
    enum Policy {
        Flush,
        Append,
        Replace,
    }
    let policy = match args.get(3) {
        None => Policy::Append,
        Some(p) if is(p, "append") => Policy::Append,
        Some(p) if is(p, "replace") => Policy::Replace,
        Some(p) if is(p, "flush") => Policy::Flush,
        Some(_) => {
            return Ok(Frame::err(
                "Wrong restore policy given, value should be either FLUSH, APPEND or REPLACE.",
            ));
        }
    };
    let codes = match crate::rdb::restore_libraries(&args[2]) {
        Ok(c) => c,
        Err(e) => return Ok(Frame::err(e)),
    };
    let scripts = &ctx.shared.scripts;
    let before = scripts.libraries();
    if policy == Policy::Append {
        for code in &codes {
            if let Ok((name, _)) = crate::script::library_name(code)
                && before.iter().any(|l| l.name == name)
            {
                return Ok(Frame::err(format!("Library {name} already exists")));
            }
        }
    }
    if policy == Policy::Flush {
        scripts.flush_functions();
    }
    for code in &codes {
        if let Err(e) = scripts.load_library(code, policy != Policy::Append) {
            // Back to the libraries there were.
            scripts.flush_functions();
            for l in &before {
                let _ = scripts.load_library(&l.code, true);
            }
            return Ok(Frame::err(e));
        }
    }
    let now = scripts.libraries();
    persist_all(ctx, &now)?;
    Ok(Frame::OK)
}

/// FUNCTION LIST [WITHCODE] [LIBRARYNAME pattern].
fn list(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let mut with_code = false;
    let mut pattern: Option<Vec<u8>> = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if !with_code && is(a, "withcode") {
            with_code = true;
        } else if pattern.is_none() && is(a, "libraryname") {
            let Some(p) = args.get(i + 1) else {
                return Ok(Frame::err("library name argument was not given"));
            };
            pattern = Some(p.to_ascii_lowercase());
            i += 1;
        } else {
            return Ok(Frame::err(format!(
                "Unknown argument {}",
                String::from_utf8_lossy(a)
            )));
        }
        i += 1;
    }
    let mut out = Vec::new();
    for lib in ctx.shared.scripts.libraries() {
        if let Some(p) = &pattern
            && !crate::glob::matches(p, lib.name.to_ascii_lowercase().as_bytes())
        {
            continue;
        }
        let functions = lib
            .functions
            .iter()
            .map(|f| {
                Frame::Map(vec![
                    (Frame::bulk("name"), Frame::bulk(&f.name)),
                    (
                        Frame::bulk("description"),
                        f.description.as_ref().map_or(Frame::Null, Frame::bulk),
                    ),
                    (
                        Frame::bulk("flags"),
                        Frame::Set(f.flags.names().into_iter().map(Frame::Simple).collect()),
                    ),
                ])
            })
            .collect();
        let mut fields = vec![
            (Frame::bulk("library_name"), Frame::bulk(&lib.name)),
            (Frame::bulk("engine"), Frame::bulk("LUA")),
            (Frame::bulk("functions"), Frame::Array(functions)),
        ];
        if with_code {
            fields.push((Frame::bulk("library_code"), Frame::Bulk(lib.code.clone())));
        }
        out.push(Frame::Map(fields));
    }
    Ok(Frame::Array(out))
}

/// FUNCTION STATS: the running function, and the engine's counts.
fn stats(ctx: &mut Ctx<'_, '_>) -> Frame {
    let scripts = &ctx.shared.scripts;
    let running = match scripts.running_info() {
        Some((_, _, _, true)) => return busy_error(true),
        Some((name, command, ms, false)) => Frame::Map(vec![
            (Frame::bulk("name"), Frame::bulk(name)),
            (
                Frame::bulk("command"),
                Frame::Array(command.into_iter().map(Frame::Bulk).collect()),
            ),
            (
                Frame::bulk("duration_ms"),
                Frame::Integer(i64::try_from(ms).unwrap_or(i64::MAX)),
            ),
        ]),
        None => Frame::Null,
    };
    let libs = scripts.libraries();
    let functions: usize = libs.iter().map(|l| l.functions.len()).sum();
    Frame::Map(vec![
        (Frame::bulk("running_script"), running),
        (
            Frame::bulk("engines"),
            Frame::Map(vec![(
                Frame::bulk("LUA"),
                Frame::Map(vec![
                    (
                        Frame::bulk("libraries_count"),
                        Frame::Integer(libs.len() as i64),
                    ),
                    (
                        Frame::bulk("functions_count"),
                        Frame::Integer(functions as i64),
                    ),
                ]),
            )]),
        ),
    ])
}

/// Redis 7.0's FUNCTION HELP text.
const HELP: &[&str] = &[
    "FUNCTION <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "LOAD [REPLACE] <FUNCTION CODE>",
    "    Create a new library with the given library name and code.",
    "DELETE <LIBRARY NAME>",
    "    Delete the given library.",
    "LIST [LIBRARYNAME PATTERN] [WITHCODE]",
    "    Return general information on all the libraries:",
    "    * Library name",
    "    * The engine used to run the Library",
    "    * Library description",
    "    * Functions list",
    "    * Library code (if WITHCODE is given)",
    "    It also possible to get only function that matches a pattern using LIBRARYNAME argument.",
    "STATS",
    "    Return information about the current function running:",
    "    * Function name",
    "    * Command used to run the function",
    "    * Duration in MS that the function is running",
    "    If no function is running, return nil",
    "    In addition, returns a list of available engines.",
    "KILL",
    "    Kill the current running function.",
    "FLUSH [ASYNC|SYNC]",
    "    Delete all the libraries.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the libraries.",
    "    * SYNC: Synchronously flush the libraries.",
    "DUMP",
    "    Return a serialized payload representing the current libraries, can be restored using FUNCTION RESTORE command",
    "RESTORE <PAYLOAD> [FLUSH|APPEND|REPLACE]",
    "    Restore the libraries represented by the given payload, it is possible to give a restore policy to",
    "    control how to handle existing libraries (default APPEND):",
    "    * FLUSH: delete all existing libraries.",
    "    * APPEND: appends the restored libraries to the existing libraries. On collision, abort.",
    "    * REPLACE: appends the restored libraries to the existing libraries, On collision, replace the old",
    "      libraries with the new libraries (notice that even on this option there is a chance of failure",
    "      in case of functions name collision with another library).",
    "HELP",
    "    Prints this help.",
];
