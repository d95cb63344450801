//! Sorted-set algebra: ZUNION, ZINTER, ZDIFF, their *STORE forms and ZINTERCARD, as Redis 7.0's
//! `zunionInterDiffGenericCommand` runs them (sources may be sets, their members scored 1;
//! WEIGHTS, AGGREGATE SUM|MIN|MAX; the sources of a union or an intersection taken smallest
//! first, which fixes the order scores are added in); and ZRANDMEMBER. The layout of a sorted set
//! is described in `zsets.rs`.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::collections::hash_map::Entry;

use bytes::Bytes;

use super::args::{check_picks, int_arg, is, signed_count};
use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult, syntax_error, wrongtype};
use super::spec::flags::{READ_TX, WRITE};
use super::spec::{Spec, commands};
use super::zsets::{all_scored, parse_double, score_of, scored_reply, store_zset};
use crate::frame::Frame;
use crate::keyspace::{Meta, Type, kind};
use crate::state::random_picks;

/// The sorted-set algebra commands and ZRANDMEMBER.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "sorted-set";
    /// Returns the union of multiple sorted sets.
    "zunion", -3, READ_TX, 0, 0, 0 => combined(Op::Union, "zunion");
    /// Returns the intersect of multiple sorted sets.
    "zinter", -3, READ_TX, 0, 0, 0 => combined(Op::Inter, "zinter");
    /// Returns the difference between multiple sorted sets.
    "zdiff", -3, READ_TX, 0, 0, 0 => combined(Op::Diff, "zdiff");
    /// Stores the union of multiple sorted sets in a key.
    "zunionstore", -4, WRITE, 1, 1, 1 => store(Op::Union, "zunionstore");
    /// Stores the intersect of multiple sorted sets in a key.
    "zinterstore", -4, WRITE, 1, 1, 1 => store(Op::Inter, "zinterstore");
    /// Stores the difference of multiple sorted sets in a key.
    "zdiffstore", -4, WRITE, 1, 1, 1 => store(Op::Diff, "zdiffstore");
    /// Returns the number of members of the intersect of multiple sorted sets.
    "zintercard", -3, READ_TX, 0, 0, 0 => zintercard;
    /// Returns one or more random members from a sorted set.
    "zrandmember", -2, READ_TX, 1, 1, 1 => zrandmember;
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Union,
    Inter,
    Diff,
}

/// How the scores of a member in several sources combine.
#[derive(Clone, Copy)]
enum Aggregate {
    Sum,
    Min,
    Max,
}

impl Aggregate {
    /// Redis's `zunionInterAggregate`: a sum of inf and -inf is 0; a NaN never wins MIN or MAX.
    fn apply(self, target: &mut f64, value: f64) {
        match self {
            Aggregate::Sum => {
                *target += value;
                if target.is_nan() {
                    *target = 0.0;
                }
            }
            Aggregate::Min => {
                if value < *target {
                    *target = value;
                }
            }
            Aggregate::Max => {
                if value > *target {
                    *target = value;
                }
            }
        }
    }
}

/// One source key: a sorted set, or a set whose members score 1; `None` if it is missing.
struct Source {
    meta: Option<Meta>,
    weight: f64,
}

impl Source {
    fn len(&self) -> u64 {
        self.meta.as_ref().map_or(0, |m| m.len)
    }

    /// Every (member, score) of the source.
    fn read(&self, ctx: &mut Ctx<'_, '_>) -> Result<Vec<(Bytes, f64)>, CmdError> {
        match &self.meta {
            None => Ok(Vec::new()),
            Some(m) if m.ty == Type::ZSet => all_scored(ctx, m),
            Some(m) => Ok(ctx
                .all_members(m, kind::MEMBER)?
                .into_iter()
                .map(|(member, _)| (member, 1.0))
                .collect()),
        }
    }

