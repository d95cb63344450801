//! Numbers about a database: keys, files, live and dead bytes.

/// A snapshot of the database's size, from [`Db::stats`](crate::Db::stats).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Live keys.
    pub keys: usize,
    /// Data files, the active one included.
    pub data_files: usize,
    /// Bytes in all data files (headers included; preallocated space excluded).
    pub total_bytes: u64,
    /// Bytes of records a merge could drop: overwritten or deleted values, and tombstones.
    /// Expired values are counted only after a merge or a restart.
    pub dead_bytes: u64,
    /// `total_bytes - dead_bytes`.
    pub live_bytes: u64,
    /// Per data file, in id order.
    pub files: Vec<FileStats>,
}

/// Size of one data file, part of [`Stats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileStats {
    /// The file's id (its name is the id zero-padded to 10 digits, plus `.data`).
    pub id: u32,
    /// Bytes in the file.
    pub total_bytes: u64,
    /// Bytes of dead records in the file.
    pub dead_bytes: u64,
    /// Whether this is the active file, the one being appended to.
    pub active: bool,
}
