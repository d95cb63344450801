//! `check` and `repair`: verify every record and hint file of a database that is not open.

use std::path::{Path, PathBuf};

use crate::error::{Result, io_context};
use crate::hint::{self, hint_file_name, parse_hint_file_name};
use crate::log::file::{TEMP_SUFFIX, data_file_name, lock_dir, parse_data_file_name};
use crate::log::reader::{
    Damage, Window, batch_records, classify, has_nonzero, naming, read_record, save_tail,
};
use crate::log::record::{self, FILE_HEADER_LEN, KIND_DATA, RecordType};
use crate::vfs::{LogFile, OpenMode, StdVfs, Vfs};

/// What [`check`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckReport {
    /// Data files examined.
    pub data_files: usize,
    /// Records that passed every check (a batch counts once).
    pub records: u64,
    /// Bytes of data files read.
    pub bytes: u64,
    /// Hint files examined.
    pub hint_files: usize,
    /// Everything that failed a check, in the order found.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Whether no problem remains (none found, or all repaired).
    pub fn is_clean(&self) -> bool {
        self.problems.iter().all(|p| p.repaired)
    }
}

/// One region or file that failed a check.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// Where the bad region starts.
    pub offset: u64,
    /// Bytes in the bad region: what a repair drops.
    pub bytes: u64,
    /// What is wrong.
    pub what: String,
    /// Whether `repair` fixed it (by dropping the region, or removing the file).
    pub repaired: bool,
}

/// Progress of a [`check`], in bytes of data files read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckProgress {
    /// Bytes read so far.
    pub bytes_done: u64,
    /// Bytes in all data files.
    pub bytes_total: u64,
}

/// Verifies every record (CRC, layout, batch contents) of every data file in the database
/// directory `path`, and every hint file against its data file. With `repair`, it also fixes
/// what it found: a torn tail is cut; a file with a corrupt region is rewritten without it,
/// keeping every valid record after it (the report says how many bytes were dropped); unusable
/// hint files and files of an interrupted merge are removed. The database must not be open:
/// this takes its lock, like [`Db::open`](crate::Db::open).
///
/// # Errors
/// [`Error::Locked`](crate::Error::Locked) if the database is open; [`Error::Io`](crate::Error::Io) if the directory cannot be read or
/// (with `repair`) written. Problems in the data are not errors: they are in the report.
pub fn check(
    path: impl AsRef<Path>,
    repair: bool,
    progress: impl FnMut(CheckProgress),
) -> Result<CheckReport> {
    check_with(&StdVfs, path, repair, progress)
}

