//! Read-modify-write transactions: reads and writes under the writer lock, committed as one
//! atomic record.

use std::collections::BTreeMap;
use std::ops::{Bound, RangeBounds};

use bytes::Bytes;

use crate::core::Core;
use crate::db::Db;
use crate::error::{Error, Result};
use crate::iter::Keys;
use crate::log::record::MAX_RECORD_HEADER_LEN;
use crate::log::writer::RawOp;

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
/// Keep the work inside short: every other writer waits for it. Reads from other threads never
/// wait.
pub struct Transaction<'db> {
    db: &'db Db,
    core: &'db Core,
    /// The latest pending write per key.
    writes: BTreeMap<Vec<u8>, Pending>,
    /// Bytes the writes will take on disk, headers included.
    encoded: usize,
    /// While a savepoint is held: each staged key's previous pending state, oldest first.
    undo: Option<Vec<(Vec<u8>, Option<Pending>)>>,
}

/// A pending write: `Some((value, expire_at))` (0 = never) or `None` for a deletion.
type Pending = Option<(Bytes, u64)>;

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
        let now = self.core.now();
        if let Some(pending) = self.writes.get(key) {
            return Ok(pending
                .as_ref()
                .filter(|(_, at)| *at == 0 || *at > now)
                .map(|(v, at)| (v.clone(), (*at != 0).then_some(*at))));
        }
        Ok(self.db.read_live(key)?.map(|(loc, v)| (v, loc.expiry())))
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
        let now = self.core.now();
        Ok(match self.writes.get(key) {
            Some(pending) => (
                pending
                    .as_ref()
                    .is_some_and(|(_, at)| *at == 0 || *at > now),
                true,
            ),
            None => match self.core.keydir.get(key) {
                Some(loc) => (!loc.expired(now), true),
                None => (false, false),
            },
        })
    }

    /// Stores `value` under `key`, without expiry.
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`], [`Error::KeyTooLarge`], [`Error::ValueTooLarge`], or
    /// [`Error::BatchTooLarge`] once the transaction's writes pass
    /// [`Options::max_batch_size`](crate::Options::max_batch_size). Nothing is buffered then.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl Into<Bytes>) -> Result<()> {
        self.stage(key.as_ref(), Some((value.into(), 0)))
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
        value: impl Into<Bytes>,
        expire_at_ms: u64,
    ) -> Result<()> {
        self.stage(key.as_ref(), Some((value.into(), expire_at_ms.max(1))))
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

    /// Up to `limit` live keys within `range`, in ascending order, including this transaction's
    /// own writes.
    ///
    /// # Errors
    /// [`Error::Corrupted`] or [`Error::Closed`] from the underlying iteration.
    pub fn keys_in<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        limit: usize,
    ) -> Result<Vec<Bytes>> {
        let Some((lo, hi)) = owned_bounds(&range) else {
            return Ok(Vec::new());
        };
        let stored = self
            .db
            .range_keys((lo.clone(), hi.clone()))
            .map(|r| r.map(|k| (k, ())));
        self.merged(stored, &lo, &hi, false, limit, |_, _| ())
            .map(|v| v.into_iter().map(|(k, ())| k).collect())
    }

    /// Up to `limit` live `(key, value)` pairs within `range`, including this transaction's own
    /// writes: in ascending key order, or descending if `reverse`.
    ///
    /// # Errors
    /// [`Error::Corrupted`] if a record fails its check; [`Error::Closed`].
    pub fn range_in<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>> {
        let Some((lo, hi)) = owned_bounds(&range) else {
            return Ok(Vec::new());
        };
        let stored = self.db.range((lo.clone(), hi.clone()));
        let value = |_: &[u8], v: &Bytes| v.clone();
        if reverse {
            self.merged(stored.rev(), &lo, &hi, true, limit, value)
        } else {
            self.merged(stored, &lo, &hi, false, limit, value)
        }
    }

    /// Merges the stored entries (in the given direction) with the pending writes in the same
    /// range; a pending write decides for its key. `pick` takes what the caller wants of a
    /// pending value.
    fn merged<T>(
        &self,
        stored: impl Iterator<Item = Result<(Bytes, T)>>,
        lo: &Bound<Vec<u8>>,
        hi: &Bound<Vec<u8>>,
        reverse: bool,
        limit: usize,
        pick: impl Fn(&[u8], &Bytes) -> T,
    ) -> Result<Vec<(Bytes, T)>> {
        let now = self.core.now();
        let pending = self.writes.range::<Vec<u8>, _>((lo.as_ref(), hi.as_ref()));
        let pending: Box<dyn Iterator<Item = _>> = if reverse {
            Box::new(pending.rev())
        } else {
            Box::new(pending)
        };
        let mut pending = pending.peekable();
        let mut stored = stored.peekable();
        // Whether `a` comes before `b` in the walk's direction.
        let before = |a: &[u8], b: &[u8]| if reverse { a > b } else { a < b };
        let mut out = Vec::new();
        while out.len() < limit {
            let take_pending = match (stored.peek(), pending.peek()) {
                (None, None) => break,
                (Some(Err(_)), _) => {
                    return Err(stored
                        .next()
                        .and_then(|r| r.err())
                        .expect("peeked an error"));
                }
                (Some(Ok(_)), None) => false,
                (None, Some(_)) => true,
                (Some(Ok((s, _))), Some((p, _))) => {
                    if s.as_ref() == p.as_slice() {
                        stored.next();
                        true
                    } else {
                        before(p, s)
                    }
                }
            };
            if take_pending {
                let (k, w) = pending.next().expect("peeked");
                if let Some((v, at)) = w
                    && (*at == 0 || *at > now)
                {
                    out.push((Bytes::copy_from_slice(k), pick(k, v)));
                }
            } else if let Some(Ok(entry)) = stored.next() {
                out.push(entry);
            }
        }
        Ok(out)
    }

    fn stage(&mut self, key: &[u8], write: Option<(Bytes, u64)>) -> Result<()> {
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

/// Owned copies of `range`'s bounds; `None` if the range is empty (`BTreeMap::range` would
/// panic on it).
#[allow(clippy::type_complexity)]
fn owned_bounds<K: AsRef<[u8]>, R: RangeBounds<K>>(
    range: &R,
) -> Option<(Bound<Vec<u8>>, Bound<Vec<u8>>)> {
    let lo = range.start_bound().map(|k| k.as_ref().to_vec());
    let hi = range.end_bound().map(|k| k.as_ref().to_vec());
    if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) =
        (&lo, &hi)
        && (a > b || (a == b && !matches!((&lo, &hi), (Bound::Included(_), Bound::Included(_)))))
    {
        return None;
    }
    Some((lo, hi))
}

impl Db {
    /// Runs `f` as a transaction: its reads and writes happen with no other write in between,
    /// and its writes land atomically (one record; after a crash all or none are there) when it
    /// returns `Ok`. If `f` returns an error, nothing is written and the error is returned.
    /// Under [`SyncPolicy::Always`](crate::SyncPolicy) the writes are on disk when this returns.
    ///
    /// ```no_run
    /// # fn main() -> caskdb::Result<()> {
    /// let db = caskdb::Db::open("/tmp/tx-example")?;
    /// // An atomic increment.
    /// let n = db.transaction(|tx| {
    ///     let n = tx.get("hits")?.map_or(0, |v| v[0]) + 1;
    ///     tx.put("hits", vec![n])?;
    ///     Ok::<_, caskdb::Error>(n)
    /// })?;
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
        let mut tx = Transaction {
            db: self,
            core,
            writes: BTreeMap::new(),
            encoded: 0,
            undo: None,
        };
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

    /// The live keys within `range`, in key order, without reading values (see [`Keys`] for
    /// what it sees of concurrent writes).
    pub fn range_keys<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Keys {
        let lo: Bound<&[u8]> = range.start_bound().map(|k| k.as_ref());
        let hi: Bound<&[u8]> = range.end_bound().map(|k| k.as_ref());
        crate::iter::keys_between(self, lo, hi)
    }
}
