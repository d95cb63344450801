//! Reading the log back: a read-ahead window over a file, one checked record at a time, the
//! records inside a batch envelope, and the rule that tells crash damage from corruption.
//!
//! Recovery, `check`, and the fuzz harnesses read records through this module only.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, io_context};
use crate::log::record::{self, MAX_RECORD_HEADER_LEN, MIN_RECORD_LEN, RecordHeader, RecordType};
use crate::vfs::{LogFile, Vfs};

/// Why the record at some offset is not valid — or could not be read.
pub struct Bad {
    /// What is wrong, for messages.
    pub reason: String,
    /// The header, when it decoded (then the CRC or the length is what failed).
    pub header: Option<RecordHeader>,
    /// Set when reading failed: then nothing is known about the bytes, and the caller must
    /// fail with this error rather than judge them (a transient read error taken for a torn
    /// tail would cut acknowledged records).
    pub io: Option<std::io::Error>,
}

impl Bad {
    /// The read error, if reading is what failed, as an engine error naming `file`.
    pub(crate) fn io_error(&mut self, file: &Path, pos: u64) -> Option<Error> {
        self.io
            .take()
            .map(|e| io_context(e, &format!("read at offset {pos} of"), file))
    }
}

/// Names `file` in an I/O error that does not (the helpers below see only a [`LogFile`]).
pub(crate) fn naming(file: &Path) -> impl FnOnce(Error) -> Error + '_ {
    move |e| match e {
        Error::Io(e) => io_context(e, "read", file),
        other => other,
    }
}

/// Decodes and checks the record at `pos`; on failure says why.
pub fn read_record<'a>(
    reader: &'a mut Window<'_>,
    pos: u64,
    file_len: u64,
) -> Result<(RecordHeader, &'a [u8]), Bad> {
    let bad = |reason: String, header| Bad {
        reason,
        header,
        io: None,
    };
    let io = |e: std::io::Error, header| Bad {
        reason: e.to_string(),
        header,
        io: Some(e),
    };
    let avail = (file_len - pos).min(MAX_RECORD_HEADER_LEN as u64) as usize;
    let head = reader.get(pos, avail).map_err(|e| io(e, None))?;
    let header = match record::decode_header(head) {
        Ok(h) => h,
        Err(record::HeaderError::Incomplete) => {
            return Err(bad("truncated record header".into(), None));
        }
        Err(record::HeaderError::Invalid(r)) => return Err(bad(r, None)),
    };
    let len = header.total_len();
    if len > u64::from(u32::MAX) {
        return Err(bad(
            format!("record length {len} is over the 4 GiB limit"),
            None,
        ));
    }
    if pos + len > file_len {
        return Err(bad(
            format!(
                "record of {len} bytes runs past the end of the file ({} bytes left)",
                file_len - pos
            ),
            Some(header),
        ));
    }
    let bytes = reader
        .get(pos, len as usize)
        .map_err(|e| io(e, Some(header)))?;
    if !record::crc_matches(&header, bytes) {
        return Err(bad("CRC mismatch".into(), Some(header)));
    }
    Ok((header, bytes))
}

