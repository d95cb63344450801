//! Streams on the engine, as the commands use them: entry ids and their parsing, the stream's
//! metadata ([`Stream`]), its entries, consumer groups, consumers and pending entries, read
//! and written through the command's transaction. The records' layout is `stream_records.rs`'s:
//! an XADD appends one entry record and rewrites the small metadata record, and a range read
//! touches only the entries it returns.
//!
//! Each entry records the number of its node: the blocks of `stream-node-max-entries` entries
//! Redis stores a stream in (its radix tree's listpacks). Approximate trimming (`~`) removes
//! whole blocks only, so numbering them as Redis fills its nodes gives the lengths Redis gives
//! (Redis also closes a node at `stream-node-max-bytes`, which is not modelled: with entries of
//! more than about 40 bytes, Redis's nodes are shorter).

use std::ops::Bound;

use bytes::Bytes;

use super::ctx::Ctx;
use super::reply::{CmdError, wrongtype};
use crate::frame::Frame;
use crate::keyspace::{self, Entry, Meta, Type, kind};
use crate::rdb;
use crate::stream_records::{self as records, State, consumer_key, consumer_prefix, group_prefix};

/// A stream entry id: milliseconds and a sequence number, ordered as a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct StreamId {
    pub ms: u64,
    pub seq: u64,
}

impl StreamId {
    /// `0-0`.
    pub const MIN: StreamId = StreamId { ms: 0, seq: 0 };
    /// The largest id.
    pub const MAX: StreamId = StreamId {
        ms: u64::MAX,
        seq: u64::MAX,
    };

    /// The next id; `None` after the largest.
    pub fn next(self) -> Option<StreamId> {
        if self.seq < u64::MAX {
            Some(StreamId {
                seq: self.seq + 1,
                ..self
            })
        } else if self.ms < u64::MAX {
            Some(StreamId {
                ms: self.ms + 1,
                seq: 0,
            })
        } else {
            None
        }
    }

    /// The previous id; `None` before `0-0`.
    pub fn prev(self) -> Option<StreamId> {
        if self.seq > 0 {
            Some(StreamId {
                seq: self.seq - 1,
                ..self
            })
        } else if self.ms > 0 {
            Some(StreamId {
                ms: self.ms - 1,
                seq: u64::MAX,
            })
        } else {
            None
        }
    }

    /// Whether this is `0-0`.
    pub fn is_zero(self) -> bool {
        self == StreamId::MIN
    }

    /// The 16 bytes that order as the id does.
    pub fn to_bytes(self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.ms.to_be_bytes());
        b[8..].copy_from_slice(&self.seq.to_be_bytes());
        b
    }

    /// The id of the first 16 bytes of `b`.
    pub fn from_bytes(b: &[u8]) -> Option<StreamId> {
        let (ms, seq) = records::id_at(b, 0)?;
        Some(StreamId { ms, seq })
    }

    /// The id as a reply: `ms-seq`.
    pub fn frame(self) -> Frame {
        Frame::Bulk(Bytes::from(self.to_string()))
    }
}

impl std::fmt::Display for StreamId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// Redis's reply to an id it cannot parse.
pub(crate) fn invalid_id() -> CmdError {
    Frame::err("Invalid stream ID specified as stream command argument").into()
}

/// An id as Redis parses one: `ms-seq`, or `ms` alone (the sequence then `missing_seq`); `-`
/// and `+` (the smallest and largest ids) unless `strict`. With `auto_seq`, `ms-*` is
/// accepted too: the second value then says the sequence was not given.
fn parse_id_inner(
    arg: &[u8],
    missing_seq: u64,
    strict: bool,
    auto_seq: bool,
) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 127 {
        return Err(invalid_id());
    }
    match arg {
        b"-" if !strict => return Ok((StreamId::MIN, true)),
        b"+" if !strict => return Ok((StreamId::MAX, true)),
        _ => {}
    }
    let number = |s: &[u8]| parse_u64(s).ok_or_else(invalid_id);
    match arg.iter().position(|&b| b == b'-') {
        None => Ok((
            StreamId {
                ms: number(arg)?,
                seq: missing_seq,
            },
            true,
        )),
        Some(dash) => {
            let ms = number(&arg[..dash])?;
            let rest = &arg[dash + 1..];
            if auto_seq && rest == b"*" {
                return Ok((StreamId { ms, seq: 0 }, false));
            }
            Ok((
                StreamId {
                    ms,
                    seq: number(rest)?,
                },
                true,
            ))
        }
    }
}

