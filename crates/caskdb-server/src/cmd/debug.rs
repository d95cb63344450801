//! DEBUG, refused unless `enable-debug-command` is `yes` (or `local`, for loopback clients), as
//! in Redis 7.0. The subcommands test suites use: SLEEP, SET-ACTIVE-EXPIRE, OBJECT, RELOAD (a
//! sync: the log is the persistence, and what a reload would read), DIGEST, DIGEST-VALUE,
//! PROTOCOL, ERROR, LOG, CHANGE-REPL-ID, HELP; Redis's testing knobs are accepted and ignored.

use std::hash::{Hash, Hasher};
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;

use super::args::is;
use super::ctx::{Ctx, Store};
use super::keys::STEP;
use super::object::encoding;
use super::reply::{CmdError, CmdResult, help};
use super::spec::flags::ADMIN;
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::keyspace::{DATABASES, Meta, Type, kind};

/// DEBUG.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "server";
    /// A container for debugging commands.
    "debug", -2, ADMIN, 0, 0, 0 => debug;
};

fn debug(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if !ctx
        .shared
        .config
        .debug_allowed(ctx.conn.info.addr.ip().is_loopback())
    {
        return Ok(Frame::err(
            "DEBUG command not allowed. If the enable-debug-command option is set to \"local\", you can run it from a local connection, otherwise you need to set this option in the configuration file, and then restart the server.",
        ));
    }
    let sub = &args[1];
    let argc = args.len();
    let ok = Ok(Frame::OK);
    if is(sub, "help") && argc == 2 {
        return Ok(help(HELP));
    }
    if is(sub, "sleep") && argc == 3 {
        // Redis stops the whole server; this stops only the calling connection.
        let secs = std::str::from_utf8(&args[2])
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(0.0);
        std::thread::sleep(Duration::from_secs_f64(secs.min(3600.0)));
        return ok;
    }
    if is(sub, "set-active-expire") && argc == 3 {
        let on = std::str::from_utf8(&args[2])
            .ok()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(0)
            != 0;
        ctx.shared.active_expire.store(on, Ordering::Relaxed);
        return ok;
    }
    if is(sub, "object") && argc == 3 {
        let Some(e) = in_tx(ctx, |ctx| ctx.lookup(&args[2]))? else {
            return Ok(Frame::err("no such key"));
        };
        let mut text = format!(
            "Value at:0x0 refcount:1 encoding:{} serializedlength:{} lru:0 lru_seconds_idle:0",
            encoding(ctx, &e),
            e.payload.len()
        );
        if e.ty == Type::List
            && let Some(m) = Meta::decode(&e)
        {
            text.push_str(&format!(
                " ql_nodes:{} ql_avg_node:{:.2} ql_listpack_max:-2 ql_compressed:0 ql_uncompressed_size:0",
                m.len.div_ceil(128).max(1),
                m.len as f64 / m.len.div_ceil(128).max(1) as f64
            ));
        }
        return Ok(Frame::Status(text));
    }
    if is(sub, "reload") {
        // Every acknowledged write is in the log already: what a restart reads back.
        ctx.shared.db.sync()?;
        return ok;
    }
    if is(sub, "digest") && argc == 2 {
        return in_tx(ctx, digest_all);
    }
    if is(sub, "digest-value") {
        return in_tx(ctx, |ctx| {
            let mut out = Vec::new();
            for key in &args[2..] {
                out.push(Frame::Status(hex(key_digest(ctx, ctx.conn.db, key)?)));
            }
            Ok(Frame::Array(out))
        });
    }
    if is(sub, "protocol") && argc == 3 {
        return Ok(protocol(&args[2], ctx.conn.resp3));
    }
    if is(sub, "error") && argc == 3 {
        return Ok(Frame::Error(String::from_utf8_lossy(&args[2]).into_owned()));
    }
    if is(sub, "log") && argc == 3 {
        tracing::warn!("DEBUG LOG: {}", String::from_utf8_lossy(&args[2]));
        return ok;
    }
    // Testing knobs of Redis's internals: nothing to change here.
    for (name, n) in [
        ("change-repl-id", 2),
        ("quicklist-packed-threshold", 3),
        ("set-skip-checksum-validation", 3),
        ("set-disable-deny-scripts", 3),
        ("config-rewrite-force-all", 2),
        ("pause-cron", 3),
        ("aof-flush-sleep", 3),
        ("stringmatch-test", 2),
    ] {
        if is(sub, name) && argc == n {
            return ok;
        }
    }
    Ok(Frame::err(format!(
        "unknown subcommand or wrong number of arguments for '{}'. Try DEBUG HELP.",
        String::from_utf8_lossy(sub)
    )))
}

/// Runs `f` in an engine transaction of its own (member records are read through one), with
/// the same session.
fn in_tx<T>(
    ctx: &mut Ctx<'_, '_>,
    f: impl FnOnce(&mut Ctx<'_, '_>) -> Result<T, CmdError>,
) -> Result<T, CmdError> {
    let shared = ctx.shared;
    let conn = &mut *ctx.conn;
    shared.db.transaction(|tx| {
        let mut inner = Ctx {
            shared,
            conn,
            store: Store::Write(tx),
            member_writes: 0,
            breaks_compact: false,
            may_block: false,
            counts_lookups: false,
        };
        Ok::<_, caskdb::Error>(f(&mut inner))
    })?
}

