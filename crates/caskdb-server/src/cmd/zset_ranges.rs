//! Sorted-set range commands: ZRANGE and its variants, ZRANGESTORE, ZCOUNT, ZLEXCOUNT, ZREMRANGEBY*. Score
//! ranges seek the score index (O(log n + m)); rank ranges walk it from the nearer end; lex
//! ranges walk it as Redis does (see `lex_select`). The layout is described in `zsets.rs`.

use std::ops::Bound;

use bytes::Bytes;

use super::args::{int_arg, is, parse_float};
use super::ctx::Ctx;
use super::lists::clamp_range;
use super::reply::{CmdError, CmdResult, syntax_error};
use super::spec::flags::{FAST, READ_TX, WRITE};
use super::spec::{Spec, commands};
use super::zsets::{remove, scored_reply, split_entry, store_zset};
use crate::frame::Frame;
use crate::keyspace::{Meta, Type, kind, score_bits};

/// The sorted-set range commands.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "sorted-set";
    /// Returns the count of members in a sorted set that have scores within a range.
    "zcount", 4, READ_TX | FAST, 1, 1, 1 => zcount;
    /// Returns the number of members in a sorted set within a lexicographical range.
    "zlexcount", 4, READ_TX | FAST, 1, 1, 1 => zlexcount;
    /// Returns members in a sorted set within a range of indexes.
    "zrange", -4, READ_TX, 1, 1, 1 => range_generic(Kind::Rank, false, true);
    /// Returns members in a sorted set within a range of indexes in reverse order.
    "zrevrange", -4, READ_TX, 1, 1, 1 => range_generic(Kind::Rank, true, false);
    /// Returns members in a sorted set within a range of scores.
    "zrangebyscore", -4, READ_TX, 1, 1, 1 => range_generic(Kind::Score, false, false);
    /// Returns members in a sorted set within a range of scores in reverse order.
    "zrevrangebyscore", -4, READ_TX, 1, 1, 1 => range_generic(Kind::Score, true, false);
    /// Returns members in a sorted set within a lexicographical range.
    "zrangebylex", -4, READ_TX, 1, 1, 1 => range_generic(Kind::Lex, false, false);
    /// Returns members in a sorted set within a lexicographical range in reverse order.
    "zrevrangebylex", -4, READ_TX, 1, 1, 1 => range_generic(Kind::Lex, true, false);
    /// Stores a range of members from sorted set in a key.
    "zrangestore", -5, WRITE, 1, 2, 1 => zrangestore;
    /// Removes members in a sorted set within a range of indexes. Deletes the sorted set if all
    /// members were removed.
    "zremrangebyrank", 4, WRITE, 1, 1, 1 => zremrangebyrank;
    /// Removes members in a sorted set within a range of scores. Deletes the sorted set if all
    /// members were removed.
    "zremrangebyscore", 4, WRITE, 1, 1, 1 => zremrangebyscore;
    /// Removes members in a sorted set within a lexicographical range. Deletes the sorted set if
    /// all members were removed.
    "zremrangebylex", 4, WRITE, 1, 1, 1 => zremrangebylex;
};

/// A score range: bounds and exclusivity.
#[derive(Clone, Copy)]
struct ScoreRange {
    min: f64,
    min_ex: bool,
    max: f64,
    max_ex: bool,
}

fn parse_score_bound(arg: &[u8]) -> Result<(f64, bool), CmdError> {
    let bad = || CmdError::from(Frame::err("min or max is not a float"));
    let (text, exclusive) = match arg.split_first() {
        Some((b'(', rest)) => (rest, true),
        _ => (arg, false),
    };
    Ok((range_float(text).ok_or_else(bad)?, exclusive))
}

/// A range bound as Redis's `zslParseRange` reads it with `strtod`: leading blanks are
/// skipped, and an empty string is 0 (a quirk kept for compatibility).
fn range_float(text: &[u8]) -> Option<f64> {
    if text.is_empty() {
        return Some(0.0);
    }
    let start = text
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))?;
    parse_float(&text[start..])
}

fn parse_score_range(min: &[u8], max: &[u8]) -> Result<ScoreRange, CmdError> {
    let (min, min_ex) = parse_score_bound(min)?;
    let (max, max_ex) = parse_score_bound(max)?;
    Ok(ScoreRange {
        min,
        min_ex,
        max,
        max_ex,
    })
}

