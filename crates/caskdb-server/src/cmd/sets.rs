//! Set commands. A set is a metadata record plus one empty-valued engine record per member.

use std::collections::BTreeSet;

use bytes::Bytes;

use super::args::{int_arg, is, positive_count, random_count};
use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult, syntax_error};
use super::scan;
use super::spec::flags::{FAST, READ_TX, WRITE};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::keyspace::{Meta, Type, kind};
use crate::state::random_picks;

/// The set commands.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "set";
    /// Adds one or more members to a set. Creates the key if it doesn't exist.
    "sadd", -3, WRITE | FAST, 1, 1, 1 => sadd;
    /// Removes one or more members from a set. Deletes the set if the last member was removed.
    "srem", -3, WRITE | FAST, 1, 1, 1 => Ctx::coll_remove(Type::Set);
    /// Determines whether a member belongs to a set.
    "sismember", 3, READ_TX | FAST, 1, 1, 1 => Ctx::coll_contains(Type::Set);
    /// Determines whether multiple members belong to a set.
    "smismember", -3, READ_TX | FAST, 1, 1, 1 => smismember;
    /// Returns all members of a set.
    "smembers", 2, READ_TX, 1, 1, 1 => smembers;
    /// Returns the number of members in a set.
    "scard", 2, READ_TX | FAST, 1, 1, 1 => Ctx::coll_len(Type::Set);
    /// Returns one or more random members from a set after removing them. Deletes the set if the
    /// last member was popped.
    "spop", -2, WRITE | FAST, 1, 1, 1 => spop;
    /// Get one or multiple random members from a set
    "srandmember", -2, READ_TX, 1, 1, 1 => srandmember;
    /// Returns the intersect of multiple sets.
    "sinter", -2, READ_TX, 1, -1, 1 => combined(Op::Inter);
    /// Returns the number of members of the intersect of multiple sets.
    "sintercard", -3, READ_TX, 0, 0, 0 => sintercard;
    /// Returns the union of multiple sets.
    "sunion", -2, READ_TX, 1, -1, 1 => combined(Op::Union);
    /// Returns the difference of multiple sets.
    "sdiff", -2, READ_TX, 1, -1, 1 => combined(Op::Diff);
    /// Stores the intersect of multiple sets in a key.
    "sinterstore", -3, WRITE, 1, -1, 1 => store(Op::Inter);
    /// Stores the union of multiple sets in a key.
    "sunionstore", -3, WRITE, 1, -1, 1 => store(Op::Union);
    /// Stores the difference of multiple sets in a key.
    "sdiffstore", -3, WRITE, 1, -1, 1 => store(Op::Diff);
    /// Moves a member from one set to another.
    "smove", 4, WRITE | FAST, 1, 2, 1 => smove;
    /// Iterates over members of a set.
    "sscan", -3, READ_TX, 1, 1, 1 => sscan;
};

fn sadd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let key = &args[1];
    let before = ctx.coll_or_new(key, Type::Set)?;
    let mut m = before.clone();
    let mut added = 0;
    for member in &args[2..] {
        if !ctx.has_member(&m, kind::MEMBER, member)? {
            ctx.put_member(&m, kind::MEMBER, member, Bytes::new())?;
            m.len += 1;
            added += 1;
        }
    }
    ctx.save(key, &m, &before)?;
    Ok(Frame::Integer(added))
}

fn smismember(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let m = ctx.coll(&args[1], Type::Set)?;
    let mut out = Vec::with_capacity(args.len() - 2);
    for member in &args[2..] {
        let has = match &m {
            Some(m) => ctx.has_member(m, kind::MEMBER, member)?,
            None => false,
        };
        out.push(Frame::Integer(i64::from(has)));
    }
    Ok(Frame::Array(out))
}

/// The members of the set under `key`, in order; empty if there is none.
pub(crate) fn members_of(ctx: &mut Ctx<'_, '_>, key: &[u8]) -> Result<Vec<Bytes>, CmdError> {
    match ctx.coll(key, Type::Set)? {
        Some(m) => Ok(ctx
            .all_members(&m, kind::MEMBER)?
            .into_iter()
            .map(|(k, _)| k)
            .collect()),
        None => Ok(Vec::new()),
    }
}

