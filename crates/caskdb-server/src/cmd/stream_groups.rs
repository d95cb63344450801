//! Consumer groups: XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, and XINFO, as
//! Redis 7.0 answers them. A group's state, its consumers and its pending entries are records
//! of the stream (`stream_store.rs`), written in the command's transaction: an acknowledged
//! XREADGROUP or XACK is on disk with its reply under `appendfsync always`.

use bytes::Bytes;

use super::args::{int_arg, is};
use super::ctx::Ctx;
use super::reply::{CmdError, CmdResult, help, subcommand_syntax_error, syntax_error};
use super::spec::flags::{CONTAINER, FAST, READ_TX, WRITE};
use super::spec::{Spec, commands};
use super::stream_store::{
    Group, Pending, Stream, StreamId, entry_frame, parse_id, parse_interval, parse_range,
    parse_strict_id,
};
use super::streams::{block_read, blocked_count, finish_read, read_args, stream_reply};
use crate::frame::Frame;
use crate::keyspace;
use crate::notify;

pub(super) static COMMANDS: &[Spec] = commands! {
    group "stream";
    /// A container for consumer groups commands.
    "xgroup", -2, WRITE | CONTAINER, 0, 0, 0 => xgroup;
    /// Returns new or historical messages from a stream for a consumer in a group. Blocks until
    /// a message is available otherwise.
    "xreadgroup", -7, WRITE, 0, 0, 0 => xreadgroup;
    /// Returns the number of messages that were successfully acknowledged by the consumer group
    /// member of a stream.
    "xack", -4, WRITE | FAST, 1, 1, 1 => xack;
    /// Returns the information and entries from a stream consumer group's pending entries list.
    "xpending", -3, READ_TX, 1, 1, 1 => xpending;
    /// Changes, or acquires, ownership of a message in a consumer group, as if the message was
    /// delivered a consumer group member.
    "xclaim", -6, WRITE | FAST, 1, 1, 1 => xclaim;
    /// Changes, or acquires, ownership of messages in a consumer group, as if the messages were
    /// delivered to as consumer group member.
    "xautoclaim", -6, WRITE | FAST, 1, 1, 1 => xautoclaim;
    /// A container for stream introspection commands.
    "xinfo", -2, READ_TX | CONTAINER, 0, 0, 0 => xinfo;
};

fn no_such_key() -> CmdError {
    Frame::err("no such key").into()
}

fn lossy(b: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(b)
}

/// NOGROUP for `key` and `group`, with `tail` after Redis's common text.
fn no_group(key: &[u8], group: &[u8], tail: &str) -> CmdError {
    Frame::Error(format!(
        "NOGROUP No such key '{}' or consumer group '{}'{tail}",
        lossy(key),
        lossy(group)
    ))
    .into()
}

impl Ctx<'_, '_> {
    /// A stream keyspace event (`xgroup-create`…) for `key`, when they are on.
    fn stream_event(&mut self, name: &'static str, key: &[u8]) {
        self.push_stream_event(false, name, key);
    }

    /// A stream keyspace event for `key` that comes after the command's own (XADD's
    /// `xtrim`), when they are on.
    pub(super) fn late_stream_event(&mut self, name: &'static str, key: &[u8]) {
        self.push_stream_event(true, name, key);
    }

    fn push_stream_event(&mut self, late: bool, name: &'static str, key: &[u8]) {
        if notify::wanted(self.shared.config.notify_flags(), notify::STREAM) {
            let event = notify::Event {
                class: notify::STREAM,
                name,
                db: self.conn.db,
                key: Bytes::copy_from_slice(key),
            };
            if late {
                self.conn.late_events.push(event);
            } else {
                self.conn.events.push(event);
            }
        }
    }

    /// Wakes the clients blocked on `key` (XGROUP DESTROY tells XREADGROUP's).
    fn signal_ready(&mut self, key: &[u8]) {
        let ek = keyspace::engine_key(self.conn.db, key);
        if self.shared.blocking.waits_on(&ek) && !self.conn.ready.contains(&ek) {
            self.conn.ready.push(ek);
        }
    }

