//! Rebuilding the key directory from the data files when a database is opened.
//!
//! Files are replayed in id order. In sealed files every record must check. In the newest file a
//! bad record with no valid record after it is a torn or zero-filled tail left by a crash: it is
//! cut off and writing continues after the last good record. A bad record followed by good ones
//! is corruption, reported as [`Error::Corrupted`] with file and offset.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use crossbeam_skiplist::SkipMap;

use crate::data_file::{DataFile, data_file_name, parse_data_file_name};
use crate::db::{FileStat, Writer};
use crate::error::{Error, Result, io_context};
use crate::keydir::{Keydir, Loc};
use crate::options::Options;
use crate::record::{
    self, FILE_HEADER_LEN, FORMAT_VERSION, FileHeaderError, HeaderError, KIND_DATA,
    MAX_RECORD_HEADER_LEN, MIN_RECORD_LEN, RecordType,
};
use crate::vfs::{LogFile, OpenMode, Vfs};

/// What opening found on disk.
pub(crate) struct Recovered {
    pub keydir: Keydir,
    pub files: SkipMap<u32, Arc<DataFile>>,
    pub writer: Writer,
}

pub(crate) fn recover(vfs: &dyn Vfs, dir: &Path, opts: &Options) -> Result<Recovered> {
    let names = vfs
        .list(dir)
        .map_err(|e| io_context(e, "list database directory", dir))?;
    let mut ids: Vec<u32> = names
        .iter()
        .filter_map(|n| parse_data_file_name(n))
        .collect();
    ids.sort_unstable();

    let keydir = Keydir::default();
    let files = SkipMap::new();
    let mut stats = BTreeMap::new();
    for (i, &id) in ids.iter().enumerate() {
        let is_last = i + 1 == ids.len();
        let path = dir.join(data_file_name(id));
        let mode = if is_last {
            OpenMode::Append {
                capacity: opts.data_file_size,
            }
        } else {
            OpenMode::ReadOnly
        };
        let file = vfs
            .open(&path, mode)
            .map_err(|e| io_context(e, "open data file", &path))?;
        let df = DataFile { id, path, file };
        check_header(&df, is_last)?;
        let stat = scan(&df, &keydir, &mut stats, is_last)?;
        stats.insert(id, stat);
        files.insert(id, Arc::new(df));
    }

    let active = match files.back() {
        Some(e) => e.value().clone(),
        None => {
            let df = Arc::new(DataFile::create(vfs, dir, 1, opts.data_file_size)?);
            stats.insert(1, FileStat::new(df.file.len()));
            files.insert(1, df.clone());
            df
        }
    };
    let next_id = active.id.checked_add(1).ok_or_else(|| Error::Corrupted {
        file: active.path.clone(),
        offset: 0,
        reason: "data file id space exhausted".into(),
    })?;
    Ok(Recovered {
        keydir,
        files,
        writer: Writer {
            active,
            next_id,
            lsn: 0,
            stats,
        },
    })
}

/// Checks the file header. The newest file may have an empty or zeroed header (a crash while it
/// was being created); it is then rewritten.
fn check_header(df: &DataFile, is_last: bool) -> Result<()> {
    let len = df.file.len().min(FILE_HEADER_LEN as u64) as usize;
    let mut header = vec![0u8; len];
    df.file
        .read_at(0, &mut header)
        .map_err(|e| io_context(e, "read header of", &df.path))?;
    match record::check_file_header(&header, KIND_DATA, df.id) {
        Ok(()) => Ok(()),
        Err(FileHeaderError::Version(found)) => Err(Error::IncompatibleVersion {
            file: df.path.clone(),
            found,
            supported: FORMAT_VERSION,
        }),
        Err(FileHeaderError::Invalid(_)) if is_last && header.iter().all(|&b| b == 0) => {
            let whole_file_empty = !has_nonzero(df.file.as_ref(), 0)?;
            if !whole_file_empty {
                return Err(df.corrupted(0, "zeroed file header before non-zero data"));
            }
            tracing::warn!(
                file = %df.path.display(),
                "newest data file has no header (crash while it was created); reinitialising it"
            );
            df.file
                .truncate(0)
                .map_err(|e| io_context(e, "truncate", &df.path))?;
            df.write_header()
        }
        Err(FileHeaderError::Invalid(reason)) => Err(df.corrupted(0, reason)),
    }
}

/// Replays the records of one file into the keydir and returns the file's byte counts.
fn scan(
    df: &DataFile,
    keydir: &Keydir,
    stats: &mut BTreeMap<u32, FileStat>,
    is_last: bool,
) -> Result<FileStat> {
    let file_len = df.file.len();
    let mut stat = FileStat::new(FILE_HEADER_LEN as u64);
    let mut reader = Window::new(df.file.as_ref());
    let mut pos = FILE_HEADER_LEN as u64;
    while pos < file_len {
        let record = match read_record(&mut reader, pos, file_len) {
            Ok(r) => r,
            Err(reason) => {
                cut_or_fail(df, pos, &reason, is_last)?;
                break;
            }
        };
        let (header, bytes) = record;
        let key = &bytes[header.header_len..header.header_len + header.key_len as usize];
        let len = header.total_len();
        let loc = Loc {
            file_id: df.id,
            len: len as u32,
            offset: pos,
        };
        stat.total += len;
        match header.kind {
            RecordType::Value => {
                if let Some(old) = keydir.insert(key, loc) {
                    mark_dead(stats, &mut stat, df.id, old);
                }
            }
            RecordType::Tombstone => {
                stat.dead += len;
                if let Some(old) = keydir.remove(key) {
                    mark_dead(stats, &mut stat, df.id, old);
                }
            }
            RecordType::ValueWithExpiry | RecordType::Batch => {
                return Err(df.corrupted(
                    pos,
                    format!(
                        "record type {:?} is not supported by this build (written by a newer caskdb?)",
                        header.kind
                    ),
                ));
            }
        }
        pos += len;
    }
    Ok(stat)
}