/// A number as Redis's `string2ull` reads one: a canonical integer that is not negative, or
/// what `strtoull` takes whole (leading blanks, a `+`, up to 2^64 − 1).
fn parse_u64(s: &[u8]) -> Option<u64> {
    if let Some(n) = crate::parse::parse_i64(s) {
        return u64::try_from(n).ok();
    }
    let s = s.trim_ascii_start();
    let digits = s.strip_prefix(b"+").unwrap_or(s);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// An id where `-` and `+` are not ids (XADD's, XACK's, XGROUP CREATE's…).
pub(crate) fn parse_strict_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    parse_id_inner(arg, 0, true, false).map(|(id, _)| id)
}

/// An id where `-` and `+` are accepted (XGROUP SETID).
pub(crate) fn parse_id(arg: &[u8]) -> Result<StreamId, CmdError> {
    parse_id_inner(arg, 0, false, false).map(|(id, _)| id)
}

/// XADD's id: strict, `ms-*` accepted; with whether the sequence was given.
pub(crate) fn parse_add_id(arg: &[u8]) -> Result<(StreamId, bool), CmdError> {
    parse_id_inner(arg, 0, true, true)
}

/// One end of a range (XRANGE, XPENDING, XAUTOCLAIM): `(` makes it exclusive (then `-` and
/// `+` are refused); a missing sequence is `missing_seq`.
pub(crate) fn parse_interval(arg: &[u8], missing_seq: u64) -> Result<(StreamId, bool), CmdError> {
    if arg.len() > 1 && arg[0] == b'(' {
        let (id, _) = parse_id_inner(&arg[1..], missing_seq, true, false)?;
        return Ok((id, true));
    }
    let (id, _) = parse_id_inner(arg, missing_seq, false, false)?;
    Ok((id, false))
}

/// The inclusive range of XRANGE-style `start` and `end` arguments, or Redis's error.
pub(crate) fn parse_range(start: &[u8], end: &[u8]) -> Result<(StreamId, StreamId), CmdError> {
    let (mut lo, ex) = parse_interval(start, 0)?;
    if ex {
        lo = lo
            .next()
            .ok_or_else(|| Frame::err("invalid start ID for the interval"))?;
    }
    let (mut hi, ex) = parse_interval(end, u64::MAX)?;
    if ex {
        hi = hi
            .prev()
            .ok_or_else(|| Frame::err("invalid end ID for the interval"))?;
    }
    Ok((lo, hi))
}

/// A stream's metadata: its collection record and the state Redis keeps beside the entries.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    /// Collection id, number of entries, expiry.
    pub meta: Meta,
    /// The largest id ever added (or set by XSETID).
    pub last: StreamId,
    /// The first entry's id (0-0 when empty).
    pub first: StreamId,
    /// The largest id XDEL removed.
    pub max_deleted: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// The number of the node entries are appended to.
    pub tail_node: u64,
    /// Entries appended to that node, deleted ones included (0: there is none; the next
    /// entry starts one).
    pub tail_fill: u64,
    /// The first node and how many entries it holds, if known (`head_node` 0: not known).
    pub head_node: u64,
    pub head_count: u64,
}

impl Stream {
    /// The stream stored in `e`; `None` if malformed.
    fn decode(e: &Entry) -> Option<Stream> {
        let meta = Meta::decode(e)?;
        let st = records::decode_state(&e.payload)?;
        let id = |(ms, seq)| StreamId { ms, seq };
        Some(Stream {
            meta,
            last: id(st.last),
            first: id(st.first),
            max_deleted: id(st.max_deleted),
            entries_added: st.entries_added,
            tail_node: st.tail_node,
            tail_fill: st.tail_fill,
            head_node: st.head_node,
            head_count: st.head_count,
        })
    }

