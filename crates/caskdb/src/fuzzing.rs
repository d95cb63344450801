//! Entry points for the fuzz targets in `fuzz/` and for the tests that replay their corpora.
//!
//! **For fuzzing only: not a stable API.** The module is hidden from the docs and changes with
//! the code it drives; it lives in the crate because the decoders it exercises are private.
//!
//! Each function takes arbitrary bytes and returns normally for every input. A panic is a
//! finding: either the engine broke an invariant asserted here, or it disagreed with the
//! reference these functions keep (a plain replay of the record format, or a `BTreeMap`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;

use crate::data_file::{data_file_name, parse_data_file_name};
use crate::hint::{self, HintWriter};
use crate::record::{
    self, FILE_HEADER_LEN, HeaderError, KIND_DATA, MAX_RECORD_HEADER_LEN, MIN_RECORD_LEN,
    RecordHeader, RecordType,
};
use crate::recovery::{self, Bad, Damage, Window};
use crate::vfs::{LogFile, OpenMode, Vfs};
use crate::{Clock, Db, Error, Iter, ManualClock, Options, Result, SyncPolicy};

/// Runs `run` on every input of the repository's `fuzz/corpus/<target>`, as the corpus replay
/// tests of this crate and the server do. Panics if the corpus has fewer than `min` inputs, so
/// that a missing or emptied corpus cannot pass silently, and names the input that failed.
pub fn replay_corpus(target: &str, min: usize, run: impl Fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            e.unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
                .path()
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= min,
        "{}: {} inputs, expected at least {min}",
        dir.display(),
        files.len()
    );
    for path in &files {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(&data))) {
            eprintln!("fuzz corpus input failed: {}", path.display());
            std::panic::resume_unwind(panic);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// record
// ---------------------------------------------------------------------------------------------

/// `record` flag: recompute the CRC of every record (and of the records inside a batch) before
/// replaying, so that mutated lengths and types reach the code behind the CRC check.
const FIX_CRCS: u8 = 1;
/// `record` flag: split the body into a sealed file and a newest file, at `flags >> 2` 63rds.
const SPLIT: u8 = 2;
/// The instant (ms since the epoch) expiries are judged against in `record`.
const RECORD_NOW: u64 = 1_000_000;
/// Written after a successful recovery, to check that appends continue where the log was cut.
const AFTER_KEY: &[u8] = b"fuzz:written-after-recovery";

/// Decodes record headers and replays data files built from `data`.
///
/// The first byte holds flags (`FIX_CRCS`, `SPLIT` and the split point); the rest is the
/// body of one data file (or two), after a valid file header. Three things are checked:
/// - `decode_header` on the raw body never panics, and a decoded header re-encodes to the same
///   fields and checks with `crc_matches` as recovery does;
/// - a replay of the files that mirrors `recovery::scan` (with `read_record`, and `classify`
///   on the first bad record) gives what recovery must find: the live entries and where the
///   newest file is cut, or the file and offset of the corruption;
/// - opening the files (on an in-memory file system) finds exactly that; a write afterwards
///   and a second open keep it.
pub fn record(data: &[u8]) {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    header_roundtrip(body);
    let parts = if flags & SPLIT != 0 {
        let at = body.len() * usize::from(flags >> 2) / 63;
        vec![&body[..at], &body[at..]]
    } else {
        vec![body]
    };
    let files: Vec<Vec<u8>> = parts
        .iter()
        .zip(1u32..)
        .map(|(part, id)| {
            let mut file = record::encode_file_header(KIND_DATA, id).to_vec();
            file.extend_from_slice(part);
            if flags & FIX_CRCS != 0 {
                fix_crcs(&mut file, FILE_HEADER_LEN, false);
                header_roundtrip(&file[FILE_HEADER_LEN..]);
            }
            file
        })
        .collect();
    let expected = replay_files(&files);
    check_recovery(&files, &expected);
}

/// Decodes the header at the start of `buf` and checks what can be checked without a file.
fn header_roundtrip(buf: &[u8]) {
    let h = match record::decode_header(buf) {
        Ok(h) => h,
        Err(HeaderError::Incomplete) => {
            assert!(
                buf.len() < MAX_RECORD_HEADER_LEN,
                "a header was incomplete in {} bytes",
                buf.len()
            );
            return;
        }
        Err(HeaderError::Invalid(_)) => return,
    };
    assert!(
        (MIN_RECORD_LEN..=MAX_RECORD_HEADER_LEN).contains(&h.header_len)
            && h.header_len <= buf.len(),
        "header length {} out of range",
        h.header_len
    );
    let Some(total) = usize::try_from(h.total_len())
        .ok()
        .filter(|&t| t <= buf.len())
    else {
        return;
    };
    let rec = &buf[..total];
    let crc_ok = record::crc_matches(&h, rec);
    let key = &rec[h.header_len..h.header_len + h.key_len as usize];
    let value = &rec[h.header_len + h.key_len as usize..];
    let mut out = [0u8; MAX_RECORD_HEADER_LEN];
    let n = record::encode_header(h.kind, h.expire_at, key, value, &mut out);
    let again = [&out[..n], key, value].concat();
    let h2 = record::decode_header(&again).expect("a re-encoded header decodes");
    assert_eq!(
        (h2.kind, h2.expire_at, h2.key_len, h2.value_len),
        (h.kind, h.expire_at, h.key_len, h.value_len),
        "re-encoding changed the header"
    );
    assert!(
        record::crc_matches(&h2, &again),
        "a fresh record fails its CRC"
    );
    // Varints may be written with redundant continuation bytes; only a canonical header is
    // byte-for-byte what the encoder writes.
    if out[4..n] == rec[4..h.header_len] {
        assert_eq!(
            crc_ok,
            h.crc == h2.crc,
            "crc_matches disagrees with the encoder"
        );
    }
}

/// Rewrites the CRC of every record that decodes and fits, from `pos` on; inside a batch
/// envelope (not `nested`) the inner records first, then the envelope.
fn fix_crcs(buf: &mut [u8], mut pos: usize, nested: bool) {
    while pos < buf.len() {
        let Ok(h) = record::decode_header(&buf[pos..]) else {
            return;
        };
        let Some(end) = usize::try_from(h.total_len())
            .ok()
            .and_then(|t| pos.checked_add(t))
            .filter(|&e| e <= buf.len())
        else {
            return;
        };
        if h.kind == RecordType::Batch && !nested {
            fix_crcs(
                &mut buf[..end],
                pos + h.header_len + h.key_len as usize,
                true,
            );
        }
        let crc = crc32fast::hash(&buf[pos + 4..end]);
        buf[pos..pos + 4].copy_from_slice(&crc.to_le_bytes());
        pos = end;
    }
}

/// What opening the files must give.
#[derive(Debug)]
enum Expected {
    /// The open succeeds with these live entries, the newest file then `newest_len` bytes long.
    Open {
        live: BTreeMap<Vec<u8>, Vec<u8>>,
        newest_len: u64,
    },
    /// The open fails: corruption in data file `id` at `offset`.
    Corrupt { id: u32, offset: u64 },
}

/// How the replay of one file ended.
enum Walk {
    Complete,
    /// A crash tail from this offset on: recovery cuts it.
    Cut(u64),
    /// Corruption at this offset: recovery fails.
    Corrupt(u64),
}

/// The latest record of each key: its value and expiry, or `None` for a deletion.
type Latest = BTreeMap<Vec<u8>, Option<(Vec<u8>, u64)>>;

/// Replays `files` (ids 1, 2, ...; the last one is the newest) the way recovery does.
fn replay_files(files: &[Vec<u8>]) -> Expected {
    let mut latest = Latest::new();
    let mut newest_len = 0;
    for (file, id) in files.iter().zip(1u32..) {
        let is_last = id as usize == files.len();
        match walk(file, is_last, &mut latest) {
            Walk::Complete => newest_len = file.len() as u64,
            Walk::Cut(at) => newest_len = at,
            Walk::Corrupt(offset) => return Expected::Corrupt { id, offset },
        }
    }
    let live = latest
        .into_iter()
        .filter_map(|(k, v)| {
            let (v, t) = v?;
            (t == 0 || t > RECORD_NOW).then_some((k, v))
        })
        .collect();
    Expected::Open { live, newest_len }
}

/// One file's records, in order, as `recovery::scan` reads them.
fn walk(file: &[u8], is_last: bool, latest: &mut Latest) -> Walk {
    let mem = SliceFile(file);
    let len = mem.len();
    let mut reader = Window::new(&mem);
    let mut pos = FILE_HEADER_LEN as u64;
    while pos < len {
        let (h, bytes) = match recovery::read_record(&mut reader, pos, len) {
            Ok(r) => r,
            Err(bad) => return bad_record(&mem, pos, &bad, is_last),
        };
        assert_eq!(bytes.len() as u64, h.total_len(), "read_record length");
        assert!(
            record::crc_matches(&h, bytes),
            "read_record passed a bad CRC"
        );
        if h.kind == RecordType::Batch {
            if h.key_len != 0 {
                return Walk::Corrupt(pos);
            }
            let mut at = h.header_len;
            while at < bytes.len() {
                let inner = &bytes[at..];
                let Some(ih) = record::decode_header(inner)
                    .ok()
                    .filter(|ih| ih.total_len() <= inner.len() as u64)
                    .filter(|ih| record::crc_matches(ih, &inner[..ih.total_len() as usize]))
                    .filter(|ih| ih.kind != RecordType::Batch && ih.key_len > 0)
                    .filter(|ih| ih.kind != RecordType::Tombstone || ih.value_len == 0)
                else {
                    return Walk::Corrupt(pos + at as u64);
                };
                apply(&ih, &inner[..ih.total_len() as usize], latest);
                at += ih.total_len() as usize;
            }
        } else {
            apply(&h, bytes, latest);
        }
        pos += h.total_len();
    }
    Walk::Complete
}

/// Records what the record `rec` (with header `h`) does to its key.
fn apply(h: &RecordHeader, rec: &[u8], latest: &mut Latest) {
    let key_end = h.header_len + h.key_len as usize;
    let value = match h.kind {
        RecordType::Value | RecordType::ValueWithExpiry => {
            Some((rec[key_end..].to_vec(), h.expire_at.unwrap_or(0)))
        }
        RecordType::Tombstone | RecordType::Batch => None,
    };
    latest.insert(rec[h.header_len..key_end].to_vec(), value);
}

/// What recovery makes of the bad record at `pos`, by `recovery::cut_or_fail`'s rule.
fn bad_record(file: &SliceFile<'_>, pos: u64, bad: &Bad, is_last: bool) -> Walk {
    // `caskdb check` classifies damage in sealed files too: that search must hold up as well.
    match recovery::classify(file, pos, bad, false) {
        Ok(Damage::Corrupt { resume: Some(next) }) => check_resume(file, pos, next),
        Ok(Damage::Corrupt { resume: None }) => {}
        Ok(Damage::CrashTail { .. }) => panic!("a sealed file was given a crash tail"),
        Err(e) => panic!("classify failed on an in-memory file: {e}"),
    }
    if !is_last {
        return Walk::Corrupt(pos);
    }
    match recovery::classify(file, pos, bad, true) {
        Ok(Damage::CrashTail { .. }) => Walk::Cut(pos),
        Ok(Damage::Corrupt { resume: Some(next) }) => {
            check_resume(file, pos, next);
            Walk::Corrupt(pos)
        }
        Ok(Damage::Corrupt { resume: None }) => {
            panic!("newest file: corruption without a following record (recovery: unreachable)")
        }
        Err(e) => panic!("classify failed on an in-memory file: {e}"),
    }
}

/// A record that `classify` says follows the bad one at `pos` must be there, and valid.
fn check_resume(file: &SliceFile<'_>, pos: u64, next: u64) {
    assert!(
        next > pos && next < file.len(),
        "resume offset {next} for a bad record at {pos}"
    );
    let mut reader = Window::new(file);
    assert!(
        recovery::read_record(&mut reader, next, file.len()).is_ok(),
        "no valid record at the resume offset {next}"
    );
}

/// Opens the files on an in-memory file system and compares with `expected`.
fn check_recovery(files: &[Vec<u8>], expected: &Expected) {
    let vfs = Arc::new(MemVfs::default());
    let dir = Path::new("/caskdb-fuzz");
    for (file, id) in files.iter().zip(1u32..) {
        vfs.put(dir.join(data_file_name(id)), file.clone());
    }
    let clock = Arc::new(ManualClock::new(RECORD_NOW));
    let open = || {
        let mut opts = Options::default()
            .sync(SyncPolicy::Never)
            .auto_merge(false)
            .clock(clock.clone());
        opts.vfs = Some(vfs.clone() as Arc<dyn Vfs>);
        opts.open(dir)
    };
    match expected {
        Expected::Corrupt { id, offset } => match open() {
            Err(Error::Corrupted {
                file, offset: at, ..
            }) => {
                assert_eq!(file, dir.join(data_file_name(*id)), "corrupt file");
                assert_eq!(at, *offset, "offset of the corruption");
            }
            other => panic!("expected corruption in file {id} at {offset}; open gave {other:?}"),
        },
        Expected::Open { live, newest_len } => {
            let db = open().unwrap_or_else(|e| panic!("expected a clean open; got {e}"));
            let newest = dir.join(data_file_name(files.len() as u32));
            assert_eq!(vfs.len_of(&newest), Some(*newest_len), "newest file length");
            same_contents(&db, live, "after recovery");
            let mut live = live.clone();
            db.put(AFTER_KEY, b"v")
                .unwrap_or_else(|e| panic!("put after recovery: {e}"));
            live.insert(AFTER_KEY.to_vec(), b"v".to_vec());
            db.close().unwrap_or_else(|e| panic!("close: {e}"));
            let db = open().unwrap_or_else(|e| panic!("second open: {e}"));
            same_contents(&db, &live, "after a write and a second open");
        }
    }
}

/// `db` holds exactly `live`.
fn same_contents(db: &Db, live: &BTreeMap<Vec<u8>, Vec<u8>>, when: &str) {
    let got: Vec<(Vec<u8>, Vec<u8>)> = db
        .iter()
        .map(|r| {
            let (k, v) = r.unwrap_or_else(|e| panic!("{when}: iteration failed: {e}"));
            (k.to_vec(), v.to_vec())
        })
        .collect();
    let want: Vec<(Vec<u8>, Vec<u8>)> = live.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    assert_eq!(
        got, want,
        "{when}: contents differ from a replay of the records"
    );
    assert_eq!(db.len(), live.len(), "{when}: len");
    for (k, v) in live.iter().filter(|(k, _)| !k.is_empty()) {
        let got = db
            .get(k)
            .unwrap_or_else(|e| panic!("{when}: get {k:?}: {e}"));
        assert_eq!(got.as_deref(), Some(&v[..]), "{when}: get {k:?}");
    }
}

/// A read-only [`LogFile`] over borrowed bytes, for `read_record` and `classify`.
struct SliceFile<'a>(&'a [u8]);

