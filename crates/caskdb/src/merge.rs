//! Online merge: rewrite the live records of every sealed data file into new, compact files,
//! switch the index over, delete the old files.
//!
//! Correctness rests on replay order alone, with no marker file:
//! - The merge seals the active file (id N) and *reserves* the ids N+1 ..= N+K for its output;
//!   the new active file gets id N+K+1. Output files therefore replay after every file they
//!   replace and before every file written during or after the merge, so a copy never
//!   overrides a newer write, and the merge's copies equal what they copy.
//! - All files up to N are merged, so no file older than them survives: every tombstone among
//!   them can be dropped. Old files are deleted oldest first, with a directory fsync after each,
//!   so while some remain (after a crash or a power loss), a remaining tombstone's file always
//!   outlives the older files whose values it shadows.
//! - Every file on disk stays tracked (file table and byte counts) until it is deleted, and an
//!   output file is tracked from the moment it is renamed into place: a merge that fails
//!   part-way leaves nothing that a later merge in the same session would overlook.
//! - Output files are written under a temporary name, trimmed and fsynced, then renamed into
//!   place; a crash before the rename leaves only a temporary file, which the next open removes.
//! - The index switches an entry to its copy only if it still points at the original (under the
//!   writer lock), so a put or delete made during the merge always wins.
//!
//! K = 2·⌈live bytes / (data_file_size − 16)⌉ + 2 is enough: a file is closed only when the
//! next record does not fit, so two consecutive output files always hold more than
//! `data_file_size` minus one 16-byte file header of records together.
//!
//! Records are copied in key order (walking the index), so output and hint files are sorted by
//! key, which makes loading hints at open cheap.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::error::{Error, Result, io_context};
use crate::hint::{HintWriter, hint_file_name};
use crate::hook::MergeStep;
use crate::keydir::{KeyBuf, Loc};
use crate::log::file::{DataFile, TEMP_SUFFIX, data_file_name, not_open};
use crate::log::record::{self, FILE_HEADER_LEN, KIND_DATA, RecordType};
use crate::log::writer::FileStat;
use crate::shared::Core;
use crate::vfs::{LogFile, OpenMode};

/// Entries read from the index per step, and switched per writer-lock hold.
const CHUNK: usize = 1024;

/// How far a running merge has got, passed to [`Db::merge_with_progress`](crate::Db::merge_with_progress).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeProgress {
    /// Bytes of live records copied so far.
    pub bytes_done: u64,
    /// Bytes of live records the merge expects to copy (records overwritten meanwhile are
    /// skipped, so `bytes_done` may stop short of it).
    pub bytes_total: u64,
}

/// What a merge did, returned by [`Db::merge`](crate::Db::merge).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MergeStats {
    /// Data files merged and deleted.
    pub files_merged: usize,
    /// Data files written.
    pub files_written: usize,
    /// Bytes of the merged files.
    pub bytes_before: u64,
    /// Bytes of the files written (their hint files not included).
    pub bytes_after: u64,
    /// Live records copied.
    pub records_copied: u64,
    /// Copies that lost to a write made during the merge (dead on arrival).
    pub records_superseded: u64,
}

struct Plan {
    /// Ids of the files to merge, ascending.
    old: Vec<u32>,
    /// Highest id merged: index entries pointing above it were written during the merge.
    last_old: u32,
    first_out: u32,
    end_out: u32,
    live: u64,
    bytes_before: u64,
}

/// Reached `step`: stops the merge if the database is closing (or a test hook says so).
fn step(core: &Core, step: MergeStep) -> Result<()> {
    if core.stopping.load(Ordering::Acquire) {
        return Err(Error::Closed);
    }
    core.opts.run_merge_hook(step)
}

