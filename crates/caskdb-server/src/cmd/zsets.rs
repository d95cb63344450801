//! Sorted-set commands on members (the range commands are in `zset_ranges.rs`). A sorted set is
//! a metadata record plus, per member, two engine records: member → score, and a score-index
//! entry `[score][member]` whose key order is Redis's (score, member) order. ZRANK counts
//! (O(rank)).

use std::ops::Bound;

use bytes::Bytes;

use super::args::{option_flags, parse_float, positive_count};
use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult, syntax_error};
use super::scan;
use super::spec::flags::{FAST, READ_TX, WRITE};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::keyspace::{Meta, Type, kind, score_bits, score_from_bits};

/// The sorted-set commands on members.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "sorted-set";
    /// Adds one or more members to a sorted set, or updates their scores. Creates the key if it
    /// doesn't exist.
    "zadd", -4, WRITE | FAST, 1, 1, 1 => zadd;
    /// Removes one or more members from a sorted set. Deletes the sorted set if all members were
    /// removed.
    "zrem", -3, WRITE | FAST, 1, 1, 1 => zrem;
    /// Returns the score of a member in a sorted set.
    "zscore", 3, READ_TX | FAST, 1, 1, 1 => zscore;
    /// Returns the score of one or more members in a sorted set.
    "zmscore", -3, READ_TX | FAST, 1, 1, 1 => zmscore;
    /// Increments the score of a member in a sorted set.
    "zincrby", 4, WRITE | FAST, 1, 1, 1 => zincrby;
    /// Returns the number of members in a sorted set.
    "zcard", 2, READ_TX | FAST, 1, 1, 1 => Ctx::coll_len(Type::ZSet);
    /// Returns the index of a member in a sorted set ordered by ascending scores.
    "zrank", 3, READ_TX | FAST, 1, 1, 1 => rank_generic(false);
    /// Returns the index of a member in a sorted set ordered by descending scores.
    "zrevrank", 3, READ_TX | FAST, 1, 1, 1 => rank_generic(true);
    /// Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted
    /// set if the last member was popped.
    "zpopmin", -2, WRITE | FAST, 1, 1, 1 => pop_generic(false);
    /// Returns the highest-scoring members from a sorted set after removing them. Deletes the
    /// sorted set if the last member was popped.
    "zpopmax", -2, WRITE | FAST, 1, 1, 1 => pop_generic(true);
    /// Iterates over members and scores of a sorted set.
    "zscan", -3, READ_TX, 1, 1, 1 => zscan;
};

pub(super) fn score_frame(v: f64) -> Frame {
    Frame::Double(v)
}

fn decode_score(v: &[u8]) -> Result<f64, CmdError> {
    let bytes: [u8; 8] = v
        .try_into()
        .map_err(|_| Frame::err("corrupt sorted set: bad score"))?;
    Ok(f64::from_bits(u64::from_be_bytes(bytes)))
}

/// The score of `member` in `m`.
pub(super) fn score_of(
    ctx: &mut Ctx<'_, '_>,
    m: &Meta,
    member: &[u8],
) -> Result<Option<f64>, CmdError> {
    match ctx.member(m, kind::MEMBER, member)? {
        Some(v) => Ok(Some(decode_score(&v)?)),
        None => Ok(None),
    }
}

fn index_key(score: f64, member: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + member.len());
    k.extend_from_slice(&score_bits(score).to_be_bytes());
    k.extend_from_slice(member);
    k
}

/// Sets `member`'s score (replacing its index entry if it had one).
pub(super) fn set_score(
    ctx: &mut Ctx<'_, '_>,
    m: &Meta,
    member: &[u8],
    old: Option<f64>,
    score: f64,
) -> Result<(), CmdError> {
    if let Some(o) = old {
        // (The entry of the score just read.)
        ctx.del_live_member(m, kind::SCORE, &index_key(o, member))?;
    }
    // -0 is stored as 0, as Redis does.
    let score = if score == 0.0 { 0.0 } else { score };
    ctx.put_member(
        m,
        kind::MEMBER,
        member,
        Bytes::copy_from_slice(&score.to_bits().to_be_bytes()),
    )?;
    ctx.put_member(m, kind::SCORE, &index_key(score, member), Bytes::new())
}

