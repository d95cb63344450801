//! Power-loss simulation. [`SimVfs`] is an in-memory file system that tracks what is durable
//! (bytes made so by `LogFile::sync`, directory entries by `Vfs::sync_dir`) apart from what was
//! merely written, and [`SimVfs::crash`] returns what a power loss leaves. Randomized workloads
//! under `SyncPolicy::Always` are cut off at a random point — between two operations or in the
//! middle of one — and the database reopened on the crashed state must hold every acknowledged
//! write, no deleted key, and exactly the state of some prefix of the operations (all the
//! acknowledged ones, at most the one in flight extra).
//!
//! The real file system cannot test this: its page cache survives a killed process, so only a
//! simulated power loss drops what was never made durable.
//!
//! Soak: `CASKDB_SOAK_POWER_LOSS=<rounds> cargo test -p caskdb --lib power_loss`; replay one
//! round with `CASKDB_POWER_LOSS_SEED=<seed>`.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::vfs::{LogFile, OpenMode, Vfs};
use crate::{Clock, Db, ManualClock, Options, SyncPolicy};

/// What the page cache writes back as a unit: a power loss keeps or loses whole pages.
const PAGE: usize = 4096;
/// Garbage from a torn write runs at most to the end of its sector.
const SECTOR: usize = 512;
/// A file header is one 16-byte write at offset 0, synced before anything follows it: a device
/// that writes a sector atomically never tears it, and a torn header cannot be told from a
/// corrupt one. So the simulation tears writes anywhere but there.
const HEADER: usize = crate::record::FILE_HEADER_LEN;

/// A small deterministic generator (SplitMix64): every round is reproducible from its seed.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Rng(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `lo..=hi`.
    pub(crate) fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below((hi - lo) as u64 + 1) as usize
    }

    /// True `num` times out of `den`.
    pub(crate) fn chance(&mut self, num: u64, den: u64) -> bool {
        self.below(den) < num
    }
}

// ---------------------------------------------------------------------------------------------
// The simulated file system
// ---------------------------------------------------------------------------------------------

/// File-system calls, as counted by a [`Fault`] plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Call {
    CreateDirAll,
    List,
    Lock,
    Create,
    Open,
    Remove,
    Rename,
    LinkOrCopy,
    AvailableSpace,
    SyncDir,
    Read,
    Append,
    Sync,
    Truncate,
}

impl Call {
    /// Whether the call can change what is on disk. A power cut falls before one of these: the
    /// calls in between only read, so they cannot change what a crash leaves.
    fn mutates(self) -> bool {
        matches!(
            self,
            Call::Create
                | Call::Remove
                | Call::Rename
                | Call::LinkOrCopy
                | Call::SyncDir
                | Call::Append
                | Call::Sync
                | Call::Truncate
        )
    }
}

/// The call a `Fault::Fail…` plan made fail, and what it was about.
#[derive(Clone, Debug)]
pub(crate) struct FailedCall {
    /// Its number among all calls since the plan was set (0-based), reads included.
    pub number: u64,
    pub call: Call,
    pub path: PathBuf,
    /// For `open`: the mode.
    pub mode: Option<OpenMode>,
    /// For a call on an open file: how many of its bytes were durable then.
    pub durable_len: Option<u64>,
}

impl FailedCall {
    /// The file name of the path the call was about.
    pub(crate) fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// What goes wrong, and when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Fault {
    #[default]
    None,
    /// The call with this number (0-based, counting every call, reads included) fails with EIO,
    /// doing nothing. A failed `sync` also drops the file's dirty bytes for good, as Linux does
    /// (the pages are marked clean, so no later fsync writes them), though reads still see them.
    FailCall(u64),
    /// As `FailCall`, counting only reads (`LogFile::read_at`).
    FailRead(u64),
    /// As `FailCall`, counting every call but reads.
    FailNonRead(u64),
    /// The power fails just before the mutating call with this number (0-based, counting only
    /// calls that can change the disk): the disk is frozen as it was, and that call and every
    /// later one fail. [`SimVfs::crash`] then starts from the frozen disk.
    PowerCut(u64),
}

/// Deliberate lies, for showing that the checks catch an engine whose durability is broken.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Lie {
    #[default]
    None,
    /// `LogFile::sync` returns `Ok` and makes nothing durable.
    Fsync,
    /// `Vfs::sync_dir` returns `Ok` and makes nothing durable.
    SyncDir,
    /// A `sync` failed by the fault plan still drops the dirty bytes but returns `Ok`: what the
    /// engine would see if it ignored the error.
    FsyncErrorHidden,
}

/// How much of what was not durable a power loss may still leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tear {
    /// Exactly the durable state: nothing unsynced reached the disk.
    None,
    /// Per file, at random: none of the unsynced bytes, a prefix of them torn at any byte,
    /// whole pages in any order (lost ones read as the old bytes, zeros past the old end), or a
    /// torn prefix followed by garbage; the file size old or new. Per directory, a random
    /// prefix of the entry changes since its last sync (a journal commits them in order).
    Random,
    /// Every unsynced byte reached the disk but those in the first page they touch: writeback
    /// wrote the later pages of a write, not the one where it starts. Directories as `None`.
    LoseFirstDirtyPage,
}

/// What a crash dropped, for the statistics that show the simulation really loses data.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CrashStats {
    /// Bytes where the crashed disk differs from what reads saw before the crash.
    pub bytes_lost: u64,
    /// Files whose crashed contents differ from both their durable and their written bytes.
    pub files_torn: u64,
    /// Directory changes not yet synced that the crash dropped, and that it kept.
    pub entries_lost: u64,
    pub entries_kept: u64,
}

impl CrashStats {
    pub(crate) fn add(&mut self, o: &CrashStats) {
        self.bytes_lost += o.bytes_lost;
        self.files_torn += o.files_torn;
        self.entries_lost += o.entries_lost;
        self.entries_kept += o.entries_kept;
    }
}

#[derive(Clone, Debug, Default)]
struct Inode {
    /// What reads see: every byte written, preallocated zeros included (the file's size).
    data: Vec<u8>,
    /// What the disk holds: `data` as of the last successful sync.
    durable: Vec<u8>,
    /// Ranges whose writeback failed: they never reach the disk, whatever is synced later.
    lost: Vec<Range<usize>>,
}

fn byte(v: &[u8], p: usize) -> u8 {
    v.get(p).copied().unwrap_or(0)
}

