//! The engine's only door to the file system.
//!
//! Every byte the engine reads or writes, every file it creates and every directory it syncs goes
//! through [`Vfs`] and [`LogFile`]. The standard implementation ([`StdVfs`]) memory-maps data
//! files; a fault-injecting implementation can replace it in tests without touching the engine.

use std::any::Any;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use memmap2::{MmapOptions, MmapRaw};

#[cfg(unix)]
mod guard;

/// File-system operations the engine needs.
pub trait Vfs: Send + Sync + std::fmt::Debug + 'static {
    /// Creates `path` and its parents if missing.
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Names of the entries in `dir` (names that are not UTF-8 are skipped).
    fn list(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Takes an exclusive advisory lock on `path` (created if missing). `Ok(None)` when someone
    /// else holds it. The lock lasts as long as the returned guard.
    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send + Sync>>>;
    /// Creates a new, empty file that can grow to `capacity` bytes. Fails if it exists.
    fn create(&self, path: &Path, capacity: u64) -> io::Result<Box<dyn LogFile>>;
    /// Opens an existing file, read-only or for appending up to `capacity` bytes.
    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn LogFile>>;
    /// Removes a file.
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Renames a file, atomically replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Makes `to` a copy of the file `from` that will not change when `from` is removed: a hard
    /// link where possible, else a copy; durable either way (the directory is synced by the
    /// caller).
    fn link_or_copy(&self, from: &Path, to: &Path) -> io::Result<()>;
    /// Bytes an unprivileged writer can still allocate on the file system holding `dir`.
    fn available_space(&self, dir: &Path) -> io::Result<u64>;
    /// Makes the creation, renaming or removal of entries of `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Whether anything (a file or a directory) exists at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Removes the directory `path` and everything in it (a failed backup's half-made copy).
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// The absolute form of `path` with every link resolved, to tell whether two paths name
    /// the same directory.
    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf>;
}

/// How [`Vfs::open`] opens a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenMode {
    /// Sealed files: reads only.
    ReadOnly,
    /// The active file: reads and appends, up to `capacity` bytes (at least its current length).
    Append {
        /// Bytes the file may grow to.
        capacity: u64,
    },
}

/// One log file: positional reads from any thread, appends from one thread at a time.
///
/// Contract (callers uphold it; the engine does): appends are serialized by the writer lock, and
/// `truncate` below `len()` happens only while no reader can hold an offset past the new length
/// (during recovery, before the database is shared).
pub trait LogFile: Send + Sync {
    /// Bytes readable: everything appended (or present when opened).
    fn len(&self) -> u64;
    /// Whether the file holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Bytes the file can hold in all: its length plus what can still be appended.
    fn capacity(&self) -> u64;
    /// Bytes that can still be appended.
    fn room(&self) -> u64 {
        self.capacity().saturating_sub(self.len())
    }
    /// Fills `buf` from `offset`; fails with `UnexpectedEof` if the range passes `len()`.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Makes sure appends up to `end` bytes (at most `capacity()`) will find disk space,
    /// reserving it now: a full disk fails here rather than part-way through a write. The
    /// default reserves nothing, for files that cannot run out of space or say so from
    /// `append`.
    fn allocate(&self, end: u64) -> io::Result<()> {
        let _ = end;
        Ok(())
    }
    /// Whether a page of the file could not be read (it then takes no appends: the writer
    /// moves on to a new file). The default: never.
    fn is_damaged(&self) -> bool {
        false
    }
    /// Appends the concatenation of `parts`. Callers serialize appends. On error nothing is
    /// visible: `len()` is unchanged.
    fn append(&self, parts: &[&[u8]]) -> io::Result<()>;
    /// Forces appended bytes to stable storage (`fdatasync`); `metadata` also forces metadata
    /// such as a size change (`fsync`).
    fn sync(&self, metadata: bool) -> io::Result<()>;
    /// Shrinks the file to `len` bytes, releasing preallocated space.
    fn truncate(&self, len: u64) -> io::Result<()>;
}

