//! Generic key commands: DEL, EXISTS, TOUCH, TYPE, KEYS, SCAN, RENAME, COPY, MOVE, expiry; WAIT.

use bytes::Bytes;

use super::args::{ExpireKind, ScanArgs, db_index, int_arg, is, option_flags};
use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult, syntax_error};
use super::scan::{self, next_cursor, resume};
use super::spec::flags::{FAST, READ_TX, READONLY, WRITE};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::glob;
use crate::keyspace::Meta;
use crate::state::random_u64;
use crate::string_chunks::Chunked;

/// The generic key commands.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "generic";
    /// Deletes one or more keys.
    "del", -2, WRITE, 1, -1, 1 => del;
    /// Asynchronously deletes one or more keys.
    "unlink", -2, WRITE | FAST, 1, -1, 1 => del;
    /// Determines whether one or more keys exist.
    "exists", -2, READ_TX | FAST, 1, -1, 1 => exists;
    /// Returns the number of existing keys out of those specified after updating the time they
    /// were last accessed.
    "touch", -2, READ_TX | FAST, 1, -1, 1 => exists;
    /// Blocks until the asynchronous replication of all preceding write commands sent by the
    /// connection is completed.
    "wait", 3, 0, 0, 0, 0 => wait;
    /// Determines the type of value stored at a key.
    "type", 2, READONLY | FAST, 1, 1, 1 => type_;
    /// Returns all key names that match a pattern.
    "keys", 2, READ_TX, 0, 0, 0 => keys;
    /// Iterates over the key names in the database.
    "scan", -2, READONLY, 0, 0, 0 => scan;
    /// Returns a random key name from the database.
    "randomkey", 1, READONLY, 0, 0, 0 => randomkey;
    /// Renames a key and overwrites the destination.
    "rename", 3, WRITE, 1, 2, 1 => rename_with(false);
    /// Renames a key only when the target key name doesn't exist.
    "renamenx", 3, WRITE | FAST, 1, 2, 1 => rename_with(true);
    /// Copies the value of a key to a new key.
    "copy", -3, WRITE, 1, 2, 1 => copy;
    /// Moves a key to another database.
    "move", 3, WRITE | FAST, 1, 1, 1 => move_;
    /// Sets the expiration time of a key in seconds.
    "expire", -3, WRITE | FAST, 1, 1, 1 => expire_generic(ExpireKind::Ex, "expire");
    /// Sets the expiration time of a key in milliseconds.
    "pexpire", -3, WRITE | FAST, 1, 1, 1 => expire_generic(ExpireKind::Px, "pexpire");
    /// Sets the expiration time of a key to a Unix timestamp.
    "expireat", -3, WRITE | FAST, 1, 1, 1 => expire_generic(ExpireKind::ExAt, "expireat");
    /// Sets the expiration time of a key to a Unix milliseconds timestamp.
    "pexpireat", -3, WRITE | FAST, 1, 1, 1 => expire_generic(ExpireKind::PxAt, "pexpireat");
    /// Returns the expiration time in seconds of a key.
    "ttl", 2, READONLY | FAST, 1, 1, 1 => ttl_generic(false, false);
    /// Returns the expiration time in milliseconds of a key.
    "pttl", 2, READONLY | FAST, 1, 1, 1 => ttl_generic(true, false);
    /// Returns the expiration time of a key as a Unix timestamp.
    "expiretime", 2, READONLY | FAST, 1, 1, 1 => ttl_generic(false, true);
    /// Returns the expiration time of a key as a Unix milliseconds timestamp.
    "pexpiretime", 2, READONLY | FAST, 1, 1, 1 => ttl_generic(true, true);
    /// Removes the expiration time of a key.
    "persist", 2, WRITE | FAST, 1, 1, 1 => persist;
};

fn del(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for key in &args[1..] {
        n += i64::from(ctx.remove_counting(key)?);
    }
    Ok(Frame::Integer(n))
}

fn exists(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    for key in &args[1..] {
        n += i64::from(ctx.exists_in(ctx.conn.db, key)?);
    }
    Ok(Frame::Integer(n))
}

/// WAIT `numreplicas timeout`: there are no replicas, so 0, at once. (Redis, asked for more
/// replicas than it has, answers 0 only when the timeout is over, never for a timeout of 0.)
fn wait(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    int_arg(&args[1])?;
    let ms = int_arg(&args[2])
        .map_err(|_| CmdError::from(Frame::err("timeout is not an integer or out of range")))?;
    if ms < 0 {
        return Err(Frame::err("timeout is negative").into());
    }
    // In a replicated group a write is acknowledged once a majority holds it: the followers
    // that hold everything this node applied so far have the client's writes.
    if let Some(cluster) = &ctx.shared.cluster {
        let applied = cluster.metrics().last_applied.map(|l| l.index);
        let n = cluster
            .followers()
            .iter()
            .filter(|(_, matched)| *matched >= applied)
            .count();
        return Ok(Frame::Integer(n as i64));
    }
    Ok(Frame::Integer(0))
}

