//! The server's keys, read and written directly on a [`Db`] that no server has open: what the
//! `caskdb` command line's `set`, `get`, `remove`, `ttl`, `scan`, `stats`, `export` and
//! `import` use, so that both faces of caskdb see one keyspace (`redis-cli set hello world`,
//! then, the server stopped, `caskdb get hello` prints `world`).
//!
//! Values are stored as the server stores them (`docs/FORMAT.md`): a string under `SET`'s
//! encoding. [`get`] and [`scan`] report a collection by its type and size; [`read`] and
//! [`entries`] read it whole ([`Contents`]), and [`put`] / [`put_many`] write it whole, as
//! RESTORE REPLACE would: key record, member records and owner record in one engine
//! transaction. A key that is replaced or removed leaves its members to the next server's
//! sweeper, as DEL does.
//!
//! ```
//! # fn main() -> Result<(), caskdb::Error> {
//! # let dir = tempfile::tempdir().unwrap();
//! let db = caskdb::Db::open(dir.path())?;
//! caskdb_server::direct::set(&db, 0, b"hello", b"world", None)?;
//! match caskdb_server::direct::get(&db, 0, b"hello")? {
//!     Some(caskdb_server::direct::Value::String(v)) => assert_eq!(&v[..], b"world"),
//!     other => panic!("{other:?}"),
//! }
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::ops::Bound;
use std::time::Duration;

use bytes::Bytes;
use caskdb::{Db, Transaction};

pub use crate::rdb::{Stream, StreamGroup, StreamId};
use crate::stream_records;
use crate::string_chunks::{self, Chunked};

use crate::config::{CompactLimits, DEFAULT_PROTO_MAX_BULK_LEN};
use crate::keyspace::{
    self, DATABASES, DbMap, Entry, LIST_START, MAX_KEY_LEN, MEMBER_PREFIX_LEN, MEMBER_TAG_BASE,
    MEMBER_TAGS, Meta, NS_KEYS, Type, kind,
};

/// What a key holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Value {
    /// A string, whole.
    String(Bytes),
    /// A collection: its type (`hash`, `list`, `set`, `zset`) and number of members.
    Collection {
        /// The name TYPE answers with.
        ty: &'static str,
        /// Members, fields or elements.
        len: u64,
    },
    /// A value of a type this version does not know (written by a newer one).
    Unknown,
}

/// What `raw`, the record under engine key `ek`, holds: a string kept in chunks is read whole
/// (its key record again and its chunks, in one view).
fn value_at(
    db: &Db,
    ek: &[u8],
    raw: Bytes,
    expire_at: Option<u64>,
) -> Result<Value, caskdb::Error> {
    if Chunked::decode(&raw).is_none() {
        return Ok(decode(raw, expire_at));
    }
    let (value, _) = db.transaction_deferred(|tx| {
        let Some((raw, at)) = tx.get_with_expiry(ek)? else {
            return Ok(Value::Unknown);
        };
        let Some(c) = Chunked::decode(&raw) else {
            return Ok(decode(raw, at));
        };
        chunked_bytes(tx, &c).map(Value::String)
    })?;
    Ok(value)
}

/// The bytes of chunked string `c`; a chunk that does not fit it is invalid data.
fn chunked_bytes(tx: &Transaction<'_>, c: &Chunked) -> Result<Bytes, caskdb::Error> {
    match string_chunks::read(tx, c, 0, c.len) {
        Ok(v) => Ok(Bytes::from(v)),
        Err(string_chunks::ReadError::Engine(e)) => Err(e),
        Err(string_chunks::ReadError::Corrupt(what)) => Err(caskdb::Error::Io(
            std::io::Error::new(std::io::ErrorKind::InvalidData, what),
        )),
    }
}

fn decode(raw: Bytes, expire_at: Option<u64>) -> Value {
    match Entry::decode(raw, expire_at) {
        None => Value::Unknown,
        Some(e) if e.ty == Type::String => Value::String(e.payload),
        Some(e) => match Meta::decode(&e) {
            Some(m) => Value::Collection {
                ty: e.ty.name(),
                len: m.len,
            },
            None => Value::Unknown,
        },
    }
}

/// The stored database of database `db_index` (they differ after SWAPDB).
fn check_db(db: &Db, db_index: u8) -> Result<u8, caskdb::Error> {
    if db_index >= DATABASES {
        return Err(caskdb::Error::InvalidOptions(format!(
            "database {db_index} does not exist (0 to {})",
            DATABASES - 1
        )));
    }
    Ok(db_map(db)?.physical(db_index))
}

/// The database map SWAPDB keeps (`keyspace::DbMap`): the identity if it never ran.
///
/// # Errors
/// The engine's read errors; [`caskdb::Error::Io`] (invalid data) if the record is not a
/// valid map.
pub fn db_map(db: &Db) -> Result<DbMap, caskdb::Error> {
    match db.get(keyspace::DB_MAP_KEY)? {
        None => Ok(DbMap::default()),
        Some(v) => DbMap::decode(&v).ok_or_else(|| {
            caskdb::Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "the database map record (SWAPDB) is not a permutation of the 16 databases",
            ))
        }),
    }
}

