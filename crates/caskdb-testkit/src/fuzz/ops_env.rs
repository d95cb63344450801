//! What an `ops` run works with: the bytes of its input (operations, keys, values, bounds),
//! the limits and the errors they call for, and the scratch directory of its database.

use std::io::{self, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use caskdb::testing::{data_file_name, parse_data_file_name};
use caskdb::{Db, Error, ManualClock, Options, SyncPolicy};

/// Options of the database `ops` drives: small, so that limits and rotation are reached.
pub(super) const MAX_KEY: usize = 48;
pub(super) const MAX_VALUE: usize = 1500;
pub(super) const MAX_BATCH: usize = 4096;
/// At most this many operations per input, so that one run stays fast.
pub(super) const MAX_STEPS: usize = 200;
/// The clock starts here (ms since the epoch).
pub(super) const START_MS: u64 = 1_000_000;

/// Keys most operations pick from, so that they meet: prefixes of each other, bytes 0x00 and
/// 0xff (prefix ends), keys longer than the 24 bytes kept inline in the index.
const KEYS: [&[u8]; 16] = [
    b"a",
    b"ab",
    b"abc",
    b"b",
    b"k1",
    b"k2",
    b"k3",
    b"key:0001",
    b"key:0002",
    b"key:0010",
    b"\x00",
    b"\xff",
    b"\xff\xff",
    b"a\xff",
    b"a-key-longer-than-24-bytes-0",
    b"a-key-longer-than-24-bytes-1",
];

/// The operation bytes, read front to back; zeros once they run out.
pub(super) struct Input<'a>(pub &'a [u8]);

impl Input<'_> {
    pub(super) fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// Mostly a key of [`KEYS`]; sometimes bytes from the input, empty, or too long.
    pub(super) fn key(&mut self) -> Vec<u8> {
        let b = self.byte();
        match b {
            0..=0xbf => KEYS[usize::from(b) % KEYS.len()].to_vec(),
            0xc0..=0xef => {
                let n = 1 + usize::from(self.byte() % 12);
                (0..n).map(|_| self.byte()).collect()
            }
            0xf0..=0xf7 => Vec::new(),
            _ => vec![b'L'; MAX_KEY + 1 + usize::from(b & 3)],
        }
    }

    /// Mostly small; sometimes larger than a data file, or than the limit.
    pub(super) fn value(&mut self) -> Vec<u8> {
        let b = self.byte();
        let len = match b {
            0..=0x9f => usize::from(b % 24),
            0xa0..=0xef => usize::from(b - 0xa0) * 18,
            _ => MAX_VALUE + 1 + usize::from(b & 3),
        };
        let seed = self.byte();
        (0..len).map(|i| seed ^ (i as u8)).collect()
    }

    pub(super) fn ttl(&mut self) -> Duration {
        Duration::from_millis(u64::from(self.byte()) * 8)
    }

    pub(super) fn bound(&mut self) -> Bound<Vec<u8>> {
        match self.byte() % 3 {
            0 => Bound::Unbounded,
            1 => Bound::Included(self.key()),
            _ => Bound::Excluded(self.key()),
        }
    }
}

pub(super) fn in_bounds(k: &[u8], lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
    let above = match lo {
        Bound::Included(b) => k >= b.as_slice(),
        Bound::Excluded(b) => k > b.as_slice(),
        Bound::Unbounded => true,
    };
    let below = match hi {
        Bound::Included(b) => k <= b.as_slice(),
        Bound::Excluded(b) => k < b.as_slice(),
        Bound::Unbounded => true,
    };
    above && below
}

/// The error a put of `key` and `value` must fail with, in the order the engine checks.
pub(super) fn put_error(key: &[u8], value: &[u8]) -> Option<&'static str> {
    key_error(key).or((value.len() > MAX_VALUE).then_some("ValueTooLarge"))
}

pub(super) fn key_error(key: &[u8]) -> Option<&'static str> {
    if key.is_empty() {
        Some("KeyIsEmpty")
    } else if key.len() > MAX_KEY {
        Some("KeyTooLarge")
    } else {
        None
    }
}

pub(super) fn error_name(e: &Error) -> &'static str {
    match e {
        Error::KeyIsEmpty => "KeyIsEmpty",
        Error::KeyTooLarge { .. } => "KeyTooLarge",
        Error::ValueTooLarge { .. } => "ValueTooLarge",
        Error::BatchTooLarge { .. } => "BatchTooLarge",
        Error::Closed => "Closed",
        _ => "other",
    }
}

/// A batch operation: key, and value with optional TTL (a put) or nothing (a delete).
pub(super) type BatchOp = (Vec<u8>, Option<(Vec<u8>, Option<Duration>)>);

/// A directory removed when dropped.
pub(super) struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub(super) fn new() -> io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = base.join(format!("caskdb-fuzz-{}-{n}", std::process::id()));
        // Left behind by an earlier process with this pid that died mid-run.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir(&path)?;
        Ok(ScratchDir(path))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub(super) fn open_scratch(
    dir: &Path,
    clock: &Arc<ManualClock>,
    data_file_size: u64,
    step: usize,
) -> Db {
    Options::default()
        .data_file_size(data_file_size)
        .max_key_size(MAX_KEY)
        .max_value_size(MAX_VALUE)
        .max_batch_size(MAX_BATCH)
        .sync(SyncPolicy::Never)
        .auto_merge(false)
        .clock(clock.clone())
        .open(dir)
        .unwrap_or_else(|e| panic!("step {step}: open failed: {e}"))
}

/// Appends `n` zero bytes to the newest data file in `dir`: preallocated space that a crash
/// left unwritten.
pub(super) fn append_zeros(dir: &Path, n: usize) -> io::Result<()> {
    let newest = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().to_str().and_then(parse_data_file_name))
        .max()
        .ok_or_else(|| io::Error::other("no data file"))?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(data_file_name(newest)))?
        .write_all(&vec![0u8; n])
}