fn bulk_array(items: impl IntoIterator<Item = Bytes>) -> Frame {
    Frame::Array(items.into_iter().map(Frame::Bulk).collect())
}

/// Members as a RESP3 set (an array in RESP2).
fn bulk_set(items: impl IntoIterator<Item = Bytes>) -> Frame {
    Frame::Set(items.into_iter().map(Frame::Bulk).collect())
}

fn smembers(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    Ok(bulk_set(members_of(ctx, &args[1])?))
}

fn spop(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => Some(positive_count(&args[2])?),
        _ => return Err(syntax_error()),
    };
    let key = &args[1];
    let Some(before) = ctx.coll(key, Type::Set)? else {
        return Ok(if count.is_some() {
            Frame::Set(Vec::new())
        } else {
            Frame::Null
        });
    };
    let all = members_of(ctx, key)?;
    let n = count.unwrap_or(1).min(i64::MAX as u64) as i64;
    let picked = random_picks(&all, n);
    let mut m = before.clone();
    for member in &picked {
        ctx.del_member(&m, kind::MEMBER, member)?;
        m.len -= 1;
    }
    ctx.save(key, &m, &before)?;
    Ok(match count {
        None => picked.into_iter().next().map_or(Frame::Null, Frame::Bulk),
        Some(_) => bulk_set(picked),
    })
}

