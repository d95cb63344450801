//! Connection commands: PING, ECHO, QUIT, RESET, HELLO, AUTH, SELECT (CLIENT is in
//! `client.rs`).

use bytes::Bytes;

use super::args::{db_index, is};
use super::ctx::Ctx;
use super::reply::{CmdResult, syntax_error, wrong_arity};
use super::spec::flags::{FAST, NO_AUTH, NO_QUEUE, SUBSCRIBED_OK};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::parse::parse_i64;
use crate::state::REDIS_VERSION;

/// The connection commands.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "connection";
    /// Returns the server's liveliness response.
    "ping", -1, FAST | SUBSCRIBED_OK, 0, 0, 0 => ping;
    /// Returns the given string.
    "echo", 2, FAST, 0, 0, 0 => echo;
    /// Closes the connection.
    "quit", -1, FAST | NO_AUTH | NO_QUEUE | SUBSCRIBED_OK, 0, 0, 0 => quit;
    /// Resets the connection.
    "reset", 1, FAST | NO_AUTH | NO_QUEUE | SUBSCRIBED_OK, 0, 0, 0 => reset;
    /// Handshakes with the Redis server.
    "hello", -1, FAST | NO_AUTH, 0, 0, 0 => hello;
    /// Authenticates the connection.
    "auth", -2, FAST | NO_AUTH, 0, 0, 0 => auth;
    /// Changes the selected database.
    "select", 2, FAST, 0, 0, 0 => select;
    /// Enables read queries for a connection to a cluster replica node
    "readonly", 1, FAST, 0, 0, 0 => readonly(true);
    /// Disables read queries for a connection to a cluster replica node
    "readwrite", 1, FAST, 0, 0, 0 => readonly(false);
};

/// READONLY / READWRITE: in a replicated group, whether this connection's reads are served
/// from this node's own state (possibly behind the leader).
fn readonly(ctx: &mut Ctx<'_, '_>, _args: &[Bytes], on: bool) -> CmdResult {
    if ctx.shared.cluster.is_none() {
        return Ok(Frame::err("This instance has cluster support disabled"));
    }
    ctx.conn.readonly = on;
    Ok(Frame::OK)
}

fn ping(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if !ctx.conn.resp3 && ctx.conn.subscribed() {
        // In RESP2 subscribe mode a reply must look like a message: an array.
        return match args.len() {
            1 | 2 => Ok(Frame::Array(vec![
                Frame::bulk("pong"),
                Frame::Bulk(args.get(1).cloned().unwrap_or_default()),
            ])),
            _ => Ok(wrong_arity("ping")),
        };
    }
    match args.len() {
        1 => Ok(Frame::Simple("PONG")),
        2 => Ok(Frame::Bulk(args[1].clone())),
        _ => Ok(wrong_arity("ping")),
    }
}

fn echo(_ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    Ok(Frame::Bulk(args[1].clone()))
}

fn quit(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    ctx.conn.close_after_reply = true;
    Ok(Frame::OK)
}

/// RESET: the connection as new, except its authentication only if no password is set: no
/// MULTI, no watched keys, no subscriptions, no tracking, database 0, RESP2, no name, replies
/// on, no NO-EVICT.
fn reset(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    ctx.conn.multi = None;
    ctx.conn.watch.clear(&ctx.shared.watches);
    super::pubsub::unsubscribe_all(ctx);
    ctx.shared.tracking.disable(ctx.conn.id);
    ctx.conn
        .info
        .tracking
        .store(0, std::sync::atomic::Ordering::Relaxed);
    ctx.conn.caching = false;
    ctx.conn.db = 0;
    ctx.conn.info.set_db(0);
    ctx.conn.resp3 = false;
    ctx.conn.info.set_resp(2);
    ctx.conn.info.set_name(None);
    ctx.conn.reply_off = false;
    ctx.conn.skip_next = false;
    ctx.conn
        .info
        .no_evict
        .store(false, std::sync::atomic::Ordering::Relaxed);
    // Back to the default user, authenticated only if it needs no password (as Redis).
    let user = ctx.shared.acl.default_user();
    ctx.conn.authenticated = user.enabled() && user.nopass();
    ctx.conn.info.set_user(user.name.clone());
    ctx.conn.user = user;
    Ok(Frame::Simple("RESET"))
}

