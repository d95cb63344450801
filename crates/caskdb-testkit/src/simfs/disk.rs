//! The disk under a [`SimVfs`](super::SimVfs): files (inodes) with what was written and what
//! is durable, directories with their entry changes since the last sync, and what a power
//! loss leaves of them.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::rng::Rng;

/// What the page cache writes back as a unit: a power loss keeps or loses whole pages.
const PAGE: usize = 4096;
/// Garbage from a torn write runs at most to the end of its sector.
const SECTOR: usize = 512;
/// A file header is one 16-byte write at offset 0, synced before anything follows it: a device
/// that writes a sector atomically never tears it, and a torn header cannot be told from a
/// corrupt one. So the simulation tears writes anywhere but there.
const HEADER: usize = caskdb::testing::FILE_HEADER_LEN;

/// How much of what was not durable a power loss may still leave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tear {
    /// Exactly the durable state: nothing unsynced reached the disk.
    None,
    /// Per file, at random: none of the unsynced bytes, a prefix of them torn at any byte,
    /// whole pages in any order (lost ones read as the old bytes, zeros past the old end), or a
    /// torn prefix followed by garbage; the file size old or new. Per directory, a random
    /// prefix of the entry changes since its last sync (a journal commits them in order).
    Random,
    /// Every unsynced byte reached the disk but those in the first page they touch: writeback
    /// wrote the later pages of a write, not the one where it starts. Directories as `None`.
    LoseFirstDirtyPage,
}

/// What a crash dropped, for the statistics that show the simulation really loses data.
#[derive(Clone, Copy, Debug, Default)]
pub struct CrashStats {
    /// Bytes where the crashed disk differs from what reads saw before the crash.
    pub bytes_lost: u64,
    /// Files whose crashed contents differ from both their durable and their written bytes.
    pub files_torn: u64,
    /// Directory changes not yet synced that the crash dropped, and that it kept.
    pub entries_lost: u64,
    /// (See `entries_lost`.)
    pub entries_kept: u64,
}

impl CrashStats {
    /// Adds `o`'s counts to these.
    pub fn add(&mut self, o: &CrashStats) {
        self.bytes_lost += o.bytes_lost;
        self.files_torn += o.files_torn;
        self.entries_lost += o.entries_lost;
        self.entries_kept += o.entries_kept;
    }
}
#[derive(Clone, Debug, Default)]
pub(crate) struct Inode {
    /// What reads see: every byte written, preallocated zeros included (the file's size).
    pub data: Vec<u8>,
    /// What the disk holds: `data` as of the last successful sync.
    pub durable: Vec<u8>,
    /// Ranges whose writeback failed: they never reach the disk, whatever is synced later.
    pub lost: Vec<Range<usize>>,
}

fn byte(v: &[u8], p: usize) -> u8 {
    v.get(p).copied().unwrap_or(0)
}

/// The smallest range outside which `a` and `b` (zero-extended to the same length) agree.
fn dirty_range(a: &[u8], b: &[u8]) -> Option<Range<usize>> {
    let n = a.len().max(b.len());
    let first = (0..n).find(|&p| byte(a, p) != byte(b, p))?;
    let last = (0..n).rev().find(|&p| byte(a, p) != byte(b, p))?;
    Some(first..last + 1)
}

impl Inode {
    /// What writeback would put on disk now: everything written but the lost ranges.
    fn writeback(&self) -> Vec<u8> {
        let mut out = self.data.clone();
        let n = out.len();
        for r in &self.lost {
            for p in r.clone().filter(|&p| p < n) {
                out[p] = byte(&self.durable, p);
            }
        }
        out
    }

    pub fn sync(&mut self) {
        self.durable = self.writeback();
    }

    /// A failed fsync: the kernel marks the dirty pages clean without writing them.
    pub fn lose_dirty(&mut self) {
        if let Some(r) = dirty_range(&self.durable, &self.data) {
            self.lost.push(r);
        }
    }

