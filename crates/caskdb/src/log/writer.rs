//! The append side of the log: the active file, appends, rotation, group commit, and the
//! encoding of operations that puts, deletes, batches and transactions share.
//!
//! [`Log`] is shared by every handle and background thread; [`Writer`] is the state behind its
//! writer lock (one appender at a time). Appends go to the active file through the [`Vfs`];
//! the caller points the index at what [`Log::append_ops`] placed, under the same lock.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::{Condvar, Mutex, MutexGuard};
use smallvec::SmallVec;

use crate::error::{Error, Result, io_context};
use crate::keydir::Loc;
use crate::log::file::{DataFile, FileTable};
use crate::log::record::{self, FILE_HEADER_LEN, MAX_RECORD_HEADER_LEN, RecordType};
use crate::vfs::{OpenMode, Vfs};

/// The log: every data file, the writer lock, and the durability state.
pub(crate) struct Log {
    dir: PathBuf,
    vfs: Arc<dyn Vfs>,
    /// Every readable data file, the active one included, by id.
    pub files: FileTable,
    writer: Mutex<Writer>,
    /// Size at which the active file is sealed.
    data_file_size: u64,
    /// Bytes appended since open (`Writer::lsn`) known to be on stable storage. Mirrors
    /// `group.synced` so that covered writers return without touching a lock.
    synced_lsn: AtomicU64,
    /// Group commit state: whether an fsync is in flight; waiters sleep on `group_done`.
    group: Mutex<GroupCommit>,
    group_done: Condvar,
    /// Set once by a failed fsync: from then on, appends are refused.
    poison: OnceLock<String>,
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

/// Group-commit bookkeeping, under `Log::group`.
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

/// One checked operation, ready to encode: a put (with `expire_at`, 0 = never) or a deletion.
pub(crate) struct RawOp<'a> {
    kind: RecordType,
    key: &'a [u8],
    value: &'a [u8],
    expire_at: u64,
}

impl<'a> RawOp<'a> {
    pub(crate) fn put(key: &'a [u8], value: &'a [u8], expire_at: u64) -> Self {
        let kind = if expire_at == 0 {
            RecordType::Value
        } else {
            RecordType::ValueWithExpiry
        };
        RawOp {
            kind,
            key,
            value,
            expire_at,
        }
    }

    pub(crate) fn delete(key: &'a [u8]) -> Self {
        RawOp {
            kind: RecordType::Tombstone,
            key,
            value: &[],
            expire_at: 0,
        }
    }

    fn header(&self, buf: &mut [u8; MAX_RECORD_HEADER_LEN]) -> usize {
        let expiry = (self.expire_at != 0).then_some(self.expire_at);
        record::encode_header(self.kind, expiry, self.key, self.value, buf)
    }
}

/// Where appended operations landed, in their order: each key with its new location, or
/// `None` for a deletion. The caller applies them to the index under the writer lock.
pub(crate) type Placed<'a> = SmallVec<[(&'a [u8], Option<Loc>); 1]>;

impl Log {
    pub fn new(
        dir: &Path,
        vfs: Arc<dyn Vfs>,
        files: FileTable,
        writer: Writer,
        data_file_size: u64,
    ) -> Self {
        Log {
            dir: dir.to_path_buf(),
            vfs,
            files,
            writer: Mutex::new(writer),
            data_file_size,
            synced_lsn: AtomicU64::new(0),
            group: Mutex::new(GroupCommit::default()),
            group_done: Condvar::new(),
            poison: OnceLock::new(),
        }
    }

    /// The database directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file layer.
    pub fn vfs(&self) -> &dyn Vfs {
        self.vfs.as_ref()
    }