    /// Consumer `name` of `group`, created if new (with its event), seen now either way.
    fn use_consumer(
        &mut self,
        s: &Stream,
        key: &[u8],
        group: &[u8],
        name: &[u8],
    ) -> Result<(), CmdError> {
        if self.consumer(s, group, name)?.is_none() {
            self.stream_event("xgroup-createconsumer", key);
        }
        self.touch_consumer(s, group, name)
    }
}

const XGROUP_HELP: &[&str] = &[
    "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CREATE <key> <groupname> <id|$> [option]",
    "    Create a new consumer group. Options are:",
    "    * MKSTREAM",
    "      Create the empty stream if it does not exist.",
    "    * ENTRIESREAD entries_read",
    "      Set the group's entries_read counter (internal use).",
    "CREATECONSUMER <key> <groupname> <consumer>",
    "    Create a new consumer in the specified group.",
    "DELCONSUMER <key> <groupname> <consumer>",
    "    Remove the specified consumer.",
    "DESTROY <key> <groupname>",
    "    Remove the specified group.",
    "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
    "    Set the current group ID and entries_read counter.",
    "HELP",
    "    Prints this help.",
];

fn xgroup(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if let Some(refusal) = super::reply::subcommand_error("xgroup", args) {
        return Ok(refusal);
    }
    let sub = &args[1];
    if is(sub, "help") {
        return Ok(help(XGROUP_HELP));
    }
    let bad = || -> CmdResult { Ok(subcommand_syntax_error(sub, "xgroup")) };
    let (create, setid) = (is(sub, "create"), is(sub, "setid"));
    let mut mkstream = false;
    let mut entries_read: i64 = -1;
    let mut i = 5;
    while i < args.len() {
        if create && is(&args[i], "mkstream") {
            mkstream = true;
            i += 1;
        } else if (create || setid) && is(&args[i], "entriesread") && i + 1 < args.len() {
            entries_read = int_arg(&args[i + 1])?;
            if entries_read < 0 && entries_read != -1 {
                return Err(Frame::err("value for ENTRIESREAD must be positive or -1").into());
            }
            i += 2;
        } else {
            return bad();
        }
    }
    let key = &args[2];
    let name = &args[3];
    let stream = ctx.stream(key)?;
    let mut group = None;
    if !mkstream {
        let Some(s) = &stream else {
            return Err(Frame::err(
                "The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.",
            )
            .into());
        };
        group = ctx.group(s, name)?;
        if group.is_none() && (setid || is(sub, "createconsumer") || is(sub, "delconsumer")) {
            return Err(Frame::Error(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                lossy(name),
                lossy(key)
            ))
            .into());
        }
    }
    if create && (5..=8).contains(&args.len()) {
        let id = if &args[4][..] == b"$" {
            stream.as_ref().map_or(StreamId::MIN, |s| s.last)
        } else {
            parse_strict_id(&args[4])?
        };
        let s = match stream {
            Some(s) => s,
            None => {
                let mut s = ctx.new_stream();
                ctx.save_stream(key, &mut s)?;
                s
            }
        };
        if ctx.group(&s, name)?.is_some() {
            return Err(Frame::Error("BUSYGROUP Consumer Group name already exists".into()).into());
        }
        return set_group(ctx, &s, key, name, (id, entries_read), "xgroup-create");
    }
    let (Some(s), true) = (stream, !mkstream) else {
        return bad();
    };
    if setid && (args.len() == 5 || args.len() == 7) {
        let id = if &args[4][..] == b"$" {
            s.last
        } else {
            parse_id(&args[4])?
        };
        return set_group(ctx, &s, key, name, (id, entries_read), "xgroup-setid");
    }
    if is(sub, "destroy") && args.len() == 4 {
        if group.is_none() {
            return Ok(Frame::Integer(0));
        }
        ctx.destroy_group(&s, name)?;
        ctx.stream_event("xgroup-destroy", key);
        ctx.signal_ready(key);
        return Ok(Frame::Integer(1));
    }
    if is(sub, "createconsumer") && args.len() == 5 {
        if ctx.consumer(&s, name, &args[4])?.is_some() {
            return Ok(Frame::Integer(0));
        }
        ctx.touch_consumer(&s, name, &args[4])?;
        ctx.stream_event("xgroup-createconsumer", key);
        return Ok(Frame::Integer(1));
    }
    if is(sub, "delconsumer") && args.len() == 5 {
        if ctx.consumer(&s, name, &args[4])?.is_none() {
            return Ok(Frame::Integer(0));
        }
        let pending = ctx.delete_consumer(&s, name, &args[4])?;
        ctx.stream_event("xgroup-delconsumer", key);
        return Ok(Frame::Integer(pending as i64));
    }
    bad()
}

