//! Online backup: a consistent copy of the database, taken while it is in use.

use std::path::Path;

use crate::db::Db;
use crate::error::{Result, io_context};
use crate::hint::hint_file_name;
use crate::log::file::data_file_name;

/// Bytes copied per step from the active file.
const COPY_CHUNK: usize = 1 << 20;

impl Db {
    /// Copies the database into the directory `dest` (created; it must be absent or empty)
    /// while reads and writes go on. The copy opens as a database holding every write
    /// acknowledged before the call — and possibly some made during it, as whole records.
    ///
    /// How: under the writer lock the backup notes the active file's length; sealed data files
    /// and hint files never change, so they are hard-linked into `dest` (copied when `dest` is
    /// on another file system), and the active file is copied up to the noted length. No merge
    /// runs meanwhile, so no file disappears during the copy. Everything written is fsynced.
    ///
    /// # Errors
    /// [`Error::Io`](crate::Error::Io) if `dest` is not empty or cannot be written;
    /// [`Error::Closed`](crate::Error::Closed).
    pub fn backup(&self, dest: impl AsRef<Path>) -> Result<()> {
        let dest = dest.as_ref();
        let log = &self.inner.core.log;
        let vfs = log.vfs();
        let inside = |d: &Path| {
            let canon = |p: &Path| vfs.canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
            d.ancestors().any(|a| canon(a) == canon(log.dir()))
        };
        if inside(dest) {
            return Err(io_context(
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "is inside the database"),
                "back up into",
                dest,
            ));
        }
        self.copy_to(dest)
    }

    /// A consistent copy like [`Db::backup`]'s, which may be made in a subdirectory of the
    /// database's own directory: the engine never reads subdirectories, and a layer that keeps
    /// its files there (a replicated group's Raft state and snapshots) can copy the data
    /// beside them, on the same file system, with hard links. (A backup is refused there:
    /// losing the database's directory would lose it too.)
    ///
    /// # Errors
    /// As [`Db::backup`]; [`Error::Io`](crate::Error::Io) if `dest` is the database's directory
    /// itself.
    pub fn checkpoint(&self, dest: impl AsRef<Path>) -> Result<()> {
        let dest = dest.as_ref();
        let log = &self.inner.core.log;
        let vfs = log.vfs();
        let canon = |p: &Path| vfs.canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        if canon(dest) == canon(log.dir()) {
            return Err(io_context(
                std::io::Error::new(std::io::ErrorKind::InvalidInput, "is the database"),
                "copy into",
                dest,
            ));
        }
        self.copy_to(dest)
    }

    /// Copies into `dest`, removing what it made if the copy fails.
    fn copy_to(&self, dest: &Path) -> Result<()> {
        let vfs = self.inner.core.log.vfs();
        let created = !vfs.exists(dest);
        let result = self.backup_into(dest);
        if result.is_err() && created {
            // leave no half-made copy to trip over on the next attempt
            let _ = vfs.remove_dir_all(dest);
        }
        result
    }

    fn backup_into(&self, dest: &Path) -> Result<()> {
        let core = &self.inner.core;
        let (vfs, dir) = (core.log.vfs(), core.log.dir());
        vfs.create_dir_all(dest)
            .map_err(|e| io_context(e, "create backup directory", dest))?;
        let existing = vfs
            .list(dest)
            .map_err(|e| io_context(e, "list backup directory", dest))?;
        if !existing.is_empty() {
            return Err(io_context(
                std::io::Error::new(std::io::ErrorKind::AlreadyExists, "not empty"),
                "back up into",
                dest,
            ));
        }
        let _no_merge = core.merge_lock.lock();
        let (active, active_len, sealed) = {
            let w = core.log.lock();
            core.check_open()?;
            let active = w.active.clone();
            let sealed: Vec<u32> = w
                .file_stats()
                .keys()
                .copied()
                .filter(|&id| id != active.id)
                .collect();
            let len = active.file.len();
            (active, len, sealed)
        };
        let names = vfs
            .list(dir)
            .map_err(|e| io_context(e, "list database directory", dir))?;
        for id in sealed {
            for name in [data_file_name(id), hint_file_name(id)] {
                if !names.contains(&name) {
                    continue; // hints exist only for merged files
                }
                let (from, to) = (dir.join(&name), dest.join(&name));
                vfs.link_or_copy(&from, &to)
                    .map_err(|e| io_context(e, "back up", &from))?;
            }
        }
        // The active file, up to the length it had: those bytes never change.
        let to = dest.join(data_file_name(active.id));
        let copy = vfs
            .create(&to, active_len)
            .map_err(|e| io_context(e, "create", &to))?;
        let mut buf = vec![0u8; COPY_CHUNK];
        let mut at = 0;
        while at < active_len {
            let n = (active_len - at).min(COPY_CHUNK as u64) as usize;
            active
                .file
                .read_at(at, &mut buf[..n])
                .map_err(|e| io_context(e, "read", &active.path))?;
            copy.append(&[&buf[..n]])
                .map_err(|e| io_context(e, "write", &to))?;
            at += n as u64;
        }
        copy.sync(true).map_err(|e| io_context(e, "sync", &to))?;
        vfs.sync_dir(dest)
            .map_err(|e| io_context(e, "sync directory", dest))?;
        Ok(())
    }
}