impl ScoreRange {
    fn is_empty(&self) -> bool {
        self.min > self.max || (self.min == self.max && (self.min_ex || self.max_ex))
    }

    /// Bounds on score-index entries.
    fn bounds(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let lo = score_bits(self.min);
        let hi = score_bits(self.max);
        // An entry is [score][member]: "after every entry of score s" is the prefix s + 1.
        let lo = if self.min_ex {
            lo.saturating_add(1)
        } else {
            lo
        };
        let hi = if self.max_ex {
            hi
        } else {
            hi.saturating_add(1)
        };
        (
            Bound::Included(lo.to_be_bytes().to_vec()),
            Bound::Excluded(hi.to_be_bytes().to_vec()),
        )
    }
}

/// A lexicographic bound: `-`, `+`, `[x` or `(x`.
#[derive(Clone)]
enum Lex {
    Min,
    Max,
    In(Bytes),
    Ex(Bytes),
}

fn parse_lex(arg: &Bytes) -> Result<Lex, CmdError> {
    match arg.first() {
        Some(b'-') if arg.len() == 1 => Ok(Lex::Min),
        Some(b'+') if arg.len() == 1 => Ok(Lex::Max),
        Some(b'[') => Ok(Lex::In(arg.slice(1..))),
        Some(b'(') => Ok(Lex::Ex(arg.slice(1..))),
        _ => Err(Frame::err("min or max not valid string range item").into()),
    }
}

/// Whether `member` is at or above lower bound `b`.
fn gte_min(member: &[u8], b: &Lex) -> bool {
    match b {
        Lex::Min => true,
        Lex::Max => false,
        Lex::In(x) => member >= x.as_ref(),
        Lex::Ex(x) => member > x.as_ref(),
    }
}

/// Whether `member` is at or below upper bound `b`.
fn lte_max(member: &[u8], b: &Lex) -> bool {
    match b {
        Lex::Min => false,
        Lex::Max => true,
        Lex::In(x) => member <= x.as_ref(),
        Lex::Ex(x) => member < x.as_ref(),
    }
}

/// What a range selects.
enum By {
    Rank(i64, i64),
    Score(ScoreRange),
    Lex(Lex, Lex),
}

/// The (member, score) pairs `by` selects in `m`, ascending or (`rev`) descending, after
/// skipping `offset` and keeping at most `count` (negative: all).
fn select(
    ctx: &mut Ctx<'_, '_>,
    m: &Meta,
    by: &By,
    rev: bool,
    offset: i64,
    count: i64,
) -> Result<Vec<(Bytes, f64)>, CmdError> {
    if offset < 0 || count == 0 {
        return Ok(Vec::new());
    }
    let offset = offset as usize;
    let take = if count < 0 {
        usize::MAX
    } else {
        count as usize
    };
    let limit = offset.saturating_add(take);
    let entries = match by {
        By::Rank(start, stop) => {
            let Some((first, last)) = clamp_range(*start, *stop, m.len) else {
                return Ok(Vec::new());
            };
            // Positions in ascending order, walked from the nearer end.
            let (first, last) = if rev {
                (m.len - 1 - last, m.len - 1 - first)
            } else {
                (first, last)
            };
            let n = (last - first + 1) as usize;
            let mut v = if first <= m.len - 1 - last {
                let all = ctx.members(
                    m,
                    kind::SCORE,
                    Bound::Unbounded,
                    Bound::Unbounded,
                    last as usize + 1,
                    false,
                )?;
                all.into_iter().skip(first as usize).collect::<Vec<_>>()
            } else {
                let mut all = ctx.members(
                    m,
                    kind::SCORE,
                    Bound::Unbounded,
                    Bound::Unbounded,
                    (m.len - first) as usize,
                    true,
                )?;
                all.truncate((m.len - first) as usize);
                let mut all: Vec<_> = all.into_iter().skip((m.len - 1 - last) as usize).collect();
                all.reverse();
                all
            };
            v.truncate(n);
            if rev {
                v.reverse();
            }
            v.into_iter()
                .skip(offset)
                .take(take)
                .map(|(rest, _)| split_entry(&rest))
                .collect()
        }
        By::Score(r) => {
            if r.is_empty() {
                return Ok(Vec::new());
            }
            let (lo, hi) = r.bounds();
            ctx.members(m, kind::SCORE, bound_ref(&lo), bound_ref(&hi), limit, rev)?
                .into_iter()
                .skip(offset)
                .map(|(rest, _)| split_entry(&rest))
                .collect()
        }
        By::Lex(min, max) => lex_select(ctx, m, min, max, rev)?
            .into_iter()
            .skip(offset)
            .take(take)
            .collect(),
    };
    Ok(entries)
}

