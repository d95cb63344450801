//! Crash recovery: torn and zero-filled tails are cut at exactly the last whole record; a bad
//! record anywhere else is `Error::Corrupted` naming file and offset.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use caskdb::{Db, Error, Options};
use common::{
    copy_of, data_files, files_of, key, put_keys, set_len, temp_db, unsynced, value, zero,
};

#[derive(Clone, Debug)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn apply(model: &mut Model, op: &Op) {
    match op {
        Op::Put(k, v) => {
            model.insert(k.clone(), v.clone());
        }
        Op::Delete(k) => {
            model.remove(k);
        }
    }
}

fn assert_state(db: &Db, model: &Model, all_keys: &[Vec<u8>], context: &str) {
    assert_eq!(db.len(), model.len(), "{context}: len");
    for k in all_keys {
        let got = db.get(k).unwrap();
        assert_eq!(
            got.as_deref(),
            model.get(k).map(Vec::as_slice),
            "{context}: key {}",
            String::from_utf8_lossy(k)
        );
    }
}

/// Writes `ops` one by one into a fresh single-file database and returns, for each op, the file
/// length once it was written (the record's end offset), plus the data file path.
fn write_ops(dir: &Path, ops: &[Op]) -> (Vec<u64>, PathBuf) {
    let db = unsynced().open(dir).unwrap();
    let mut ends = Vec::new();
    for op in ops {
        match op {
            Op::Put(k, v) => db.put(k, v).unwrap(),
            Op::Delete(k) => assert!(db.delete(k).unwrap()),
        }
        ends.push(db.stats().unwrap().total_bytes);
    }
    db.close().unwrap();
    let files = data_files(dir);
    assert_eq!(files.len(), 1);
    (ends, files[0].clone())
}

fn some_ops() -> Vec<Op> {
    let mut ops: Vec<Op> = (0..20).map(|i| Op::Put(key(i), value(i))).collect();
    // the last records mix an overwrite, a delete, a big value and an empty value
    ops.push(Op::Put(key(3), b"overwritten".to_vec()));
    ops.push(Op::Delete(key(4)));
    ops.push(Op::Put(key(100), vec![b'x'; 700]));
    ops.push(Op::Put(key(101), Vec::new()));
    ops.push(Op::Delete(key(3)));
    ops
}

/// `some_ops` written by `write_ops` into a directory of their own.
struct Written {
    dir: tempfile::TempDir,
    ops: Vec<Op>,
    /// The end offset of each op's record.
    ends: Vec<u64>,
    file: PathBuf,
}

impl Written {
    fn some_ops() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ops = some_ops();
        let (ends, file) = write_ops(dir.path(), &ops);
        Written {
            dir,
            ops,
            ends,
            file,
        }
    }

    /// The length of the data file.
    fn len(&self) -> u64 {
        *self.ends.last().unwrap()
    }
}

