//! Redis's DUMP payload (see `docs/FORMAT.md`): one value in RDB's encoding, then the RDB
//! version (2 bytes, little endian) and a CRC-64 (Jones, as Redis's `crc64`; 8 bytes, little
//! endian) of everything before it. [`restore`] reads every encoding redis-server 7.0 writes
//! (and the older ones it still loads); [`dump`] writes the plainest one of each type, which
//! Redis loads to the same value.
//!
//! Independent of the commands: a payload in, a [`Value`] out, and back. `decode` reads the RDB
//! object, `packed` the blobs inside it (listpack, ziplist, intset, zipmap), `lzf` compressed
//! strings; `encode` writes.

mod decode;
mod encode;
mod lzf;
mod packed;

use bytes::Bytes;
use crc::{CRC_64_REDIS, Crc};

/// The RDB version this server writes and the newest it reads (Redis 7.0's).
pub const RDB_VERSION: u16 = 10;

/// The RDB type bytes of values (Redis's `RDB_TYPE_*`).
mod ty {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
}

const CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);

/// A value as a payload carries it. Collections are never empty.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    String(Bytes),
    /// A list's elements, head first.
    List(Vec<Bytes>),
    /// A set's members (distinct).
    Set(Vec<Bytes>),
    /// A hash's (field, value) pairs (distinct fields).
    Hash(Vec<(Bytes, Bytes)>),
    /// A sorted set's (member, score) pairs (distinct members, no NaN).
    ZSet(Vec<(Bytes, f64)>),
    /// A stream (possibly empty), with its consumer groups.
    Stream(Box<Stream>),
}

/// A stream id: (milliseconds, sequence).
pub type StreamId = (u64, u64);

/// A stream entry: its id, and its fields and values (field, value, field, value…).
pub type StreamEntry = (StreamId, Vec<Bytes>);

/// A pending entry: its id, delivery time (ms since the epoch), delivery count, consumer.
pub type StreamPending = (StreamId, u64, u64, Bytes);

/// A stream as a payload carries it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stream {
    /// The entries, node by node (Redis's listpacks, in id order): each `(id, [field, value,
    /// field, value…])`. Entries Redis had marked deleted are left out; no node is empty.
    pub nodes: Vec<Vec<StreamEntry>>,
    /// Entries put in the last node, the deleted ones included (the next entry goes there
    /// while it holds fewer than `stream-node-max-entries`).
    pub last_node_fill: u64,
    /// The largest id added (or set by XSETID).
    pub last_id: StreamId,
    /// The first entry's id (0-0 when empty).
    pub first_id: StreamId,
    /// The largest id XDEL removed.
    pub max_deleted: StreamId,
    /// Entries ever added.
    pub entries_added: u64,
    /// The consumer groups, by name.
    pub groups: Vec<StreamGroup>,
}

impl Stream {
    /// What makes a stream malformed, if anything: entry ids that do not increase, a last id
    /// below the last entry's, an empty entry or node, a group, consumer or pending entry
    /// named twice, a pending entry whose consumer is not one of its group's. (Streams are
    /// only ever loaded whole, so this keeps every loaded one consistent.)
    pub fn check(&self) -> Result<(), &'static str> {
        use std::collections::HashSet;
        let mut previous: Option<StreamId> = None;
        for node in &self.nodes {
            if node.is_empty() {
                return Err("an empty node");
            }
            for (id, pairs) in node {
                if previous.is_some_and(|p| p >= *id) {
                    return Err("entry ids that do not increase");
                }
                if pairs.is_empty() || pairs.len() % 2 != 0 {
                    return Err("an entry without field-value pairs");
                }
                previous = Some(*id);
            }
        }
        if previous.is_some_and(|top| top > self.last_id) {
            return Err("a last id below the last entry's");
        }
        let mut names = HashSet::new();
        for g in &self.groups {
            if !names.insert(&g.name) {
                return Err("a group named twice");
            }
            let consumers: HashSet<&Bytes> = g.consumers.iter().map(|(c, _)| c).collect();
            if consumers.len() != g.consumers.len() {
                return Err("a consumer named twice");
            }
            let mut ids = HashSet::with_capacity(g.pending.len());
            for (id, _, _, owner) in &g.pending {
                if !ids.insert(id) {
                    return Err("a pending entry listed twice");
                }
                if !consumers.contains(owner) {
                    return Err("a pending entry of no consumer of its group");
                }
            }
        }
        Ok(())
    }
}

/// A consumer group of a [`Stream`].
#[derive(Debug, Clone, PartialEq)]
pub struct StreamGroup {
    /// Its name.
    pub name: Bytes,
    /// The last id delivered to it.
    pub last_id: StreamId,
    /// Entries read (−1: unknown).
    pub entries_read: i64,
    /// Its consumers: name and seen time (ms since the epoch).
    pub consumers: Vec<(Bytes, u64)>,
    /// Its pending entries, by id.
    pub pending: Vec<StreamPending>,
}