/// The `n`-byte range of `bytes` at `offset`, or the `UnexpectedEof` a real file gives.
fn range_at(bytes: &[u8], offset: u64, n: usize) -> io::Result<&[u8]> {
    usize::try_from(offset)
        .ok()
        .and_then(|o| bytes.get(o..o.checked_add(n)?))
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "read past the end"))
}

impl LogFile for SliceFile<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn room(&self) -> u64 {
        0
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        buf.copy_from_slice(range_at(self.0, offset, buf.len())?);
        Ok(())
    }

    fn append(&self, _parts: &[&[u8]]) -> io::Result<()> {
        Err(io::Error::other("read-only"))
    }

    fn sync(&self, _metadata: bool) -> io::Result<()> {
        Ok(())
    }

    fn truncate(&self, _len: u64) -> io::Result<()> {
        Err(io::Error::other("read-only"))
    }
}

/// An in-memory file system: recovery over it costs no disk I/O and leaves nothing behind.
#[derive(Debug, Default)]
struct MemVfs {
    files: Mutex<BTreeMap<PathBuf, Arc<Mutex<Vec<u8>>>>>,
}

impl MemVfs {
    fn put(&self, path: PathBuf, bytes: Vec<u8>) {
        self.files.lock().insert(path, Arc::new(Mutex::new(bytes)));
    }