/// The check [`LogFile::read_at`] makes before reading `n` bytes at `offset` of a file with
/// `len` readable bytes: `UnexpectedEof` if the range passes the end. For implementors, so that
/// every file layer fails alike.
///
/// # Errors
/// `UnexpectedEof` naming the read and the file's length.
pub fn check_read(offset: u64, n: usize, len: u64) -> io::Result<()> {
    if offset.checked_add(n as u64).is_none_or(|end| end > len) {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "read of {n} bytes at offset {offset} passes the end of the file ({len} bytes)"
            ),
        ));
    }
    Ok(())
}

/// The check [`LogFile::append`] makes before appending `parts` to a file of `len` bytes that
/// can hold `capacity`: returns the length after the append. For implementors.
///
/// # Errors
/// If the parts do not fit: nothing may be appended then.
pub fn check_append(len: u64, parts: &[&[u8]], capacity: u64) -> io::Result<u64> {
    let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
    match len.checked_add(total) {
        Some(end) if end <= capacity => Ok(end),
        _ => Err(io::Error::other(format!(
            "append of {total} bytes passes the file's capacity of {capacity} bytes"
        ))),
    }
}

/// The real file system. Data files are memory-mapped: readers copy straight from the page
/// cache without a syscall and without sharing a file position; the active file is mapped
/// writable at its full capacity and grown on disk with `posix_fallocate` in chunks, so on
/// ext4/xfs a full disk is an error from `append`, not a fault on a mapped page. (On
/// copy-on-write file systems such as btrfs or ZFS a write to a mapped page can still need new
/// blocks; there a full disk can raise SIGBUS.) Read-only files keep their mapping only, not
/// their descriptor, so thousands of sealed files do not exhaust the descriptor limit.
#[derive(Debug, Default)]
pub struct StdVfs;

/// Disk space reserved ahead of the writer, per `fallocate` call.
const ALLOC_CHUNK: u64 = 4 << 20;

impl Vfs for StdVfs {
    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::create_dir_all(path)
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            if let Ok(name) = entry?.file_name().into_string() {
                names.push(name);
            }
        }
        Ok(names)
    }

    fn try_lock(&self, path: &Path) -> io::Result<Option<Box<dyn Any + Send + Sync>>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Box::new(file))),
            Err(TryLockError::WouldBlock) => Ok(None),
            Err(TryLockError::Error(e)) => Err(e),
        }
    }

    fn create(&self, path: &Path, capacity: u64) -> io::Result<Box<dyn LogFile>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(path)?;
        Ok(Box::new(MmapFile::new(file, 0, capacity, true)?))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn LogFile>> {
        let writable = matches!(mode, OpenMode::Append { .. });
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        let len = file.metadata()?.len();
        let capacity = match mode {
            OpenMode::ReadOnly => len,
            OpenMode::Append { capacity } => capacity.max(len),
        };
        Ok(Box::new(MmapFile::new(file, len, capacity, writable)?))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn available_space(&self, dir: &Path) -> io::Result<u64> {
        available_space(dir)
    }

    fn link_or_copy(&self, from: &Path, to: &Path) -> io::Result<()> {
        if fs::hard_link(from, to).is_ok() {
            return Ok(());
        }
        fs::copy(from, to)?;
        File::open(to)?.sync_all()
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        fs::remove_dir_all(path)
    }

    fn canonicalize(&self, path: &Path) -> io::Result<PathBuf> {
        fs::canonicalize(path)
    }
}

/// A file mapped at `capacity` bytes, of which the first `len` are valid.
struct MmapFile {
    /// `None` for read-only files: the mapping outlives the descriptor.
    file: Option<File>,
    /// `None` when the capacity is zero (an empty file opened read-only).
    map: Option<MmapRaw>,
    capacity: u64,
    /// Bytes valid for readers. Stored with `Release` after the bytes are copied in.
    len: AtomicU64,
    /// Bytes backed by disk blocks (the file's size). Only the appending thread changes it.
    allocated: AtomicU64,
    /// Some page of the mapping could not be read (SIGBUS, `vfs/guard.rs`): see `bad_pages`.
    damaged: AtomicBool,
    /// The file offsets of the pages that could not be read. The mapping now holds zeros
    /// there, so reads touching them fail for good, and the file takes no more appends.
    bad_pages: parking_lot::Mutex<Vec<u64>>,
}

