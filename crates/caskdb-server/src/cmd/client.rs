//! CLIENT and its subcommands: ID, INFO, LIST, SETNAME/GETNAME, KILL, PAUSE/UNPAUSE, REPLY,
//! NO-EVICT, UNBLOCK, TRACKING, GETREDIR, TRACKINGINFO, CACHING, HELP.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::args::is;
use super::connection::set_name;
use super::ctx::{Ctx, Store};
use super::reply::{
    CmdResult, help, subcommand_syntax_error, syntax_error, unknown_subcommand, wrong_arity,
};
use super::spec::flags::CONTAINER;
use super::spec::{Spec, commands};
use crate::blocking::Served;
use crate::clients::ClientInfo;
use crate::frame::Frame;
use crate::parse::parse_i64;
use crate::tracking::Mode;

/// CLIENT.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "connection";
    /// A container for client connection commands.
    "client", -2, CONTAINER, 0, 0, 0 => client;
};

/// Subcommands and their arities (Redis's convention, the subcommand counted as the second
/// argument).
const SUBCOMMANDS: &[(&str, i32, Sub)] = &[
    ("caching", -3, caching),
    ("getname", 2, getname),
    ("getredir", 2, getredir),
    ("help", 2, client_help),
    ("id", 2, id),
    ("info", 2, info),
    ("kill", -3, kill),
    ("list", -2, list),
    ("no-evict", 3, no_evict),
    ("pause", -3, pause),
    ("reply", 3, reply),
    // Redis 7.2's; client libraries send it and ignore the answer: accepted, ignored.
    ("setinfo", 4, |_, _| Ok(Frame::OK)),
    ("setname", 3, setname),
    ("tracking", -3, tracking),
    ("trackinginfo", 2, trackinginfo),
    ("unblock", -3, unblock),
    ("unpause", 2, unpause),
];

type Sub = fn(&mut Ctx<'_, '_>, &[Bytes]) -> CmdResult;

fn client(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let Some(&(name, arity, run)) = SUBCOMMANDS.iter().find(|(n, ..)| is(sub, n)) else {
        return Ok(unknown_subcommand(sub, "client"));
    };
    let n = args.len() as i32;
    if (arity >= 0 && n != arity) || n < -arity {
        return Ok(wrong_arity(&format!("client|{name}")));
    }
    run(ctx, args)
}

fn id(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(ctx.conn.id as i64))
}

fn info(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    Ok(Frame::Verbatim(ctx.conn.info.describe() + "\n"))
}

fn setname(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    Ok(set_name(ctx, args[2].clone()).map_or_else(|e| e, |()| Frame::OK))
}

fn getname(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    Ok(ctx.conn.info.name().map_or(Frame::Null, Frame::Bulk))
}

/// A client type as CLIENT LIST and CLIENT KILL take it; `None` if unknown.
fn client_type(name: &[u8]) -> Option<&'static str> {
    ["normal", "master", "pubsub"]
        .into_iter()
        .find(|t| is(name, t))
        .or_else(|| (is(name, "replica") || is(name, "slave")).then_some("slave"))
}

fn unknown_type(name: &[u8]) -> Frame {
    Frame::err(format!(
        "Unknown client type '{}'",
        String::from_utf8_lossy(name)
    ))
}

/// CLIENT LIST [TYPE type | ID id...].
fn list(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let clients: Vec<Arc<ClientInfo>> = if args.len() == 4 && is(&args[2], "type") {
        let Some(ty) = client_type(&args[3]) else {
            return Ok(unknown_type(&args[3]));
        };
        let mut all = ctx.shared.clients.all();
        all.retain(|c| c.kind() == ty);
        all
    } else if args.len() > 3 && is(&args[2], "id") {
        let mut found = Vec::new();
        for a in &args[3..] {
            let id = parse_i64(a).ok_or_else(|| Frame::err("Invalid client ID"))?;
            if let Some(c) = u64::try_from(id)
                .ok()
                .and_then(|id| ctx.shared.clients.get(id))
            {
                found.push(c);
            }
        }
        found
    } else if args.len() != 2 {
        return Err(syntax_error());
    } else {
        ctx.shared.clients.all()
    };
    let mut text = String::new();
    for c in clients {
        text.push_str(&c.describe());
        text.push('\n');
    }
    Ok(Frame::Verbatim(text))
}