    /// The score of `member` in the source, if it is there.
    fn find(&self, ctx: &mut Ctx<'_, '_>, member: &[u8]) -> Result<Option<f64>, CmdError> {
        match &self.meta {
            None => Ok(None),
            Some(m) if m.ty == Type::ZSet => score_of(ctx, m, member),
            Some(m) => Ok(ctx.has_member(m, kind::MEMBER, member)?.then_some(1.0)),
        }
    }
}

/// A parsed ZUNION/ZINTER/ZDIFF/*STORE/ZINTERCARD request.
struct Request {
    sources: Vec<Source>,
    aggregate: Aggregate,
    withscores: bool,
    /// ZINTERCARD's LIMIT (0: none).
    limit: u64,
}

/// Parses `args` from the numkeys argument at `at` on, in Redis's order: numkeys, the keys'
/// types, then the options. `store`: a *STORE form (no WITHSCORES); `card`: ZINTERCARD (LIMIT
/// only).
fn parse(
    ctx: &mut Ctx<'_, '_>,
    args: &[Bytes],
    at: usize,
    op: Op,
    name: &str,
    store: bool,
    card: bool,
) -> Result<Request, CmdError> {
    let numkeys = int_arg(&args[at])?;
    if numkeys < 1 {
        return Err(Frame::err(format!(
            "at least 1 input key is needed for '{name}' command"
        ))
        .into());
    }
    let first = at + 1;
    if numkeys as u64 > (args.len() - first) as u64 {
        return Err(syntax_error());
    }
    let numkeys = numkeys as usize;
    let mut sources = Vec::with_capacity(numkeys);
    for key in &args[first..first + numkeys] {
        let meta = match ctx.lookup_stored(key)? {
            None => None,
            Some(e) if matches!(e.ty, Type::ZSet | Type::Set) => {
                Some(Meta::decode(&e).ok_or_else(|| Frame::err("corrupt collection metadata"))?)
            }
            Some(_) => return Err(wrongtype()),
        };
        sources.push(Source { meta, weight: 1.0 });
    }
    let mut req = Request {
        sources,
        aggregate: Aggregate::Sum,
        withscores: false,
        limit: 0,
    };
    let mut j = first + numkeys;
    while j < args.len() {
        let left = args.len() - j;
        let a = &args[j];
        if op != Op::Diff && !card && left > numkeys && is(a, "weights") {
            for (src, w) in req.sources.iter_mut().zip(&args[j + 1..]) {
                src.weight = parse_double(w, "weight value is not a float")?;
            }
            j += numkeys + 1;
        } else if op != Op::Diff && !card && left >= 2 && is(a, "aggregate") {
            let how = &args[j + 1];
            req.aggregate = if is(how, "sum") {
                Aggregate::Sum
            } else if is(how, "min") {
                Aggregate::Min
            } else if is(how, "max") {
                Aggregate::Max
            } else {
                return Err(syntax_error());
            };
            j += 2;
        } else if !store && !card && is(a, "withscores") {
            req.withscores = true;
            j += 1;
        } else if card && left >= 2 && is(a, "limit") {
            let negative = || CmdError::from(Frame::err("LIMIT can't be negative"));
            let n = int_arg(&args[j + 1]).map_err(|_| negative())?;
            req.limit = u64::try_from(n).map_err(|_| negative())?;
            j += 2;
        } else {
            return Err(syntax_error());
        }
    }
    Ok(req)
}

/// Redis's sorted-set order: by score, then by member bytes (-0 and 0 are one score).
fn zset_order(a: &(Bytes, f64), b: &(Bytes, f64)) -> Ordering {
    a.1.partial_cmp(&b.1)
        .unwrap_or(Ordering::Equal)
        .then_with(|| a.0.cmp(&b.0))
}