/// What `key` holds in database `db_index`, if anything.
///
/// # Errors
/// The engine's read errors; [`caskdb::Error::InvalidOptions`] for a database past 15.
pub fn get(db: &Db, db_index: u8, key: &[u8]) -> Result<Option<Value>, caskdb::Error> {
    let db_index = check_db(db, db_index)?;
    let ek = keyspace::engine_key(db_index, key);
    match db.get_with_expiry(&ek)? {
        None => Ok(None),
        Some((raw, exp)) => value_at(db, &ek, raw, exp).map(Some),
    }
}

/// Stores the string `value` under `key` (replacing whatever it held), expiring after `ttl`.
///
/// # Errors
/// The engine's write errors; [`caskdb::Error::InvalidOptions`] for a database past 15.
pub fn set(
    db: &Db,
    db_index: u8,
    key: &[u8],
    value: &[u8],
    ttl: Option<Duration>,
) -> Result<(), caskdb::Error> {
    let db_index = check_db(db, db_index)?;
    let ek = keyspace::engine_key(db_index, key);
    let raw = Entry::encode(Type::String, value);
    match ttl {
        None => db.put(ek, raw),
        Some(t) => db.put_with_ttl(ek, raw, t),
    }
}

/// Removes `key` (of any type); returns whether it existed.
///
/// # Errors
/// The engine's write errors; [`caskdb::Error::InvalidOptions`] for a database past 15.
pub fn remove(db: &Db, db_index: u8, key: &[u8]) -> Result<bool, caskdb::Error> {
    let db_index = check_db(db, db_index)?;
    db.delete(keyspace::engine_key(db_index, key))
}

/// `None` if `key` does not exist; else its time to live (`None`: no expiry).
///
/// # Errors
/// [`caskdb::Error::InvalidOptions`] for a database past 15; [`caskdb::Error::Closed`].
pub fn ttl(db: &Db, db_index: u8, key: &[u8]) -> Result<Option<Option<Duration>>, caskdb::Error> {
    let db_index = check_db(db, db_index)?;
    let ek = keyspace::engine_key(db_index, key);
    if !db.contains_key(&ek)? {
        return Ok(None);
    }
    Ok(Some(db.ttl(&ek)?))
}

/// The keys of database `db_index` from `start` (inclusive) to `end` (exclusive), in key order
/// (or the reverse), with what each holds.
///
/// # Errors
/// [`caskdb::Error::InvalidOptions`] for a database past 15; the engine's read errors, as
/// items.
pub fn scan<'a>(
    db: &'a Db,
    db_index: u8,
    start: Option<&[u8]>,
    end: Option<&[u8]>,
    reverse: bool,
) -> Result<impl Iterator<Item = Result<(Bytes, Value), caskdb::Error>> + 'a, caskdb::Error> {
    let db_index = check_db(db, db_index)?;
    let (first, last) = keyspace::db_range(db_index);
    let lo = match start {
        Some(s) => Bound::Included(keyspace::engine_key(db_index, s).to_vec()),
        None => Bound::Included(first.to_vec()),
    };
    let hi = match end {
        Some(e) => Bound::Excluded(keyspace::engine_key(db_index, e).to_vec()),
        None => Bound::Excluded(last.to_vec()),
    };
    let iter = db.range((lo, hi));
    let iter: Box<dyn Iterator<Item = caskdb::Result<(Bytes, Bytes)>>> = if reverse {
        Box::new(iter.rev())
    } else {
        Box::new(iter)
    };
    // The iterator does not give expiries; only the type and payload are needed here.
    Ok(iter.map(move |item| {
        let (k, raw) = item?;
        let value = value_at(db, &k, raw, None)?;
        Ok((k.slice(2..), value))
    }))
}

/// The number of keys in each database, by SELECT's number (collections' member records are
/// not keys).
///
/// # Errors
/// [`caskdb::Error::Closed`]; as [`db_map`].
pub fn key_counts(db: &Db) -> Result<[u64; DATABASES as usize], caskdb::Error> {
    let map = db_map(db)?;
    let mut counts = [0; DATABASES as usize];
    for (d, n) in (0..DATABASES).zip(counts.iter_mut()) {
        let (first, last) = keyspace::db_range(map.physical(d));
        for k in db.range_keys(first..last) {
            k?;
            *n += 1;
        }
    }
    Ok(counts)
}

/// The engine options a server opens a directory with (at its default `proto-max-bulk-len`):
/// key, value and batch sizes that fit every key, member and command it writes. Open a
/// directory with them (adding what suits the caller) to [`put`] any value a server holds.
pub fn options() -> caskdb::Options {
    engine_options(DEFAULT_PROTO_MAX_BULK_LEN)
}

