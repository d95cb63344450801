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

use crate::error::{Error, Result, io_context};
use crate::hint::{self, hint_file_name, parse_hint_file_name};
use crate::keydir::{Keydir, Loc};
use crate::log::file::{DataFile, FileTable, TEMP_SUFFIX, data_file_name, parse_data_file_name};
use crate::log::reader::{
    Bad, Damage, Window, batch_records, classify, has_nonzero, naming, read_record, save_tail,
};
use crate::log::record::{
    self, FILE_HEADER_LEN, FORMAT_VERSION, FileHeaderError, KIND_DATA, RecordType,
};
use crate::log::writer::{FileStat, Log, Writer};
use crate::options::Options;
use crate::rebuild::{FileOps, Rebuild};
use crate::vfs::{OpenMode, Vfs};

/// Replays the database in `dir` and returns its index and its log, ready to append.
pub(crate) fn recover(shared: Arc<dyn Vfs>, dir: &Path, opts: &Options) -> Result<(Keydir, Log)> {
    let vfs = shared.as_ref();
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
    let writer = Writer::new(active, next_id, stats);
    let log = Log::new(dir, shared.clone(), files, writer, opts.data_file_size);
    Ok((keydir, log))
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
    let df = DataFile::new(id, path, file);
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
            if header.key_len != 0 {
                return Err(df.corrupted(pos, "batch envelope with a key"));
            }
            for inner in batch_records(&header, bytes) {
                let (at, h, _) = inner.map_err(|at| {
                    df.corrupted(
                        pos + at as u64,
                        "bad record inside a batch with a valid CRC",
                    )
                })?;
                let key = &bytes[at + h.header_len..at + h.header_len + h.key_len as usize];
                let loc = Loc {
                    file_id: df.id,
                    len: h.total_len() as u32,
                    offset: pos + at as u64,
                    expire_at: h.expire_at.unwrap_or(0),
                };
                ops.push(key, loc, is_value(h.kind));
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

/// Repairs the newest file's bad record at `pos`: cuts the tail there when
/// [`classify`](crate::log::reader::classify) calls it crash damage (saving it first when
/// undecided), fails with [`Error::Corrupted`] otherwise.
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