    /// The state after `[id][len]` in the metadata record.
    fn state(&self) -> State {
        let pair = |id: StreamId| (id.ms, id.seq);
        State {
            last: pair(self.last),
            first: pair(self.first),
            max_deleted: pair(self.max_deleted),
            entries_added: self.entries_added,
            tail_node: self.tail_node,
            tail_fill: self.tail_fill,
            head_node: self.head_node,
            head_count: self.head_count,
        }
    }

    /// The stored form: type byte, `[id][len]`, the state.
    fn encode(&self) -> Bytes {
        records::encode_meta(self.meta.id, self.meta.len, &self.state())
    }

    /// How many entries a group whose last delivered id is `id` has read, when that can be
    /// known (Redis's `streamEstimateDistanceFromFirstEverEntry`).
    pub fn entries_read_at(&self, id: StreamId) -> Option<i64> {
        let added = self.entries_added as i64;
        if self.entries_added == 0 {
            return Some(0);
        }
        if self.meta.len == 0 && id <= self.last {
            return Some(added);
        }
        if id == self.last {
            return Some(added);
        }
        if id > self.last {
            return None;
        }
        if self.max_deleted.is_zero() || self.max_deleted < self.first {
            if id < self.first {
                return Some(added - self.meta.len as i64);
            }
            if id == self.first {
                return Some(added - self.meta.len as i64 + 1);
            }
        }
        None
    }

    /// Whether an entry was deleted (XDEL) between `from` and the end.
    pub fn has_tombstones_from(&self, from: StreamId) -> bool {
        if self.meta.len == 0 || self.max_deleted.is_zero() || self.first > self.max_deleted {
            return false;
        }
        from <= self.max_deleted
    }

    /// A group's lag: entries not yet delivered to it, when that can be known.
    pub fn lag(&self, g: &Group) -> Option<i64> {
        if self.entries_added == 0 {
            return Some(0);
        }
        let added = self.entries_added as i64;
        if g.entries_read >= 0 && !self.has_tombstones_from(g.last) {
            return Some(added - g.entries_read);
        }
        self.entries_read_at(g.last).map(|read| added - read)
    }
}

/// A consumer group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Group {
    /// The last id delivered to it.
    pub last: StreamId,
    /// Entries it read (−1: unknown).
    pub entries_read: i64,
}

impl Group {
    fn encode(&self) -> Vec<u8> {
        records::encode_group((self.last.ms, self.last.seq), self.entries_read)
    }

    fn decode(b: &[u8]) -> Option<Group> {
        let ((ms, seq), entries_read) = records::decode_group(b)?;
        Some(Group {
            last: StreamId { ms, seq },
            entries_read,
        })
    }

    /// `entries-read` as XINFO shows it.
    pub fn entries_read_frame(&self) -> Frame {
        if self.entries_read >= 0 {
            Frame::Integer(self.entries_read)
        } else {
            Frame::Null
        }
    }
}

/// A pending entry: delivered to a consumer of a group and not acknowledged yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// When it was last delivered (ms since the epoch).
    pub delivered_at: u64,
    /// How many times it was delivered.
    pub deliveries: u64,
    /// The consumer it was delivered to.
    pub consumer: Bytes,
}

impl Pending {
    fn encode(&self) -> Vec<u8> {
        records::encode_pending(self.delivered_at, self.deliveries, &self.consumer)
    }

    fn decode(b: &Bytes) -> Option<Pending> {
        let (delivered_at, deliveries, consumer) = records::decode_pending(b)?;
        Some(Pending {
            delivered_at,
            deliveries,
            consumer,
        })
    }
}

fn corrupt() -> CmdError {
    Frame::err("corrupt stream record").into()
}

