//! ACL: SETUSER, GETUSER, DELUSER, LIST, USERS, WHOAMI, CAT, LOG, DRYRUN, GENPASS, LOAD, SAVE,
//! HELP — Redis 7.0's replies and errors. The users and the checks are in `acl.rs`.

use bytes::Bytes;

use super::args::is;
use super::ctx::Ctx;
use super::reply::{
    CmdResult, help, subcommand_error, subcommand_syntax_error, unknown_subcommand,
};
use super::spec::flags::CONTAINER;
use super::spec::{Spec, commands};
use crate::acl;
use crate::frame::Frame;
use crate::parse::parse_i64;

pub(super) static COMMANDS: &[Spec] = commands! {
    group "server";
    /// A container for Access List Control commands.
    "acl", -2, CONTAINER, 0, 0, 0 => acl;
};

type Sub = fn(&mut Ctx<'_, '_>, &[Bytes]) -> CmdResult;

/// The subcommands (their arities are Redis's table's: `subcommand_error`).
const SUBCOMMANDS: &[(&str, Sub)] = &[
    ("cat", cat),
    ("deluser", deluser),
    ("dryrun", dryrun),
    ("genpass", genpass),
    ("getuser", getuser),
    ("help", acl_help),
    ("list", list),
    ("load", load),
    ("log", log),
    ("save", save),
    ("setuser", setuser),
    ("users", users),
    ("whoami", whoami),
];

fn acl(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if let Some(e) = subcommand_error("acl", args) {
        return Ok(e);
    }
    let sub = &args[1];
    let Some(&(name, run)) = SUBCOMMANDS.iter().find(|(n, _)| is(sub, n)) else {
        return Ok(unknown_subcommand(sub, "acl"));
    };
    if ctx.shared.cluster.is_some() && matches!(name, "setuser" | "deluser" | "load") {
        return Ok(Frame::err(
            "ACL users are not supported in a replicated group yet (use requirepass)",
        ));
    }
    run(ctx, args)
}

fn setuser(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let name = &args[2];
    if name.iter().any(|c| c.is_ascii_whitespace() || *c == 0) {
        return Ok(Frame::err(
            "Usernames can't contain spaces or null characters",
        ));
    }
    Ok(match ctx.shared.acl.set_user(name.clone(), &args[3..]) {
        Ok(()) => {
            close_subscribers_no_longer_allowed(ctx, name);
            Frame::OK
        }
        Err(e) => Frame::err(e),
    })
}

/// As Redis: a subscriber authenticated as `name` whose subscriptions the user's new rules no
/// longer allow is closed (this one after its reply).
fn close_subscribers_no_longer_allowed(ctx: &mut Ctx<'_, '_>, name: &Bytes) {
    let Some(user) = ctx.shared.acl.get(name) else {
        return;
    };
    for c in ctx.shared.clients.all() {
        if c.user() != *name || c.kind() != "pubsub" {
            continue;
        }
        let barred = ctx
            .shared
            .pubsub
            .subscriptions_of(c.id)
            .iter()
            .any(|(kind, ch)| !user.channel_allowed(ch, *kind == crate::pubsub::Kind::Pattern));
        if barred {
            close(ctx, c.id);
        }
    }
}

fn deluser(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if args[2..].iter().any(|n| &n[..] == b"default") {
        return Ok(Frame::err("The 'default' user cannot be removed"));
    }
    let deleted = ctx.shared.acl.delete(&args[2..]);
    close_clients_of_gone_users(ctx);
    Ok(Frame::Integer(deleted as i64))
}

/// As Redis: the clients authenticated as a user that no longer exists are closed (this one
/// after its reply).
fn close_clients_of_gone_users(ctx: &mut Ctx<'_, '_>) {
    for c in ctx.shared.clients.all() {
        if ctx.shared.acl.get(&c.user()).is_none() {
            close(ctx, c.id);
        }
    }
}

/// Closes client `id`: at once, or this one after its reply.
fn close(ctx: &mut Ctx<'_, '_>, id: u64) {
    if id == ctx.conn.id {
        ctx.conn.close_after_reply = true;
    } else {
        ctx.shared.clients.kill(id);
    }
}