/// XGROUP CREATE and SETID: group `name` of stream `key` delivered up to `last`, having read
/// `entries_read`; the keyspace event `event`.
fn set_group(
    ctx: &mut Ctx<'_, '_>,
    s: &Stream,
    key: &[u8],
    name: &[u8],
    (last, entries_read): (StreamId, i64),
    event: &'static str,
) -> CmdResult {
    ctx.put_group(s, name, &Group { last, entries_read })?;
    ctx.stream_event(event, key);
    Ok(Frame::Simple("OK"))
}

/// Which entries XREADGROUP asks for on one stream.
#[derive(Clone, Copy)]
enum Want {
    /// `>`: entries never delivered to the group.
    New,
    /// An id: the consumer's own pending entries after it.
    History(StreamId),
}

pub(super) fn xreadgroup(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let r = read_args(args, true, ctx.conn.in_script)?;
    let Some((group_name, consumer)) = r.group.clone() else {
        return Err(syntax_error());
    };
    let keys = &args[r.keys_at..r.keys_at + r.streams];
    let id_args = &args[r.keys_at + r.streams..];
    let mut plan = Vec::with_capacity(r.streams);
    for (key, arg) in keys.iter().zip(id_args) {
        let s = ctx.stream(key)?;
        let group = match &s {
            Some(s) => ctx.group(s, &group_name)?,
            None => None,
        };
        let (Some(s), Some(group)) = (s, group) else {
            if ctx.conn.serving_blocked {
                return Err(Frame::Error(
                    "NOGROUP the consumer group this client was blocked on no longer exists".into(),
                )
                .into());
            }
            return Err(no_group(
                key,
                &group_name,
                " in XREADGROUP with GROUP option",
            ));
        };
        let want = match &arg[..] {
            b"$" => {
                return Err(Frame::err(
                    "The $ ID is meaningless in the context of XREADGROUP: you want to read the history of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID would just return an empty result set.",
                )
                .into());
            }
            b">" => Want::New,
            // The largest id is how Redis marks `>`: it reads as `>`.
            _ => match parse_strict_id(arg)? {
                StreamId::MAX => Want::New,
                id => Want::History(id),
            },
        };
        plan.push((key, s, group, want));
    }
    let limit = if r.count == 0 {
        usize::MAX
    } else {
        usize::try_from(r.count).unwrap_or(usize::MAX)
    };
    let now = ctx.now_ms();
    let mut parts = Vec::new();
    let mut served: Vec<&Bytes> = Vec::new();
    for (key, s, group, want) in plan {
        // The same stream named twice sees what the first delivery did: read again.
        let mut group = if served.contains(&key) {
            match ctx.group(&s, &group_name)? {
                Some(g) => g,
                None => continue,
            }
        } else {
            group
        };
        served.push(key);
        // Served at once: history always; new entries if the group has not had the last one.
        let from = match want {
            Want::History(id) => id.next(),
            Want::New => {
                // (A blocked reader is served once the last id passed the group's, even with
                // the entries after it deleted, as in Redis 7.0.)
                let top = if ctx.conn.serving_blocked {
                    s.last
                } else if s.meta.len == 0 {
                    continue;
                } else if ctx.stream_entry_exists(&s, s.last)? {
                    // (The last id is the last entry's unless XDEL removed it: one lookup.)
                    s.last
                } else {
                    ctx.stream_entries(&s, StreamId::MIN, StreamId::MAX, 1, true)?
                        .first()
                        .map_or(StreamId::MIN, |(id, _)| *id)
                };
                if top <= group.last {
                    continue;
                }
                group.last.next()
            }
        };
        ctx.use_consumer(&s, key, &group_name, &consumer)?;
        let mut out = Vec::new();
        if let Want::History(_) = want {
            let ids = match from {
                Some(from) => {
                    ctx.consumer_pending(&s, &group_name, &consumer, from, StreamId::MAX, limit)?
                }
                None => Vec::new(),
            };
            for id in ids {
                match ctx.stream_entry(&s, id)? {
                    None => out.push(Frame::Array(vec![id.frame(), Frame::NullArray])),
                    Some(v) => {
                        out.push(entry_frame(id, &v)?);
                        if let Some(mut p) = ctx.pending(&s, &group_name, id)? {
                            p.delivered_at = now;
                            p.deliveries += 1;
                            let owner = p.consumer.clone();
                            ctx.put_pending(&s, &group_name, id, &p, Some(&owner))?;
                        }
                    }
                }
            }
        } else if let Some(from) = from {
            for (id, v) in ctx.stream_entries(&s, from, StreamId::MAX, limit, false)? {
                deliver(&s, &mut group, id);
                out.push(entry_frame(id, &v)?);
                if !r.noack {
                    let previous = ctx.pending(&s, &group_name, id)?.map(|p| p.consumer);
                    let p = Pending {
                        delivered_at: now,
                        deliveries: 1,
                        consumer: consumer.clone(),
                    };
                    ctx.put_pending(&s, &group_name, id, &p, previous.as_deref())?;
                }
            }
            ctx.put_group(&s, &group_name, &group)?;
        }
        parts.push(stream_reply(key, out));
    }
    let timeout = match finish_read(ctx, parts, r.block) {
        Ok(timeout) => timeout,
        Err(reply) => return Ok(reply),
    };
    // Run again when served: the same command without BLOCK.
    let mut again = vec![
        Bytes::from_static(b"XREADGROUP"),
        Bytes::from_static(b"GROUP"),
        group_name,
        consumer,
        Bytes::from_static(b"COUNT"),
        blocked_count(r.count),
    ];
    if r.noack {
        again.push(Bytes::from_static(b"NOACK"));
    }
    again.push(Bytes::from_static(b"STREAMS"));
    again.extend(args[r.keys_at..].iter().cloned());
    block_read(ctx, keys.to_vec(), timeout, again)
}