/// [`options`] for a server accepting bulk strings up to `bulk_len_ceiling` bytes.
pub(crate) fn engine_options(bulk_len_ceiling: u64) -> caskdb::Options {
    caskdb::Options::default()
        // Member keys: a 10-byte prefix, a score (sorted sets), the member.
        .max_key_size(MAX_KEY_LEN + MEMBER_PREFIX_LEN + 8)
        // Values carry one type byte.
        .max_value_size(usize::try_from(bulk_len_ceiling + 1).unwrap_or(usize::MAX))
        .max_batch_size(
            usize::try_from(bulk_len_ceiling.saturating_mul(2))
                .unwrap_or(usize::MAX)
                .max(1 << 30),
        )
}

/// A key's whole value: what [`read`] and [`entries`] return and [`put`] writes.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Contents {
    /// A string.
    String(Bytes),
    /// A hash's (field, value) pairs, fields distinct (read in the fields' byte order).
    Hash(Vec<(Bytes, Bytes)>),
    /// A list's elements, head first.
    List(Vec<Bytes>),
    /// A set's members, distinct (read in byte order).
    Set(Vec<Bytes>),
    /// A sorted set's (member, score) pairs, members distinct, no NaN (read in Redis's order:
    /// by score, then member).
    ZSet(Vec<(Bytes, f64)>),
    /// A stream: its entries, state and consumer groups (possibly empty, as Redis keeps an
    /// empty stream).
    Stream(Box<Stream>),
}

impl Contents {
    /// The name TYPE replies with: `string`, `hash`, `list`, `set`, `zset`, `stream`.
    pub fn type_name(&self) -> &'static str {
        self.ty().name()
    }

    fn ty(&self) -> Type {
        match self {
            Contents::String(_) => Type::String,
            Contents::Hash(_) => Type::Hash,
            Contents::List(_) => Type::List,
            Contents::Set(_) => Type::Set,
            Contents::ZSet(_) => Type::ZSet,
            Contents::Stream(_) => Type::Stream,
        }
    }

    /// A collection's number of members; a string's length in bytes.
    pub fn len(&self) -> usize {
        match self {
            Contents::String(s) => s.len(),
            Contents::Hash(p) => p.len(),
            Contents::List(v) | Contents::Set(v) => v.len(),
            Contents::ZSet(p) => p.len(),
            Contents::Stream(st) => st.nodes.iter().map(Vec::len).sum(),
        }
    }

    /// Whether [`Contents::len`] is 0 (an empty collection is no key: [`put`] refuses it; an
    /// empty stream is one).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A key with its whole value and time to live: what [`entries`] reads and [`put_many`] writes.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// The database, by SELECT's number.
    pub db: u8,
    /// The key.
    pub key: Bytes,
    /// Its value.
    pub contents: Contents,
    /// Its time to live (`None`: no expiry).
    pub ttl: Option<Duration>,
}

/// Why a key could not be read or written whole.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine's error.
    #[error(transparent)]
    Engine(#[from] caskdb::Error),
    /// The key record's type byte is one this version does not know (a newer one wrote it).
    #[error(
        "key \"{}\" of database {db} holds a value of an unknown type (type byte {byte}): written by a newer version?",
        key.escape_ascii()
    )]
    UnknownType {
        /// The database, by SELECT's number.
        db: u8,
        /// The key.
        key: Bytes,
        /// The type byte.
        byte: u8,
    },
    /// The key's collection metadata or member records are malformed.
    #[error("key \"{}\" of database {db} is corrupt: {what}", key.escape_ascii())]
    Corrupt {
        /// The database, by SELECT's number.
        db: u8,
        /// The key.
        key: Bytes,
        /// What is wrong.
        what: String,
    },
    /// A value [`put`] refuses (an empty or duplicated collection, a NaN score, a key or member
    /// too large, a database past 15); nothing was written.
    #[error("key \"{}\" of database {db}: {what}", key.escape_ascii())]
    Invalid {
        /// The database, by SELECT's number.
        db: u8,
        /// The key.
        key: Bytes,
        /// Why.
        what: String,
    },
}

/// What `key` holds in database `db_index`, whole, and its time to live (`None`: no expiry);
/// `None` if it does not exist. Key record and members are read in one transaction.
///
/// # Errors
/// [`Error::UnknownType`], [`Error::Corrupt`]; the engine's errors ([`caskdb::Error::InvalidOptions`] for
/// a database past 15).
pub fn read(
    db: &Db,
    db_index: u8,
    key: &[u8],
) -> Result<Option<(Contents, Option<Duration>)>, Error> {
    let physical = check_db(db, db_index)?;
    db.transaction(|tx| read_in(tx, db_index, physical, key))
}

