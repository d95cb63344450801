//! Hash commands. A hash is a metadata record plus one engine record per field (`keyspace.rs`).

use std::ops::Bound;

use bytes::Bytes;

use super::args::{check_picks, int_arg, is, parse_float, random_count, signed_count};
use super::ctx::{Ctx, STREAM_ABOVE};
use super::reply::{CmdError, CmdResult, syntax_error, wrong_arity};
use super::scan;
use super::spec::flags::{FAST, READ_TX, WRITE};
use super::spec::{Spec, commands};
use super::strings::format_float;
use crate::frame::Frame;
use crate::keyspace::{Meta, Type, kind};
use crate::parse::parse_i64;
use crate::state::random_picks;

/// The hash commands.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "hash";
    /// Creates or modifies the value of a field in a hash.
    "hset", -4, WRITE | FAST, 1, 1, 1 => hset;
    /// Sets the values of multiple fields.
    "hmset", -4, WRITE | FAST, 1, 1, 1 => hmset;
    /// Sets the value of a field in a hash only when the field doesn't exist.
    "hsetnx", 4, WRITE | FAST, 1, 1, 1 => hsetnx;
    /// Returns the value of a field in a hash.
    "hget", 3, READ_TX | FAST, 1, 1, 1 => hget;
    /// Returns the values of all fields in a hash.
    "hmget", -3, READ_TX | FAST, 1, 1, 1 => hmget;
    /// Deletes one or more fields and their values from a hash. Deletes the hash if no fields
    /// remain.
    "hdel", -3, WRITE | FAST, 1, 1, 1 => Ctx::coll_remove(Type::Hash);
    /// Returns the number of fields in a hash.
    "hlen", 2, READ_TX | FAST, 1, 1, 1 => Ctx::coll_len(Type::Hash);
    /// Determines whether a field exists in a hash.
    "hexists", 3, READ_TX | FAST, 1, 1, 1 => Ctx::coll_contains(Type::Hash);
    /// Returns all fields and values in a hash.
    "hgetall", 2, READ_TX, 1, 1, 1 => hgetall;
    /// Returns all fields in a hash.
    "hkeys", 2, READ_TX, 1, 1, 1 => keys_or_values(false);
    /// Returns all values in a hash.
    "hvals", 2, READ_TX, 1, 1, 1 => keys_or_values(true);
    /// Increments the integer value of a field in a hash by a number. Uses 0 as initial value if
    /// the field doesn't exist.
    "hincrby", 4, WRITE | FAST, 1, 1, 1 => hincrby;
    /// Increments the floating point value of a field by a number. Uses 0 as initial value if the
    /// field doesn't exist.
    "hincrbyfloat", 4, WRITE | FAST, 1, 1, 1 => hincrbyfloat;
    /// Returns the length of the value of a field.
    "hstrlen", 3, READ_TX | FAST, 1, 1, 1 => hstrlen;
    /// Returns one or more random fields from a hash.
    "hrandfield", -2, READ_TX, 1, 1, 1 => hrandfield;
    /// Iterates over fields and values of a hash.
    "hscan", -3, READ_TX, 1, 1, 1 => hscan;
};

/// Sets the field-value pairs of `args[2..]`; returns how many fields are new.
fn set_pairs(ctx: &mut Ctx<'_, '_>, args: &[Bytes], name: &str) -> Result<i64, CmdError> {
    if args.len() % 2 == 1 {
        return Err(wrong_arity(name).into());
    }
    let key = &args[1];
    let before = ctx.coll_or_new(key, Type::Hash)?;
    let mut m = before.clone();
    let mut added = 0;
    for pair in args[2..].chunks(2) {
        if !ctx.has_member(&m, kind::MEMBER, &pair[0])? {
            added += 1;
            m.len += 1;
        }
        ctx.put_member(&m, kind::MEMBER, &pair[0], pair[1].clone())?;
    }
    ctx.save(key, &m, &before)?;
    Ok(added)
}

fn hset(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    Ok(Frame::Integer(set_pairs(ctx, args, "hset")?))
}

fn hmset(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    set_pairs(ctx, args, "hmset")?;
    Ok(Frame::OK)
}

fn hsetnx(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let before = ctx.coll_or_new(key, Type::Hash)?;
    if ctx.has_member(&before, kind::MEMBER, &args[2])? {
        return Ok(Frame::Integer(0));
    }
    let mut m = before.clone();
    m.len += 1;
    ctx.put_member(&m, kind::MEMBER, &args[2], args[3].clone())?;
    ctx.save(key, &m, &before)?;
    Ok(Frame::Integer(1))
}

fn hget(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(m) = ctx.coll(&args[1], Type::Hash)? else {
        return Ok(Frame::Null);
    };
    ctx.member_reply(&m, kind::MEMBER, &args[2])
}

fn hmget(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let m = ctx.coll(&args[1], Type::Hash)?;
    let mut out = Vec::with_capacity(args.len() - 2);
    for field in &args[2..] {
        out.push(match &m {
            Some(m) => ctx.member_reply(m, kind::MEMBER, field)?,
            None => Frame::Null,
        });
    }
    Ok(Frame::Array(out))
}