impl MmapFile {
    fn new(file: File, len: u64, capacity: u64, writable: bool) -> io::Result<Self> {
        let map = if capacity == 0 {
            None
        } else {
            let size = usize::try_from(capacity)
                .map_err(|_| io::Error::other("file too large to map on this platform"))?;
            let mut opts = MmapOptions::new();
            opts.len(size);
            Some(if writable {
                opts.map_raw(&file)?
            } else {
                opts.map_raw_read_only(&file)?
            })
        };
        Ok(MmapFile {
            file: writable.then_some(file),
            map,
            capacity,
            len: AtomicU64::new(len),
            allocated: AtomicU64::new(len),
            damaged: AtomicBool::new(false),
            bad_pages: parking_lot::Mutex::new(Vec::new()),
        })
    }

    /// The first page of `[offset, offset + n)` that could not be read before, if any.
    fn bad_page_in(&self, offset: u64, n: usize) -> Option<u64> {
        let end = offset + n as u64;
        self.bad_pages
            .lock()
            .iter()
            .copied()
            .filter(|&p| p < end && offset < p + page_size())
            .min()
    }

    fn file(&self) -> io::Result<&File> {
        self.file
            .as_ref()
            .ok_or_else(|| io::Error::other("file is open read-only"))
    }

    fn base(&self) -> *mut u8 {
        self.map
            .as_ref()
            .map_or(std::ptr::null_mut(), |m| m.as_mut_ptr())
    }

    /// Makes sure bytes up to `end` are backed by allocated disk blocks.
    fn reserve(&self, end: u64) -> io::Result<()> {
        let allocated = self.allocated.load(Ordering::Relaxed);
        if end <= allocated {
            return Ok(());
        }
        let target = end.max(allocated + ALLOC_CHUNK).min(self.capacity);
        allocate(self.file()?, allocated, target)?;
        self.allocated.store(target, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for MmapFile {
    fn drop(&mut self) {
        // Before the mapping goes: its zero pages must not be taken for a later mapping's.
        #[cfg(unix)]
        if self.damaged.load(Ordering::Acquire) {
            let base = self.base() as usize;
            guard::forget(base, base + self.capacity as usize);
        }
    }
}

/// The machine's page size: what a SIGBUS makes unreadable.
fn page_size() -> u64 {
    #[cfg(unix)]
    return guard::page_size();
    #[cfg(not(unix))]
    4096
}

/// The error for a read touching the page at file offset `page` that could not be read.
fn unreadable(page: u64) -> io::Error {
    io::Error::other(format!(
        "the page at offset {page} cannot be read (SIGBUS: the file was truncated underneath, \
         or the disk failed)"
    ))
}

#[cfg(unix)]
fn available_space(dir: &Path) -> io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))?;
    // SAFETY: `c` is a valid C string; `st` is a plain struct the call fills in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The field types differ between platforms (u32 on some): convert explicitly.
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(st.f_bavail), u64::from(st.f_frsize));
    Ok(blocks.saturating_mul(size))
}

#[cfg(not(unix))]
fn available_space(_dir: &Path) -> io::Result<u64> {
    Ok(u64::MAX)
}

#[cfg(target_os = "linux")]
fn allocate(file: &File, from: u64, to: u64) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let (off, len) = (from as libc::off_t, (to - from) as libc::off_t);
    // SAFETY: plain syscall on a descriptor we own; posix_fallocate returns the error number.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), off, len) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

#[cfg(not(target_os = "linux"))]
fn allocate(file: &File, _from: u64, to: u64) -> io::Result<()> {
    file.set_len(to)
}

