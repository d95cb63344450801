//! The store layer: what a command runs against ([`Ctx`]: the shared state, the connection's
//! session, the store) and its key-level reads and writes. Collections' members are in
//! `collection.rs`.
//!
//! Keys are written through [`Ctx::put_raw`] and deleted through [`Ctx::remove_in`], which keep
//! the rules in one place: WATCH is signalled for each key changed, keys over the limit are
//! refused, an expiry already past deletes the key.

use bytes::Bytes;
use caskdb::{Db, Transaction};

use super::reply::{CmdError, key_too_large, string_too_large, wrongtype};
use crate::frame::Frame;
use crate::keyspace::{self, Entry, Type};
use crate::notify;
use crate::session::ConnState;
use crate::state::Shared;
use crate::string_chunks::{self, Chunked};

/// Records of more than this many bytes are not read when a command runs: their values are
/// replied as [`Frame::Stored`], read from the data file as the client takes the reply
/// (`connection/outbox.rs`), so a reply's size does not become the server's memory.
pub const STREAM_ABOVE: usize = 16 * 1024;

/// The store a command sees: lock-free reads, or a transaction.
pub(crate) enum Store<'a, 'db> {
    Read(&'a Db),
    Write(&'a mut Transaction<'db>),
}

/// Everything a command can touch.
pub(crate) struct Ctx<'a, 'db> {
    pub shared: &'a Shared,
    pub conn: &'a mut ConnState,
    pub store: Store<'a, 'db>,
    /// Member records this command wrote or deleted (`collection.rs`), so that one that
    /// changed nothing does not signal WATCH.
    pub member_writes: u32,
    /// A member this command wrote does not fit the compact encoding (`Ctx::put_member`).
    pub breaks_compact: bool,
    /// Whether a blocking command may block (not inside MULTI, nor when serving a blocked
    /// client): otherwise it answers as its non-blocking form would.
    pub may_block: bool,
    /// A read command: its key lookups count as INFO's `keyspace_hits`/`keyspace_misses`.
    pub counts_lookups: bool,
}

impl<'db> Ctx<'_, 'db> {
    /// Milliseconds since the epoch, as the engine judges expiry.
    pub fn now_ms(&self) -> u64 {
        match &self.store {
            Store::Read(db) => db.now_ms(),
            Store::Write(tx) => tx.now_ms(),
        }
    }

    /// The stored database of database `db` (they differ after SWAPDB): engine keys are built
    /// with it, here and in `collection.rs` only.
    pub fn stored(&self, db: u8) -> u8 {
        self.shared.dbs.physical(db)
    }

    /// A read command's lookup counts as INFO's `keyspace_hits` or `keyspace_misses`.
    fn count_lookup(&self, found: bool) {
        if self.counts_lookups {
            let stats = &self.shared.stats;
            if found { &stats.hits } else { &stats.misses }.add(1);
        }
    }

    /// The value of `key` in database `db`, of any type (a string kept in chunks read whole).
    pub fn lookup_in(&mut self, db: u8, key: &[u8]) -> Result<Option<Entry>, CmdError> {
        match self.lookup_stored_in(db, key)? {
            Some(e) if e.raw.first() == Some(&keyspace::STRING_CHUNKED) => {
                self.chunked_entry(db, key)
            }
            found => Ok(found),
        }
    }

    /// The value of `key` in database `db` as stored: for a string kept in chunks, the
    /// payload is its key record (id and length), not its bytes. For what needs only the
    /// type, the expiry or the stored form (TYPE, EXPIRE, RENAME…), which it reads in O(1).
    pub fn lookup_stored_in(&mut self, db: u8, key: &[u8]) -> Result<Option<Entry>, CmdError> {
        let ek = keyspace::engine_key(self.stored(db), key);
        let raw = match &self.store {
            Store::Read(d) => d.get_with_expiry(&ek),
            Store::Write(tx) => tx.get_with_expiry(&ek),
        }?;
        self.count_lookup(raw.is_some());
        match raw {
            None => Ok(None),
            Some((v, exp)) => match Entry::decode(v, exp) {
                Some(e) => Ok(Some(e)),
                None => {
                    Err(Frame::err("value of unknown type (written by a newer version?)").into())
                }
            },
        }
    }

    /// [`Ctx::lookup_stored_in`] in the selected database.
    pub fn lookup_stored(&mut self, key: &[u8]) -> Result<Option<Entry>, CmdError> {
        self.lookup_stored_in(self.conn.db, key)
    }

