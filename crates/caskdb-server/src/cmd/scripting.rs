//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO (run by dispatch, `Run::Script`) and SCRIPT LOAD, EXISTS,
//! FLUSH, KILL, DEBUG, HELP; and what dispatch needs to start a script: its arguments read and
//! checked as Redis reads them.

use bytes::Bytes;

use super::args::is;
use super::ctx::Ctx;
use super::reply::{CmdResult, help, not_an_integer, subcommand_error};
use super::spec::flags::CONTAINER;
use super::spec::{ScriptCall, Spec, commands};
use crate::frame::Frame;
use crate::parse::parse_i64;
use crate::script::KillOutcome;
use crate::state::Shared;

/// The scripting commands.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "scripting";
    /// Executes a server-side Lua script.
    "eval", -3, 0, 0, 0, 0 => Run::Script(ScriptCall::Eval { ro: false });
    /// Executes a server-side Lua script by SHA1 digest.
    "evalsha", -3, 0, 0, 0, 0 => Run::Script(ScriptCall::EvalSha { ro: false });
    /// Executes a read-only server-side Lua script.
    "eval_ro", -3, 0, 0, 0, 0 => Run::Script(ScriptCall::Eval { ro: true });
    /// Executes a read-only server-side Lua script by SHA1 digest.
    "evalsha_ro", -3, 0, 0, 0, 0 => Run::Script(ScriptCall::EvalSha { ro: true });
    /// A container for Lua scripts management commands.
    "script", -2, CONTAINER, 0, 0, 0 => script;
};

/// What a prepared call runs.
pub(crate) enum Target {
    /// A cached script, by SHA1.
    Eval(String),
    /// A library's function, by name.
    Function(String),
}

/// A script call ready to run.
pub(crate) struct Prepared {
    pub target: Target,
    pub keys: Vec<Bytes>,
    pub args: Vec<Bytes>,
    /// Write commands are refused (`_RO`, or a `no-writes` script).
    pub read_only: bool,
    /// A script without a shebang started while memory was over `maxmemory`: its first
    /// command that may grow the data is refused, unless it wrote before (as Redis).
    pub oom_at_start: bool,
}