/// Dead-byte accounting when replay supersedes `old`; `current` is the file being scanned,
/// which is not yet in `stats`.
fn mark_dead(stats: &mut BTreeMap<u32, FileStat>, current: &mut FileStat, id: u32, old: Loc) {
    if old.file_id == id {
        current.dead += u64::from(old.len);
    } else if let Some(s) = stats.get_mut(&old.file_id) {
        s.dead += u64::from(old.len);
    }
}

/// Decodes and checks the record at `pos`; on failure says why.
fn read_record<'a>(
    reader: &'a mut Window<'_>,
    pos: u64,
    file_len: u64,
) -> Result<(record::RecordHeader, &'a [u8]), String> {
    let avail = (file_len - pos).min(MAX_RECORD_HEADER_LEN as u64) as usize;
    let head = reader.get(pos, avail).map_err(|e| e.to_string())?;
    let header = match record::decode_header(head) {
        Ok(h) => h,
        Err(HeaderError::Incomplete) => return Err("truncated record header".into()),
        Err(HeaderError::Invalid(r)) => return Err(r),
    };
    let len = header.total_len();
    if len > u64::from(u32::MAX) {
        return Err(format!("record length {len} is over the 4 GiB limit"));
    }
    if pos + len > file_len {
        return Err(format!(
            "record of {len} bytes runs past the end of the file ({} bytes left)",
            file_len - pos
        ));
    }
    let bytes = reader.get(pos, len as usize).map_err(|e| e.to_string())?;
    if !record::crc_matches(&header, bytes) {
        return Err("CRC mismatch".into());
    }
    Ok((header, bytes))
}

/// A bad record at `pos`: in the newest file with nothing valid after it, a torn tail to cut;
/// otherwise corruption.
fn cut_or_fail(df: &DataFile, pos: u64, reason: &str, is_last: bool) -> Result<()> {
    if !is_last {
        return Err(df.corrupted(pos, reason));
    }
    if let Some(next) = next_valid_record(df.file.as_ref(), pos + 1)? {
        return Err(df.corrupted(
            pos,
            format!(
                "{reason}; a valid record follows at offset {next}, so this is not a torn tail"
            ),
        ));
    }
    let dropped = df.file.len() - pos;
    if has_nonzero(df.file.as_ref(), pos)? {
        tracing::warn!(
            file = %df.path.display(),
            offset = pos,
            dropped,
            "cut a torn record at the tail of the newest data file ({reason})"
        );
    } else {
        tracing::info!(
            file = %df.path.display(),
            offset = pos,
            dropped,
            "dropped zero-filled tail of the newest data file (unclean shutdown)"
        );
    }
    df.file
        .truncate(pos)
        .and_then(|()| df.file.sync(true))
        .map_err(|e| io_context(e, "truncate torn tail of", &df.path))
}

/// Offset of the first complete, CRC-valid record starting at or after `from`, if any.
fn next_valid_record(file: &dyn LogFile, from: u64) -> Result<Option<u64>> {
    let file_len = file.len();
    let mut reader = Window::new(file);
    let mut pos = from;
    while pos + MIN_RECORD_LEN as u64 <= file_len {
        if read_record(&mut reader, pos, file_len).is_ok() {
            return Ok(Some(pos));
        }
        pos += 1;
    }
    Ok(None)
}

/// Whether any byte from `from` to the end of the file is non-zero.
fn has_nonzero(file: &dyn LogFile, from: u64) -> Result<bool> {
    let file_len = file.len();
    let mut reader = Window::new(file);
    let mut pos = from;
    while pos < file_len {
        let n = (file_len - pos).min(WINDOW as u64) as usize;
        if reader.get(pos, n)?.iter().any(|&b| b != 0) {
            return Ok(true);
        }
        pos += n as u64;
    }
    Ok(false)
}

const WINDOW: usize = 1 << 20;

/// A read-ahead buffer over a [`LogFile`], so replay copies big chunks instead of each record.
struct Window<'f> {
    file: &'f dyn LogFile,
    buf: Vec<u8>,
    start: u64,
}

impl<'f> Window<'f> {
    fn new(file: &'f dyn LogFile) -> Self {
        Window {
            file,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The `n` bytes at `pos` (the caller keeps `pos + n` within the file).
    fn get(&mut self, pos: u64, n: usize) -> std::io::Result<&[u8]> {
        let end = pos + n as u64;
        if pos < self.start || end > self.start + self.buf.len() as u64 {
            let want = (n.max(WINDOW) as u64).min(self.file.len() - pos) as usize;
            self.buf.resize(want, 0);
            self.file.read_at(pos, &mut self.buf)?;
            self.start = pos;
        }
        let at = (pos - self.start) as usize;
        Ok(&self.buf[at..at + n])
    }
}