fn keys_of(ops: &[Op]) -> Vec<Vec<u8>> {
    let mut keys: Vec<Vec<u8>> = ops
        .iter()
        .map(|op| match op {
            Op::Put(k, _) | Op::Delete(k) => k.clone(),
        })
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

/// The expected state after a crash that kept the first `cut` bytes of the file.
fn model_at(ops: &[Op], ends: &[u64], cut: u64) -> Model {
    let mut model = Model::new();
    for (op, &end) in ops.iter().zip(ends) {
        if end <= cut {
            apply(&mut model, op);
        }
    }
    model
}

/// Damages a copy of the database, reopens it, checks the state is exactly the whole records
/// that survived, then checks that writing continues correctly after the cut.
fn check_cut(written: &Written, cut: u64, damage: impl Fn(&Path)) {
    let (ops, ends) = (&written.ops, &written.ends);
    let work = copy_of(written.dir.path());
    let file = data_files(work.path())[0].clone();
    damage(&file);
    let context = format!("cut at {cut}");
    let db = Db::open(work.path()).unwrap_or_else(|e| panic!("{context}: open failed: {e}"));
    let mut model = model_at(ops, ends, cut);
    let keys = keys_of(ops);
    assert_state(&db, &model, &keys, &context);
    // the cut is exact: the file now ends at the last whole record
    let last_whole = ends
        .iter()
        .copied()
        .filter(|&e| e <= cut)
        .max()
        .unwrap_or(16);
    assert_eq!(db.stats().unwrap().total_bytes, last_whole, "{context}");
    // new writes land after the last good record and survive a restart
    db.put("after-crash", "ok").unwrap();
    model.insert(b"after-crash".to_vec(), b"ok".to_vec());
    drop(db);
    let db = Db::open(work.path()).unwrap();
    assert_state(&db, &model, &keys, &context);
    assert_eq!(db.get("after-crash").unwrap().unwrap(), "ok");
}

#[test]
fn truncating_the_newest_file_at_every_byte_of_its_last_records_keeps_exactly_the_whole_ones() {
    let written = Written::some_ops();
    let ends = &written.ends;
    let from = ends[ends.len() - 7]; // the last six records, every byte
    for cut in from..written.len() {
        check_cut(&written, cut, |f| set_len(f, cut));
    }
    // and inside the file header: the newest file is reinitialised, empty
    for cut in [0u64, 1, 15] {
        let work = copy_of(written.dir.path());
        set_len(&data_files(work.path())[0], cut);
        if cut == 0 {
            let db = Db::open(work.path()).unwrap();
            assert_eq!(db.len(), 0);
        } else {
            // a partial non-zero header is not something a crash produces: refuse it
            assert!(matches!(
                Db::open(work.path()),
                Err(Error::Corrupted { .. })
            ));
        }
    }
}

#[test]
fn a_zero_filled_tail_is_cut_at_every_byte_of_the_last_records() {
    let written = Written::some_ops();
    let file_len = written.len();
    let from = written.ends[written.ends.len() - 4];
    for cut in from..file_len {
        check_cut(&written, cut, |f| {
            let mut file = OpenOptions::new().write(true).open(f).unwrap();
            file.seek(SeekFrom::Start(cut)).unwrap();
            // zeros over the lost bytes and past the old end, like preallocated blocks
            file.write_all(&vec![0u8; (file_len - cut) as usize + 8192])
                .unwrap();
        });
    }
}

#[test]
fn a_garbage_tail_is_cut() {
    let written = Written::some_ops();
    check_cut(&written, written.len(), |f| {
        let mut file = OpenOptions::new().append(true).open(f).unwrap();
        file.write_all(&[0xde, 0xad, 0xbe, 0xef, 0x01, 0x42, 0x99, 0x13, 0x37])
            .unwrap();
    });
}

fn flip_bit(path: &Path, offset: u64, bit: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 1 << bit;
    // write in place (not a new inode), so an open mapping sees it too
    let mut f = OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&bytes[offset as usize..offset as usize + 1])
        .unwrap();
}

fn expect_corrupted(result: Result<impl std::fmt::Debug, Error>, file: &Path, offset: u64) {
    match result {
        Err(Error::Corrupted {
            file: f,
            offset: o,
            reason,
        }) => {
            assert_eq!(f, file, "file named in the error");
            assert_eq!(o, offset, "offset named in the error ({reason})");
            let msg = Error::Corrupted {
                file: f,
                offset: o,
                reason,
            }
            .to_string();
            assert!(msg.contains(&file.display().to_string()) && msg.contains(&offset.to_string()));
        }
        other => panic!(
            "expected Corrupted at {}:{offset}, got {other:?}",
            file.display()
        ),
    }
}

#[test]
fn a_flipped_bit_in_a_sealed_file_fails_open_with_file_and_offset() {
    let (dir, db) = temp_db(files_of(1024));
    let mut offsets = Vec::new(); // (file id, record offset, record len) of the first file
    for i in 0..60 {
        let before = db.stats().unwrap();
        db.put(key(i), value(i)).unwrap();
        let after = db.stats().unwrap();
        if after.files.len() == 1 {
            offsets.push((before.total_bytes, after.total_bytes - before.total_bytes));
        }
    }
    assert!(db.stats().unwrap().data_files > 2);
    drop(db);
    let first = data_files(dir.path())[0].clone();
    // a bit in the crc, the type, the lengths, the key and the value of the third record
    let (rec, len) = offsets[2];
    for (at, bit) in [(0, 0), (4, 1), (5, 2), (6, 3), (8, 4), (len - 1, 7)] {
        let work = copy_of(dir.path());
        let file = work.path().join(first.file_name().unwrap());
        flip_bit(&file, rec + at, bit);
        expect_corrupted(Db::open(work.path()), &file, rec);
    }
}

