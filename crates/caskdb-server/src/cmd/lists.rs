//! List commands. A list is a metadata record (size, index of the head) plus one engine record
//! per element, keyed by its index: pushes and pops at either end, LINDEX and LSET are O(1),
//! LRANGE is O(log n + m); LREM, LINSERT and LTRIM rewrite or delete what they move.

use std::ops::Bound;

use bytes::Bytes;
use caskdb::ValueRef;

use super::args::{int_arg, is, positive_count};
use super::ctx::{Ctx, STREAM_ABOVE};
use super::reply::{CmdError, CmdResult, syntax_error, wrong_arity};
use super::spec::flags::{FAST, READ_TX, WRITE};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::keyspace::{Meta, Type, kind};

/// The list commands.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "list";
    /// Prepends one or more elements to a list. Creates the key if it doesn't exist.
    "lpush", -3, WRITE | FAST, 1, 1, 1 => push_generic(true, false);
    /// Appends one or more elements to a list. Creates the key if it doesn't exist.
    "rpush", -3, WRITE | FAST, 1, 1, 1 => push_generic(false, false);
    /// Prepends one or more elements to a list only when the list exists.
    "lpushx", -3, WRITE | FAST, 1, 1, 1 => push_generic(true, true);
    /// Appends an element to a list only when the list exists.
    "rpushx", -3, WRITE | FAST, 1, 1, 1 => push_generic(false, true);
    /// Returns the first elements in a list after removing it. Deletes the list if the last element
    /// was popped.
    "lpop", -2, WRITE | FAST, 1, 1, 1 => pop_generic(true);
    /// Returns and removes the last elements of a list. Deletes the list if the last element was
    /// popped.
    "rpop", -2, WRITE | FAST, 1, 1, 1 => pop_generic(false);
    /// Returns the length of a list.
    "llen", 2, READ_TX | FAST, 1, 1, 1 => Ctx::coll_len(Type::List);
    /// Returns an element from a list by its index.
    "lindex", 3, READ_TX, 1, 1, 1 => lindex;
    /// Returns a range of elements from a list.
    "lrange", 4, READ_TX, 1, 1, 1 => lrange;
    /// Sets the value of an element in a list by its index.
    "lset", 4, WRITE, 1, 1, 1 => lset;
    /// Removes elements from a list. Deletes the list if the last element was removed.
    "lrem", 4, WRITE, 1, 1, 1 => lrem;
    /// Removes elements from both ends a list. Deletes the list if all elements were trimmed.
    "ltrim", 4, WRITE, 1, 1, 1 => ltrim;
    /// Inserts an element before or after another element in a list.
    "linsert", 5, WRITE, 1, 1, 1 => linsert;
    /// Returns the index of matching elements in a list.
    "lpos", -3, READ_TX, 1, 1, 1 => lpos;
    /// Returns an element after popping it from one list and pushing it to another. Deletes the
    /// list if the last element was moved.
    "lmove", 5, WRITE, 1, 2, 1 => lmove;
    /// Returns the last element of a list after removing and pushing it to another list. Deletes
    /// the list if the last element was popped.
    "rpoplpush", 3, WRITE, 1, 2, 1 => rpoplpush;
};

/// The engine-key suffix of position `i` (0 = head) of `m`.
pub(super) fn at(m: &Meta, i: u64) -> [u8; 8] {
    m.head.wrapping_add(i).to_be_bytes()
}

/// Adds `value` at the head (`left`) or the tail of `m`.
fn push(ctx: &mut Ctx<'_, '_>, m: &mut Meta, left: bool, value: Bytes) -> Result<(), CmdError> {
    if left {
        m.head = m.head.wrapping_sub(1);
        m.len += 1;
        ctx.put_member(m, kind::MEMBER, &at(m, 0), value)
    } else {
        m.len += 1;
        ctx.put_member(m, kind::MEMBER, &at(m, m.len - 1), value)
    }
}

/// Removes and returns the element at the head (`left`) or the tail of non-empty `m`.
pub(super) fn pop(ctx: &mut Ctx<'_, '_>, m: &mut Meta, left: bool) -> Result<Bytes, CmdError> {
    let pos = if left { at(m, 0) } else { at(m, m.len - 1) };
    let value = ctx
        .member(m, kind::MEMBER, &pos)?
        .ok_or_else(|| Frame::err("corrupt list: an element is missing"))?;
    ctx.del_member(m, kind::MEMBER, &pos)?;
    m.len -= 1;
    if left {
        m.head = m.head.wrapping_add(1);
    }
    Ok(value)
}