/// Deletes `member` (of score `score`) from `m`.
pub(super) fn remove(
    ctx: &mut Ctx<'_, '_>,
    m: &mut Meta,
    member: &[u8],
    score: f64,
) -> Result<(), CmdError> {
    // (Every caller read the member's score first: both records are there.)
    ctx.del_live_member(m, kind::MEMBER, member)?;
    ctx.del_live_member(m, kind::SCORE, &index_key(score, member))?;
    m.len -= 1;
    Ok(())
}

/// Replaces whatever is under `key` with a sorted set of `items` (distinct members), as the
/// *STORE commands do: an empty result deletes the key, a non-empty one overwrites it (so an
/// existing key gets no `new` event). Returns the size stored.
pub(super) fn store_zset(
    ctx: &mut Ctx<'_, '_>,
    key: &[u8],
    items: Vec<(Bytes, f64)>,
) -> Result<u64, CmdError> {
    if items.is_empty() {
        ctx.remove_counting(key)?;
        return Ok(0);
    }
    // The collection overwritten (if any) leaves its members to the sweeper.
    ctx.overwriting(key)?;
    let mut m = ctx.new_coll(Type::ZSet);
    let before = m.clone();
    for (member, score) in &items {
        set_score(ctx, &m, member, None, *score)?;
        m.len += 1;
    }
    ctx.save(key, &m, &before)?;
    Ok(m.len)
}

/// Every (member, score) of `m`, in score order.
pub(super) fn all_scored(ctx: &mut Ctx<'_, '_>, m: &Meta) -> Result<Vec<(Bytes, f64)>, CmdError> {
    Ok(ctx
        .all_members(m, kind::SCORE)?
        .iter()
        .map(|(rest, _)| split_entry(rest))
        .collect())
}

/// Splits a score-index entry into (member, score).
pub(super) fn split_entry(rest: &Bytes) -> (Bytes, f64) {
    let bits = u64::from_be_bytes(rest[..8].try_into().unwrap_or([0; 8]));
    (rest.slice(8..), score_from_bits(bits))
}

/// A score argument as Redis reads it (`strtod` with range checks): out-of-range values such as
/// `1e400` (overflow) or `1e-400` (underflow to 0) are refused, `inf` is fine.
fn parse_score_arg(arg: &[u8]) -> Result<f64, CmdError> {
    parse_double(arg, "value is not a valid float")
}

/// A float argument as Redis's `getDoubleFromObject` reads it (see [`parse_score_arg`]);
/// refused with `ERR <msg>`.
pub(super) fn parse_double(arg: &[u8], msg: &str) -> Result<f64, CmdError> {
    let bad = || CmdError::from(Frame::err(msg));
    let v = parse_float(arg).ok_or_else(bad)?;
    let text = std::str::from_utf8(arg).unwrap_or("").to_ascii_lowercase();
    let overflow = v.is_infinite() && !text.contains("inf");
    let underflow = v == 0.0 && text.split(['e', 'p']).next().is_some_and(has_nonzero_digit);
    if overflow || underflow {
        return Err(bad());
    }
    Ok(v)
}

/// Whether the mantissa text has a non-zero digit (hex prefix aside).
fn has_nonzero_digit(mantissa: &str) -> bool {
    let m = mantissa.trim_start_matches(['+', '-']);
    let m = m.strip_prefix("0x").unwrap_or(m);
    m.bytes().any(|b| b.is_ascii_alphanumeric() && b != b'0')
}