#[test]
fn a_flipped_bit_before_valid_records_of_the_newest_file_is_corruption_not_a_tail() {
    let written = Written::some_ops();
    let file = &written.file;
    let rec = written.ends[9]; // start of the 11th record: valid records follow it
    flip_bit(file, rec + 7, 0);
    expect_corrupted(Db::open(written.dir.path()), file, rec);
    // the data is still all there: nothing was cut
    assert_eq!(fs::metadata(file).unwrap().len(), written.len());
}

#[test]
fn a_flipped_bit_while_open_makes_get_fail_with_file_and_offset() {
    let (dir, db) = temp_db(files_of(1024));
    let mut first_of_active = 0; // the key whose put opened the newest file
    for i in 0..60 {
        let files = db.stats().unwrap().data_files;
        db.put(key(i), value(i)).unwrap();
        if db.stats().unwrap().data_files > files {
            first_of_active = i;
        }
    }
    let files = data_files(dir.path());
    assert!(files.len() > 2);
    // key 0 is the first record of the first (sealed) file, at offset 16 (after the header)
    flip_bit(&files[0], 16 + 30, 3);
    expect_corrupted(db.get(key(0)), &files[0], 16);
    assert_eq!(
        db.get(key(1)).unwrap().unwrap(),
        value(1),
        "other records are unaffected"
    );
    // the same in the active file, which is being appended to
    let active = files.last().unwrap();
    flip_bit(active, 16 + 40, 1);
    expect_corrupted(db.get(key(first_of_active)), active, 16);
    assert_eq!(db.get(key(59)).unwrap().unwrap(), value(59));
}

/// Builds a closed two-file database and returns the (sealed, newest) paths.
fn two_files(dir: &Path) -> Vec<PathBuf> {
    let db = files_of(1024).open(dir).unwrap();
    let mut i = 0;
    while db.stats().unwrap().data_files < 2 {
        db.put(key(i), value(i)).unwrap();
        i += 1;
    }
    db.close().unwrap();
    data_files(dir)
}

/// A valid data-file header for file `id` (see docs/FORMAT.md).
fn file_header(id: u32) -> Vec<u8> {
    let mut h = b"caskdbD\x01".to_vec();
    h.extend_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    h
}

#[test]
fn crash_states_around_rotation_open_with_everything() {
    // What a crash can leave when a new data file was just being created: an empty file, a
    // preallocated file whose header never reached the disk, a header-only file.
    type Contents = fn(u32) -> Vec<u8>;
    // (name, contents of the new file, whether it is kept as the newest file)
    let states: [(&str, Contents, bool); 3] = [
        ("empty new file", |_| Vec::new(), false),
        ("zeroed new file", |_| vec![0u8; 1 << 16], false),
        ("header-only new file", file_header, true),
    ];
    for (name, contents, kept) in states {
        let dir = tempfile::tempdir().unwrap();
        let files = two_files(dir.path());
        let expected = Db::open(dir.path()).unwrap().len();
        let last_id: u32 = files
            .last()
            .unwrap()
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let new_file = dir.path().join(format!("{:010}.data", last_id + 1));
        fs::write(&new_file, contents(last_id + 1)).unwrap();
        let db = Options::default()
            .data_file_size(1024)
            .open(dir.path())
            .unwrap();
        assert_eq!(new_file.exists(), kept, "{name}: blank files are removed");
        assert_eq!(db.len(), expected, "{name}");
        for i in 0..expected {
            assert_eq!(
                db.get(key(i)).unwrap().unwrap(),
                value(i),
                "{name}: key {i}"
            );
        }
        db.put("new", "write").unwrap();
        assert_eq!(
            db.stats().unwrap().data_files,
            if kept { 3 } else { 2 },
            "{name}"
        );
        drop(db);
        let db = Db::open(dir.path()).unwrap();
        assert_eq!(db.get("new").unwrap().unwrap(), "write", "{name}");
        assert_eq!(db.len(), expected + 1, "{name}");
    }
}