    /// Takes the writer lock.
    pub fn lock(&self) -> MutexGuard<'_, Writer> {
        self.writer.lock()
    }

    /// `Err(Poisoned)` once an fsync failed.
    pub fn check_writable(&self) -> Result<()> {
        match self.poison.get() {
            Some(reason) => Err(Error::Poisoned {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Whether everything appended before `lsn` is known durable, without taking a lock.
    pub fn synced_through(&self, lsn: u64) -> bool {
        self.synced_lsn.load(Ordering::Acquire) >= lsn
    }

    /// Appends `ops` (keys and values already checked) as one record and returns where each
    /// landed. A lone operation is an ordinary record; several are one batch envelope (type 4)
    /// whose CRC covers them all. Dead bytes it creates (tombstones, the envelope's header) are
    /// counted here; the entries the index replaces are the caller's to count.
    pub fn append_ops<'a>(&self, w: &mut Writer, ops: &[RawOp<'a>]) -> Result<Placed<'a>> {
        let mut header = [0u8; MAX_RECORD_HEADER_LEN];
        let mut placed = Placed::new();
        if let [op] = ops {
            // The path of every plain put and delete: no allocation.
            let n = op.header(&mut header);
            let loc = self.append(w, &[&header[..n], op.key, op.value], op.expire_at)?;
            if op.kind == RecordType::Tombstone {
                w.mark_dead(loc);
                placed.push((op.key, None));
            } else {
                placed.push((op.key, Some(loc)));
            }
            return Ok(placed);
        }
        // Encode each operation as an ordinary record, remembering where it lands.
        let size: usize = ops
            .iter()
            .map(|op| MAX_RECORD_HEADER_LEN + op.key.len() + op.value.len())
            .sum();
        let mut payload = Vec::with_capacity(size);
        let mut at = Vec::with_capacity(ops.len());
        for op in ops {
            let n = op.header(&mut header);
            let start = payload.len();
            payload.extend_from_slice(&header[..n]);
            payload.extend_from_slice(op.key);
            payload.extend_from_slice(op.value);
            at.push((start, payload.len() - start));
        }
        let mut envelope = [0u8; MAX_RECORD_HEADER_LEN];
        let hlen = record::encode_header(RecordType::Batch, None, &[], &payload, &mut envelope);
        let whole = self.append(w, &[&envelope[..hlen], &payload], 0)?;
        // The envelope's own header holds no data: dead from the start.
        w.mark_dead(Loc {
            len: hlen as u32,
            ..whole
        });
        let base = whole.offset + hlen as u64;
        placed.reserve(ops.len());
        for (op, (start, len)) in ops.iter().zip(at) {
            let loc = Loc {
                file_id: whole.file_id,
                len: len as u32,
                offset: base + start as u64,
                expire_at: op.expire_at,
            };
            if op.kind == RecordType::Tombstone {
                w.mark_dead(loc);
                placed.push((op.key, None));
            } else {
                placed.push((op.key, Some(loc)));
            }
        }
        Ok(placed)
    }

    /// Appends one record (given as parts) to the active file, rotating first if it would pass
    /// `data_file_size`. Returns where it landed. Nothing is visible on error.
    fn append(&self, w: &mut Writer, parts: &[&[u8]], expire_at: u64) -> Result<Loc> {
        let len: u64 = parts.iter().map(|p| p.len() as u64).sum();
        self.make_room(w, len)?;
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

    /// Readies the active file for `len` more bytes: rotates first if they would pass
    /// `data_file_size` (or the file's capacity), then allocates their disk blocks, so that a
    /// full disk fails here, before anything is written.
    pub fn make_room(&self, w: &mut Writer, len: u64) -> Result<()> {
        self.check_writable()?;
        let used = w.active.file.len();
        let has_records = used > FILE_HEADER_LEN as u64;
        // (A file with a page that could not be read takes no more appends: a new one does.)
        if (has_records && used + len > self.data_file_size)
            || w.active.file.room() < len
            || w.active.file.is_damaged()
        {
            self.rotate(w, len)?;
        }
        let active = &w.active;
        active
            .file
            .allocate(active.file.len() + len)
            .map_err(|e| io_context(e, "allocate space in", &active.path))
    }

    /// Seals the active file (trim, fsync) and starts the next one, big enough for a record of
    /// `need` bytes.
    pub fn rotate(&self, w: &mut Writer, need: u64) -> Result<()> {
        let old = &w.active;
        old.file
            .truncate(old.file.len())
            .map_err(|e| io_context(e, "trim", &old.path))?;
        if let Err(e) = old.file.sync(true) {
            return Err(self.poisoned_by(io_context(e, "sync", &old.path)));
        }
        self.mark_synced(w.lsn);
        let capacity = self.data_file_size.max(FILE_HEADER_LEN as u64 + need);
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
        match self.vfs.open(&old.path, OpenMode::ReadOnly) {
            Ok(file) => {
                let sealed = DataFile {
                    id: old.id,
                    path: old.path.clone(),
                    file,
                    retired: Arc::clone(&old.retired),
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

    /// Group commit: returns once everything up to `lsn` is on stable storage.
    ///
    /// One fsync is in flight at a time. The thread that starts it (the leader) first reads the
    /// current end of the log, so its fsync covers every append made before it started,
    /// including those of writers now waiting. When it finishes it wakes all waiters at once;
    /// those it covered return, and one of the others leads the next fsync.
    pub fn sync_upto(&self, lsn: u64) -> Result<()> {
        if self.synced_through(lsn) {
            return Ok(());
        }
        let mut group = self.group.lock();
        loop {
            if group.synced >= lsn {
                return Ok(());
            }
            self.check_writable()?;
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

    /// Syncs whatever was appended since the last sync (the interval syncer's step).
    pub fn sync_pending(&self) -> Result<()> {
        let lsn = self.writer.lock().lsn;
        if self.poison.get().is_some() || self.synced_through(lsn) {
            return Ok(());
        }
        self.sync_upto(lsn)
    }

    /// Everything up to `lsn` is known durable (a sealed file was synced).
    fn mark_synced(&self, lsn: u64) {
        let mut group = self.group.lock();
        group.synced = group.synced.max(lsn);
        self.synced_lsn.fetch_max(lsn, Ordering::AcqRel);
    }

    /// Records that appends must stop and returns `err` for the caller.
    fn poisoned_by(&self, err: Error) -> Error {
        let reason = err.to_string();
        tracing::error!(dir = %self.dir.display(), "refusing further writes: {reason}");
        let _ = self.poison.set(reason);
        err
    }

    /// At close, under the writer lock: trims the active file's preallocated tail and syncs it.
    /// After a failed fsync it syncs nothing (a second fsync proves nothing) and reports the
    /// first failure instead.
    pub fn seal_active(&self, w: &Writer) -> Result<()> {
        self.check_writable()?;
        let active = &w.active;
        active
            .file
            .truncate(active.file.len())
            .and_then(|()| active.file.sync(true))
            .map_err(|e| io_context(e, "sync", &active.path))
    }
}