pub(super) fn zadd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let ([nx, xx, gt, lt, ch, incr], n) =
        option_flags(&args[2..], ["nx", "xx", "gt", "lt", "ch", "incr"]);
    let pairs = &args[2 + n..];
    if pairs.is_empty() || pairs.len() % 2 == 1 {
        return Err(syntax_error());
    }
    if nx && xx {
        return Err(Frame::err("XX and NX options at the same time are not compatible").into());
    }
    if (nx && (gt || lt)) || (gt && lt) {
        return Err(
            Frame::err("GT, LT, and/or NX options at the same time are not compatible").into(),
        );
    }
    if incr && pairs.len() > 2 {
        return Err(Frame::err("INCR option supports a single increment-element pair").into());
    }
    let mut scores = Vec::with_capacity(pairs.len() / 2);
    for p in pairs.chunks(2) {
        scores.push(parse_score_arg(&p[0])?);
    }
    let key = &args[1];
    let before = match ctx.coll(key, Type::ZSet)? {
        Some(m) => m,
        None if xx => {
            return Ok(if incr { Frame::Null } else { Frame::Integer(0) });
        }
        None => ctx.new_coll(Type::ZSet),
    };
    let mut m = before.clone();
    let (mut added, mut updated) = (0, 0);
    let mut last: Option<f64> = None;
    for (p, &score) in pairs.chunks(2).zip(&scores) {
        let member = &p[1];
        match score_of(ctx, &m, member)? {
            Some(old) => {
                if nx {
                    continue;
                }
                let new = if incr { old + score } else { score };
                if new.is_nan() {
                    return Err(Frame::err("resulting score is not a number (NaN)").into());
                }
                if (gt && new <= old) || (lt && new >= old) {
                    continue;
                }
                last = Some(new);
                if new != old {
                    set_score(ctx, &m, member, Some(old), new)?;
                    updated += 1;
                }
            }
            None => {
                if xx {
                    continue;
                }
                set_score(ctx, &m, member, None, score)?;
                m.len += 1;
                added += 1;
                last = Some(score);
            }
        }
    }
    ctx.save(key, &m, &before)?;
    if incr {
        return Ok(last.map_or(Frame::Null, score_frame));
    }
    Ok(Frame::Integer(if ch { added + updated } else { added }))
}

fn zincrby(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let by = parse_score_arg(&args[2])?;
    let key = &args[1];
    let before = ctx.coll_or_new(key, Type::ZSet)?;
    let mut m = before.clone();
    let member = &args[3];
    let old = score_of(ctx, &m, member)?;
    let new = old.unwrap_or(0.0) + by;
    if new.is_nan() {
        return Err(Frame::err("resulting score is not a number (NaN)").into());
    }
    set_score(ctx, &m, member, old, new)?;
    if old.is_none() {
        m.len += 1;
    }
    ctx.save(key, &m, &before)?;
    Ok(score_frame(new))
}

fn zrem(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let Some(before) = ctx.coll(key, Type::ZSet)? else {
        return Ok(Frame::Integer(0));
    };
    let mut m = before.clone();
    let mut removed = 0;
    for member in &args[2..] {
        if let Some(s) = score_of(ctx, &m, member)? {
            remove(ctx, &mut m, member, s)?;
            removed += 1;
        }
    }
    ctx.save(key, &m, &before)?;
    Ok(Frame::Integer(removed))
}

fn zscore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(m) = ctx.coll(&args[1], Type::ZSet)? else {
        return Ok(Frame::Null);
    };
    Ok(score_of(ctx, &m, &args[2])?.map_or(Frame::Null, score_frame))
}

fn zmscore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let found = scores(ctx, &args[1], &args[2..])?;
    Ok(Frame::Array(
        found
            .into_iter()
            .map(|s| s.map_or(Frame::Null, score_frame))
            .collect(),
    ))
}

/// The score of each of `members` in zset `key` (`None` for a missing member, or all of
/// them for a missing key).
pub(super) fn scores(
    ctx: &mut Ctx<'_, '_>,
    key: &[u8],
    members: &[Bytes],
) -> Result<Vec<Option<f64>>, CmdError> {
    let m = ctx.coll(key, Type::ZSet)?;
    let mut out = Vec::with_capacity(members.len());
    for member in members {
        out.push(match &m {
            Some(m) => score_of(ctx, m, member)?,
            None => None,
        });
    }
    Ok(out)
}

