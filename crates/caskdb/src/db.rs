//! The database handle and its write path: append, rotate, group commit, close, and the
//! background threads (interval sync, automatic merge).

use std::any::Any;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};

use crate::batch::{RawOp, append_ops};
use crate::data_file::{DataFile, FileTable};
use crate::error::{Error, Result, io_context};
use crate::keydir::{Keydir, Loc};
use crate::merge::{MergeProgress, MergeStats};
use crate::options::{Options, SyncPolicy};
use crate::record::FILE_HEADER_LEN;
use crate::stats::{FileStats, Stats};
use crate::vfs::{StdVfs, Vfs};

/// Name of the lock file inside the database directory.
const LOCK_FILE: &str = "LOCK";

/// A handle to an open database.
///
/// `Db` is cheap to clone (an `Arc`) and `Send + Sync`: share it between threads by cloning.
/// Reads never wait for the writer; writes are serialized. The directory stays locked until the
/// last clone is dropped or [`Db::close`] is called; dropping flushes like `close` does.
///
/// ```no_run
/// # fn main() -> caskdb::Result<()> {
/// let db = caskdb::Db::open("/tmp/example-db")?;
/// db.put("foo", "bar")?;
/// assert_eq!(db.get("foo")?.as_deref(), Some(&b"bar"[..]));
/// assert!(db.delete("foo")?);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<DbInner>,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db")
            .field("dir", &self.inner.core.dir)
            .field("keys", &self.len())
            .finish()
    }
}

/// Owned by every clone of a `Db`; its drop is the "last clone dropped" event.
pub(crate) struct DbInner {
    pub(crate) core: Arc<Core>,
    threads: Mutex<Vec<Background>>,
}

/// The shared state, also held by the background threads.
pub(crate) struct Core {
    pub(crate) dir: PathBuf,
    pub(crate) opts: Options,
    pub(crate) vfs: Arc<dyn Vfs>,
    pub(crate) keydir: Keydir,
    /// Every readable data file, the active one included, by id.
    pub(crate) files: FileTable,
    pub(crate) writer: Mutex<Writer>,
    /// Held for the whole of a merge: one at a time.
    pub(crate) merge_lock: Mutex<()>,
    /// Wakes the background merger.
    merge_signal: Arc<Signal>,
    /// After a failed automatic merge, the next one waits until dead bytes pass this.
    merge_retry_at: AtomicU64,
    /// Set when the database starts closing: a running merge stops at its next step.
    pub(crate) stopping: AtomicBool,
    /// Bytes appended since open (`Writer::lsn`) known to be on stable storage. Mirrors
    /// `group.synced` so that covered writers return without touching a lock.
    synced_lsn: AtomicU64,
    /// Group commit state: whether an fsync is in flight; waiters sleep on `group_done`.
    group: Mutex<GroupCommit>,
    group_done: Condvar,
    closed: AtomicBool,
    /// Set once by a failed fsync: from then on, writes are refused.
    poison: OnceLock<String>,
    dir_lock: Mutex<Option<Box<dyn Any + Send + Sync>>>,
}

/// State owned by whoever holds the writer lock.
pub(crate) struct Writer {
    pub active: Arc<DataFile>,
    pub next_id: u32,
    /// Bytes appended since open: a position in the log that group commit compares against.
    pub lsn: u64,
    /// Byte counts per data file, and their sums.
    stats: BTreeMap<u32, FileStat>,
    total: u64,
    dead: u64,
}

/// Group-commit bookkeeping, under `Core::group`.
#[derive(Default)]
struct GroupCommit {
    in_flight: bool,
    synced: u64,
}

/// Byte counts of one data file.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FileStat {
    pub total: u64,
    pub dead: u64,
}

impl FileStat {
    pub fn new(total: u64) -> Self {
        FileStat { total, dead: 0 }
    }
}

impl Writer {
    pub fn new(active: Arc<DataFile>, next_id: u32, stats: BTreeMap<u32, FileStat>) -> Self {
        let total = stats.values().map(|s| s.total).sum();
        let dead = stats.values().map(|s| s.dead).sum();
        Writer {
            active,
            next_id,
            lsn: 0,
            stats,
            total,
            dead,
        }
    }

