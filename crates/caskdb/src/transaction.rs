//! Read-modify-write transactions: reads and writes under the writer lock, committed as one
//! atomic record.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};
use std::time::Duration;

use bytes::Bytes;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::iter::prefix_bounds;
use crate::log::record::MAX_RECORD_HEADER_LEN;
use crate::log::writer::RawOp;
use crate::overlay::Overlay;
use crate::shared::Core;
use crate::tx_iter::{Pending, PendingRange, TxIter, TxKeys, TxRefIter, is_empty_range};
use crate::value_ref::ValueRef;

/// A write that is in the log but may not be on stable storage yet, returned by
/// [`Db::transaction_deferred`]. Pass it to [`Db::sync_through`] to wait for it; tokens compare
/// by log position, so waiting for the greatest of several covers them all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct SyncToken(pub(crate) u64);

/// The view and the pending writes of a transaction started by [`Db::transaction`].
///
/// Reads see the database as of the transaction plus the transaction's own writes: no other
/// write can land in between, because the writer lock is held from the first read to the
/// commit. Writes are buffered; the commit appends them as one record (several as one batch
/// envelope), so after a crash they are all there or none are. Readers outside the transaction
/// see none of its writes, then all of them.
///
/// It has the verbs of [`Db`], with the same arguments and results: `get`, `get_with_expiry`,
/// `get_with_ttl`, `ttl`, `contains_key`, `put`, `put_with_ttl`, `put_expiring_at`, `delete`,
/// `expire`, `persist`, `iter`, `range`, `prefix`, `keys`, `range_keys`; plus savepoints.
///
/// Keep the work inside short: every other writer waits for it. Reads from other threads never
/// wait.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = caskdb::Db::open(dir.path())?;
/// db.put("queue:1", "a")?;
/// db.put("queue:3", "c")?;
/// // Move the first queued item to "taken", seeing the transaction's own writes.
/// let taken = db.transaction(|tx| {
///     tx.put("queue:2", "b")?;
///     let first = tx.prefix("queue:").next().transpose()?;
///     if let Some((key, value)) = &first {
///         tx.delete(key)?;
///         tx.put("taken", value)?;
///     }
///     let left: Vec<_> = tx.prefix("queue:").map(|r| r.map(|(k, _)| k)).collect::<Result<_, _>>()?;
///     assert_eq!(left, ["queue:2", "queue:3"]);
///     Ok::<_, caskdb::Error>(first.map(|(_, v)| v))
/// })?;
/// assert_eq!(taken.as_deref(), Some(&b"a"[..]));
/// # Ok(()) }
/// ```
pub struct Transaction<'db> {
    db: &'db Db,
    core: &'db Core,
    /// The latest pending write per key.
    writes: BTreeMap<Vec<u8>, Pending>,
    /// Bytes the writes will take on disk, headers included.
    encoded: usize,
    /// While a savepoint is held: each staged key's previous pending state, oldest first.
    undo: Option<Vec<(Vec<u8>, Option<Pending>)>>,
    /// A view without the writer lock ([`Db::read_unlocked`]): it refuses writes, and
    /// remembers that it did.
    view: Option<bool>,
}

/// One write a transaction staged ([`Transaction::staged`]): the key, and `Some((value,
/// expiry))` for a put (expiry in milliseconds since the Unix epoch, `None` for never) or
/// `None` for a deletion.
pub type StagedWrite = (Bytes, Option<(Bytes, Option<u64>)>);

/// A point in a transaction's writes to return to with [`Transaction::rollback_to`], from
/// [`Transaction::savepoint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Savepoint {
    undo_len: usize,
    encoded: usize,
}

impl std::fmt::Debug for Transaction<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction")
            .field("pending_writes", &self.writes.len())
            .finish()
    }
}