/// Every key of database `db_index`, in key order, read whole as [`read`] reads it (a key that
/// expires meanwhile is left out).
///
/// # Errors
/// As [`read`]: for the database at once, for a key as its item.
pub fn entries<'a>(
    db: &'a Db,
    db_index: u8,
) -> Result<impl Iterator<Item = Result<Item, Error>> + 'a, caskdb::Error> {
    let physical = check_db(db, db_index)?;
    let (first, last) = keyspace::db_range(physical);
    Ok(db.range_keys(first..last).filter_map(move |ek| {
        let key = match ek {
            Ok(ek) => ek.slice(2..),
            Err(e) => return Some(Err(e.into())),
        };
        match db.transaction(|tx| read_in(tx, db_index, physical, &key)) {
            Ok(None) => None,
            Ok(Some((contents, ttl))) => Some(Ok(Item {
                db: db_index,
                key,
                contents,
                ttl,
            })),
            Err(e) => Some(Err(e)),
        }
    }))
}

/// [`read`] inside a transaction, in stored database `physical` (`db_index` names it in errors).
fn read_in(
    tx: &Transaction<'_>,
    db_index: u8,
    physical: u8,
    key: &[u8],
) -> Result<Option<(Contents, Option<Duration>)>, Error> {
    let Some((raw, ttl)) = tx.get_with_ttl(keyspace::engine_key(physical, key))? else {
        return Ok(None);
    };
    let corrupt = |what: String| Error::Corrupt {
        db: db_index,
        key: Bytes::copy_from_slice(key),
        what,
    };
    let Some(&byte) = raw.first() else {
        return Err(corrupt("its value is empty (no type byte)".into()));
    };
    let Some(entry) = Entry::decode(raw, None) else {
        return Err(Error::UnknownType {
            db: db_index,
            key: Bytes::copy_from_slice(key),
            byte,
        });
    };
    if let Some(c) = Chunked::of(&entry) {
        let bytes = string_chunks::read(tx, &c, 0, c.len).map_err(|e| match e {
            string_chunks::ReadError::Engine(e) => Error::Engine(e),
            string_chunks::ReadError::Corrupt(what) => corrupt(what),
        })?;
        return Ok(Some((Contents::String(Bytes::from(bytes)), ttl)));
    }
    if entry.ty == Type::String {
        return Ok(Some((Contents::String(entry.payload), ttl)));
    }
    let m = Meta::decode(&entry)
        .ok_or_else(|| corrupt("its collection metadata has the wrong length".into()))?;
    if m.ty == Type::Stream {
        let state = stream_records::decode_state(&entry.payload)
            .ok_or_else(|| corrupt("its stream metadata has the wrong length".into()))?;
        let stream = stream_records::read(tx, m.id, &state).map_err(|e| match e {
            stream_records::ReadError::Engine(e) => Error::Engine(e),
            stream_records::ReadError::Corrupt(what) => corrupt(format!("{what} does not decode")),
        })?;
        return Ok(Some((Contents::Stream(Box::new(stream)), ttl)));
    }
    let (k, lo) = match m.ty {
        // A list's elements are at indexes head, head + 1, …
        Type::List => (
            kind::MEMBER,
            keyspace::member_key(m.id, kind::MEMBER, &m.head.to_be_bytes()),
        ),
        // A sorted set in score order: its score index.
        Type::ZSet => (kind::SCORE, keyspace::member_key(m.id, kind::SCORE, b"")),
        _ => (kind::MEMBER, keyspace::member_key(m.id, kind::MEMBER, b"")),
    };
    // Just past every record of this kind: the kind byte + 1.
    let mut hi = keyspace::member_prefix(m.id, k);
    hi[MEMBER_PREFIX_LEN - 1] += 1;
    // One more than the metadata says, to tell an extra member.
    let mut records = Vec::new();
    for r in tx.range(lo.to_vec()..hi.to_vec()).take(
        usize::try_from(m.len)
            .unwrap_or(usize::MAX)
            .saturating_add(1),
    ) {
        let (mut k, v) = r?;
        bytes::Buf::advance(&mut k, MEMBER_PREFIX_LEN);
        records.push((k, v));
    }
    if records.len() as u64 != m.len {
        return Err(corrupt(format!(
            "its metadata says {} members, its {} records {}",
            m.len,
            m.ty.name(),
            if (records.len() as u64) < m.len {
                format!("hold {}", records.len())
            } else {
                "hold more".to_string()
            }
        )));
    }
    let contents = match m.ty {
        Type::List => Contents::List(records.into_iter().map(|(_, v)| v).collect()),
        Type::Set => Contents::Set(records.into_iter().map(|(member, _)| member).collect()),
        Type::Hash => Contents::Hash(records),
        Type::ZSet => Contents::ZSet(
            records
                .into_iter()
                .map(|(rest, _)| {
                    let bits = rest
                        .get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_be_bytes)
                        .ok_or_else(|| corrupt("a score index entry is too short".into()))?;
                    Ok((rest.slice(8..), keyspace::score_from_bits(bits)))
                })
                .collect::<Result<_, Error>>()?,
        ),
        // (Read whole above.)
        Type::Stream => return Err(corrupt("a stream read as a collection".into())),
        Type::String => return Err(corrupt("a string with collection metadata".into())),
    };
    Ok(Some((contents, ttl)))
}