/// The node of an entry's record.
pub(crate) fn entry_node(v: &[u8]) -> Result<u64, CmdError> {
    records::entry_node(v).ok_or_else(corrupt)
}

/// An entry's fields and values (field, value, field, value…).
pub(crate) fn entry_fields(v: &Bytes) -> Result<Vec<Bytes>, CmdError> {
    records::entry_fields(v).ok_or_else(corrupt)
}

/// An entry's fields and values as a reply (a flat array).
pub(crate) fn fields_frame(v: &Bytes) -> Result<Frame, CmdError> {
    Ok(Frame::Array(
        entry_fields(v)?.into_iter().map(Frame::Bulk).collect(),
    ))
}

/// An entry as a reply: `[id, [field, value, …]]`.
pub(crate) fn entry_frame(id: StreamId, fields: &Bytes) -> Result<Frame, CmdError> {
    Ok(Frame::Array(vec![id.frame(), fields_frame(fields)?]))
}

fn with_id(mut prefix: Vec<u8>, id: StreamId) -> Vec<u8> {
    prefix.extend_from_slice(&id.to_bytes());
    prefix
}

impl Ctx<'_, '_> {
    /// The stream under `key`: `None` if there is none, WRONGTYPE for another type.
    pub fn stream(&mut self, key: &[u8]) -> Result<Option<Stream>, CmdError> {
        let Some(e) = self.lookup_stored(key)? else {
            return Ok(None);
        };
        if e.ty != Type::Stream {
            return Err(wrongtype());
        }
        Stream::decode(&e)
            .map(Some)
            .ok_or_else(|| Frame::err("corrupt stream metadata").into())
    }

    /// A new, empty stream (written by [`Ctx::save_stream`]).
    pub fn new_stream(&mut self) -> Stream {
        Stream {
            meta: self.new_coll(Type::Stream),
            last: StreamId::MIN,
            first: StreamId::MIN,
            max_deleted: StreamId::MIN,
            entries_added: 0,
            tail_node: 0,
            tail_fill: 0,
            head_node: 0,
            head_count: 0,
        }
    }

    /// Writes the stream's metadata under `key` (and, for a new one, its owner record). An
    /// empty stream stays, as in Redis.
    ///
    /// Clients blocked reading the stream are served (XREAD, XREADGROUP) when entries were
    /// added or the key was made, as Redis signals them: after XDEL, XTRIM or XSETID, use
    /// [`Ctx::update_stream`].
    pub fn save_stream(&mut self, key: &[u8], s: &mut Stream) -> Result<(), CmdError> {
        self.write_stream(key, s, true)
    }

    /// [`Ctx::save_stream`] without waking blocked readers (a change that adds no entry).
    pub fn update_stream(&mut self, key: &[u8], s: &mut Stream) -> Result<(), CmdError> {
        self.write_stream(key, s, false)
    }

    fn write_stream(&mut self, key: &[u8], s: &mut Stream, wake: bool) -> Result<(), CmdError> {
        let db = self.conn.db;
        let wake = wake || s.meta.fresh;
        let ek = keyspace::engine_key(db, key);
        let was_ready = self.conn.ready.contains(&ek);
        if s.meta.fresh {
            if key.len() > keyspace::MAX_KEY_LEN {
                return Err(super::reply::key_too_large(key.len()).into());
            }
            let owner = keyspace::member_key(s.meta.id, kind::OWNER, b"");
            let value = keyspace::owner_value(self.stored(db), key);
            self.tx()?.put(&owner, value)?;
            s.meta.fresh = false;
        }
        self.put_raw(db, key, s.encode(), s.meta.expire_at)?;
        if !wake && !was_ready {
            self.conn.ready.retain(|k| *k != ek);
        }
        Ok(())
    }

