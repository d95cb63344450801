//! The database handle: opening, the public verbs, and the write and read paths they share.
//!
//! A put is checked here, appended by the log's writer (`log/writer.rs`, which writes through
//! the [`Vfs`]), and indexed here under the same writer lock; a get looks the key up in the
//! index and reads the record back through `log/file.rs`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;

use crate::background::Background;
use crate::error::{Error, Result, io_context};
use crate::keydir::Loc;
use crate::log::file::{DataFile, lock_dir, not_open};
use crate::log::writer::{RawOp, Writer};
use crate::merge::{self, MergeProgress, MergeStats};
use crate::options::{Options, SyncPolicy};
use crate::shared::Core;
use crate::stats::{FileStats, Stats};
use crate::value_ref::ValueRef;
use crate::vfs::{StdVfs, Vfs};

/// A handle to an open database.
///
/// `Db` is cheap to clone (an `Arc`) and `Send + Sync`: share it between threads by cloning.
/// Reads never wait for the writer; writes are serialized. The directory stays locked until the
/// last clone is dropped or [`Db::close`] is called; dropping flushes like `close` does.
///
/// ```
/// use std::time::Duration;
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = caskdb::Db::open(dir.path())?;
/// db.put("foo", "bar")?;
/// assert_eq!(db.get("foo")?.as_deref(), Some(&b"bar"[..]));
///
/// // A clone is another handle on the same database, for another thread.
/// let other = db.clone();
/// std::thread::spawn(move || other.put("from", "a thread")).join().unwrap()?;
/// assert!(db.contains_key("from")?);
///
/// db.put_with_ttl("session", "x", Duration::from_secs(60))?;
/// assert!(db.ttl("session")?.is_some_and(|t| t <= Duration::from_secs(60)));
/// assert!(db.delete("foo")?);
/// assert_eq!(db.len(), 2);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<DbInner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.path())
            .field("keys", &self.len())
            .finish()
    }
}

/// Owned by every clone of a `Db`; its drop is the "last clone dropped" event.
pub(crate) struct DbInner {
    pub(crate) core: Arc<Core>,
    threads: Mutex<Vec<Background>>,
}

impl Options {
    /// Opens (creating if needed) the database in directory `path` with these options.
    ///
    /// # Errors
    /// [`Error::InvalidOptions`] for out-of-range options, [`Error::Locked`] if another handle
    /// holds the directory, [`Error::Corrupted`] or [`Error::IncompatibleVersion`] if the files
    /// cannot be trusted, [`Error::Io`] if the directory cannot be read or written.
    pub fn open(self, path: impl AsRef<Path>) -> Result<Db> {
        let path = path.as_ref();
        self.validate()?;
        let vfs: Arc<dyn Vfs> = self.vfs.clone().unwrap_or_else(|| Arc::new(StdVfs));
        vfs.create_dir_all(path)
            .map_err(|e| io_context(e, "create database directory", path))?;
        let dir_lock = lock_dir(vfs.as_ref(), path)?;
        let (keydir, log) = crate::recovery::recover(vfs, path, &self)?;
        let core = Arc::new(Core::new(self, keydir, log, dir_lock));
        let mut threads = Vec::new();
        if let SyncPolicy::Interval(every) = core.opts.sync {
            threads.push(Background::syncer(core.clone(), every)?);
        }
        if core.opts.auto_merge {
            threads.push(Background::merger(core.clone())?);
        }
        // A database opened with enough garbage merges without waiting for the next write.
        if core.wants_merge(&core.log.lock()) {
            core.request_merge();
        }
        Ok(Db {
            inner: Arc::new(DbInner {
                core,
                threads: Mutex::new(threads),
            }),
        })
    }
}

impl Db {
    /// Opens (creating if needed) the database in directory `path` with default [`Options`].
    ///
    /// # Errors
    /// [`Error::Locked`] if another handle holds the directory, [`Error::Corrupted`] or
    /// [`Error::IncompatibleVersion`] if its files cannot be trusted, [`Error::Io`] if it cannot
    /// be read or written.
    pub fn open(path: impl AsRef<Path>) -> Result<Db> {
        Options::default().open(path)
    }

