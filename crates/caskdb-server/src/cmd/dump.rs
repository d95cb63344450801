//! DUMP and RESTORE: a key's value as Redis's DUMP payload and back, so that a value moves
//! between redis-server and caskdb either way (the payload format is in `rdb`).
//!
//! RESTORE checks as Redis 7.0 does, in its order: the options, then BUSYKEY, the TTL, the
//! payload's version and checksum, the value. The value is decoded whole before anything is
//! written, so a refused payload changes nothing. IDLETIME and FREQ are checked and then
//! ignored (access times are not tracked).

use bytes::Bytes;

use super::args::{int_arg, is};
use super::ctx::Ctx;
use super::lists;
use super::reply::{CmdError, CmdResult, syntax_error};
use super::spec::flags::{READ_TX, WRITE};
use super::spec::{Spec, commands};
use super::zsets;
use crate::frame::Frame;
use crate::keyspace::{Meta, Type, kind};
use crate::rdb::{self, Value};

/// DUMP, RESTORE.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "generic";
    /// Returns a serialized representation of the value stored at a key.
    "dump", 2, READ_TX, 1, 1, 1 => dump;
    /// Creates a key from the serialized representation of a value.
    "restore", -4, WRITE, 1, 1, 1 => restore;
};

fn corrupt() -> CmdError {
    Frame::err("corrupt collection metadata").into()
}

fn dump(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(entry) = ctx.lookup(&args[1])? else {
        return Ok(Frame::Null);
    };
    if entry.ty == Type::String {
        let payload = rdb::dump(&Value::String(entry.payload));
        return Ok(Frame::Bulk(payload.into()));
    }
    let m = Meta::decode(&entry).ok_or_else(corrupt)?;
    let value = match m.ty {
        Type::List => {
            let last = m.len.checked_sub(1).ok_or_else(corrupt)?;
            Value::List(lists::elements(ctx, &m, 0, last)?)
        }
        Type::Set => Value::Set(
            ctx.all_members(&m, kind::MEMBER)?
                .into_iter()
                .map(|(member, _)| member)
                .collect(),
        ),
        Type::Hash => Value::Hash(ctx.all_members(&m, kind::MEMBER)?),
        Type::ZSet => Value::ZSet(zsets::all_scored(ctx, &m)?),
        Type::Stream => {
            let s = ctx.stream(&args[1])?.ok_or_else(corrupt)?;
            Value::Stream(Box::new(ctx.stream_payload(&s)?))
        }
        Type::String => return Err(corrupt()),
    };
    Ok(Frame::Bulk(rdb::dump(&value).into()))
}

/// RESTORE key ttl serialized-value [REPLACE] [ABSTTL] [IDLETIME seconds] [FREQ frequency]
fn restore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let (mut replace, mut absttl) = (false, false);
    // IDLETIME and FREQ exclude each other (an LRU idle time or an LFU counter).
    let (mut idle, mut freq) = (false, false);
    let mut i = 4;
    while i < args.len() {
        let has_value = i + 1 < args.len();
        if is(&args[i], "replace") {
            replace = true;
        } else if is(&args[i], "absttl") {
            absttl = true;
        } else if is(&args[i], "idletime") && has_value && !freq {
            if int_arg(&args[i + 1])? < 0 {
                return Err(Frame::err("Invalid IDLETIME value, must be >= 0").into());
            }
            idle = true;
            i += 1;
        } else if is(&args[i], "freq") && has_value && !idle {
            if !(0..=255).contains(&int_arg(&args[i + 1])?) {
                return Err(Frame::err("Invalid FREQ value, must be >= 0 and <= 255").into());
            }
            freq = true;
            i += 1;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    if !replace && ctx.exists_in(ctx.conn.db, key)? {
        return Err(Frame::Error("BUSYKEY Target key name already exists.".into()).into());
    }
    let ttl = int_arg(&args[2])?;
    if ttl < 0 {
        return Err(Frame::err("Invalid TTL value, must be >= 0").into());
    }
    let value = rdb::restore(&args[3], ctx.shared.config.proto_max_bulk_len()).map_err(|e| {
        Frame::err(match e {
            rdb::Error::Checksum => "DUMP payload version or checksum are wrong",
            rdb::Error::Format => "Bad data format",
        })
    })?;
    // A TTL of 0 is no expiry. Redis adds a relative one to the time in a signed 64-bit
    // integer: past its range the sum wraps into the past, and the key is not created.
    let now = ctx.now_ms();
    let expire_at = match (ttl, absttl) {
        (0, _) => None,
        (t, true) => Some(t as u64),
        (t, false) => Some((now as i64).checked_add(t).map_or(0, |at| at.max(0) as u64)),
    };
    if replace {
        ctx.remove_counting(key)?;
    }
    // Already expired: Redis replies OK and creates nothing (the REPLACE deleted the old key).
    if expire_at.is_some_and(|at| at <= now) {
        return Ok(Frame::OK);
    }
    store(ctx, key, value, expire_at)?;
    Ok(Frame::OK)
}

/// Creates `key` (which does not exist) holding `value`, expiring at `expire_at`.
fn store(
    ctx: &mut Ctx<'_, '_>,
    key: &[u8],
    value: Value,
    expire_at: Option<u64>,
) -> Result<(), CmdError> {
    let (ty, len) = match &value {
        Value::String(s) => return ctx.set_string(key, s, expire_at),
        Value::List(items) => (Type::List, items.len()),
        Value::Set(items) => (Type::Set, items.len()),
        Value::Hash(pairs) => (Type::Hash, pairs.len()),
        Value::ZSet(items) => (Type::ZSet, items.len()),
        Value::Stream(_) => (Type::Stream, 0),
    };
    if let Value::Stream(s) = value {
        return ctx.restore_stream(key, *s, expire_at);
    }
    let mut m = ctx.new_coll(ty);
    let before = m.clone();
    match value {
        Value::String(_) | Value::Stream(_) => {}
        Value::List(items) => {
            for (i, item) in items.into_iter().enumerate() {
                ctx.put_member(&m, kind::MEMBER, &lists::at(&m, i as u64), item)?;
            }
        }
        Value::Set(items) => {
            for member in items {
                ctx.put_member(&m, kind::MEMBER, &member, Bytes::new())?;
            }
        }
        Value::Hash(pairs) => {
            for (field, v) in pairs {
                ctx.put_member(&m, kind::MEMBER, &field, v)?;
            }
        }
        Value::ZSet(items) => {
            for (member, score) in items {
                zsets::set_score(ctx, &m, &member, None, score)?;
            }
        }
    }
    m.len = len as u64;
    m.expire_at = expire_at;
    ctx.save(key, &m, &before)
}