    /// Up to `limit` entries with ids in `lo..=hi`, ascending or descending.
    pub fn stream_entries(
        &mut self,
        s: &Stream,
        lo: StreamId,
        hi: StreamId,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(StreamId, Bytes)>, CmdError> {
        if lo > hi {
            return Ok(Vec::new());
        }
        let (lo, hi) = (lo.to_bytes(), hi.to_bytes());
        let rows = self.members(
            &s.meta,
            kind::MEMBER,
            Bound::Included(&lo),
            Bound::Included(&hi),
            limit,
            reverse,
        )?;
        rows.into_iter()
            .map(|(k, v)| Ok((StreamId::from_bytes(&k).ok_or_else(corrupt)?, v)))
            .collect()
    }

    /// Whether entry `id` exists. Reads no value.
    pub fn stream_entry_exists(&mut self, s: &Stream, id: StreamId) -> Result<bool, CmdError> {
        self.has_member(&s.meta, kind::MEMBER, &id.to_bytes())
    }

    /// The entry `id`'s fields, if it exists.
    pub fn stream_entry(&mut self, s: &Stream, id: StreamId) -> Result<Option<Bytes>, CmdError> {
        self.member(&s.meta, kind::MEMBER, &id.to_bytes())
    }

    /// `stream-node-max-entries`: the entries of a node (0: no limit).
    pub fn stream_node_entries(&self) -> u64 {
        self.shared
            .config
            .knob("stream-node-max-entries")
            .and_then(|v| v.parse().ok())
            .unwrap_or(100)
    }

    /// Appends entry `id` (larger than every id in the stream) with `pairs`; a node holds
    /// `per_node` entries ([`Ctx::stream_node_entries`]).
    pub fn append_entry(
        &mut self,
        s: &mut Stream,
        id: StreamId,
        pairs: &[Bytes],
        per_node: u64,
    ) -> Result<(), CmdError> {
        if s.tail_fill == 0 || (per_node > 0 && s.tail_fill >= per_node) {
            s.tail_node += 1;
            s.tail_fill = 0;
        }
        s.tail_fill += 1;
        if s.meta.len == 0 {
            (s.head_node, s.head_count) = (s.tail_node, 0);
        }
        if s.head_node == s.tail_node {
            s.head_count += 1;
        }
        let value = records::encode_entry(s.tail_node, pairs);
        self.check_string_len(value.len() as u64)?;
        let k = keyspace::member_key(s.meta.id, kind::MEMBER, &id.to_bytes());
        self.tx()?.put(&k, value)?;
        s.meta.len += 1;
        s.entries_added += 1;
        s.last = id;
        if s.meta.len == 1 {
            s.first = id;
        }
        Ok(())
    }

    /// Deletes entry `id` (XDEL); whether it existed. The caller updates `first` (see
    /// [`Ctx::refresh_first`]). Deleting the last entry of the node appends go to makes the
    /// next entry start a new one, as Redis frees an emptied node.
    pub fn delete_entry(&mut self, s: &mut Stream, id: StreamId) -> Result<bool, CmdError> {
        let Some(v) = self.stream_entry(s, id)? else {
            return Ok(false);
        };
        let node = entry_node(&v)?;
        self.remove_entry(s, id)?;
        if node == s.head_node {
            s.head_count -= 1;
            if s.head_count == 0 {
                s.head_node = 0;
            }
        }
        if node == s.tail_node && s.tail_fill > 0 {
            let before = match id.prev() {
                Some(p) => self.stream_entries(s, StreamId::MIN, p, 1, true)?,
                None => Vec::new(),
            };
            let after = match id.next() {
                Some(n) => self.stream_entries(s, n, StreamId::MAX, 1, false)?,
                None => Vec::new(),
            };
            let mut shares = false;
            for (_, v) in before.iter().chain(&after) {
                shares |= entry_node(v)? == node;
            }
            if !shares {
                s.tail_fill = 0;
            }
        }
        Ok(true)
    }

    /// Deletes entry `id`, which exists (trimming).
    pub fn remove_entry(&mut self, s: &mut Stream, id: StreamId) -> Result<(), CmdError> {
        let k = keyspace::member_key(s.meta.id, kind::MEMBER, &id.to_bytes());
        self.tx()?.delete(&k)?;
        s.meta.len -= 1;
        if s.meta.len == 0 {
            s.tail_fill = 0;
        }
        Ok(())
    }

    /// Sets `first` to the first entry's id (0-0 when empty).
    pub fn refresh_first(&mut self, s: &mut Stream) -> Result<(), CmdError> {
        s.first = if s.meta.len == 0 {
            StreamId::MIN
        } else {
            self.stream_entries(s, StreamId::MIN, StreamId::MAX, 1, false)?
                .first()
                .map_or(StreamId::MIN, |(id, _)| *id)
        };
        Ok(())
    }

    /// Consumer group `name` of the stream.
    pub fn group(&mut self, s: &Stream, name: &[u8]) -> Result<Option<Group>, CmdError> {
        match self.member(&s.meta, kind::GROUP, name)? {
            None => Ok(None),
            Some(v) => Group::decode(&v).map(Some).ok_or_else(corrupt),
        }
    }

    /// Stores consumer group `name`.
    pub fn put_group(&mut self, s: &Stream, name: &[u8], g: &Group) -> Result<(), CmdError> {
        self.put_member(&s.meta, kind::GROUP, name, g.encode())
    }

    /// Every consumer group, by name.
    pub fn groups(&mut self, s: &Stream) -> Result<Vec<(Bytes, Group)>, CmdError> {
        self.all_members(&s.meta, kind::GROUP)?
            .into_iter()
            .map(|(name, v)| Ok((name, Group::decode(&v).ok_or_else(corrupt)?)))
            .collect()
    }

    /// Deletes group `name` with its consumers and pending entries.
    pub fn destroy_group(&mut self, s: &Stream, name: &[u8]) -> Result<(), CmdError> {
        self.del_member(&s.meta, kind::GROUP, name)?;
        let prefix = group_prefix(name);
        for k in [kind::CONSUMER, kind::PENDING, kind::CONSUMER_PENDING] {
            self.delete_prefixed(s, k, &prefix)?;
        }
        Ok(())
    }

    fn delete_prefixed(&mut self, s: &Stream, k: u8, prefix: &[u8]) -> Result<u64, CmdError> {
        let rows = self.prefixed(s, k, prefix)?;
        for (rest, _) in &rows {
            self.del_member(&s.meta, k, rest)?;
        }
        Ok(rows.len() as u64)
    }

    /// The records of kind `k` whose key (after the stream's prefix) starts with `prefix`:
    /// `(rest of the key, value)`, in key order.
    fn prefixed(
        &mut self,
        s: &Stream,
        k: u8,
        prefix: &[u8],
    ) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
        let start = keyspace::member_key(s.meta.id, k, prefix);
        let rows: caskdb::Result<Vec<(Bytes, Bytes)>> = self
            .tx()?
            .prefix(&start)
            .map(|r| r.map(|(key, v)| (key.slice(keyspace::MEMBER_PREFIX_LEN..), v)))
            .collect();
        Ok(rows?)
    }

