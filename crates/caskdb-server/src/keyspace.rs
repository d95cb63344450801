//! How Redis keys and values map onto engine keys and values (see `docs/FORMAT.md`).
//!
//! Engine key: `[db: u8][namespace: u8][user key]`.
//! - namespace `0` holds every Redis key, whatever its type: its value is `[type: u8][payload]`,
//!   and its expiry is the engine record's expiry. So TYPE, EXISTS, DEL, EXPIRE, RENAME and
//!   WRONGTYPE work across types by looking at one record, and `KEYS`/`SCAN` walk one range.
//! - a collection (hash, list, set, sorted set) is that record, holding its metadata ([`Meta`]:
//!   a collection id, its size…), plus one engine record per member, keyed by the id:
//!   `[0x80 + id % 64][id: u64 BE][kind: u8][rest]` (see [`member_key`]). Member keys carry no
//!   database or user key, so RENAME and MOVE rewrite only the metadata and the owner record;
//!   DEL and EXPIRE touch only the metadata, and the members of a collection that is gone are
//!   reclaimed later by the sweeper (`sweep.rs`).

use bytes::Bytes;
use smallvec::SmallVec;

/// Number of databases (`SELECT 0` … `SELECT 15`).
pub const DATABASES: u8 = 16;

/// Namespace of top-level keys.
pub const NS_KEYS: u8 = 0;

/// The engine key of the database map ([`DbMap`]): namespace 1 of database 0, the only key
/// there.
pub const DB_MAP_KEY: [u8; 2] = [0, 1];

/// The first byte pair of the records holding FUNCTION's libraries: namespace 2 of database
/// 0, then the library's name; the value is the library's code.
pub const NS_FUNCTIONS: [u8; 2] = [0, 2];

/// The engine key of a replicated group's applied state (the last applied log id and the
/// membership, written by `caskdb-raft`'s state machine with each applied entry): namespace 3
/// of database 0, which is the group's own (a snapshot install's marker follows this key
/// there).
pub const RAFT_APPLIED_KEY: [u8; 2] = [0, 3];

/// The engine key of library `name`.
pub fn function_key(name: &[u8]) -> Vec<u8> {
    let mut k = NS_FUNCTIONS.to_vec();
    k.extend_from_slice(name);
    k
}

/// The first and (exclusive) last engine keys of the libraries.
pub fn functions_range() -> ([u8; 2], [u8; 2]) {
    (NS_FUNCTIONS, [0, 3])
}

/// Which stored database (the first byte of engine keys) holds each logical database (the
/// number SELECT takes): the identity until SWAPDB, which swaps two entries and persists the
/// map as one record ([`DB_MAP_KEY`]: 16 bytes, entry `i` the stored database of database
/// `i`). Only the layer that builds engine keys for the store translates; the registries
/// (WATCH, blocked clients) and keyspace events speak logical databases.
pub struct DbMap(
    [std::sync::atomic::AtomicU8; DATABASES as usize],
    /// Bumped by every change of the map: a read without the writer lock that sees it
    /// unchanged used one map throughout (`dispatch::run_one`).
    std::sync::atomic::AtomicU64,
);

impl Default for DbMap {
    fn default() -> DbMap {
        DbMap(
            std::array::from_fn(|i| std::sync::atomic::AtomicU8::new(i as u8)),
            std::sync::atomic::AtomicU64::new(0),
        )
    }
}

impl DbMap {
    /// The map stored as `bytes`; `None` if they are not a permutation of the databases.
    pub fn decode(bytes: &[u8]) -> Option<DbMap> {
        if bytes.len() != DATABASES as usize {
            return None;
        }
        let mut seen = [false; DATABASES as usize];
        for &b in bytes {
            if b >= DATABASES || std::mem::replace(&mut seen[b as usize], true) {
                return None;
            }
        }
        let map = DbMap::default();
        for (slot, &b) in map.0.iter().zip(bytes) {
            slot.store(b, std::sync::atomic::Ordering::Relaxed);
        }
        Some(map)
    }