/// Moves the group's last delivered id to `id` and counts the read, as Redis does.
fn deliver(s: &Stream, group: &mut Group, id: StreamId) {
    if id > group.last {
        if group.entries_read != -1 && !s.has_tombstones_from(id) {
            group.entries_read += 1;
        } else if s.entries_added > 0 {
            group.entries_read = s.entries_read_at(id).unwrap_or(-1);
        }
        group.last = id;
    }
}

fn xack(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(s) = ctx.stream(&args[1])? else {
        return Ok(Frame::Integer(0));
    };
    if ctx.group(&s, &args[2])?.is_none() {
        return Ok(Frame::Integer(0));
    }
    let ids = args[3..]
        .iter()
        .map(|a| parse_strict_id(a))
        .collect::<Result<Vec<_>, _>>()?;
    let mut acked = 0;
    for id in ids {
        if let Some(p) = ctx.pending(&s, &args[2], id)? {
            ctx.delete_pending(&s, &args[2], id, &p)?;
            acked += 1;
        }
    }
    Ok(Frame::Integer(acked))
}

fn xpending(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let n = args.len();
    if n != 3 && !(6..=9).contains(&n) {
        return Err(syntax_error());
    }
    let mut range = None;
    let mut min_idle = 0;
    let mut consumer = None;
    if n >= 6 {
        let mut at = 3;
        if is(&args[3], "idle") {
            min_idle = int_arg(&args[4])?;
            if n < 8 {
                return Err(syntax_error());
            }
            at += 2;
        }
        let count = int_arg(&args[at + 2])?.max(0);
        let (lo, hi) = parse_range(&args[at], &args[at + 1])?;
        consumer = args.get(at + 3).cloned();
        range = Some((lo, hi, count));
    }
    let (key, name) = (&args[1], &args[2]);
    let s = ctx.stream(key)?;
    let group = match &s {
        Some(s) => ctx.group(s, name)?,
        None => None,
    };
    let (Some(s), Some(_)) = (s, group) else {
        return Err(no_group(key, name, ""));
    };
    let Some((lo, hi, count)) = range else {
        let total = ctx.group_pending_count(&s, name)?;
        if total == 0 {
            return Ok(Frame::Array(vec![
                Frame::Integer(0),
                Frame::Null,
                Frame::Null,
                Frame::NullArray,
            ]));
        }
        let edge = |ctx: &mut Ctx<'_, '_>, rev| -> Result<Frame, CmdError> {
            Ok(ctx
                .pending_range(&s, name, StreamId::MIN, StreamId::MAX, 1, rev)?
                .first()
                .map_or(Frame::Null, |(id, _)| id.frame()))
        };
        let first = edge(ctx, false)?;
        let last = edge(ctx, true)?;
        let mut owners = Vec::new();
        for (c, _) in ctx.consumers(&s, name)? {
            let n = ctx.consumer_pending_count(&s, name, &c)?;
            if n > 0 {
                owners.push(Frame::Array(vec![
                    Frame::Bulk(c),
                    Frame::Bulk(Bytes::from(n.to_string())),
                ]));
            }
        }
        return Ok(Frame::Array(vec![
            Frame::Integer(total as i64),
            first,
            last,
            Frame::Array(owners),
        ]));
    };
    let now = ctx.now_ms() as i64;
    let mut out = Vec::new();
    let mut left = count;
    let rows: Vec<(StreamId, Pending)> = match &consumer {
        Some(c) => {
            if ctx.consumer(&s, name, c)?.is_none() {
                return Ok(Frame::Array(Vec::new()));
            }
            let limit = if min_idle == 0 {
                usize::try_from(count).unwrap_or(usize::MAX)
            } else {
                usize::MAX
            };
            let ids = ctx.consumer_pending(&s, name, c, lo, hi, limit)?;
            let mut rows = Vec::with_capacity(ids.len());
            for id in ids {
                if min_idle == 0 && rows.len() as i64 >= count {
                    break;
                }
                if let Some(p) = ctx.pending(&s, name, id)? {
                    rows.push((id, p));
                }
            }
            rows
        }
        None => {
            let limit = if min_idle == 0 {
                usize::try_from(count).unwrap_or(usize::MAX)
            } else {
                usize::MAX
            };
            ctx.pending_range(&s, name, lo, hi, limit, false)?
        }
    };
    for (id, p) in rows {
        if left == 0 {
            break;
        }
        let idle = now.saturating_sub(p.delivered_at as i64);
        if min_idle != 0 && idle < min_idle {
            continue;
        }
        left -= 1;
        out.push(Frame::Array(vec![
            id.frame(),
            Frame::Bulk(p.consumer),
            Frame::Integer(idle.max(0)),
            Frame::Integer(p.deliveries as i64),
        ]));
    }
    Ok(Frame::Array(out))
}