fn type_(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    Ok(Frame::Simple(
        ctx.lookup_stored(&args[1])?.map_or("none", |e| e.ty.name()),
    ))
}

/// The literal bytes a pattern's matches must start with (before its first special byte).
fn literal_prefix(pattern: &[u8]) -> &[u8] {
    let end = pattern
        .iter()
        .position(|b| matches!(b, b'*' | b'?' | b'[' | b'\\'))
        .unwrap_or(pattern.len());
    &pattern[..end]
}

/// Keys per step when walking a database (bounds memory, not work).
pub(crate) const STEP: usize = 1024;

fn keys(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let pattern = &args[1];
    let prefix = literal_prefix(pattern);
    let everything = pattern.as_ref() == b"*";
    let db = ctx.conn.db;
    let mut out = Vec::new();
    // Only the keys starting with the pattern's literal prefix can match: start there and
    // stop at the first key past them.
    ctx.walk_keys(db, std::ops::Bound::Included(prefix), STEP, |_, batch| {
        for k in batch {
            if !k.starts_with(prefix) {
                return Ok(false);
            }
            if everything || glob::matches(pattern, &k) {
                out.push(Frame::Bulk(k));
            }
        }
        Ok(true)
    })?;
    Ok(Frame::Array(out))
}

fn scan(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let scan = ScanArgs::parse(args, 1, true)?;
    let after = resume(ctx, &scan)?;
    let batch = ctx.keys_after(ctx.conn.db, after.as_deref(), scan.count)?;
    let next = next_cursor(ctx, &scan, batch.len(), batch.last());
    let mut out = Vec::new();
    for k in batch {
        if !scan.matches(&k) {
            continue;
        }
        if let Some(t) = scan.ty {
            match ctx.lookup_stored(&k)? {
                Some(e) if is(t, e.ty.name()) => {}
                _ => continue,
            }
        }
        out.push(Frame::Bulk(k));
    }
    Ok(scan::reply(next, out))
}

/// RANDOMKEY answers uniformly among the keys of a database of up to this many keys (read
/// whole); in a larger one, uniformly among [`RANDOM_SPREAD`] keys that follow a random point.
const RANDOM_EXACT_UP_TO: usize = 1024;
/// See [`RANDOM_EXACT_UP_TO`]: spreading the pick over several neighbours evens out most of
/// the bias towards keys that follow a large gap in the key space.
const RANDOM_SPREAD: usize = 32;

fn randomkey(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    let db = ctx.conn.db;
    let mut found = ctx.keys_after(db, None, RANDOM_EXACT_UP_TO + 1)?;
    if found.len() > RANDOM_EXACT_UP_TO {
        let seed = random_u64().to_be_bytes();
        let point = &seed[..1 + (seed[7] as usize % 7)];
        found = ctx.keys_after(db, Some(point), RANDOM_SPREAD)?;
        if found.len() < RANDOM_SPREAD {
            // Wrap around to the first keys.
            found.extend(ctx.keys_after(db, None, RANDOM_SPREAD - found.len())?);
        }
    }
    if found.is_empty() {
        return Ok(Frame::Null);
    }
    let i = (random_u64() % found.len() as u64) as usize;
    Ok(Frame::Bulk(found.swap_remove(i)))
}

fn rename_with(ctx: &mut Ctx<'_, '_>, args: &[Bytes], nx: bool) -> CmdResult {
    let (src, dst) = (&args[1], &args[2]);
    let Some(entry) = ctx.lookup_stored(src)? else {
        return Err(Frame::err("no such key").into());
    };
    if src == dst {
        return Ok(if nx { Frame::Integer(0) } else { Frame::OK });
    }
    if nx && ctx.exists_in(ctx.conn.db, dst)? {
        return Ok(Frame::Integer(0));
    }
    let db = ctx.conn.db;
    // Tracking clients hear of the source first, then the destination, as from Redis.
    ctx.invalidate(src);
    ctx.remove_counting_in(db, dst)?;
    ctx.put_raw(db, dst, entry.raw.clone(), entry.expire_at)?;
    ctx.remove(src)?;
    ctx.set_owner(&entry, db, dst)?;
    Ok(if nx { Frame::Integer(1) } else { Frame::OK })
}