    /// How many records of kind `k` start with `prefix` (as [`Ctx::prefixed`]), reading no
    /// value.
    fn count_prefixed(&mut self, s: &Stream, k: u8, prefix: &[u8]) -> Result<u64, CmdError> {
        let start = keyspace::member_key(s.meta.id, k, prefix).to_vec();
        // Just past every key with this start: its last byte below 0xff, plus one (the
        // first byte, a member tag, is always below 0xff).
        let mut end = start.clone();
        while end.last() == Some(&u8::MAX) {
            end.pop();
        }
        if let Some(last) = end.last_mut() {
            *last += 1;
        }
        let mut n = 0;
        for key in self.tx()?.range_keys(start..end) {
            key?;
            n += 1;
        }
        Ok(n)
    }

    /// Consumer `consumer` of `group`: its seen time, if it exists.
    pub fn consumer(
        &mut self,
        s: &Stream,
        group: &[u8],
        consumer: &[u8],
    ) -> Result<Option<u64>, CmdError> {
        match self.member(&s.meta, kind::CONSUMER, &consumer_key(group, consumer))? {
            None => Ok(None),
            Some(v) => Ok(Some(records::decode_seen(&v).ok_or_else(corrupt)?)),
        }
    }

    /// Creates consumer `consumer` of `group`, or marks it seen now.
    pub fn touch_consumer(
        &mut self,
        s: &Stream,
        group: &[u8],
        consumer: &[u8],
    ) -> Result<(), CmdError> {
        let now = self.now_ms();
        self.put_consumer(s, group, consumer, now)
    }