    /// The file's bytes after a power loss.
    fn after_power_loss(&self, rng: &mut Rng, tear: Tear) -> Vec<u8> {
        let old = &self.durable;
        let new = self.writeback();
        if tear == Tear::None || *old == new {
            return old.clone();
        }
        if tear == Tear::LoseFirstDirtyPage {
            let mut out = new.clone();
            if let Some(dirty) = dirty_range(old, &new) {
                let page_end = (dirty.start / PAGE + 1) * PAGE;
                let end = page_end.min(dirty.end).min(out.len());
                for (p, b) in out.iter_mut().enumerate().take(end).skip(dirty.start) {
                    *b = byte(old, p);
                }
            }
            return out;
        }
        // The size is one metadata update: made or not.
        let size = if rng.chance(1, 2) {
            old.len()
        } else {
            new.len()
        };
        let mut out: Vec<u8> = (0..size).map(|p| byte(old, p)).collect();
        let Some(dirty) = dirty_range(old, &new) else {
            return out; // only the size changed
        };
        let write = |out: &mut [u8], r: Range<usize>| {
            let n = out.len();
            for p in r.filter(|&p| p < n) {
                out[p] = byte(&new, p);
            }
        };
        match rng.below(4) {
            0 => {} // none of the unsynced bytes reached the disk
            1 => {
                let cut = tear_point(rng, &dirty);
                write(&mut out, dirty.start..cut);
            }
            2 => {
                // Pages are written back in any order: each one or not.
                for page in dirty.start / PAGE..=(dirty.end - 1) / PAGE {
                    if rng.chance(1, 2) {
                        let r = (page * PAGE).max(dirty.start)..((page + 1) * PAGE).min(dirty.end);
                        write(&mut out, r);
                    }
                }
            }
            _ => {
                // A torn prefix, then the rest of that sector garbled.
                let cut = tear_point(rng, &dirty).max(HEADER);
                write(&mut out, dirty.start..cut);
                let end = ((cut / SECTOR + 1) * SECTOR).min(dirty.end).min(out.len());
                for b in out.iter_mut().take(end).skip(cut) {
                    *b = rng.next_u64() as u8;
                }
            }
        }
        out
    }
}

/// A point in `dirty` where a write tore: any byte, but never inside the file header (see
/// [`HEADER`]).
fn tear_point(rng: &mut Rng, dirty: &Range<usize>) -> usize {
    let cut = rng.between(dirty.start, dirty.end);
    if cut < HEADER { dirty.start } else { cut }
}

/// A change to a directory's entries, kept until the directory is synced.
#[derive(Clone, Debug)]
pub(crate) enum DirOp {
    Link(String, u64),
    Unlink(String),
    Rename(String, String),
}

impl DirOp {
    fn apply(&self, entries: &mut BTreeMap<String, u64>) {
        match self {
            DirOp::Link(name, ino) => {
                entries.insert(name.clone(), *ino);
            }
            DirOp::Unlink(name) => {
                entries.remove(name);
            }
            DirOp::Rename(from, to) => {
                if let Some(ino) = entries.remove(from) {
                    entries.insert(to.clone(), ino);
                }
            }
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Dir {
    pub live: BTreeMap<String, u64>,
    pub durable: BTreeMap<String, u64>,
    /// Changes since the last `sync_dir`, oldest first: `durable` + these = `live`.
    pub pending: Vec<DirOp>,
}

/// Files and directories. Directories themselves (`create_dir_all`) are durable at once: the
/// engine never removes one, and the database directory existing is not what is under test.
#[derive(Clone, Debug, Default)]
pub(crate) struct Disk {
    pub inodes: BTreeMap<u64, Inode>,
    pub dirs: BTreeMap<PathBuf, Dir>,
    pub next_ino: u64,
}

pub(crate) fn not_found(what: &str, path: &Path) -> io::Error {
    io::Error::new(
        io::ErrorKind::NotFound,
        format!("{what} {}: no such file or directory", path.display()),
    )
}

/// Parent directory and file name of `path`.
pub(crate) fn split(path: &Path) -> io::Result<(PathBuf, String)> {
    let parent = path.parent().unwrap_or(Path::new("/")).to_path_buf();
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    Ok((parent, name.to_owned()))
}

impl Disk {
    pub fn dir_mut(&mut self, dir: &Path) -> io::Result<&mut Dir> {
        self.dirs
            .get_mut(dir)
            .ok_or_else(|| not_found("directory", dir))
    }

    pub fn lookup(&self, path: &Path) -> io::Result<u64> {
        let (dir, name) = split(path)?;
        self.dirs
            .get(&dir)
            .and_then(|d| d.live.get(&name))
            .copied()
            .ok_or_else(|| not_found("file", path))
    }

    pub fn link(&mut self, path: &Path, ino: u64) -> io::Result<()> {
        let (dir, name) = split(path)?;
        let d = self.dir_mut(&dir)?;
        if d.live.contains_key(&name) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists", path.display()),
            ));
        }
        d.live.insert(name.clone(), ino);
        d.pending.push(DirOp::Link(name, ino));
        Ok(())
    }

