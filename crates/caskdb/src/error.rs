//! The library's single error type.

use std::io;
use std::path::PathBuf;

/// Everything that can go wrong in caskdb.
///
/// The enum is `#[non_exhaustive]`: later versions may add variants, so match with a wildcard arm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A key must hold at least one byte.
    #[error("key is empty")]
    KeyIsEmpty,

    /// The key is longer than [`Options::max_key_size`](crate::Options::max_key_size).
    #[error("key is {size} bytes, over the limit of {max} bytes")]
    KeyTooLarge {
        /// Length of the rejected key.
        size: usize,
        /// The configured limit.
        max: usize,
    },

    /// The value is longer than [`Options::max_value_size`](crate::Options::max_value_size).
    #[error("value is {size} bytes, over the limit of {max} bytes")]
    ValueTooLarge {
        /// Length of the rejected value.
        size: usize,
        /// The configured limit.
        max: usize,
    },

    /// Another [`Db`](crate::Db), in this process or another one, holds the directory.
    #[error("database directory {} is locked by another process or another open Db", path.display())]
    Locked {
        /// The database directory.
        path: PathBuf,
    },

    /// Bytes on disk failed a check (CRC, header, bounds). Nothing from the bad region is returned.
    #[error("corrupted data in {} at offset {offset}: {reason}", file.display())]
    Corrupted {
        /// The file holding the bad bytes.
        file: PathBuf,
        /// Byte offset of the bad record (or header) within `file`.
        offset: u64,
        /// What the check found.
        reason: String,
    },

    /// A file was written by a format version this build does not read.
    #[error("{} uses format version {found}; this build reads version {supported}", file.display())]
    IncompatibleVersion {
        /// The file with the unknown version.
        file: PathBuf,
        /// The version found in its header.
        found: u8,
        /// The version this build reads and writes.
        supported: u8,
    },

    /// An option passed to [`Options`](crate::Options) is out of range.
    #[error("invalid option: {0}")]
    InvalidOptions(String),

    /// A write batch encodes to more than [`Options::max_batch_size`](crate::Options::max_batch_size).
    #[error("write batch is {size} bytes, over the limit of {max} bytes")]
    BatchTooLarge {
        /// Encoded size of the batch.
        size: usize,
        /// The configured limit.
        max: usize,
    },

    /// A merge was refused because the disk lacks room for the data it would write.
    #[error(
        "not enough free disk space to merge: need about {needed} bytes, {available} available"
    )]
    InsufficientSpace {
        /// Bytes the merge would write (live data plus hint files).
        needed: u64,
        /// Bytes free on the file system holding the database.
        available: u64,
    },

    /// The handle was closed with [`Db::close`](crate::Db::close) (possibly through another clone).
    #[error("database is closed")]
    Closed,

    /// An earlier write-path failure (typically a failed fsync) left the on-disk state uncertain.
    /// The database refuses writes until it is reopened, which re-reads what really is on disk.
    /// Retrying an fsync after it failed is not safe on Linux: the kernel may have dropped the
    /// dirty pages and report success the second time.
    #[error("database refuses writes after an earlier failure ({reason}); close and reopen it")]
    Poisoned {
        /// The failure that stopped writes.
        reason: String,
    },

    /// A write in a read-only view of the store ([`Db::read_unlocked`](crate::Db::read_unlocked)).
    #[error("a read-only view of the store cannot write")]
    ReadOnlyView,

    /// An operating-system I/O error. The message names the file or directory involved.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// `Result` with [`Error`] as the error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an I/O error with the operation and path it came from, keeping its kind.
pub(crate) fn io_context(err: io::Error, what: &str, path: &std::path::Path) -> Error {
    Error::Io(io::Error::new(
        err.kind(),
        format!("{what} {}: {err}", path.display()),
    ))
}