/// The result of `op` over the request's sources, in sorted-set order; for ZINTERCARD
/// (`card`), only its first `limit` members (all if 0), unsorted.
fn compute(
    ctx: &mut Ctx<'_, '_>,
    req: Request,
    op: Op,
    card: bool,
) -> Result<Vec<(Bytes, f64)>, CmdError> {
    let Request {
        mut sources,
        aggregate,
        limit,
        ..
    } = req;
    let mut out: Vec<(Bytes, f64)> = Vec::new();
    match op {
        Op::Union => {
            // Smallest first (a stable sort: equal sizes keep the command's order).
            sources.sort_by_key(Source::len);
            let mut at: HashMap<Bytes, usize> = HashMap::new();
            for src in &sources {
                for (member, score) in src.read(ctx)? {
                    let mut score = src.weight * score;
                    if score.is_nan() {
                        score = 0.0;
                    }
                    match at.entry(member) {
                        Entry::Occupied(e) => aggregate.apply(&mut out[*e.get()].1, score),
                        Entry::Vacant(e) => {
                            out.push((e.key().clone(), score));
                            e.insert(out.len() - 1);
                        }
                    }
                }
            }
        }
        Op::Inter => {
            sources.sort_by_key(Source::len);
            if sources.first().is_none_or(|s| s.len() == 0) {
                return Ok(Vec::new());
            }
            let (first, rest) = sources.split_at(1);
            'members: for (member, score) in first[0].read(ctx)? {
                let mut score = first[0].weight * score;
                if score.is_nan() {
                    score = 0.0;
                }
                for src in rest {
                    let Some(other) = src.find(ctx, &member)? else {
                        continue 'members;
                    };
                    aggregate.apply(&mut score, other * src.weight);
                }
                out.push((member, score));
                if card && limit > 0 && out.len() as u64 >= limit {
                    break;
                }
            }
        }
        Op::Diff => {
            let (first, rest) = sources.split_at(1);
            'diff: for (member, score) in first[0].read(ctx)? {
                for src in rest {
                    if src.find(ctx, &member)?.is_some() {
                        continue 'diff;
                    }
                }
                out.push((member, score));
            }
        }
    }
    if !card {
        out.sort_by(zset_order);
    }
    Ok(out)
}

/// ZUNION, ZINTER, ZDIFF: `numkeys key… [options]`.
fn combined(ctx: &mut Ctx<'_, '_>, args: &[Bytes], op: Op, name: &str) -> CmdResult {
    let req = parse(ctx, args, 1, op, name, false, false)?;
    let withscores = req.withscores;
    Ok(scored_reply(compute(ctx, req, op, false)?, withscores))
}

/// ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: `destination numkeys key… [options]`.
fn store(ctx: &mut Ctx<'_, '_>, args: &[Bytes], op: Op, name: &str) -> CmdResult {
    let req = parse(ctx, args, 2, op, name, true, false)?;
    let items = compute(ctx, req, op, false)?;
    Ok(Frame::Integer(store_zset(ctx, &args[1], items)? as i64))
}

fn zintercard(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let req = parse(ctx, args, 1, Op::Inter, "zintercard", false, true)?;
    Ok(Frame::Integer(
        compute(ctx, req, Op::Inter, true)?.len() as i64
    ))
}

fn zrandmember(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let mut count = None;
    let mut withscores = false;
    if args.len() >= 3 {
        let n = signed_count(&args[2])?;
        if args.len() > 4 || (args.len() == 4 && !is(&args[3], "withscores")) {
            return Err(syntax_error());
        }
        if args.len() == 4 {
            withscores = true;
            // Redis refuses counts whose reply (member and score) would pass LONG_MAX.
            if !(-(i64::MAX / 2)..=i64::MAX / 2).contains(&n) {
                return Err(Frame::err("value is out of range").into());
            }
        }
        count = Some(check_picks(n)?);
    }
    let Some(m) = ctx.coll(&args[1], Type::ZSet)? else {
        return Ok(if count.is_some() {
            Frame::Array(Vec::new())
        } else {
            Frame::Null
        });
    };
    let all = all_scored(ctx, &m)?;
    let Some(count) = count else {
        return Ok(random_picks(&all, 1)
            .pop()
            .map_or(Frame::Null, |(member, _)| Frame::Bulk(member)));
    };
    Ok(scored_reply(random_picks(&all, count), withscores))
}