    /// Runs `f` on a view of the store no write changes while it runs: the command's
    /// transaction; for a command that runs without one, a view without the writer lock kept
    /// if no write landed meanwhile (`Db::read_unlocked`, so `f` may run more than once), and
    /// after two tries a transaction of its own (which writes nothing). For reads of several
    /// records that must agree, such as a chunked string's key record and its chunks.
    pub fn consistent<T>(
        &mut self,
        mut f: impl FnMut(&Transaction<'_>) -> Result<T, CmdError>,
    ) -> Result<T, CmdError> {
        match &mut self.store {
            Store::Write(tx) => f(tx),
            Store::Read(d) => {
                if let Some(out) = read_unlocked_tries(d, |tx| Some(f(tx))) {
                    return out;
                }
                Ok(d.transaction_deferred(|tx| f(tx))?.0)
            }
        }
    }

    /// The entry under `key` in `db` with a chunked string's bytes read whole (key record and
    /// chunks read in one view); not counted as a lookup.
    fn chunked_entry(&mut self, db: u8, key: &[u8]) -> Result<Option<Entry>, CmdError> {
        let ek = keyspace::engine_key(self.stored(db), key);
        self.consistent(|tx| {
            let Some((raw, exp)) = tx.get_with_expiry(&ek)? else {
                return Ok(None);
            };
            let Some(mut e) = Entry::decode(raw, exp) else {
                return Err(
                    Frame::err("value of unknown type (written by a newer version?)").into(),
                );
            };
            if let Some(c) = Chunked::of(&e) {
                e.payload = Bytes::from(chunk_read(tx, &c, 0, c.len)?);
            }
            Ok(Some(e))
        })
    }

    /// The string under `key` in the selected database, as a reply: a bulk string, or a
    /// large one left in its file ([`Frame::Stored`]); `Ok(None)` if absent, `Err(ty)` for
    /// another type.
    pub fn string_reply(&mut self, key: &[u8]) -> Result<Option<Result<Frame, Type>>, CmdError> {
        let ek = keyspace::engine_key(self.stored(self.conn.db), key);
        let raw = match &self.store {
            Store::Read(d) => d.get_ref(&ek, STREAM_ABOVE),
            Store::Write(tx) => tx.get_ref(&ek, STREAM_ABOVE),
        }?;
        self.count_lookup(raw.is_some());
        let Some(raw) = raw else {
            return Ok(None);
        };
        let ty = raw.head().first().and_then(|&b| Type::from_byte(b));
        if ty != Some(Type::String) && !raw.is_in_memory() {
            // Only strings are this large: read it whole, so that a damaged record is
            // reported as such rather than by its type byte.
            raw.read()?;
        }
        let Some(ty) = ty else {
            return Err(Frame::err("value of unknown type (written by a newer version?)").into());
        };
        if ty != Type::String {
            return Ok(Some(Err(ty)));
        }
        if raw.head().first() == Some(&keyspace::STRING_CHUNKED) {
            // Read again with its chunks: it may have become another type meanwhile.
            let db = self.conn.db;
            return Ok(self.chunked_entry(db, key)?.map(|e| {
                if e.ty == Type::String {
                    Ok(Frame::Bulk(e.payload))
                } else {
                    Err(e.ty)
                }
            }));
        }
        Ok(Some(Ok(Frame::value(raw.skip(1)))))
    }

    /// The value of `key` in the selected database, of any type.
    pub fn lookup(&mut self, key: &[u8]) -> Result<Option<Entry>, CmdError> {
        self.lookup_in(self.conn.db, key)
    }

    /// The string under `key` and its expiry; WRONGTYPE for other types.
    pub fn get_string(&mut self, key: &[u8]) -> Result<Option<(Bytes, Option<u64>)>, CmdError> {
        match self.lookup(key)? {
            None => Ok(None),
            Some(e) if e.ty == Type::String => Ok(Some((e.payload, e.expire_at))),
            Some(_) => Err(wrongtype()),
        }
    }

    /// Whether `key` exists in database `db`. Reads no value.
    pub fn exists_in(&mut self, db: u8, key: &[u8]) -> Result<bool, CmdError> {
        let ek = keyspace::engine_key(self.stored(db), key);
        let found = match &self.store {
            Store::Read(d) => d.contains_key(&ek),
            Store::Write(tx) => tx.contains_key(&ek),
        }?;
        self.count_lookup(found);
        Ok(found)
    }

    /// The command's engine transaction: an error for a command that runs without one (a
    /// write from a command not flagged to run in a transaction is a bug).
    pub fn tx(&mut self) -> Result<&mut Transaction<'db>, CmdError> {
        match &mut self.store {
            Store::Write(tx) => Ok(*tx),
            Store::Read(_) => Err(Frame::err("internal error: write outside a transaction").into()),
        }
    }