fn bound_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(v) => Bound::Included(v),
        Bound::Excluded(v) => Bound::Excluded(v),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// A lex range as Redis walks it: from the first member (in the walk's direction) inside the
/// near bound, while members stay inside the far bound. With equal scores (the documented use)
/// that is every member in the range, found by a seek.
fn lex_select(
    ctx: &mut Ctx<'_, '_>,
    m: &Meta,
    min: &Lex,
    max: &Lex,
    rev: bool,
) -> Result<Vec<(Bytes, f64)>, CmdError> {
    let ends = |ctx: &mut Ctx<'_, '_>, back: bool| -> Result<Option<(Bytes, f64)>, CmdError> {
        let e = ctx.members(m, kind::SCORE, Bound::Unbounded, Bound::Unbounded, 1, back)?;
        Ok(e.first().map(|(rest, _)| split_entry(rest)))
    };
    let (Some((first_member, first)), Some((last_member, last))) =
        (ends(ctx, false)?, ends(ctx, true)?)
    else {
        return Ok(Vec::new());
    };
    // Redis's `zslIsInLexRange`: nothing if the last member is below min or the first above
    // max (which matters only when scores differ).
    if !gte_min(&last_member, min) || !lte_max(&first_member, max) {
        return Ok(Vec::new());
    }
    let entries = if score_bits(first) == score_bits(last) {
        // One score: seek straight to the near bound.
        let prefix = score_bits(first).to_be_bytes().to_vec();
        let with = |x: &Bytes| {
            let mut k = prefix.clone();
            k.extend_from_slice(x);
            k
        };
        let lo = match min {
            Lex::Min => Bound::Unbounded,
            Lex::Max => return Ok(Vec::new()),
            Lex::In(x) => Bound::Included(with(x)),
            Lex::Ex(x) => Bound::Excluded(with(x)),
        };
        let hi = match max {
            Lex::Max => Bound::Unbounded,
            Lex::Min => return Ok(Vec::new()),
            Lex::In(x) => Bound::Included(with(x)),
            Lex::Ex(x) => Bound::Excluded(with(x)),
        };
        // An empty range (min above max) reads nothing: `Transaction::range` sees to it.
        ctx.members(
            m,
            kind::SCORE,
            bound_ref(&lo),
            bound_ref(&hi),
            usize::MAX,
            rev,
        )?
    } else {
        ctx.members(
            m,
            kind::SCORE,
            Bound::Unbounded,
            Bound::Unbounded,
            usize::MAX,
            rev,
        )?
    };
    let mut out = Vec::new();
    let mut started = false;
    for (rest, _) in entries {
        let (member, score) = split_entry(&rest);
        let (near, far) = if rev {
            (lte_max(&member, max), gte_min(&member, min))
        } else {
            (gte_min(&member, min), lte_max(&member, max))
        };
        if !started {
            if !near {
                continue;
            }
            started = true;
        }
        if !far {
            break;
        }
        out.push((member, score));
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rank,
    Score,
    Lex,
}

/// The ZRANGE family: `key a b [options]` where `a`/`b` are min/max (or max/min when `rev` for
/// score and lex ranges).
fn range_generic(
    ctx: &mut Ctx<'_, '_>,
    args: &[Bytes],
    k: Kind,
    rev: bool,
    zrange_syntax: bool,
) -> CmdResult {
    let (items, withscores) = range_query(ctx, &args[1..], k, rev, zrange_syntax, false)?;
    Ok(scored_reply(items, withscores))
}

/// ZRANGESTORE `dst src a b [options]`: ZRANGE's selection, stored under `dst` (deleted if it is
/// empty).
fn zrangestore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let (items, _) = range_query(ctx, &args[2..], Kind::Rank, false, true, true)?;
    Ok(Frame::Integer(store_zset(ctx, &args[1], items)? as i64))
}

