//! Streams: XADD, XLEN, XRANGE, XREVRANGE, XDEL, XTRIM, XSETID, XREAD (and the reading half of
//! XREADGROUP, whose group side is in `stream_groups.rs`). Storage is in `stream_store.rs`.
//!
//! XREAD BLOCK registers like BLPOP (`blocking.rs`) with its `$` ids replaced by the ids they
//! stood for, so a later XADD serves it what came after; a served client gets the one stream
//! that woke it, as Redis 7.0 replies.

use bytes::Bytes;

use super::args::{int_arg, is};
use super::ctx::Ctx;
use super::reply::{BlockOn, CmdError, CmdResult, syntax_error, wrong_arity};
use super::spec::flags::{FAST, READ_TX, READONLY, WRITE};
use super::spec::{Spec, commands};
use super::stream_store::{
    Stream, StreamId, entry_frame, entry_node, parse_add_id, parse_range, parse_strict_id,
};
use crate::frame::Frame;
use crate::keyspace::Type;

pub(super) static COMMANDS: &[Spec] = commands! {
    group "stream";
    /// Appends a new message to a stream. Creates the key if it doesn't exist.
    "xadd", -5, WRITE | FAST, 1, 1, 1 => xadd;
    /// Return the number of messages in a stream.
    "xlen", 2, READONLY | FAST, 1, 1, 1 => xlen;
    /// Returns the messages from a stream within a range of IDs.
    "xrange", -4, READ_TX, 1, 1, 1 => xrange(false);
    /// Returns the messages from a stream within a range of IDs in reverse order.
    "xrevrange", -4, READ_TX, 1, 1, 1 => xrange(true);
    /// Returns the number of messages after removing them from a stream.
    "xdel", -3, WRITE | FAST, 1, 1, 1 => xdel;
    /// Deletes messages from the beginning of a stream.
    "xtrim", -4, WRITE, 1, 1, 1 => xtrim;
    /// An internal command for replicating stream values.
    "xsetid", -3, WRITE | FAST, 1, 1, 1 => xsetid;
    /// Returns messages from multiple streams with IDs greater than the ones requested. Blocks
    /// until a message is available otherwise.
    "xread", -4, READ_TX, 0, 0, 0 => xread;
};

/// How XADD and XTRIM trim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Strategy {
    None,
    MaxLen(u64),
    MinId(StreamId),
}

/// XADD's and XTRIM's options.
struct TrimArgs {
    strategy: Strategy,
    approx: bool,
    /// Entries a trim may remove (0: no limit).
    limit: u64,
    no_mkstream: bool,
    /// XADD's id and whether its sequence was given; the index of the argument after it.
    id: Option<(StreamId, bool)>,
    next: usize,
}

/// Parses XADD's (`xadd`) or XTRIM's options from `args[2]` on, as Redis does.
fn trim_args(args: &[Bytes], xadd: bool, per_node: u64) -> Result<TrimArgs, CmdError> {
    let mut t = TrimArgs {
        strategy: Strategy::None,
        approx: false,
        limit: 0,
        no_mkstream: false,
        id: None,
        next: args.len(),
    };
    let mut limit_given = false;
    let mut i = 2;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let opt = &args[i];
        if xadd && &opt[..] == b"*" {
            break;
        }
        let maxlen = is(opt, "maxlen");
        if (maxlen || is(opt, "minid")) && more > 0 {
            if t.strategy != Strategy::None {
                return Err(Frame::err(
                    "syntax error, MAXLEN and MINID options at the same time are not compatible",
                )
                .into());
            }
            t.approx = false;
            let next = &args[i + 1][..];
            if more >= 2 && (next == b"~" || next == b"=") {
                t.approx = next == b"~";
                i += 1;
            }
            let value = &args[i + 1];
            t.strategy = if maxlen {
                let n = int_arg(value)?;
                if n < 0 {
                    return Err(Frame::err("The MAXLEN argument must be >= 0.").into());
                }
                Strategy::MaxLen(n as u64)
            } else {
                Strategy::MinId(parse_strict_id(value)?)
            };
            i += 2;
        } else if is(opt, "limit") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(Frame::err("The LIMIT argument must be >= 0.").into());
            }
            t.limit = n as u64;
            limit_given = true;
            i += 2;
        } else if xadd && is(opt, "nomkstream") {
            t.no_mkstream = true;
            i += 1;
        } else if xadd {
            t.id = Some(parse_add_id(opt)?);
            break;
        } else {
            return Err(syntax_error());
        }
    }
    t.next = i + 1;
    if t.limit > 0 && t.strategy == Strategy::None {
        return Err(Frame::err(
            "syntax error, LIMIT cannot be used without specifying a trimming strategy",
        )
        .into());
    }
    if !xadd && t.strategy == Strategy::None {
        return Err(
            Frame::err("syntax error, XTRIM must be called with a trimming strategy").into(),
        );
    }
    if limit_given {
        if !t.approx {
            return Err(Frame::err(
                "syntax error, LIMIT cannot be used without the special ~ option",
            )
            .into());
        }
    } else if t.approx {
        // At most 100 nodes' worth, as Redis bounds a trim's work.
        t.limit = match per_node.saturating_mul(100) {
            0 => 10_000,
            n => n.min(1_000_000),
        };
    }
    Ok(t)
}