    fn len_of(&self, path: &Path) -> Option<u64> {
        let files = self.files.lock();
        files.get(path).map(|f| f.lock().len() as u64)
    }

    fn get(&self, path: &Path) -> io::Result<Arc<Mutex<Vec<u8>>>> {
        self.files
            .lock()
            .get(path)
            .cloned()
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))
    }
}

/// An open file of a [`MemVfs`].
struct MemFile {
    bytes: Arc<Mutex<Vec<u8>>>,
    capacity: u64,
    writable: bool,
}

impl LogFile for MemFile {
    fn len(&self) -> u64 {
        self.bytes.lock().len() as u64
    }

    fn room(&self) -> u64 {
        self.capacity.saturating_sub(self.len())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        let bytes = self.bytes.lock();
        buf.copy_from_slice(range_at(&bytes, offset, buf.len())?);
        Ok(())
    }

    fn append(&self, parts: &[&[u8]]) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::other("file is open read-only"));
        }
        let mut bytes = self.bytes.lock();
        let total: u64 = parts.iter().map(|p| p.len() as u64).sum();
        if bytes.len() as u64 + total > self.capacity {
            return Err(io::Error::other("append passes the file's capacity"));
        }
        for part in parts {
            bytes.extend_from_slice(part);
        }
        Ok(())
    }

    fn sync(&self, _metadata: bool) -> io::Result<()> {
        Ok(())
    }

    fn truncate(&self, len: u64) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::other("file is open read-only"));
        }
        let mut bytes = self.bytes.lock();
        if len < bytes.len() as u64 {
            bytes.truncate(len as usize);
        }
        Ok(())
    }
}