    /// Stores consumer `consumer` of `group`, last seen at `seen`.
    fn put_consumer(
        &mut self,
        s: &Stream,
        group: &[u8],
        consumer: &[u8],
        seen: u64,
    ) -> Result<(), CmdError> {
        let k = consumer_key(group, consumer);
        self.put_member(&s.meta, kind::CONSUMER, &k, seen.to_be_bytes().to_vec())
    }

    /// The whole stream as a DUMP payload carries it: entries by node, state, groups with
    /// their consumers and pending entries.
    pub fn stream_payload(&mut self, s: &Stream) -> Result<rdb::Stream, CmdError> {
        let state = s.state();
        records::read(self.tx()?, s.meta.id, &state).map_err(|e| match e {
            records::ReadError::Engine(e) => e.into(),
            records::ReadError::Corrupt(_) => corrupt(),
        })
    }

    /// Creates stream `key` (which does not exist) from a payload's `v`, expiring at
    /// `expire_at`.
    pub fn restore_stream(
        &mut self,
        key: &[u8],
        v: rdb::Stream,
        expire_at: Option<u64>,
    ) -> Result<(), CmdError> {
        v.check().map_err(|_| Frame::err("Bad data format"))?;
        for (_, pairs) in v.nodes.iter().flatten() {
            let len: usize = pairs.iter().map(|p| p.len() + 4).sum();
            self.check_string_len(len as u64 + 12)?;
        }
        let mut s = self.new_stream();
        let raw = records::write(self.tx()?, s.meta.id, &v)?;
        let e = Entry::decode(raw, expire_at).ok_or_else(corrupt)?;
        let restored = Stream::decode(&e).ok_or_else(corrupt)?;
        s = Stream {
            meta: Meta {
                fresh: true,
                expire_at,
                ..restored.meta
            },
            ..restored
        };
        self.save_stream(key, &mut s)
    }

    /// The consumers of `group`, by name, with their seen times.
    pub fn consumers(&mut self, s: &Stream, group: &[u8]) -> Result<Vec<(Bytes, u64)>, CmdError> {
        let prefix = group_prefix(group);
        self.prefixed(s, kind::CONSUMER, &prefix)?
            .into_iter()
            .map(|(k, v)| {
                let seen = records::decode_seen(&v).ok_or_else(corrupt)?;
                Ok((k.slice(prefix.len()..), seen))
            })
            .collect()
    }

    /// Deletes consumer `consumer` of `group` with its pending entries; how many it had.
    pub fn delete_consumer(
        &mut self,
        s: &Stream,
        group: &[u8],
        consumer: &[u8],
    ) -> Result<u64, CmdError> {
        let ids =
            self.consumer_pending(s, group, consumer, StreamId::MIN, StreamId::MAX, usize::MAX)?;
        for id in &ids {
            let k = with_id(group_prefix(group), *id);
            self.del_member(&s.meta, kind::PENDING, &k)?;
            let k = with_id(consumer_prefix(group, consumer), *id);
            self.del_member(&s.meta, kind::CONSUMER_PENDING, &k)?;
        }
        self.del_member(&s.meta, kind::CONSUMER, &consumer_key(group, consumer))?;
        Ok(ids.len() as u64)
    }

    /// Pending entry `id` of `group`.
    pub fn pending(
        &mut self,
        s: &Stream,
        group: &[u8],
        id: StreamId,
    ) -> Result<Option<Pending>, CmdError> {
        let k = with_id(group_prefix(group), id);
        match self.member(&s.meta, kind::PENDING, &k)? {
            None => Ok(None),
            Some(v) => Pending::decode(&v).map(Some).ok_or_else(corrupt),
        }
    }

