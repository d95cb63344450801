//! A data file (its id, path, bytes, and how to read one record back), the table of open ones,
//! and the names of the files in a database directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use arc_swap::ArcSwap;
use bytes::Bytes;
use parking_lot::Mutex;

use crate::error::{Error, Result, io_context};
use crate::keydir::Loc;
use crate::log::record::{self, KIND_DATA, RecordHeader, RecordType};
use crate::vfs::{LogFile, Vfs};

/// Suffix of data files; the stem is the id, zero-padded to 10 digits.
const DATA_SUFFIX: &str = ".data";

/// Suffix of files still being written (a merge's output, a hint, a repaired file); open
/// removes any that a crash left behind.
pub(crate) const TEMP_SUFFIX: &str = ".merging";

/// Name of the lock file inside the database directory.
const LOCK_FILE: &str = "LOCK";

/// File name of data file `id`, e.g. `0000000042.data`: names sort in id order.
pub fn data_file_name(id: u32) -> String {
    format!("{id:010}{DATA_SUFFIX}")
}

/// The id in a data file's name, or `None` for any other name.
pub fn parse_data_file_name(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(DATA_SUFFIX)?;
    if stem.len() != 10 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Takes the exclusive lock of the database directory `dir` (its `LOCK` file), held as long as
/// the returned guard lives.
///
/// # Errors
/// [`Error::Locked`] if another handle, in this process or another, holds it; [`Error::Io`].
pub(crate) fn lock_dir(vfs: &dyn Vfs, dir: &Path) -> Result<Box<dyn std::any::Any + Send + Sync>> {
    let lock_path = dir.join(LOCK_FILE);
    vfs.try_lock(&lock_path)
        .map_err(|e| io_context(e, "lock", &lock_path))?
        .ok_or_else(|| Error::Locked {
            path: dir.to_path_buf(),
        })
}

/// The error for an index entry whose data file is not in the table (a bug, or a file removed
/// under a running database).
pub(crate) fn not_open(dir: &Path, loc: Loc) -> Error {
    Error::Corrupted {
        file: dir.join(data_file_name(loc.file_id)),
        offset: loc.offset,
        reason: "index points into a data file that is not open".into(),
    }
}

/// The open data files by id. Readers load the current table without taking a lock (one
/// `RwLock` read per lookup was a cache line that every reading core wrote); the rare changes
/// (rotation, merge) copy the table and swap it in, so a lookup never misses a file that
/// exists. (A lock-free skiplist was tried here and dropped: its replace removes the old entry
/// before inserting the new one.)
#[derive(Default)]
pub(crate) struct FileTable {
    map: ArcSwap<BTreeMap<u32, Arc<DataFile>>>,
    /// Serializes changes, so that none is lost between copying and swapping.
    change: Mutex<()>,
}

impl FileTable {
    /// File `id`, if open.
    pub fn get(&self, id: u32) -> Option<Arc<DataFile>> {
        self.map.load().get(&id).cloned()
    }

    /// Runs `f` on file `id`.
    pub fn with<R>(&self, id: u32, f: impl FnOnce(&Arc<DataFile>) -> R) -> Option<R> {
        self.map.load().get(&id).map(f)
    }

    fn update(&self, f: impl FnOnce(&mut BTreeMap<u32, Arc<DataFile>>)) {
        let _serial = self.change.lock();
        let mut next = BTreeMap::clone(&self.map.load());
        f(&mut next);
        self.map.store(Arc::new(next));
    }

    pub fn insert(&self, df: Arc<DataFile>) {
        self.update(|m| {
            m.insert(df.id, df);
        });
    }

    pub fn remove(&self, id: u32) {
        self.update(|m| {
            m.remove(&id);
        });
    }

    /// The file with the highest id.
    pub fn last(&self) -> Option<Arc<DataFile>> {
        self.map.load().values().next_back().cloned()
    }
}

pub(crate) struct DataFile {
    pub id: u32,
    pub path: PathBuf,
    pub file: Box<dyn LogFile>,
    /// Set once a merge removed the file from the directory (shared by every handle on the
    /// same file): a [`ValueRef`](crate::ValueRef) still reading it holds its disk space.
    pub retired: Arc<AtomicBool>,
}

impl std::fmt::Debug for DataFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DataFile")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl DataFile {
    /// A handle on data file `id`, open as `file`.
    pub fn new(id: u32, path: PathBuf, file: Box<dyn LogFile>) -> DataFile {
        DataFile {
            id,
            path,
            file,
            retired: Arc::default(),
        }
    }

    /// Creates data file `id` in `dir` with its header, durably (file and directory synced),
    /// able to grow to `capacity` bytes.
    pub fn create(vfs: &dyn Vfs, dir: &Path, id: u32, capacity: u64) -> Result<DataFile> {
        let path = dir.join(data_file_name(id));
        let created = vfs
            .create(&path, capacity)
            .map_err(|e| io_context(e, "create data file", &path))
            .and_then(|file| {
                let df = DataFile::new(id, path.clone(), file);
                df.write_header()?;
                vfs.sync_dir(dir)
                    .map_err(|e| io_context(e, "sync directory", dir))?;
                Ok(df)
            });
        if created.is_err() {
            // Leave no half-made file behind: it would make the id look taken and, after a
            // crash, hide that the previous file is still the newest. Recovery also removes
            // such files, should this cleanup fail too.
            if vfs.remove_file(&path).is_ok() {
                let _ = vfs.sync_dir(dir);
            }
        }
        created
    }

    /// Writes the file header into an empty file and syncs it.
    pub fn write_header(&self) -> Result<()> {
        let header = record::encode_file_header(KIND_DATA, self.id);
        self.file
            .append(&[&header])
            .and_then(|()| self.file.sync(true))
            .map_err(|e| io_context(e, "write header of", &self.path))
    }

    pub fn corrupted(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::Corrupted {
            file: self.path.clone(),
            offset,
            reason: reason.into(),
        }
    }

    /// Reads the record at `loc`, checks its CRC and that it holds `key`, and returns its value.
    pub fn read_value(&self, loc: Loc, key: &[u8]) -> Result<Bytes> {
        let (header, buf) = self.read_checked(loc, key)?;
        let value_start = header.header_len + header.key_len as usize;
        // Advanced, not sliced: a slice of a Bytes made from a Vec allocates a shared header
        // (and the original's drop then releases it again).
        let mut value = Bytes::from(buf);
        bytes::Buf::advance(&mut value, value_start);
        Ok(value)
    }

    /// Reads the whole value record at `loc` and checks it: length as indexed, CRC, type, key.
    pub fn read_checked(&self, loc: Loc, key: &[u8]) -> Result<(RecordHeader, Vec<u8>)> {
        let mut buf = vec![0u8; loc.len as usize];
        self.read_part(loc.offset, loc.offset, &mut buf)?;
        let header = self.check_length(loc, &buf)?;
        if !record::crc_matches(&header, &buf) {
            return Err(self.corrupted(loc.offset, "CRC mismatch"));
        }
        self.check_value(loc, key, &header, &buf)?;
        Ok((header, buf))
    }

    /// Fills `buf` from offset `at`, inside the record at offset `record` (which errors name).
    /// Past the file's end, the index and the file disagree: corruption; otherwise the read
    /// itself failed (the disk, a file cut underneath): not corruption, and maybe passing.
    pub fn read_part(&self, record: u64, at: u64, buf: &mut [u8]) -> Result<()> {
        self.file.read_at(at, buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                self.corrupted(record, format!("cannot read record: {e}"))
            } else {
                io_context(
                    e,
                    &format!("read the record at offset {record} of"),
                    &self.path,
                )
            }
        })
    }

    /// Decodes the header at the start of `buf` (the record at `loc`) and checks the record's
    /// length against the index.
    pub fn check_length(&self, loc: Loc, buf: &[u8]) -> Result<RecordHeader> {
        let header = record::decode_header(buf)
            .map_err(|e| self.corrupted(loc.offset, format!("bad record header: {e:?}")))?;
        if header.total_len() != u64::from(loc.len) {
            return Err(self.corrupted(
                loc.offset,
                format!(
                    "record length {} does not match the index ({})",
                    header.total_len(),
                    loc.len
                ),
            ));
        }
        Ok(header)
    }

    /// Checks that the record at `loc`, whose start (header and key at least) is in `buf`,
    /// holds a value for `key`.
    pub fn check_value(
        &self,
        loc: Loc,
        key: &[u8],
        header: &RecordHeader,
        buf: &[u8],
    ) -> Result<()> {
        if !matches!(header.kind, RecordType::Value | RecordType::ValueWithExpiry) {
            return Err(self.corrupted(loc.offset, "index points at a record without a value"));
        }
        let key_start = header.header_len;
        if buf.get(key_start..key_start + header.key_len as usize) != Some(key) {
            return Err(self.corrupted(loc.offset, "record holds another key than the index"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_roundtrip_and_reject_strangers() {
        assert_eq!(data_file_name(42), "0000000042.data");
        assert_eq!(parse_data_file_name("0000000042.data"), Some(42));
        assert_eq!(
            parse_data_file_name(&data_file_name(u32::MAX)),
            Some(u32::MAX)
        );
        for bad in [
            "42.data",
            "00000000042.data",
            "000000004x.data",
            "0000000042.hint",
            "LOCK",
        ] {
            assert_eq!(parse_data_file_name(bad), None, "{bad}");
        }
    }
}