/// The smallest range outside which `a` and `b` (zero-extended to the same length) agree.
fn dirty_range(a: &[u8], b: &[u8]) -> Option<Range<usize>> {
    let n = a.len().max(b.len());
    let first = (0..n).find(|&p| byte(a, p) != byte(b, p))?;
    let last = (0..n).rev().find(|&p| byte(a, p) != byte(b, p))?;
    Some(first..last + 1)
}

impl Inode {
    /// What writeback would put on disk now: everything written but the lost ranges.
    fn writeback(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        let n = out.len();
        for r in &self.lost {
            for p in r.clone().filter(|&p| p < n) {
                out[p] = byte(&self.durable, p);
            }
        }
        out
    }

    fn sync(&mut self) {
        self.durable = self.writeback();
    }

    /// A failed fsync: the kernel marks the dirty pages clean without writing them.
    fn lose_dirty(&mut self) {
        if let Some(r) = dirty_range(&self.durable, &self.data) {
            self.lost.push(r);
        }
    }

    /// The file's bytes after a power loss.
    fn after_power_loss(&self, rng: &mut Rng, tear: Tear) -> Vec<u8> {
        let old = &self.durable;
        let new = self.writeback();
        if tear == Tear::None || *old == new {
            return old.clone();
        }
        if tear == Tear::LoseFirstDirtyPage {
            let mut out = new.clone();
            if let Some(dirty) = dirty_range(old, &new) {
                let page_end = (dirty.start / PAGE + 1) * PAGE;
                let end = page_end.min(dirty.end).min(out.len());
                for (p, b) in out.iter_mut().enumerate().take(end).skip(dirty.start) {
                    *b = byte(old, p);
                }
            }
            return out;
        }
        // The size is one metadata update: made or not.
        let size = if rng.chance(1, 2) {
            old.len()
        } else {
            new.len()
        };
        let mut out: Vec<u8> = (0..size).map(|p| byte(old, p)).collect();
        let Some(dirty) = dirty_range(old, &new) else {
            return out; // only the size changed
        };
        let write = |out: &mut [u8], r: Range<usize>| {
            let n = out.len();
            for p in r.filter(|&p| p < n) {
                out[p] = byte(&new, p);
            }
        };
        match rng.below(4) {
            0 => {} // none of the unsynced bytes reached the disk
            1 => {
                let cut = tear_point(rng, &dirty);
                write(&mut out, dirty.start..cut);
            }
            2 => {
                // Pages are written back in any order: each one or not.
                for page in dirty.start / PAGE..=(dirty.end - 1) / PAGE {
                    if rng.chance(1, 2) {
                        let r = (page * PAGE).max(dirty.start)..((page + 1) * PAGE).min(dirty.end);
                        write(&mut out, r);
                    }
                }
            }
            _ => {
                // A torn prefix, then the rest of that sector garbled.
                let cut = tear_point(rng, &dirty).max(HEADER);
                write(&mut out, dirty.start..cut);
                let end = ((cut / SECTOR + 1) * SECTOR).min(dirty.end).min(out.len());
                for b in out.iter_mut().take(end).skip(cut) {
                    *b = rng.next_u64() as u8;
                }
            }
        }
        out
    }
}

/// A point in `dirty` where a write tore: any byte, but never inside the file header (see
/// [`HEADER`]).
fn tear_point(rng: &mut Rng, dirty: &Range<usize>) -> usize {
    let cut = rng.between(dirty.start, dirty.end);
    if cut < HEADER { dirty.start } else { cut }
}

/// A change to a directory's entries, kept until the directory is synced.
#[derive(Clone, Debug)]
enum DirOp {
    Link(String, u64),
    Unlink(String),
    Rename(String, String),
}

impl DirOp {
    fn apply(&self, entries: &mut BTreeMap<String, u64>) {
        match self {
            DirOp::Link(name, ino) => {
                entries.insert(name.clone(), *ino);
            }
            DirOp::Unlink(name) => {
                entries.remove(name);
            }
            DirOp::Rename(from, to) => {
                if let Some(ino) = entries.remove(from) {
                    entries.insert(to.clone(), ino);
                }
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Dir {
    live: BTreeMap<String, u64>,
    durable: BTreeMap<String, u64>,
    /// Changes since the last `sync_dir`, oldest first: `durable` + these = `live`.
    pending: Vec<DirOp>,
}

/// Files and directories. Directories themselves (`create_dir_all`) are durable at once: the
/// engine never removes one, and the database directory existing is not what is under test.
#[derive(Clone, Debug, Default)]
struct Disk {
    inodes: BTreeMap<u64, Inode>,
    dirs: BTreeMap<PathBuf, Dir>,
    next_ino: u64,
}

fn not_found(what: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{what} {}: no such file or directory", path.display()),
    )
}

/// Parent directory and file name of `path`.
fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let parent = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    Ok((parent, name.to_owned()))
}

impl Disk {
    fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs
            .get_mut(dir)
            .ok_or_else(|| not_found("directory", dir))
    }

    fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        self.dirs
            .get(&dir)
            .and_then(|d| d.live.get(&name))
            .copied()
            .ok_or_else(|| not_found("file", path))
    }

    fn link(&mut self, path: &Path, ino: u64) -> io::Result<()> {
        let (dir, name) = split(path)?;
        let d = self.dir_mut(&dir)?;
        if d.live.contains_key(&name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", path.display()),
            ));
        }
        d.live.insert(name.clone(), ino);
        d.pending.push(DirOp::Link(name, ino));
        Ok(())
    }

    fn after_power_loss(&self, rng: &mut Rng, tear: Tear) -> (Disk, CrashStats) {
        let mut stats = CrashStats::default();
        let mut out = Disk {
            next_ino: self.next_ino,
            ..Disk::default()
        };
        for (path, dir) in &self.dirs {
            let keep = match tear {
                Tear::None | Tear::LoseFirstDirtyPage => 0,
                Tear::Random => rng.between(0, dir.pending.len()),
            };
            stats.entries_kept += keep as u64;
            stats.entries_lost += (dir.pending.len() - keep) as u64;
            let mut entries = dir.durable.clone();
            for op in &dir.pending[..keep] {
                op.apply(&mut entries);
            }
            out.dirs.insert(
                path.clone(),
                Dir {
                    live: entries.clone(),
                    durable: entries,
                    pending: Vec::new(),
                },
            );
        }
        let referenced: BTreeSet<u64> = out
            .dirs
            .values()
            .flat_map(|d| d.live.values().copied())
            .collect();
        for ino in referenced {
            let node = &self.inodes[&ino];
            let image = node.after_power_loss(rng, tear);
            let n = image.len().max(node.data.len());
            stats.bytes_lost += (0..n)
                .filter(|&p| byte(&image, p) != byte(&node.data, p))
                .count() as u64
                + image.len().abs_diff(node.data.len()) as u64;
            if image != node.durable && image != node.data {
                stats.files_torn += 1;
            }
            out.inodes.insert(
                ino,
                Inode {
                    data: image.clone(),
                    durable: image,
                    lost: Vec::new(),
                },
            );
        }
        (out, stats)
    }
}