#[test]
fn damage_to_an_older_file_is_never_treated_as_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    let files = two_files(dir.path());
    let sealed = &files[0];
    let len = fs::metadata(sealed).unwrap().len();
    // a truncated sealed file
    set_len(sealed, len - 3);
    assert!(matches!(Db::open(dir.path()), Err(Error::Corrupted { file, .. }) if file == *sealed));
    // a zero-length sealed file
    set_len(sealed, 0);
    assert!(
        matches!(Db::open(dir.path()), Err(Error::Corrupted { file, offset: 0, .. }) if file == *sealed)
    );
}

#[test]
fn a_file_from_another_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let files = two_files(dir.path());
    let mut bytes = fs::read(&files[0]).unwrap();
    bytes[7] = 2; // version byte
    let crc = crc32fast::hash(&bytes[..12]);
    bytes[12..16].copy_from_slice(&crc.to_le_bytes());
    fs::write(&files[0], &bytes).unwrap();
    match Db::open(dir.path()) {
        Err(Error::IncompatibleVersion {
            file,
            found: 2,
            supported: 1,
        }) => assert_eq!(file, files[0]),
        other => panic!("expected IncompatibleVersion, got {other:?}"),
    }
}

#[test]
fn foreign_files_in_the_directory_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    fs::write(dir.path().join("12.data"), "not ours").unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("k", "v").unwrap();
    drop(db);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get("k").unwrap().unwrap(), "v");
    assert_eq!(fs::read(dir.path().join("notes.txt")).unwrap(), b"hello");
}

/// Writes records of ~117 bytes until the single data file passes `bytes`; returns their end
/// offsets and the file.
fn fill_one_file(dir: &Path, bytes: u64) -> (Vec<Op>, Vec<u64>, PathBuf) {
    let mut ops = Vec::new();
    let mut i = 0;
    let mut total = 0;
    while total < bytes {
        ops.push(Op::Put(key(i), value(i)));
        total += 117;
        i += 1;
    }
    let (ends, file) = write_ops(dir, &ops);
    (ops, ends, file)
}

#[test]
fn a_lost_page_followed_by_valid_records_is_cut_like_a_power_loss_leaves_it() {
    // Page writeback is unordered: a power loss can keep page 3 of the unsynced tail and lose
    // page 2, which then reads as zeros. The store opens with the prefix before the hole.
    let dir = tempfile::tempdir().unwrap();
    let (ops, ends, file) = fill_one_file(dir.path(), 6 * 4096);
    let hole = 2 * 4096u64;
    zero(&file, hole as usize..hole as usize + 4096);
    let db = Db::open(dir.path()).unwrap();
    // everything that ended before the hole survives; nothing from the first damaged record on
    let model = model_at(&ops, &ends, hole);
    assert_state(&db, &model, &keys_of(&ops), "lost page");
    let first_bad = ends.iter().copied().filter(|&e| e <= hole).max().unwrap();
    assert_eq!(db.stats().unwrap().total_bytes, first_bad);
}

#[test]
fn a_torn_large_value_that_embeds_valid_records_is_cut_not_taken_for_corruption() {
    let (dir, db) = temp_db(unsynced());
    put_keys(&db, 0..10);
    db.close().unwrap();
    let file = data_files(dir.path())[0].clone();
    // a value holding whole caskdb records (say, a backup of a data file), 40 KiB long
    let embedded = fs::read(&file).unwrap()[16..].to_vec();
    let big: Vec<u8> = embedded.iter().copied().cycle().take(40 << 10).collect();
    let db = Db::open(dir.path()).unwrap();
    let before = db.stats().unwrap().total_bytes;
    db.put("big", &big).unwrap();
    db.close().unwrap();
    // the crash lost the value's last pages: zeros from a page boundary inside it
    let from = ((before + 20_000) / 4096 + 1) * 4096;
    zero(&file, from as usize..);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get("big").unwrap(), None);
    assert_eq!(db.len(), 10);
    assert_eq!(db.stats().unwrap().total_bytes, before);
}