/// Gives pending entry `id` (`p`, or a new one) to `consumer` with delivery time `at`.
#[allow(clippy::too_many_arguments)] // the claim's target and its settings
fn claim_one(
    ctx: &mut Ctx<'_, '_>,
    s: &Stream,
    group: &[u8],
    consumer: &Bytes,
    id: StreamId,
    (mut p, previous): (Pending, Option<Bytes>),
    at: u64,
    retry: Option<u64>,
    justid: bool,
) -> Result<(), CmdError> {
    p.delivered_at = at;
    match retry {
        Some(n) => p.deliveries = n,
        None if !justid => p.deliveries += 1,
        None => {}
    }
    p.consumer = consumer.clone();
    ctx.put_pending(s, group, id, &p, previous.as_deref())
}

fn xclaim(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let (key, name, consumer) = (&args[1], &args[2], &args[3]);
    let s = ctx.stream(key)?;
    let group = match &s {
        Some(s) => ctx.group(s, name)?,
        None => None,
    };
    let (Some(s), Some(mut group)) = (s, group) else {
        return Err(no_group(key, name, ""));
    };
    let min_idle = int_arg(&args[4])
        .map_err(|_| Frame::err("Invalid min-idle-time argument for XCLAIM"))?
        .max(0);
    let mut ids = Vec::new();
    let mut j = 5;
    while j < args.len() {
        match parse_strict_id(&args[j]) {
            Ok(id) => ids.push(id),
            Err(_) => break,
        }
        j += 1;
    }
    let now = ctx.now_ms() as i64;
    let (mut force, mut justid) = (false, false);
    let mut delivery: Option<i64> = None;
    let mut retry: Option<i64> = None;
    let mut last_id = StreamId::MIN;
    while j < args.len() {
        let more = args.len() - 1 - j;
        let opt = &args[j];
        let number = |a: &[u8], what: &str| {
            int_arg(a).map_err(|_| {
                CmdError::from(Frame::err(format!(
                    "Invalid {what} option argument for XCLAIM"
                )))
            })
        };
        if is(opt, "force") {
            force = true;
        } else if is(opt, "justid") {
            justid = true;
        } else if is(opt, "idle") && more > 0 {
            j += 1;
            delivery = Some(now.saturating_sub(number(&args[j], "IDLE")?));
        } else if is(opt, "time") && more > 0 {
            j += 1;
            delivery = Some(number(&args[j], "TIME")?);
        } else if is(opt, "retrycount") && more > 0 {
            j += 1;
            retry = Some(number(&args[j], "RETRYCOUNT")?);
        } else if is(opt, "lastid") && more > 0 {
            j += 1;
            last_id = parse_strict_id(&args[j])?;
        } else {
            return Err(Frame::err(format!("Unrecognized XCLAIM option '{}'", lossy(opt))).into());
        }
        j += 1;
    }
    if last_id > group.last {
        group.last = last_id;
        ctx.put_group(&s, name, &group)?;
    }
    let at = match delivery {
        Some(t) if (0..=now).contains(&t) => t as u64,
        _ => now as u64,
    };
    let retry = retry.and_then(|n| u64::try_from(n).ok());
    let mut out = Vec::new();
    let mut consumer_used = false;
    for id in ids {
        let pending = ctx.pending(&s, name, id)?;
        let Some(fields) = ctx.stream_entry(&s, id)? else {
            if let Some(p) = pending {
                ctx.delete_pending(&s, name, id, &p)?;
            }
            continue;
        };
        let p = match pending {
            Some(p) => {
                if min_idle > 0 && now.saturating_sub(p.delivered_at as i64) < min_idle {
                    continue;
                }
                let owner = p.consumer.clone();
                (p, Some(owner))
            }
            // FORCE: made pending now, whatever the idle time asked.
            None if force => (
                Pending {
                    delivered_at: now as u64,
                    deliveries: 1,
                    consumer: Bytes::new(),
                },
                None,
            ),
            None => continue,
        };
        if !consumer_used {
            ctx.use_consumer(&s, key, name, consumer)?;
            consumer_used = true;
        }
        claim_one(ctx, &s, name, consumer, id, p, at, retry, justid)?;
        out.push(if justid {
            id.frame()
        } else {
            entry_frame(id, &fields)?
        });
    }
    Ok(Frame::Array(out))
}