/// The records inside a batch envelope `bytes` (a whole record whose CRC checked, header `h`),
/// as (offset within `bytes`, header, record bytes). Ends with `Err(offset)` at the first inner
/// record that is not a value or tombstone with a key and a valid CRC (tombstones hold no
/// value) — which no batch this version writes holds. Whether the envelope itself has a key
/// (it must not) is the caller's check.
pub(crate) fn batch_records<'a>(
    h: &RecordHeader,
    bytes: &'a [u8],
) -> impl Iterator<Item = Result<(usize, RecordHeader, &'a [u8]), usize>> + 'a {
    let mut at = h.header_len + h.key_len as usize;
    std::iter::from_fn(move || {
        let inner = bytes.get(at..).filter(|rest| !rest.is_empty())?;
        let here = at;
        let valid = record::decode_header(inner)
            .ok()
            .filter(|ih| ih.total_len() <= inner.len() as u64)
            .filter(|ih| record::crc_matches(ih, &inner[..ih.total_len() as usize]))
            .filter(|ih| ih.kind != RecordType::Batch && ih.key_len > 0)
            .filter(|ih| ih.kind != RecordType::Tombstone || ih.value_len == 0);
        Some(match valid {
            Some(ih) => {
                at += ih.total_len() as usize;
                Ok((here, ih, &inner[..ih.total_len() as usize]))
            }
            None => {
                at = bytes.len();
                Err(here)
            }
        })
    })
}

/// Size of the blocks the page cache writes back: a power loss loses whole ones.
const PAGE: u64 = 4096;
/// Most bytes the search for a valid record after a bad one may checksum before giving up.
const SEARCH_BUDGET: u64 = 1 << 30;

/// What a bad record at some offset is, by the rule of [`classify`].
pub enum Damage {
    /// Left by a crash: everything from the bad record on goes. `undecided`: the search for a
    /// following record gave up, so the tail should be saved before it is cut.
    CrashTail {
        /// The search for a following record gave up: save the tail before cutting it.
        undecided: bool,
    },
    /// Corruption. `resume`: where the next valid record starts, if any.
    Corrupt {
        /// Where the next valid record starts, if any.
        resume: Option<u64>,
    },
}

/// Classifies the bad record at `pos` (why: `bad`) of `file`.
///
/// In a sealed file (`newest` false) a bad record is always corruption; the search for the next
/// valid record runs to the end of the file. In the newest file: let `Z` be the
/// first page-aligned, all-zero 4 KiB block at or after `pos` (or the end of the file):
/// such a block is what a page that never reached the disk reads as, because the file is
/// preallocated. Then:
/// - if the record's header is intact and its extent covers `Z`, the record was torn: cut;
/// - else, if a valid record starts between `pos` and `Z` (past the extent of a batch envelope
///   whose header is intact: the records inside one are valid by design), the damage is not a
///   crash's: the bytes are corrupted — error;
/// - else everything from `pos` on was written after the last durable point: cut.
///
/// When the search for a valid record cannot finish within its budget (a large tail of
/// high-entropy bytes), the tail is cut too — a crash while writing a big value is far likelier
/// than corruption there — but the cut bytes are first saved beside the file, as
/// `<file>.torn-<offset>`, and a warning names it.
///
/// Cutting drops valid records that may lie after `Z`: they were written after data that never
/// reached the disk (so, under `SyncPolicy::Always`, never acknowledged), and keeping them
/// would leave a state that no prefix of the writes produced.
pub fn classify(file: &dyn LogFile, pos: u64, bad: &Bad, newest: bool) -> Result<Damage> {
    // A batch envelope holds valid records by design: look for one only past its extent.
    let search_from = match bad.header {
        Some(h) if h.kind == RecordType::Batch => pos.saturating_add(h.total_len()),
        _ => pos + 1,
    };
    if !newest {
        return Ok(Damage::Corrupt {
            resume: match next_valid_record(file, search_from, file.len())? {
                Search::Found(next) => Some(next),
                Search::None | Search::GaveUp => None,
            },
        });
    }
    let zero = first_zero_page(file, pos)?;
    let torn_record = bad
        .header
        .is_some_and(|h| pos + h.total_len() >= zero.saturating_add(PAGE));
    if torn_record {
        return Ok(Damage::CrashTail { undecided: false });
    }
    Ok(match next_valid_record(file, search_from, zero)? {
        // The page holding the record's start was lost while a later page of the same write
        // reached the disk (writeback is unordered). Valid records after the gap can be the
        // insides of that write — a batch envelope whose header was on the lost page — so
        // they prove nothing: cut, but save what is cut.
        Search::Found(_) if zeros_to_page_end(file, pos)? => Damage::CrashTail { undecided: true },
        Search::Found(next) => Damage::Corrupt { resume: Some(next) },
        Search::GaveUp => Damage::CrashTail { undecided: true },
        Search::None => Damage::CrashTail { undecided: false },
    })
}

/// Copies the bytes of `df` from `pos` to its end into `<file>.torn-<pos>`, durably.
pub(crate) fn save_tail(
    vfs: &dyn Vfs,
    file: &dyn LogFile,
    data_path: &Path,
    pos: u64,
) -> Result<PathBuf> {
    let mut tail = vec![0u8; (file.len() - pos) as usize];
    file.read_at(pos, &mut tail)
        .map_err(|e| io_context(e, "read torn tail of", data_path))?;
    let base = data_path.file_name().unwrap_or_default().to_os_string();
    // A later crash can leave a tail at the same offset: never overwrite an earlier one.
    let mut n = 0u32;
    let path = loop {
        let mut name = base.clone();
        name.push(format!(".torn-{pos}"));
        if n > 0 {
            name.push(format!(".{n}"));
        }
        let path = data_path.with_file_name(name);
        match vfs.create(&path, tail.len() as u64) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 1000 => n += 1,
            created => {
                created
                    .and_then(|f| f.append(&[&tail]).and_then(|()| f.sync(true)))
                    .map_err(|e| io_context(e, "save torn tail to", &path))?;
                break path;
            }
        }
    };
    if let Some(dir) = path.parent() {
        vfs.sync_dir(dir)
            .map_err(|e| io_context(e, "sync directory", dir))?;
    }
    Ok(path)
}