    /// Stores `value` under `key`, replacing any previous value.
    ///
    /// Under [`SyncPolicy::Always`] the record is on stable storage when this returns `Ok`.
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`], [`Error::KeyTooLarge`], [`Error::ValueTooLarge`] (nothing is
    /// written); [`Error::Io`] if the append fails (e.g. the disk is full; nothing is written);
    /// [`Error::Poisoned`] after an earlier fsync failure; [`Error::Closed`].
    ///
    /// If the append succeeded but the fsync that `Always` requires failed, the error is
    /// [`Error::Io`] and the outcome is unknown: readers of this handle may already see the new
    /// value, and whether it survives is decided by what reached the disk. The database then
    /// refuses writes until it is reopened, which reads back the truth.
    pub fn put(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.write_value(key.as_ref(), value.as_ref(), 0, None)?;
        Ok(())
    }

    /// Stores `value` under `key` for `ttl`: after that the key reads as absent (from `get`,
    /// iteration and `len`), across restarts, and the next merge drops it. A zero `ttl` stores
    /// an already expired value.
    ///
    /// # Errors
    /// As [`Db::put`].
    pub fn put_with_ttl(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> Result<()> {
        let expire_at = self.inner.core.expiry_after(ttl);
        self.put_expiring_at(key, value, expire_at)
    }

    /// Stores `value` under `key`, expiring at `expire_at_ms` (milliseconds since the Unix
    /// epoch, by the database's [`Clock`](crate::Clock); a time already past stores an expired
    /// value, which reads as absent).
    ///
    /// # Errors
    /// As [`Db::put`].
    pub fn put_expiring_at(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        expire_at_ms: u64,
    ) -> Result<()> {
        self.write_value(key.as_ref(), value.as_ref(), expire_at_ms.max(1), None)?;
        Ok(())
    }

    /// Sets `key` to expire after `ttl` (replacing any expiry it had). Returns whether the key
    /// exists. The value is rewritten with its new expiry, so this costs a write of its size.
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`]; [`Error::Corrupted`] if the current value fails its check; as
    /// [`Db::put`] otherwise.
    pub fn expire(&self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
        let expire_at = self.inner.core.expiry_after(ttl);
        self.rewrite_expiry(key.as_ref(), expire_at, |_| true)
    }

    /// Removes the expiry of `key`. Returns `true` if the key exists and had one (like Redis'
    /// `PERSIST`), `false` if it is missing or never expires.
    ///
    /// # Errors
    /// As [`Db::expire`].
    pub fn persist(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.rewrite_expiry(key.as_ref(), 0, |loc| loc.expire_at != 0)
    }

    /// The value of `key` and the time it has left (`None` = no expiry), read at one instant:
    /// unlike `get` then `ttl`, the pair always belongs together.
    ///
    /// # Errors
    /// As [`Db::get`].
    pub fn get_with_ttl(&self, key: impl AsRef<[u8]>) -> Result<Option<(Bytes, Option<Duration>)>> {
        let now = self.inner.core.now();
        Ok(self.get_with_expiry(key)?.map(|(value, at)| {
            (
                value,
                at.map(|at| Duration::from_millis(at.saturating_sub(now))),
            )
        }))
    }

    /// The value of `key` and the instant it expires, in milliseconds since the Unix epoch by
    /// the database's [`Clock`](crate::Clock) (`None` = never), read at one instant.
    ///
    /// # Errors
    /// As [`Db::get`].
    pub fn get_with_expiry(&self, key: impl AsRef<[u8]>) -> Result<Option<(Bytes, Option<u64>)>> {
        let key = key.as_ref();
        let core = &self.inner.core;
        core.check_open()?;
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        Ok(self.read_live(key)?.map(|(loc, v)| (v, loc.expiry())))
    }

    /// Milliseconds since the Unix epoch by the database's [`Clock`](crate::Clock): the time
    /// against which expiries are judged.
    pub fn now_ms(&self) -> u64 {
        self.inner.core.now()
    }

    /// Time left before `key` expires: `None` if it never expires or does not exist (tell the
    /// two apart with [`Db::contains_key`]).
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`]; [`Error::Closed`].
    pub fn ttl(&self, key: impl AsRef<[u8]>) -> Result<Option<Duration>> {
        let key = key.as_ref();
        let core = &self.inner.core;
        core.check_open()?;
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        let now = core.now();
        Ok(core
            .keydir
            .get(key)
            .filter(|l| !l.expired(now) && l.expire_at != 0)
            .map(|l| Duration::from_millis(l.expire_at - now)))
    }

    /// Returns the value stored under `key`, or `None`.
    ///
    /// Never waits for writers. The record's CRC is checked on every read.
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`]; [`Error::Corrupted`] (naming file and offset) if the record on
    /// disk fails its check; [`Error::Closed`].
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Bytes>> {
        Ok(self.get_with_expiry(key)?.map(|(value, _)| value))
    }

    /// Locates the value stored under `key` without holding it: a record of at most `inline`
    /// bytes is read now (and checked, as by [`Db::get`]); of a larger one only the header and
    /// key are read and checked, and the value is left in its file, to be read later through
    /// the returned [`ValueRef`] as it is at this instant, whatever is written meanwhile (its
    /// CRC is checked then).
    ///
    /// # Errors
    /// As [`Db::get`].
    pub fn get_ref(&self, key: impl AsRef<[u8]>, inline: usize) -> Result<Option<ValueRef>> {
        let key = key.as_ref();
        self.inner.core.check_open()?;
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        Ok(self
            .read_live_with(key, |f, loc| ValueRef::locate(f, loc, key, inline))?
            .map(|(_, v)| v))
    }

    /// Removes `key`. Returns whether it existed; a missing key is `Ok(false)` and writes nothing.
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`]; [`Error::Io`], [`Error::Poisoned`] or [`Error::Closed`] as for
    /// [`Db::put`], including its caveat about a failed fsync.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        let core = &self.inner.core;
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        // A missing key writes nothing, but a store that refuses writes says so all the same.
        self.write_if(&[RawOp::delete(key)], || {
            core.check_writable()?;
            Ok(core.keydir.get(key).is_some_and(|l| !core.expired(&l)))
        })
    }

    /// Whether `key` has a value. Answered from memory, without reading the disk.
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`]; [`Error::Closed`].
    pub fn contains_key(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        let key = key.as_ref();
        self.inner.core.check_open()?;
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        let core = &self.inner.core;
        Ok(core.keydir.get(key).is_some_and(|l| !core.expired(&l)))
    }

    /// Scans up to `scan` index entries in key order from `start` (below `end`) and returns
    /// the keys among them whose value has expired but is still stored, with where to resume:
    /// the last key scanned, or `None` once the range is done. Reads no value, and holds the
    /// index's locks for one chunk only. An application that announces expirations (a server's
    /// "expired" events) finds them with it, then deletes them in a transaction.
    ///
    /// ```
    /// # fn main() -> caskdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = caskdb::Db::open(dir.path())?;
    /// db.put_expiring_at("gone", "v", 1)?; // 1 ms after the epoch: long expired
    /// db.put("kept", "v")?;
    /// let (expired, next) = db.expired_keys(std::ops::Bound::Unbounded, std::ops::Bound::Unbounded, 100)?;
    /// assert_eq!(expired, vec![bytes::Bytes::from("gone")]);
    /// assert_eq!(next, None);
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn expired_keys(
        &self,
        start: std::ops::Bound<&[u8]>,
        end: std::ops::Bound<&[u8]>,
        scan: usize,
    ) -> Result<(Vec<Bytes>, Option<Bytes>)> {
        let core = &self.inner.core;
        core.check_open()?;
        let chunk = core.keydir.chunk(start, end, scan.max(1), false);
        let now = core.now();
        let next = (chunk.len() >= scan.max(1))
            .then(|| chunk.last().map(|(k, _)| Bytes::copy_from_slice(k)))
            .flatten();
        let expired = chunk
            .into_iter()
            .filter(|(_, loc)| loc.expired(now))
            .map(|(k, _)| Bytes::copy_from_slice(&k))
            .collect();
        Ok((expired, next))
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        let core = &self.inner.core;
        core.keydir.live_len(core.now())
    }

    /// Whether the database holds no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forces every write made so far to stable storage, whatever the [`SyncPolicy`].
    ///
    /// # Errors
    /// [`Error::Io`] if the fsync fails (the database then refuses writes: [`Error::Poisoned`]);
    /// [`Error::Closed`].
    pub fn sync(&self) -> Result<()> {
        let core = &self.inner.core;
        let lsn = {
            let w = core.log.lock();
            core.check_writable()?;
            w.lsn
        };
        core.log.sync_upto(lsn)
    }

    /// Reserves disk space for the next `bytes` bytes of writes now, as a write of that size
    /// would (in the active data file, or in a new one if they would not fit there), without
    /// writing anything. After a write failed for want of space, this tells whether there is
    /// space again.
    ///
    /// ```
    /// # fn main() -> caskdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = caskdb::Db::open(dir.path())?;
    /// db.reserve(1 << 20)?; // the next MiB of writes will find disk blocks
    /// db.put("k", "v")?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Io`] if the space cannot be had (a full disk, a file size limit);
    /// [`Error::Poisoned`] after an earlier fsync failure; [`Error::Closed`].
    pub fn reserve(&self, bytes: u64) -> Result<()> {
        let core = &self.inner.core;
        let mut w = core.log.lock();
        core.check_writable()?;
        core.log.make_room(&mut w, bytes)
    }

    /// Counts of keys, files, and live and dead bytes.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn stats(&self) -> Result<Stats> {
        let core = &self.inner.core;
        core.check_open()?;
        let w = core.log.lock();
        let files: Vec<FileStats> = w
            .file_stats()
            .iter()
            .map(|(&id, s)| FileStats {
                id,
                total_bytes: s.total,
                dead_bytes: s.dead,
                active: id == w.active.id,
            })
            .collect();
        let total_bytes = files.iter().map(|f| f.total_bytes).sum();
        let dead_bytes = files.iter().map(|f| f.dead_bytes).sum();
        Ok(Stats {
            keys: core.keydir.live_len(core.now()),
            data_files: files.len(),
            total_bytes,
            dead_bytes,
            live_bytes: total_bytes - dead_bytes,
            files,
        })
    }

    /// Rewrites the live records of all data files into new, compact files and deletes the old
    /// ones, reclaiming the space of overwritten and deleted values. Reads and writes go on
    /// meanwhile: the active file is sealed first, new writes go to a fresh one, and a write
    /// made during the merge always wins over the merge's copy. Each new file gets a hint file
    /// so the next open need not read values. One merge runs at a time; a second call waits.
    ///
    /// # Errors
    /// [`Error::InsufficientSpace`] if the file system lacks room for the live data (nothing is
    /// done); [`Error::Corrupted`] if a record to copy fails its check; [`Error::Io`];
    /// [`Error::Poisoned`]; [`Error::Closed`]. A merge that fails part-way — or a process that
    /// dies during one — leaves a consistent database: the old files are deleted only once the
    /// new ones are complete and switched to, and every file on disk stays known to the handle,
    /// so the session can go on (and merge again) as if nothing happened.
    pub fn merge(&self) -> Result<MergeStats> {
        merge::run(&self.inner.core, &mut |_| {})
    }

    /// [`Db::merge`], calling `progress` as records are copied.
    ///
    /// # Errors
    /// As [`Db::merge`].
    pub fn merge_with_progress(
        &self,
        mut progress: impl FnMut(MergeProgress),
    ) -> Result<MergeStats> {
        merge::run(&self.inner.core, &mut progress)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        self.inner.core.log.dir()
    }

    /// The options the database was opened with.
    pub fn options(&self) -> &Options {
        &self.inner.core.opts
    }

    /// Flushes and syncs everything, trims the active file's preallocated space, and releases
    /// the directory lock. Other clones of this handle get [`Error::Closed`] from then on. A
    /// merge running in another thread is stopped at its next step (safely: see
    /// [`Db::merge`]) before the lock is released. Do not call it from a merge's progress
    /// callback.
    ///
    /// # Errors
    /// [`Error::Io`] if the final sync fails, [`Error::Poisoned`] if an earlier fsync had failed
    /// (then nothing is synced: the last writes may be lost). The lock is released either way.
    pub fn close(self) -> Result<()> {
        self.inner.shutdown()
    }

    /// Stops like a killed process would, leaving the files exactly as they are (no trim, no
    /// sync), and releases the lock so the directory can be reopened. For crash tests only.
    #[cfg(feature = "testing")]
    #[doc(hidden)]
    pub fn crash(self) {
        self.inner.stop_threads();
        let core = &self.inner.core;
        let _w = core.log.lock();
        core.closed.store(true, Ordering::Release);
        core.dir_lock.lock().take();
    }
}

