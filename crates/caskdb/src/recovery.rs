//! Rebuilding the key directory from the data files when a database is opened.
//!
//! Files are replayed in id order. In sealed files every record must check. In the newest file a
//! bad record can be crash damage — a torn write, or pages that never reached the disk (they
//! read as zeros, since the file is preallocated) — and is then cut off, with everything after
//! it, and writing continues there. Otherwise it is corruption, reported as [`Error::Corrupted`]
//! with file and offset. See [`cut_or_fail`] for the exact rule.
//!
//! Files are replayed on all cores; the newest one's repair (if any) is made only after every
//! older file replayed. The records found go to a [`Rebuild`], which builds the index in bulk
//! at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use crate::data_file::{DataFile, FileTable, data_file_name, parse_data_file_name};
use crate::db::{FileStat, Writer};
use crate::error::{Error, Result, io_context};
use crate::hint::{self, hint_file_name, parse_hint_file_name};
use crate::keydir::{Keydir, Loc};
use crate::merge::TEMP_SUFFIX;
use crate::options::Options;
use crate::rebuild::{FileOps, Rebuild};
use crate::record::{
    self, FILE_HEADER_LEN, FORMAT_VERSION, FileHeaderError, HeaderError, KIND_DATA,
    MAX_RECORD_HEADER_LEN, MIN_RECORD_LEN, RecordType,
};
use crate::vfs::{LogFile, OpenMode, Vfs};

/// What opening found on disk.
pub(crate) struct Recovered {
    pub keydir: Keydir,
    pub files: FileTable,
    pub writer: Writer,
}

pub(crate) fn recover(vfs: &dyn Vfs, dir: &Path, opts: &Options) -> Result<Recovered> {
    let names = vfs
        .list(dir)
        .map_err(|e| io_context(e, "list database directory", dir))?;
    remove_merge_leftovers(vfs, dir, &names)?;
    let mut ids: Vec<u32> = names
        .iter()
        .filter_map(|n| parse_data_file_name(n))
        .collect();
    ids.sort_unstable();
    drop_blank_trailing_files(vfs, dir, &mut ids)?;
    let hints = usable_hint_ids(vfs, dir, &names, &ids)?;

    let mut rebuild = Rebuild::new(opts.clock.now_ms());
    let files = FileTable::default();
    let mut stats = BTreeMap::new();
    let newest = ids.last().copied();
    in_parallel(
        &ids,
        |id| {
            let is_last = Some(id) == newest;
            replay(vfs, dir, opts, id, is_last, hints.contains(&id))
        },
        |r: Replayed| {
            // Files come here in id order, so the newest one's repair waits until every older
            // file has replayed: an open that fails on a corrupt older file changes nothing.
            r.repair.apply(vfs, &r.df)?;
            rebuild.append(r.ops);
            stats.insert(r.df.id, r.stat);
            files.insert(Arc::new(r.df));
            Ok(())
        },
    )?;
    let keydir = Keydir::default();
    for (id, dead) in rebuild.finish(&keydir) {
        if let Some(stat) = stats.get_mut(&id) {
            stat.dead += dead;
        }
    }
    let active = match files.last() {
        Some(df) => df,
        None => {
            let df = Arc::new(DataFile::create(vfs, dir, 1, opts.data_file_size)?);
            stats.insert(1, FileStat::new(df.file.len()));
            files.insert(df.clone());
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
        writer: Writer::new(active, next_id, stats),
    })
}

/// One data file, replayed.
struct Replayed {
    df: DataFile,
    stat: FileStat,
    ops: FileOps,
    repair: Repair,
}

/// A change the newest file needs after a crash, found while it was read.
enum Repair {
    None,
    /// It never got its header: rewrite it.
    Header,
    /// A bad record at `pos`: cut the tail there, or fail if it is corruption.
    Tail {
        pos: u64,
        bad: Bad,
    },
}

impl Repair {
    fn apply(self, vfs: &dyn Vfs, df: &DataFile) -> Result<()> {
        match self {
            Repair::None => Ok(()),
            Repair::Header => {
                tracing::warn!(
                    file = %df.path.display(),
                    "newest data file has no header (crash while it was created); reinitialising it"
                );
                df.file
                    .truncate(0)
                    .map_err(|e| io_context(e, "truncate", &df.path))?;
                df.write_header()
            }
            Repair::Tail { pos, bad } => cut_or_fail(vfs, df, pos, bad),
        }
    }
}