impl Transaction<'_> {
    /// Milliseconds since the Unix epoch by the database's [`Clock`](crate::Clock): the time
    /// against which expiries are judged.
    pub fn now_ms(&self) -> u64 {
        self.core.now()
    }

    /// The value of `key`, including this transaction's own writes.
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`]; [`Error::Corrupted`] if the record fails its check.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        Ok(self.get_with_expiry(key)?.map(|(v, _)| v))
    }

    /// The value of `key` and its expiry in milliseconds since the Unix epoch (`None` = never).
    ///
    /// # Errors
    /// As [`Transaction::get`].
    pub fn get_with_expiry(&self, key: impl AsRef<[u8]>) -> Result<Option<(Bytes, Option<u64>)>> {
        let key = key.as_ref();
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        if let Some(pending) = self.writes.get(key) {
            return Ok(pending
                .as_ref()
                .filter(|(_, at)| *at == 0 || *at > self.core.now())
                .map(|(v, at)| (v.clone(), (*at != 0).then_some(*at))));
        }
        Ok(self.db.read_live(key)?.map(|(loc, v)| (v, loc.expiry())))
    }

    /// [`Db::get_ref`] as this transaction sees the store: a value it wrote is returned from
    /// memory.
    ///
    /// # Errors
    /// As [`Transaction::get`].
    pub fn get_ref(&self, key: impl AsRef<[u8]>, inline: usize) -> Result<Option<ValueRef>> {
        let key = key.as_ref();
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        if let Some(pending) = self.writes.get(key) {
            let now = self.core.now();
            return Ok(pending
                .as_ref()
                .filter(|(_, at)| *at == 0 || *at > now)
                .map(|(v, _)| ValueRef::from(v.clone())));
        }
        self.db.get_ref(key, inline)
    }

    /// Whether `key` has a live value, including this transaction's own writes. Reads no value.
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`].
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.state(key.as_ref())?.0)
    }

    /// Whether `key` has a live value, and whether it has any entry at all (pending, or in the
    /// index even if expired): such a key needs a tombstone to be deleted.
    fn state(&self, key: &[u8]) -> Result<(bool, bool)> {
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        Ok(match self.writes.get(key) {
            Some(pending) => (
                pending
                    .as_ref()
                    .is_some_and(|(_, at)| *at == 0 || *at > self.core.now()),
                true,
            ),
            None => match self.core.keydir.get(key) {
                Some(loc) => (!self.core.expired(&loc), true),
                None => (false, false),
            },
        })
    }

    /// The value of `key` and the time it has left (`None` = no expiry), including this
    /// transaction's own writes.
    ///
    /// # Errors
    /// As [`Transaction::get`].
    pub fn get_with_ttl(&self, key: impl AsRef<[u8]>) -> Result<Option<(Bytes, Option<Duration>)>> {
        let now = self.core.now();
        Ok(self.get_with_expiry(key)?.map(|(v, at)| {
            (
                v,
                at.map(|at| Duration::from_millis(at.saturating_sub(now))),
            )
        }))
    }

    /// Time left before `key` expires: `None` if it never expires or does not exist.
    ///
    /// # Errors
    /// As [`Transaction::get`].
    pub fn ttl(&self, key: impl AsRef<[u8]>) -> Result<Option<Duration>> {
        Ok(self.get_with_ttl(key)?.and_then(|(_, ttl)| ttl))
    }

    /// Stores `value` under `key`, without expiry.
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`], [`Error::KeyTooLarge`], [`Error::ValueTooLarge`], or
    /// [`Error::BatchTooLarge`] once the transaction's writes pass
    /// [`Options::max_batch_size`](crate::Options::max_batch_size). Nothing is buffered then.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.stage(
            key.as_ref(),
            Some((Bytes::copy_from_slice(value.as_ref()), 0)),
        )
    }

    /// Stores `value` under `key` for `ttl`, counted from now (a zero `ttl` stores an already
    /// expired value).
    ///
    /// # Errors
    /// As [`Transaction::put`].
    pub fn put_with_ttl(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<()> {
        let at = self.core.expiry_after(ttl);
        self.put_expiring_at(key, value, at)
    }

    /// Stores `value` under `key`, expiring at `expire_at_ms` (milliseconds since the Unix epoch,
    /// by the database clock; a time already past stores an expired value, which reads as
    /// absent).
    ///
    /// # Errors
    /// As [`Transaction::put`].
    pub fn put_expiring_at(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        expire_at_ms: u64,
    ) -> Result<()> {
        let value = Bytes::copy_from_slice(value.as_ref());
        self.stage(key.as_ref(), Some((value, expire_at_ms.max(1))))
    }

    /// Deletes `key`. Returns whether it had a live value (before this write).
    ///
    /// # Errors
    /// As [`Transaction::put`].
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        let (existed, has_entry) = self.state(key)?;
        if has_entry {
            self.stage(key, None)?;
        }
        Ok(existed)
    }

    /// Deletes `key`, which the caller knows is live: it read it in this transaction, or it
    /// belongs with a key it read (an index entry beside its record). Unlike
    /// [`Transaction::delete`] it does not look the key up, a search of the index that can
    /// cost as much as the rest of a small command in a large collection; if the key was
    /// absent after all, the cost is one needless tombstone record.
    ///
    /// # Errors
    /// As [`Transaction::put`].
    ///
    /// # Example
    /// ```
    /// # fn main() -> caskdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = caskdb::Db::open(dir.path())?;
    /// db.put("member", "1")?;
    /// db.transaction(|tx| {
    ///     if tx.get("member")?.is_some() {
    ///         tx.delete_live("member")?;
    ///     }
    ///     Ok::<_, caskdb::Error>(())
    /// })?;
    /// assert_eq!(db.get("member")?, None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn delete_live(&mut self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        self.stage(key, None)
    }

    /// Sets `key` to expire after `ttl` (replacing any expiry it had). Returns whether the key
    /// exists.
    ///
    /// # Errors
    /// As [`Transaction::put`]; [`Error::Corrupted`] if the current value fails its check.
    pub fn expire(&mut self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
        let key = key.as_ref();
        let Some((value, _)) = self.get_with_expiry(key)? else {
            return Ok(false);
        };
        let at = self.core.expiry_after(ttl);
        self.stage(key, Some((value, at)))?;
        Ok(true)
    }

    /// Removes the expiry of `key`. Returns `true` if the key exists and had one.
    ///
    /// # Errors
    /// As [`Transaction::expire`].
    pub fn persist(&mut self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        match self.get_with_expiry(key)? {
            Some((value, Some(_))) => {
                self.stage(key, Some((value, 0)))?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Every live `(key, value)` in key order, including this transaction's own writes;
    /// `.rev()` for descending order.
    pub fn iter(&self) -> TxIter<'_> {
        self.range::<&[u8], _>(..)
    }

    /// The live `(key, value)` pairs whose keys lie in `range`, including this transaction's own
    /// writes, in key order (`.rev()` for descending).
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> TxIter<'_> {
        let pending = self.pending_in(&range);
        TxIter::new(self.db.range(range), pending, self.core.now())
    }

    /// [`Transaction::range`] with values located, not read (see [`Db::get_ref`]): records of
    /// at most `inline` bytes are read, larger ones are checked and left in their files.
    pub fn range_refs<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        inline: usize,
    ) -> TxRefIter<'_> {
        let pending = self.pending_in(&range);
        TxRefIter::new(self.db.range_refs(range, inline), pending, self.core.now())
    }

    /// The live `(key, value)` pairs whose keys start with `prefix`, including this
    /// transaction's own writes, in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> TxIter<'_> {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        let (lo_s, hi_s) = (as_slice(&lo), as_slice(&hi));
        TxIter::new(
            self.db.range::<&[u8], _>((lo_s, hi_s)),
            self.pending(lo_s, hi_s),
            self.core.now(),
        )
    }

    /// Every live key in key order, including this transaction's own writes, without reading
    /// values.
    pub fn keys(&self) -> TxKeys<'_> {
        self.range_keys::<&[u8], _>(..)
    }

    /// The live keys within `range`, including this transaction's own writes, in key order,
    /// without reading values.
    pub fn range_keys<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> TxKeys<'_> {
        let pending = self.pending_in(&range);
        TxKeys::new(self.db.range_keys(range), pending, self.core.now())
    }

    /// The pending writes within `range`.
    fn pending_in<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: &R) -> PendingRange<'_> {
        let lo = range.start_bound().map(|k| k.as_ref());
        let hi = range.end_bound().map(|k| k.as_ref());
        self.pending(lo, hi)
    }

    /// The pending writes between two bounds.
    fn pending(&self, lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> PendingRange<'_> {
        (!is_empty_range(lo, hi)).then(|| self.writes.range::<[u8], _>((lo, hi)))
    }

    /// A transaction with nothing staged (`view`: a read-only view, see [`Db::read_unlocked`]).
    fn empty<'db>(db: &'db Db, view: Option<bool>) -> Transaction<'db> {
        Transaction {
            db,
            core: &db.inner.core,
            writes: BTreeMap::new(),
            encoded: 0,
            undo: None,
            view,
        }
    }

    fn stage(&mut self, key: &[u8], write: Option<(Bytes, u64)>) -> Result<()> {
        if let Some(refused) = &mut self.view {
            *refused = true;
            return Err(Error::ReadOnlyView);
        }
        self.core.opts.check_key(key)?;
        let vlen = write.as_ref().map_or(0, |(v, _)| v.len());
        if let Some((v, _)) = &write {
            self.core.opts.check_value(v)?;
        }
        let encoded = self.encoded + MAX_RECORD_HEADER_LEN + key.len() + vlen;
        let max = self.core.opts.max_batch_size;
        if encoded > max {
            return Err(Error::BatchTooLarge { size: encoded, max });
        }
        self.encoded = encoded;
        let previous = self.writes.insert(key.to_vec(), write);
        if let Some(undo) = &mut self.undo {
            undo.push((key.to_vec(), previous));
        }
        Ok(())
    }

    /// The writes staged so far, in key order, one per key (the latest): each key with
    /// `Some((value, expiry))` for a put (expiry in milliseconds since the Unix epoch, `None` for
    /// never) or `None` for a deletion. What a commit would write; replication sends it to
    /// other nodes.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = caskdb::Db::open(dir.path())?;
    /// db.put("b", "old")?;
    /// let staged = db.transaction(|tx| {
    ///     tx.put("c", "1")?;
    ///     tx.put_expiring_at("a", "2", 4_000_000_000_000)?;
    ///     tx.delete("b")?;
    ///     tx.put("c", "3")?;
    ///     Ok::<_, caskdb::Error>(tx.staged())
    /// })?;
    /// let shown: Vec<_> = staged
    ///     .iter()
    ///     .map(|(k, w)| (&k[..], w.as_ref().map(|(v, at)| (&v[..], *at))))
    ///     .collect();
    /// assert_eq!(
    ///     shown,
    ///     [
    ///         (&b"a"[..], Some((&b"2"[..], Some(4_000_000_000_000)))),
    ///         (&b"b"[..], None),
    ///         (&b"c"[..], Some((&b"3"[..], None))),
    ///     ]
    /// );
    /// # Ok(()) }
    /// ```
    pub fn staged(&self) -> Vec<StagedWrite> {
        self.writes
            .iter()
            .map(|(k, w)| {
                let write = w
                    .as_ref()
                    .map(|(v, at)| (v.clone(), (*at != 0).then_some(*at)));
                (Bytes::copy_from_slice(k), write)
            })
            .collect()
    }

    /// Marks the current state of the pending writes, so that [`Transaction::rollback_to`] can
    /// undo the writes made after it (e.g. those of one failed step among several). Writes
    /// staged from here on also keep what they replaced, until the transaction ends.
    pub fn savepoint(&mut self) -> Savepoint {
        let undo = self.undo.get_or_insert_with(Vec::new);
        Savepoint {
            undo_len: undo.len(),
            encoded: self.encoded,
        }
    }

    /// Undoes every write staged since `sp` was taken (reads see the state at `sp` again).
    /// Savepoints taken after `sp` become meaningless.
    pub fn rollback_to(&mut self, sp: Savepoint) {
        let Some(undo) = &mut self.undo else {
            return;
        };
        while undo.len() > sp.undo_len {
            let Some((key, previous)) = undo.pop() else {
                break;
            };
            match previous {
                Some(w) => {
                    self.writes.insert(key, w);
                }
                None => {
                    self.writes.remove(&key);
                }
            }
        }
        self.encoded = sp.encoded;
    }
}