/// Trims `s` as `t` says; returns how many entries went. Whole nodes go from the head; with
/// `~` only whole nodes (as Redis's listpacks), else entries of the next node too.
fn trim(ctx: &mut Ctx<'_, '_>, s: &mut Stream, t: &TrimArgs) -> Result<u64, CmdError> {
    let mut deleted = 0;
    match (t.strategy, t.approx) {
        (Strategy::None, _) => return Ok(0),
        // Exact trims remove the same entries whatever the nodes are.
        (Strategy::MaxLen(max), false) => {
            while s.meta.len > max {
                let n = usize::try_from(s.meta.len - max)
                    .unwrap_or(usize::MAX)
                    .min(1024);
                let batch = ctx.stream_entries(s, StreamId::MIN, StreamId::MAX, n, false)?;
                if batch.is_empty() {
                    // (The length says more than the records hold: a damaged stream.)
                    return Err(Frame::err("corrupt stream: fewer entries than its length").into());
                }
                for (id, _) in batch {
                    ctx.remove_entry(s, id)?;
                    deleted += 1;
                }
            }
        }
        (Strategy::MinId(min), false) => {
            while let Some(last) = min.prev() {
                let batch = ctx.stream_entries(s, StreamId::MIN, last, 1024, false)?;
                if batch.is_empty() {
                    break;
                }
                for (id, _) in batch {
                    ctx.remove_entry(s, id)?;
                    deleted += 1;
                }
            }
        }
        (strategy, true) => loop {
            if let Strategy::MaxLen(max) = strategy
                && s.meta.len <= max
            {
                break;
            }
            // The first node's size is kept in the metadata once known: a trim that cannot
            // remove it (most XADD … MAXLEN ~) reads no entry.
            let mut node = None;
            let n = match strategy {
                Strategy::MaxLen(_) if s.head_node != 0 => s.head_count,
                _ => {
                    let entries = head_node(ctx, s)?;
                    (s.head_node, s.head_count) = match entries.first() {
                        Some(&(_, number)) => (number, entries.len() as u64),
                        None => (0, 0),
                    };
                    node.insert(entries).len() as u64
                }
            };
            if n == 0 || (t.limit > 0 && deleted + n > t.limit) {
                break;
            }
            let whole = match strategy {
                Strategy::MaxLen(max) => s.meta.len - n >= max,
                Strategy::MinId(min) => node
                    .as_ref()
                    .and_then(|v| v.last())
                    .is_some_and(|&(last, _)| last < min),
                Strategy::None => false,
            };
            if !whole {
                break;
            }
            let entries = match node {
                Some(v) => v,
                None => head_node(ctx, s)?,
            };
            for (id, _) in entries {
                ctx.remove_entry(s, id)?;
            }
            s.head_node = 0;
            deleted += n;
        },
    }
    if deleted > 0 {
        if !t.approx {
            // Entries of the first node went: its size is no longer known.
            s.head_node = 0;
        }
        ctx.refresh_first(s)?;
    }
    Ok(deleted)
}

/// The entries of the stream's first node (ids and nodes).
fn head_node(ctx: &mut Ctx<'_, '_>, s: &Stream) -> Result<Vec<(StreamId, u64)>, CmdError> {
    let mut out: Vec<(StreamId, u64)> = Vec::new();
    let mut from = StreamId::MIN;
    loop {
        let batch = ctx.stream_entries(s, from, StreamId::MAX, 128, false)?;
        let full = batch.len() == 128;
        for (id, v) in batch {
            let node = entry_node(&v)?;
            if out.first().is_some_and(|&(_, first)| first != node) {
                return Ok(out);
            }
            out.push((id, node));
        }
        match out.last().and_then(|(id, _)| id.next()) {
            Some(next) if full => from = next,
            _ => return Ok(out),
        }
    }
}

