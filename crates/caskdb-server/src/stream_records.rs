//! A stream's records (the layout `docs/FORMAT.md` gives): how its state, entries, groups,
//! consumers and pending entries are encoded, and a whole stream read from its records or
//! written as records in one transaction. The stream commands (`cmd::stream_store`) use the
//! encodings; DUMP/RESTORE and the command line's export/import (`direct`) move whole streams.
//!
//! Under the stream's collection id (`keyspace::member_key`):
//! - entry: `MEMBER [ms][seq]` → `[node: u64][fields: u32]([len: u32][bytes])*`;
//! - group: `GROUP [name]` → `[last ms][last seq][entries read: i64]` (−1: unknown);
//! - consumer: `CONSUMER [group len: u32][group][name]` → `[seen time ms]`;
//! - pending entry: `PENDING [group len][group][ms][seq]` → `[delivery time ms][count][consumer]`,
//!   and `CONSUMER_PENDING [group len][group][consumer len: u32][consumer][ms][seq]` (empty).
//!
//! Integers are big-endian.

use std::collections::HashMap;

use bytes::Bytes;
use caskdb::Transaction;

use crate::keyspace::{self, MEMBER_PREFIX_LEN, STREAM_STATE_LEN, STREAM_STATE_LEN_V1, Type, kind};
use crate::rdb;

/// A stream's state, after `[id][len]` in its metadata record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct State {
    pub last: rdb::StreamId,
    pub first: rdb::StreamId,
    pub max_deleted: rdb::StreamId,
    pub entries_added: u64,
    /// The node entries are appended to, and how many it was given (0: none yet).
    pub tail_node: u64,
    pub tail_fill: u64,
    /// The first node and its entries, when known (`head_node` 0: not known), so that an
    /// approximate trim need not read the node to learn it cannot remove it.
    pub head_node: u64,
    pub head_count: u64,
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The id in the 16 bytes of `b` from `at` (ms, then seq).
pub(crate) fn id_at(b: &[u8], at: usize) -> Option<rdb::StreamId> {
    Some((u64_at(b, at)?, u64_at(b, at + 8)?))
}

fn push_id(v: &mut Vec<u8>, (ms, seq): rdb::StreamId) {
    v.extend_from_slice(&ms.to_be_bytes());
    v.extend_from_slice(&seq.to_be_bytes());
}

/// The metadata record's value: type byte, collection id, length, state.
pub(crate) fn encode_meta(id: u64, len: u64, s: &State) -> Bytes {
    let mut v = Vec::with_capacity(1 + 16 + STREAM_STATE_LEN);
    v.push(Type::Stream as u8);
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(&len.to_be_bytes());
    for id in [s.last, s.first, s.max_deleted] {
        push_id(&mut v, id);
    }
    for n in [
        s.entries_added,
        s.tail_node,
        s.tail_fill,
        s.head_node,
        s.head_count,
    ] {
        v.extend_from_slice(&n.to_be_bytes());
    }
    Bytes::from(v)
}

/// The state in a metadata record's payload (after the type byte).
pub(crate) fn decode_state(payload: &[u8]) -> Option<State> {
    let state = payload.get(16..)?;
    if state.len() != STREAM_STATE_LEN && state.len() != STREAM_STATE_LEN_V1 {
        return None;
    }
    Some(State {
        last: id_at(state, 0)?,
        first: id_at(state, 16)?,
        max_deleted: id_at(state, 32)?,
        entries_added: u64_at(state, 48)?,
        tail_node: u64_at(state, 56)?,
        tail_fill: u64_at(state, 64)?,
        head_node: u64_at(state, 72).unwrap_or(0),
        head_count: u64_at(state, 80).unwrap_or(0),
    })
}

/// An entry's record: its node, then its fields and values.
pub(crate) fn encode_entry(node: u64, pairs: &[Bytes]) -> Vec<u8> {
    let len: usize = pairs.iter().map(|p| p.len() + 4).sum();
    let mut v = Vec::with_capacity(12 + len);
    v.extend_from_slice(&node.to_be_bytes());
    v.extend_from_slice(&(pairs.len() as u32).to_be_bytes());
    for p in pairs {
        v.extend_from_slice(&(p.len() as u32).to_be_bytes());
        v.extend_from_slice(p);
    }
    v
}

/// The node of an entry's record.
pub(crate) fn entry_node(v: &[u8]) -> Option<u64> {
    u64_at(v, 0)
}