/// Authenticates as `user` (`default` if none) with `pass`: its ACL user must exist, be on,
/// and have that password (or none). A failure is logged (ACL LOG, reason `auth`).
fn check_password(
    ctx: &mut Ctx<'_, '_>,
    command: &Bytes,
    user: Option<&[u8]>,
    pass: &[u8],
) -> Result<(), Frame> {
    let name = user.unwrap_or(b"default");
    let found = ctx.shared.acl.get(name);
    if user.is_none() && found.as_ref().is_some_and(|u| u.nopass()) {
        return Err(Frame::err(
            "AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        ));
    }
    match found {
        Some(u) if u.enabled() && u.password_matches(pass) => {
            ctx.conn.authenticated = true;
            ctx.conn.info.set_user(u.name.clone());
            ctx.conn.user = u;
            ctx.conn.acl_generation = ctx.shared.acl.generation();
            Ok(())
        }
        _ => {
            let context = if ctx.conn.multi.is_some() {
                "multi"
            } else {
                "toplevel"
            };
            ctx.shared.acl.log(crate::acl::entry(
                "auth",
                context,
                command.clone(),
                Bytes::copy_from_slice(name),
                ctx.conn.info.describe(),
            ));
            Err(Frame::Error(
                "WRONGPASS invalid username-password pair or user is disabled.".into(),
            ))
        }
    }
}

fn auth(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let result = match args {
        [cmd, pass] => check_password(ctx, cmd, None, pass),
        [cmd, user, pass] => check_password(ctx, cmd, Some(user), pass),
        _ => return Err(syntax_error()),
    };
    Ok(result.map_or_else(|e| e, |()| Frame::OK))
}

fn hello(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let mut proto = None;
    if args.len() >= 2 {
        let v = match parse_i64(&args[1]) {
            Some(v) => v,
            None => {
                return Ok(Frame::err(
                    "Protocol version is not an integer or out of range",
                ));
            }
        };
        if v != 2 && v != 3 {
            return Ok(Frame::Error("NOPROTO unsupported protocol version".into()));
        }
        proto = Some(v);
    }
    let mut i = 2;
    let mut name = None;
    while i < args.len() {
        if is(&args[i], "auth") && i + 2 < args.len() {
            if let Err(e) = check_password(ctx, &args[0], Some(&args[i + 1]), &args[i + 2]) {
                return Ok(e);
            }
            i += 3;
        } else if is(&args[i], "setname") && i + 1 < args.len() {
            name = Some(args[i + 1].clone());
            i += 2;
        } else {
            return Ok(Frame::err(format!(
                "Syntax error in HELLO option '{}'",
                String::from_utf8_lossy(&args[i])
            )));
        }
    }
    if !ctx.conn.authenticated {
        return Ok(Frame::Error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time".into()));
    }
    if let Some(name) = name
        && let Err(e) = set_name(ctx, name)
    {
        return Ok(e);
    }
    if let Some(p) = proto {
        ctx.conn.resp3 = p == 3;
        ctx.conn.info.set_resp(if p == 3 { 3 } else { 2 });
        if p == 3 {
            // Another client's CLIENT TRACKING may redirect its invalidations here: they
            // arrive as pushes, through the connection's message queue.
            ctx.conn.subscriptions();
        }
    }
    let s = |v: &str| Frame::bulk(v);
    Ok(Frame::Map(vec![
        (s("server"), s("redis")),
        (s("version"), s(REDIS_VERSION)),
        (
            s("proto"),
            Frame::Integer(if ctx.conn.resp3 { 3 } else { 2 }),
        ),
        (s("id"), Frame::Integer(ctx.conn.id as i64)),
        (s("mode"), s("standalone")),
        (s("role"), s("master")),
        (s("modules"), Frame::Array(Vec::new())),
    ]))
}

fn select(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let db = db_index(&args[1])?;
    ctx.conn.db = db;
    ctx.conn.info.set_db(db);
    Ok(Frame::OK)
}

/// CLIENT SETNAME and HELLO's SETNAME: names of printable characters only.
pub(super) fn set_name(ctx: &mut Ctx<'_, '_>, name: Bytes) -> Result<(), Frame> {
    if name.iter().any(|&b| !(b'!'..=b'~').contains(&b)) {
        return Err(Frame::err(
            "Client names cannot contain spaces, newlines or special characters.",
        ));
    }
    ctx.conn.info.set_name((!name.is_empty()).then_some(name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::acl::constant_time_eq;

    #[test]
    fn password_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"secret", b""));
        assert!(constant_time_eq(b"", b""));
    }
}