/// Every (field, value) of the hash under `key`; empty if there is none.
fn pairs(ctx: &mut Ctx<'_, '_>, key: &[u8]) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
    match ctx.coll(key, Type::Hash)? {
        Some(m) => ctx.all_members(&m, kind::MEMBER),
        None => Ok(Vec::new()),
    }
}

/// Every field of hash `key` with its value as a reply (large ones left in their files).
fn pair_replies(ctx: &mut Ctx<'_, '_>, key: &[u8]) -> Result<Vec<(Bytes, Frame)>, CmdError> {
    let Some(m) = ctx.coll(key, Type::Hash)? else {
        return Ok(Vec::new());
    };
    let all = ctx.member_refs(
        &m,
        kind::MEMBER,
        Bound::Unbounded,
        Bound::Unbounded,
        usize::MAX,
        false,
        STREAM_ABOVE,
    )?;
    Ok(all.into_iter().map(|(f, v)| (f, Frame::value(v))).collect())
}

fn hgetall(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let all = pair_replies(ctx, &args[1])?;
    Ok(Frame::Map(
        all.into_iter().map(|(f, v)| (Frame::Bulk(f), v)).collect(),
    ))
}

/// HKEYS, and HVALS (`values`).
fn keys_or_values(ctx: &mut Ctx<'_, '_>, args: &[Bytes], values: bool) -> CmdResult {
    if values {
        let all = pair_replies(ctx, &args[1])?;
        return Ok(Frame::Array(all.into_iter().map(|(_, v)| v).collect()));
    }
    let all = pairs(ctx, &args[1])?;
    Ok(Frame::Array(
        all.into_iter().map(|(f, _)| Frame::Bulk(f)).collect(),
    ))
}

/// Reads field `args[2]` of hash `args[1]` for an increment: (metadata before, current value).
fn field_for_update(
    ctx: &mut Ctx<'_, '_>,
    args: &[Bytes],
) -> Result<(Meta, Option<Bytes>), CmdError> {
    let before = ctx.coll_or_new(&args[1], Type::Hash)?;
    let current = ctx.member(&before, kind::MEMBER, &args[2])?;
    Ok((before, current))
}

fn store_field(
    ctx: &mut Ctx<'_, '_>,
    args: &[Bytes],
    before: &Meta,
    existed: bool,
    value: Bytes,
) -> Result<(), CmdError> {
    let mut m = before.clone();
    if !existed {
        m.len += 1;
    }
    ctx.put_member(&m, kind::MEMBER, &args[2], value)?;
    ctx.save(&args[1], &m, before)
}

fn hincrby(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let by = int_arg(&args[3])?;
    let (before, current) = field_for_update(ctx, args)?;
    let n = match &current {
        Some(v) => parse_i64(v).ok_or_else(|| Frame::err("hash value is not an integer"))?,
        None => 0,
    };
    let n = n
        .checked_add(by)
        .ok_or_else(|| Frame::err("increment or decrement would overflow"))?;
    store_field(
        ctx,
        args,
        &before,
        current.is_some(),
        Bytes::from(n.to_string()),
    )?;
    Ok(Frame::Integer(n))
}

fn hincrbyfloat(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let by = parse_float(&args[3]).ok_or_else(|| Frame::err("value is not a valid float"))?;
    if by.is_infinite() {
        return Err(Frame::err("value is NaN or Infinity").into());
    }
    let (before, current) = field_for_update(ctx, args)?;
    let n = match &current {
        Some(v) => parse_float(v).ok_or_else(|| Frame::err("hash value is not a float"))?,
        None => 0.0,
    };
    let n = n + by;
    if !n.is_finite() {
        return Err(Frame::err("increment would produce NaN or Infinity").into());
    }
    let text = Bytes::from(format_float(n));
    store_field(ctx, args, &before, current.is_some(), text.clone())?;
    Ok(Frame::Bulk(text))
}

fn hstrlen(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(m) = ctx.coll(&args[1], Type::Hash)? else {
        return Ok(Frame::Integer(0));
    };
    let len = ctx
        .member(&m, kind::MEMBER, &args[2])?
        .map_or(0, |v| v.len());
    Ok(Frame::Integer(len as i64))
}

fn hrandfield(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let (count, with_values) = match args.len() {
        2 => (None, false),
        3 => (Some(random_count(&args[2])?), false),
        4 if is(&args[3], "withvalues") => {
            let n = signed_count(&args[2])?;
            // Redis refuses counts whose reply (field and value) would pass LONG_MAX.
            if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
                return Err(Frame::err("value is out of range").into());
            }
            (Some(check_picks(n)?), true)
        }
        _ => return Err(syntax_error()),
    };
    let all = pairs(ctx, &args[1])?;
    let Some(count) = count else {
        return Ok(random_picks(&all, 1)
            .pop()
            .map_or(Frame::Null, |(f, _)| Frame::Bulk(f)));
    };
    let picks = random_picks(&all, count).into_iter();
    Ok(if with_values {
        Frame::Pairs(
            picks
                .map(|(f, v)| (Frame::Bulk(f), Frame::Bulk(v)))
                .collect(),
        )
    } else {
        Frame::Array(picks.map(|(f, _)| Frame::Bulk(f)).collect())
    })
}

fn hscan(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    scan::members(ctx, args, Type::Hash, |f, v, out| {
        out.push(Frame::Bulk(f.clone()));
        out.push(Frame::Bulk(v.clone()));
    })
}