fn push_generic(
    ctx: &mut Ctx<'_, '_>,
    args: &[Bytes],
    left: bool,
    only_existing: bool,
) -> CmdResult {
    let key = &args[1];
    let before = if only_existing {
        match ctx.coll(key, Type::List)? {
            Some(m) => m,
            None => return Ok(Frame::Integer(0)),
        }
    } else {
        ctx.coll_or_new(key, Type::List)?
    };
    let mut m = before.clone();
    for v in &args[2..] {
        push(ctx, &mut m, left, v.clone())?;
    }
    ctx.save(key, &m, &before)?;
    Ok(Frame::Integer(m.len as i64))
}

fn pop_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], left: bool) -> CmdResult {
    let count = match args.len() {
        2 => None,
        3 => Some(positive_count(&args[2])?),
        _ => return Err(wrong_arity(if left { "lpop" } else { "rpop" }).into()),
    };
    let key = &args[1];
    let Some(before) = ctx.coll(key, Type::List)? else {
        return Ok(if count.is_some() {
            Frame::NullArray
        } else {
            Frame::Null
        });
    };
    let mut m = before.clone();
    let n = count.unwrap_or(1).min(m.len);
    let mut out = Vec::with_capacity(n as usize);
    for _ in 0..n {
        out.push(pop(ctx, &mut m, left)?);
    }
    ctx.save(key, &m, &before)?;
    Ok(match count {
        None => out.pop().map_or(Frame::Null, Frame::Bulk),
        Some(_) => Frame::Array(out.into_iter().map(Frame::Bulk).collect()),
    })
}

/// The position of index `i` (negative from the tail) in `m`, if it is inside the list.
fn position(m: &Meta, i: i64) -> Option<u64> {
    let len = m.len as i64;
    let i = if i < 0 { len.checked_add(i)? } else { i };
    (0..len).contains(&i).then_some(i as u64)
}

fn lindex(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    // Redis looks the key up before it reads the index.
    let Some(m) = ctx.coll(&args[1], Type::List)? else {
        return Ok(Frame::Null);
    };
    let i = int_arg(&args[2])?;
    let Some(p) = position(&m, i) else {
        return Ok(Frame::Null);
    };
    ctx.member_reply(&m, kind::MEMBER, &at(&m, p))
}

/// Redis's start/stop normalisation: the positions `start..=stop` inside a list of `len`, or
/// `None` if the range is empty.
pub(crate) fn clamp_range(start: i64, stop: i64, len: u64) -> Option<(u64, u64)> {
    let len = len as i64;
    let start = if start < 0 {
        (len + start).max(0)
    } else {
        start
    };
    let stop = if stop < 0 { len + stop } else { stop };
    if start > stop || start >= len {
        return None;
    }
    Some((start as u64, stop.min(len - 1) as u64))
}

/// The elements at positions `first..=last` of `m`.
pub(super) fn elements(
    ctx: &mut Ctx<'_, '_>,
    m: &Meta,
    first: u64,
    last: u64,
) -> Result<Vec<Bytes>, CmdError> {
    let refs = element_refs(ctx, m, first, last, usize::MAX)?;
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        out.push(r.read()?);
    }
    Ok(out)
}

/// [`elements`] with values in records over `inline` bytes left in their files.
fn element_refs(
    ctx: &mut Ctx<'_, '_>,
    m: &Meta,
    first: u64,
    last: u64,
    inline: usize,
) -> Result<Vec<ValueRef>, CmdError> {
    let (lo, hi) = (at(m, first), at(m, last));
    let items = ctx.member_refs(
        m,
        kind::MEMBER,
        Bound::Included(&lo),
        Bound::Included(&hi),
        (last - first + 1) as usize,
        false,
        inline,
    )?;
    if items.len() as u64 != last - first + 1 {
        return Err(Frame::err("corrupt list: an element is missing").into());
    }
    Ok(items.into_iter().map(|(_, v)| v).collect())
}

fn lrange(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
    let Some(m) = ctx.coll(&args[1], Type::List)? else {
        return Ok(Frame::Array(Vec::new()));
    };
    let Some((first, last)) = clamp_range(start, stop, m.len) else {
        return Ok(Frame::Array(Vec::new()));
    };
    let items = element_refs(ctx, &m, first, last, STREAM_ABOVE)?;
    Ok(Frame::Array(items.into_iter().map(Frame::value).collect()))
}

fn lset(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(m) = ctx.coll(&args[1], Type::List)? else {
        return Err(Frame::err("no such key").into());
    };
    let i = int_arg(&args[2])?;
    let Some(p) = position(&m, i) else {
        return Err(Frame::err("index out of range").into());
    };
    ctx.put_member(&m, kind::MEMBER, &at(&m, p), args[3].clone())?;
    ctx.save(&args[1], &m, &m)?;
    Ok(Frame::OK)
}