    /// Counts `len` new bytes in file `id`.
    fn add_bytes(&mut self, id: u32, len: u64) {
        self.stats.entry(id).or_default().total += len;
        self.total += len;
    }

    /// Counts the record at `loc` as dead.
    pub fn mark_dead(&mut self, loc: Loc) {
        if let Some(s) = self.stats.get_mut(&loc.file_id) {
            s.dead += u64::from(loc.len);
            self.dead += u64::from(loc.len);
        }
    }

    /// Counts the record at `loc` as live again (a merge's copy that the index switched to).
    pub fn revive(&mut self, loc: Loc) {
        if let Some(s) = self.stats.get_mut(&loc.file_id) {
            let len = u64::from(loc.len).min(s.dead);
            s.dead -= len;
            self.dead -= len;
        }
    }

    pub fn add_file(&mut self, id: u32, stat: FileStat) {
        self.total += stat.total;
        self.dead += stat.dead;
        if let Some(old) = self.stats.insert(id, stat) {
            self.total -= old.total;
            self.dead -= old.dead;
        }
    }

    pub fn remove_file(&mut self, id: u32) {
        if let Some(s) = self.stats.remove(&id) {
            self.total -= s.total;
            self.dead -= s.dead;
        }
    }

    pub fn file_stats(&self) -> &BTreeMap<u32, FileStat> {
        &self.stats
    }

    /// Bytes in all data files, and how many of them are dead.
    pub fn totals(&self) -> (u64, u64) {
        (self.total, self.dead)
    }
}

/// How often the merger looks at expired bytes.
const EXPIRY_CHECK_EVERY: Duration = Duration::from_secs(1);

/// A flag and a condition variable: how the database wakes a background thread.
#[derive(Default)]
struct Signal {
    state: Mutex<SignalState>,
    cv: Condvar,
}

#[derive(Default)]
struct SignalState {
    stop: bool,
    wanted: bool,
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

    pub(crate) fn open_with(path: &Path, opts: Options) -> Result<Db> {
        opts.validate()?;
        let vfs: Arc<dyn Vfs> = opts.vfs.clone().unwrap_or_else(|| Arc::new(StdVfs));
        vfs.create_dir_all(path)
            .map_err(|e| io_context(e, "create database directory", path))?;
        let lock_path = path.join(LOCK_FILE);
        let dir_lock = vfs
            .try_lock(&lock_path)
            .map_err(|e| io_context(e, "lock", &lock_path))?
            .ok_or_else(|| Error::Locked {
                path: path.to_path_buf(),
            })?;
        let recovered = crate::recovery::recover(vfs.as_ref(), path, &opts)?;
        let core = Arc::new(Core {
            dir: path.to_path_buf(),
            opts,
            vfs,
            keydir: recovered.keydir,
            files: recovered.files,
            writer: Mutex::new(recovered.writer),
            merge_lock: Mutex::new(()),
            merge_signal: Arc::new(Signal::default()),
            merge_retry_at: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            synced_lsn: AtomicU64::new(0),
            group: Mutex::new(GroupCommit::default()),
            group_done: Condvar::new(),
            closed: AtomicBool::new(false),
            poison: OnceLock::new(),
            dir_lock: Mutex::new(Some(dir_lock)),
        });
        let mut threads = Vec::new();
        if let SyncPolicy::Interval(every) = core.opts.sync {
            threads.push(Background::syncer(core.clone(), every)?);
        }
        if core.opts.auto_merge {
            threads.push(Background::merger(core.clone())?);
        }
        let db = Db {
            inner: Arc::new(DbInner {
                core,
                threads: Mutex::new(threads),
            }),
        };
        // A database opened with enough garbage merges without waiting for the next write.
        db.inner.core.maybe_trigger_merge();
        Ok(db)
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
        let core = &self.inner.core;
        core.write_value(key.as_ref(), value.as_ref(), 0, None)?;
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
        let core = &self.inner.core;
        let expire_at = core.expiry_after(ttl);
        core.write_value(key.as_ref(), value.as_ref(), expire_at, None)?;
        Ok(())
    }

