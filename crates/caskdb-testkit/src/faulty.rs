//! Fault injection on the real file system: a [`Vfs`] over [`StdVfs`] that fails fsyncs, file
//! creations, removals, or the n-th call of one operation, and reports free space as told.

use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use caskdb::{LogFile, OpenMode, Options, StdVfs, Vfs};
use parking_lot::Mutex;

/// What a [`faulty`] file system makes fail; tests change it while the database runs.
#[derive(Debug, Default)]
pub struct Faults {
    /// Every `sync` fails with EIO.
    pub fail_sync: AtomicBool,
    /// Upcoming `create` calls to fail after the file exists (like a failed header write).
    pub fail_creates: AtomicUsize,
    /// Every `remove_file` fails with EIO.
    pub fail_remove: AtomicBool,
    /// Told about every successful `sync`.
    pub syncs: Mutex<Option<mpsc::Sender<()>>>,
    /// Free space to report instead of the real figure.
    pub free_space: Mutex<Option<u64>>,
    /// One armed failure: the call of this operation after that many more successes fails.
    armed: Mutex<Option<(Op, usize)>>,
}

/// File-system operations a test can make fail once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `Vfs::create`.
    Create,
    /// `Vfs::open`.
    Open,
    /// `Vfs::rename`.
    Rename,
    /// `Vfs::remove_file`.
    Remove,
    /// `Vfs::sync_dir`.
    SyncDir,
}

impl Faults {
    /// Makes the call of `op` after `after` more successful ones fail (once).
    pub fn arm(&self, op: Op, after: usize) {
        *self.armed.lock() = Some((op, after));
    }

    /// Whether this call of `op` is the one to fail.
    fn trip(&self, op: Op) -> io::Result<()> {
        let mut armed = self.armed.lock();
        match &mut *armed {
            Some((o, 0)) if *o == op => {
                *armed = None;
                Err(io::Error::from_raw_os_error(libc::EIO))
            }
            Some((o, n)) if *o == op => {
                *n -= 1;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Whether the armed failure has happened.
    pub fn tripped(&self) -> bool {
        self.armed.lock().is_none()
    }
}

#[derive(Debug)]
struct FaultVfs {
    faults: Arc<Faults>,
}

struct FaultFile {
    inner: Box<dyn LogFile>,
    faults: Arc<Faults>,
}

fn enospc() -> io::Error {
    io::Error::from_raw_os_error(libc::ENOSPC)
}

impl Vfs for FaultVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        StdVfs.create_dir_all(path)
    }
    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        StdVfs.list(dir)
    }
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn std::any::Any + Send + Sync>>> {
        StdVfs.try_lock(path)
    }
    fn create(&self, path: &Path, capacity: u64) -> io::Result<Box<dyn LogFile>> {
        self.faults.trip(Op::Create)?;
        let file = StdVfs.create(path, capacity)?;
        let fail = self
            .faults
            .fail_creates
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Err(enospc());
        }
        Ok(Box::new(FaultFile {
            inner: file,
            faults: self.faults.clone(),
        }))
    }
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn LogFile>> {
        self.faults.trip(Op::Open)?;
        Ok(Box::new(FaultFile {
            inner: StdVfs.open(path, mode)?,
            faults: self.faults.clone(),
        }))
    }
    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.faults.trip(Op::Remove)?;
        if self.faults.fail_remove.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        StdVfs.remove_file(path)
    }
    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        self.faults.trip(Op::SyncDir)?;
        StdVfs.sync_dir(dir)
    }
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.faults.trip(Op::Rename)?;
        StdVfs.rename(from, to)
    }
    fn link_or_copy(&self, from: &Path, to: &Path) -> io::Result<()> {
        StdVfs.link_or_copy(from, to)
    }
    fn exists(&self, path: &Path) -> bool {
        StdVfs.exists(path)
    }
    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        StdVfs.remove_dir_all(path)
    }
    fn canonicalize(&self, path: &Path) -> io::Result<std::path::PathBuf> {
        StdVfs.canonicalize(path)
    }
    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        match *self.faults.free_space.lock() {
            Some(n) => Ok(n),
            None => StdVfs.available_space(dir),
        }
    }
}

impl LogFile for FaultFile {
    fn len(&self) -> u64 {
        self.inner.len()
    }
    fn capacity(&self) -> u64 {
        self.inner.capacity()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.inner.read_at(offset, buf)
    }
    fn allocate(&self, end: u64) -> io::Result<()> {
        self.inner.allocate(end)
    }
    fn is_damaged(&self) -> bool {
        self.inner.is_damaged()
    }
    fn append(&self, parts: &[&[u8]]) -> io::Result<()> {
        self.inner.append(parts)
    }
    fn sync(&self, metadata: bool) -> io::Result<()> {
        if self.faults.fail_sync.load(Ordering::SeqCst) {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        self.inner.sync(metadata)?;
        if let Some(tx) = &*self.faults.syncs.lock() {
            let _ = tx.send(());
        }
        Ok(())
    }
    fn truncate(&self, len: u64) -> io::Result<()> {
        self.inner.truncate(len)
    }
}

/// `opts` on the real file system behind a layer that fails what the returned [`Faults`] say.
pub fn faulty(opts: Options) -> (Options, Arc<Faults>) {
    let faults = Arc::new(Faults::default());
    let vfs = Arc::new(FaultVfs {
        faults: faults.clone(),
    });
    (opts.vfs(vfs), faults)
}