/// Why a payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its footer, written by a newer RDB version, or its CRC does not match.
    Checksum,
    /// The value is malformed: truncated, trailing bytes, an unknown type or encoding, an empty
    /// or duplicated collection, a module value.
    Format,
}

/// Redis's `RDB_OPCODE_FUNCTION2`: a function library in a FUNCTION DUMP payload.
const OPCODE_FUNCTION2: u8 = 245;

/// FUNCTION DUMP's payload: each library's code, then the footer.
pub fn dump_libraries<'a>(codes: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for code in codes {
        encode::library(code, &mut out);
    }
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The libraries' codes in a FUNCTION RESTORE payload, checked as RESTORE checks a payload;
/// the error is Redis's text.
pub fn restore_libraries(payload: &[u8]) -> Result<Vec<Vec<u8>>, &'static str> {
    const WRONG: &str = "DUMP payload version or checksum are wrong";
    let body_len = payload.len().checked_sub(FOOTER).ok_or(WRONG)?;
    let footer = &payload[body_len..];
    if u16::from_le_bytes([footer[0], footer[1]]) > RDB_VERSION {
        return Err(WRONG);
    }
    if CRC64.checksum(&payload[..body_len + 2]).to_le_bytes() != footer[2..] {
        return Err(WRONG);
    }
    decode::libraries(&payload[..body_len])
}

/// Footer: 2 bytes of version, 8 of CRC.
const FOOTER: usize = 10;