fn xadd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let per_node = ctx.stream_node_entries();
    let t = trim_args(args, true, per_node)?;
    let first_field = t.next;
    let fields = args.len().saturating_sub(first_field);
    if fields < 2 || !fields.is_multiple_of(2) {
        return Ok(wrong_arity("xadd"));
    }
    if let Some((id, true)) = t.id
        && id.is_zero()
    {
        return Err(Frame::err("The ID specified in XADD must be greater than 0-0").into());
    }
    let key = &args[1];
    let mut s = match ctx.stream(key)? {
        Some(s) => s,
        None if t.no_mkstream => return Ok(Frame::Null),
        None => ctx.new_stream(),
    };
    if s.last == StreamId::MAX {
        return Err(Frame::err(
            "The stream has exhausted the last possible ID, unable to add more items",
        )
        .into());
    }
    let too_small = || {
        Frame::err("The ID specified in XADD is equal or smaller than the target stream top item")
    };
    let id = match t.id {
        Some((id, true)) => id,
        // The sequence of the last id's millisecond, incremented. With none left Redis 7.0
        // fails without saying why, and replies its other XADD error.
        Some((id, false)) if id.ms == s.last.ms => match s.last.seq {
            u64::MAX => return Err(Frame::err("Elements are too large to be stored").into()),
            seq => StreamId {
                ms: id.ms,
                seq: seq + 1,
            },
        },
        Some((id, false)) => id,
        None => {
            let now = ctx.now_ms();
            if now > s.last.ms {
                StreamId { ms: now, seq: 0 }
            } else {
                s.last.next().ok_or_else(too_small)?
            }
        }
    };
    if id <= s.last {
        return Err(too_small().into());
    }
    ctx.append_entry(&mut s, id, &args[first_field..], per_node)?;
    if trim(ctx, &mut s, &t)? > 0 {
        // After the command's own `xadd`, as Redis announces them.
        ctx.late_stream_event("xtrim", key);
    }
    ctx.save_stream(key, &mut s)?;
    Ok(id.frame())
}

fn xlen(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let s = ctx.stream(&args[1])?;
    Ok(Frame::Integer(s.map_or(0, |s| s.meta.len as i64)))
}

fn xrange(ctx: &mut Ctx<'_, '_>, args: &[Bytes], rev: bool) -> CmdResult {
    let (start, end) = if rev {
        (&args[3], &args[2])
    } else {
        (&args[2], &args[3])
    };
    let (lo, hi) = parse_range(start, end)?;
    let mut count: i64 = -1;
    let mut i = 4;
    while i < args.len() {
        if is(&args[i], "count") && i + 1 < args.len() {
            count = int_arg(&args[i + 1])?.max(0);
            i += 2;
        } else {
            return Err(syntax_error());
        }
    }
    let Some(s) = ctx.stream(&args[1])? else {
        return Ok(Frame::Array(Vec::new()));
    };
    if count == 0 {
        return Ok(Frame::NullArray);
    }
    let limit = usize::try_from(count).unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for (id, v) in ctx.stream_entries(&s, lo, hi, limit, rev)? {
        out.push(entry_frame(id, &v)?);
    }
    Ok(Frame::Array(out))
}

