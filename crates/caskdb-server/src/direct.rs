//! The server's keys, read and written directly on a [`Db`] that no server has open: what the
//! `caskdb` command line's `set`, `get`, `remove`, `ttl`, `scan` and `stats` use, so that both
//! faces of caskdb see one keyspace (`redis-cli set hello world`, then, the server stopped,
//! `caskdb get hello` prints `world`).
//!
//! Values are stored as the server stores them (`docs/FORMAT.md`): a string under `SET`'s
//! encoding; a collection is reported by its type and size, and removed as DEL removes it (its
//! member records are reclaimed by the next server's sweeper).
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

use std::ops::Bound;
use std::time::Duration;

use bytes::Bytes;
use caskdb::Db;

use crate::keyspace::{
    self, DATABASES, DbMap, Entry, MEMBER_TAG_BASE, MEMBER_TAGS, Meta, NS_KEYS, Type,
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
    Ok(db
        .get_with_expiry(keyspace::engine_key(db_index, key))?
        .map(|(raw, exp)| decode(raw, exp)))
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
    Ok(iter.map(|item| item.map(|(k, raw)| (k.slice(2..), decode(raw, None)))))
}

/// The number of keys in every database (not counting collections' member records).
///
/// # Errors
/// [`caskdb::Error::Closed`].
pub fn count_keys(db: &Db) -> Result<u64, caskdb::Error> {
    let mut n = 0;
    for d in 0..DATABASES {
        let (first, last) = keyspace::db_range(d);
        for k in db.range_keys(first..last) {
            k?;
            n += 1;
        }
    }
    Ok(n)
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
        // (Database 0's namespace 1 holds the database map, key `[0, 1]` exactly.)
        let after = if d == 0 {
            Bound::Excluded(keyspace::DB_MAP_KEY.to_vec())
        } else {
            Bound::Included(vec![d, NS_KEYS + 1])
        };
        ranges.push((after, Bound::Excluded(vec![d + 1])));
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
        assert_eq!(count_keys(&db).unwrap(), 7);
    }
}