    /// Sets `key` to expire after `ttl` (replacing any expiry it had). Returns whether the key
    /// exists. The value is rewritten with its new expiry, so this costs a write of its size.
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`]; [`Error::Corrupted`] if the current value fails its check; as
    /// [`Db::put`] otherwise.
    pub fn expire(&self, key: impl AsRef<[u8]>, ttl: Duration) -> Result<bool> {
        let core = &self.inner.core;
        let expire_at = core.expiry_after(ttl);
        core.rewrite_expiry(key.as_ref(), expire_at, |_| true)
    }

    /// Removes the expiry of `key`. Returns `true` if the key exists and had one (like Redis'
    /// `PERSIST`), `false` if it is missing or never expires.
    ///
    /// # Errors
    /// As [`Db::expire`].
    pub fn persist(&self, key: impl AsRef<[u8]>) -> Result<bool> {
        self.inner
            .core
            .rewrite_expiry(key.as_ref(), 0, |loc| loc.expire_at != 0)
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
        Ok(core.read_live(key)?.map(|(loc, v)| (v, loc.expiry())))
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
        let (lsn, want_merge) = {
            let mut w = core.writer.lock();
            core.check_writable()?;
            if core.keydir.get(key).is_none_or(|l| l.expired(core.now())) {
                return Ok(false);
            }
            append_ops(core, &mut w, &[RawOp::delete(key)])?;
            (w.lsn, core.wants_merge(&w))
        };
        core.finish_write(lsn, want_merge)?;
        Ok(true)
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
        Ok(core.keydir.get(key).is_some_and(|l| !l.expired(core.now())))
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
            let w = core.writer.lock();
            core.check_writable()?;
            w.lsn
        };
        core.sync_upto(lsn)
    }

    /// Counts of keys, files, and live and dead bytes.
    ///
    /// # Errors
    /// [`Error::Closed`].
    pub fn stats(&self) -> Result<Stats> {
        let core = &self.inner.core;
        core.check_open()?;
        let w = core.writer.lock();
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
        self.inner.core.merge(&mut |_| {})
    }

    /// [`Db::merge`], calling `progress` as records are copied.
    ///
    /// # Errors
    /// As [`Db::merge`].
    pub fn merge_with_progress(
        &self,
        mut progress: impl FnMut(MergeProgress),
    ) -> Result<MergeStats> {
        self.inner.core.merge(&mut progress)
    }

    /// The database directory.
    pub fn path(&self) -> &Path {
        &self.inner.core.dir
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

    /// Test-only: stops like a killed process would, leaving the files exactly as they are
    /// (no trim, no sync), and releases the lock so the directory can be reopened.
    #[cfg(test)]
    pub(crate) fn crash(self) {
        self.inner.stop_threads();
        let core = &self.inner.core;
        let _w = core.writer.lock();
        core.closed.store(true, Ordering::Release);
        core.dir_lock.lock().take();
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
            tracing::error!(dir = %self.core.dir.display(), "closing database: {e}");
        }
    }
}

impl Core {
    pub(crate) fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Checked under the writer lock before any append.
    pub(crate) fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        match self.poison.get() {
            Some(reason) => Err(Error::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    pub(crate) fn check_value(&self, value: &[u8]) -> Result<()> {
        if value.len() > self.opts.max_value_size {
            return Err(Error::ValueTooLarge {
                size: value.len(),
                max: self.opts.max_value_size,
            });
        }
        Ok(())
    }

    pub(crate) fn check_key(&self, key: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(Error::KeyIsEmpty);
        }
        if key.len() > self.opts.max_key_size {
            return Err(Error::KeyTooLarge {
                size: key.len(),
                max: self.opts.max_key_size,
            });
        }
        Ok(())
    }

    /// Appends one record (given as parts) to the active file, rotating first if it would pass
    /// `data_file_size`. Returns where it landed. Nothing is visible on error.
    pub(crate) fn append(&self, w: &mut Writer, parts: &[&[u8]], expire_at: u64) -> Result<Loc> {
        self.check_writable()?;
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let used = w.active.file.len();
        let has_records = used > FILE_HEADER_LEN as u64;
        if (has_records && used + len > self.opts.data_file_size) || w.active.file.room() < len {
            self.rotate(w, len)?;
        }
        let active = &w.active;
        let offset = active.file.len();
        active
            .file
            .append(parts)
            .map_err(|e| io_context(e, "append to", &active.path))?;
        w.lsn += len;
        let id = active.id;
        w.add_bytes(id, len);
        Ok(Loc {
            file_id: id,
            len: len as u32,
            offset,
            expire_at,
        })
    }

    /// Seals the active file (trim, fsync) and starts the next one, big enough for a record of
    /// `need` bytes.
    pub(crate) fn rotate(&self, w: &mut Writer, need: u64) -> Result<()> {
        let old = &w.active;
        old.file
            .truncate(old.file.len())
            .map_err(|e| io_context(e, "trim", &old.path))?;
        if let Err(e) = old.file.sync(true) {
            return Err(self.poisoned_by(io_context(e, "sync", &old.path)));
        }
        self.mark_synced(w.lsn);
        let capacity = self.opts.data_file_size.max(FILE_HEADER_LEN as u64 + need);
        let id = w.next_id;
        // If this fails, the old file simply stays the active one (still writable).
        let new = Arc::new(DataFile::create(
            self.vfs.as_ref(),
            &self.dir,
            id,
            capacity,
        )?);
        w.next_id = id
            .checked_add(1)
            .ok_or_else(|| new.corrupted(0, "data file id space exhausted"))?;
        // Sealed for good: swap in a read-only mapping of its exact size, without a descriptor,
        // so long-lived databases do not keep one descriptor and one capacity-sized mapping per
        // file. Readers still holding the writable one finish with it.
        match self.vfs.open(&old.path, crate::vfs::OpenMode::ReadOnly) {
            Ok(file) => {
                let sealed = DataFile {
                    id: old.id,
                    path: old.path.clone(),
                    file,
                };
                self.files.insert(Arc::new(sealed));
            }
            Err(e) => {
                tracing::warn!(file = %old.path.display(), "reopening sealed file read-only: {e}")
            }
        }
        w.add_file(id, FileStat::new(new.file.len()));
        self.files.insert(new.clone());
        w.active = new;
        Ok(())
    }

    /// Milliseconds since the epoch, by the configured clock.
    pub(crate) fn now(&self) -> u64 {
        self.opts.clock.now_ms()
    }

    /// The expiry (never 0) of a value written now with `ttl`.
    pub(crate) fn expiry_after(&self, ttl: Duration) -> u64 {
        self.now()
            .saturating_add(u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX))
            .max(1)
    }

    /// The live (present, unexpired) value of `key` and where it is. A merge can remove a file
    /// between the index lookup and the file lookup; by then the index points at the key's new
    /// place, so look again.
    pub(crate) fn read_live(&self, key: &[u8]) -> Result<Option<(Loc, Bytes)>> {
        let mut missing = None;
        for _ in 0..8 {
            let Some(loc) = self.keydir.get(key) else {
                return Ok(None);
            };
            if loc.expired(self.now()) {
                return Ok(None);
            }
            match self.files.with(loc.file_id, |f| f.read_value(loc, key)) {
                Some(read) => return read.map(|v| Some((loc, v))),
                None if missing == Some(loc) => break,
                None => missing = Some(loc),
            }
        }
        let loc = missing.expect("set before breaking out");
        Err(Error::Corrupted {
            file: self.dir.join(crate::data_file::data_file_name(loc.file_id)),
            offset: loc.offset,
            reason: "index points into a data file that is not open".into(),
        })
    }

    /// Writes `value` under `key` with `expire_at` (0 = never). With `only_if`, writes only if
    /// the key's live entry is still exactly that one (checked under the writer lock); returns
    /// whether it wrote. Plain puts pass `None` and skip that lookup.
    pub(crate) fn write_value(
        &self,
        key: &[u8],
        value: &[u8],
        expire_at: u64,
        only_if: Option<Loc>,
    ) -> Result<bool> {
        self.check_key(key)?;
        self.check_value(value)?;
        let (lsn, want_merge) = {
            let mut w = self.writer.lock();
            if let Some(expected) = only_if {
                let current = self.keydir.get(key).filter(|l| !l.expired(self.now()));
                if current != Some(expected) {
                    return Ok(false);
                }
            }
            append_ops(self, &mut w, &[RawOp::put(key, value, expire_at)])?;
            (w.lsn, self.wants_merge(&w))
        };
        self.finish_write(lsn, want_merge)?;
        Ok(true)
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

    /// Whether dead bytes passed both automatic-merge thresholds. Cheap: called under the
    /// writer lock after every write.
    pub(crate) fn wants_merge(&self, w: &Writer) -> bool {
        let (total, dead) = w.totals();
        self.merge_thresholds_passed(total, dead)
    }

    /// Like `wants_merge`, counting expired records as dead too. Costs a pass over the expired
    /// entries, so the merger thread calls it periodically rather than every write.
    fn wants_merge_counting_expired(&self) -> bool {
        let (total, dead) = self.writer.lock().totals();
        self.merge_thresholds_passed(total, dead + self.keydir.expired_bytes(self.now()))
    }

    /// Whether `garbage` bytes out of `total` call for an automatic merge.
    fn merge_thresholds_passed(&self, total: u64, garbage: u64) -> bool {
        self.opts.auto_merge
            && garbage >= self.opts.merge_min_dead_bytes
            && garbage as f64 >= self.opts.merge_trigger_ratio * total as f64
            && garbage >= self.merge_retry_at.load(Ordering::Relaxed)
    }

    /// Wakes the background merger (it merges once, however often it is woken meanwhile).
    pub(crate) fn request_merge(&self) {
        let mut st = self.merge_signal.state.lock();
        if !st.wanted {
            st.wanted = true;
            self.merge_signal.cv.notify_all();
        }
    }

    fn maybe_trigger_merge(&self) {
        let wanted = self.wants_merge(&self.writer.lock());
        if wanted {
            self.request_merge();
        }
    }

    /// The end of every write: durability as the policy requires, then the merger if the write
    /// passed its thresholds.
    pub(crate) fn finish_write(&self, lsn: u64, want_merge: bool) -> Result<()> {
        self.commit(lsn)?;
        if want_merge {
            self.request_merge();
        }
        Ok(())
    }

    /// Makes a write durable as the sync policy requires.
    fn commit(&self, lsn: u64) -> Result<()> {
        match self.opts.sync {
            SyncPolicy::Always => self.sync_upto(lsn),
            _ => Ok(()),
        }
    }

    /// Group commit: returns once everything up to `lsn` is on stable storage.
    ///
    /// One fsync is in flight at a time. The thread that starts it (the leader) first reads the
    /// current end of the log, so its fsync covers every append made before it started,
    /// including those of writers now waiting. When it finishes it wakes all waiters at once;
    /// those it covered return, and one of the others leads the next fsync.
    pub(crate) fn sync_upto(&self, lsn: u64) -> Result<()> {
        if self.synced_lsn.load(Ordering::Acquire) >= lsn {
            return Ok(());
        }
        let mut group = self.group.lock();
        loop {
            if group.synced >= lsn {
                return Ok(());
            }
            if let Some(reason) = self.poison.get() {
                return Err(Error::Poisoned {
                    reason: reason.clone(),
                });
            }
            if !group.in_flight {
                break;
            }
            self.group_done.wait(&mut group);
        }
        group.in_flight = true;
        drop(group);
        let (active, target) = {
            let w = self.writer.lock();
            (w.active.clone(), w.lsn)
        };
        // Earlier files were synced when they were sealed; the active one holds the rest.
        let result = active.file.sync(false);
        let mut group = self.group.lock();
        group.in_flight = false;
        let result = match result {
            Ok(()) => {
                group.synced = group.synced.max(target);
                self.synced_lsn.fetch_max(target, Ordering::AcqRel);
                Ok(())
            }
            Err(e) => Err(self.poisoned_by(io_context(e, "sync", &active.path))),
        };
        drop(group);
        self.group_done.notify_all();
        result
    }

    /// Everything up to `lsn` is known durable (a sealed file was synced).
    fn mark_synced(&self, lsn: u64) {
        let mut group = self.group.lock();
        group.synced = group.synced.max(lsn);
        self.synced_lsn.fetch_max(lsn, Ordering::AcqRel);
    }

    /// Records that writes must stop and returns `err` for the caller.
    fn poisoned_by(&self, err: Error) -> Error {
        let reason = err.to_string();
        tracing::error!(dir = %self.dir.display(), "refusing further writes: {reason}");
        let _ = self.poison.set(reason);
        err
    }

    fn shutdown(&self) -> Result<()> {
        // A running merge stops at its next step (`stopping` is set); wait for it, so that no
        // file is renamed or deleted after the lock is released. (Merge lock before writer lock,
        // as in a merge.)
        let _no_merge = self.merge_lock.lock();
        let w = self.writer.lock();
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let active = &w.active;
        let result = if let Some(reason) = self.poison.get() {
            // Syncing again after a failed fsync proves nothing: report the failure instead.
            Err(Error::Poisoned {
                reason: reason.clone(),
            })
        } else {
            active
                .file
                .truncate(active.file.len())
                .and_then(|()| active.file.sync(true))
                .map_err(|e| io_context(e, "sync", &active.path))
        };
        drop(w);
        self.dir_lock.lock().take();
        result
    }
}

/// A background thread: the syncer behind [`SyncPolicy::Interval`], or the automatic merger.
struct Background {
    signal: Arc<Signal>,
    thread: JoinHandle<()>,
}

impl Background {
    fn spawn(
        name: &str,
        signal: Arc<Signal>,
        body: impl FnOnce() + Send + 'static,
    ) -> Result<Self> {
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(body)
            .map_err(Error::Io)?;
        Ok(Background { signal, thread })
    }

    fn syncer(core: Arc<Core>, every: Duration) -> Result<Self> {
        let signal = Arc::new(Signal::default());
        let sig = signal.clone();
        Self::spawn("caskdb-sync", signal, move || {
            let mut st = sig.state.lock();
            while !st.stop {
                sig.cv.wait_for(&mut st, every);
                if st.stop {
                    break;
                }
                let lsn = core.writer.lock().lsn;
                if core.poison.get().is_none()
                    && core.synced_lsn.load(Ordering::Acquire) < lsn
                    && let Err(e) = core.sync_upto(lsn)
                {
                    tracing::error!(dir = %core.dir.display(), "periodic sync: {e}");
                }
            }
        })
    }

    fn merger(core: Arc<Core>) -> Result<Self> {
        let signal = core.merge_signal.clone();
        let sig = signal.clone();
        Self::spawn("caskdb-merge", signal, move || {
            loop {
                {
                    let mut st = sig.state.lock();
                    while !st.stop && !st.wanted {
                        // Woken by a write that passed the thresholds, or once a second to see
                        // whether expired records did (nothing is written when keys expire).
                        if sig.cv.wait_for(&mut st, EXPIRY_CHECK_EVERY).timed_out()
                            && parking_lot::MutexGuard::unlocked(&mut st, || {
                                core.wants_merge_counting_expired()
                            })
                        {
                            st.wanted = true;
                        }
                    }
                    if st.stop {
                        return;
                    }
                    st.wanted = false;
                }
                let started = std::time::Instant::now();
                match core.merge(&mut |_| {}) {
                    Ok(m) => {
                        core.merge_retry_at.store(0, Ordering::Relaxed);
                        tracing::info!(
                        dir = %core.dir.display(),
                        "automatic merge: {} files ({} bytes) into {} ({} bytes) in {:?}",
                        m.files_merged, m.bytes_before, m.files_written, m.bytes_after, started.elapsed()
                        )
                    }
                    Err(Error::Closed) => return,
                    Err(e) => {
                        // Do not retry at once: wait for another merge_min_dead_bytes of garbage.
                        let (_, dead) = core.writer.lock().totals();
                        core.merge_retry_at.store(
                            dead.saturating_add(core.opts.merge_min_dead_bytes.max(1)),
                            Ordering::Relaxed,
                        );
                        tracing::error!(dir = %core.dir.display(), "automatic merge failed: {e}");
                    }
                }
            }
        })
    }

    fn stop(self) {
        {
            let mut st = self.signal.state.lock();
            st.stop = true;
        }
        self.signal.cv.notify_all();
        let _ = self.thread.join();
    }
}