    /// Stores a value (type byte included) under `key` in `db`. An expiry already past deletes
    /// the key instead, as Redis does.
    pub fn put_raw(
        &mut self,
        db: u8,
        key: &[u8],
        raw: Bytes,
        expire_at: Option<u64>,
    ) -> Result<(), CmdError> {
        if key.len() > keyspace::MAX_KEY_LEN {
            return Err(key_too_large(key.len()).into());
        }
        if let Some(at) = expire_at
            && at <= self.now_ms()
        {
            self.remove_in(db, key)?;
            return Ok(());
        }
        let ek = keyspace::engine_key(db, key);
        self.shared.watches.touch(db, key);
        self.invalidate(key);
        self.touched(db, key, false)?;
        if self.shared.blocking.waits_on(&ek) && !self.conn.ready.contains(&ek) {
            // Served at the end of this transaction (dispatch.rs).
            self.conn.ready.push(ek.clone());
        }
        let ek = keyspace::engine_key(self.stored(db), key);
        let tx = self.tx()?;
        match expire_at {
            None => tx.put(&ek, raw)?,
            Some(at) => tx.put_expiring_at(&ek, raw, at)?,
        }
        Ok(())
    }

    /// Stores string `value` under `key` again in Redis's `raw` encoding, as a change of
    /// representation only: no WATCH, tracking or keyspace event hears of it (Redis's
    /// `dbUnshareStringValue`, which SETBIT does even when no bit changes).
    pub fn reencode_raw_string(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at: Option<u64>,
    ) -> Result<(), CmdError> {
        let ek = keyspace::engine_key(self.stored(self.conn.db), key);
        let raw = Entry::encode_raw_string(value);
        let tx = self.tx()?;
        match expire_at {
            None => tx.put(&ek, raw)?,
            Some(at) => tx.put_expiring_at(&ek, raw, at)?,
        }
        Ok(())
    }

    /// Refuses a string of `len` bytes if it is over `proto-max-bulk-len` (checked before a
    /// command builds a long value, and by every string write).
    pub fn check_string_len(&self, len: u64) -> Result<(), CmdError> {
        if len > self.shared.config.proto_max_bulk_len() {
            return Err(string_too_large().into());
        }
        Ok(())
    }

    /// Stores the string `value` under `key` in the selected database.
    pub fn set_string(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at: Option<u64>,
    ) -> Result<(), CmdError> {
        self.check_string_len(value.len() as u64)?;
        self.put_raw(
            self.conn.db,
            key,
            Entry::encode(Type::String, value),
            expire_at,
        )
    }

    /// Stores the string `value` as APPEND and SETRANGE leave it: in Redis's `raw` encoding
    /// (OBJECT ENCODING), whatever its length.
    pub fn set_raw_string(
        &mut self,
        key: &[u8],
        value: &[u8],
        expire_at: Option<u64>,
    ) -> Result<(), CmdError> {
        self.check_string_len(value.len() as u64)?;
        self.put_raw(
            self.conn.db,
            key,
            Entry::encode_raw_string(value),
            expire_at,
        )
    }

    /// Deletes `key` from `db`; returns whether it existed.
    pub fn remove_in(&mut self, db: u8, key: &[u8]) -> Result<bool, CmdError> {
        let ek = keyspace::engine_key(self.stored(db), key);
        let tx = self.tx()?;
        let existed = tx.delete(&ek)?;
        if existed {
            self.shared.watches.touch(db, key);
            self.invalidate(key);
            self.touched(db, key, true)?;
        }
        Ok(existed)
    }

    /// Notes that `key` changed, for the clients tracking it (CLIENT TRACKING): told once
    /// the transaction is committed.
    pub fn invalidate(&mut self, key: &[u8]) {
        if self.shared.tracking.active() {
            self.conn.invalidated.push(Bytes::copy_from_slice(key));
        }
    }

    /// Records that `key` in `db` changed, for keyspace notifications (when they are on); a key
    /// about to be created gets its `new` event now, before the command's own.
    pub fn touched(&mut self, db: u8, key: &[u8], removed: bool) -> Result<(), CmdError> {
        let flags = self.shared.config.notify_flags();
        if flags == 0 {
            return Ok(());
        }
        let key = Bytes::copy_from_slice(key);
        if !removed && notify::wanted(flags, notify::NEW) && !self.exists_in(db, &key)? {
            self.conn.events.push(notify::Event {
                class: notify::NEW,
                name: "new",
                db,
                key: key.clone(),
            });
        }
        self.conn.touched.push(notify::Touched { db, key, removed });
        Ok(())
    }