/// An integer's decimal text, as Redis turns integer encodings back into strings.
fn itoa(n: i64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// The DUMP payload of `value`.
pub fn dump(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode::value(value, &mut out);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The value in `payload`, checked as Redis's RESTORE does (version, then CRC), then decoded
/// whole: the body must hold exactly one value. No decoded string may be longer than
/// `max_string` (memory is bounded by the payload's size and that).
pub fn restore(payload: &[u8], max_string: u64) -> Result<Value, Error> {
    let body_len = payload.len().checked_sub(FOOTER).ok_or(Error::Checksum)?;
    let (body, footer) = payload.split_at(body_len);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return Err(Error::Checksum);
    }
    let crc = CRC64.checksum(&payload[..body_len + 2]);
    if crc.to_le_bytes() != footer[2..] {
        return Err(Error::Checksum);
    }
    decode::payload_body(body, max_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream of two nodes with a group, as entries and state.
    fn stream() -> Stream {
        let e = |ms: u64, v: &'static str| ((ms, 0), vec![Bytes::from("f"), Bytes::from(v)]);
        Stream {
            nodes: vec![vec![e(1, "a"), e(2, "b")], vec![e(3, "c")]],
            last_node_fill: 1,
            last_id: (3, 0),
            first_id: (1, 0),
            max_deleted: (0, 0),
            entries_added: 3,
            groups: vec![StreamGroup {
                name: Bytes::from("g"),
                last_id: (2, 0),
                entries_read: 2,
                consumers: vec![(Bytes::from("c"), 7)],
                pending: vec![((2, 0), 5, 1, Bytes::from("c"))],
            }],
        }
    }

    #[test]
    fn streams_round_trip_and_inconsistent_ones_are_refused() {
        let s = stream();
        assert_eq!(
            restore(&dump(&Value::Stream(Box::new(s.clone()))), 1 << 20),
            Ok(Value::Stream(Box::new(s.clone())))
        );
        // Each would leave the stream's length or its pending index wrong once stored.
        let mut bad = Vec::new();
        let mut t = s.clone();
        t.nodes[1][0].0 = (2, 0); // an id again
        bad.push(t);
        let mut t = s.clone();
        t.nodes[0].swap(0, 1); // ids going down
        bad.push(t);
        let mut t = s.clone();
        t.last_id = (2, 5); // below the last entry
        bad.push(t);
        let mut t = s.clone();
        t.groups[0].pending[0].3 = Bytes::from("nobody");
        bad.push(t);
        let mut t = s.clone();
        t.groups.push(t.groups[0].clone()); // a group twice
        bad.push(t);
        for t in bad {
            assert!(t.check().is_err(), "{t:?}");
            assert_eq!(
                restore(&dump(&Value::Stream(Box::new(t))), 1 << 20),
                Err(Error::Format)
            );
        }
    }

    #[test]
    fn crc_is_redis_crc64() {
        // Redis's crc64 self-test vector.
        assert_eq!(CRC64.checksum(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn redis_string_payload() {
        // `SET s hello` then `DUMP s` on redis-server 7.0.15.
        let p = b"\x00\x05hello\n\x00cr\xdfve4 \n";
        let hello = Value::String(Bytes::from_static(b"hello"));
        assert_eq!(restore(p, u64::MAX), Ok(hello.clone()));
        assert_eq!(dump(&hello), p.to_vec());
        let mut bad = p.to_vec();
        bad[3] ^= 1;
        assert_eq!(restore(&bad, u64::MAX), Err(Error::Checksum));
        assert_eq!(restore(&p[..9], u64::MAX), Err(Error::Checksum));
    }

    #[test]
    fn round_trips() {
        let b = |s: &[u8]| Bytes::copy_from_slice(s);
        let values = [
            Value::String(Bytes::new()),
            Value::String(b(&[0xff; 300])),
            Value::List(vec![b(b"a"), Bytes::new(), b(&[7; 20_000])]),
            Value::Set(vec![b(b"1"), b(b"x")]),
            Value::Hash(vec![(b(b"f"), b(b"v"))]),
            Value::ZSet(vec![
                (b(b"a"), f64::NEG_INFINITY),
                (b(b"b"), 1.5),
                (b(b"c"), f64::INFINITY),
            ]),
        ];
        for v in values {
            assert_eq!(restore(&dump(&v), u64::MAX), Ok(v));
        }
    }

    /// Payloads redis-server 7.0.15 wrote: a hash listpack, a zset listpack, an intset, a
    /// quicklist with an LZF-compressed listpack node, a set.
    const REDIS: &[&[u8]] = &[
        b"\x10\x22\x22\x00\x00\x00\x06\x00\x81\x66\x02\x81\x76\x02\x81\x6e\x02\xde\xd4\x02\x83\x62\x69\x67\x04\xf4\xff\xff\xff\xff\xff\xff\xff\x7f\x09\xff\x0a\x00\x38\x89\x3f\x62\x78\x30\x56\xed",
        b"\x11\x1d\x1d\x00\x00\x00\x06\x00\x81\x63\x02\x84\x2d\x69\x6e\x66\x05\x81\x61\x02\x01\x01\x81\x62\x02\x83\x32\x2e\x35\x04\xff\x0a\x00\x39\x92\x33\x9b\xe1\x1f\x32\x3d",
        b"\x0b\x14\x04\x00\x00\x00\x03\x00\x00\x00\xfe\xff\xff\xff\x01\x00\x00\x00\x70\x11\x01\x00\x0a\x00\x30\x52\x7d\xf8\xcc\x31\x1f\x3b",
        b"\x12\x01\x02\xc3\x18\x40\x58\x10\x58\x00\x00\x00\x04\x00\x81\x61\x02\x0c\x01\xd0\x00\x02\xe0\x46\x78\xe0\x3c\x00\x01\x48\xff\x0a\x00\xfd\xc5\x82\x72\x58\x7a\x2b\xb3",
        b"\x02\x02\x01\x62\x01\x61\x0a\x00\x75\xd9\x9d\x83\x5e\xf8\x5f\x65",
    ];

    #[test]
    fn redis_collection_payloads() {
        let b = |s: &str| Bytes::copy_from_slice(s.as_bytes());
        let want = [
            Value::Hash(vec![
                (b("f"), b("v")),
                (b("n"), b("-300")),
                (b("big"), b("9223372036854775807")),
            ]),
            Value::ZSet(vec![
                (b("c"), f64::NEG_INFINITY),
                (b("a"), 1.0),
                (b("b"), 2.5),
            ]),
            Value::Set(vec![b("-2"), b("1"), b("70000")]),
            Value::List(vec![b("a"), b("12"), b("-4096"), b(&"x".repeat(70))]),
            Value::Set(vec![b("b"), b("a")]),
        ];
        for (p, want) in REDIS.iter().zip(want) {
            assert_eq!(restore(p, u64::MAX), Ok(want));
        }
    }

    /// `body` with a version-10 footer.
    fn seal(body: &[u8]) -> Vec<u8> {
        let mut p = body.to_vec();
        p.extend_from_slice(&RDB_VERSION.to_le_bytes());
        let crc = CRC64.checksum(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        p
    }

    proptest::proptest! {
        /// Any body, and Redis's payloads with bytes changed, inserted or cut (footer made
        /// valid again): an error, or a value that dumps and restores to itself. Never a
        /// panic.
        #[test]
        fn corrupted_bodies_are_values_or_errors(
            which in 0..REDIS.len(),
            edits in proptest::collection::vec((0usize..64, 0u8..=255, 0u8..4), 0..4),
            noise in proptest::collection::vec(0u8..=255, 0..64),
        ) {
            for body in [noise.clone(), {
                let p = REDIS[which];
                let mut body = p[..p.len() - FOOTER].to_vec();
                for (at, byte, op) in edits {
                    let at = at.min(body.len());
                    match op {
                        0 if at < body.len() => body[at] = byte,
                        1 => body.insert(at, byte),
                        2 if at < body.len() => { body.remove(at); }
                        _ => body.truncate(at),
                    }
                }
                body
            }] {
                if let Ok(v) = restore(&seal(&body), 1 << 20) {
                    proptest::prop_assert_eq!(restore(&dump(&v), 1 << 20), Ok(v));
                }
            }
        }
    }

    #[test]
    fn newer_version_is_refused() {
        let mut p = dump(&Value::String(Bytes::from_static(b"x")));
        let at = p.len() - FOOTER;
        p[at..at + 2].copy_from_slice(&(RDB_VERSION + 1).to_le_bytes());
        let crc = CRC64.checksum(&p[..at + 2]);
        p[at + 2..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(restore(&p, u64::MAX), Err(Error::Checksum));
    }
}