fn srandmember(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => Some(random_count(&args[2])?),
        _ => return Err(syntax_error()),
    };
    let all = members_of(ctx, &args[1])?;
    Ok(match count {
        None => random_picks(&all, 1).pop().map_or(Frame::Null, Frame::Bulk),
        Some(c) => bulk_array(random_picks(&all, c)),
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Inter,
    Union,
    Diff,
}

/// The result of `op` over the sets under `keys` (a missing key is an empty set). Checks every
/// key's type first, as Redis does.
fn combine(ctx: &mut Ctx<'_, '_>, keys: &[Bytes], op: Op) -> Result<BTreeSet<Bytes>, CmdError> {
    let mut metas: Vec<Option<Meta>> = Vec::with_capacity(keys.len());
    for k in keys {
        metas.push(ctx.coll(k, Type::Set)?);
    }
    let read = |ctx: &mut Ctx<'_, '_>, m: &Option<Meta>| -> Result<BTreeSet<Bytes>, CmdError> {
        Ok(match m {
            Some(m) => ctx
                .all_members(m, kind::MEMBER)?
                .into_iter()
                .map(|(k, _)| k)
                .collect(),
            None => BTreeSet::new(),
        })
    };
    match op {
        Op::Inter => {
            if metas.iter().any(Option::is_none) {
                return Ok(BTreeSet::new());
            }
            // Start from the smallest set and probe the others member by member.
            let smallest = (0..metas.len())
                .min_by_key(|&i| metas[i].as_ref().map_or(0, |m| m.len))
                .unwrap_or(0);
            let mut out = read(ctx, &metas[smallest])?;
            for (i, m) in metas.iter().enumerate() {
                let Some(m) = m else { continue };
                if i == smallest {
                    continue;
                }
                let mut kept = BTreeSet::new();
                for member in out {
                    if ctx.has_member(m, kind::MEMBER, &member)? {
                        kept.insert(member);
                    }
                }
                out = kept;
            }
            Ok(out)
        }
        Op::Union => {
            let mut out = BTreeSet::new();
            for m in &metas {
                out.extend(read(ctx, m)?);
            }
            Ok(out)
        }
        Op::Diff => {
            let mut out = read(ctx, &metas[0])?;
            for m in metas[1..].iter().flatten() {
                if out.is_empty() {
                    break;
                }
                let mut kept = BTreeSet::new();
                for member in out {
                    if !ctx.has_member(m, kind::MEMBER, &member)? {
                        kept.insert(member);
                    }
                }
                out = kept;
            }
            Ok(out)
        }
    }
}

/// SINTER, SUNION, SDIFF.
fn combined(ctx: &mut Ctx<'_, '_>, args: &[Bytes], op: Op) -> CmdResult {
    Ok(bulk_set(combine(ctx, &args[1..], op)?))
}

/// SINTERCARD `numkeys key… [LIMIT limit]`: the options are read before the keys' types, as
/// Redis does.
fn sintercard(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let numkeys = int_arg(&args[1])
        .ok()
        .filter(|&n| n >= 1)
        .ok_or_else(|| Frame::err("numkeys should be greater than 0"))?;
    if numkeys as u64 > (args.len() - 2) as u64 {
        return Err(Frame::err("Number of keys can't be greater than number of args").into());
    }
    let end = 2 + numkeys as usize;
    let mut limit = 0u64;
    let mut j = end;
    while j < args.len() {
        if is(&args[j], "limit") && j + 1 < args.len() {
            let negative = || CmdError::from(Frame::err("LIMIT can't be negative"));
            let n = int_arg(&args[j + 1]).map_err(|_| negative())?;
            limit = u64::try_from(n).map_err(|_| negative())?;
            j += 2;
        } else {
            return Err(syntax_error());
        }
    }
    let n = combine(ctx, &args[2..end], Op::Inter)?.len() as u64;
    let n = if limit > 0 { n.min(limit) } else { n };
    Ok(Frame::Integer(n as i64))
}

/// Replaces whatever is under `key` with a set of `members` (deletes it if there are none). A
/// non-empty result overwrites the key, so an existing key gets no `new` event, as in Redis.
pub(crate) fn store_set(
    ctx: &mut Ctx<'_, '_>,
    key: &[u8],
    members: BTreeSet<Bytes>,
) -> Result<u64, CmdError> {
    if members.is_empty() {
        ctx.remove_counting(key)?;
        return Ok(0);
    }
    // The collection overwritten (if any) leaves its members to the sweeper.
    ctx.overwriting(key)?;
    let mut m = ctx.new_coll(Type::Set);
    let before = m.clone();
    for member in members {
        ctx.put_member(&m, kind::MEMBER, &member, Bytes::new())?;
        m.len += 1;
    }
    ctx.save(key, &m, &before)?;
    Ok(m.len)
}

/// SINTERSTORE, SUNIONSTORE, SDIFFSTORE.
fn store(ctx: &mut Ctx<'_, '_>, args: &[Bytes], op: Op) -> CmdResult {
    let result = combine(ctx, &args[2..], op)?;
    let n = store_set(ctx, &args[1], result)?;
    Ok(Frame::Integer(n as i64))
}

fn smove(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let (src, dst, member) = (&args[1], &args[2], &args[3]);
    // Redis's order: a missing source answers 0 before any type check.
    if !ctx.exists_in(ctx.conn.db, src)? {
        return Ok(Frame::Integer(0));
    }
    let src_meta = ctx.coll(src, Type::Set)?;
    let dst_meta = ctx.coll(dst, Type::Set)?;
    let Some(src_before) = src_meta else {
        return Ok(Frame::Integer(0));
    };
    if !ctx.has_member(&src_before, kind::MEMBER, member)? {
        return Ok(Frame::Integer(0));
    }
    if src == dst {
        return Ok(Frame::Integer(1));
    }
    let mut s = src_before.clone();
    ctx.del_member(&s, kind::MEMBER, member)?;
    s.len -= 1;
    ctx.save(src, &s, &src_before)?;
    let dst_before = match dst_meta {
        Some(m) => m,
        None => ctx.new_coll(Type::Set),
    };
    let mut d = dst_before.clone();
    if !ctx.has_member(&d, kind::MEMBER, member)? {
        ctx.put_member(&d, kind::MEMBER, member, Bytes::new())?;
        d.len += 1;
    }
    ctx.save(dst, &d, &dst_before)?;
    Ok(Frame::Integer(1))
}

fn sscan(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    scan::members(ctx, args, Type::Set, |member, _, out| {
        out.push(Frame::Bulk(member.clone()));
    })
}