/// The read and write paths every verb (and batches, transactions and iterators) goes through.
impl Db {
    /// The live (present, unexpired) value of `key` and where it is. A merge can remove a file
    /// between the index lookup and the file lookup; by then the index points at the key's new
    /// place, so look again.
    pub(crate) fn read_live(&self, key: &[u8]) -> Result<Option<(Loc, Bytes)>> {
        self.read_live_with(key, |f, loc| f.read_value(loc, key))
    }

    /// [`Db::read_live`] reading the record with `read`, given the file it lies in.
    pub(crate) fn read_live_with<T>(
        &self,
        key: &[u8],
        read: impl Fn(&Arc<DataFile>, Loc) -> Result<T>,
    ) -> Result<Option<(Loc, T)>> {
        let core = &self.inner.core;
        let mut missing = None;
        for _ in 0..8 {
            let Some(loc) = core.keydir.get(key) else {
                return Ok(None);
            };
            if core.expired(&loc) {
                return Ok(None);
            }
            match core.log.files.with(loc.file_id, |f| read(f, loc)) {
                Some(read) => return read.map(|v| Some((loc, v))),
                None if missing == Some(loc) => break,
                None => missing = Some(loc),
            }
        }
        Err(missing.map_or(Error::Closed, |loc| not_open(core.log.dir(), loc)))
    }