#[derive(Debug, Default)]
struct Fs {
    disk: Disk,
    locks: BTreeSet<PathBuf>,
    fault: Fault,
    lie: Lie,
    calls: u64,
    reads: u64,
    mutations: u64,
    failed: Option<FailedCall>,
    /// Set by a power cut: the disk at that instant.
    cut: Option<Disk>,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

impl Fs {
    /// Counts a call and applies the fault plan to it.
    fn enter(
        &mut self,
        call: Call,
        path: &Path,
        mode: Option<OpenMode>,
        ino: Option<u64>,
    ) -> io::Result<()> {
        let number = self.calls;
        self.calls += 1;
        let read = self.reads;
        let non_read = number - read;
        if call == Call::Read {
            self.reads += 1;
        }
        let mutation = self.mutations;
        if call.mutates() {
            self.mutations += 1;
        }
        if self.cut.is_some() {
            return Err(eio());
        }
        let fail = match self.fault {
            Fault::FailCall(n) => n == number,
            Fault::FailRead(n) => call == Call::Read && n == read,
            Fault::FailNonRead(n) => call != Call::Read && n == non_read,
            Fault::None | Fault::PowerCut(_) => false,
        };
        match self.fault {
            _ if fail => {
                self.failed = Some(FailedCall {
                    number,
                    call,
                    path: path.to_path_buf(),
                    mode,
                    durable_len: ino.map(|i| self.disk.inodes[&i].durable.len() as u64),
                });
                Err(eio())
            }
            Fault::PowerCut(n) if call.mutates() && n == mutation => {
                self.cut = Some(self.disk.clone());
                Err(eio())
            }
            _ => Ok(()),
        }
    }
}

/// An in-memory [`Vfs`] that knows what a power loss would keep. Cheap to clone: clones share
/// the same storage.
#[derive(Clone, Default)]
pub(crate) struct SimVfs {
    fs: Arc<Mutex<Fs>>,
}

impl std::fmt::Debug for SimVfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimVfs")
    }
}

impl SimVfs {
    pub(crate) fn new() -> Self {
        SimVfs::default()
    }

    fn from_disk(disk: Disk) -> Self {
        SimVfs {
            fs: Arc::new(Mutex::new(Fs {
                disk,
                ..Fs::default()
            })),
        }
    }

    /// `opts` with this file system plugged in.
    pub(crate) fn options(&self, opts: Options) -> Options {
        Options {
            vfs: Some(Arc::new(self.clone())),
            ..opts
        }
    }

    /// Sets the fault plan and restarts the call counters.
    pub(crate) fn set_fault(&self, fault: Fault) {
        let mut fs = self.fs.lock();
        fs.fault = fault;
        fs.calls = 0;
        fs.reads = 0;
        fs.mutations = 0;
        fs.failed = None;
    }

    pub(crate) fn set_lie(&self, lie: Lie) {
        self.fs.lock().lie = lie;
    }

    /// Calls so far (all, and mutating ones) since the fault plan was set.
    pub(crate) fn calls(&self) -> (u64, u64) {
        let fs = self.fs.lock();
        (fs.calls, fs.mutations)
    }

    pub(crate) fn failed(&self) -> Option<FailedCall> {
        self.fs.lock().failed.clone()
    }

    /// Whether a power cut happened.
    pub(crate) fn is_down(&self) -> bool {
        self.fs.lock().cut.is_some()
    }

    /// An independent copy of the storage as it is now (written and durable bytes alike).
    pub(crate) fn fork(&self) -> SimVfs {
        SimVfs::from_disk(self.fs.lock().disk.clone())
    }

    /// A new file system holding what a power loss now — or at the power cut, if there was one
    /// — leaves on disk.
    pub(crate) fn crash(&self, rng: &mut Rng, tear: Tear) -> (SimVfs, CrashStats) {
        let fs = self.fs.lock();
        let disk = fs.cut.as_ref().unwrap_or(&fs.disk);
        let (disk, stats) = disk.after_power_loss(rng, tear);
        (SimVfs::from_disk(disk), stats)
    }

