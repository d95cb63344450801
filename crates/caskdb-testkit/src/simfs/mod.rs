//! A simulated file system for power-loss and fault tests (and the fuzz harnesses, which need a
//! disk without I/O). [`SimVfs`] is an in-memory [`Vfs`] that tracks what is durable (bytes
//! made so by `LogFile::sync`, directory entries by `Vfs::sync_dir`) apart from what was merely
//! written; [`SimVfs::crash`] returns what a power loss leaves, and a [`Fault`] plan makes any
//! one call fail or cuts the power before it.
//!
//! The real file system cannot test this: its page cache survives a killed process, so only a
//! simulated power loss drops what was never made durable.

mod disk;

use std::any::Any;
use std::collections::BTreeSet;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use caskdb::{LogFile, OpenMode, Options, Vfs, check_append, check_read};
use parking_lot::Mutex;

pub use disk::{CrashStats, Tear};
use disk::{DirOp, Disk, Inode, not_found, split};

use crate::rng::Rng;

/// File-system calls, as counted by a [`Fault`] plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// `Vfs::create_dir_all`.
    CreateDirAll,
    /// `Vfs::list`.
    List,
    /// `Vfs::try_lock`.
    Lock,
    /// `Vfs::create`.
    Create,
    /// `Vfs::open`.
    Open,
    /// `Vfs::remove_file`.
    Remove,
    /// `Vfs::rename`.
    Rename,
    /// `Vfs::link_or_copy`.
    LinkOrCopy,
    /// `Vfs::available_space`.
    AvailableSpace,
    /// `Vfs::sync_dir`.
    SyncDir,
    /// `LogFile::read_at`.
    Read,
    /// `LogFile::append`.
    Append,
    /// `LogFile::sync`.
    Sync,
    /// `LogFile::truncate`.
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
pub struct FailedCall {
    /// Its number among all calls since the plan was set (0-based), reads included.
    pub number: u64,
    /// Which call.
    pub call: Call,
    /// The path it was about.
    pub path: PathBuf,
    /// For `open`: the mode.
    pub mode: Option<OpenMode>,
    /// For a call on an open file: how many of its bytes were durable then.
    pub durable_len: Option<u64>,
}

impl FailedCall {
    /// The file name of the path the call was about.
    pub fn file_name(&self) -> String {
        self.path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }
}

/// What goes wrong, and when.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Nothing fails.
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
pub enum Lie {
    /// Every call tells the truth.
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
pub struct SimVfs {
    fs: Arc<Mutex<Fs>>,
}

impl std::fmt::Debug for SimVfs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SimVfs")
    }
}

impl SimVfs {
    /// An empty file system.
    pub fn new() -> Self {
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
    pub fn options(&self, opts: Options) -> Options {
        opts.vfs(Arc::new(self.clone()))
    }

    /// Sets the fault plan and restarts the call counters.
    pub fn set_fault(&self, fault: Fault) {
        let mut fs = self.fs.lock();
        fs.fault = fault;
        fs.calls = 0;
        fs.reads = 0;
        fs.mutations = 0;
        fs.failed = None;
    }

    /// Makes the file system lie as `lie` says.
    pub fn set_lie(&self, lie: Lie) {
        self.fs.lock().lie = lie;
    }

    /// Calls so far (all, and mutating ones) since the fault plan was set.
    pub fn calls(&self) -> (u64, u64) {
        let fs = self.fs.lock();
        (fs.calls, fs.mutations)
    }

    /// The call the fault plan made fail, if it happened.
    pub fn failed(&self) -> Option<FailedCall> {
        self.fs.lock().failed.clone()
    }

    /// Whether a power cut happened.
    pub fn is_down(&self) -> bool {
        self.fs.lock().cut.is_some()
    }

    /// An independent copy of the storage as it is now (written and durable bytes alike).
    pub fn fork(&self) -> SimVfs {
        SimVfs::from_disk(self.fs.lock().disk.clone())
    }

    /// A new file system holding what a power loss now — or at the power cut, if there was one
    /// — leaves on disk.
    pub fn crash(&self, rng: &mut Rng, tear: Tear) -> (SimVfs, CrashStats) {
        let fs = self.fs.lock();
        let disk = fs.cut.as_ref().unwrap_or(&fs.disk);
        let (disk, stats) = disk.after_power_loss(rng, tear);
        (SimVfs::from_disk(disk), stats)
    }

    /// Puts a file holding `bytes` at `path` (replacing any), durably, creating its
    /// directories: a disk prepared by hand, before any use.
    ///
    /// # Panics
    /// If the directory has entry changes not yet synced (a crash would replay them over it).
    pub fn put(&self, path: &Path, bytes: Vec<u8>) {
        let mut fs = self.fs.lock();
        let (dir, name) = split(path).expect("a file path");
        for d in dir.ancestors() {
            fs.disk.dirs.entry(d.to_path_buf()).or_default();
        }
        let ino = fs.disk.next_ino;
        fs.disk.next_ino += 1;
        fs.disk.inodes.insert(
            ino,
            Inode {
                data: bytes.clone(),
                durable: bytes,
                lost: Vec::new(),
            },
        );
        let d = fs.disk.dir_mut(&dir).expect("just made");
        assert!(
            d.pending.is_empty(),
            "put into a directory with unsynced changes"
        );
        d.live.insert(name.clone(), ino);
        d.durable.insert(name, ino);
    }

    /// The bytes of the file at `path` on the simulated disk, or `None` if there is none. A file
    /// appended to holds its preallocated space too (zeros up to its capacity), as on disk.
    pub fn read(&self, path: &Path) -> Option<Vec<u8>> {
        let fs = self.fs.lock();
        let ino = fs.disk.lookup(path).ok()?;
        Some(fs.disk.inodes[&ino].data.clone())
    }

    /// Names in `dir`, for tests.
    pub fn names(&self, dir: &Path) -> Vec<String> {
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

    // The three below are not counted by fault plans: only backup and check call them.

    fn exists(&self, path: &Path) -> bool {
        let fs = self.fs.lock();
        fs.disk.dirs.contains_key(path) || fs.disk.lookup(path).is_ok()
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut fs = self.fs.lock();
        if !fs.disk.dirs.contains_key(path) {
            return Err(not_found("directory", path));
        }
        // Directories are durable at once (see `Disk`): so is their removal.
        fs.disk.dirs.retain(|d, _| !d.starts_with(path));
        Ok(())
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        // No links here: resolving `.` and `..` is all there is to it.
        let mut out = PathBuf::from("/");
        for c in path.components() {
            match c {
                Component::ParentDir => {
                    out.pop();
                }
                Component::Normal(name) => out.push(name),
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        Ok(out)
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

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.enter(Call::Read, &self.path, None, Some(self.ino))?;
        let data = &fs.disk.inodes[&self.ino].data;
        check_read(offset, buf.len(), self.len().min(data.len() as u64))?;
        buf.copy_from_slice(&data[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }

    fn append(&self, parts: &[&[u8]]) -> io::Result<()> {
        let mut fs = self.fs.lock();
        fs.enter(Call::Append, &self.path, None, Some(self.ino))?;
        self.check_writable()?;
        let len = self.len();
        let end = check_append(len, parts, self.capacity)?;
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