impl LogFile for MmapFile {
    fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    fn capacity(&self) -> u64 {
        self.capacity
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_read(offset, buf.len(), self.len())?;
        if buf.is_empty() {
            return Ok(());
        }
        if self.damaged.load(Ordering::Acquire)
            && let Some(page) = self.bad_page_in(offset, buf.len())
        {
            return Err(unreadable(page));
        }
        // SAFETY: the range lies below `len`, inside the mapping; those bytes were published
        // by `append` (Release/Acquire on `len`) and are never written again.
        let src = unsafe { self.base().add(offset as usize) };
        // SAFETY: as above; the mapping lives as long as `self`.
        #[cfg(unix)]
        let copied = unsafe { guard::copy(src, buf) };
        #[cfg(not(unix))]
        let copied: Result<(), (usize, usize)> = {
            // SAFETY: as above.
            unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) };
            Ok(())
        };
        copied.map_err(|(low, high)| {
            let base = self.base() as usize;
            let (at, last) = ((low - base) as u64, (high - base) as u64);
            let page = at - at % page_size();
            // Every page between the faults: those that did not fault may have been read
            // before their neighbours failed; a zero page may sit over any of the others.
            self.bad_pages
                .lock()
                .extend((page..=last).step_by(page_size() as usize));
            self.damaged.store(true, Ordering::Release);
            tracing::error!(
                offset = at,
                "a mapped page could not be read (SIGBUS): the file was truncated underneath, \
                 or the disk failed; reads of it fail from now on"
            );
            unreadable(page)
        })
    }

    fn allocate(&self, end: u64) -> io::Result<()> {
        self.reserve(end.min(self.capacity))
    }

    fn is_damaged(&self) -> bool {
        self.damaged.load(Ordering::Acquire)
    }

    fn append(&self, parts: &[&[u8]]) -> io::Result<()> {
        // Part of the mapping is a zero page now: what is written there would not reach the
        // file.
        if self.damaged.load(Ordering::Acquire) {
            return Err(io::Error::other(
                "a page of this file could not be read; it takes no more writes",
            ));
        }
        let len = self.len.load(Ordering::Relaxed);
        let end = check_append(len, parts, self.capacity)?;
        self.reserve(end)?;
        let mut at = len as usize;
        for part in parts {
            // SAFETY: [at, at + part.len()) lies in [len, end) ⊆ the mapping, is backed by
            // allocated blocks (reserve), and no reader looks past `len` until we publish it.
            unsafe {
                std::ptr::copy_nonoverlapping(part.as_ptr(), self.base().add(at), part.len());
            }
            at += part.len();
        }
        self.len.store(end, Ordering::Release);
        Ok(())
    }

    fn sync(&self, metadata: bool) -> io::Result<()> {
        // On Linux fsync/fdatasync also write back pages dirtied through a shared mapping.
        #[cfg(not(target_os = "linux"))]
        if let Some(map) = &self.map {
            map.flush_range(0, self.len() as usize)?;
        }
        if metadata {
            self.file()?.sync_all()
        } else {
            self.file()?.sync_data()
        }
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        self.file()?.set_len(len)?;
        self.allocated.store(len, Ordering::Relaxed);
        if len < self.len() {
            self.len.store(len, Ordering::Release);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_truncate_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let f = StdVfs.create(&path, 100).unwrap();
        f.append(&[b"hello", b" ", b"world"]).unwrap();
        assert_eq!(f.len(), 11);
        assert_eq!(f.room(), 89);
        let mut buf = [0u8; 5];
        f.read_at(6, &mut buf).unwrap();
        assert_eq!(&buf, b"world");
        let err = f.read_at(8, &mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        // The file is preallocated past what was written until truncated.
        assert!(fs::metadata(&path).unwrap().len() >= 11);
        let too_big = vec![0u8; 90];
        assert!(f.append(&[&too_big]).is_err());
        assert_eq!(f.len(), 11);
        f.truncate(11).unwrap();
        f.sync(true).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), 11);
        drop(f);
        let r = StdVfs.open(&path, OpenMode::ReadOnly).unwrap();
        assert_eq!(r.len(), 11);
        let mut all = [0u8; 11];
        r.read_at(0, &mut all).unwrap();
        assert_eq!(&all, b"hello world");
    }

    #[test]
    fn second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("LOCK");
        let first = StdVfs.try_lock(&path).unwrap();
        assert!(first.is_some());
        assert!(StdVfs.try_lock(&path).unwrap().is_none());
        drop(first);
        assert!(StdVfs.try_lock(&path).unwrap().is_some());
    }
}