/// The reply of a range or pop: members, with their scores as (member, score) pairs if
/// `withscores`.
pub(super) fn scored_reply(items: Vec<(Bytes, f64)>, withscores: bool) -> Frame {
    let items = items.into_iter();
    if withscores {
        Frame::Pairs(
            items
                .map(|(member, score)| (Frame::Bulk(member), score_frame(score)))
                .collect(),
        )
    } else {
        Frame::Array(items.map(|(member, _)| Frame::Bulk(member)).collect())
    }
}

fn rank_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], rev: bool) -> CmdResult {
    let Some(m) = ctx.coll(&args[1], Type::ZSet)? else {
        return Ok(Frame::Null);
    };
    let member = &args[2];
    let Some(score) = score_of(ctx, &m, member)? else {
        return Ok(Frame::Null);
    };
    let key = index_key(score, member);
    let below = ctx
        .members(
            &m,
            kind::SCORE,
            Bound::Unbounded,
            Bound::Excluded(&key),
            usize::MAX,
            false,
        )?
        .len() as u64;
    Ok(Frame::Integer(
        if rev { m.len - 1 - below } else { below } as i64
    ))
}

fn pop_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], max: bool) -> CmdResult {
    let count = match args.len() {
        2 => 1,
        3 => positive_count(&args[2])?,
        _ => return Err(syntax_error()),
    };
    let Some(items) = pop_items(ctx, &args[1], count, max)? else {
        return Ok(Frame::Array(Vec::new()));
    };
    if args.len() == 2 {
        // Without a count, one flat (member, score) array in both protocols.
        return Ok(Frame::Array(
            items
                .into_iter()
                .flat_map(|(member, score)| [Frame::Bulk(member), score_frame(score)])
                .collect(),
        ));
    }
    Ok(scored_reply(items, true))
}

/// Pops up to `count` of the lowest (highest if `max`) members of the sorted set under `key`;
/// `None` if there is none.
pub(super) fn pop_items(
    ctx: &mut Ctx<'_, '_>,
    key: &Bytes,
    count: u64,
    max: bool,
) -> Result<Option<Vec<(Bytes, f64)>>, CmdError> {
    let Some(before) = ctx.coll(key, Type::ZSet)? else {
        return Ok(None);
    };
    let n = count.min(before.len) as usize;
    let entries = ctx.members(
        &before,
        kind::SCORE,
        Bound::Unbounded,
        Bound::Unbounded,
        n,
        max,
    )?;
    let mut m = before.clone();
    let mut items = Vec::with_capacity(entries.len());
    for (rest, _) in entries {
        let (member, score) = split_entry(&rest);
        remove(ctx, &mut m, &member, score)?;
        items.push((member, score));
    }
    ctx.save(key, &m, &before)?;
    Ok(Some(items))
}

fn zscan(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    scan::members(ctx, args, Type::ZSet, |member, value, out| {
        out.push(Frame::Bulk(member.clone()));
        // ZSCAN's scores are strings in RESP3 too.
        let score = decode_score(value).unwrap_or(f64::NAN);
        out.push(Frame::bulk(crate::frame::format_double(score)));
    })
}

#[cfg(test)]
mod tests {
    use crate::frame::format_double as format_score;

    #[test]
    fn scores_format_like_redis_7_0() {
        for (v, s) in [
            (1.1, "1.1000000000000001"),
            (3.0, "3"),
            (0.1, "0.10000000000000001"),
            (1e20, "1e+20"),
            (123456789.123, "123456789.123"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (0.0, "0"),
            (-2.5, "-2.5"),
            (1e-5, "1.0000000000000001e-05"),
            (0.0001, "0.0001"),
            (1e16, "10000000000000000"),
            (1e17, "1e+17"),
        ] {
            assert_eq!(format_score(v), s, "{v}");
        }
    }
}