    /// Deletes `key` from `db` like [`Ctx::remove_in`], noting the members a collection leaves
    /// behind for the sweeper.
    pub fn remove_counting_in(&mut self, db: u8, key: &[u8]) -> Result<bool, CmdError> {
        // A value this version cannot decode is still deleted (only not counted).
        let _ = self.overwriting_in(db, key);
        self.remove_in(db, key)
    }

    /// Before `key` in `db` is replaced or deleted: counts the records its value leaves to
    /// the sweeper (a collection's members, a string's chunks).
    pub fn overwriting_in(&mut self, db: u8, key: &[u8]) -> Result<(), CmdError> {
        if let Some(e) = self.lookup_stored_in(db, key)? {
            if let Some(m) = keyspace::Meta::decode(&e) {
                self.shared.collections.orphaned(m.len);
            } else if let Some(c) = Chunked::of(&e) {
                self.shared.collections.orphaned(c.chunks());
            }
        }
        Ok(())
    }

    /// [`Ctx::overwriting_in`] in the selected database.
    pub fn overwriting(&mut self, key: &[u8]) -> Result<(), CmdError> {
        self.overwriting_in(self.conn.db, key)
    }

    /// [`Ctx::remove_counting_in`] in the selected database.
    pub fn remove_counting(&mut self, key: &[u8]) -> Result<bool, CmdError> {
        self.remove_counting_in(self.conn.db, key)
    }

    /// Deletes `key` from the selected database; returns whether it existed.
    pub fn remove(&mut self, key: &[u8]) -> Result<bool, CmdError> {
        self.remove_in(self.conn.db, key)
    }

    /// Up to `limit` keys of database `db` after `after` (from the first if `None`), in order.
    pub fn keys_after(
        &mut self,
        db: u8,
        after: Option<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Bytes>, CmdError> {
        match after {
            Some(k) => self.keys_from(db, std::ops::Bound::Excluded(k), limit),
            None => self.keys_from(db, std::ops::Bound::Unbounded, limit),
        }
    }

    /// Calls `f` with the keys of `db` from `start` on, in order, `step` at a time, until it
    /// returns `false` or the keys run out. Memory is bounded by `step`, not by the database.
    pub fn walk_keys(
        &mut self,
        db: u8,
        start: std::ops::Bound<&[u8]>,
        step: usize,
        mut f: impl FnMut(&mut Self, Vec<Bytes>) -> Result<bool, CmdError>,
    ) -> Result<(), CmdError> {
        let mut batch = self.keys_from(db, start, step)?;
        while let Some(last) = batch.last().cloned() {
            if !f(self, batch)? {
                break;
            }
            batch = self.keys_from(db, std::ops::Bound::Excluded(&last), step)?;
        }
        Ok(())
    }

    /// Up to `limit` keys of database `db` from `start` on, in order.
    pub fn keys_from(
        &mut self,
        db: u8,
        start: std::ops::Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<Bytes>, CmdError> {
        use std::ops::Bound;
        let db = self.stored(db);
        let (first, end) = keyspace::db_range(db);
        let lo: Bound<Vec<u8>> = match start {
            Bound::Included(k) => Bound::Included(keyspace::engine_key(db, k).to_vec()),
            Bound::Excluded(k) => Bound::Excluded(keyspace::engine_key(db, k).to_vec()),
            Bound::Unbounded => Bound::Included(first.to_vec()),
        };
        let hi = Bound::Excluded(end.to_vec());
        let keys: caskdb::Result<Vec<Bytes>> = match &self.store {
            Store::Read(d) => d.range_keys((lo, hi)).take(limit).collect(),
            Store::Write(tx) => tx.range_keys((lo, hi)).take(limit).collect(),
        };
        let keys = keys?;
        Ok(keys.into_iter().map(|k| k.slice(2..)).collect())
    }
}

/// Bytes `from..to` of chunked string `c`, as a command's result.
/// Runs `f` in a view of `db` without the writer lock (`Db::read_unlocked`), up to twice: the
/// result of the first run no write disturbed and `f` kept (`Some`), if any. A caller that gets
/// `None` reads in a transaction instead, so that writes landing all the time cannot starve it.
pub(super) fn read_unlocked_tries<T>(
    db: &Db,
    mut f: impl FnMut(&mut Transaction<'_>) -> Option<T>,
) -> Option<T> {
    (0..2).find_map(|_| db.read_unlocked(&mut f).flatten())
}

pub(crate) fn chunk_read(
    tx: &Transaction<'_>,
    c: &Chunked,
    from: u64,
    to: u64,
) -> Result<Vec<u8>, CmdError> {
    string_chunks::read(tx, c, from, to).map_err(|e| match e {
        string_chunks::ReadError::Engine(e) => e.into(),
        string_chunks::ReadError::Corrupt(what) => {
            Frame::err(format!("corrupt string: {what}")).into()
        }
    })
}