/// CLIENT KILL addr, or CLIENT KILL with filters (ID, TYPE, ADDR, LADDR, USER, SKIPME).
fn kill(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let old_form = args.len() == 3;
    let mut addr: Option<&[u8]> = None;
    let mut laddr: Option<&[u8]> = None;
    let mut ty: Option<&str> = None;
    let mut id: Option<u64> = None;
    let mut user: Option<Bytes> = None;
    // The old form may kill the caller; the new one skips it unless told SKIPME NO.
    let mut skipme = !old_form;
    if old_form {
        addr = Some(&args[2]);
    } else {
        let mut i = 2;
        while i < args.len() {
            let Some(value) = args.get(i + 1) else {
                return Err(syntax_error());
            };
            let opt = &args[i];
            if is(opt, "id") {
                let n = parse_i64(value)
                    .filter(|&n| n >= 1)
                    .ok_or_else(|| Frame::err("client-id should be greater than 0"))?;
                id = Some(n as u64);
            } else if is(opt, "type") {
                ty = Some(client_type(value).ok_or_else(|| unknown_type(value))?);
            } else if is(opt, "addr") {
                addr = Some(value);
            } else if is(opt, "laddr") {
                laddr = Some(value);
            } else if is(opt, "user") {
                if ctx.shared.acl.get(value).is_none() {
                    return Ok(Frame::err(format!(
                        "No such user '{}'",
                        String::from_utf8_lossy(value)
                    )));
                }
                user = Some(value.clone());
            } else if is(opt, "skipme") {
                skipme = if is(value, "yes") {
                    true
                } else if is(value, "no") {
                    false
                } else {
                    return Err(syntax_error());
                };
            } else {
                return Err(syntax_error());
            }
            i += 2;
        }
    }
    let me = ctx.conn.id;
    let mut killed = 0;
    for c in ctx.shared.clients.all() {
        let matches = addr.is_none_or(|a| c.addr.to_string().as_bytes() == a)
            && laddr.is_none_or(|a| c.laddr.to_string().as_bytes() == a)
            && ty.is_none_or(|t| c.kind() == t)
            && id.is_none_or(|i| c.id == i)
            && user.as_ref().is_none_or(|u| c.user() == *u)
            && !(skipme && c.id == me);
        if !matches {
            continue;
        }
        killed += 1;
        if c.id == me {
            // Closed once this reply is written, as Redis does.
            ctx.conn.close_after_reply = true;
        } else {
            ctx.shared.clients.kill(c.id);
        }
    }
    Ok(match (old_form, killed) {
        (true, 0) => Frame::err("No such client"),
        (true, _) => Frame::OK,
        (false, n) => Frame::Integer(n),
    })
}

/// CLIENT PAUSE timeout [WRITE|ALL].
fn pause(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Ok(subcommand_syntax_error(&args[1], "client"));
    }
    let all = match args.get(3) {
        None => true,
        Some(m) if is(m, "all") => true,
        Some(m) if is(m, "write") => false,
        Some(_) => return Ok(Frame::err("CLIENT PAUSE mode must be WRITE or ALL")),
    };
    let ms = parse_i64(&args[2])
        .ok_or_else(|| Frame::err("timeout is not an integer or out of range"))?;
    let ms = u64::try_from(ms).map_err(|_| Frame::err("timeout is negative"))?;
    let until = Instant::now()
        .checked_add(Duration::from_millis(ms))
        .ok_or_else(|| Frame::err("timeout is out of range"))?;
    ctx.shared.pause.set(until, all);
    Ok(Frame::OK)
}

fn unpause(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    ctx.shared.pause.clear();
    Ok(Frame::OK)
}

/// CLIENT REPLY ON|OFF|SKIP (the connection applies it, `ConnState::reply_wanted`).
fn reply(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let mode = &args[2];
    if is(mode, "on") {
        ctx.conn.reply_off = false;
        ctx.conn.skip_next = false;
        ctx.conn.skip = false;
        return Ok(Frame::OK);
    }
    if is(mode, "off") {
        ctx.conn.reply_off = true;
    } else if is(mode, "skip") {
        ctx.conn.skip_next = !ctx.conn.reply_off;
    } else {
        return Err(syntax_error());
    }
    ctx.conn.suppress_reply = true;
    Ok(Frame::OK)
}