/// [`check`] through the file layer `vfs` (see [`Options::vfs`](crate::Options::vfs)).
///
/// # Errors
/// As [`check`].
pub fn check_with(
    vfs: &dyn Vfs,
    path: impl AsRef<Path>,
    repair: bool,
    mut progress: impl FnMut(CheckProgress),
) -> Result<CheckReport> {
    let dir = path.as_ref();
    if vfs.list(dir).is_err() {
        return Err(io_context(
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such directory"),
            "check",
            dir,
        ));
    }
    let _lock = lock_dir(vfs, dir)?;
    let names = vfs.list(dir).map_err(|e| io_context(e, "list", dir))?;
    let mut report = CheckReport::default();

    for name in names.iter().filter(|n| n.ends_with(TEMP_SUFFIX)) {
        let path = dir.join(name);
        let len = file_len(vfs, &path);
        let repaired = repair && remove(vfs, dir, &path).is_ok();
        report.problems.push(Problem {
            file: path,
            offset: 0,
            bytes: len,
            what: "file of an interrupted merge (ignored by open, which removes it)".into(),
            repaired,
        });
    }

    let mut ids: Vec<u32> = names
        .iter()
        .filter_map(|n| parse_data_file_name(n))
        .collect();
    ids.sort_unstable();
    let hints: Vec<u32> = names
        .iter()
        .filter_map(|n| parse_hint_file_name(n))
        .collect();
    let total: u64 = ids
        .iter()
        .map(|&id| file_len(vfs, &dir.join(data_file_name(id))))
        .sum();
    let mut done = 0;
    for (i, &id) in ids.iter().enumerate() {
        let newest = i + 1 == ids.len();
        let path = dir.join(data_file_name(id));
        let file = vfs
            .open(&path, OpenMode::ReadOnly)
            .map_err(|e| io_context(e, "open", &path))?;
        report.data_files += 1;
        let rewritten = check_data_file(
            vfs,
            dir,
            id,
            &path,
            file.as_ref(),
            newest,
            repair,
            &mut report,
        )?;
        done += file.len();
        report.bytes += file.len();
        progress(CheckProgress {
            bytes_done: done,
            bytes_total: total,
        });
        if !hints.contains(&id) {
            continue;
        }
        report.hint_files += 1;
        let hint_path = dir.join(hint_file_name(id));
        if rewritten {
            // its offsets no longer hold; the file was rewritten by the repair
            let repaired = remove(vfs, dir, &hint_path).is_ok();
            report.problems.push(Problem {
                file: hint_path,
                offset: 0,
                bytes: 0,
                what: "hint of a repaired data file".into(),
                repaired,
            });
            continue;
        }
        let hint_len = file_len(vfs, &hint_path);
        let verdict = if hint_len > hint::max_len(file.len()) {
            Err(format!("{hint_len} bytes, too large for its data file"))
        } else {
            read_whole(vfs, &hint_path)
                .map_err(|e| e.to_string())
                .and_then(|buf| hint::decode(&buf, id, file.len()).map(|_| ()))
        };
        if let Err(why) = verdict {
            let repaired = repair && remove(vfs, dir, &hint_path).is_ok();
            report.problems.push(Problem {
                file: hint_path,
                offset: 0,
                bytes: hint_len,
                what: format!("unusable hint file ({why}); open scans the data file instead"),
                repaired,
            });
        }
    }
    for id in hints.iter().filter(|id| !ids.contains(id)) {
        let path = dir.join(hint_file_name(*id));
        let repaired = repair && remove(vfs, dir, &path).is_ok();
        report.problems.push(Problem {
            file: path,
            offset: 0,
            bytes: 0,
            what: "hint file without its data file".into(),
            repaired,
        });
    }
    Ok(report)
}

/// The length of the file at `path`, 0 if it cannot be opened.
fn file_len(vfs: &dyn Vfs, path: &Path) -> u64 {
    vfs.open(path, OpenMode::ReadOnly).map_or(0, |f| f.len())
}

/// The whole content of the file at `path`.
fn read_whole(vfs: &dyn Vfs, path: &Path) -> std::io::Result<Vec<u8>> {
    let file = vfs.open(path, OpenMode::ReadOnly)?;
    let mut buf = vec![0u8; file.len() as usize];
    file.read_at(0, &mut buf)?;
    Ok(buf)
}

fn remove(vfs: &dyn Vfs, dir: &Path, path: &Path) -> Result<()> {
    vfs.remove_file(path)
        .and_then(|()| vfs.sync_dir(dir))
        .map_err(|e| io_context(e, "remove", path))
}