/// Opens and replays data file `id`, from its hint file if `has_hint` and that is usable.
fn replay(
    vfs: &dyn Vfs,
    dir: &Path,
    opts: &Options,
    id: u32,
    is_last: bool,
    has_hint: bool,
) -> Result<Replayed> {
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
    let mut ops = FileOps::for_file(df.file.len());
    if !check_header(&df, is_last)? {
        let stat = FileStat::new(FILE_HEADER_LEN as u64);
        let repair = Repair::Header;
        return Ok(Replayed {
            df,
            stat,
            ops,
            repair,
        });
    }
    // The newest file is always scanned: only a scan finds a torn tail.
    let from_hint = if has_hint && !is_last {
        load_hint(vfs, &df, &mut ops)
    } else {
        None
    };
    let (stat, repair) = match from_hint {
        Some(stat) => (stat, Repair::None),
        None => scan(&df, &mut ops, is_last)?,
    };
    Ok(Replayed {
        df,
        stat,
        ops,
        repair,
    })
}

/// Runs `work` on every id, on all cores, and hands the results to `consume` in the order of
/// `ids`. Stops at the first error (in that order). Each worker holds at most one finished
/// result, so memory stays bounded.
fn in_parallel(
    ids: &[u32],
    work: impl Fn(u32) -> Result<Replayed> + Sync,
    mut consume: impl FnMut(Replayed) -> Result<()>,
) -> Result<()> {
    let threads = crate::rebuild::threads().min(ids.len());
    if threads == 0 {
        return Ok(());
    }
    let work = &work;
    std::thread::scope(|s| {
        let inboxes: Vec<_> = (0..threads)
            .map(|t| {
                let (tx, rx) = std::sync::mpsc::sync_channel(0);
                s.spawn(move || {
                    for &id in ids.iter().skip(t).step_by(threads) {
                        let result = work(id);
                        let failed = result.is_err();
                        // A send fails once the consumer has given up.
                        if tx.send(result).is_err() || failed {
                            break;
                        }
                    }
                });
                rx
            })
            .collect();
        for i in 0..ids.len() {
            match inboxes[i % threads].recv() {
                Ok(result) => consume(result?)?,
                // The worker panicked; the scope passes the panic on.
                Err(_) => break,
            }
        }
        Ok(())
    })
}

/// Removes the temporary files of a merge that a crash interrupted. They hold only copies
/// that no other file depends on.
fn remove_merge_leftovers(vfs: &dyn Vfs, dir: &Path, names: &[String]) -> Result<()> {
    let mut removed = false;
    for name in names.iter().filter(|n| n.ends_with(TEMP_SUFFIX)) {
        let path = dir.join(name);
        tracing::info!(file = %path.display(), "removing a file of an interrupted merge");
        vfs.remove_file(&path)
            .map_err(|e| io_context(e, "remove", &path))?;
        removed = true;
    }
    if removed {
        vfs.sync_dir(dir)
            .map_err(|e| io_context(e, "sync directory", dir))?;
    }
    Ok(())
}

/// Ids of data files that have a hint file. Hints whose data file is gone (a crash while a merge
/// deleted old files) are removed.
fn usable_hint_ids(
    vfs: &dyn Vfs,
    dir: &Path,
    names: &[String],
    ids: &[u32],
) -> Result<BTreeSet<u32>> {
    let mut hints = BTreeSet::new();
    for id in names.iter().filter_map(|n| parse_hint_file_name(n)) {
        if ids.binary_search(&id).is_ok() {
            hints.insert(id);
        } else {
            let path = dir.join(hint_file_name(id));
            tracing::info!(file = %path.display(), "removing a hint file whose data file is gone");
            vfs.remove_file(&path)
                .and_then(|()| vfs.sync_dir(dir))
                .map_err(|e| io_context(e, "remove", &path))?;
        }
    }
    Ok(hints)
}

/// Loads the keydir entries of `df` from its hint file. `None` (after saying why in a log line)
/// when the hint is missing, torn or corrupt: the caller then scans the data file.
fn load_hint(vfs: &dyn Vfs, df: &DataFile, ops: &mut FileOps) -> Option<FileStat> {
    let path = df.path.with_file_name(hint_file_name(df.id));
    let file_len = df.file.len();
    let read = vfs.open(&path, OpenMode::ReadOnly).and_then(|f| {
        if f.len() > hint::max_len(file_len) {
            return Err(std::io::Error::other(format!(
                "{} bytes, too large for a data file of {file_len}",
                f.len()
            )));
        }
        let mut buf = vec![0u8; f.len() as usize];
        f.read_at(0, &mut buf).map(|()| buf)
    });
    let unusable = |reason: String| {
        tracing::warn!(
            hint = %path.display(),
            "hint file unusable ({reason}); scanning {} instead",
            df.path.display()
        );
        None
    };
    let buf = match read {
        Ok(buf) => buf,
        Err(e) => return unusable(e.to_string()),
    };
    let entries = match hint::decode(&buf, df.id, file_len) {
        Ok(entries) => entries,
        Err(reason) => return unusable(reason),
    };
    for e in entries {
        ops.push(e.key, e.loc, true);
    }
    Some(FileStat::new(file_len))
}