fn getuser(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(u) = ctx.shared.acl.get(&args[2]) else {
        return Ok(Frame::Null);
    };
    let s = |v: &str| Frame::bulk(v);
    Ok(Frame::Map(vec![
        (
            s("flags"),
            Frame::Set(u.flags().into_iter().map(s).collect()),
        ),
        (
            s("passwords"),
            Frame::Array(u.passwords().iter().map(|p| s(p)).collect()),
        ),
        (s("commands"), s(&u.describe_commands())),
        (s("keys"), s(&u.keys_rule())),
        (s("channels"), s(&u.channels_rule())),
        (s("selectors"), Frame::Array(Vec::new())),
    ]))
}

fn list(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    Ok(Frame::Array(
        ctx.shared
            .acl
            .users()
            .iter()
            .map(|u| {
                Frame::bulk(format!(
                    "user {} {}",
                    String::from_utf8_lossy(&u.name),
                    u.describe()
                ))
            })
            .collect(),
    ))
}

fn users(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    Ok(Frame::Array(
        ctx.shared
            .acl
            .users()
            .iter()
            .map(|u| Frame::Bulk(u.name.clone()))
            .collect(),
    ))
}

fn whoami(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    Ok(Frame::Bulk(ctx.conn.user.name.clone()))
}

fn cat(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let _ = ctx;
    match args.get(2) {
        None if args.len() == 2 => Ok(Frame::Array(
            acl::CATEGORIES.iter().map(|c| Frame::bulk(*c)).collect(),
        )),
        Some(name) if args.len() == 3 => {
            let name = String::from_utf8_lossy(name);
            match acl::category_commands(&name) {
                Some(cmds) => Ok(Frame::Array(cmds.into_iter().map(Frame::bulk).collect())),
                None => Ok(Frame::err(format!("Unknown category '{name}'"))),
            }
        }
        _ => Ok(subcommand_syntax_error(&args[1], "acl")),
    }
}

fn log(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let count = match args.get(2) {
        None => 10,
        Some(a) if is(a, "reset") && args.len() == 3 => {
            ctx.shared.acl.log_reset();
            return Ok(Frame::OK);
        }
        Some(a) if args.len() == 3 => match parse_i64(a) {
            Some(n) => n.max(0) as usize,
            None => return Ok(Frame::err("value is not an integer or out of range")),
        },
        _ => return Ok(subcommand_syntax_error(&args[1], "acl")),
    };
    let now = acl::now_ms();
    let s = |v: &str| Frame::bulk(v);
    Ok(Frame::Array(
        ctx.shared
            .acl
            .log_entries(count)
            .into_iter()
            .map(|e| {
                Frame::Map(vec![
                    (s("count"), Frame::Integer(e.count as i64)),
                    (s("reason"), s(e.reason)),
                    (s("context"), s(e.context)),
                    (s("object"), Frame::Bulk(e.object)),
                    (s("username"), Frame::Bulk(e.username)),
                    (
                        s("age-seconds"),
                        Frame::Double(now.saturating_sub(e.at_ms) as f64 / 1000.0),
                    ),
                    (s("client-info"), s(&e.client_info)),
                ])
            })
            .collect(),
    ))
}

fn dryrun(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(user) = ctx.shared.acl.get(&args[2]) else {
        return Ok(Frame::err(format!(
            "User '{}' not found",
            String::from_utf8_lossy(&args[2])
        )));
    };
    let request = &args[3..];
    let Some(info) = super::keyspec::full_info(request) else {
        return Ok(Frame::err(format!(
            "Command '{}' not found",
            String::from_utf8_lossy(&request[0])
        )));
    };
    let argc = request.len() as i64;
    if (info.arity > 0 && info.arity != argc) || argc < -info.arity {
        return Ok(Frame::err(format!(
            "wrong number of arguments for '{}' command",
            info.name
        )));
    }
    let no_auth = info.flags.contains(&"no_auth");
    Ok(
        match user.check(info.name, no_auth, request, || {
            super::keyspec::key_positions(request)
        }) {
            Ok(()) => Frame::OK,
            Err(acl::Denied::Command) => Frame::bulk(format!(
                "This user has no permissions to run the '{}' command",
                info.name
            )),
            Err(acl::Denied::Key(at)) => Frame::bulk(format!(
                "This user has no permissions to access the '{}' key",
                String::from_utf8_lossy(&request[at])
            )),
            Err(acl::Denied::Channel(at)) => Frame::bulk(format!(
                "This user has no permissions to access the '{}' channel",
                String::from_utf8_lossy(&request[at])
            )),
        },
    )
}