/// Replaces whatever is under `key` with a new list of `items`, as SORT … STORE does: an empty
/// result deletes the key, a non-empty one overwrites it (and its expiry), so an existing key
/// gets no `new` event. Returns the length stored.
pub(super) fn store_list(
    ctx: &mut Ctx<'_, '_>,
    key: &[u8],
    items: Vec<Bytes>,
) -> Result<u64, CmdError> {
    if items.is_empty() {
        ctx.remove_counting(key)?;
        return Ok(0);
    }
    // The collection overwritten (if any) leaves its members to the sweeper.
    ctx.overwriting(key)?;
    let mut m = ctx.new_coll(Type::List);
    let before = m.clone();
    for v in items {
        push(ctx, &mut m, false, v)?;
    }
    ctx.save(key, &m, &before)?;
    Ok(m.len)
}

/// Replaces the whole of list `before` under `key` with `items` (deleting it if empty):
/// rewrites only the positions whose element changed and deletes positions past the end.
fn rewrite(
    ctx: &mut Ctx<'_, '_>,
    key: &[u8],
    before: &Meta,
    old: &[Bytes],
    items: Vec<Bytes>,
) -> Result<(), CmdError> {
    let mut m = before.clone();
    m.len = items.len() as u64;
    for (i, v) in items.into_iter().enumerate() {
        if old.get(i) != Some(&v) {
            ctx.put_member(&m, kind::MEMBER, &at(&m, i as u64), v)?;
        }
    }
    for i in m.len..old.len() as u64 {
        ctx.del_member(before, kind::MEMBER, &at(before, i))?;
    }
    ctx.save(key, &m, before)
}

fn lrem(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let count = int_arg(&args[2])?;
    let target = &args[3];
    let key = &args[1];
    let Some(before) = ctx.coll(key, Type::List)? else {
        return Ok(Frame::Integer(0));
    };
    let old = elements(ctx, &before, 0, before.len - 1)?;
    let limit = if count == 0 {
        u64::MAX
    } else {
        count.unsigned_abs()
    };
    let mut remove = vec![false; old.len()];
    let mut removed = 0u64;
    let order: Box<dyn Iterator<Item = usize>> = if count < 0 {
        Box::new((0..old.len()).rev())
    } else {
        Box::new(0..old.len())
    };
    for i in order {
        if removed == limit {
            break;
        }
        if old[i] == *target {
            remove[i] = true;
            removed += 1;
        }
    }
    if removed > 0 {
        let kept: Vec<Bytes> = old
            .iter()
            .zip(&remove)
            .filter(|(_, r)| !**r)
            .map(|(v, _)| v.clone())
            .collect();
        rewrite(ctx, key, &before, &old, kept)?;
    }
    Ok(Frame::Integer(removed as i64))
}

fn ltrim(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let (start, stop) = (int_arg(&args[2])?, int_arg(&args[3])?);
    let key = &args[1];
    let Some(before) = ctx.coll(key, Type::List)? else {
        return Ok(Frame::OK);
    };
    let mut m = before.clone();
    let (first, last) = clamp_range(start, stop, m.len).unwrap_or((m.len, m.len));
    // Delete what lies outside [first, last]: O(removed).
    for p in (0..first).chain(last.saturating_add(1).min(m.len)..m.len) {
        ctx.del_member(&before, kind::MEMBER, &at(&before, p))?;
    }
    if first >= m.len {
        m.len = 0;
    } else {
        m.head = m.head.wrapping_add(first);
        m.len = last - first + 1;
    }
    ctx.save(key, &m, &before)?;
    Ok(Frame::OK)
}

fn linsert(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let after = if is(&args[2], "after") {
        true
    } else if is(&args[2], "before") {
        false
    } else {
        return Err(syntax_error());
    };
    let (key, pivot, value) = (&args[1], &args[3], &args[4]);
    let Some(before) = ctx.coll(key, Type::List)? else {
        return Ok(Frame::Integer(0));
    };
    let old = elements(ctx, &before, 0, before.len - 1)?;
    let Some(p) = old.iter().position(|v| v == pivot) else {
        return Ok(Frame::Integer(-1));
    };
    let at_pos = if after { p + 1 } else { p };
    let mut m = before.clone();
    if at_pos <= old.len() / 2 {
        // Shift the head side one place left.
        m.head = m.head.wrapping_sub(1);
        m.len += 1;
        for (i, v) in old[..at_pos].iter().enumerate() {
            ctx.put_member(&m, kind::MEMBER, &at(&m, i as u64), v.clone())?;
        }
        ctx.put_member(&m, kind::MEMBER, &at(&m, at_pos as u64), value.clone())?;
    } else {
        // Shift the tail side one place right.
        m.len += 1;
        for (i, v) in old[at_pos..].iter().enumerate() {
            ctx.put_member(
                &m,
                kind::MEMBER,
                &at(&m, (at_pos + i + 1) as u64),
                v.clone(),
            )?;
        }
        ctx.put_member(&m, kind::MEMBER, &at(&m, at_pos as u64), value.clone())?;
    }
    ctx.save(key, &m, &before)?;
    Ok(Frame::Integer(m.len as i64))
}