fn no_evict(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let on = if is(&args[2], "on") {
        true
    } else if is(&args[2], "off") {
        false
    } else {
        return Err(syntax_error());
    };
    ctx.conn.info.no_evict.store(on, Ordering::Relaxed);
    Ok(Frame::OK)
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR].
fn unblock(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if args.len() > 4 {
        return Ok(subcommand_syntax_error(&args[1], "client"));
    }
    let error = match args.get(3) {
        None => false,
        Some(r) if is(r, "timeout") => false,
        Some(r) if is(r, "error") => true,
        Some(_) => {
            return Ok(Frame::err(
                "CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ));
        }
    };
    let id =
        parse_i64(&args[2]).ok_or_else(|| Frame::err("value is not an integer or out of range"))?;
    let Some(w) = u64::try_from(id)
        .ok()
        .and_then(|id| ctx.shared.blocking.of_client(id))
    else {
        return Ok(Frame::Integer(0));
    };
    if !ctx.shared.blocking.remove(&w) {
        return Ok(Frame::Integer(0));
    }
    w.send(Served {
        frame: if error {
            Frame::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
        } else {
            w.timeout_reply.clone()
        },
        token: None,
    });
    Ok(Frame::Integer(1))
}

/// CLIENT TRACKING ON|OFF [REDIRECT id] [PREFIX p]... [BCAST] [OPTIN] [OPTOUT] [NOLOOP]: the
/// options parsed, then checked against each other and the client's mode, as Redis 7.0 does.
fn tracking(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let mut mode = Mode::default();
    let mut prefixes: Vec<Bytes> = Vec::new();
    let mut i = 3;
    while i < args.len() {
        let more = i + 1 < args.len();
        let opt = &args[i];
        if is(opt, "redirect") && more {
            i += 1;
            if mode.redirect != 0 {
                return Ok(Frame::err(
                    "A client can only redirect to a single other client",
                ));
            }
            let id = parse_i64(&args[i])
                .ok_or_else(|| Frame::err("value is not an integer or out of range"))?;
            let found = u64::try_from(id)
                .ok()
                .filter(|id| ctx.shared.clients.get(*id).is_some());
            let Some(id) = found else {
                return Ok(Frame::err(
                    "The client ID you want redirect to does not exist",
                ));
            };
            mode.redirect = id;
        } else if is(opt, "bcast") {
            mode.bcast = true;
        } else if is(opt, "optin") {
            mode.optin = true;
        } else if is(opt, "optout") {
            mode.optout = true;
        } else if is(opt, "noloop") {
            mode.noloop = true;
        } else if is(opt, "prefix") && more {
            i += 1;
            prefixes.push(args[i].clone());
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    let id = ctx.conn.id;
    if is(&args[2], "off") {
        ctx.shared.tracking.disable(id);
        ctx.conn.info.tracking.store(0, Ordering::Relaxed);
        ctx.conn.caching = false;
        return Ok(Frame::OK);
    }
    if !is(&args[2], "on") {
        return Err(syntax_error());
    }
    if !mode.bcast && !prefixes.is_empty() {
        return Ok(Frame::err(
            "PREFIX option requires BCAST mode to be enabled",
        ));
    }
    let old = ctx.shared.tracking.mode(id);
    if old.as_ref().is_some_and(|o| o.bcast != mode.bcast) {
        return Ok(Frame::err(
            "You can't switch BCAST mode on/off before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if mode.bcast && (mode.optin || mode.optout) {
        return Ok(Frame::err("OPTIN and OPTOUT are not compatible with BCAST"));
    }
    if mode.optin && mode.optout {
        return Ok(Frame::err(
            "You can't specify both OPTIN mode and OPTOUT mode",
        ));
    }
    if old
        .as_ref()
        .is_some_and(|o| (mode.optin && o.optout) || (mode.optout && o.optin))
    {
        return Ok(Frame::err(
            "You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and then re-enabling it with a different mode.",
        ));
    }
    if mode.bcast {
        if let Some(e) = prefix_collision(old.as_ref(), &prefixes) {
            return Ok(Frame::err(e));
        }
        if prefixes.is_empty() {
            prefixes.push(Bytes::new());
        }
        mode.prefixes = prefixes.into_iter().collect();
    }
    ctx.conn
        .info
        .tracking
        .store(if mode.bcast { 2 } else { 1 }, Ordering::Relaxed);
    ctx.shared.tracking.enable(id, mode);
    // A transaction that staged writes before tracking was on recorded no keys to invalidate:
    // let any such one commit before this client reads (it then reads the new values). Inside
    // EXEC the writer lock is held already, so none is in flight.
    if let Store::Read(db) = &ctx.store {
        db.transaction(|_| Ok::<_, caskdb::Error>(()))
            .map_err(|e| super::reply::engine_error(&e))?;
    }
    // A RESP3 client gets its invalidations as pushes, through its message queue.
    ctx.conn.subscriptions();
    Ok(Frame::OK)
}

/// Redis's check that no two BCAST prefixes of a client overlap (one starting the other),
/// among those it has and those given: the error, if any.
fn prefix_collision(old: Option<&Mode>, given: &[Bytes]) -> Option<String> {
    let overlap = |a: &[u8], b: &[u8]| {
        let n = a.len().min(b.len());
        a[..n] == b[..n]
    };
    // (Redis prints them as C strings: up to a NUL byte.)
    let text = |b: &[u8]| {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).into_owned()
    };
    for (i, p) in given.iter().enumerate() {
        if let Some(o) = old.and_then(|o| o.prefixes.iter().find(|o| overlap(o, p))) {
            return Some(format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(o)
            ));
        }
        if let Some(q) = given[i + 1..].iter().find(|q| overlap(p, q)) {
            return Some(format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                text(p),
                text(q)
            ));
        }
    }
    None
}

/// CLIENT CACHING YES|NO: whether the next command's reads are tracked, in OPTIN (YES) or
/// OPTOUT (NO) mode.
fn caching(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(mode) = ctx.shared.tracking.mode(ctx.conn.id) else {
        return Ok(Frame::err(
            "CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or OPTOUT mode enabled",
        ));
    };
    if is(&args[2], "yes") {
        if !mode.optin {
            return Ok(Frame::err(
                "CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.",
            ));
        }
    } else if is(&args[2], "no") {
        if !mode.optout {
            return Ok(Frame::err(
                "CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.",
            ));
        }
    } else {
        return Err(syntax_error());
    }
    ctx.conn.caching = true;
    Ok(Frame::OK)
}

/// CLIENT GETREDIR: the client tracking messages go to (0: itself), or -1 if not tracking.
fn getredir(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(
        ctx.shared
            .tracking
            .mode(ctx.conn.id)
            .map_or(-1, |m| i64::try_from(m.redirect).unwrap_or(i64::MAX)),
    ))
}

/// CLIENT TRACKINGINFO: the tracking flags, redirection and BCAST prefixes.
fn trackinginfo(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    let mode = ctx.shared.tracking.mode(ctx.conn.id);
    let mut flags = vec![if mode.is_some() { "on" } else { "off" }];
    let mut redirect = -1;
    let mut prefixes = Vec::new();
    if let Some(m) = &mode {
        let caching = ctx.conn.caching;
        for (on, name) in [
            (m.bcast, "bcast"),
            (m.optin, "optin"),
            (m.optin && caching, "caching-yes"),
            (m.optout, "optout"),
            (m.optout && caching, "caching-no"),
            (m.noloop, "noloop"),
            (m.broken, "broken_redirect"),
        ] {
            if on {
                flags.push(name);
            }
        }
        redirect = i64::try_from(m.redirect).unwrap_or(i64::MAX);
        prefixes = m.prefixes.iter().cloned().map(Frame::Bulk).collect();
    }
    Ok(Frame::Map(vec![
        (
            Frame::bulk("flags"),
            Frame::Set(flags.into_iter().map(Frame::bulk).collect()),
        ),
        (Frame::bulk("redirect"), Frame::Integer(redirect)),
        (Frame::bulk("prefixes"), Frame::Array(prefixes)),
    ]))
}

fn client_help(_ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    Ok(help(HELP))
}

/// Redis 7.0's CLIENT HELP text.
const HELP: &[&str] = &[
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
];