/// Reads `EVAL script numkeys key… arg…` (or EVALSHA's), compiling and caching the body;
/// Redis's errors, in Redis's order.
pub(crate) fn prepare(
    shared: &Shared,
    args: &[Bytes],
    call: ScriptCall,
) -> Result<Prepared, Frame> {
    if let ScriptCall::Fcall { ro } = call {
        return prepare_fcall(shared, args, ro);
    }
    let numkeys = parse_i64(&args[2]).ok_or_else(|| not_an_integer().into_frame())?;
    let given = args.len() as i64 - 3;
    if numkeys > given {
        return Err(Frame::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(Frame::err("Number of keys can't be negative"));
    }
    let (sha, flags, ro) = match call {
        ScriptCall::Eval { ro } => {
            let (sha, flags) = shared.scripts.load(&args[1]).map_err(Frame::err)?;
            (sha, flags, ro)
        }
        ScriptCall::EvalSha { ro } => {
            let sha = String::from_utf8_lossy(&args[1]).to_lowercase();
            let flags = shared.scripts.flags(&sha).filter(|_| args[1].len() == 40);
            let Some(flags) = flags else {
                return Err(noscript());
            };
            (sha, flags, ro)
        }
        ScriptCall::Fcall { .. } => return Err(Frame::err("Function not found")),
    };
    refuse_if_oom(shared, flags)?;
    if !flags.compat && !flags.no_writes && ro {
        return Err(Frame::err(
            "Can not execute a script with write flag using *_ro command.",
        ));
    }
    let n = numkeys as usize;
    Ok(Prepared {
        target: Target::Eval(sha),
        keys: args[3..3 + n].to_vec(),
        args: args[3 + n..].to_vec(),
        read_only: ro || (!flags.compat && flags.no_writes),
        oom_at_start: flags.compat && shared.over_maxmemory(),
    })
}

/// A script with flags (a shebang, or a function) that neither allows running over
/// `maxmemory` nor promises not to write is refused while memory is over it (Redis counts it
/// among the `denyoom` commands then); one that may write, while a write has failed on the
/// disk (MISCONF).
fn refuse_if_oom(shared: &Shared, flags: crate::script::ScriptFlags) -> Result<(), Frame> {
    if !flags.compat && !flags.allow_oom && !flags.no_writes && shared.over_maxmemory() {
        return Err(Frame::Error(super::reply::OOM.into()));
    }
    // So is one that may write while a write has failed on the disk (MISCONF).
    if !flags.compat
        && !flags.no_writes
        && let Some(refusal) = shared.disk.refusal()
    {
        return Err(refusal);
    }
    Ok(())
}

/// Reads `FCALL function numkeys key… arg…`: Redis's errors, in Redis's order.
fn prepare_fcall(shared: &Shared, args: &[Bytes], ro: bool) -> Result<Prepared, Frame> {
    let name = String::from_utf8_lossy(&args[1]).into_owned();
    let Some(flags) = shared.scripts.function_flags(&name) else {
        return Err(Frame::err("Function not found"));
    };
    refuse_if_oom(shared, flags)?;
    let numkeys = parse_i64(&args[2]).ok_or_else(|| Frame::err("Bad number of keys provided"))?;
    if numkeys > args.len() as i64 - 3 {
        return Err(Frame::err(
            "Number of keys can't be greater than number of args",
        ));
    }
    if numkeys < 0 {
        return Err(Frame::err("Number of keys can't be negative"));
    }
    if !flags.no_writes && ro {
        return Err(Frame::err(
            "Can not execute a script with write flag using *_ro command.",
        ));
    }
    let n = numkeys as usize;
    Ok(Prepared {
        target: Target::Function(name),
        keys: args[3..3 + n].to_vec(),
        args: args[3 + n..].to_vec(),
        read_only: ro || flags.no_writes,
        oom_at_start: false,
    })
}

fn noscript() -> Frame {
    Frame::Error("NOSCRIPT No matching script. Please use EVAL.".into())
}

fn script(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if let Some(e) = subcommand_error("script", args) {
        return Ok(e);
    }
    let sub = &args[1];
    let argc = args.len();
    let scripts = &ctx.shared.scripts;
    if is(sub, "help") {
        return Ok(help(HELP));
    }
    if is(sub, "flush") {
        return Ok(match args.get(2) {
            Some(m) if argc == 3 && (is(m, "sync") || is(m, "async")) => {
                scripts.flush();
                Frame::OK
            }
            None => {
                scripts.flush();
                Frame::OK
            }
            _ => Frame::err("SCRIPT FLUSH only support SYNC|ASYNC option"),
        });
    }
    if is(sub, "exists") {
        return Ok(Frame::Array(
            args[2..]
                .iter()
                .map(|sha| Frame::Integer(i64::from(scripts.exists(sha))))
                .collect(),
        ));
    }
    if is(sub, "load") {
        return Ok(match scripts.load(&args[2]) {
            Ok((sha, _)) => Frame::bulk(sha),
            Err(e) => Frame::err(e),
        });
    }
    if is(sub, "kill") {
        return Ok(kill_reply(scripts.kill(true), true));
    }
    if is(sub, "debug") {
        // No debugger: NO (the state every client is in) is accepted.
        let mode = &args[2];
        return Ok(if is(mode, "no") {
            Frame::OK
        } else if is(mode, "yes") || is(mode, "sync") {
            Frame::err("SCRIPT DEBUG is not supported by this server")
        } else {
            Frame::err("Use SCRIPT DEBUG YES/SYNC/NO")
        });
    }
    // (Every subcommand of Redis's table is handled above.)
    Ok(Frame::err(format!(
        "unknown subcommand '{}'. Try SCRIPT HELP.",
        String::from_utf8_lossy(sub)
    )))
}

/// SCRIPT KILL's and FUNCTION KILL's replies.
pub(crate) fn kill_reply(outcome: KillOutcome, eval: bool) -> Frame {
    match outcome {
        KillOutcome::NotBusy => Frame::Error("NOTBUSY No scripts in execution right now.".into()),
        KillOutcome::Unkillable => Frame::Error(
            "UNKILLABLE Sorry the script already executed write commands against the dataset. You can either wait the script termination or kill the server in a hard way using the SHUTDOWN NOSAVE command.".into(),
        ),
        KillOutcome::WrongKind => busy_error(!eval),
        KillOutcome::Killed => Frame::OK,
    }
}

/// The BUSY reply while a script runs past `busy-reply-threshold` (`eval`: it was started by
/// EVAL, else FCALL).
pub(crate) fn busy_error(eval: bool) -> Frame {
    Frame::Error(if eval {
        "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
            .into()
    } else {
        "BUSY Redis is busy running a script. You can only call FUNCTION KILL or SHUTDOWN NOSAVE."
            .into()
    })
}

/// Redis 7.0's SCRIPT HELP text.
const HELP: &[&str] = &[
    "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DEBUG (YES|SYNC|NO)",
    "    Set the debug mode for subsequent scripts executed.",
    "EXISTS <sha1> [<sha1> ...]",
    "    Return information about the existence of the scripts in the script cache.",
    "FLUSH [ASYNC|SYNC]",
    "    Flush the Lua scripts cache. Very dangerous on replicas.",
    "    When called without the optional mode argument, the behavior is determined by the",
    "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
    "    * ASYNC: Asynchronously flush the scripts cache.",
    "    * SYNC: Synchronously flush the scripts cache.",
    "KILL",
    "    Kill the currently executing Lua script.",
    "LOAD <script>",
    "    Load a script into the scripts cache without executing it.",
    "HELP",
    "    Prints this help.",
];