    pub fn after_power_loss(&self, rng: &mut Rng, tear: Tear) -> (Disk, CrashStats) {
        let mut stats = CrashStats::default();
        let mut out = Disk {
            next_ino: self.next_ino,
            ..Disk::default()
        };
        for (path, dir) in &self.dirs {
            let keep = match tear {
                Tear::None | Tear::LoseFirstDirtyPage => 0,
                Tear::Random => rng.between(0, dir.pending.len()),
            };
            stats.entries_kept += keep as u64;
            stats.entries_lost += (dir.pending.len() - keep) as u64;
            let mut entries = dir.durable.clone();
            for op in &dir.pending[..keep] {
                op.apply(&mut entries);
            }
            out.dirs.insert(
                path.clone(),
                Dir {
                    live: entries.clone(),
                    durable: entries,
                    pending: Vec::new(),
                },
            );
        }
        let referenced: BTreeSet<u64> = out
            .dirs
            .values()
            .flat_map(|d| d.live.values().copied())
            .collect();
        for ino in referenced {
            let node = &self.inodes[&ino];
            let image = node.after_power_loss(rng, tear);
            let n = image.len().max(node.data.len());
            stats.bytes_lost += (0..n)
                .filter(|&p| byte(&image, p) != byte(&node.data, p))
                .count() as u64
                + image.len().abs_diff(node.data.len()) as u64;
            if image != node.durable && image != node.data {
                stats.files_torn += 1;
            }
            out.inodes.insert(
                ino,
                Inode {
                    data: image.clone(),
                    durable: image,
                    lost: Vec::new(),
                },
            );
        }
        (out, stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn power_loss_sim_tears_only_unsynced_bytes_in_every_way() {
        let durable: Vec<u8> = (0..5000).map(|i| (i % 251) as u8 + 1).collect();
        let mut node = Inode {
            data: durable.clone(),
            durable: durable.clone(),
            lost: Vec::new(),
        };
        // A 9000-byte unsynced append, spanning three pages.
        node.data.extend((0..9000).map(|i| (i % 13) as u8 + 1));
        let (mut none, mut all, mut prefix, mut holes, mut garbage) = (0, 0, 0, 0, 0);
        let mut rng = Rng::new(7);
        for _ in 0..400 {
            let img = node.after_power_loss(&mut rng, Tear::Random);
            assert!(img.len() == 5000 || img.len() == 14000);
            assert_eq!(&img[..5000], &durable[..], "synced bytes are never torn");
            let tail = &img[5000..];
            let kept: Vec<bool> = (0..tail.len())
                .map(|p| tail[p] == node.data[5000 + p])
                .collect();
            let zero = |p: usize| tail[p] == 0;
            if tail.iter().all(|&b| b == 0) {
                none += 1;
            } else if img == node.data {
                all += 1;
            } else if let Some(first_lost) = kept.iter().position(|&k| !k) {
                let later_kept = (first_lost..tail.len()).any(|p| kept[p] && !zero(p));
                let junk = (first_lost..tail.len()).any(|p| !kept[p] && !zero(p));
                if junk {
                    garbage += 1;
                } else if later_kept {
                    holes += 1;
                } else {
                    prefix += 1;
                }
            }
        }
        assert!(
            none > 0 && all > 0 && prefix > 0 && holes > 0 && garbage > 0,
            "none {none}, all {all}, prefix {prefix}, holes {holes}, garbage {garbage}"
        );
    }
}