    /// Stores pending entry `id` of `group` as `p`; `previous` is its consumer before (to
    /// move it in the by-consumer index), if it was pending.
    pub fn put_pending(
        &mut self,
        s: &Stream,
        group: &[u8],
        id: StreamId,
        p: &Pending,
        previous: Option<&[u8]>,
    ) -> Result<(), CmdError> {
        if previous != Some(&p.consumer[..]) {
            if let Some(old) = previous {
                let k = with_id(consumer_prefix(group, old), id);
                self.del_member(&s.meta, kind::CONSUMER_PENDING, &k)?;
            }
            let k = with_id(consumer_prefix(group, &p.consumer), id);
            self.put_member(&s.meta, kind::CONSUMER_PENDING, &k, Bytes::new())?;
        }
        let k = with_id(group_prefix(group), id);
        self.put_member(&s.meta, kind::PENDING, &k, p.encode())
    }

    /// Deletes pending entry `id` of `group` (owned by `p.consumer`).
    pub fn delete_pending(
        &mut self,
        s: &Stream,
        group: &[u8],
        id: StreamId,
        p: &Pending,
    ) -> Result<(), CmdError> {
        let k = with_id(group_prefix(group), id);
        self.del_member(&s.meta, kind::PENDING, &k)?;
        let k = with_id(consumer_prefix(group, &p.consumer), id);
        self.del_member(&s.meta, kind::CONSUMER_PENDING, &k)?;
        Ok(())
    }

    /// Up to `limit` pending entries of `group` with ids in `lo..=hi`, in id order; descending
    /// with `reverse`.
    pub fn pending_range(
        &mut self,
        s: &Stream,
        group: &[u8],
        lo: StreamId,
        hi: StreamId,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(StreamId, Pending)>, CmdError> {
        if lo > hi {
            return Ok(Vec::new());
        }
        let prefix = group_prefix(group);
        let (lo, hi) = (with_id(prefix.clone(), lo), with_id(prefix.clone(), hi));
        self.members(
            &s.meta,
            kind::PENDING,
            Bound::Included(&lo),
            Bound::Included(&hi),
            limit,
            reverse,
        )?
        .into_iter()
        .map(|(k, v)| {
            let id = StreamId::from_bytes(&k[prefix.len()..]).ok_or_else(corrupt)?;
            Ok((id, Pending::decode(&v).ok_or_else(corrupt)?))
        })
        .collect()
    }

    /// Up to `limit` ids pending for `consumer` of `group` in `lo..=hi`, in order.
    pub fn consumer_pending(
        &mut self,
        s: &Stream,
        group: &[u8],
        consumer: &[u8],
        lo: StreamId,
        hi: StreamId,
        limit: usize,
    ) -> Result<Vec<StreamId>, CmdError> {
        if lo > hi {
            return Ok(Vec::new());
        }
        let prefix = consumer_prefix(group, consumer);
        let (lo, hi) = (with_id(prefix.clone(), lo), with_id(prefix.clone(), hi));
        self.members(
            &s.meta,
            kind::CONSUMER_PENDING,
            Bound::Included(&lo),
            Bound::Included(&hi),
            limit,
            false,
        )?
        .into_iter()
        .map(|(k, _)| StreamId::from_bytes(&k[prefix.len()..]).ok_or_else(corrupt))
        .collect()
    }

    /// How many entries are pending for `consumer` of `group`.
    pub fn consumer_pending_count(
        &mut self,
        s: &Stream,
        group: &[u8],
        consumer: &[u8],
    ) -> Result<u64, CmdError> {
        let prefix = consumer_prefix(group, consumer);
        self.count_prefixed(s, kind::CONSUMER_PENDING, &prefix)
    }

    /// How many entries are pending in `group`.
    pub fn group_pending_count(&mut self, s: &Stream, group: &[u8]) -> Result<u64, CmdError> {
        self.count_prefixed(s, kind::PENDING, &group_prefix(group))
    }
}