fn as_slice<B: AsRef<[u8]>>(b: &Bound<B>) -> Bound<&[u8]> {
    b.as_ref().map(|k| k.as_ref())
}

impl Db {
    /// Runs `f` as a transaction: its reads and writes happen with no other write in between,
    /// and its writes land atomically (one record; after a crash all or none are there) when it
    /// returns `Ok`. If `f` returns an error, nothing is written and the error is returned.
    /// Under [`SyncPolicy::Always`](crate::SyncPolicy) the writes are on disk when this returns.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = caskdb::Db::open(dir.path())?;
    /// // An atomic increment.
    /// for _ in 0..2 {
    ///     db.transaction(|tx| {
    ///         let n = tx.get("hits")?.map_or(0, |v| v[0]) + 1;
    ///         tx.put("hits", [n])
    ///     })?;
    /// }
    /// assert_eq!(db.get("hits")?.as_deref(), Some(&[2u8][..]));
    ///
    /// // An error anywhere writes nothing.
    /// let failed: Result<(), caskdb::Error> = db.transaction(|tx| {
    ///     tx.put("hits", [99])?;
    ///     Err(caskdb::Error::KeyIsEmpty)
    /// });
    /// assert!(failed.is_err());
    /// assert_eq!(db.get("hits")?.as_deref(), Some(&[2u8][..]));
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Whatever `f` returns; otherwise as [`Db::put`]. `E` must convert from [`Error`].
    pub fn transaction<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<T, E> {
        let (out, token) = self.transaction_deferred(f)?;
        let core = &self.inner.core;
        if core.opts.sync == crate::SyncPolicy::Always {
            core.log.sync_upto(token.0)?;
        }
        Ok(out)
    }