/// An entry's fields and values (field, value, field, value…).
pub(crate) fn entry_fields(v: &Bytes) -> Option<Vec<Bytes>> {
    let n = u32::from_be_bytes(v.get(8..12)?.try_into().ok()?);
    let mut out = Vec::with_capacity(n.min(1 << 16) as usize);
    let mut at = 12;
    for _ in 0..n {
        let len = u32::from_be_bytes(v.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        if at + len > v.len() {
            return None;
        }
        out.push(v.slice(at..at + len));
        at += len;
    }
    Some(out)
}

/// A group's record.
pub(crate) fn encode_group(last: rdb::StreamId, entries_read: i64) -> Vec<u8> {
    let mut v = Vec::with_capacity(24);
    push_id(&mut v, last);
    v.extend_from_slice(&entries_read.to_be_bytes());
    v
}

/// A group's last delivered id and entries read.
pub(crate) fn decode_group(b: &[u8]) -> Option<(rdb::StreamId, i64)> {
    Some((id_at(b, 0)?, u64_at(b, 16)? as i64))
}

/// A pending entry's record.
pub(crate) fn encode_pending(delivered_at: u64, deliveries: u64, consumer: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(16 + consumer.len());
    v.extend_from_slice(&delivered_at.to_be_bytes());
    v.extend_from_slice(&deliveries.to_be_bytes());
    v.extend_from_slice(consumer);
    v
}

/// A pending entry's delivery time, delivery count and consumer.
pub(crate) fn decode_pending(b: &Bytes) -> Option<(u64, u64, Bytes)> {
    Some((u64_at(b, 0)?, u64_at(b, 8)?, b.slice(16.min(b.len())..)))
}

/// `[len: u32][name]`: how a group's records begin.
pub(crate) fn group_prefix(group: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + group.len());
    v.extend_from_slice(&(group.len() as u32).to_be_bytes());
    v.extend_from_slice(group);
    v
}

/// A consumer's key (kind `CONSUMER`): its group's prefix, then its name.
pub(crate) fn consumer_key(group: &[u8], consumer: &[u8]) -> Vec<u8> {
    let mut v = group_prefix(group);
    v.extend_from_slice(consumer);
    v
}

/// A consumer's seen time (ms since the epoch), from its record.
pub(crate) fn decode_seen(v: &[u8]) -> Option<u64> {
    u64_at(v, 0)
}

/// The group and what follows it in a key that starts with [`group_prefix`].
fn split_group(k: &Bytes) -> Option<(Bytes, Bytes)> {
    let glen = u32::from_be_bytes(k.get(..4)?.try_into().ok()?) as usize;
    let end = 4usize.checked_add(glen).filter(|&e| e <= k.len())?;
    Some((k.slice(4..end), k.slice(end..)))
}

/// How the pending entries of `consumer` in `group` begin (kind `CONSUMER_PENDING`).
pub(crate) fn consumer_prefix(group: &[u8], consumer: &[u8]) -> Vec<u8> {
    let mut v = group_prefix(group);
    v.extend_from_slice(&(consumer.len() as u32).to_be_bytes());
    v.extend_from_slice(consumer);
    v
}

