//! Which keyspace events a write command emits, as Redis 7.0 names them: derived from the
//! command's name, its arguments, and the keys it changed (recorded by `Ctx::put_raw`,
//! `Ctx::remove_in` and `Ctx::save_in`), so the handlers need not know about notifications.
//!
//! The rule: every changed key gets the command's event (`lpush`, `hset`…); a key the command
//! deleted gets `del` as well when the command removes elements (LPOP, SREM…, as Redis emits
//! both), or `del` alone otherwise (DEL, an EXPIRE in the past, a *STORE of an empty result).
//! Commands that treat two keys differently (RENAME, LMOVE, SMOVE, MOVE, COPY) and those whose
//! event depends on an argument (SET … EX, LMPOP LEFT, ZADD INCR) are spelled out.

use bytes::Bytes;

use super::args::is;
use crate::notify::{Event, GENERIC, HASH, LIST, SET, STREAM, STRING, Touched, ZSET};

/// The events of command `name` (lower case) run with `args`, which changed `touched`.
pub(crate) fn derive(name: &str, args: &[Bytes], touched: &[Touched], out: &mut Vec<Event>) {
    // A key deleted and then written by the same command (SET over a list, COPY REPLACE,
    // RENAME onto an existing key) was overwritten, not deleted.
    // One pass from the end, remembering the keys written later (linear in the keys changed:
    // an MSET of many keys stays cheap).
    let mut written_later = std::collections::HashSet::new();
    let mut kept: Vec<&Touched> = Vec::with_capacity(touched.len());
    for t in touched.iter().rev() {
        if !t.removed {
            written_later.insert((t.db, &t.key));
        } else if written_later.contains(&(t.db, &t.key)) {
            continue;
        }
        kept.push(t);
    }
    kept.reverse();
    let touched = kept;
    let mut emit = |t: &Touched, class: u32, event: &'static str| {
        out.push(Event {
            class,
            name: event,
            db: t.db,
            key: t.key.clone(),
        });
    };
    let arg = |i: usize| args.get(i).map_or(&b""[..], |a| &a[..]);
    // Two-key commands: the source's event (and `del` if it emptied), the destination's.
    let pair = |src: (u32, &'static str), dst: (u32, &'static str), dst_first: bool| {
        move |t: &Touched, pass: u8, emit: &mut dyn FnMut(&Touched, u32, &'static str)| {
            let src_pass = if dst_first { 1 } else { 0 };
            if pass == src_pass && t.key == arg(1) && (t.removed || src.1 != "rename_from") {
                emit(t, src.0, src.1);
                if t.removed && src.1 != "rename_from" {
                    emit(t, GENERIC, "del");
                }
            }
            if pass != src_pass && t.key == arg(2) && !t.removed {
                emit(t, dst.0, dst.1);
            }
        }
    };
    let side = |w: &[u8], left: &'static str, right: &'static str| {
        if is(w, "left") { left } else { right }
    };
    // Redis announces a move's push before its pop; a rename's and an SMOVE's source first.
    type Pair<'a> = Box<dyn Fn(&Touched, u8, &mut dyn FnMut(&Touched, u32, &'static str)) + 'a>;
    let two: Option<Pair<'_>> = match name {
        "rename" | "renamenx" => Some(Box::new(pair(
            (GENERIC, "rename_from"),
            (GENERIC, "rename_to"),
            false,
        ))),
        "lmove" | "blmove" => Some(Box::new(pair(
            (LIST, side(arg(3), "lpop", "rpop")),
            (LIST, side(arg(4), "lpush", "rpush")),
            true,
        ))),
        "rpoplpush" | "brpoplpush" => Some(Box::new(pair((LIST, "rpop"), (LIST, "lpush"), true))),
        "smove" => Some(Box::new(pair((SET, "srem"), (SET, "sadd"), false))),
        _ => None,
    };
    if let Some(f) = two {
        for pass in 0..2 {
            for t in &touched {
                f(t, pass, &mut emit);
            }
        }
        return;
    }
    let (class, event, also_del) = match name {
        "set" | "setnx" | "setex" | "psetex" | "getset" | "mset" | "msetnx" => {
            (STRING, "set", false)
        }
        "append" => (STRING, "append", false),
        "setrange" => (STRING, "setrange", false),
        "setbit" | "bitfield" => (STRING, "setbit", false),
        "bitop" => (STRING, "set", false),
        "pfadd" | "pfmerge" => (STRING, "pfadd", false),
        "geoadd" => (ZSET, "zadd", false),
        "geosearchstore" => (ZSET, "geosearchstore", false),
        "georadius" | "georadiusbymember" => (ZSET, "georadiusstore", false),
        "incr" | "decr" | "incrby" | "decrby" => (STRING, "incrby", false),
        "incrbyfloat" => (STRING, "incrbyfloat", false),
        "del" | "unlink" | "getdel" => (GENERIC, "del", false),
        "expire" | "pexpire" | "expireat" | "pexpireat" => (GENERIC, "expire", false),
        "persist" => (GENERIC, "persist", false),
        "getex" => {
            let persist = args.get(2).is_some_and(|a| is(a, "persist"));
            (GENERIC, if persist { "persist" } else { "expire" }, false)
        }
        "move" => (GENERIC, "move_from", false),
        "copy" => (GENERIC, "copy_to", false),
        // A RESTORE whose TTL is already past deletes the key it replaces: `del` alone.
        "restore" => (GENERIC, "restore", false),
        "lpush" | "lpushx" => (LIST, "lpush", false),
        "rpush" | "rpushx" => (LIST, "rpush", false),
        "lpop" | "blpop" => (LIST, "lpop", true),
        "rpop" | "brpop" => (LIST, "rpop", true),
        "lmpop" | "blmpop" => {
            let left = is(mpop_side(name, args), "left");
            (LIST, if left { "lpop" } else { "rpop" }, true)
        }
        "linsert" => (LIST, "linsert", false),
        "lset" => (LIST, "lset", false),
        "lrem" => (LIST, "lrem", true),
        "ltrim" => (LIST, "ltrim", true),
        "hset" | "hsetnx" | "hmset" => (HASH, "hset", false),
        "hdel" => (HASH, "hdel", true),
        "hincrby" => (HASH, "hincrby", false),
        "hincrbyfloat" => (HASH, "hincrbyfloat", false),
        "sadd" => (SET, "sadd", false),
        "srem" => (SET, "srem", true),
        "spop" => (SET, "spop", true),
        "sinterstore" => (SET, "sinterstore", false),
        "sunionstore" => (SET, "sunionstore", false),
        "sdiffstore" => (SET, "sdiffstore", false),
        "zadd" => {
            // INCR among the options, which come before the first score.
            let incr = args
                .iter()
                .skip(2)
                .take_while(|a| {
                    ["nx", "xx", "gt", "lt", "ch", "incr"]
                        .iter()
                        .any(|w| is(a, w))
                })
                .any(|a| is(a, "incr"));
            (ZSET, if incr { "zincr" } else { "zadd" }, false)
        }
        "zincrby" => (ZSET, "zincr", false),
        "zrem" => (ZSET, "zrem", true),
        "zremrangebyscore" => (ZSET, "zremrangebyscore", true),
        "zremrangebyrank" => (ZSET, "zremrangebyrank", true),
        "zremrangebylex" => (ZSET, "zremrangebylex", true),
        "zpopmin" | "bzpopmin" => (ZSET, "zpopmin", true),
        "zpopmax" | "bzpopmax" => (ZSET, "zpopmax", true),
        "zmpop" | "bzmpop" => {
            let min = is(mpop_side(name, args), "min");
            (ZSET, if min { "zpopmin" } else { "zpopmax" }, true)
        }
        "zrangestore" => (ZSET, "zrangestore", false),
        "zunionstore" => (ZSET, "zunionstore", false),
        "zinterstore" => (ZSET, "zinterstore", false),
        "zdiffstore" => (ZSET, "zdiffstore", false),
        "xadd" => (STREAM, "xadd", false),
        "xdel" => (STREAM, "xdel", false),
        "xtrim" => (STREAM, "xtrim", false),
        "xsetid" => (STREAM, "xsetid", false),
        // SORT … STORE (SORT without STORE changes no key).
        "sort" => (LIST, "sortstore", false),
        // FLUSHDB, FLUSHALL, SWAPDB… emit no per-key events.
        _ => return,
    };
    for t in touched {
        if name == "move" && !t.removed {
            emit(t, GENERIC, "move_to");
            continue;
        }
        if t.removed && !also_del {
            // Deleted outright: DEL, MOVE's source, an expiry in the past, an empty STORE.
            emit(t, GENERIC, if name == "move" { "move_from" } else { "del" });
            continue;
        }
        emit(t, class, event);
        if t.removed {
            emit(t, GENERIC, "del");
        }
        if matches!(name, "setex" | "psetex")
            || (name == "set"
                && args
                    .iter()
                    .skip(3)
                    .any(|a| is(a, "ex") || is(a, "px") || is(a, "exat") || is(a, "pxat")))
        {
            emit(t, GENERIC, "expire");
        }
    }
}

/// The side word of an *MPOP command (LEFT/RIGHT, MIN/MAX), after its keys.
fn mpop_side<'a>(name: &str, args: &'a [Bytes]) -> &'a [u8] {
    let at = if name.starts_with('b') { 2 } else { 1 };
    let numkeys = args
        .get(at)
        .and_then(|n| std::str::from_utf8(n).ok())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    args.get(at + 1 + numkeys).map_or(&b""[..], |a| &a[..])
}