    /// Appends `ops` (checked) and points the index at them, under the writer lock `w`, so
    /// readers see none or all of them.
    pub(crate) fn write_locked(&self, w: &mut Writer, ops: &[RawOp<'_>]) -> Result<()> {
        let core = &self.inner.core;
        // The log itself refuses appends after a failed fsync; closing is the handle's business.
        core.check_open()?;
        let placed = core.log.append_ops(w, ops)?;
        // Odd while the index changes (only this writer changes it: the writer lock is held).
        let seq = core.write_seq.load(Ordering::Relaxed);
        core.write_seq.store(seq + 1, Ordering::Relaxed);
        std::sync::atomic::fence(Ordering::Release);
        if let [(key, loc)] = placed[..] {
            // One key: one shard lock, no bookkeeping.
            let old = match loc {
                Some(loc) => core.keydir.insert(key, loc),
                None => core.keydir.remove(key),
            };
            if let Some(old) = old {
                w.mark_dead(old);
            }
        } else {
            core.keydir.apply(&placed, |old| w.mark_dead(old));
        }
        // (Left odd if indexing panicked: unlocked reads then always defer to the lock.)
        core.write_seq.store(seq + 2, Ordering::Release);
        Ok(())
    }

    /// Writes `ops` (checked) as one record if `go`, asked under the writer lock, says so; then
    /// waits for the disk as the policy requires. Returns whether it wrote.
    pub(crate) fn write_if(
        &self,
        ops: &[RawOp<'_>],
        go: impl FnOnce() -> Result<bool>,
    ) -> Result<bool> {
        let core = &self.inner.core;
        let (lsn, want_merge) = {
            let mut w = core.log.lock();
            if !go()? {
                return Ok(false);
            }
            self.write_locked(&mut w, ops)?;
            (w.lsn, core.wants_merge(&w))
        };
        core.finish_write(lsn, want_merge)?;
        Ok(true)
    }

    /// Writes `value` under `key` with `expire_at` (0 = never). With `only_if`, writes only if
    /// the key's live entry is still exactly that one (checked under the writer lock); returns
    /// whether it wrote. Plain puts pass `None` and skip that lookup.
    fn write_value(
        &self,
        key: &[u8],
        value: &[u8],
        expire_at: u64,
        only_if: Option<Loc>,
    ) -> Result<bool> {
        let core = &self.inner.core;
        core.opts.check_key(key)?;
        core.opts.check_value(value)?;
        self.write_if(&[RawOp::put(key, value, expire_at)], || {
            Ok(only_if.is_none_or(|expected| {
                core.keydir.get(key).filter(|l| !core.expired(l)) == Some(expected)
            }))
        })
    }

    /// Rewrites the live value of `key` with expiry `expire_at` if `cond` holds for its entry.
    fn rewrite_expiry(
        &self,
        key: &[u8],
        expire_at: u64,
        cond: impl Fn(&Loc) -> bool,
    ) -> Result<bool> {
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        loop {
            let Some((loc, value)) = self.read_live(key)? else {
                return Ok(false);
            };
            if !cond(&loc) {
                return Ok(false);
            }
            // Written only if nobody changed the key since we read it; otherwise read again.
            if self.write_value(key, &value, expire_at, Some(loc))? {
                return Ok(true);
            }
        }
    }
}

impl DbInner {
    fn stop_threads(&self) {
        self.core.stopping.store(true, Ordering::Release);
        for t in self.threads.lock().drain(..) {
            t.stop();
        }
    }

    fn shutdown(&self) -> Result<()> {
        self.stop_threads();
        self.core.shutdown()
    }
}

impl Drop for DbInner {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::error!(dir = %self.core.log.dir().display(), "closing database: {e}");
        }
    }
}