/// DEBUG DIGEST: every key's digest, combined so that the order of keys does not matter;
/// zeros for an empty store, as Redis.
fn digest_all(ctx: &mut Ctx<'_, '_>) -> CmdResult {
    let mut digest = [0u64; 3];
    for db in 0..DATABASES {
        let mut keys = Vec::new();
        ctx.walk_keys(db, Bound::Unbounded, STEP, |_, batch| {
            keys.extend(batch);
            Ok(true)
        })?;
        for key in keys {
            let d = key_digest(ctx, db, &key)?;
            for (acc, part) in digest.iter_mut().zip(d) {
                *acc ^= part;
            }
        }
    }
    Ok(Frame::Status(hex(digest)))
}

/// A digest of one key's value, independent of how it is stored: zeros for a missing key.
fn key_digest(ctx: &mut Ctx<'_, '_>, db: u8, key: &[u8]) -> Result<[u64; 3], CmdError> {
    let Some(e) = ctx.lookup_in(db, key)? else {
        return Ok([0; 3]);
    };
    let mut parts: Vec<Vec<u8>> = vec![key.to_vec(), vec![e.ty as u8]];
    if let Some(at) = e.expire_at {
        parts.push(at.to_be_bytes().to_vec());
    }
    match Meta::decode(&e) {
        None => parts.push(e.payload.to_vec()),
        Some(m) => {
            for (rest, value) in ctx.all_members(&m, kind::MEMBER)? {
                // A list's member keys are positions that depend on its history: only the
                // elements, in order, count.
                if m.ty != Type::List {
                    parts.push(rest.to_vec());
                }
                parts.push(value.to_vec());
            }
        }
    }
    Ok([1u64, 2, 3].map(|seed| {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        seed.hash(&mut h);
        parts.hash(&mut h);
        h.finish()
    }))
}

/// 40 hex digits, as Redis prints a SHA1 digest.
fn hex(d: [u64; 3]) -> String {
    let s = format!("{:016x}{:016x}{:016x}", d[0], d[1], d[2]);
    s[..40].to_string()
}

/// DEBUG PROTOCOL: a sample of each RESP type.
fn protocol(name: &[u8], resp3: bool) -> Frame {
    let ints = || (0..3).map(Frame::Integer).collect::<Vec<_>>();
    if is(name, "string") {
        Frame::bulk("Hello World")
    } else if is(name, "integer") {
        Frame::Integer(12345)
    } else if is(name, "double") {
        // Redis's sample value, not an approximation of pi.
        #[allow(clippy::approx_constant)]
        Frame::Double(3.141)
    } else if is(name, "bignum") {
        Frame::BigNumber("1234567999999999999999999999999999999".into())
    } else if is(name, "null") {
        Frame::Null
    } else if is(name, "array") {
        Frame::Array(ints())
    } else if is(name, "set") {
        Frame::Set(ints())
    } else if is(name, "map") {
        Frame::Map(
            (0..3)
                .map(|j| (Frame::Integer(j), Frame::Boolean(j == 1)))
                .collect(),
        )
    } else if is(name, "attrib") {
        // (RESP3 attributes are not sent: only the reply they would come with.)
        Frame::bulk("Some real reply following the attribute")
    } else if is(name, "push") {
        if !resp3 {
            return Frame::err("RESP2 is not supported by this command");
        }
        Frame::Sequence(vec![
            Frame::Push(vec![Frame::bulk("server-cpu-usage"), Frame::Integer(42)]),
            Frame::bulk("Some real reply following the push reply"),
        ])
    } else if is(name, "true") {
        Frame::Boolean(true)
    } else if is(name, "false") {
        Frame::Boolean(false)
    } else if is(name, "verbatim") {
        Frame::Verbatim("This is a verbatim\nstring".into())
    } else {
        Frame::err(
            "Wrong protocol type name. Please use one of the following: string|integer|double|bignum|null|array|set|map|attrib|push|verbatim|true|false",
        )
    }
}

const HELP: &[&str] = &[
    "DEBUG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANGE-REPL-ID",
    "    Accepted; there is no replication yet.",
    "DIGEST",
    "    Output a hex signature representing the current DB content.",
    "DIGEST-VALUE <key> [<key> ...]",
    "    Output a hex signature of the values of all the specified keys.",
    "ERROR <string>",
    "    Return a Redis protocol error with <string> as message.",
    "LOG <message>",
    "    Write <message> to the server log.",
    "OBJECT <key>",
    "    Show low level info about `key` and associated value.",
    "PROTOCOL <type>",
    "    Reply with a test value of the specified type. <type> can be: string,",
    "    integer, double, bignum, null, array, set, map, attrib, push, verbatim,",
    "    true, false.",
    "RELOAD [option ...]",
    "    Sync the log to disk (it is what a restart loads).",
    "SET-ACTIVE-EXPIRE <0|1>",
    "    Stop (0) or restart (1) deleting expired keys in the background.",
    "SLEEP <seconds>",
    "    Stop the calling connection for <seconds>. Decimals allowed.",
    "HELP",
    "    Prints this help.",
];