fn xautoclaim(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let (key, name, consumer) = (&args[1], &args[2], &args[3]);
    let min_idle = int_arg(&args[4])
        .map_err(|_| Frame::err("Invalid min-idle-time argument for XAUTOCLAIM"))?
        .max(0);
    let (mut from, ex) = parse_interval(&args[5], 0)?;
    if ex {
        from = from
            .next()
            .ok_or_else(|| Frame::err("invalid start ID for the interval"))?;
    }
    let mut count: i64 = 100;
    let mut justid = false;
    let mut j = 6;
    while j < args.len() {
        let more = args.len() - 1 - j;
        if is(&args[j], "count") && more > 0 {
            let max = i64::MAX / 16;
            count = match int_arg(&args[j + 1]) {
                Ok(n) if (1..=max).contains(&n) => n,
                _ => return Err(Frame::err("COUNT must be > 0").into()),
            };
            j += 1;
        } else if is(&args[j], "justid") {
            justid = true;
        } else {
            return Err(syntax_error());
        }
        j += 1;
    }
    let s = ctx.stream(key)?;
    let group = match &s {
        Some(s) => ctx.group(s, name)?,
        None => None,
    };
    let (Some(s), Some(_)) = (s, group) else {
        return Err(no_group(key, name, ""));
    };
    let now = ctx.now_ms();
    let mut attempts = count.saturating_mul(10);
    let mut claimed = Vec::new();
    let mut deleted = Vec::new();
    let mut consumer_used = false;
    let mut cursor = Some(from);
    let next = |ctx: &mut Ctx<'_, '_>, at: Option<StreamId>| match at {
        None => Ok(None),
        Some(at) => ctx
            .pending_range(&s, name, at, StreamId::MAX, 1, false)
            .map(|v| v.into_iter().next()),
    };
    while attempts > 0 && count > 0 {
        attempts -= 1;
        let Some((id, p)) = next(ctx, cursor)? else {
            cursor = None;
            break;
        };
        cursor = id.next();
        let Some(fields) = ctx.stream_entry(&s, id)? else {
            ctx.delete_pending(&s, name, id, &p)?;
            deleted.push(id.frame());
            count -= 1;
            continue;
        };
        if min_idle > 0 && (now as i64).saturating_sub(p.delivered_at as i64) < min_idle {
            continue;
        }
        if !consumer_used {
            ctx.use_consumer(&s, key, name, consumer)?;
            consumer_used = true;
        }
        let owner = p.consumer.clone();
        claim_one(
            ctx,
            &s,
            name,
            consumer,
            id,
            (p, Some(owner)),
            now,
            None,
            justid,
        )?;
        claimed.push(if justid {
            id.frame()
        } else {
            entry_frame(id, &fields)?
        });
        count -= 1;
    }
    let resume = next(ctx, cursor)?.map_or(StreamId::MIN, |(id, _)| id);
    Ok(Frame::Array(vec![
        resume.frame(),
        Frame::Array(claimed),
        Frame::Array(deleted),
    ]))
}

