//! Online backup, and `check` / `repair`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;

use caskdb::{Db, Error, Options, check};
use common::{
    copy_of, data_files, hint_files, key, manual_merge, put_keys, set_len, temp_db, unsynced,
    value, xor_byte, zero,
};

fn opts() -> Options {
    manual_merge(8192)
}

#[test]
fn a_backup_taken_during_writes_holds_every_write_acknowledged_before_it() {
    let (_dir, db) = temp_db(opts());
    let dest = tempfile::tempdir().unwrap();
    let acked = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel();
    let before = thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                db.put(key(i), value(i)).unwrap();
                i += 1;
                acked.store(i, Ordering::SeqCst);
                if i == 2000 {
                    tx.send(()).unwrap();
                }
            }
        });
        rx.recv().unwrap();
        let before = acked.load(Ordering::SeqCst);
        db.backup(dest.path().join("copy")).unwrap();
        stop.store(true, Ordering::Relaxed);
        before
    });
    let copy = Db::open(dest.path().join("copy")).unwrap();
    for i in 0..before {
        assert_eq!(copy.get(key(i)).unwrap().unwrap(), value(i), "key {i}");
    }
    // whatever else it holds is whole and in order: a prefix of the writes
    let n = copy.len();
    assert!(n >= before);
    for i in 0..n {
        assert_eq!(copy.get(key(i)).unwrap().unwrap(), value(i));
    }
    assert_eq!(copy.get(key(n)).unwrap(), None);
}

#[test]
fn a_backup_is_independent_of_the_source_afterwards() {
    let (_dir, db) = temp_db(opts());
    let dest = tempfile::tempdir().unwrap();
    put_keys(&db, 0..500);
    db.merge().unwrap(); // hint files too
    for i in 0..100 {
        db.put(key(i), b"second").unwrap();
    }
    db.backup(dest.path()).unwrap();
    assert!(!hint_files(dest.path()).is_empty());
    // the source moves on: merges delete the files the backup linked
    for i in 0..500 {
        db.delete(key(i)).unwrap();
    }
    db.merge().unwrap();
    let copy = Db::open(dest.path()).unwrap();
    assert_eq!(copy.len(), 500);
    assert_eq!(copy.get(key(5)).unwrap().unwrap(), "second");
    assert_eq!(copy.get(key(400)).unwrap().unwrap(), value(400));
    copy.put("only-in-copy", "x").unwrap();
    assert_eq!(db.get("only-in-copy").unwrap(), None);
    assert!(db.is_empty());
}

#[test]
fn a_backup_refuses_a_destination_that_is_not_empty() {
    let dest = tempfile::tempdir().unwrap();
    fs::write(dest.path().join("something"), "x").unwrap();
    let (_dir, db) = temp_db(opts());
    match db.backup(dest.path()) {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
            assert!(e.to_string().contains("not empty"), "{e}");
        }
        other => panic!("expected an error, got {other:?}"),
    }
    assert_eq!(fs::read_dir(dest.path()).unwrap().count(), 1);
}

fn three_files() -> (tempfile::TempDir, usize) {
    let (dir, db) = temp_db(Options::default().data_file_size(2048));
    let mut n = 0;
    while db.stats().unwrap().data_files < 3 {
        db.put(key(n), value(n)).unwrap();
        n += 1;
    }
    db.close().unwrap();
    (dir, n)
}

#[test]
fn check_of_a_clean_database_finds_nothing_and_refuses_an_open_one() {
    let (dir, n) = three_files();
    let report = check(dir.path(), false, |_| {}).unwrap();
    assert!(
        report.is_clean() && report.problems.is_empty(),
        "{report:?}"
    );
    assert_eq!(report.data_files, 3);
    assert_eq!(report.records, n as u64);
    let db = Db::open(dir.path()).unwrap();
    assert!(matches!(
        check(dir.path(), false, |_| {}),
        Err(Error::Locked { .. })
    ));
    drop(db);
    let mut last = None;
    check(dir.path(), false, |p| last = Some(p)).unwrap();
    let last = last.unwrap();
    assert_eq!(last.bytes_done, last.bytes_total);
}

#[test]
fn repair_salvages_the_records_after_a_corrupt_region_and_reports_the_loss() {
    let (dir, n) = three_files();
    let first = data_files(dir.path())[0].clone();
    // damage the second record of the first (sealed) file: Db::open refuses the directory
    // (the byte is inside the first record or the second, not the last)
    let bytes = xor_byte(&first, 16 + 60, 0x55);
    assert!(matches!(Db::open(dir.path()), Err(Error::Corrupted { .. })));

    let report = check(dir.path(), false, |_| {}).unwrap();
    assert_eq!(report.problems.len(), 1, "{report:?}");
    let p = &report.problems[0];
    assert_eq!(p.file, first);
    assert!(
        !p.repaired && p.bytes > 0 && p.what.contains("resume"),
        "{p:?}"
    );
    assert_eq!(
        fs::read(&first).unwrap(),
        bytes,
        "check alone changes nothing"
    );

    let report = check(dir.path(), true, |_| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let db = Db::open(dir.path()).unwrap();
    let lost: Vec<usize> = (0..n)
        .filter(|&i| db.get(key(i)).unwrap().is_none())
        .collect();
    assert_eq!(
        lost.len(),
        1,
        "exactly the damaged record is lost: {lost:?}"
    );
    for i in (0..n).filter(|i| !lost.contains(i)) {
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i));
    }
    drop(db);
    assert!(
        check(dir.path(), false, |_| {})
            .unwrap()
            .problems
            .is_empty()
    );
}