/// Whether the bytes from `pos` to the end of its 4 KiB page (at least a minimal record's
/// worth) are all zeros, as the rest of a page that never reached the disk reads.
fn zeros_to_page_end(file: &dyn LogFile, pos: u64) -> Result<bool> {
    let end = ((pos / PAGE + 1) * PAGE).min(file.len());
    if end - pos < MIN_RECORD_LEN as u64 {
        return Ok(false);
    }
    let mut rest = vec![0u8; (end - pos) as usize];
    file.read_at(pos, &mut rest)?;
    Ok(rest.iter().all(|&b| b == 0))
}

/// Offset of the first page-aligned 4 KiB block at or after `from` that is all zeros, or the
/// end of the file.
fn first_zero_page(file: &dyn LogFile, from: u64) -> Result<u64> {
    let file_len = file.len();
    let mut reader = Window::new(file);
    let mut page = from.div_ceil(PAGE) * PAGE;
    while page + PAGE <= file_len {
        if reader.get(page, PAGE as usize)?.iter().all(|&b| b == 0) {
            return Ok(page);
        }
        page += PAGE;
    }
    Ok(file_len)
}

pub(crate) enum Search {
    Found(u64),
    None,
    GaveUp,
}

/// Looks for a complete, CRC-valid record starting in `[from, until)`.
pub(crate) fn next_valid_record(file: &dyn LogFile, from: u64, until: u64) -> Result<Search> {
    let file_len = file.len();
    let mut reader = Window::new(file);
    let mut budget = SEARCH_BUDGET;
    let mut pos = from;
    while pos < until && pos + MIN_RECORD_LEN as u64 <= file_len {
        let avail = (file_len - pos).min(MAX_RECORD_HEADER_LEN as u64) as usize;
        // Cheap filters first: only records this version could have written (a key unless it
        // is a batch envelope, no value in a tombstone) whose extent fits in the file are worth
        // a checksum.
        let plausible = match record::decode_header(reader.get(pos, avail)?) {
            Ok(h) => {
                (h.kind == RecordType::Batch) == (h.key_len == 0)
                    && (h.kind != RecordType::Tombstone || h.value_len == 0)
                    && pos + h.total_len() <= file_len
            }
            Err(_) => false,
        };
        if plausible {
            match read_record(&mut reader, pos, file_len) {
                Ok(_) => return Ok(Search::Found(pos)),
                Err(Bad { io: Some(e), .. }) => return Err(e.into()),
                Err(bad) => {
                    let cost = bad.header.map_or(0, |h| h.total_len());
                    if cost > budget {
                        return Ok(Search::GaveUp);
                    }
                    budget -= cost;
                }
            }
        }
        pos += 1;
    }
    Ok(Search::None)
}

/// Whether any byte from `from` to the end of the file is non-zero.
pub(crate) fn has_nonzero(file: &dyn LogFile, from: u64) -> Result<bool> {
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
pub struct Window<'f> {
    file: &'f dyn LogFile,
    buf: Vec<u8>,
    start: u64,
}

impl<'f> Window<'f> {
    /// A window over `file`, empty until the first read.
    pub fn new(file: &'f dyn LogFile) -> Self {
        Window {
            file,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The `n` bytes at `pos` (the caller keeps `pos + n` within the file).
    pub fn get(&mut self, pos: u64, n: usize) -> std::io::Result<&[u8]> {
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