    /// Names in `dir`, for tests.
    pub(crate) fn names(&self, dir: &Path) -> Vec<String> {
        let fs = self.fs.lock();
        fs.disk
            .dirs
            .get(dir)
            .map(|d| d.live.keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Holds a simulated `flock` until dropped.
struct LockGuard {
    fs: Arc<Mutex<Fs>>,
    path: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.fs.lock().locks.remove(&self.path);
    }
}

impl Vfs for SimVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.enter(Call::CreateDirAll, path, None, None)?;
        for dir in path.ancestors() {
            fs.disk.dirs.entry(dir.to_path_buf()).or_default();
        }
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut fs = self.fs.lock();
        fs.enter(Call::List, dir, None, None)?;
        Ok(fs.disk.dir_mut(dir)?.live.keys().cloned().collect())
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send + Sync>>> {
        let mut fs = self.fs.lock();
        fs.enter(Call::Lock, path, None, None)?;
        if !fs.locks.insert(path.to_path_buf()) {
            return Ok(None);
        }
        Ok(Some(Box::new(LockGuard {
            fs: self.fs.clone(),
            path: path.to_path_buf(),
        })))
    }

    fn create(&self, path: &Path, capacity: u64) -> io::Result<Box<dyn LogFile>> {
        let mut fs = self.fs.lock();
        fs.enter(Call::Create, path, None, None)?;
        let ino = fs.disk.next_ino;
        fs.disk.link(path, ino)?;
        fs.disk.next_ino += 1;
        fs.disk.inodes.insert(ino, Inode::default());
        Ok(Box::new(SimFile {
            fs: self.fs.clone(),
            ino,
            path: path.to_path_buf(),
            writable: true,
            capacity,
            len: AtomicU64::new(0),
        }))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn LogFile>> {
        let mut fs = self.fs.lock();
        fs.enter(Call::Open, path, Some(mode), None)?;
        let ino = fs.disk.lookup(path)?;
        let len = fs.disk.inodes[&ino].data.len() as u64;
        let (writable, capacity) = match mode {
            OpenMode::ReadOnly => (false, len),
            OpenMode::Append { capacity } => (true, capacity.max(len)),
        };
        Ok(Box::new(SimFile {
            fs: self.fs.clone(),
            ino,
            path: path.to_path_buf(),
            writable,
            capacity,
            len: AtomicU64::new(len),
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.enter(Call::Remove, path, None, None)?;
        fs.disk.lookup(path)?;
        let (dir, name) = split(path)?;
        let d = fs.disk.dir_mut(&dir)?;
        d.live.remove(&name);
        d.pending.push(DirOp::Unlink(name));
        Ok(())
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.enter(Call::Rename, from, None, None)?;
        let ino = fs.disk.lookup(from)?;
        let (dir, from_name) = split(from)?;
        let (to_dir, to_name) = split(to)?;
        if dir != to_dir {
            return Err(io::Error::other(
                "rename across directories is not simulated",
            ));
        }
        let d = fs.disk.dir_mut(&dir)?;
        d.live.remove(&from_name);
        d.live.insert(to_name.clone(), ino);
        d.pending.push(DirOp::Rename(from_name, to_name));
        Ok(())
    }

    fn link_or_copy(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.enter(Call::LinkOrCopy, from, None, None)?;
        let ino = fs.disk.lookup(from)?;
        fs.disk.link(to, ino)
    }

    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        let mut fs = self.fs.lock();
        fs.enter(Call::AvailableSpace, dir, None, None)?;
        Ok(1 << 40)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.enter(Call::SyncDir, dir, None, None)?;
        let lie = fs.lie;
        let d = fs.disk.dir_mut(dir)?;
        if lie != Lie::SyncDir {
            d.durable = d.live.clone();
            d.pending.clear();
        }
        Ok(())
    }
}

/// An open file: its own length and capacity (like a mapping), the bytes in the shared inode.
struct SimFile {
    fs: Arc<Mutex<Fs>>,
    ino: u64,
    path: PathBuf,
    writable: bool,
    capacity: u64,
    len: AtomicU64,
}

impl SimFile {
    fn check_writable(&self) -> io::Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(io::Error::other("file is open read-only"))
        }
    }
}

impl LogFile for SimFile {
    fn len(&self) -> u64 {
        self.len.load(Ordering::SeqCst)
    }

    fn room(&self) -> u64 {
        self.capacity - self.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.enter(Call::Read, &self.path, None, Some(self.ino))?;
        let data = &fs.disk.inodes[&self.ino].data;
        let end = offset.checked_add(buf.len() as u64);
        if end.is_none_or(|end| end > self.len() || end > data.len() as u64) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!(
                    "read of {} bytes at offset {offset} passes the end of the file ({} bytes)",
                    buf.len(),
                    self.len()
                ),
            ));
        }
        buf.copy_from_slice(&data[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }

    fn append(&self, parts: &[&[u8]]) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.enter(Call::Append, &self.path, None, Some(self.ino))?;
        self.check_writable()?;
        let len = self.len();
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        let end = len + total;
        if end > self.capacity {
            return Err(io::Error::other(format!(
                "append of {total} bytes passes the file's capacity of {} bytes",
                self.capacity
            )));
        }
        let node = fs.disk.inodes.get_mut(&self.ino).expect("open inode");
        // Preallocation, as `StdVfs` does it: the file grows to its capacity, in zeros.
        if (node.data.len() as u64) < end {
            node.data.resize(self.capacity as usize, 0);
        }
        let mut at = len as usize;
        for part in parts {
            node.data[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        self.len.store(end, Ordering::SeqCst);
        Ok(())
    }

    fn sync(&self, _metadata: bool) -> io::Result<()> {
        let mut fs = self.fs.lock();
        if let Err(e) = fs.enter(Call::Sync, &self.path, None, Some(self.ino)) {
            if fs.cut.is_some() {
                return Err(e);
            }
            fs.disk
                .inodes
                .get_mut(&self.ino)
                .expect("open inode")
                .lose_dirty();
            return if fs.lie == Lie::FsyncErrorHidden {
                Ok(())
            } else {
                Err(e)
            };
        }
        self.check_writable()?;
        if fs.lie != Lie::Fsync {
            fs.disk
                .inodes
                .get_mut(&self.ino)
                .expect("open inode")
                .sync();
        }
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.enter(Call::Truncate, &self.path, None, Some(self.ino))?;
        self.check_writable()?;
        let node = fs.disk.inodes.get_mut(&self.ino).expect("open inode");
        let n = len as usize;
        node.data.resize(n, 0);
        node.lost.retain(|r| r.start < n);
        for r in &mut node.lost {
            r.end = r.end.min(n);
        }
        if len < self.len() {
            self.len.store(len, Ordering::SeqCst);
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The model and the workload
// ---------------------------------------------------------------------------------------------

pub(crate) fn key_name(i: usize) -> Vec<u8> {
    format!("key-{i:03}").into_bytes()
}

/// Expected contents: key → (value, expiry in ms, 0 = never), and the clock.
#[derive(Clone, Debug, Default)]
pub(crate) struct Model {
    map: BTreeMap<Vec<u8>, (Vec<u8>, u64)>,
    now: u64,
}

pub(crate) type State = BTreeMap<Vec<u8>, Vec<u8>>;

impl Model {
    pub(crate) fn new(now: u64) -> Self {
        Model {
            map: BTreeMap::new(),
            now,
        }
    }

    pub(crate) fn put(&mut self, key: Vec<u8>, value: Vec<u8>, ttl_ms: Option<u64>) {
        let expire_at = ttl_ms.map_or(0, |t| (self.now + t).max(1));
        self.map.insert(key, (value, expire_at));
    }

    pub(crate) fn delete(&mut self, key: &[u8]) {
        self.map.remove(key);
    }

    /// Whether `key` reads as present now.
    pub(crate) fn has(&self, key: &[u8]) -> bool {
        self.map
            .get(key)
            .is_some_and(|&(_, at)| at == 0 || at > self.now)
    }

    /// What reads return at `now`.
    pub(crate) fn visible(&self, now: u64) -> State {
        self.map
            .iter()
            .filter(|(_, (_, at))| *at == 0 || *at > now)
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }
}

/// Everything a database shows: iteration, `get` of each key of the key space, and `len` must
/// agree.
pub(crate) fn read_state(db: &Db, keyspace: usize) -> Result<State, String> {
    let mut state = State::new();
    for item in db.iter() {
        let (k, v) = item.map_err(|e| format!("iteration failed: {e}"))?;
        state.insert(k.to_vec(), v.to_vec());
    }
    for i in 0..keyspace {
        let k = key_name(i);
        let got = db
            .get(&k)
            .map_err(|e| format!("get {} failed: {e}", show(&k)))?;
        if got.as_deref() != state.get(&k).map(Vec::as_slice) {
            return Err(format!(
                "get and iteration disagree on {}: {:?} vs {:?}",
                show(&k),
                got.as_deref().map(show),
                state.get(&k).map(Vec::as_slice).map(show)
            ));
        }
    }
    if db.len() != state.len() {
        return Err(format!(
            "len() is {} but iteration returned {} keys",
            db.len(),
            state.len()
        ));
    }
    Ok(state)
}

/// A short printable form of a key or value.
pub(crate) fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(24)]).into_owned();
    if b.len() > 24 {
        format!("{s}…({} bytes)", b.len())
    } else {
        s
    }
}

/// The keys on which two states differ, described.
pub(crate) fn diff(got: &State, want: &State) -> String {
    let keys: BTreeSet<&Vec<u8>> = got.keys().chain(want.keys()).collect();
    let lines: Vec<String> = keys
        .into_iter()
        .filter(|k| got.get(*k) != want.get(*k))
        .take(8)
        .map(|k| {
            format!(
                "{}: database {:?}, model {:?}",
                show(k),
                got.get(k).map(Vec::as_slice).map(show),
                want.get(k).map(Vec::as_slice).map(show)
            )
        })
        .collect();
    lines.join("; ")
}

#[derive(Clone, Debug)]
enum BatchOp {
    Put {
        key: usize,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    Delete {
        key: usize,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Put {
        key: usize,
        value: Vec<u8>,
    },
    PutTtl {
        key: usize,
        value: Vec<u8>,
        ttl_ms: u64,
    },
    Delete {
        key: usize,
    },
    Batch(Vec<BatchOp>),
    Merge,
    /// Moves the manual clock forward: TTL keys expire.
    Advance(u64),
    /// Close (or kill the process, `clean: false`) and open again: the newest file is then
    /// reopened for appending, its preallocated tail cut first.
    Reopen {
        clean: bool,
    },
}

impl Op {
    fn short(&self) -> String {
        match self {
            Op::Put { key, value } => format!("put key-{key:03} ({} bytes)", value.len()),
            Op::PutTtl { key, value, ttl_ms } => {
                format!("put key-{key:03} ({} bytes) ttl {ttl_ms} ms", value.len())
            }
            Op::Delete { key } => format!("delete key-{key:03}"),
            Op::Batch(ops) => format!(
                "batch of {} ({} bytes)",
                ops.len(),
                ops.iter()
                    .map(|o| match o {
                        BatchOp::Put { value, .. } => value.len() + 12,
                        BatchOp::Delete { .. } => 12,
                    })
                    .sum::<usize>()
            ),
            Op::Merge => "merge".into(),
            Op::Advance(ms) => format!("advance clock {ms} ms"),
            Op::Reopen { clean } => format!("reopen (clean: {clean})"),
        }
    }

    fn apply_to(&self, model: &mut Model) {
        match self {
            Op::Put { key, value } => model.put(key_name(*key), value.clone(), None),
            Op::PutTtl { key, value, ttl_ms } => {
                model.put(key_name(*key), value.clone(), Some(*ttl_ms))
            }
            Op::Delete { key } => model.delete(&key_name(*key)),
            Op::Batch(ops) => {
                for o in ops {
                    match o {
                        BatchOp::Put { key, value, ttl_ms } => {
                            model.put(key_name(*key), value.clone(), *ttl_ms)
                        }
                        BatchOp::Delete { key } => model.delete(&key_name(*key)),
                    }
                }
            }
            Op::Advance(ms) => model.now += ms,
            Op::Merge | Op::Reopen { .. } => {}
        }
    }
}

/// A value unique to (operation, key), of about `len` bytes: a stale value coming back is
/// told apart from the right one.
fn value(op: usize, key: usize, len: usize) -> Vec<u8> {
    let mut v = format!("op{op}/key{key};").into_bytes();
    let mut x = (op as u8).wrapping_mul(31).wrapping_add(key as u8);
    while v.len() < len {
        v.push(b'a' + x % 26);
        x = x.wrapping_add(7);
    }
    v
}

fn value_len(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=69 => rng.between(0, 40),
        70..=94 => rng.between(40, 400),
        // Several pages: a power loss can keep some of its pages and lose others.
        _ => rng.between(3000, 9000),
    }
}

/// One randomized workload.
struct Plan {
    data_file_size: u64,
    keyspace: usize,
    ops: Vec<Op>,
}

const CLOCK_START: u64 = 1_000_000;

fn plan(rng: &mut Rng) -> Plan {
    let keyspace = [4, 16, 48][rng.below(3) as usize];
    // Small files rotate every record or few; 16 KiB ones span pages.
    let data_file_size = [64, 200, 1024, 4096, 16384][rng.below(5) as usize];
    let n = rng.between(5, 90);
    let mut ops = Vec::with_capacity(n);
    for i in 0..n {
        let key = rng.below(keyspace as u64) as usize;
        let op = match rng.below(100) {
            0..=41 => Op::Put {
                key,
                value: value(i, key, value_len(rng)),
            },
            42..=49 => Op::PutTtl {
                key,
                value: value(i, key, value_len(rng)),
                ttl_ms: [0, 50, 1_000_000][rng.below(3) as usize],
            },
            50..=67 => Op::Delete { key },
            68..=81 => {
                let mut batch = Vec::new();
                for _ in 0..rng.between(2, 6) {
                    let key = rng.below(keyspace as u64) as usize;
                    batch.push(if rng.chance(1, 3) {
                        BatchOp::Delete { key }
                    } else {
                        BatchOp::Put {
                            key,
                            value: value(i, key, value_len(rng)),
                            ttl_ms: rng.chance(1, 6).then_some(40),
                        }
                    });
                }
                Op::Batch(batch)
            }
            82..=89 => Op::Merge,
            90..=94 => Op::Advance(30),
            _ => Op::Reopen {
                clean: rng.chance(1, 2),
            },
        };
        ops.push(op);
    }
    Plan {
        data_file_size,
        keyspace,
        ops,
    }
}

fn db_options(sim: &SimVfs, data_file_size: u64, clock: &Arc<ManualClock>) -> Options {
    sim.options(
        Options::default()
            .data_file_size(data_file_size)
            .sync(SyncPolicy::Always)
            .auto_merge(false)
            .clock(clock.clone()),
    )
}

/// Runs `op`; `Err` is the engine's error, as text. Checks what `delete` returns on the way.
fn run_op(
    db: &mut Option<Db>,
    op: &Op,
    model: &Model,
    clock: &ManualClock,
    reopen: &dyn Fn() -> crate::Result<Db>,
) -> Result<(), String> {
    let d = db.as_ref().expect("the database is open");
    let r = match op {
        Op::Put { key, value } => d.put(key_name(*key), value),
        Op::PutTtl { key, value, ttl_ms } => {
            d.put_with_ttl(key_name(*key), value, Duration::from_millis(*ttl_ms))
        }
        Op::Delete { key } => {
            let k = key_name(*key);
            match d.delete(&k) {
                Ok(existed) if existed != model.has(&k) => {
                    return Err(format!(
                        "delete {} returned {existed}, the model says {}",
                        show(&k),
                        model.has(&k)
                    ));
                }
                other => other.map(|_| ()),
            }
        }
        Op::Batch(ops) => {
            let mut b = d.batch();
            for o in ops {
                match o {
                    BatchOp::Put {
                        key,
                        value,
                        ttl_ms: None,
                    } => b.put(key_name(*key), value),
                    BatchOp::Put {
                        key,
                        value,
                        ttl_ms: Some(t),
                    } => b.put_with_ttl(key_name(*key), value, Duration::from_millis(*t)),
                    BatchOp::Delete { key } => b.delete(key_name(*key)),
                };
            }
            b.commit()
        }
        Op::Merge => d.merge().map(|_| ()),
        Op::Advance(ms) => {
            clock.advance(Duration::from_millis(*ms));
            Ok(())
        }
        Op::Reopen { clean } => {
            let old = db.take().expect("open");
            if *clean {
                old.close().map_err(|e| e.to_string())?;
            } else {
                old.crash();
            }
            *db = Some(reopen().map_err(|e| e.to_string())?);
            Ok(())
        }
    };
    r.map_err(|e| e.to_string())
}

/// What one round saw.
#[derive(Debug, Default)]
struct RoundReport {
    /// The power failed in the middle of an operation.
    mid_op: bool,
    /// Whether the operation in flight turned out applied after the crash (`None`: no
    /// operation in flight, or one that changes nothing).
    in_flight_survived: Option<bool>,
    stats: CrashStats,
    ops_done: usize,
}

/// One round: a workload from `seed`, a power loss at a random point, a reopen, the checks.
/// `Err` describes what went wrong, with what is needed to replay it.
fn round(seed: u64, lie: Lie) -> Result<RoundReport, String> {
    let mut rng = Rng::new(seed);
    let plan = plan(&mut rng);
    let clock = Arc::new(ManualClock::new(CLOCK_START));
    let sim = SimVfs::new();
    sim.set_lie(lie);
    let dir = Path::new("/sim/db");
    let opts = |s: &SimVfs| db_options(s, plan.data_file_size, &clock);
    let ctx = |what: String| {
        format!(
            "seed {seed} (data_file_size {}, {} ops): {what}",
            plan.data_file_size,
            plan.ops.len()
        )
    };
    let reopen_live = || opts(&sim).open(dir);
    let mut db = Some(reopen_live().map_err(|e| ctx(format!("first open: {e}")))?);

    // Where the power fails: before operation `stop`, or `after` mutating calls into it.
    let stop = rng.between(0, plan.ops.len());
    let mid_op = rng.chance(2, 3);
    let far = rng.chance(1, 4);
    let after = rng.below(if far { 60 } else { 10 });
    let mut model = Model::new(CLOCK_START);
    let mut done = 0;
    let mut in_flight = None;
    for (i, op) in plan.ops.iter().enumerate() {
        if i == stop {
            if !mid_op {
                break;
            }
            sim.set_fault(Fault::PowerCut(after));
        }
        let result = run_op(&mut db, op, &model, &clock, &reopen_live);
        if sim.is_down() {
            // Whatever the call returned: the process died with the power.
            in_flight = Some(i);
            break;
        }
        if let Err(e) = result {
            return Err(ctx(format!(
                "op {i} ({}) failed with no fault: {e}",
                op.short()
            )));
        }
        op.apply_to(&mut model);
        done = i + 1;
    }

    let tear = if rng.chance(3, 4) {
        Tear::Random
    } else {
        Tear::None
    };
    let (crashed, stats) = sim.crash(&mut rng, tear);
    if let Some(db) = db.take() {
        db.crash();
    }
    let where_ = match in_flight {
        Some(i) => format!(
            "power cut {after} mutating calls into op {i} ({})",
            plan.ops[i].short()
        ),
        None => format!("power cut after op {done}"),
    };
    let ctx = |what: String| ctx(format!("{where_}, crash {tear:?} {stats:?}: {what}"));

    let db = opts(&crashed)
        .open(dir)
        .map_err(|e| ctx(format!("open after the crash failed: {e}")))?;
    let got = read_state(&db, plan.keyspace).map_err(&ctx)?;
    let now = clock.now_ms();
    let acked = model.visible(now);
    let mut report = RoundReport {
        mid_op: in_flight.is_some(),
        stats,
        ops_done: done,
        ..RoundReport::default()
    };
    if got != acked {
        let with_in_flight = in_flight.map(|i| {
            let mut m = model.clone();
            plan.ops[i].apply_to(&mut m);
            m.visible(now)
        });
        match with_in_flight {
            Some(state) if state == got => report.in_flight_survived = Some(true),
            Some(state) => {
                return Err(ctx(format!(
                    "state is neither the acknowledged ops ({}) nor those plus the one in flight \
                     ({})",
                    diff(&got, &acked),
                    diff(&got, &state)
                )));
            }
            None => {
                return Err(ctx(format!(
                    "state differs from the acknowledged ops: {}",
                    diff(&got, &acked)
                )));
            }
        }
    } else if let Some(i) = in_flight {
        let mut m = model.clone();
        plan.ops[i].apply_to(&mut m);
        if m.visible(now) != acked {
            report.in_flight_survived = Some(false);
        }
    }

    // The recovered database goes on: a write, a clean close, and a reopen keep everything.
    db.put("after-crash", "x")
        .map_err(|e| ctx(format!("put after recovery: {e}")))?;
    db.close()
        .map_err(|e| ctx(format!("close after recovery: {e}")))?;
    let db = opts(&crashed)
        .open(dir)
        .map_err(|e| ctx(format!("second open after the crash failed: {e}")))?;
    let mut again = read_state(&db, plan.keyspace).map_err(&ctx)?;
    if again.remove(&b"after-crash"[..]).as_deref() != Some(&b"x"[..]) {
        return Err(ctx("the put after recovery was lost".into()));
    }
    if again != got {
        return Err(ctx(format!(
            "the second open changed the state: {}",
            diff(&again, &got)
        )));
    }
    db.close()
        .map_err(|e| ctx(format!("second close after recovery: {e}")))?;
    Ok(report)
}

/// Rounds of the default run; `CASKDB_SOAK_POWER_LOSS` overrides it.
const DEFAULT_ROUNDS: u64 = 1500;

/// Seeds that found a bug (a lost first page of a batch taken for corruption, fixed in
/// `recovery::classify`), replayed on their own as a regression test.
const KNOWN_BUG_SEEDS: [u64; 2] = [
    870,  // a batch at offset 3266 of a 16 KiB file: its page lost, page 2 kept
    5324, // a batch larger than the 4 KiB files, alone in its file: page 0 lost, page 1 kept
];

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
    )
}

#[test]
fn power_loss_at_random_points_keeps_every_acknowledged_write() {
    let seeds: Vec<u64> = match env_u64("CASKDB_POWER_LOSS_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("CASKDB_SOAK_POWER_LOSS").unwrap_or(DEFAULT_ROUNDS)).collect(),
    };
    let mut total = CrashStats::default();
    let (mut mid_op, mut survived, mut lost, mut ops) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for &seed in &seeds {
        match round(seed, Lie::None) {
            Ok(r) => {
                total.add(&r.stats);
                mid_op += u64::from(r.mid_op);
                survived += u64::from(r.in_flight_survived == Some(true));
                lost += u64::from(r.in_flight_survived == Some(false));
                ops += r.ops_done;
            }
            Err(e) => failures.push(e),
        }
    }
    eprintln!(
        "power loss: {} rounds ({} crashed mid-operation), {ops} acknowledged ops, in-flight op \
         kept {survived} / lost {lost} times; crashes dropped {} bytes and {} directory \
         changes, tore {} files",
        seeds.len(),
        mid_op,
        total.bytes_lost,
        total.entries_lost,
        total.files_torn
    );
    assert!(
        failures.is_empty(),
        "{} of {} rounds failed:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
    if seeds.len() >= 100 {
        // The simulation bites: if it kept unsynced data, none of these would happen, and the
        // rounds above would pass whatever the engine did about durability.
        assert!(total.bytes_lost > 0 && total.files_torn > 0, "{total:?}");
        assert!(
            total.entries_lost > 0 && total.entries_kept > 0,
            "{total:?}"
        );
        assert!(
            survived > 0 && lost > 0,
            "in-flight kept {survived}, lost {lost}"
        );
    }
}

#[test]
fn power_loss_rounds_of_known_bug_seeds() {
    for seed in KNOWN_BUG_SEEDS {
        round(seed, Lie::None).unwrap();
    }
}

/// The checks catch an engine that relies on a sync that does nothing: `round` must fail.
fn caught(lie: Lie) -> usize {
    (0..40).filter(|&seed| round(seed, lie).is_err()).count()
}

#[test]
fn power_loss_checks_catch_a_lying_fsync() {
    assert!(caught(Lie::Fsync) > 10);
}

#[test]
fn power_loss_checks_catch_a_lying_directory_sync() {
    assert!(caught(Lie::SyncDir) > 10);
}

/// Writes a record that ends just before the first page boundary, then — as one batch of two
/// puts, or as one large put — about 6 KB more, and cuts the power during that write's fsync
/// with every page of it on disk but the first. The write was not acknowledged, so the reopened
/// database must be as before it.
fn first_page_of_a_write_lost(batch: bool) -> Result<(), String> {
    let sim = SimVfs::new();
    let clock = Arc::new(ManualClock::new(CLOCK_START));
    let dir = Path::new("/sim/db");
    let db = db_options(&sim, 16384, &clock).open(dir).unwrap();
    db.put(key_name(0), value(0, 0, 4000)).unwrap();
    // The append is mutating call 0; the power fails before call 1, the fsync.
    sim.set_fault(Fault::PowerCut(1));
    let result = if batch {
        let mut b = db.batch();
        b.put(key_name(1), value(1, 1, 3000))
            .put(key_name(2), value(1, 2, 3000));
        b.commit()
    } else {
        db.put(key_name(1), value(1, 1, 6000))
    };
    assert!(result.is_err() && sim.is_down(), "{result:?}");
    let (crashed, stats) = sim.crash(&mut Rng::new(0), Tear::LoseFirstDirtyPage);
    assert!(stats.bytes_lost > 0);
    db.crash();
    let db = db_options(&crashed, 16384, &clock)
        .open(dir)
        .map_err(|e| format!("open failed: {e}"))?;
    let got = read_state(&db, 3)?;
    let want = State::from([(key_name(0), value(0, 0, 4000))]);
    if got != want {
        return Err(diff(&got, &want));
    }
    Ok(())
}

#[test]
fn power_loss_losing_the_first_page_of_a_large_put_is_crash_damage() {
    first_page_of_a_write_lost(false).unwrap();
}

#[test]
fn power_loss_losing_the_first_page_of_a_large_batch_is_crash_damage() {
    first_page_of_a_write_lost(true).unwrap();
}

// ---------------------------------------------------------------------------------------------
// The simulation itself
// ---------------------------------------------------------------------------------------------

fn read_all(vfs: &SimVfs, path: &Path) -> Vec<u8> {
    let f = vfs.open(path, OpenMode::ReadOnly).unwrap();
    let mut buf = vec![0; f.len() as usize];
    f.read_at(0, &mut buf).unwrap();
    buf
}

#[test]
fn power_loss_sim_keeps_only_what_was_synced() {
    let sim = SimVfs::new();
    let dir = Path::new("/d");
    sim.create_dir_all(dir).unwrap();
    let a = sim.create(&dir.join("a"), 64).unwrap();
    a.append(&[b"synced"]).unwrap();
    a.sync(false).unwrap();
    sim.sync_dir(dir).unwrap();
    a.append(&[b"+unsynced"]).unwrap();
    let b = sim.create(&dir.join("b"), 64).unwrap();
    b.append(&[b"b"]).unwrap();
    b.sync(true).unwrap(); // its bytes are durable, its name is not
    let c = sim.create(&dir.join("c"), 64).unwrap();
    c.append(&[b"c"]).unwrap();
    c.sync(true).unwrap();
    sim.rename(&dir.join("c"), &dir.join("c2")).unwrap();
    assert_eq!(sim.names(dir), ["a", "b", "c2"]);

    let (after, stats) = sim.crash(&mut Rng::new(1), Tear::None);
    assert_eq!(
        after.names(dir),
        ["a"],
        "unsynced creates and renames are gone"
    );
    let bytes = read_all(&after, &dir.join("a"));
    assert_eq!(&bytes[..6], b"synced");
    assert!(bytes[6..].iter().all(|&b| b == 0), "{bytes:?}");
    assert!(stats.bytes_lost > 0 && stats.entries_lost == 3, "{stats:?}");

    sim.sync_dir(dir).unwrap();
    sim.remove_file(&dir.join("b")).unwrap();
    let (after, _) = sim.crash(&mut Rng::new(1), Tear::None);
    assert_eq!(
        after.names(dir),
        ["a", "b", "c2"],
        "an unsynced remove is undone"
    );
    assert_eq!(&read_all(&after, &dir.join("c2"))[..1], b"c");
    assert!(sim.open(&dir.join("b"), OpenMode::ReadOnly).is_err());
}

#[test]
fn power_loss_sim_tears_only_unsynced_bytes_in_every_way() {
    let durable: Vec<u8> = (0..5000).map(|i| (i % 251) as u8 + 1).collect();
    let mut node = Inode {
        data: durable.clone(),
        durable: durable.clone(),
        lost: Vec::new(),
    };
    // A 9000-byte unsynced append, spanning three pages.
    node.data.extend((0..9000).map(|i| (i % 13) as u8 + 1));
    let (mut none, mut all, mut prefix, mut holes, mut garbage) = (0, 0, 0, 0, 0);
    let mut rng = Rng::new(7);
    for _ in 0..400 {
        let img = node.after_power_loss(&mut rng, Tear::Random);
        assert!(img.len() == 5000 || img.len() == 14000);
        assert_eq!(&img[..5000], &durable[..], "synced bytes are never torn");
        let tail = &img[5000..];
        let kept: Vec<bool> = (0..tail.len())
            .map(|p| tail[p] == node.data[5000 + p])
            .collect();
        let zero = |p: usize| tail[p] == 0;
        if tail.iter().all(|&b| b == 0) {
            none += 1;
        } else if img == node.data {
            all += 1;
        } else if let Some(first_lost) = kept.iter().position(|&k| !k) {
            let later_kept = (first_lost..tail.len()).any(|p| kept[p] && !zero(p));
            let junk = (first_lost..tail.len()).any(|p| !kept[p] && !zero(p));
            if junk {
                garbage += 1;
            } else if later_kept {
                holes += 1;
            } else {
                prefix += 1;
            }
        }
    }
    assert!(
        none > 0 && all > 0 && prefix > 0 && holes > 0 && garbage > 0,
        "none {none}, all {all}, prefix {prefix}, holes {holes}, garbage {garbage}"
    );
}

#[test]
fn power_loss_sim_loses_the_pages_of_a_failed_fsync_for_good() {
    let sim = SimVfs::new();
    let dir = Path::new("/d");
    sim.create_dir_all(dir).unwrap();
    let f = sim.create(&dir.join("f"), 64).unwrap();
    sim.sync_dir(dir).unwrap();
    f.append(&[b"one"]).unwrap();
    f.sync(false).unwrap();
    f.append(&[b"two"]).unwrap();
    sim.set_fault(Fault::FailCall(0));
    assert_eq!(f.sync(false).unwrap_err().raw_os_error(), Some(libc::EIO));
    let failed = sim.failed().unwrap();
    assert_eq!((failed.call, failed.durable_len), (Call::Sync, Some(64)));
    f.append(&[b"three"]).unwrap();
    f.sync(false).unwrap();
    let mut buf = [0; 11];
    f.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"onetwothree", "reads still see the dropped pages");
    let (after, _) = sim.crash(&mut Rng::new(1), Tear::Random);
    let bytes = read_all(&after, &dir.join("f"));
    assert_eq!(
        &bytes[..11],
        b"one\0\0\0three",
        "later syncs do not write them"
    );
}

#[test]
fn power_loss_sim_keeps_the_vfs_contracts() {
    let sim = SimVfs::new();
    let dir = Path::new("/d");
    sim.create_dir_all(dir).unwrap();
    let missing = sim.open(&dir.join("x"), OpenMode::ReadOnly).err().unwrap();
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    let f = sim.create(&dir.join("f"), 10).unwrap();
    let again = sim.create(&dir.join("f"), 10).err().unwrap();
    assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
    f.append(&[b"hello", b" "]).unwrap();
    assert_eq!((f.len(), f.room()), (6, 4));
    assert!(f.append(&[b"world"]).is_err(), "past the capacity");
    assert_eq!(f.len(), 6, "a failed append shows nothing");
    let mut buf = [0; 5];
    let eof = f.read_at(2, &mut buf).unwrap_err();
    assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
    f.truncate(6).unwrap();
    let r = sim.open(&dir.join("f"), OpenMode::ReadOnly).unwrap();
    assert_eq!(r.len(), 6);
    assert!(r.append(&[b"x"]).is_err(), "read-only");
    let lock = dir.join("LOCK");
    let first = sim.try_lock(&lock).unwrap();
    assert!(first.is_some());
    assert!(sim.try_lock(&lock).unwrap().is_none());
    drop(first);
    assert!(sim.try_lock(&lock).unwrap().is_some());
}