/// The selection of a ZRANGE-family command, from `args` = `key a b [options]`, and whether
/// WITHSCORES was given (refused when `store`).
fn range_query(
    ctx: &mut Ctx<'_, '_>,
    args: &[Bytes],
    mut k: Kind,
    mut rev: bool,
    zrange_syntax: bool,
    store: bool,
) -> Result<(Vec<(Bytes, f64)>, bool), CmdError> {
    let mut withscores = false;
    let mut limit: Option<(i64, i64)> = None;
    let mut i = 3;
    while i < args.len() {
        let a = &args[i];
        if !store && is(a, "withscores") {
            withscores = true;
        } else if is(a, "limit") && i + 2 < args.len() {
            limit = Some((int_arg(&args[i + 1])?, int_arg(&args[i + 2])?));
            i += 2;
        } else if zrange_syntax && k == Kind::Rank && is(a, "byscore") {
            k = Kind::Score;
        } else if zrange_syntax && k == Kind::Rank && is(a, "bylex") {
            k = Kind::Lex;
        } else if zrange_syntax && !rev && is(a, "rev") {
            rev = true;
        } else {
            return Err(syntax_error());
        }
        i += 1;
    }
    // Redis 7.0 takes a LIMIT count of -1 as no LIMIT at all for a rank range (the offset is
    // then ignored too).
    if k == Kind::Rank && limit.is_some_and(|(_, count)| count == -1) {
        limit = None;
    }
    if limit.is_some() && k == Kind::Rank {
        return Err(Frame::err(
            "syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX",
        )
        .into());
    }
    if withscores && k == Kind::Lex {
        return Err(
            Frame::err("syntax error, WITHSCORES not supported in combination with BYLEX").into(),
        );
    }
    let (a, b) = (&args[1], &args[2]);
    let by = match k {
        Kind::Rank => By::Rank(int_arg(a)?, int_arg(b)?),
        Kind::Score => {
            let (min, max) = if rev { (b, a) } else { (a, b) };
            By::Score(parse_score_range(min, max)?)
        }
        Kind::Lex => {
            let (min, max) = if rev { (b, a) } else { (a, b) };
            By::Lex(parse_lex(min)?, parse_lex(max)?)
        }
    };
    let Some(m) = ctx.coll(&args[0], Type::ZSet)? else {
        return Ok((Vec::new(), withscores));
    };
    let (offset, count) = limit.unwrap_or((0, -1));
    Ok((select(ctx, &m, &by, rev, offset, count)?, withscores))
}

fn zcount(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let r = parse_score_range(&args[2], &args[3])?;
    let Some(m) = ctx.coll(&args[1], Type::ZSet)? else {
        return Ok(Frame::Integer(0));
    };
    Ok(Frame::Integer(
        select(ctx, &m, &By::Score(r), false, 0, -1)?.len() as i64,
    ))
}

fn zlexcount(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let by = By::Lex(parse_lex(&args[2])?, parse_lex(&args[3])?);
    let Some(m) = ctx.coll(&args[1], Type::ZSet)? else {
        return Ok(Frame::Integer(0));
    };
    Ok(Frame::Integer(
        select(ctx, &m, &by, false, 0, -1)?.len() as i64
    ))
}

fn remove_selected(ctx: &mut Ctx<'_, '_>, args: &[Bytes], by: By) -> CmdResult {
    let key = &args[1];
    let Some(before) = ctx.coll(key, Type::ZSet)? else {
        return Ok(Frame::Integer(0));
    };
    let items = select(ctx, &before, &by, false, 0, -1)?;
    let mut m = before.clone();
    for (member, score) in &items {
        remove(ctx, &mut m, member, *score)?;
    }
    ctx.save(key, &m, &before)?;
    Ok(Frame::Integer(items.len() as i64))
}

fn zremrangebyrank(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let by = By::Rank(int_arg(&args[2])?, int_arg(&args[3])?);
    remove_selected(ctx, args, by)
}

fn zremrangebyscore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let by = By::Score(parse_score_range(&args[2], &args[3])?);
    remove_selected(ctx, args, by)
}

fn zremrangebylex(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let by = By::Lex(parse_lex(&args[2])?, parse_lex(&args[3])?);
    remove_selected(ctx, args, by)
}
