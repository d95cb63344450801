//! Blocking pops: BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, and the
//! non-blocking LMPOP and ZMPOP they share their parsing with.
//!
//! Each handler tries its pop; finding every key empty, it returns [`CmdError::Block`] when the
//! client may block (dispatch then parks it, `blocking.rs`), and the timeout reply otherwise
//! (inside MULTI, as Redis does).

use std::time::Duration;

use bytes::Bytes;

use super::args::{int_arg, is, parse_float, positive_count};
use super::ctx::Ctx;
use super::lists::{move_generic, pop, side};
use super::reply::{BlockOn, CmdError, CmdResult, syntax_error};
use super::spec::flags::WRITE;
use super::spec::{Spec, commands};
use super::zsets::{pop_items, score_frame};
use crate::frame::Frame;
use crate::keyspace::Type;

/// The blocking commands, and LMPOP/ZMPOP.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "list";
    /// Removes and returns the first element in a list. Blocks until an element is available
    /// otherwise. Deletes the list if the last element was popped.
    "blpop", -3, WRITE, 1, -2, 1 => bpop(true);
    /// Removes and returns the last element in a list. Blocks until an element is available
    /// otherwise. Deletes the list if the last element was popped.
    "brpop", -3, WRITE, 1, -2, 1 => bpop(false);
    /// Pops an element from a list, pushes it to another list and returns it. Blocks until an
    /// element is available otherwise. Deletes the list if the last element was moved.
    "blmove", 6, WRITE, 1, 2, 1 => blmove;
    /// Pops an element from a list, pushes it to another list and returns it. Block until an
    /// element is available otherwise. Deletes the list if the last element was popped.
    "brpoplpush", 4, WRITE, 1, 2, 1 => brpoplpush;
    /// Pops the first element from one of multiple lists. Blocks until an element is available
    /// otherwise. Deletes the list if the last element was popped.
    "blmpop", -5, WRITE, 0, 0, 0 => mpop_list(true);
    /// Returns multiple elements from a list after removing them. Deletes the list if the last
    /// element was popped.
    "lmpop", -4, WRITE, 0, 0, 0 => mpop_list(false);
    /// Removes and returns the member with the lowest score from one or more sorted sets. Blocks
    /// until a member is available otherwise. Deletes the sorted set if the last element was
    /// popped.
    "bzpopmin", -3, WRITE, 1, -2, 1 => bzpop(false);
    /// Removes and returns the member with the highest score from one or more sorted sets.
    /// Blocks until a member available otherwise.  Deletes the sorted set if the last element
    /// was popped.
    "bzpopmax", -3, WRITE, 1, -2, 1 => bzpop(true);
    /// Removes and returns a member by score from one or more sorted sets. Blocks until a member
    /// is available otherwise. Deletes the sorted set if the last element was popped.
    "bzmpop", -5, WRITE, 0, 0, 0 => mpop_zset(true);
    /// Returns the highest- or lowest-scoring members from one or more sorted sets after removing
    /// them. Deletes the sorted set if the last member was popped.
    "zmpop", -4, WRITE, 0, 0, 0 => mpop_zset(false);
};

/// A timeout in seconds as Redis 7.0 reads it: `None` for 0 (for ever).
fn timeout_arg(arg: &[u8]) -> Result<Option<Duration>, CmdError> {
    let secs =
        parse_float(arg).ok_or_else(|| Frame::err("timeout is not a float or out of range"))?;
    // Milliseconds rounded up; what overflows becomes negative, as C's conversion does.
    let ms = (secs * 1000.0).ceil();
    let ms = if ms.is_finite() && ms.abs() < 9.2e18 {
        ms as i64
    } else {
        i64::MIN
    };
    if ms < 0 {
        return Err(Frame::err("timeout is negative").into());
    }
    Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
}

/// Blocks on `keys` if the client may, else answers `timeout_reply` now.
fn block(
    ctx: &Ctx<'_, '_>,
    keys: &[Bytes],
    timeout: Option<Duration>,
    ty: Type,
    timeout_reply: Frame,
) -> CmdResult {
    if !ctx.may_block {
        return Ok(timeout_reply);
    }
    Err(CmdError::Block(Box::new(BlockOn {
        keys: keys.to_vec(),
        timeout,
        ty,
        timeout_reply,
        args: None,
    })))
}

fn bpop(ctx: &mut Ctx<'_, '_>, args: &[Bytes], left: bool) -> CmdResult {
    let (keys, t) = args[1..].split_at(args.len() - 2);
    let timeout = timeout_arg(&t[0])?;
    for key in keys {
        if let Some(before) = ctx.coll(key, Type::List)? {
            let mut m = before.clone();
            let value = pop(ctx, &mut m, left)?;
            ctx.save(key, &m, &before)?;
            return Ok(Frame::Array(vec![
                Frame::Bulk(key.clone()),
                Frame::Bulk(value),
            ]));
        }
    }
    block(ctx, keys, timeout, Type::List, Frame::NullArray)
}