fn genpass(_ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let bits = match args.get(2) {
        None => 256,
        Some(a) => match parse_i64(a) {
            Some(n) => n,
            None => return Ok(Frame::err("value is not an integer or out of range")),
        },
    };
    if args.len() > 3 {
        return Ok(subcommand_syntax_error(&args[1], "acl"));
    }
    if bits <= 0 || bits > 4096 {
        return Ok(Frame::err(
            "ACL GENPASS argument must be the number of bits for the output password, a positive number up to 4096",
        ));
    }
    let chars = (bits as usize).div_ceil(4);
    let mut random = vec![0u8; chars.div_ceil(2)];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut random).is_err() {
        return Ok(Frame::err("no secure random source"));
    }
    let mut hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    hex.truncate(chars);
    Ok(Frame::bulk(hex))
}

/// LOAD and SAVE without an `aclfile`.
const NO_FILE: &str = "This Redis instance is not configured to use an ACL file. You may want to specify users via the ACL SETUSER command and then issue a CONFIG REWRITE (assuming you have a Redis configuration file set) in order to store users in the Redis configuration.";

fn load(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    let Some(path) = &ctx.shared.acl_file else {
        return Ok(Frame::err(NO_FILE));
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return Ok(Frame::err(format!(
                "Error loading ACLs, opening file '{}': {e}",
                path.display()
            )));
        }
    };
    Ok(match acl::parse_file(&text) {
        Ok(users) => {
            ctx.shared.acl.replace(users);
            close_clients_of_gone_users(ctx);
            Frame::OK
        }
        Err(e) => Frame::err(e),
    })
}

fn save(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    let Some(path) = &ctx.shared.acl_file else {
        return Ok(Frame::err(NO_FILE));
    };
    let text = acl::render_file(&ctx.shared.acl.users());
    // Written whole beside it, synced, then renamed over it: never half a file.
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, text)
        .and_then(|()| std::fs::File::open(&tmp)?.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    Ok(match written {
        Ok(()) => Frame::OK,
        Err(e) => {
            tracing::warn!("ACL SAVE to {}: {e}", path.display());
            Frame::err(
                "There was an error trying to save the ACLs. Please check the server logs for more information",
            )
        }
    })
}

fn acl_help(_ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    Ok(help(&[
        "ACL <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "CAT [<category>]",
        "    List all commands that belong to <category>, or all command categories",
        "    when no category is specified.",
        "DELUSER <username> [<username> ...]",
        "    Delete a list of users.",
        "DRYRUN <username> <command> [<arg> ...]",
        "    Returns whether the user can execute the given command without executing the command.",
        "GETUSER <username>",
        "    Get the user's details.",
        "GENPASS [<bits>]",
        "    Generate a secure 256-bit user password. The optional `bits` argument can",
        "    be used to specify a different size.",
        "LIST",
        "    Show users details in config file format.",
        "LOAD",
        "    Reload users from the ACL file.",
        "LOG [<count> | RESET]",
        "    Show the ACL log entries.",
        "SAVE",
        "    Save the current config to the ACL file.",
        "SETUSER <username> <attribute> [<attribute> ...]",
        "    Create or modify a user with the specified attributes.",
        "USERS",
        "    List all the registered usernames.",
        "WHOAMI",
        "    Return the current connection username.",
        "HELP",
        "    Print this help.",
    ]))
}