    /// Runs `f` on a view of the store without taking the writer lock, and returns what it
    /// returned if no write changed the store while it ran: then every read it made saw one
    /// state of the store, as in a transaction. `None` if a write landed meanwhile (run it
    /// again, or in [`Db::transaction`]), or if `f` tried to write: the view refuses writes
    /// ([`Error::ReadOnlyView`]). For readers of several keys that must agree, so that they
    /// neither wait for writers nor make them wait.
    ///
    /// ```
    /// # fn main() -> caskdb::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// let db = caskdb::Db::open(dir.path())?;
    /// db.transaction(|tx| {
    ///     tx.put("from", [10u8])?;
    ///     tx.put("to", [0u8])
    /// })?;
    /// let total = db.read_unlocked(|tx| -> caskdb::Result<u8> {
    ///     Ok(tx.get("from")?.map_or(0, |v| v[0]) + tx.get("to")?.map_or(0, |v| v[0]))
    /// });
    /// // Nothing wrote meanwhile here; were it `None`, the caller would run it again.
    /// assert_eq!(total.transpose()?, Some(10));
    /// assert!(db.read_unlocked(|tx| tx.put("x", "y")).is_none());
    /// # Ok(()) }
    /// ```
    pub fn read_unlocked<T>(&self, f: impl FnOnce(&mut Transaction<'_>) -> T) -> Option<T> {
        use std::sync::atomic::{Ordering, fence};
        let core = &self.inner.core;
        let before = core.write_seq.load(Ordering::Acquire);
        if before & 1 == 1 || core.check_open().is_err() {
            return None;
        }
        let mut tx = Transaction::empty(self, Some(false));
        let out = f(&mut tx);
        fence(Ordering::Acquire);
        let unchanged = core.write_seq.load(Ordering::Relaxed) == before;
        (unchanged && tx.view == Some(false)).then_some(out)
    }

    /// Like [`Db::transaction`], but returns without waiting for the disk whatever the sync
    /// policy: the writes are visible to readers, and [`Db::sync_through`] with the returned
    /// token waits until they are durable. A server uses it to answer a pipeline of requests
    /// after one wait instead of one per request.
    ///
    /// # Errors
    /// As [`Db::transaction`].
    pub fn transaction_deferred<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<(T, SyncToken), E> {
        let core = &self.inner.core;
        let mut w = core.log.lock();
        // Writability is checked when there is something to append: reads still work on a
        // store that refuses writes.
        core.check_open()?;
        let mut tx = Transaction::empty(self, None);
        let out = f(&mut tx)?;
        if tx.writes.is_empty() {
            return Ok((out, SyncToken(w.lsn)));
        }
        let ops: Vec<RawOp<'_>> = tx
            .writes
            .iter()
            .map(|(k, w)| match w {
                Some((v, at)) => RawOp::put(k, v, *at),
                None => RawOp::delete(k),
            })
            .collect();
        self.write_locked(&mut w, &ops)?;
        let lsn = w.lsn;
        let want_merge = core.wants_merge(&w);
        drop(w);
        if want_merge {
            core.request_merge();
        }
        Ok((out, SyncToken(lsn)))
    }

    /// Runs `f` as a transaction that writes nothing: it reads and stages writes as
    /// [`Db::transaction`]'s `f` does, under the writer lock, and then its writes are dropped
    /// and returned, as [`Transaction::staged`] shows them. A replicated server uses it to learn
    /// what a command would write, propose that, and apply it once agreed.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = caskdb::Db::open(dir.path())?;
    /// let (n, staged) = db.stage(|tx| {
    ///     tx.put("a", "1")?;
    ///     Ok::<_, caskdb::Error>(1)
    /// })?;
    /// assert_eq!((n, staged.len()), (1, 1));
    /// assert_eq!(db.get("a")?, None); // nothing was written
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Whatever `f` returns; [`Error::Poisoned`] and the like if the database refuses writes.
    pub fn stage<T, E: From<Error>>(
        &self,
        f: impl FnOnce(&mut Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<(T, Vec<StagedWrite>), E> {
        self.stage_over(&mut Overlay::new(), 0, f)
    }

    /// As [`Db::stage`], reading through `overlay` (the writes of earlier stages, not yet in
    /// the database); the writes `f` stages are returned and also added to `overlay` as stage
    /// `seq`'s, so the next stage sees them. If `f` fails, `overlay` is left as it was.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let dir = tempfile::tempdir()?;
    /// let db = caskdb::Db::open(dir.path())?;
    /// let mut overlay = caskdb::Overlay::new();
    /// db.stage_over(&mut overlay, 1, |tx| tx.put("n", "1"))?;
    /// // The second stage sees the first one's write, though the database does not have it.
    /// let (_, staged) = db.stage_over(&mut overlay, 2, |tx| {
    ///     let n: u32 = std::str::from_utf8(&tx.get("n")?.unwrap_or_default())?.parse()?;
    ///     tx.put("n", (n + 1).to_string())?;
    ///     Ok::<_, Box<dyn std::error::Error>>(())
    /// })?;
    /// assert_eq!(staged[0].1.as_ref().map(|(v, _)| &v[..]), Some(&b"2"[..]));
    /// assert_eq!(db.get("n")?, None);
    /// // Stage 1 was made: its write is forgotten only where no later stage replaced it.
    /// overlay.settle(1, &[bytes::Bytes::from_static(b"n")]);
    /// assert_eq!(overlay.len(), 1);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Whatever `f` returns; [`Error::Poisoned`] and the like if the database refuses writes.
    pub fn stage_over<T, E: From<Error>>(
        &self,
        overlay: &mut Overlay,
        seq: u64,
        f: impl FnOnce(&mut Transaction<'_>) -> std::result::Result<T, E>,
    ) -> std::result::Result<(T, Vec<StagedWrite>), E> {
        let core = &self.inner.core;
        let _w = core.log.lock();
        core.check_open()?;
        let mut tx = Transaction {
            db: self,
            core,
            writes: std::mem::take(&mut overlay.writes),
            encoded: 0,
            // Every write keeps what it replaced: the keys this stage wrote, and what to put
            // back should it fail.
            undo: Some(Vec::new()),
            view: None,
        };
        let result = f(&mut tx);
        let undo = tx.undo.take().unwrap_or_default();
        let mut writes = std::mem::take(&mut tx.writes);
        let out = match result {
            Ok(out) => out,
            Err(e) => {
                for (key, previous) in undo.into_iter().rev() {
                    match previous {
                        Some(w) => writes.insert(key, w),
                        None => writes.remove(&key),
                    };
                }
                overlay.writes = writes;
                return Err(e);
            }
        };
        let keys: std::collections::BTreeSet<Vec<u8>> =
            undo.into_iter().map(|(key, _)| key).collect();
        let mut staged = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(write) = writes.get(&key) {
                let write = write
                    .as_ref()
                    .map(|(v, at)| (v.clone(), (*at != 0).then_some(*at)));
                staged.push((Bytes::copy_from_slice(&key), write));
            }
            overlay.own(key, seq);
        }
        overlay.writes = writes;
        Ok((out, staged))
    }

    /// Returns once every write up to `token` is on stable storage, syncing if needed (one
    /// fsync covers all writers waiting at the time: group commit). Works under every
    /// [`SyncPolicy`](crate::SyncPolicy).
    ///
    /// # Errors
    /// [`Error::Io`] if the fsync fails (the database then refuses writes:
    /// [`Error::Poisoned`]).
    pub fn sync_through(&self, token: SyncToken) -> Result<()> {
        self.inner.core.log.sync_upto(token.0)
    }
}