/// Stores `contents` under `key` in database `db_index`, replacing whatever it held (as RESTORE
/// REPLACE), expiring after `ttl` (a zero `ttl` only removes the key). A collection is written
/// as the server writes one: its key record, its member records under a new collection id and
/// its owner record, all in one engine transaction, so after a crash the key is whole or as it
/// was. Its encoding (OBJECT ENCODING) follows Redis's default limits.
///
/// # Errors
/// [`Error::Invalid`] (nothing written); the engine's errors
/// ([`caskdb::Error::BatchTooLarge`] if the collection does not fit one transaction).
pub fn put(
    db: &Db,
    db_index: u8,
    key: &[u8],
    contents: &Contents,
    ttl: Option<Duration>,
) -> Result<(), Error> {
    let map = db_map(db)?;
    db.transaction(|tx| {
        let mut next = next_collection_id(tx)?;
        put_in(tx, &map, &mut next, db_index, key, contents, ttl)
    })
}

/// [`put`] of several keys in one engine transaction: all of them are written, or none.
///
/// # Errors
/// As [`put`], for the first key refused.
pub fn put_many(db: &Db, items: &[Item]) -> Result<(), Error> {
    let map = db_map(db)?;
    db.transaction(|tx| {
        let mut next = next_collection_id(tx)?;
        for it in items {
            put_in(tx, &map, &mut next, it.db, &it.key, &it.contents, it.ttl)?;
        }
        Ok(())
    })
}

/// An id above every collection id that has any record left (as the server's
/// `sweep::Collections::open` picks them), so no stale member shows up in a new collection.
fn next_collection_id(tx: &Transaction<'_>) -> Result<u64, caskdb::Error> {
    let mut max = 0;
    for t in 0..MEMBER_TAGS {
        let tag = MEMBER_TAG_BASE + t;
        if let Some(k) = tx.range_keys([tag]..[tag + 1]).next_back()
            && let Some((id, _)) = keyspace::parse_member_key(&k?)
        {
            max = max.max(id);
        }
    }
    Ok(max + 1)
}

/// [`put`] inside a transaction; `next` is the next free collection id.
fn put_in(
    tx: &mut Transaction<'_>,
    map: &DbMap,
    next: &mut u64,
    db_index: u8,
    key: &[u8],
    contents: &Contents,
    ttl: Option<Duration>,
) -> Result<(), Error> {
    let invalid = |what: String| Error::Invalid {
        db: db_index,
        key: Bytes::copy_from_slice(key),
        what,
    };
    if db_index >= DATABASES {
        return Err(invalid(format!(
            "database {db_index} does not exist (0 to {})",
            DATABASES - 1
        )));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(invalid(format!(
            "the key is too large ({} bytes; the limit is {MAX_KEY_LEN})",
            key.len()
        )));
    }
    let physical = map.physical(db_index);
    let ek = keyspace::engine_key(physical, key);
    if ttl.is_some_and(|t| t.is_zero()) {
        // Expired already: RESTORE REPLACE creates nothing, and the old key is gone.
        tx.delete(&ek)?;
        return Ok(());
    }
    let value = match contents {
        Contents::String(s) => Entry::encode(Type::String, s),
        Contents::Stream(st) => {
            st.check()
                .map_err(|what| invalid(format!("a stream with {what}")))?;
            let id = *next;
            *next += 1;
            let meta = stream_records::write(tx, id, st)?;
            tx.put(
                keyspace::member_key(id, kind::OWNER, b""),
                keyspace::owner_value(physical, key),
            )?;
            meta
        }
        _ => {
            let id = *next;
            let meta = put_members(tx, id, contents).map_err(|e| match e {
                MemberError::Engine(e) => Error::Engine(e),
                MemberError::Invalid(what) => invalid(what),
            })?;
            *next += 1;
            tx.put(
                keyspace::member_key(id, kind::OWNER, b""),
                keyspace::owner_value(physical, key),
            )?;
            meta.encode()
        }
    };
    match ttl {
        None => tx.put(&ek, value)?,
        Some(t) => tx.put_with_ttl(&ek, value, t)?,
    }
    Ok(())
}

enum MemberError {
    Engine(caskdb::Error),
    Invalid(String),
}

impl From<caskdb::Error> for MemberError {
    fn from(e: caskdb::Error) -> MemberError {
        MemberError::Engine(e)
    }
}