fn lpos(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let (key, target) = (&args[1], &args[2]);
    let mut rank = 1i64;
    let mut count: Option<i64> = None;
    let mut maxlen = 0i64;
    let mut i = 3;
    while i < args.len() {
        if i + 1 >= args.len() {
            return Err(syntax_error());
        }
        let v = &args[i + 1];
        if is(&args[i], "rank") {
            rank = int_arg(v)?;
            if rank == 0 {
                return Err(Frame::err("RANK can't be zero: use 1 to start from the first match, 2 from the second ... or use negative to start from the end of the list").into());
            }
            if rank == i64::MIN {
                return Err(Frame::err("value is out of range, value must between -9223372036854775807 and 9223372036854775807").into());
            }
        } else if is(&args[i], "count") {
            // Redis gives this message for a non-integer too.
            let c = int_arg(v).unwrap_or(-1);
            if c < 0 {
                return Err(Frame::err("COUNT can't be negative").into());
            }
            count = Some(c);
        } else if is(&args[i], "maxlen") {
            maxlen = int_arg(v).unwrap_or(-1);
            if maxlen < 0 {
                return Err(Frame::err("MAXLEN can't be negative").into());
            }
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    let Some(m) = ctx.coll(key, Type::List)? else {
        return Ok(if count.is_some() {
            Frame::Array(Vec::new())
        } else {
            Frame::Null
        });
    };
    let items = elements(ctx, &m, 0, m.len - 1)?;
    let want = match count {
        Some(0) => usize::MAX,
        Some(c) => c as usize,
        None => 1,
    };
    let scan = if maxlen == 0 {
        items.len()
    } else {
        (maxlen as usize).min(items.len())
    };
    let mut skip = rank.unsigned_abs() - 1;
    let mut found = Vec::new();
    let order: Box<dyn Iterator<Item = usize>> = if rank < 0 {
        Box::new((items.len() - scan..items.len()).rev())
    } else {
        Box::new(0..scan)
    };
    for i in order {
        if items[i] == *target {
            if skip > 0 {
                skip -= 1;
                continue;
            }
            found.push(Frame::Integer(i as i64));
            if found.len() >= want {
                break;
            }
        }
    }
    Ok(match count {
        Some(_) => Frame::Array(found),
        None => found.pop().unwrap_or(Frame::Null),
    })
}

pub(super) fn side(arg: &[u8]) -> Result<bool, CmdError> {
    if is(arg, "left") {
        Ok(true)
    } else if is(arg, "right") {
        Ok(false)
    } else {
        Err(syntax_error())
    }
}

pub(super) fn move_generic(
    ctx: &mut Ctx<'_, '_>,
    src: &Bytes,
    dst: &Bytes,
    from_left: bool,
    to_left: bool,
) -> CmdResult {
    let Some(src_before) = ctx.coll(src, Type::List)? else {
        return Ok(Frame::Null);
    };
    let dst_meta = ctx.coll(dst, Type::List)?;
    let mut s = src_before.clone();
    let value = pop(ctx, &mut s, from_left)?;
    if src == dst {
        push(ctx, &mut s, to_left, value.clone())?;
        ctx.save(src, &s, &src_before)?;
        return Ok(Frame::Bulk(value));
    }
    ctx.save(src, &s, &src_before)?;
    let dst_before = match dst_meta {
        Some(m) => m,
        None => ctx.new_coll(Type::List),
    };
    let mut d = dst_before.clone();
    push(ctx, &mut d, to_left, value.clone())?;
    ctx.save(dst, &d, &dst_before)?;
    Ok(Frame::Bulk(value))
}

fn lmove(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let from_left = side(&args[3])?;
    let to_left = side(&args[4])?;
    move_generic(ctx, &args[1], &args[2], from_left, to_left)
}

fn rpoplpush(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    move_generic(ctx, &args[1], &args[2], false, true)
}
