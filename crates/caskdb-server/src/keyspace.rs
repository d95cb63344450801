//! How Redis keys and values map onto engine keys and values (see `docs/FORMAT.md`).
//!
//! Engine key: `[db: u8][namespace: u8][user key]`.
//! - namespace `0` holds every Redis key, whatever its type: its value is `[type: u8][payload]`,
//!   and its expiry is the engine record's expiry. So TYPE, EXISTS, DEL, EXPIRE, RENAME and
//!   WRONGTYPE work across types by looking at one record, and `KEYS`/`SCAN` walk one range.
//! - namespace `1` is reserved for the members of collections (hashes, lists, sets, sorted
//!   sets), keyed by a collection id held in the namespace-0 record, so adding those types needs
//!   no format change.

use bytes::Bytes;
use smallvec::SmallVec;

/// Number of databases (`SELECT 0` … `SELECT 15`).
pub const DATABASES: u8 = 16;

/// Namespace of top-level keys.
pub const NS_KEYS: u8 = 0;

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
    /// Reserved: a hash.
    Hash = 1,
    /// Reserved: a list.
    List = 2,
    /// Reserved: a set.
    Set = 3,
    /// Reserved: a sorted set.
    ZSet = 4,
}

impl Type {
    /// The type stored in `byte`, if known.
    pub fn from_byte(byte: u8) -> Option<Type> {
        Some(match byte {
            0 => Type::String,
            1 => Type::Hash,
            2 => Type::List,
            3 => Type::Set,
            4 => Type::ZSet,
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
        }
    }
}

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
    /// Decodes a stored value; `None` if its type byte is unknown (written by a newer version).
    pub fn decode(raw: Bytes, expire_at: Option<u64>) -> Option<Entry> {
        let ty = Type::from_byte(*raw.first()?)?;
        Some(Entry {
            ty,
            payload: raw.slice(1..),
            expire_at,
            raw,
        })
    }

    /// The stored form: type byte, then payload.
    pub fn encode(ty: Type, payload: &[u8]) -> Bytes {
        let mut v = Vec::with_capacity(payload.len() + 1);
        v.push(ty as u8);
        v.extend_from_slice(payload);
        Bytes::from(v)
    }
}