/// Writes the member records of collection `contents` under `id`; returns its metadata.
fn put_members(
    tx: &mut Transaction<'_>,
    id: u64,
    contents: &Contents,
) -> Result<Meta, MemberError> {
    let ty = contents.ty();
    let len = contents.len() as u64;
    if len == 0 {
        return Err(MemberError::Invalid(format!(
            "an empty {} (a collection that loses its last member is deleted)",
            ty.name()
        )));
    }
    // Past the compact encoding's limits (by size, or by one member): marked for good, as the
    // server marks it when it builds the collection.
    let limits = CompactLimits::REDIS_DEFAULT;
    let mut converted = len > limits.max_len(ty);
    let mut seen = HashSet::new();
    let mut member = |tx: &mut Transaction<'_>, m: &[u8], v: &[u8]| {
        if m.len() > MAX_KEY_LEN {
            return Err(MemberError::Invalid(format!(
                "a member is too large ({} bytes; the limit is {MAX_KEY_LEN})",
                m.len()
            )));
        }
        if !seen.insert(Bytes::copy_from_slice(m)) {
            return Err(MemberError::Invalid(format!(
                "member \"{}\" is there twice",
                m.escape_ascii()
            )));
        }
        converted |= limits.breaks(ty, m, v);
        tx.put(keyspace::member_key(id, kind::MEMBER, m), v)?;
        Ok(())
    };
    match contents {
        // (Written by `put_in` whole.)
        Contents::String(_) | Contents::Stream(_) => {}
        Contents::List(items) => {
            for (i, item) in (0u64..).zip(items) {
                let at = LIST_START.wrapping_add(i).to_be_bytes();
                tx.put(keyspace::member_key(id, kind::MEMBER, &at), item)?;
            }
        }
        Contents::Set(members) => {
            for m in members {
                member(tx, m, b"")?;
            }
        }
        Contents::Hash(pairs) => {
            for (field, v) in pairs {
                member(tx, field, v)?;
            }
        }
        Contents::ZSet(pairs) => {
            for (m, score) in pairs {
                if score.is_nan() {
                    return Err(MemberError::Invalid("a score is NaN".into()));
                }
                // -0 is stored as 0, as Redis does.
                let score = if *score == 0.0 { 0.0 } else { *score };
                member(tx, m, &score.to_bits().to_be_bytes())?;
                let mut index = Vec::with_capacity(8 + m.len());
                index.extend_from_slice(&keyspace::score_bits(score).to_be_bytes());
                index.extend_from_slice(m);
                tx.put(keyspace::member_key(id, kind::SCORE, &index), b"")?;
            }
        }
    }
    Ok(Meta {
        ty,
        id,
        len,
        head: LIST_START,
        expire_at: None,
        fresh: false,
        converted,
    })
}

/// A range of engine keys.
type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The engine-key ranges the server's layout leaves empty (`keyspace.rs`): around each
/// database's namespace 0 (but the database map), between the databases and the member tags, after the member tags.
/// (A raw key starting with a member tag byte, 0x80 to 0xbf, is taken for a member record.)
fn outside_server_layout() -> Vec<KeyRange> {
    let mut ranges = Vec::new();
    for d in 0..DATABASES {
        ranges.push((Bound::Included(vec![d]), Bound::Excluded(vec![d, NS_KEYS])));
        // (Database 0's namespace 1 holds the database map, key `[0, 1]` exactly; its
        // namespace 2 the function libraries; its namespace 3 a group's Raft state: the
        // applied state `[0, 3]`, and while a snapshot installs its marker after it.)
        if d == 0 {
            ranges.push((
                Bound::Excluded(keyspace::DB_MAP_KEY.to_vec()),
                Bound::Excluded(keyspace::NS_FUNCTIONS.to_vec()),
            ));
            ranges.push((Bound::Included(vec![0, 4]), Bound::Excluded(vec![1])));
        } else {
            ranges.push((
                Bound::Included(vec![d, NS_KEYS + 1]),
                Bound::Excluded(vec![d + 1]),
            ));
        }
    }
    ranges.push((
        Bound::Included(vec![DATABASES]),
        Bound::Excluded(vec![MEMBER_TAG_BASE]),
    ));
    ranges.push((
        Bound::Included(vec![MEMBER_TAG_BASE + MEMBER_TAGS]),
        Bound::Unbounded,
    ));
    ranges
}