const XINFO_HELP: &[&str] = &[
    "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CONSUMERS <key> <groupname>",
    "    Show consumers of <groupname>.",
    "GROUPS <key>",
    "    Show the stream consumer groups.",
    "STREAM <key> [FULL [COUNT <count>]",
    "    Show information about the stream.",
    "HELP",
    "    Prints this help.",
];

fn field(name: &'static str, value: Frame) -> (Frame, Frame) {
    (Frame::bulk(name), value)
}

fn xinfo(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if let Some(refusal) = super::reply::subcommand_error("xinfo", args) {
        return Ok(refusal);
    }
    let sub = &args[1];
    if is(sub, "help") {
        return Ok(help(XINFO_HELP));
    }
    let key = &args[2];
    let Some(s) = ctx.stream(key)? else {
        return Err(no_such_key());
    };
    if is(sub, "consumers") && args.len() == 4 {
        let name = &args[3];
        if ctx.group(&s, name)?.is_none() {
            return Err(Frame::Error(format!(
                "NOGROUP No such consumer group '{}' for key name '{}'",
                lossy(name),
                lossy(key)
            ))
            .into());
        }
        let now = ctx.now_ms() as i64;
        let mut out = Vec::new();
        for (c, seen) in ctx.consumers(&s, name)? {
            let pending = ctx.consumer_pending_count(&s, name, &c)?;
            out.push(Frame::Map(vec![
                field("name", Frame::Bulk(c)),
                field("pending", Frame::Integer(pending as i64)),
                field(
                    "idle",
                    Frame::Integer(now.saturating_sub(seen as i64).max(0)),
                ),
            ]));
        }
        return Ok(Frame::Array(out));
    }
    if is(sub, "groups") && args.len() == 3 {
        let mut out = Vec::new();
        for (name, g) in ctx.groups(&s)? {
            let consumers = ctx.consumers(&s, &name)?.len();
            let pending = ctx.group_pending_count(&s, &name)?;
            out.push(Frame::Map(vec![
                field("name", Frame::Bulk(name)),
                field("consumers", Frame::Integer(consumers as i64)),
                field("pending", Frame::Integer(pending as i64)),
                field("last-delivered-id", g.last.frame()),
                field("entries-read", g.entries_read_frame()),
                field("lag", s.lag(&g).map_or(Frame::Null, Frame::Integer)),
            ]));
        }
        return Ok(Frame::Array(out));
    }
    if is(sub, "stream") {
        return stream_info(ctx, args, &s);
    }
    Ok(subcommand_syntax_error(sub, "xinfo"))
}