impl Vfs for MemVfs {
    fn create_dir_all(&self, _path: &Path) -> io::Result<()> {
        Ok(())
    }

    fn list(&self, dir: &Path) -> io::Result<Vec<String>> {
        let files = self.files.lock();
        Ok(files
            .keys()
            .filter(|p| p.parent() == Some(dir))
            .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
            .collect())
    }

    fn try_lock(&self, _path: &Path) -> io::Result<Option<Box<dyn std::any::Any + Send + Sync>>> {
        Ok(Some(Box::new(())))
    }

    fn create(&self, path: &Path, capacity: u64) -> io::Result<Box<dyn LogFile>> {
        let mut files = self.files.lock();
        if files.contains_key(path) {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                path.display().to_string(),
            ));
        }
        let bytes = Arc::new(Mutex::new(Vec::new()));
        files.insert(path.to_path_buf(), bytes.clone());
        Ok(Box::new(MemFile {
            bytes,
            capacity,
            writable: true,
        }))
    }

    fn open(&self, path: &Path, mode: OpenMode) -> io::Result<Box<dyn LogFile>> {
        let bytes = self.get(path)?;
        let len = bytes.lock().len() as u64;
        let (capacity, writable) = match mode {
            OpenMode::ReadOnly => (len, false),
            OpenMode::Append { capacity } => (capacity.max(len), true),
        };
        Ok(Box::new(MemFile {
            bytes,
            capacity,
            writable,
        }))
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.files
            .lock()
            .remove(path)
            .map(drop)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, path.display().to_string()))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut files = self.files.lock();
        let bytes = files
            .remove(from)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, from.display().to_string()))?;
        files.insert(to.to_path_buf(), bytes);
        Ok(())
    }

    fn link_or_copy(&self, from: &Path, to: &Path) -> io::Result<()> {
        let copy = self.get(from)?.lock().clone();
        self.put(to.to_path_buf(), copy);
        Ok(())
    }

    fn available_space(&self, _dir: &Path) -> io::Result<u64> {
        Ok(u64::MAX)
    }

    fn sync_dir(&self, _dir: &Path) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// hint
// ---------------------------------------------------------------------------------------------

/// `hint` flag: recompute the file header's CRC.
const FIX_HEADER_CRC: u8 = 1;
/// `hint` flag: recompute the trailer's CRC, so that mutated entries reach the entry parser.
const FIX_TRAILER_CRC: u8 = 2;
/// `hint` flag: pass a data-file length other than the one the trailer states (by
/// `flags >> 3`), so that the length check and what follows a mismatch run too.
const SKEW_LENGTH: u8 = 4;
/// Trailer: entry count u64, data file length u64, CRC u32, magic.
const HINT_TRAILER_LEN: usize = 24;