/// Why a stream could not be read whole.
#[derive(Debug)]
pub(crate) enum ReadError {
    Engine(caskdb::Error),
    /// A record does not decode (what is wrong).
    Corrupt(&'static str),
}

impl From<caskdb::Error> for ReadError {
    fn from(e: caskdb::Error) -> Self {
        ReadError::Engine(e)
    }
}

/// Every record of `kind` under collection `id`: (the key after the prefix, the value).
fn records(
    tx: &Transaction<'_>,
    id: u64,
    k: u8,
) -> impl Iterator<Item = caskdb::Result<(Bytes, Bytes)>> {
    let lo = keyspace::member_prefix(id, k);
    let mut hi = lo;
    hi[MEMBER_PREFIX_LEN - 1] += 1;
    tx.range(lo.to_vec()..hi.to_vec())
        .map(|r| r.map(|(key, v)| (key.slice(MEMBER_PREFIX_LEN..), v)))
}

/// The stream with collection id `id` and state `state`, whole: its entries grouped by node,
/// its groups with their consumers and pending entries.
pub(crate) fn read(tx: &Transaction<'_>, id: u64, state: &State) -> Result<rdb::Stream, ReadError> {
    let mut out = rdb::Stream {
        last_id: state.last,
        first_id: state.first,
        max_deleted: state.max_deleted,
        entries_added: state.entries_added,
        ..rdb::Stream::default()
    };
    let mut current = None;
    for r in records(tx, id, kind::MEMBER) {
        let (k, v) = r?;
        let entry = id_at(&k, 0).ok_or(ReadError::Corrupt("an entry key"))?;
        let node = entry_node(&v).ok_or(ReadError::Corrupt("an entry"))?;
        let fields = entry_fields(&v).ok_or(ReadError::Corrupt("an entry"))?;
        if current != Some(node) {
            out.nodes.push(Vec::new());
            current = Some(node);
        }
        if let Some(n) = out.nodes.last_mut() {
            n.push((entry, fields));
        }
    }
    // Appends go on filling the last node only if it is the tail node.
    if current == Some(state.tail_node) {
        out.last_node_fill = state.tail_fill;
    }
    let mut pending_of: HashMap<Bytes, Vec<rdb::StreamPending>> = HashMap::new();
    for r in records(tx, id, kind::PENDING) {
        let (k, v) = r?;
        let (group, rest) = split_group(&k).ok_or(ReadError::Corrupt("a pending entry key"))?;
        let entry = id_at(&rest, 0).ok_or(ReadError::Corrupt("a pending entry key"))?;
        let (at, count, consumer) =
            decode_pending(&v).ok_or(ReadError::Corrupt("a pending entry"))?;
        pending_of
            .entry(group)
            .or_default()
            .push((entry, at, count, consumer));
    }
    let mut consumers_of: HashMap<Bytes, Vec<(Bytes, u64)>> = HashMap::new();
    for r in records(tx, id, kind::CONSUMER) {
        let (k, v) = r?;
        let (group, name) = split_group(&k).ok_or(ReadError::Corrupt("a consumer key"))?;
        let seen = decode_seen(&v).ok_or(ReadError::Corrupt("a consumer"))?;
        consumers_of.entry(group).or_default().push((name, seen));
    }
    for r in records(tx, id, kind::GROUP) {
        let (name, v) = r?;
        let (last_id, entries_read) = decode_group(&v).ok_or(ReadError::Corrupt("a group"))?;
        out.groups.push(rdb::StreamGroup {
            consumers: consumers_of.remove(&name).unwrap_or_default(),
            pending: pending_of.remove(&name).unwrap_or_default(),
            name,
            last_id,
            entries_read,
        });
    }
    Ok(out)
}

/// Writes stream `v` as the records of collection `id` (entries numbered by node from 1,
/// groups, consumers, pending entries and their index by consumer); returns its metadata
/// record's value. The caller writes that and the owner record.
pub(crate) fn write(tx: &mut Transaction<'_>, id: u64, v: &rdb::Stream) -> caskdb::Result<Bytes> {
    let mut len = 0;
    for (i, node) in v.nodes.iter().enumerate() {
        for (entry, pairs) in node {
            let mut rest = Vec::with_capacity(16);
            push_id(&mut rest, *entry);
            tx.put(
                keyspace::member_key(id, kind::MEMBER, &rest),
                encode_entry(i as u64 + 1, pairs),
            )?;
            len += 1;
        }
    }
    for g in &v.groups {
        tx.put(
            keyspace::member_key(id, kind::GROUP, &g.name),
            encode_group(g.last_id, g.entries_read),
        )?;
        for (c, seen) in &g.consumers {
            tx.put(
                keyspace::member_key(id, kind::CONSUMER, &consumer_key(&g.name, c)),
                seen.to_be_bytes(),
            )?;
        }
        for (entry, at, count, owner) in &g.pending {
            let mut k = group_prefix(&g.name);
            push_id(&mut k, *entry);
            tx.put(
                keyspace::member_key(id, kind::PENDING, &k),
                encode_pending(*at, *count, owner),
            )?;
            let mut k = consumer_prefix(&g.name, owner);
            push_id(&mut k, *entry);
            tx.put(
                keyspace::member_key(id, kind::CONSUMER_PENDING, &k),
                Bytes::new(),
            )?;
        }
    }
    let nodes = v.nodes.len() as u64;
    let state = State {
        last: v.last_id,
        first: v.first_id,
        max_deleted: v.max_deleted,
        entries_added: v.entries_added,
        // With no room left in the last node, appends start the next one.
        tail_node: if v.last_node_fill > 0 {
            nodes
        } else {
            nodes + 1
        },
        tail_fill: v.last_node_fill,
        ..State::default()
    };
    Ok(encode_meta(id, len, &state))
}