#[test]
fn repair_cuts_a_torn_tail_and_removes_bad_hints_and_merge_leftovers() {
    let (dir, db) = temp_db(opts());
    put_keys(&db, 0..300);
    db.merge().unwrap();
    db.put("tail", "t").unwrap();
    db.close().unwrap();
    let newest = data_files(dir.path()).pop().unwrap();
    let mut f = fs::OpenOptions::new().append(true).open(&newest).unwrap();
    std::io::Write::write_all(&mut f, &[9, 9, 9, 1, 2]).unwrap();
    let hint = hint_files(dir.path())[0].clone();
    xor_byte(&hint, 20, 1);
    fs::write(dir.path().join("0000000099.data.merging"), "half").unwrap();

    let report = check(dir.path(), false, |_| {}).unwrap();
    assert_eq!(report.problems.len(), 3, "{report:?}");
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.file == newest && p.what.contains("torn tail"))
    );
    assert!(report.problems.iter().any(|p| p.file == hint));
    let report = check(dir.path(), true, |_| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert!(!hint.exists());
    assert!(!dir.path().join("0000000099.data.merging").exists());
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.len(), 301);
    assert_eq!(db.get("tail").unwrap().unwrap(), "t");
}

fn contents(db: &Db) -> Vec<(Vec<u8>, Vec<u8>)> {
    db.iter()
        .map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.to_vec())
        })
        .collect()
}

/// Repairing a copy of `dir` and opening another copy directly must give the same data.
fn repair_agrees_with_open(dir: &std::path::Path) -> Vec<(Vec<u8>, Vec<u8>)> {
    let (a, b) = (copy_of(dir), copy_of(dir));
    let opened = contents(&Db::open(a.path()).unwrap());
    let report = check(b.path(), true, |_| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let repaired = contents(&Db::open(b.path()).unwrap());
    assert_eq!(repaired, opened, "repair and open disagree");
    opened
}

#[test]
fn repair_treats_crash_damage_exactly_as_open_does() {
    // a batch torn at the tail of the newest file: wholly absent either way
    let (dir, db) = temp_db(opts());
    db.put("a", "1").unwrap();
    let mut b = db.batch();
    b.put("x", "1").put("y", "2").put("z", "3");
    b.commit().unwrap();
    db.close().unwrap();
    let f = data_files(dir.path()).pop().unwrap();
    set_len(&f, fs::metadata(&f).unwrap().len() - 4);
    assert_eq!(
        repair_agrees_with_open(dir.path()),
        [(b"a".to_vec(), b"1".to_vec())]
    );

    // a lost page in the newest file with valid records after it: the prefix before it
    let (dir, db) = temp_db(unsynced());
    put_keys(&db, 0..250);
    db.close().unwrap();
    zero(&data_files(dir.path())[0], 8192..12288);
    let kept = repair_agrees_with_open(dir.path());
    assert!(kept.len() > 50 && kept.len() < 250, "{}", kept.len());
}

#[test]
fn repair_drops_a_damaged_batch_whole() {
    let (dir, db) = temp_db(Options::default().data_file_size(1024));
    db.put("before", "1").unwrap();
    let at = db.stats().unwrap().total_bytes;
    let mut b = db.batch();
    b.put("x", "1").put("y", "2").put("z", "3");
    b.commit().unwrap();
    put_keys(&db, 0..40); // rotate: the batch ends up in a sealed file
    db.close().unwrap();
    // inside the batch's second record
    xor_byte(&data_files(dir.path())[0], at as usize + 30, 0x20);
    assert!(matches!(Db::open(dir.path()), Err(Error::Corrupted { .. })));
    let report = check(dir.path(), true, |_| {}).unwrap();
    assert!(report.is_clean(), "{report:?}");
    let db = Db::open(dir.path()).unwrap();
    for k in ["x", "y", "z"] {
        assert_eq!(db.get(k).unwrap(), None, "no part of the batch survives");
    }
    assert_eq!(db.get("before").unwrap().unwrap(), "1");
    assert_eq!(db.len(), 41);
}

#[test]
fn a_backup_into_the_database_itself_is_refused() {
    let (dir, db) = temp_db(opts());
    db.put("k", "v").unwrap();
    match db.backup(dir.path().join("backup")) {
        Err(Error::Io(e)) => assert!(e.to_string().contains("inside the database"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(!dir.path().join("backup").exists());
}

#[test]
fn a_checkpoint_may_lie_inside_the_database_and_opens_with_its_data() {
    let (dir, db) = temp_db(opts());
    for i in 0..50 {
        db.put(format!("k{i}"), format!("v{i}")).unwrap();
    }
    let inside = dir.path().join("raft/copy");
    db.checkpoint(&inside).unwrap();
    db.put("after", "x").unwrap();
    let copy = Db::open(&inside).unwrap();
    assert_eq!(copy.len(), 50);
    assert_eq!(copy.get("k7").unwrap().as_deref(), Some(&b"v7"[..]));
    drop(copy);
    // The database's own directory is not a place for a copy of it.
    assert!(matches!(db.checkpoint(dir.path()), Err(Error::Io(_))));
    // The database ignores the copy's directory inside its own.
    drop(db);
    assert_eq!(Db::open(dir.path()).unwrap().len(), 51);
}