/// Removes newest files that never got a header (empty or all zeros): a crash or an error while
/// a rotation was creating them. The file before them is then the newest again, so its own
/// preallocated tail is cut as a tail, not taken for corruption. The only file is kept (and
/// reinitialised by `check_header`).
fn drop_blank_trailing_files(vfs: &dyn Vfs, dir: &Path, ids: &mut Vec<u32>) -> Result<()> {
    while ids.len() > 1 {
        let path = dir.join(data_file_name(ids[ids.len() - 1]));
        let file = vfs
            .open(&path, OpenMode::ReadOnly)
            .map_err(|e| io_context(e, "open data file", &path))?;
        if has_nonzero(file.as_ref(), 0)? {
            return Ok(());
        }
        drop(file);
        tracing::warn!(file = %path.display(), "removing a data file that was never initialised (interrupted rotation)");
        vfs.remove_file(&path)
            .and_then(|()| vfs.sync_dir(dir))
            .map_err(|e| io_context(e, "remove", &path))?;
        ids.pop();
    }
    Ok(())
}

/// Checks the file header. The newest file may have an empty or zeroed header (a crash while it
/// was being created) if the whole file is zeros: `Ok(false)`, it needs a new header.
fn check_header(df: &DataFile, is_last: bool) -> Result<bool> {
    let len = df.file.len().min(FILE_HEADER_LEN as u64) as usize;
    let mut header = vec![0u8; len];
    df.file
        .read_at(0, &mut header)
        .map_err(|e| io_context(e, "read header of", &df.path))?;
    match record::check_file_header(&header, KIND_DATA, df.id) {
        Ok(()) => Ok(true),
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
            Ok(false)
        }
        Err(FileHeaderError::Invalid(reason)) => Err(df.corrupted(0, reason)),
    }
}

/// Replays the records of one file and returns the file's byte counts. A bad record is an
/// error in a sealed file; in the newest one it ends the scan and is returned as the repair to
/// make.
fn scan(df: &DataFile, ops: &mut FileOps, is_last: bool) -> Result<(FileStat, Repair)> {
    let file_len = df.file.len();
    let mut stat = FileStat::new(FILE_HEADER_LEN as u64);
    let mut reader = Window::new(df.file.as_ref());
    let mut pos = FILE_HEADER_LEN as u64;
    while pos < file_len {
        let record = match read_record(&mut reader, pos, file_len) {
            Ok(r) => r,
            Err(mut bad) => {
                if let Some(e) = bad.io_error(&df.path, pos) {
                    return Err(e);
                }
                if is_last {
                    return Ok((stat, Repair::Tail { pos, bad }));
                }
                return Err(df.corrupted(pos, bad.reason));
            }
        };
        let (header, bytes) = record;
        let len = header.total_len();
        stat.total += len;
        if header.kind == RecordType::Batch {
            // All or nothing: the envelope's CRC checked, so every record in it is applied.
            stat.dead += header.header_len as u64; // the envelope's own header
            let payload_at = header.header_len + header.key_len as usize;
            if header.key_len != 0 {
                return Err(df.corrupted(pos, "batch envelope with a key"));
            }
            let mut at = payload_at;
            while at < bytes.len() {
                let inner = &bytes[at..];
                let h = record::decode_header(inner)
                    .ok()
                    .filter(|h| h.total_len() <= inner.len() as u64)
                    .filter(|h| record::crc_matches(h, &inner[..h.total_len() as usize]))
                    .filter(|h| h.kind != RecordType::Batch && h.key_len > 0)
                    .filter(|h| h.kind != RecordType::Tombstone || h.value_len == 0)
                    .ok_or_else(|| {
                        df.corrupted(
                            pos + at as u64,
                            "bad record inside a batch with a valid CRC",
                        )
                    })?;
                let key = &inner[h.header_len..h.header_len + h.key_len as usize];
                let loc = Loc {
                    file_id: df.id,
                    len: h.total_len() as u32,
                    offset: pos + at as u64,
                    expire_at: h.expire_at.unwrap_or(0),
                };
                ops.push(key, loc, is_value(h.kind));
                at += h.total_len() as usize;
            }
        } else {
            let key = &bytes[header.header_len..header.header_len + header.key_len as usize];
            let loc = Loc {
                file_id: df.id,
                len: len as u32,
                offset: pos,
                expire_at: header.expire_at.unwrap_or(0),
            };
            ops.push(key, loc, is_value(header.kind));
        }
        pos += len;
    }
    Ok((stat, Repair::None))
}