/// Runs one merge (waiting for a running one to finish first).
pub(crate) fn run(core: &Core, progress: &mut dyn FnMut(MergeProgress)) -> Result<MergeStats> {
    let _one_at_a_time = core.merge_lock.lock();
    let plan = plan(core)?;
    step(core, MergeStep::Started)?;

    let (dir, vfs) = (core.log.dir(), core.log.vfs());
    let mut out = Output {
        core,
        next_id: plan.first_out,
        end_id: plan.end_out,
        current: None,
        stats: MergeStats {
            files_merged: plan.old.len(),
            bytes_before: plan.bytes_before,
            ..MergeStats::default()
        },
    };
    let mut done = 0;
    let mut cursor: Option<KeyBuf> = None;
    // Entries that expired: not copied, and removed from the index before their files go.
    let mut expired: Vec<(KeyBuf, Loc)> = Vec::new();
    loop {
        let chunk = core.keydir.chunk_after(cursor.as_deref(), CHUNK);
        let Some((last, _)) = chunk.last() else {
            break;
        };
        cursor = Some(last.clone());
        let now = core.now();
        for (key, loc) in chunk {
            if loc.file_id > plan.last_old {
                continue; // written during the merge: already in a newer file
            }
            if loc.expired(now) {
                expired.push((key, loc));
                continue;
            }
            let (_, bytes) = core
                .log
                .files
                .with(loc.file_id, |f| f.read_checked(loc, &key))
                .unwrap_or_else(|| Err(not_open(dir, loc)))?;
            out.append(key, loc, &bytes)?;
            done += u64::from(loc.len);
        }
        progress(MergeProgress {
            bytes_done: done,
            bytes_total: plan.live,
        });
        step(core, MergeStep::Copied)?;
    }
    out.finish_current()?;
    let stats = std::mem::take(&mut out.stats);
    for chunk in expired.chunks(CHUNK) {
        let mut w = core.log.lock();
        core.keydir
            .remove_if_unchanged(chunk, |loc| w.mark_dead(loc));
    }

    // Nothing points into the old files any more. Delete them oldest first, each durably
    // before the next, so that the ones left after a crash or a power loss are always the
    // newest: a surviving tombstone never outlives the file it shadows. Each stays tracked
    // until it is gone, so a failure here leaves nothing on disk that a later merge would
    // not see. Readers that still hold one keep its mapping until they are done.
    for &id in &plan.old {
        let data = dir.join(data_file_name(id));
        vfs.remove_file(&data)
            .map_err(|e| io_context(e, "remove merged file", &data))?;
        core.log.lock().remove_file(id);
        if let Some(f) = core.log.files.get(id) {
            f.retired.store(true, std::sync::atomic::Ordering::Release);
        }
        core.log.files.remove(id);
        let hint = dir.join(hint_file_name(id));
        if let Err(e) = vfs.remove_file(&hint)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %hint.display(), "could not remove hint of a merged file: {e}");
        }
        vfs.sync_dir(dir)
            .map_err(|e| io_context(e, "sync directory", dir))?;
        step(core, MergeStep::Deleted)?;
    }
    step(core, MergeStep::Finished)?;
    Ok(stats)
}

/// Under the writer lock: checks for space, reserves output ids, seals the active file.
fn plan(core: &Core) -> Result<Plan> {
    let mut w = core.log.lock();
    core.check_writable()?;
    let active = w.active.id;
    let header = FILE_HEADER_LEN as u64;
    let (bytes_before, dead) = w.totals();
    let files = w.file_stats().len() as u64;
    let live = bytes_before - dead - files * header;
    // The copies, plus hint files (a few bytes per record beyond the key, generously).
    let needed = live + live / 4 + (1 << 20);
    let dir = core.log.dir();
    let available = core
        .log
        .vfs()
        .available_space(dir)
        .map_err(|e| io_context(e, "measure free space of", dir))?;
    if available < needed {
        return Err(Error::InsufficientSpace { needed, available });
    }
    // Two consecutive output files hold more than data_file_size minus a header together.
    let per_pair = core.opts.data_file_size - FILE_HEADER_LEN as u64;
    let reserve = 2 * live.div_ceil(per_pair) + 2;
    let first_out = active + 1;
    let end_out = u32::try_from(reserve)
        .ok()
        .and_then(|k| first_out.checked_add(k))
        .filter(|&e| e < u32::MAX)
        .ok_or_else(|| Error::Corrupted {
            file: dir.to_path_buf(),
            offset: 0,
            reason: "data file id space exhausted".into(),
        })?;
    w.next_id = end_out;
    core.log.rotate(&mut w, 0)?;
    let old: Vec<u32> = w
        .file_stats()
        .keys()
        .copied()
        .filter(|&id| id <= active)
        .collect();
    Ok(Plan {
        old,
        last_old: active,
        first_out,
        end_out,
        live,
        bytes_before,
    })
}

/// The output file being written.
struct Current {
    id: u32,
    temp: PathBuf,
    file: Box<dyn LogFile>,
    hint: HintWriter,
    /// (key, where it was, where its copy is) for the switch.
    moves: Vec<(KeyBuf, Loc, Loc)>,
}

struct Output<'a> {
    core: &'a Core,
    next_id: u32,
    end_id: u32,
    current: Option<Current>,
    stats: MergeStats,
}

impl Drop for Output<'_> {
    /// A merge that stops while writing an output file removes the unfinished temporary file
    /// (it would be removed at the next open anyway).
    fn drop(&mut self) {
        if let Some(c) = self.current.take() {
            drop(c.file);
            let _ = self.core.log.vfs().remove_file(&c.temp);
        }
    }
}