fn xdel(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(mut s) = ctx.stream(&args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let ids = args[2..]
        .iter()
        .map(|a| parse_strict_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut deleted = 0;
    let mut first_gone = false;
    for id in ids {
        if ctx.delete_entry(&mut s, id)? {
            first_gone |= id == s.first;
            s.max_deleted = s.max_deleted.max(id);
            deleted += 1;
        }
    }
    if deleted > 0 {
        if s.meta.len == 0 || first_gone {
            ctx.refresh_first(&mut s)?;
        }
        ctx.update_stream(&args[1], &mut s)?;
    }
    Ok(Frame::Integer(deleted))
}

fn xtrim(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let t = trim_args(args, false, ctx.stream_node_entries())?;
    let Some(mut s) = ctx.stream(&args[1])? else {
        return Ok(Frame::Integer(0));
    };
    let deleted = trim(ctx, &mut s, &t)?;
    if deleted > 0 {
        ctx.update_stream(&args[1], &mut s)?;
    }
    Ok(Frame::Integer(deleted as i64))
}

fn xsetid(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let id = parse_strict_id(&args[2])?;
    let mut entries_added: Option<u64> = None;
    let mut max_deleted = StreamId::MIN;
    let mut i = 3;
    while i < args.len() {
        let more = args.len() - 1 - i;
        if is(&args[i], "entriesadded") && more > 0 {
            let n = int_arg(&args[i + 1])?;
            if n < 0 {
                return Err(Frame::err("entries_added must be positive").into());
            }
            entries_added = Some(n as u64);
        } else if is(&args[i], "maxdeletedid") && more > 0 {
            max_deleted = parse_strict_id(&args[i + 1])?;
            if id < max_deleted {
                return Err(Frame::err(
                    "The ID specified in XSETID is smaller than the provided max_deleted_entry_id",
                )
                .into());
            }
        } else {
            return Err(syntax_error());
        }
        i += 2;
    }
    let Some(mut s) = ctx.stream(&args[1])? else {
        return Err(Frame::err("no such key").into());
    };
    if s.meta.len > 0 {
        let top = ctx
            .stream_entries(&s, StreamId::MIN, StreamId::MAX, 1, true)?
            .first()
            .map_or(StreamId::MIN, |(id, _)| *id);
        if id < top {
            return Err(Frame::err(
                "The ID specified in XSETID is smaller than the target stream top item",
            )
            .into());
        }
        if entries_added.is_some_and(|n| s.meta.len > n) {
            return Err(Frame::err(
                "The entries_added specified in XSETID is smaller than the target stream length",
            )
            .into());
        }
    }
    s.last = id;
    if let Some(n) = entries_added {
        s.entries_added = n;
    }
    if !max_deleted.is_zero() {
        s.max_deleted = max_deleted;
    }
    ctx.update_stream(&args[1], &mut s)?;
    Ok(Frame::Simple("OK"))
}

/// XREAD's and XREADGROUP's arguments.
pub(super) struct ReadArgs {
    /// BLOCK's timeout (`Some(None)`: for ever).
    pub block: Option<Option<std::time::Duration>>,
    /// COUNT (0: no limit).
    pub count: u64,
    pub noack: bool,
    /// GROUP's group and consumer.
    pub group: Option<(Bytes, Bytes)>,
    /// Index of the first key.
    pub keys_at: usize,
    /// Number of streams.
    pub streams: usize,
}

/// Parses XREAD's (or, with `group`, XREADGROUP's) options.
pub(super) fn read_args(
    args: &[Bytes],
    xreadgroup: bool,
    in_script: bool,
) -> Result<ReadArgs, CmdError> {
    let mut r = ReadArgs {
        block: None,
        count: 0,
        noack: false,
        group: None,
        keys_at: 0,
        streams: 0,
    };
    let mut i = 1;
    while i < args.len() {
        let more = args.len() - 1 - i;
        let o = &args[i];
        if is(o, "block") && more > 0 {
            if in_script {
                return Err(Frame::err(format!(
                    "{} command is not allowed with BLOCK option from scripts",
                    String::from_utf8_lossy(&args[0])
                ))
                .into());
            }
            let ms = int_arg(&args[i + 1])
                .map_err(|_| Frame::err("timeout is not an integer or out of range"))?;
            if ms < 0 {
                return Err(Frame::err("timeout is negative").into());
            }
            r.block = Some((ms > 0).then(|| std::time::Duration::from_millis(ms as u64)));
            i += 2;
        } else if is(o, "count") && more > 0 {
            r.count = int_arg(&args[i + 1])?.max(0) as u64;
            i += 2;
        } else if is(o, "streams") && more > 0 {
            let n = args.len() - i - 1;
            if !n.is_multiple_of(2) {
                return Err(Frame::err(
                    "Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
                )
                .into());
            }
            r.keys_at = i + 1;
            r.streams = n / 2;
            break;
        } else if is(o, "group") && more >= 2 {
            if !xreadgroup {
                return Err(Frame::err(
                    "The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
                )
                .into());
            }
            r.group = Some((args[i + 1].clone(), args[i + 2].clone()));
            i += 3;
        } else if is(o, "noack") {
            if !xreadgroup {
                return Err(Frame::err(
                    "The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
                )
                .into());
            }
            r.noack = true;
            i += 1;
        } else {
            return Err(syntax_error());
        }
    }
    if r.keys_at == 0 {
        return Err(syntax_error());
    }
    if xreadgroup && r.group.is_none() {
        return Err(Frame::err("Missing GROUP option for XREADGROUP").into());
    }
    Ok(r)
}

/// One stream's part of an XREAD reply.
pub(super) fn stream_reply(key: &Bytes, entries: Vec<Frame>) -> (Frame, Frame) {
    (Frame::Bulk(key.clone()), Frame::Array(entries))
}

/// XREAD's reply of several streams: a map in RESP3, an array of pairs in RESP2.
fn read_reply(ctx: &Ctx<'_, '_>, parts: Vec<(Frame, Frame)>) -> Frame {
    if ctx.conn.resp3 {
        Frame::Map(parts)
    } else {
        Frame::Array(
            parts
                .into_iter()
                .map(|(k, v)| Frame::Array(vec![k, v]))
                .collect(),
        )
    }
}

/// Blocks for `keys` with `args` (the command with its ids resolved) run again when one
/// changes.
pub(super) fn block_read(
    ctx: &Ctx<'_, '_>,
    keys: Vec<Bytes>,
    timeout: Option<std::time::Duration>,
    args: Vec<Bytes>,
) -> CmdResult {
    if !ctx.may_block {
        return Ok(Frame::NullArray);
    }
    Err(CmdError::Block(Box::new(BlockOn {
        keys,
        timeout,
        ty: Type::Stream,
        timeout_reply: Frame::NullArray,
        args: Some(args),
    })))
}

/// The COUNT a blocked read runs with: its own, or 1000 so that an old id does not make one
/// huge reply (Redis's default for a blocked read).
pub(super) fn blocked_count(count: u64) -> Bytes {
    Bytes::from((if count == 0 { 1000 } else { count }).to_string())
}

/// The end of XREAD and XREADGROUP: the reply if some stream had entries (`Err`), the null
/// reply without BLOCK (`Err`), else how long to block (`Ok`).
pub(super) fn finish_read(
    ctx: &Ctx<'_, '_>,
    parts: Vec<(Frame, Frame)>,
    block: Option<Option<std::time::Duration>>,
) -> Result<Option<std::time::Duration>, Frame> {
    if !parts.is_empty() {
        return Err(read_reply(ctx, parts));
    }
    block.ok_or(Frame::NullArray)
}

fn xread(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let r = read_args(args, false, ctx.conn.in_script)?;
    let keys = &args[r.keys_at..r.keys_at + r.streams];
    let id_args = &args[r.keys_at + r.streams..];
    // Resolve every id first (`$` is the stream's last id now), as Redis does.
    let mut ids = Vec::with_capacity(r.streams);
    let mut streams = Vec::with_capacity(r.streams);
    for (key, arg) in keys.iter().zip(id_args) {
        let s = ctx.stream(key)?;
        ids.push(match &arg[..] {
            b"$" => s.as_ref().map_or(StreamId::MIN, |s| s.last),
            b">" => {
                return Err(Frame::err(
                    "The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option.",
                )
                .into());
            }
            _ => parse_strict_id(arg)?,
        });
        streams.push(s);
    }
    let limit = if r.count == 0 {
        usize::MAX
    } else {
        usize::try_from(r.count).unwrap_or(usize::MAX)
    };
    let mut parts = Vec::new();
    for ((key, &after), s) in keys.iter().zip(&ids).zip(streams) {
        let Some(s) = s else {
            continue;
        };
        let Some(from) = after.next() else {
            continue;
        };
        let entries = ctx.stream_entries(&s, from, StreamId::MAX, limit, false)?;
        // A blocked reader is served once the stream's last id passed its own, even if the
        // entries after it were deleted meanwhile (then with none), as Redis 7.0 serves it.
        if entries.is_empty() && !(ctx.conn.serving_blocked && s.last > after) {
            continue;
        }
        let mut out = Vec::with_capacity(entries.len());
        for (id, v) in entries {
            out.push(entry_frame(id, &v)?);
        }
        parts.push(stream_reply(key, out));
    }
    let timeout = match finish_read(ctx, parts, r.block) {
        Ok(timeout) => timeout,
        Err(reply) => return Ok(reply),
    };
    // Run again when served: one stream, its id resolved, no BLOCK.
    let mut again = vec![
        Bytes::from_static(b"XREAD"),
        Bytes::from_static(b"COUNT"),
        blocked_count(r.count),
        Bytes::from_static(b"STREAMS"),
    ];
    again.extend(keys.iter().cloned());
    again.extend(ids.iter().map(|id| Bytes::from(id.to_string())));
    block_read(ctx, keys.to_vec(), timeout, again)
}