/// Whether a record of this kind sets its key (as opposed to deleting it).
fn is_value(kind: RecordType) -> bool {
    matches!(kind, RecordType::Value | RecordType::ValueWithExpiry)
}

/// Why the record at some offset is not valid — or could not be read.
pub(crate) struct Bad {
    pub reason: String,
    /// The header, when it decoded (then the CRC or the length is what failed).
    pub header: Option<record::RecordHeader>,
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
pub(crate) fn read_record<'a>(
    reader: &'a mut Window<'_>,
    pos: u64,
    file_len: u64,
) -> Result<(record::RecordHeader, &'a [u8]), Bad> {
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
        Err(HeaderError::Incomplete) => return Err(bad("truncated record header".into(), None)),
        Err(HeaderError::Invalid(r)) => return Err(bad(r, None)),
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

/// Size of the blocks the page cache writes back: a power loss loses whole ones.
const PAGE: u64 = 4096;
/// Most bytes the search for a valid record after a bad one may checksum before giving up.
const SEARCH_BUDGET: u64 = 1 << 30;

/// Decides what a bad record at `pos` is.
///
/// Only the newest file gets here: in a sealed file a bad record is always corruption. Let `Z`
/// be the first page-aligned, all-zero 4 KiB block at or after `pos` (or the end of the file):
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
fn cut_or_fail(vfs: &dyn Vfs, df: &DataFile, pos: u64, bad: Bad) -> Result<()> {
    let reason = bad.reason.clone();
    match classify(df.file.as_ref(), pos, &bad, true).map_err(naming(&df.path))? {
        Damage::Corrupt {
            resume: Some(next), ..
        } => {
            return Err(df.corrupted(
                pos,
                format!(
                    "{reason}; a valid record follows at offset {next}, so this is not crash damage"
                ),
            ));
        }
        Damage::Corrupt { resume: None, .. } => unreachable!("the newest file has crash tails"),
        Damage::CrashTail { undecided: true } => {
            let saved = save_tail(vfs, df.file.as_ref(), &df.path, pos)?;
            tracing::warn!(
                file = %df.path.display(),
                offset = pos,
                "could not tell crash damage from corruption; cutting the tail, saved as {}",
                saved.display()
            );
        }
        Damage::CrashTail { undecided: false } => {}
    }
    let file = df.file.as_ref();
    let dropped = file.len() - pos;
    if has_nonzero(file, pos).map_err(naming(&df.path))? {
        tracing::warn!(
            file = %df.path.display(),
            offset = pos,
            dropped,
            "cut a torn record at the tail of the newest data file ({reason}); \
             the bytes from there on were never made durable"
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

/// What a bad record at some offset is, by the rule of [`cut_or_fail`].
pub(crate) enum Damage {
    /// Left by a crash: everything from the bad record on goes. `undecided`: the search for a
    /// following record gave up, so the tail should be saved before it is cut.
    CrashTail { undecided: bool },
    /// Corruption. `resume`: where the next valid record starts, if any.
    Corrupt { resume: Option<u64> },
}

/// Classifies the bad record at `pos` (why: `bad`) of `file`; `newest` selects the crash rule.
/// Sealed files only have corruption; their search for the next record runs to the end.
pub(crate) fn classify(file: &dyn LogFile, pos: u64, bad: &Bad, newest: bool) -> Result<Damage> {
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
) -> Result<std::path::PathBuf> {
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
pub(crate) struct Window<'f> {
    file: &'f dyn LogFile,
    buf: Vec<u8>,
    start: u64,
}

impl<'f> Window<'f> {
    pub(crate) fn new(file: &'f dyn LogFile) -> Self {
        Window {
            file,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// The `n` bytes at `pos` (the caller keeps `pos + n` within the file).
    pub(crate) fn get(&mut self, pos: u64, n: usize) -> std::io::Result<&[u8]> {
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