/// Decodes a hint file with `hint::decode`.
///
/// The first byte holds flags (`FIX_HEADER_CRC`, `FIX_TRAILER_CRC`, `SKEW_LENGTH`); the
/// rest is the hint file. The data file's id is the one in the file header and its length the
/// one in the trailer (skewed if asked), as when recovery pairs a hint with its data file. A
/// hint that decodes must tile the data file, fail for any other length or id, and decode to
/// the same entries once re-encoded.
pub fn hint(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut buf = rest.to_vec();
    if flags & FIX_HEADER_CRC != 0 && buf.len() >= FILE_HEADER_LEN {
        let crc = crc32fast::hash(&buf[..12]);
        buf[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    let trailer_at = buf.len().checked_sub(HINT_TRAILER_LEN);
    if flags & FIX_TRAILER_CRC != 0
        && let Some(t) = trailer_at.filter(|&t| t >= FILE_HEADER_LEN)
    {
        let crc = crc32fast::hash(&buf[FILE_HEADER_LEN..t + 16]);
        buf[t + 16..t + 20].copy_from_slice(&crc.to_le_bytes());
    }
    let id = le_u32(buf.get(8..12));
    let stated = trailer_at.map_or(0, |t| le_u64(buf.get(t + 8..t + 16)));
    let data_len = if flags & SKEW_LENGTH != 0 {
        stated.wrapping_add(u64::from(flags >> 3))
    } else {
        stated
    };
    let Ok(entries) = hint::decode(&buf, id, data_len) else {
        return;
    };
    // The entries tile the data file from its header to its end.
    let mut next = FILE_HEADER_LEN as u64;
    for e in &entries {
        assert_eq!(e.loc.file_id, id, "entry names another file");
        assert_eq!(e.loc.offset, next, "entries do not tile the data file");
        assert!(!e.key.is_empty(), "entry with an empty key");
        assert!(
            e.loc.len as usize >= MIN_RECORD_LEN,
            "record shorter than any record"
        );
        next += u64::from(e.loc.len);
    }
    assert_eq!(next, data_len, "entries do not cover the data file");
    assert!(
        entries.len() <= buf.len() / 5,
        "more entries than the bytes can hold"
    );
    assert!(
        hint::decode(&buf, id, data_len.wrapping_add(1)).is_err(),
        "length not checked"
    );
    assert!(
        hint::decode(&buf, id.wrapping_add(1), data_len).is_err(),
        "id not checked"
    );
    // Written again by the merge's writer, the entries decode to themselves.
    let mut w = HintWriter::new(id);
    let mut genuine = true;
    for e in &entries {
        let expire_at = e.loc.expiry();
        let kind = match expire_at {
            None => RecordType::Value,
            Some(_) => RecordType::ValueWithExpiry,
        };
        w.add(kind, expire_at, e.key, e.loc.offset, e.loc.len);
        // The smallest record that can hold this key (and expiry), with an empty value.
        let smallest =
            4 + 1 + 8 * u64::from(expire_at.is_some()) + varint_len(e.key.len() as u64) + 1;
        genuine &= u64::from(e.loc.len) >= smallest + e.key.len() as u64;
    }
    let again = w.finish(data_len);
    let decoded = hint::decode(&again, id, data_len)
        .unwrap_or_else(|e| panic!("a re-encoded hint does not decode: {e}"));
    assert_eq!(decoded, entries, "re-encoded hint decodes differently");
    // Recovery ignores hints over `max_len`: one a merge could write must stay under it.
    if genuine {
        assert!(
            again.len() as u64 <= hint::max_len(data_len),
            "a plausible hint of {} bytes is over max_len({data_len})",
            again.len()
        );
    }
}

fn le_u32(b: Option<&[u8]>) -> u32 {
    b.and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes)
}

fn le_u64(b: Option<&[u8]>) -> u64 {
    b.and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Bytes of the LEB128 encoding of `v`.
fn varint_len(mut v: u64) -> u64 {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}

// ---------------------------------------------------------------------------------------------
// ops
// ---------------------------------------------------------------------------------------------

/// Options of the database `ops` drives: small, so that limits and rotation are reached.
const MAX_KEY: usize = 48;
const MAX_VALUE: usize = 1500;
const MAX_BATCH: usize = 4096;
/// At most this many operations per input, so that one run stays fast.
const MAX_STEPS: usize = 200;
/// The clock starts here (ms since the epoch).
const START_MS: u64 = 1_000_000;

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

/// Runs the operations that `data` spells against a database in a scratch directory and
/// checks it against a `BTreeMap` model after every one.
///
/// The first byte picks the data file size (64 to 1084 bytes: most writes rotate); then each
/// operation is a byte (which one) followed by its arguments. Operations: put, put with TTL,
/// delete, the reads (`get`, `get_with_ttl`, `ttl`, `contains_key`), a `WriteBatch` commit,
/// full iteration forward or backward (values or keys), a range or prefix read from both ends,
/// merge, close and reopen (optionally with a zero-filled tail appended to the newest file, as
/// a crash leaves preallocated space), clock advance, `expire`, `persist`, `sync`, and an
/// iterator held open across other operations. Errors (empty or oversized keys, oversized
/// values or batches) must be exactly those the limits call for, and change nothing.
///
/// Panics, naming the step, when the database disagrees with the model. The scratch directory
/// is under `/dev/shm` when it exists (tmpfs: the many fsyncs of rotation cost nothing), else
/// the system's temporary directory; it is removed afterwards.
pub fn ops(data: &[u8]) {
    let Some((&size, rest)) = data.split_first() else {
        return;
    };
    let dir = ScratchDir::new().expect("create a scratch directory for the database");
    let clock = Arc::new(ManualClock::new(START_MS));
    let data_file_size = 64 + u64::from(size) * 4;
    let db = open_scratch(&dir.0, &clock, data_file_size, 0);
    let mut s = Session {
        input: Input(rest),
        dir,
        clock,
        data_file_size,
        db: Some(db),
        model: Model::new(),
        held: None,
        step: 0,
    };
    while !s.input.0.is_empty() && s.step < MAX_STEPS {
        s.step += 1;
        s.run_one();
        let now = s.clock.now_ms();
        s.model.retain(|_, (_, t)| live_at(*t, now));
        s.check_all();
    }
}

/// key → (value, expiry in ms since the epoch, 0 = never).
type Model = BTreeMap<Vec<u8>, (Vec<u8>, u64)>;

fn live_at(expire_at: u64, now: u64) -> bool {
    expire_at == 0 || expire_at > now
}

/// The expiry the engine gives a write made at `now` with `ttl`.
fn expiry(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(ttl.as_millis() as u64).max(1)
}

/// A directory removed when dropped.
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn new() -> io::Result<Self> {
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

fn open_scratch(dir: &Path, clock: &Arc<ManualClock>, data_file_size: u64, step: usize) -> Db {
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

/// The operation bytes, read front to back; zeros once they run out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// Mostly a key of [`KEYS`]; sometimes bytes from the input, empty, or too long.
    fn key(&mut self) -> Vec<u8> {
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
    fn value(&mut self) -> Vec<u8> {
        let b = self.byte();
        let len = match b {
            0..=0x9f => usize::from(b % 24),
            0xa0..=0xef => usize::from(b - 0xa0) * 18,
            _ => MAX_VALUE + 1 + usize::from(b & 3),
        };
        let seed = self.byte();
        (0..len).map(|i| seed ^ (i as u8)).collect()
    }

    fn ttl(&mut self) -> Duration {
        Duration::from_millis(u64::from(self.byte()) * 8)
    }

    fn bound(&mut self) -> Bound<Vec<u8>> {
        match self.byte() % 3 {
            0 => Bound::Unbounded,
            1 => Bound::Included(self.key()),
            _ => Bound::Excluded(self.key()),
        }
    }
}

fn in_bounds(k: &[u8], lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> bool {
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
fn put_error(key: &[u8], value: &[u8]) -> Option<&'static str> {
    key_error(key).or((value.len() > MAX_VALUE).then_some("ValueTooLarge"))
}

fn key_error(key: &[u8]) -> Option<&'static str> {
    if key.is_empty() {
        Some("KeyIsEmpty")
    } else if key.len() > MAX_KEY {
        Some("KeyTooLarge")
    } else {
        None
    }
}

fn error_name(e: &Error) -> &'static str {
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
type BatchOp = (Vec<u8>, Option<(Vec<u8>, Option<Duration>)>);

/// An iterator held open across operations, and what it must (and must not) return.
struct Held {
    iter: Iter,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    /// Live keys in range when it was made.
    at_start: BTreeSet<Vec<u8>>,
    /// Keys written (or deleted, or re-expired) since.
    touched: BTreeSet<Vec<u8>>,
    returned: BTreeSet<Vec<u8>>,
    /// Last key returned from the front, and from the back.
    front: Option<Vec<u8>>,
    back: Option<Vec<u8>>,
}

/// The state of one `ops` run. Fields drop in order: the iterator and the database before the
/// directory they live in.
struct Session<'a> {
    held: Option<Held>,
    /// `None` only while reopening.
    db: Option<Db>,
    input: Input<'a>,
    clock: Arc<ManualClock>,
    data_file_size: u64,
    model: Model,
    step: usize,
    dir: ScratchDir,
}

impl Session<'_> {
    fn db(&self) -> &Db {
        self.db
            .as_ref()
            .expect("the database is open between operations")
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The live value of `key` in the model, with its expiry.
    fn live(&self, key: &[u8]) -> Option<&(Vec<u8>, u64)> {
        let now = self.now();
        self.model.get(key).filter(|(_, t)| live_at(*t, now))
    }

    fn touch(&mut self, key: &[u8]) {
        if let Some(h) = &mut self.held {
            h.touched.insert(key.to_vec());
        }
    }

    /// Checks that `r` is the error `want` names, or succeeded if `want` is `None`; returns
    /// the value on success.
    fn expect<T: std::fmt::Debug>(
        &self,
        what: &str,
        r: Result<T>,
        want: Option<&str>,
    ) -> Option<T> {
        let step = self.step;
        match (r, want) {
            (Ok(v), None) => Some(v),
            (Err(e), Some(name)) if error_name(&e) == name => None,
            (r, want) => panic!("step {step}: {what}: got {r:?}, expected error {want:?}"),
        }
    }

    fn run_one(&mut self) {
        match self.input.byte() % 21 {
            0..=2 => {
                let (k, v) = (self.input.key(), self.input.value());
                self.put(k, v, None);
            }
            3 => {
                let (k, v, ttl) = (self.input.key(), self.input.value(), self.input.ttl());
                self.put(k, v, Some(ttl));
            }
            4 | 5 => {
                let k = self.input.key();
                self.delete(k);
            }
            6 => {
                let k = self.input.key();
                self.get(&k);
            }
            7 => self.batch(),
            8 | 9 => {
                let how = self.input.byte();
                self.iterate_all(how & 1 != 0, how & 2 != 0);
            }
            10 => self.range(),
            11 => {
                let stats = self.db().merge();
                self.expect("merge", stats, None);
            }
            12 => self.reopen(None),
            13 => {
                let n = usize::from(self.input.byte()) * 32;
                self.reopen(Some(n));
            }
            14 => {
                let by = self.input.ttl();
                self.clock.advance(by);
            }
            15 => {
                let (k, ttl) = (self.input.key(), self.input.ttl());
                self.expire(k, ttl);
            }
            16 => {
                let k = self.input.key();
                self.persist(k);
            }
            17 => {
                let r = self.db().sync();
                self.expect("sync", r, None);
            }
            18 => self.hold(),
            _ => self.step_held(),
        }
    }

    fn put(&mut self, key: Vec<u8>, value: Vec<u8>, ttl: Option<Duration>) {
        let now = self.now();
        let r = match ttl {
            None => self.db().put(&key, &value),
            Some(t) => self.db().put_with_ttl(&key, &value, t),
        };
        self.touch(&key);
        if self.expect("put", r, put_error(&key, &value)).is_some() {
            let t = ttl.map_or(0, |t| expiry(now, t));
            self.model.insert(key, (value, t));
        }
    }

    fn delete(&mut self, key: Vec<u8>) {
        let existed = self.live(&key).is_some();
        let r = self.db().delete(&key);
        self.touch(&key);
        let want = key.is_empty().then_some("KeyIsEmpty");
        if let Some(got) = self.expect("delete", r, want) {
            assert_eq!(got, existed, "step {}: delete {key:?} result", self.step);
            self.model.remove(&key);
        }
    }

    fn get(&mut self, key: &[u8]) {
        let step = self.step;
        let now = self.now();
        let want = self.live(key).cloned();
        let db = self.db();
        if key.is_empty() {
            self.expect("get", db.get(key), Some("KeyIsEmpty"));
            self.expect("get_with_ttl", db.get_with_ttl(key), Some("KeyIsEmpty"));
            self.expect("ttl", db.ttl(key), Some("KeyIsEmpty"));
            self.expect("contains_key", db.contains_key(key), Some("KeyIsEmpty"));
            return;
        }
        let value = self.expect("get", db.get(key), None).flatten();
        assert_eq!(
            value.as_deref(),
            want.as_ref().map(|(v, _)| &v[..]),
            "step {step}: get {key:?}"
        );
        let left = |t: u64| (t != 0).then(|| Duration::from_millis(t - now));
        let with_ttl = self
            .expect("get_with_ttl", db.get_with_ttl(key), None)
            .flatten();
        assert_eq!(
            with_ttl.map(|(v, d)| (v.to_vec(), d)),
            want.as_ref().map(|(v, t)| (v.clone(), left(*t))),
            "step {step}: get_with_ttl {key:?}"
        );
        let ttl = self.expect("ttl", db.ttl(key), None).flatten();
        assert_eq!(
            ttl,
            want.as_ref().and_then(|(_, t)| left(*t)),
            "step {step}: ttl {key:?}"
        );
        let has = self.expect("contains_key", db.contains_key(key), None);
        assert_eq!(
            has,
            Some(want.is_some()),
            "step {step}: contains_key {key:?}"
        );
    }

    fn batch(&mut self) {
        let n = self.input.byte() % 8;
        let mut planned: Vec<BatchOp> = Vec::new();
        for _ in 0..n {
            let kind = self.input.byte() % 3;
            let key = self.input.key();
            planned.push(match kind {
                0 => (key, Some((self.input.value(), None))),
                1 => (key, Some((self.input.value(), Some(self.input.ttl())))),
                _ => (key, None),
            });
        }
        let mut batch = self.db().batch();
        let mut encoded = 0;
        for (key, op) in &planned {
            encoded += MAX_RECORD_HEADER_LEN + key.len();
            match op {
                Some((value, None)) => batch.put(key, value),
                Some((value, Some(ttl))) => batch.put_with_ttl(key, value, *ttl),
                None => batch.delete(key),
            };
            encoded += op.as_ref().map_or(0, |(v, _)| v.len());
        }
        assert_eq!(batch.len(), planned.len(), "step {}: batch len", self.step);
        let want = if planned.is_empty() {
            None
        } else if encoded > MAX_BATCH {
            Some("BatchTooLarge")
        } else {
            planned.iter().find_map(|(key, op)| match op {
                Some((value, _)) => put_error(key, value),
                None => key_error(key),
            })
        };
        let now = self.now();
        let r = batch.commit();
        for (key, _) in &planned {
            self.touch(key);
        }
        if self.expect("batch commit", r, want).is_some() {
            for (key, op) in planned {
                match op {
                    Some((value, ttl)) => {
                        let t = ttl.map_or(0, |t| expiry(now, t));
                        self.model.insert(key, (value, t));
                    }
                    None => {
                        self.model.remove(&key);
                    }
                }
            }
        }
    }

    fn live_pairs(&self, lo: &Bound<Vec<u8>>, hi: &Bound<Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
        let now = self.now();
        self.model
            .iter()
            .filter(|(k, (_, t))| live_at(*t, now) && in_bounds(k, lo, hi))
            .map(|(k, (v, _))| (k.clone(), v.clone()))
            .collect()
    }

    fn iterate_all(&self, rev: bool, keys_only: bool) {
        let step = self.step;
        let mut want = self.live_pairs(&Bound::Unbounded, &Bound::Unbounded);
        if rev {
            want.reverse();
        }
        if keys_only {
            let keys = self.db().keys();
            let items: Vec<Result<crate::Bytes>> = if rev {
                keys.rev().collect()
            } else {
                keys.collect()
            };
            let got: Vec<Vec<u8>> = items
                .into_iter()
                .map(|r| {
                    r.unwrap_or_else(|e| panic!("step {step}: keys failed: {e}"))
                        .to_vec()
                })
                .collect();
            let want: Vec<Vec<u8>> = want.into_iter().map(|(k, _)| k).collect();
            assert_eq!(got, want, "step {step}: keys (rev: {rev})");
        } else {
            let iter = self.db().iter();
            let items: Vec<Result<(crate::Bytes, crate::Bytes)>> = if rev {
                iter.rev().collect()
            } else {
                iter.collect()
            };
            let got: Vec<(Vec<u8>, Vec<u8>)> = items
                .into_iter()
                .map(|r| {
                    let (k, v) = r.unwrap_or_else(|e| panic!("step {step}: iter failed: {e}"));
                    (k.to_vec(), v.to_vec())
                })
                .collect();
            assert_eq!(got, want, "step {step}: iter (rev: {rev})");
        }
    }

    /// A range or prefix read, taking from the front or the back as the input says.
    fn range(&mut self) {
        let step = self.step;
        let how = self.input.byte();
        let (mut iter, want) = if how & 1 == 0 {
            let (lo, hi) = (self.input.bound(), self.input.bound());
            let want = self.live_pairs(&lo, &hi);
            (self.db().range::<Vec<u8>, _>((lo, hi)), want)
        } else {
            let p = self.input.key();
            let mut want = self.live_pairs(&Bound::Unbounded, &Bound::Unbounded);
            want.retain(|(k, _)| k.starts_with(&p));
            (self.db().prefix(&p), want)
        };
        let pattern = self.input.byte();
        let (mut front, mut back) = (Vec::new(), Vec::new());
        for i in 0usize.. {
            let rev = (pattern >> (i % 8)) & 1 != 0;
            let item = if rev { iter.next_back() } else { iter.next() };
            let Some(item) = item else { break };
            let (k, v) = item.unwrap_or_else(|e| panic!("step {step}: range read failed: {e}"));
            let end = if rev { &mut back } else { &mut front };
            end.push((k.to_vec(), v.to_vec()));
        }
        front.extend(back.into_iter().rev());
        assert_eq!(
            front, want,
            "step {step}: range/prefix read (how {how}, pattern {pattern})"
        );
    }

    fn reopen(&mut self, zero_tail: Option<usize>) {
        let step = self.step;
        let drop_late = self.input.byte() & 1 != 0;
        let db = self
            .db
            .take()
            .expect("the database is open between operations");
        db.close()
            .unwrap_or_else(|e| panic!("step {step}: close failed: {e}"));
        if let Some(h) = &mut self.held {
            // A closed handle's iterators say so once, then end.
            let first = h.iter.next();
            assert!(
                matches!(first, Some(Err(Error::Closed))),
                "step {step}: iterator after close gave {first:?}"
            );
            assert!(
                h.iter.next().is_none(),
                "step {step}: iterator went on after Closed"
            );
            assert!(
                h.iter.next_back().is_none(),
                "step {step}: iterator went on after Closed"
            );
        }
        if !drop_late {
            self.held = None;
        }
        if let Some(n) = zero_tail.filter(|&n| n > 0) {
            append_zeros(&self.dir.0, n).expect("append zeros to the newest data file");
        }
        self.db = Some(open_scratch(
            &self.dir.0,
            &self.clock,
            self.data_file_size,
            step,
        ));
        // Dropping the last clone of the closed handle now must not touch the reopened files.
        self.held = None;
    }

    fn expire(&mut self, key: Vec<u8>, ttl: Duration) {
        let step = self.step;
        let now = self.now();
        let exists = self.live(&key).is_some();
        let r = self.db().expire(&key, ttl);
        self.touch(&key);
        match r {
            // Documented as KeyIsEmpty; an empty key is also simply never found.
            Err(Error::KeyIsEmpty) | Ok(false) if key.is_empty() => {}
            Ok(got) => {
                assert_eq!(got, exists, "step {step}: expire {key:?} result");
                if let Some(entry) = self.model.get_mut(&key).filter(|_| got) {
                    entry.1 = expiry(now, ttl);
                }
            }
            Err(e) => panic!("step {step}: expire {key:?}: {e}"),
        }
    }

    fn persist(&mut self, key: Vec<u8>) {
        let step = self.step;
        let had = self.live(&key).is_some_and(|(_, t)| *t != 0);
        let r = self.db().persist(&key);
        self.touch(&key);
        match r {
            Err(Error::KeyIsEmpty) | Ok(false) if key.is_empty() => {}
            Ok(got) => {
                assert_eq!(got, had, "step {step}: persist {key:?} result");
                if let Some(entry) = self.model.get_mut(&key).filter(|_| got) {
                    entry.1 = 0;
                }
            }
            Err(e) => panic!("step {step}: persist {key:?}: {e}"),
        }
    }

    /// Opens an iterator over a range, replacing the one held.
    fn hold(&mut self) {
        let (lo, hi) = (self.input.bound(), self.input.bound());
        let at_start = self
            .live_pairs(&lo, &hi)
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let iter = self.db().range::<Vec<u8>, _>((lo.clone(), hi.clone()));
        self.held = Some(Held {
            iter,
            lo,
            hi,
            at_start,
            touched: BTreeSet::new(),
            returned: BTreeSet::new(),
            front: None,
            back: None,
        });
    }

    /// Takes a few entries from the held iterator, checking each against the model as it is
    /// now: in range, in order, never twice, with the current value; and once it ends, every
    /// key that was live at its start and was left alone must have been returned.
    fn step_held(&mut self) {
        let step = self.step;
        let count = 1 + self.input.byte() % 8;
        let pattern = self.input.byte();
        let now = self.now();
        let Some(h) = &mut self.held else {
            return;
        };
        for i in 0..count {
            let rev = (pattern >> i) & 1 != 0;
            let item = if rev {
                h.iter.next_back()
            } else {
                h.iter.next()
            };
            let Some(item) = item else {
                for k in &h.at_start {
                    let still = self.model.get(k).is_some_and(|(_, t)| live_at(*t, now));
                    if still && !h.touched.contains(k) {
                        assert!(
                            h.returned.contains(k),
                            "step {step}: held iterator ended without {:?}",
                            crate::Bytes::copy_from_slice(k)
                        );
                    }
                }
                return;
            };
            let (key, v) = item.unwrap_or_else(|e| panic!("step {step}: held iterator: {e}"));
            let k = key.to_vec();
            let end = if rev { "next_back" } else { "next" };
            assert!(
                in_bounds(&k, &h.lo, &h.hi),
                "step {step}: held iterator {end}() gave {key:?}, out of range"
            );
            let shown = |k: &Option<Vec<u8>>| k.as_deref().map(crate::Bytes::copy_from_slice);
            assert!(
                h.front.as_ref().is_none_or(|f| k > *f) && h.back.as_ref().is_none_or(|b| k < *b),
                "step {step}: held iterator {end}() gave {key:?} out of order: the last keys \
                 returned were {:?} from the front and {:?} from the back",
                shown(&h.front),
                shown(&h.back),
            );
            assert!(
                h.returned.insert(k.clone()),
                "step {step}: held iterator gave {key:?} twice"
            );
            let want = self.model.get(&k).filter(|(_, t)| live_at(*t, now));
            assert_eq!(
                Some(&v[..]),
                want.map(|(v, _)| &v[..]),
                "step {step}: held iterator value of {key:?}"
            );
            if rev {
                h.back = Some(k);
            } else {
                h.front = Some(k);
            }
        }
    }

    /// After every operation: the database holds what the model holds.
    fn check_all(&self) {
        let step = self.step;
        let want = self.live_pairs(&Bound::Unbounded, &Bound::Unbounded);
        let db = self.db();
        assert_eq!(db.len(), want.len(), "step {step}: len");
        let got: Vec<_> = db
            .iter()
            .map(|r| {
                let (k, v) = r.unwrap_or_else(|e| panic!("step {step}: iteration failed: {e}"));
                (k.to_vec(), v.to_vec())
            })
            .collect();
        assert_eq!(got, want, "step {step}: contents");
        let stats = self.expect("stats", db.stats(), None).unwrap_or_default();
        assert_eq!(stats.keys, want.len(), "step {step}: stats.keys");
        for f in &stats.files {
            assert!(
                f.dead_bytes <= f.total_bytes,
                "step {step}: file {} has {} dead bytes of {}",
                f.id,
                f.dead_bytes,
                f.total_bytes
            );
        }
    }
}

/// Appends `n` zero bytes to the newest data file in `dir`: preallocated space that a crash
/// left unwritten.
fn append_zeros(dir: &Path, n: usize) -> io::Result<()> {
    let newest = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok()?.file_name().to_str().and_then(parse_data_file_name))
        .max()
        .ok_or_else(|| io::Error::other("no data file"))?;
    std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(data_file_name(newest)))?
        .write_all(&vec![0u8; n])
}