/// Checks one data file; with `repair`, fixes it. Returns whether it was rewritten.
///
/// Damage is classified exactly as open classifies it (`log::reader::classify`): in the newest
/// file, crash damage is a tail that open would cut; everywhere else a bad region is
/// corruption, and the records after it are kept. A batch with any bad part goes whole.
#[allow(clippy::too_many_arguments)]
fn check_data_file(
    vfs: &dyn Vfs,
    dir: &Path,
    id: u32,
    path: &Path,
    file: &dyn LogFile,
    newest: bool,
    repair: bool,
    report: &mut CheckReport,
) -> Result<bool> {
    let len = file.len();
    let mut header = vec![0u8; len.min(FILE_HEADER_LEN as u64) as usize];
    file.read_at(0, &mut header)
        .map_err(|e| io_context(e, "read", path))?;
    if let Err(e) = record::check_file_header(&header, KIND_DATA, id) {
        let blank = newest && !has_nonzero(file, 0)?;
        let what = if blank {
            "newest data file was never initialised (interrupted rotation; open removes it)".into()
        } else {
            format!("bad file header ({e:?}); its records cannot be trusted, nothing was changed")
        };
        let repaired = blank && repair && {
            // as open does: drop it if an older file exists, else start it afresh
            let only = vfs.list(dir).map_or(true, |names| {
                names.iter().filter_map(|n| parse_data_file_name(n)).count() == 1
            });
            if only {
                rewrite_without(vfs, dir, id, path, file, &[])?;
            } else {
                remove(vfs, dir, path)?;
            }
            true
        };
        report.problems.push(Problem {
            file: path.to_path_buf(),
            offset: 0,
            bytes: len,
            what,
            repaired,
        });
        return Ok(repaired);
    }
    // Valid records as (offset, length), and the bad regions between them.
    let mut keep: Vec<(u64, u64)> = Vec::new();
    let mut bad: Vec<(u64, u64, String)> = Vec::new();
    let mut save_from = None;
    let mut window = Window::new(file);
    let mut pos = FILE_HEADER_LEN as u64;
    while pos < len {
        match read_record(&mut window, pos, len) {
            Ok((h, bytes)) => {
                let batch_ok = || h.key_len == 0 && batch_records(&h, bytes).all(|r| r.is_ok());
                if h.kind == RecordType::Batch && !batch_ok() {
                    bad.push((
                        pos,
                        h.total_len(),
                        "batch with a bad record inside (dropped whole)".into(),
                    ));
                } else {
                    keep.push((pos, h.total_len()));
                    report.records += 1;
                }
                pos += h.total_len();
            }
            Err(mut why) => {
                // A failed read says nothing about the bytes: report it, judge nothing.
                if let Some(e) = why.io_error(path, pos) {
                    return Err(e);
                }
                match classify(file, pos, &why, newest).map_err(naming(path))? {
                    Damage::CrashTail { undecided } => {
                        // A zero-filled tail is preallocated space after an unclean shutdown:
                        // nothing was lost there.
                        if has_nonzero(file, pos)? {
                            if undecided {
                                save_from = Some(pos);
                            }
                            bad.push((
                                pos,
                                len - pos,
                                format!("{}; torn tail left by a crash (open cuts it)", why.reason),
                            ));
                        }
                    }
                    Damage::Corrupt { resume } => {
                        let end = resume.unwrap_or(len);
                        let what = match resume {
                            Some(at) => format!("{}; records resume at offset {at}", why.reason),
                            None => format!("{}; nothing valid follows", why.reason),
                        };
                        bad.push((pos, end - pos, what));
                        if let Some(at) = resume {
                            pos = at;
                            continue;
                        }
                    }
                }
                break;
            }
        }
    }
    if bad.is_empty() {
        return Ok(false);
    }
    if repair {
        if let Some(at) = save_from {
            save_tail(vfs, file, path, at)?;
        }
        // Always a new file and a rename: never truncate in place, the file may be a hard link
        // shared with a backup or another database.
        rewrite_without(vfs, dir, id, path, file, &keep)?;
    }
    for (offset, bytes, what) in bad {
        report.problems.push(Problem {
            file: path.to_path_buf(),
            offset,
            bytes,
            what,
            repaired: repair,
        });
    }
    Ok(repair)
}

/// Replaces the data file with one holding only the `keep` records, atomically.
fn rewrite_without(
    vfs: &dyn Vfs,
    dir: &Path,
    id: u32,
    path: &Path,
    file: &dyn LogFile,
    keep: &[(u64, u64)],
) -> Result<()> {
    let temp = dir.join(format!("{}{TEMP_SUFFIX}", data_file_name(id)));
    let size = FILE_HEADER_LEN as u64 + keep.iter().map(|(_, l)| l).sum::<u64>();
    let out = vfs
        .create(&temp, size)
        .map_err(|e| io_context(e, "create", &temp))?;
    out.append(&[&record::encode_file_header(KIND_DATA, id)])
        .map_err(|e| io_context(e, "write", &temp))?;
    let mut buf = Vec::new();
    for &(at, len) in keep {
        buf.resize(len as usize, 0);
        file.read_at(at, &mut buf)
            .map_err(|e| io_context(e, "read", path))?;
        out.append(&[&buf])
            .map_err(|e| io_context(e, "write", &temp))?;
    }
    out.truncate(size)
        .and_then(|()| out.sync(true))
        .and_then(|()| vfs.rename(&temp, path))
        .and_then(|()| vfs.sync_dir(dir))
        .map_err(|e| io_context(e, "replace", path))
}