#[test]
fn a_large_torn_tail_of_random_bytes_is_cut() {
    // A crash while writing a big incompressible value, with no zero page left in it.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("small", "v").unwrap();
    let before = db.stats().unwrap().total_bytes;
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let big: Vec<u8> = (0..(8 << 20))
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    db.put("big", &big).unwrap();
    db.close().unwrap();
    let file = data_files(dir.path())[0].clone();
    let len = fs::metadata(&file).unwrap().len();
    for lost in [100u64, 5000, 4 << 20] {
        let work = copy_of(dir.path());
        let f = data_files(work.path())[0].clone();
        set_len(&f, len - lost);
        let db = Db::open(work.path()).unwrap();
        assert_eq!(db.get("big").unwrap(), None, "lost {lost}");
        assert_eq!(db.get("small").unwrap().unwrap(), "v");
        assert_eq!(db.stats().unwrap().total_bytes, before);
        // Missing less than a page, the record is not provably torn: the search through 8 MiB
        // of random bytes gives up, and the cut bytes are kept beside the file.
        let saved = f.with_file_name(format!("0000000001.data.torn-{before}"));
        assert_eq!(saved.exists(), lost < 4096, "lost {lost}");
        if lost < 4096 {
            assert_eq!(fs::metadata(&saved).unwrap().len(), len - lost - before);
        }
    }
}

/// Appends a raw record of `kind` with a valid CRC to `file`.
fn append_raw_record(file: &Path, kind: u8, extra: &[u8], key: &[u8], value: &[u8]) {
    let mut body = vec![kind];
    body.extend_from_slice(extra);
    body.push(key.len() as u8);
    body.push(value.len() as u8);
    body.extend_from_slice(key);
    body.extend_from_slice(value);
    let mut rec = crc32fast::hash(&body).to_le_bytes().to_vec();
    rec.extend_from_slice(&body);
    let mut f = OpenOptions::new().append(true).open(file).unwrap();
    f.write_all(&rec).unwrap();
}

#[test]
fn an_unknown_record_type_is_refused_and_expiring_records_written_by_hand_read_back() {
    // An unknown type with a valid CRC, followed by a valid record: corruption, not a tail.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("a", "1").unwrap();
    db.close().unwrap();
    let file = data_files(dir.path())[0].clone();
    let at = fs::metadata(&file).unwrap().len();
    append_raw_record(&file, 9, &[], b"k", b"v");
    append_raw_record(&file, 1, &[], b"b", b"2");
    match Db::open(dir.path()) {
        Err(Error::Corrupted { offset, reason, .. }) => {
            assert_eq!(offset, at);
            assert!(reason.contains("unknown record type 9"), "{reason}");
        }
        other => panic!("expected Corrupted, got {other:?}"),
    }

    // Type 3, laid out as docs/FORMAT.md says: one expired long ago, one far in the future.
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).unwrap();
    db.put("past", "old value").unwrap();
    db.close().unwrap();
    let file = data_files(dir.path())[0].clone();
    append_raw_record(&file, 3, &1_000u64.to_le_bytes(), b"past", b"x");
    append_raw_record(&file, 3, &u64::MAX.to_le_bytes(), b"future", b"y");
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(
        db.get("past").unwrap(),
        None,
        "the expired record shadows the older value"
    );
    assert_eq!(db.get("future").unwrap().unwrap(), "y");
    assert!(db.ttl("future").unwrap().is_some());
    assert_eq!(db.len(), 1);
}

#[test]
fn with_sealed_files_replayed_in_parallel_the_oldest_corruption_is_reported_and_nothing_is_cut() {
    let (dir, db) = temp_db(files_of(1024));
    put_keys(&db, 0..400);
    drop(db);
    let files = data_files(dir.path());
    assert!(files.len() > 20, "{} files", files.len());
    let newest = files.last().unwrap().clone();
    // A torn record at the newest file's end: open alone would cut it.
    let mut f = OpenOptions::new().append(true).open(&newest).unwrap();
    f.write_all(&[0x5a; 40]).unwrap();
    drop(f);
    let newest_before = fs::read(&newest).unwrap();
    // Corruption in two sealed files: whichever worker finds its own first, the error must
    // name the older file, as a replay in order would.
    let (older, younger) = (&files[5], &files[15]);
    for file in [younger, older] {
        let len = fs::metadata(file).unwrap().len();
        flip_bit(file, len - 1, 0);
    }
    for _ in 0..5 {
        match Db::open(dir.path()) {
            Err(Error::Corrupted { file, offset, .. }) => {
                assert_eq!(&file, older);
                assert!(offset < fs::metadata(older).unwrap().len());
            }
            other => panic!("expected corruption in {}, got {other:?}", older.display()),
        }
        assert_eq!(
            fs::read(&newest).unwrap(),
            newest_before,
            "the newest file must not be cut when the open fails"
        );
    }
}