fn stream_info(ctx: &mut Ctx<'_, '_>, args: &[Bytes], s: &Stream) -> CmdResult {
    let opts = &args[3..];
    let bad = || Ok(subcommand_syntax_error(&args[1], "xinfo"));
    let full = !opts.is_empty();
    let mut count: i64 = 10;
    if full {
        if (opts.len() != 1 && opts.len() != 3) || !is(&opts[0], "full") {
            return bad();
        }
        if opts.len() == 3 {
            if !is(&opts[1], "count") {
                return bad();
            }
            count = int_arg(&opts[2])?;
            if count < 0 {
                count = 10;
            }
        }
    }
    // The number of Redis's nodes (listpacks) the entries fill, from the first entry's
    // node to the last one's; the radix tree's inner nodes are not modelled (one per key).
    let head = ctx
        .stream_entries(s, StreamId::MIN, StreamId::MAX, 1, false)?
        .first()
        .map(|(_, v)| super::stream_store::entry_node(v))
        .transpose()?;
    let nodes = head.map_or(0, |h| s.tail_node.saturating_sub(h) + 1);
    let mut map = vec![
        field("length", Frame::Integer(s.meta.len as i64)),
        field("radix-tree-keys", Frame::Integer(nodes as i64)),
        field("radix-tree-nodes", Frame::Integer(nodes as i64 + 1)),
        field("last-generated-id", s.last.frame()),
        field("max-deleted-entry-id", s.max_deleted.frame()),
        field("entries-added", Frame::Integer(s.entries_added as i64)),
        field("recorded-first-entry-id", s.first.frame()),
    ];
    let limit = |n: i64| {
        if n == 0 {
            usize::MAX
        } else {
            usize::try_from(n).unwrap_or(usize::MAX)
        }
    };
    if !full {
        map.push(field("groups", Frame::Integer(ctx.groups(s)?.len() as i64)));
        for (name, rev) in [("first-entry", false), ("last-entry", true)] {
            let e = ctx.stream_entries(s, StreamId::MIN, StreamId::MAX, 1, rev)?;
            let value = match e.first() {
                Some((id, v)) => entry_frame(*id, v)?,
                None => Frame::Null,
            };
            map.push(field(name, value));
        }
        return Ok(Frame::Map(map));
    }
    let mut entries = Vec::new();
    for (id, v) in ctx.stream_entries(s, StreamId::MIN, StreamId::MAX, limit(count), false)? {
        entries.push(entry_frame(id, &v)?);
    }
    map.push(field("entries", Frame::Array(entries)));
    let mut groups = Vec::new();
    for (name, g) in ctx.groups(s)? {
        let pel_count = ctx.group_pending_count(s, &name)?;
        let mut pending = Vec::new();
        for (id, p) in
            ctx.pending_range(s, &name, StreamId::MIN, StreamId::MAX, limit(count), false)?
        {
            pending.push(Frame::Array(vec![
                id.frame(),
                Frame::Bulk(p.consumer),
                Frame::Integer(p.delivered_at as i64),
                Frame::Integer(p.deliveries as i64),
            ]));
        }
        let mut consumers = Vec::new();
        for (c, seen) in ctx.consumers(s, &name)? {
            let n = ctx.consumer_pending_count(s, &name, &c)?;
            let mut mine = Vec::new();
            let ids =
                ctx.consumer_pending(s, &name, &c, StreamId::MIN, StreamId::MAX, limit(count))?;
            for id in ids {
                if let Some(p) = ctx.pending(s, &name, id)? {
                    mine.push(Frame::Array(vec![
                        id.frame(),
                        Frame::Integer(p.delivered_at as i64),
                        Frame::Integer(p.deliveries as i64),
                    ]));
                }
            }
            consumers.push(Frame::Map(vec![
                field("name", Frame::Bulk(c)),
                field("seen-time", Frame::Integer(seen as i64)),
                field("pel-count", Frame::Integer(n as i64)),
                field("pending", Frame::Array(mine)),
            ]));
        }
        groups.push(Frame::Map(vec![
            field("name", Frame::Bulk(name)),
            field("last-delivered-id", g.last.frame()),
            field("entries-read", g.entries_read_frame()),
            field("lag", s.lag(&g).map_or(Frame::Null, Frame::Integer)),
            field("pel-count", Frame::Integer(pel_count as i64)),
            field("pending", Frame::Array(pending)),
            field("consumers", Frame::Array(consumers)),
        ]));
    }
    map.push(field("groups", Frame::Array(groups)));
    Ok(Frame::Map(map))
}