impl Output<'_> {
    fn append(&mut self, key: KeyBuf, old: Loc, bytes: &[u8]) -> Result<()> {
        let len = bytes.len() as u64;
        if let Some(c) = &self.current {
            let used = c.file.len();
            if (used > FILE_HEADER_LEN as u64 && used + len > self.core.opts.data_file_size)
                || c.file.room() < len
            {
                self.finish_current()?;
            }
        }
        if self.current.is_none() {
            self.start(len)?;
        }
        let c = self.current.as_mut().expect("just started");
        let offset = c.file.len();
        c.file
            .append(&[bytes])
            .map_err(|e| io_context(e, "append to", &c.temp))?;
        // The hint entry's type follows the expiry the index holds (a type-3 record with no
        // expiry reads as a plain value).
        let (kind, expiry) = match old.expire_at {
            0 => (RecordType::Value, None),
            t => (RecordType::ValueWithExpiry, Some(t)),
        };
        c.hint.add(kind, expiry, &key, offset, old.len);
        let new = Loc {
            file_id: c.id,
            offset,
            ..old
        };
        c.moves.push((key, old, new));
        Ok(())
    }

    fn start(&mut self, need: u64) -> Result<()> {
        if self.next_id >= self.end_id {
            return Err(Error::Io(std::io::Error::other(
                "merge used up its reserved file ids (this is a bug)",
            )));
        }
        let id = self.next_id;
        self.next_id += 1;
        let core = self.core;
        let temp = core
            .log
            .dir()
            .join(format!("{}{TEMP_SUFFIX}", data_file_name(id)));
        let capacity = core.opts.data_file_size.max(FILE_HEADER_LEN as u64 + need);
        let file = core
            .log
            .vfs()
            .create(&temp, capacity)
            .map_err(|e| io_context(e, "create merge output", &temp))?;
        file.append(&[&record::encode_file_header(KIND_DATA, id)])
            .map_err(|e| io_context(e, "write header of", &temp))?;
        self.current = Some(Current {
            id,
            temp,
            file,
            hint: HintWriter::new(id),
            moves: Vec::new(),
        });
        Ok(())
    }

    /// Seals the current output file, puts it in place with its hint, and switches the index.
    fn finish_current(&mut self) -> Result<()> {
        let Some(c) = self.current.take() else {
            return Ok(());
        };
        let core = self.core;
        let (dir, vfs) = (core.log.dir(), core.log.vfs());
        let len = c.file.len();
        // Opened read-only before the rename: the mapping follows the file to its new name.
        let sealed = c
            .file
            .truncate(len)
            .and_then(|()| c.file.sync(true))
            .and_then(|()| vfs.open(&c.temp, OpenMode::ReadOnly))
            .map_err(|e| io_context(e, "seal merge output", &c.temp));
        drop(c.file);
        let file = match sealed {
            Ok(file) => file,
            Err(e) => {
                let _ = vfs.remove_file(&c.temp);
                return Err(e);
            }
        };
        step(core, MergeStep::OutputSynced)?;

        let path = dir.join(data_file_name(c.id));
        if let Err(e) = vfs.rename(&c.temp, &path) {
            let _ = vfs.remove_file(&c.temp);
            return Err(io_context(e, "rename merge output", &c.temp));
        }
        // From here the file is part of the database: track it before anything else can fail,
        // so that a later merge in this session includes it (and drops it only with the rest).
        // Its records count as dead until the index switches to them.
        {
            let mut w = core.log.lock();
            w.add_file(
                c.id,
                FileStat {
                    total: len,
                    dead: len - FILE_HEADER_LEN as u64,
                },
            );
            core.log
                .files
                .insert(Arc::new(DataFile::new(c.id, path, file)));
        }
        self.write_hint(c.id, c.hint.finish(len));
        vfs.sync_dir(dir)
            .map_err(|e| io_context(e, "sync directory", dir))?;
        step(core, MergeStep::OutputInPlace)?;

        for chunk in c.moves.chunks(CHUNK) {
            let mut w = core.log.lock();
            let lost = core.keydir.switch_if_unchanged(chunk, |old, new| {
                w.mark_dead(old);
                w.revive(new);
            });
            drop(w);
            self.stats.records_copied += (chunk.len() - lost) as u64;
            self.stats.records_superseded += lost as u64;
            step(core, MergeStep::Switched)?;
        }
        self.stats.files_written += 1;
        self.stats.bytes_after += len;
        Ok(())
    }

    /// Writes a hint file for output `id`. A hint is only an accelerator: on failure the next
    /// open scans the data file instead, so errors are logged, not returned.
    fn write_hint(&self, id: u32, bytes: Vec<u8>) {
        let (dir, vfs) = (self.core.log.dir(), self.core.log.vfs());
        let path = dir.join(hint_file_name(id));
        let temp = dir.join(format!("{}{TEMP_SUFFIX}", hint_file_name(id)));
        let written = vfs
            .create(&temp, bytes.len() as u64)
            .and_then(|f| f.append(&[&bytes]).and_then(|()| f.sync(true)))
            .and_then(|()| vfs.rename(&temp, &path));
        if let Err(e) = written {
            tracing::warn!(file = %path.display(), "could not write hint file: {e}");
            let _ = vfs.remove_file(&temp);
        }
    }
}
