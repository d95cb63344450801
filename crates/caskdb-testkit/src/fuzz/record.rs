//! The `record` harness: data files built from fuzz input, replayed by a plain reading of the
//! record format and by the engine's recovery, which must agree.

use std::collections::BTreeMap;
use std::io;
use std::path::Path;
use std::sync::Arc;

use caskdb::testing::{
    Bad, Damage, FILE_HEADER_LEN, HeaderError, KIND_DATA, MAX_RECORD_HEADER_LEN, MIN_RECORD_LEN,
    RecordHeader, RecordType, Window, classify, crc_matches, data_file_name, decode_header,
    encode_file_header, encode_header, read_record,
};
use caskdb::{Db, Error, LogFile, ManualClock, Options, SyncPolicy, check_read};

use crate::model::pairs;
use crate::simfs::SimVfs;

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
            let mut file = encode_file_header(KIND_DATA, id).to_vec();
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
    let h = match decode_header(buf) {
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
    let crc_ok = crc_matches(&h, rec);
    let key = &rec[h.header_len..h.header_len + h.key_len as usize];
    let value = &rec[h.header_len + h.key_len as usize..];
    let mut out = [0u8; MAX_RECORD_HEADER_LEN];
    let n = encode_header(h.kind, h.expire_at, key, value, &mut out);
    let again = [&out[..n], key, value].concat();
    let h2 = decode_header(&again).expect("a re-encoded header decodes");
    assert_eq!(
        (h2.kind, h2.expire_at, h2.key_len, h2.value_len),
        (h.kind, h.expire_at, h.key_len, h.value_len),
        "re-encoding changed the header"
    );
    assert!(crc_matches(&h2, &again), "a fresh record fails its CRC");
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
        let Ok(h) = decode_header(&buf[pos..]) else {
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

/// One file's records, in order, as recovery reads them.
fn walk(file: &[u8], is_last: bool, latest: &mut Latest) -> Walk {
    let mem = SliceFile(file);
    let len = mem.len();
    let mut reader = Window::new(&mem);
    let mut pos = FILE_HEADER_LEN as u64;
    while pos < len {
        let (h, bytes) = match read_record(&mut reader, pos, len) {
            Ok(r) => r,
            Err(bad) => return bad_record(&mem, pos, &bad, is_last),
        };
        assert_eq!(bytes.len() as u64, h.total_len(), "read_record length");
        assert!(crc_matches(&h, bytes), "read_record passed a bad CRC");
        if h.kind == RecordType::Batch {
            if h.key_len != 0 {
                return Walk::Corrupt(pos);
            }
            let mut at = h.header_len;
            while at < bytes.len() {
                let inner = &bytes[at..];
                let Some(ih) = decode_header(inner)
                    .ok()
                    .filter(|ih| ih.total_len() <= inner.len() as u64)
                    .filter(|ih| crc_matches(ih, &inner[..ih.total_len() as usize]))
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

/// What recovery makes of the bad record at `pos`, by `classify`'s rule.
fn bad_record(file: &SliceFile<'_>, pos: u64, bad: &Bad, is_last: bool) -> Walk {
    // `caskdb check` classifies damage in sealed files too: that search must hold up as well.
    match classify(file, pos, bad, false) {
        Ok(Damage::Corrupt { resume: Some(next) }) => check_resume(file, pos, next),
        Ok(Damage::Corrupt { resume: None }) => {}
        Ok(Damage::CrashTail { .. }) => panic!("a sealed file was given a crash tail"),
        Err(e) => panic!("classify failed on an in-memory file: {e}"),
    }
    if !is_last {
        return Walk::Corrupt(pos);
    }
    match classify(file, pos, bad, true) {
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
        read_record(&mut reader, next, file.len()).is_ok(),
        "no valid record at the resume offset {next}"
    );
}

/// Opens the files on an in-memory file system and compares with `expected`.
fn check_recovery(files: &[Vec<u8>], expected: &Expected) {
    let vfs = SimVfs::new();
    let dir = Path::new("/caskdb-fuzz");
    for (file, id) in files.iter().zip(1u32..) {
        vfs.put(&dir.join(data_file_name(id)), file.clone());
    }
    let clock = Arc::new(ManualClock::new(RECORD_NOW));
    let open = || {
        // Small files: the simulated disk fills a file's whole capacity with zeros at the
        // first append, as preallocation does.
        let opts = Options::default()
            .data_file_size(1 << 20)
            .sync(SyncPolicy::Never)
            .auto_merge(false)
            .clock(clock.clone());
        vfs.options(opts).open(dir)
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
            let len = vfs.read(&newest).map(|b| b.len() as u64);
            assert_eq!(len, Some(*newest_len), "newest file length");
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
    let got = pairs(db.iter(), when);
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

impl LogFile for SliceFile<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn capacity(&self) -> u64 {
        self.len()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        check_read(offset, buf.len(), self.len())?;
        let at = offset as usize;
        buf.copy_from_slice(&self.0[at..at + buf.len()]);
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