/// Moves keys written in the command line's old raw encoding (before it shared the server's
/// keyspace) to strings in database 0, keeping their expiries; returns how many moved. A raw
/// key whose name is already a key of database 0 is left where it is (and counted in the
/// second number), so nothing is overwritten.
///
/// # Errors
/// The engine's errors; what moved before one stays moved (each key moves atomically).
pub fn migrate_raw_keys(db: &Db) -> Result<(u64, u64), caskdb::Error> {
    let mut moved = 0;
    let mut kept = 0;
    // Only the key ranges the server's layout leaves empty are read, so an open of a large
    // server directory does not walk its whole index.
    let mut raw: Vec<Bytes> = Vec::new();
    for range in outside_server_layout() {
        for k in db.range_keys(range) {
            raw.push(k?);
        }
    }
    for chunk in raw.chunks(1000) {
        db.transaction(|tx| {
            for k in chunk {
                let Some((value, ttl)) = tx.get_with_ttl(k)? else {
                    continue;
                };
                let ek = keyspace::engine_key(0, k);
                if tx.contains_key(&ek)? {
                    kept += 1;
                    continue;
                }
                let v = Entry::encode(Type::String, &value);
                match ttl {
                    None => tx.put(&ek, v)?,
                    Some(t) => tx.put_with_ttl(&ek, v, t)?,
                }
                tx.delete(k)?;
                moved += 1;
            }
            Ok::<_, caskdb::Error>(())
        })?;
    }
    Ok((moved, kept))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &[u8]) -> Bytes {
        Bytes::copy_from_slice(s)
    }

    #[test]
    fn put_and_read_every_type_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = options().open(dir.path()).unwrap();
        let values = [
            Contents::String(b(b"v")),
            Contents::Hash(vec![(b(b"a"), b(b"1")), (b(b"b"), b(b""))]),
            Contents::List(vec![b(b"x"), b(b"x"), b(b"")]),
            Contents::Set(vec![b(b"1"), b(b"2")]),
            Contents::ZSet(vec![
                (b(b"n"), f64::NEG_INFINITY),
                (b(b"z"), 0.0),
                (b(b"a"), 2.5),
                (b(b"p"), f64::INFINITY),
            ]),
        ];
        for (i, v) in values.iter().enumerate() {
            put(&db, 4, &[b'k', i as u8], v, None).unwrap();
            assert_eq!(
                read(&db, 4, &[b'k', i as u8]).unwrap(),
                Some((v.clone(), None))
            );
        }
        // As the server writes them: metadata, members, owner, a fresh id each.
        let e = Entry::decode(
            db.get(keyspace::engine_key(4, &[b'k', 3]))
                .unwrap()
                .unwrap(),
            None,
        )
        .unwrap();
        let m = Meta::decode(&e).unwrap();
        assert_eq!((m.ty, m.len, m.converted), (Type::Set, 2, false));
        assert_eq!(
            db.get(keyspace::member_key(m.id, kind::OWNER, b""))
                .unwrap(),
            Some(keyspace::owner_value(4, &[b'k', 3]))
        );
        // Non-integer set members leave the intset encoding, as in Redis.
        put(&db, 0, b"s", &Contents::Set(vec![b(b"a")]), None).unwrap();
        let e = Entry::decode(
            db.get(keyspace::engine_key(0, b"s")).unwrap().unwrap(),
            None,
        );
        assert!(Meta::decode(&e.unwrap()).unwrap().converted);
        let all: Vec<Item> = entries(&db, 4).unwrap().map(Result::unwrap).collect();
        assert_eq!(all.len(), 5);
        assert_eq!(all[4].contents, values[4]);
        assert_eq!(key_counts(&db).unwrap()[4], 5);
        // Replaced whole, whatever it held; a zero TTL only removes.
        put(
            &db,
            4,
            b"k\x01",
            &Contents::List(vec![b(b"only")]),
            Some(Duration::from_secs(60)),
        )
        .unwrap();
        match read(&db, 4, b"k\x01").unwrap() {
            Some((Contents::List(l), Some(ttl))) => {
                assert_eq!(l, [b(b"only")]);
                assert!(ttl > Duration::from_secs(50));
            }
            other => panic!("{other:?}"),
        }
        put(
            &db,
            4,
            b"k\x01",
            &Contents::String(b(b"x")),
            Some(Duration::ZERO),
        )
        .unwrap();
        assert_eq!(read(&db, 4, b"k\x01").unwrap(), None);
    }

    #[test]
    fn put_refuses_what_the_server_never_holds_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let db = options().open(dir.path()).unwrap();
        let refused = [
            Contents::Set(vec![]),
            Contents::Set(vec![b(b"x"), b(b"x")]),
            Contents::Hash(vec![(b(b"f"), b(b"1")), (b(b"f"), b(b"2"))]),
            Contents::ZSet(vec![(b(b"m"), f64::NAN)]),
        ];
        for v in &refused {
            let items = [
                Item {
                    db: 0,
                    key: b(b"fine"),
                    contents: Contents::String(b(b"v")),
                    ttl: None,
                },
                Item {
                    db: 0,
                    key: b(b"bad"),
                    contents: v.clone(),
                    ttl: None,
                },
            ];
            assert!(
                matches!(put_many(&db, &items), Err(Error::Invalid { .. })),
                "{v:?}"
            );
            assert_eq!(read(&db, 0, b"fine").unwrap(), None, "all or nothing");
        }
        assert!(put(&db, 16, b"k", &Contents::String(b(b"v")), None).is_err());
        assert_eq!(db.len(), 0);
    }

    /// A string the server keeps in chunks (written here as it writes one: key record, two of
    /// its three chunks, the last one short) reads whole through `get`, `scan`, `read` and
    /// `entries`; a chunk longer than its part of the string is an error, not bytes.
    #[test]
    fn strings_in_chunks_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = options().open(dir.path()).unwrap();
        let c = Chunked {
            id: 77,
            len: 10_000,
        };
        db.put(keyspace::engine_key(0, b"c"), c.encode()).unwrap();
        db.put(c.key(0), b"abc").unwrap();
        db.put(c.key(2), [1u8; 16]).unwrap();
        let mut want = vec![0u8; 10_000];
        want[..3].copy_from_slice(b"abc");
        want[8192..8208].fill(1);
        assert_eq!(get(&db, 0, b"c").unwrap(), Some(Value::String(b(&want))));
        let listed: Vec<_> = scan(&db, 0, None, None, false)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(listed, vec![(b(b"c"), Value::String(b(&want)))]);
        assert_eq!(
            read(&db, 0, b"c").unwrap(),
            Some((Contents::String(b(&want)), None))
        );
        let items: Vec<_> = entries(&db, 0).unwrap().map(Result::unwrap).collect();
        assert_eq!(items[0].contents, Contents::String(b(&want)));
        // Chunk 2 holds bytes 8192..10000: 1809 bytes cannot be its.
        db.put(c.key(2), vec![1u8; 1809]).unwrap();
        assert!(get(&db, 0, b"c").is_err());
        assert!(matches!(read(&db, 0, b"c"), Err(Error::Corrupt { .. })));
    }

    #[test]
    fn read_names_a_key_of_an_unknown_type_or_with_missing_members() {
        let dir = tempfile::tempdir().unwrap();
        let db = options().open(dir.path()).unwrap();
        db.put(keyspace::engine_key(2, b"new"), [9u8, 1, 2])
            .unwrap();
        let err = read(&db, 2, b"new").unwrap_err();
        assert!(
            matches!(err, Error::UnknownType { db: 2, byte: 9, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("\"new\""), "{err}");
        put(&db, 0, b"l", &Contents::List(vec![b(b"a"), b(b"b")]), None).unwrap();
        let e = Entry::decode(
            db.get(keyspace::engine_key(0, b"l")).unwrap().unwrap(),
            None,
        );
        let m = Meta::decode(&e.unwrap()).unwrap();
        db.delete(keyspace::member_key(
            m.id,
            kind::MEMBER,
            &(LIST_START + 1).to_be_bytes(),
        ))
        .unwrap();
        let err = read(&db, 0, b"l").unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        let items: Vec<_> = entries(&db, 0).unwrap().collect();
        assert!(matches!(items[..], [Err(Error::Corrupt { .. })]));
    }

    #[test]
    fn raw_keys_move_to_database_0_and_server_keys_stay() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        db.put("hello", "world").unwrap();
        db.put_with_ttl("temp", "t", Duration::from_secs(100))
            .unwrap();
        set(&db, 0, b"taken", b"server", None).unwrap();
        db.put("taken", "raw").unwrap();
        set(&db, 3, b"other", b"x", None).unwrap();
        // Raw keys in every gap of the server's layout: a lone database byte, another
        // namespace, past the member tags.
        db.put([2u8], "a").unwrap();
        db.put([1u8, 7, b'y'], "b").unwrap();
        db.put([0xc5u8, b'z'], "c").unwrap();
        assert_eq!(migrate_raw_keys(&db).unwrap(), (5, 1));
        assert_eq!(
            get(&db, 0, &[0xc5, b'z']).unwrap(),
            Some(Value::String(Bytes::from("c")))
        );
        assert_eq!(
            get(&db, 0, b"hello").unwrap(),
            Some(Value::String(Bytes::from("world")))
        );
        assert!(matches!(ttl(&db, 0, b"temp").unwrap(), Some(Some(_))));
        assert_eq!(
            get(&db, 0, b"taken").unwrap(),
            Some(Value::String(Bytes::from("server")))
        );
        assert_eq!(
            get(&db, 3, b"other").unwrap(),
            Some(Value::String(Bytes::from("x")))
        );
        assert_eq!(db.get("hello").unwrap(), None);
        // A second pass finds only the key it must keep.
        assert_eq!(migrate_raw_keys(&db).unwrap(), (0, 1));
        assert_eq!(key_counts(&db).unwrap().iter().sum::<u64>(), 7);
    }

    #[test]
    fn a_groups_raft_state_is_not_taken_for_raw_keys() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(dir.path()).unwrap();
        let marker = [&keyspace::RAFT_APPLIED_KEY[..], b"-installing"].concat();
        db.put(keyspace::RAFT_APPLIED_KEY, "applied").unwrap();
        db.put(&marker, "loading-1").unwrap();
        assert_eq!(migrate_raw_keys(&db).unwrap(), (0, 0));
        assert_eq!(db.get(&marker).unwrap().as_deref(), Some(&b"loading-1"[..]));
    }
}