fn blmove(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let from_left = side(&args[3])?;
    let to_left = side(&args[4])?;
    let timeout = timeout_arg(&args[5])?;
    move_or_block(ctx, args, from_left, to_left, timeout)
}

fn brpoplpush(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let timeout = timeout_arg(&args[3])?;
    move_or_block(ctx, args, false, true, timeout)
}

fn move_or_block(
    ctx: &mut Ctx<'_, '_>,
    args: &[Bytes],
    from_left: bool,
    to_left: bool,
    timeout: Option<Duration>,
) -> CmdResult {
    match move_generic(ctx, &args[1], &args[2], from_left, to_left)? {
        // Inside MULTI, LMOVE's null; timed out, Redis 7.0 answers with a null array.
        Frame::Null if !ctx.may_block => Ok(Frame::Null),
        Frame::Null => block(ctx, &args[1..2], timeout, Type::List, Frame::NullArray),
        moved => Ok(moved),
    }
}

/// `[timeout] numkeys key… <where> [COUNT n]` of the *MPOP commands: the keys, the side words'
/// index and the count.
fn mpop_args<'a>(
    args: &'a [Bytes],
    at: usize,
    sides: [&str; 2],
) -> Result<(&'a [Bytes], bool, u64), CmdError> {
    let numkeys = int_arg(&args[at]).unwrap_or(0);
    if numkeys <= 0 {
        return Err(Frame::err("numkeys should be greater than 0").into());
    }
    let first = at + 1;
    let numkeys = usize::try_from(numkeys).unwrap_or(usize::MAX);
    if numkeys >= args.len() - first {
        return Err(syntax_error());
    }
    let keys = &args[first..first + numkeys];
    let rest = &args[first + numkeys..];
    let first_side = if is(&rest[0], sides[0]) {
        true
    } else if is(&rest[0], sides[1]) {
        false
    } else {
        return Err(syntax_error());
    };
    let count = match &rest[1..] {
        [] => 1,
        [word, n] if is(word, "count") => match positive_count(n) {
            Ok(n) if n > 0 => n,
            _ => return Err(Frame::err("count should be greater than 0").into()),
        },
        _ => return Err(syntax_error()),
    };
    Ok((keys, first_side, count))
}

fn mpop_list(ctx: &mut Ctx<'_, '_>, args: &[Bytes], blocking: bool) -> CmdResult {
    let timeout = if blocking {
        timeout_arg(&args[1])?
    } else {
        None
    };
    let (keys, left, count) = mpop_args(args, usize::from(blocking) + 1, ["left", "right"])?;
    for key in keys {
        if let Some(before) = ctx.coll(key, Type::List)? {
            let mut m = before.clone();
            let n = count.min(m.len);
            let mut out = Vec::with_capacity(n as usize);
            for _ in 0..n {
                out.push(Frame::Bulk(pop(ctx, &mut m, left)?));
            }
            ctx.save(key, &m, &before)?;
            return Ok(Frame::Array(vec![
                Frame::Bulk(key.clone()),
                Frame::Array(out),
            ]));
        }
    }
    if !blocking {
        return Ok(Frame::NullArray);
    }
    block(ctx, keys, timeout, Type::List, Frame::NullArray)
}

fn bzpop(ctx: &mut Ctx<'_, '_>, args: &[Bytes], max: bool) -> CmdResult {
    let (keys, t) = args[1..].split_at(args.len() - 2);
    let timeout = timeout_arg(&t[0])?;
    for key in keys {
        if let Some(mut items) = pop_items(ctx, key, 1, max)?
            && let Some((member, score)) = items.pop()
        {
            return Ok(Frame::Array(vec![
                Frame::Bulk(key.clone()),
                Frame::Bulk(member),
                score_frame(score),
            ]));
        }
    }
    block(ctx, keys, timeout, Type::ZSet, Frame::NullArray)
}

fn mpop_zset(ctx: &mut Ctx<'_, '_>, args: &[Bytes], blocking: bool) -> CmdResult {
    let timeout = if blocking {
        timeout_arg(&args[1])?
    } else {
        None
    };
    let (keys, min, count) = mpop_args(args, usize::from(blocking) + 1, ["min", "max"])?;
    for key in keys {
        if let Some(items) = pop_items(ctx, key, count, !min)? {
            // (member, score) pairs nested in both protocols here, unlike ZRANGE's.
            let pairs = items
                .into_iter()
                .map(|(m, s)| Frame::Array(vec![Frame::Bulk(m), score_frame(s)]))
                .collect();
            return Ok(Frame::Array(vec![
                Frame::Bulk(key.clone()),
                Frame::Array(pairs),
            ]));
        }
    }
    if !blocking {
        return Ok(Frame::NullArray);
    }
    block(ctx, keys, timeout, Type::ZSet, Frame::NullArray)
}