fn copy(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let (src, dst) = (&args[1], &args[2]);
    let mut target = ctx.conn.db;
    let mut replace = false;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "replace") {
            replace = true;
        } else if is(&args[i], "db") && i + 1 < args.len() {
            target = db_index(&args[i + 1])?;
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    if src == dst && target == ctx.conn.db {
        return Err(Frame::err("source and destination objects are the same").into());
    }
    let Some(entry) = ctx.lookup_stored(src)? else {
        return Ok(Frame::Integer(0));
    };
    if !replace && ctx.exists_in(target, dst)? {
        return Ok(Frame::Integer(0));
    }
    ctx.remove_counting_in(target, dst)?;
    match Meta::decode(&entry) {
        // A collection gets a copy of every member under a new id; so does a string kept in
        // chunks (its chunks).
        Some(m) => ctx.copy_collection(&m, &entry, target, dst)?,
        None => match Chunked::of(&entry) {
            Some(c) => ctx.copy_chunked(c, &entry, target, dst)?,
            None => ctx.put_raw(target, dst, entry.raw.clone(), entry.expire_at)?,
        },
    }
    Ok(Frame::Integer(1))
}

fn move_(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let target = db_index(&args[2])?;
    if target == ctx.conn.db {
        return Err(Frame::err("source and destination objects are the same").into());
    }
    let Some(entry) = ctx.lookup_stored(key)? else {
        return Ok(Frame::Integer(0));
    };
    if ctx.exists_in(target, key)? {
        return Ok(Frame::Integer(0));
    }
    ctx.put_raw(target, key, entry.raw.clone(), entry.expire_at)?;
    ctx.remove(key)?;
    ctx.set_owner(&entry, target, key)?;
    Ok(Frame::Integer(1))
}

fn expire_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], kind: ExpireKind, cmd: &str) -> CmdResult {
    let key = &args[1];
    let n = int_arg(&args[2])?;
    let invalid =
        || -> CmdError { Frame::err(format!("invalid expire time in '{cmd}' command")).into() };
    let seconds = matches!(kind, ExpireKind::Ex | ExpireKind::ExAt);
    if seconds && !(i64::MIN / 1000..=i64::MAX / 1000).contains(&n) {
        return Err(invalid());
    }
    let mut when = if seconds { n * 1000 } else { n };
    if matches!(kind, ExpireKind::Ex | ExpireKind::Px) {
        when = when.checked_add(ctx.now_ms() as i64).ok_or_else(invalid)?;
    }
    let ([nx, xx, gt, lt], n) = option_flags(&args[3..], ["nx", "xx", "gt", "lt"]);
    if let Some(opt) = args.get(3 + n) {
        return Err(Frame::err(format!(
            "Unsupported option {}",
            String::from_utf8_lossy(opt)
        ))
        .into());
    }
    if nx && (xx || gt || lt) {
        return Err(
            Frame::err("NX and XX, GT or LT options at the same time are not compatible").into(),
        );
    }
    if gt && lt {
        return Err(Frame::err("GT and LT options at the same time are not compatible").into());
    }
    let Some(entry) = ctx.lookup_stored(key)? else {
        return Ok(Frame::Integer(0));
    };
    let current = entry.expire_at.map(|at| at as i64);
    let refuse = (nx && current.is_some())
        || (xx && current.is_none())
        // No expiry counts as an infinite one.
        || (gt && current.is_none_or(|c| when <= c))
        || (lt && current.is_some_and(|c| when >= c));
    if refuse {
        return Ok(Frame::Integer(0));
    }
    let db = ctx.conn.db;
    // A time already past deletes the key (put_raw does it).
    let at = u64::try_from(when).unwrap_or(0);
    ctx.put_raw(db, key, entry.raw.clone(), Some(at))?;
    Ok(Frame::Integer(1))
}

/// TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 for a missing key, -1 for no expiry.
fn ttl_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], ms: bool, absolute: bool) -> CmdResult {
    let Some(entry) = ctx.lookup_stored(&args[1])? else {
        return Ok(Frame::Integer(-2));
    };
    let Some(at) = entry.expire_at else {
        return Ok(Frame::Integer(-1));
    };
    let t = if absolute {
        at as i64
    } else {
        (at as i64 - ctx.now_ms() as i64).max(0)
    };
    Ok(Frame::Integer(if ms { t } else { (t + 500) / 1000 }))
}

fn persist(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    match ctx.lookup_stored(&args[1])? {
        Some(entry) if entry.expire_at.is_some() => {
            let db = ctx.conn.db;
            ctx.put_raw(db, &args[1], entry.raw.clone(), None)?;
            Ok(Frame::Integer(1))
        }
        _ => Ok(Frame::Integer(0)),
    }
}