    /// The record's 16 bytes.
    pub fn encode(&self) -> Bytes {
        Bytes::from(
            self.0
                .iter()
                .map(|s| s.load(std::sync::atomic::Ordering::Relaxed))
                .collect::<Vec<u8>>(),
        )
    }

    /// The stored database of logical database `db`.
    pub fn physical(&self, db: u8) -> u8 {
        self.0
            .get(db as usize)
            .map_or(db, |s| s.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// The logical database stored as `physical`.
    pub fn logical(&self, physical: u8) -> u8 {
        self.0
            .iter()
            .position(|s| s.load(std::sync::atomic::Ordering::Relaxed) == physical)
            .map_or(physical, |i| i as u8)
    }

    /// How many times the map changed (see the field).
    pub fn generation(&self) -> u64 {
        self.1.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Takes the map `other` holds (a group's node, after applying a SWAPDB).
    pub fn assign(&self, other: &DbMap) {
        use std::sync::atomic::Ordering::{AcqRel, Relaxed};
        self.1.fetch_add(1, AcqRel);
        for (mine, theirs) in self.0.iter().zip(&other.0) {
            mine.store(theirs.load(Relaxed), Relaxed);
        }
        self.1.fetch_add(1, AcqRel);
    }

    /// SWAPDB: databases `a` and `b` trade their contents. (Callers hold the engine's writer
    /// lock, so two swaps never interleave.)
    pub fn swap(&self, a: usize, b: usize) {
        use std::sync::atomic::Ordering::{AcqRel, Relaxed};
        self.1.fetch_add(1, AcqRel);
        let (pa, pb) = (self.0[a].load(Relaxed), self.0[b].load(Relaxed));
        self.0[a].store(pb, Relaxed);
        self.0[b].store(pa, Relaxed);
        self.1.fetch_add(1, AcqRel);
    }

    /// `ek`, a logical engine key, with its database made the stored one.
    pub fn to_physical(&self, ek: &[u8]) -> EngineKey {
        let mut k = EngineKey::from_slice(ek);
        if let Some(first) = k.first_mut() {
            *first = self.physical(*first);
        }
        k
    }
}

/// Longest key the server accepts (the engine keeps every key in memory).
pub const MAX_KEY_LEN: usize = 64 * 1024;

/// An encoded engine key, on the stack for keys of ordinary size.
pub type EngineKey = SmallVec<[u8; 64]>;

/// The engine key of `key` in database `db`.
pub fn engine_key(db: u8, key: &[u8]) -> EngineKey {
    let mut k = EngineKey::with_capacity(key.len() + 2);
    k.push(db);
    k.push(NS_KEYS);
    k.extend_from_slice(key);
    k
}

/// The first and (exclusive) last engine keys of database `db`'s top-level keys.
pub fn db_range(db: u8) -> ([u8; 2], [u8; 2]) {
    ([db, NS_KEYS], [db, NS_KEYS + 1])
}

/// The type of a value, stored as its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// A binary-safe string.
    String = 0,
    /// A hash: field → value.
    Hash = 1,
    /// A list of elements.
    List = 2,
    /// A set of members.
    Set = 3,
    /// A sorted set: member → score, ordered by (score, member).
    ZSet = 4,
    /// A stream: entries by id, with consumer groups (`cmd/stream_store.rs`).
    Stream = 6,
}

impl Type {
    /// The type stored in `byte`, if known.
    pub fn from_byte(byte: u8) -> Option<Type> {
        Some(match byte {
            0 | STRING_RAW | STRING_CHUNKED => Type::String,
            1 => Type::Hash,
            2 => Type::List,
            3 => Type::Set,
            4 => Type::ZSet,
            6 => Type::Stream,
            _ => return None,
        })
    }

    /// The name `TYPE` replies with.
    pub fn name(self) -> &'static str {
        match self {
            Type::String => "string",
            Type::Hash => "hash",
            Type::List => "list",
            Type::Set => "set",
            Type::ZSet => "zset",
            Type::Stream => "stream",
        }
    }
}

/// The type byte of a string last written by APPEND or SETRANGE, which Redis keeps in its `raw`
/// encoding whatever its length (OBJECT ENCODING); otherwise a string like type 0.
pub const STRING_RAW: u8 = 5;

/// The type byte of a string kept in chunks (`string_chunks.rs`): its record holds the
/// string's collection id and length, its bytes are member records. A string becomes one when
/// SETBIT, SETRANGE, APPEND, BITFIELD or PFADD leave it long; it is in Redis's `raw` encoding.
pub const STRING_CHUNKED: u8 = 7;

/// The length of a [`STRING_CHUNKED`] record: the type byte, the id and the length (u64 each).
pub const CHUNKED_RECORD_LEN: usize = 17;

/// A stored value: its type, payload, and expiry (ms since the epoch).
#[derive(Debug, Clone)]
pub struct Entry {
    /// The value's type.
    pub ty: Type,
    /// The value without its type byte.
    pub payload: Bytes,
    /// When it expires, if ever.
    pub expire_at: Option<u64>,
    /// The stored form (type byte and payload), for commands that copy a value whole
    /// (RENAME, COPY, MOVE, EXPIRE…) without re-encoding it.
    pub raw: Bytes,
}

impl Entry {
    /// Decodes a stored value; `None` if its type byte is unknown (written by a newer version),
    /// or it is the record of a string in chunks of the wrong length (never taken for a
    /// string's bytes).
    pub fn decode(raw: Bytes, expire_at: Option<u64>) -> Option<Entry> {
        let ty = Type::from_byte(*raw.first()?)?;
        if raw[0] == STRING_CHUNKED && raw.len() != CHUNKED_RECORD_LEN {
            return None;
        }
        Some(Entry {
            ty,
            payload: raw.slice(1..),
            expire_at,
            raw,
        })
    }

    /// Whether this is a string written by APPEND or SETRANGE ([`STRING_RAW`]), or kept in
    /// chunks ([`STRING_CHUNKED`]).
    pub fn is_raw_string(&self) -> bool {
        matches!(self.raw.first(), Some(&(STRING_RAW | STRING_CHUNKED)))
    }

    /// The stored form of a string APPEND or SETRANGE wrote ([`STRING_RAW`]).
    pub fn encode_raw_string(payload: &[u8]) -> Bytes {
        let mut v = Vec::with_capacity(payload.len() + 1);
        v.push(STRING_RAW);
        v.extend_from_slice(payload);
        Bytes::from(v)
    }

    /// The stored form: type byte, then payload.
    pub fn encode(ty: Type, payload: &[u8]) -> Bytes {
        let mut v = Vec::with_capacity(payload.len() + 1);
        v.push(ty as u8);
        v.extend_from_slice(payload);
        Bytes::from(v)
    }
}

/// The first byte of member keys is `MEMBER_TAG_BASE + id % MEMBER_TAGS`: the engine shards its
/// index by first byte, so collections spread over 64 shards (and threads at open).
pub const MEMBER_TAG_BASE: u8 = 0x80;
/// Number of member-key first bytes.
pub const MEMBER_TAGS: u8 = 64;

/// Kinds of records under a collection id.
pub mod kind {
    /// The owner record: `[db][user key]` of the collection, for the sweeper.
    pub const OWNER: u8 = 0;
    /// A member: hash field, set member, list index (u64 BE) or sorted-set member.
    pub const MEMBER: u8 = 1;
    /// A sorted set's score index: `[score as order-preserving u64 BE][member]`, empty value.
    pub const SCORE: u8 = 2;
    /// A stream's consumer group: `[group]` → its state (`cmd/stream_store.rs`).
    pub const GROUP: u8 = 3;
    /// A consumer: `[group length: u32 BE][group][consumer]` → its seen time.
    pub const CONSUMER: u8 = 4;
    /// A group's pending entry: `[group length: u32 BE][group][entry id]` → delivery time,
    /// count and consumer.
    pub const PENDING: u8 = 5;
    /// A consumer's pending entry (the index of [`PENDING`] by consumer):
    /// `[group length: u32 BE][group][consumer length: u32 BE][consumer][entry id]`, empty.
    pub const CONSUMER_PENDING: u8 = 6;
}

/// Length of the `[tag][id][kind]` prefix of a member key.
pub const MEMBER_PREFIX_LEN: usize = 10;

/// The first byte of collection `id`'s member keys.
pub fn member_tag(id: u64) -> u8 {
    MEMBER_TAG_BASE + (id % u64::from(MEMBER_TAGS)) as u8
}

/// `[tag][id][kind]`: the prefix every record of `kind` under `id` starts with.
pub fn member_prefix(id: u64, kind: u8) -> [u8; MEMBER_PREFIX_LEN] {
    let mut p = [0u8; MEMBER_PREFIX_LEN];
    p[0] = member_tag(id);
    p[1..9].copy_from_slice(&id.to_be_bytes());
    p[9] = kind;
    p
}

/// The engine key of `rest` (member, list index or score entry) of `kind` under `id`.
pub fn member_key(id: u64, kind: u8, rest: &[u8]) -> EngineKey {
    let mut k = EngineKey::with_capacity(MEMBER_PREFIX_LEN + rest.len());
    k.extend_from_slice(&member_prefix(id, kind));
    k.extend_from_slice(rest);
    k
}

/// The id and kind of a member key, if it is one.
pub fn parse_member_key(key: &[u8]) -> Option<(u64, u8)> {
    let tag = *key.first()?;
    if !(MEMBER_TAG_BASE..MEMBER_TAG_BASE + MEMBER_TAGS).contains(&tag) || key.len() < 10 {
        return None;
    }
    let id = u64::from_be_bytes(key[1..9].try_into().ok()?);
    Some((id, key[9]))
}

/// The value of an owner record: which key (in which database) holds the collection.
pub fn owner_value(db: u8, key: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(key.len() + 1);
    v.push(db);
    v.extend_from_slice(key);
    Bytes::from(v)
}

/// Where a new list's first element goes: the middle of the index space, so it can grow both
/// ways.
pub const LIST_START: u64 = 1 << 63;

/// A collection's metadata, the payload of its namespace-0 record:
/// `[id: u64 BE][len: u64 BE]`, and for lists `[head: u64 BE]` (the index of the first
/// element; element `i` is at `head + i`); for streams the stream's own state follows
/// ([`STREAM_STATE_LEN`] bytes, read and written by `cmd/stream_store.rs` only: a stream's
/// metadata is never re-encoded from a `Meta`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The collection's type.
    pub ty: Type,
    /// The id its members are keyed by; never reused while any of its records remains.
    pub id: u64,
    /// Number of members (never 0 on disk: an empty collection is deleted; but a stream,
    /// as in Redis, stays when its last entry goes).
    pub len: u64,
    /// Lists: the index of the first element.
    pub head: u64,
    /// When it expires, if ever (the engine record's expiry).
    pub expire_at: Option<u64>,
    /// Made by this command: its owner record is not written yet.
    pub fresh: bool,
    /// Grew past the compact encoding's limits once (Redis's listpack/intset → hashtable/
    /// skiplist conversion, which it never undoes): OBJECT ENCODING reports the large one.
    pub converted: bool,
}

impl Meta {
    /// Decodes the metadata of a collection entry; `None` if it is malformed.
    pub fn decode(e: &Entry) -> Option<Meta> {
        let p = &e.payload;
        let want = match e.ty {
            Type::List => 24,
            Type::Stream
                if p.len() == 16 + STREAM_STATE_LEN || p.len() == 16 + STREAM_STATE_LEN_V1 =>
            {
                p.len()
            }
            Type::Stream => return None,
            _ => 16,
        };
        // An optional flags byte follows (bit 0: converted).
        if e.ty == Type::String || (p.len() != want && p.len() != want + 1) {
            return None;
        }
        let word = |i: usize| u64::from_be_bytes(p[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
        Some(Meta {
            ty: e.ty,
            id: word(0),
            len: word(1),
            head: if e.ty == Type::List { word(2) } else { 0 },
            expire_at: e.expire_at,
            fresh: false,
            converted: p.get(want).is_some_and(|f| f & 1 != 0),
        })
    }

    /// The stored form: type byte, then the payload.
    pub fn encode(&self) -> Bytes {
        let mut v = Vec::with_capacity(25);
        v.push(self.ty as u8);
        v.extend_from_slice(&self.id.to_be_bytes());
        v.extend_from_slice(&self.len.to_be_bytes());
        if self.ty == Type::List {
            v.extend_from_slice(&self.head.to_be_bytes());
        }
        if self.converted {
            v.push(1);
        }
        Bytes::from(v)
    }
}

/// Bytes of a stream's state after its `[id][len]`: last id, first id, largest deleted id
/// (each `[ms: u64 BE][seq: u64 BE]`), entries added, last node, entries put in the last node,
/// first node (0: not known) and its entries (each u64 BE). (Written by versions of
/// 2026-12-07 without the last two: [`STREAM_STATE_LEN_V1`] bytes.)
pub const STREAM_STATE_LEN: usize = 88;

/// A stream's state without the first node's number and size.
pub const STREAM_STATE_LEN_V1: usize = 72;

/// A score as a u64 whose byte order is the numeric order (-inf first, +inf last; -0 is 0).
pub fn score_bits(score: f64) -> u64 {
    let bits = if score == 0.0 { 0 } else { score.to_bits() };
    if bits >> 63 == 1 {
        !bits
    } else {
        bits | 1 << 63
    }
}

/// The inverse of [`score_bits`].
pub fn score_from_bits(bits: u64) -> f64 {
    f64::from_bits(if bits >> 63 == 1 {
        bits & !(1 << 63)
    } else {
        !bits
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_bits_keep_numeric_order() {
        let scores = [
            f64::NEG_INFINITY,
            -1e300,
            -2.5,
            -f64::MIN_POSITIVE,
            0.0,
            f64::MIN_POSITIVE,
            1.0,
            1.5,
            1e300,
            f64::INFINITY,
        ];
        for w in scores.windows(2) {
            assert!(score_bits(w[0]) < score_bits(w[1]), "{} < {}", w[0], w[1]);
        }
        for s in scores {
            assert_eq!(score_from_bits(score_bits(s)), s);
        }
        assert_eq!(score_bits(-0.0), score_bits(0.0));
    }

    #[test]
    fn meta_round_trips() {
        for ty in [Type::Hash, Type::List, Type::Set, Type::ZSet] {
            for converted in [false, true] {
                let m = Meta {
                    ty,
                    id: 0x0102_0304_0506_0708,
                    len: 42,
                    head: if ty == Type::List { LIST_START - 3 } else { 0 },
                    expire_at: Some(7),
                    fresh: false,
                    converted,
                };
                let e = Entry::decode(m.encode(), Some(7)).unwrap();
                assert_eq!(Meta::decode(&e), Some(m));
            }
        }
        // A string written by APPEND is a string, and says so.
        let e = Entry::decode(Entry::encode_raw_string(b"ab"), None).unwrap();
        assert_eq!(
            (e.ty, e.is_raw_string(), &e.payload[..]),
            (Type::String, true, &b"ab"[..])
        );
        // A string in chunks' record of the wrong length is not taken for anything.
        assert!(Entry::decode(Bytes::from_static(&[STRING_CHUNKED, 1, 2, 3]), None).is_none());
        let k = member_key(65, kind::SCORE, b"x");
        assert_eq!(k[0], MEMBER_TAG_BASE + 1);
        assert_eq!(parse_member_key(&k), Some((65, kind::SCORE)));
    }
}
