//! Merge: space comes back, nothing live is lost, deletes stay deleted, writes made during a
//! merge win, hints speed up open and fall back to scanning when damaged.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use caskdb::{Db, Error, Options, SyncPolicy};
use common::{
    copy_of, data_files, delete_both, hint_files, key, manual_merge, put_both, put_keys, reopen,
    set_len, temp_db, value, xor_byte,
};
use tempfile::TempDir;

fn opts() -> Options {
    manual_merge(4096)
}

fn check(db: &Db, model: &BTreeMap<Vec<u8>, Vec<u8>>, universe: impl Iterator<Item = usize>) {
    assert_eq!(db.len(), model.len());
    for i in universe {
        let k = key(i);
        assert_eq!(
            db.get(&k).unwrap().as_deref(),
            model.get(&k).map(Vec::as_slice),
            "key {i}"
        );
    }
}

/// Reopens `db` and checks that it holds `model` over `universe`.
fn reopen_and_check(
    db: Db,
    model: &BTreeMap<Vec<u8>, Vec<u8>>,
    universe: impl Iterator<Item = usize>,
) -> Db {
    let db = reopen(db, opts());
    check(&db, model, universe);
    db
}

/// A database of 300 keys written 5 times each, every third one deleted at the end; and what
/// it holds.
fn churned() -> (TempDir, Db, BTreeMap<Vec<u8>, Vec<u8>>) {
    let (dir, db) = temp_db(opts());
    let mut model = BTreeMap::new();
    for round in 0..5 {
        for i in 0..300 {
            let v = format!("{round}-{}", String::from_utf8(value(i)).unwrap()).into_bytes();
            db.put(key(i), &v).unwrap();
            model.insert(key(i), v);
        }
    }
    for i in (0..300).step_by(3) {
        assert!(db.delete(key(i)).unwrap());
        model.remove(&key(i));
    }
    (dir, db, model)
}

#[test]
fn merge_keeps_every_live_value_and_returns_the_space() {
    let (dir, db, model) = churned();
    let before = db.stats().unwrap();
    assert!(before.dead_bytes > before.live_bytes, "{before:?}");
    let m = db.merge().unwrap();
    assert_eq!(m.records_copied, model.len() as u64);
    assert_eq!(m.records_superseded, 0);
    assert_eq!(m.files_merged, before.data_files);
    let after = db.stats().unwrap();
    check(&db, &model, 0..300);
    assert_eq!(after.dead_bytes, 0, "{after:?}");
    // the merged files plus an empty active file: headers and live records only
    assert_eq!(after.total_bytes, m.bytes_after + 16);
    assert!(
        (after.total_bytes as f64) < 1.1 * after.live_bytes as f64,
        "disk {} vs live {}",
        after.total_bytes,
        after.live_bytes
    );
    // on disk, the merged files are exactly that size (the active file is preallocated)
    let files = data_files(dir.path());
    let merged: u64 = files[..files.len() - 1]
        .iter()
        .map(|f| fs::metadata(f).unwrap().len())
        .sum();
    assert_eq!(merged, m.bytes_after);
    assert_eq!(files.len(), m.files_written + 1);
    assert_eq!(hint_files(dir.path()).len(), m.files_written);
    let db = reopen_and_check(db, &model, 0..300);
    assert_eq!(db.stats().unwrap().dead_bytes, 0);
}

#[test]
fn deleted_keys_never_come_back_after_merges_and_restarts() {
    let (_dir, db, mut model) = churned();
    db.merge().unwrap();
    // delete more keys whose values now live in merged files, then merge again
    let deleted = delete_both(&db, &mut model, (1..300).step_by(3).map(key));
    assert_eq!(deleted, 100, "every one of them was there");
    let db = reopen_and_check(db, &model, 0..300);
    db.merge().unwrap();
    db.merge().unwrap(); // twice in a row, then restart (rosedb#242)
    let db = reopen_and_check(db, &model, 0..300);
    // and once more after a restart
    db.merge().unwrap();
    let db = reopen_and_check(db, &model, 0..300);
    assert_eq!(db.stats().unwrap().dead_bytes, 0);
}

#[test]
fn writes_made_during_a_merge_win_over_its_copies() {
    let (_dir, db) = temp_db(opts());
    let mut model = BTreeMap::new();
    for i in 0..5000 {
        db.put(key(i), value(i)).unwrap();
        model.insert(key(i), value(i));
    }
    for i in 0..2500 {
        db.put(key(i), value(i + 1)).unwrap(); // some garbage to merge
        model.insert(key(i), value(i + 1));
    }
    // The progress callback runs between chunks of copied records: write from it, to keys
    // the merge has already copied (low ids) and keys it has not reached yet (high ids).
    let mut calls = 0;
    let m = db
        .merge_with_progress(|_| {
            calls += 1;
            if calls == 2 {
                put_both(
                    &db,
                    &mut model,
                    (0..5000).step_by(50).map(key),
                    b"during-merge",
                );
                let deleted = delete_both(&db, &mut model, (25..5000).step_by(50).map(key));
                assert_eq!(deleted, 100, "every one of them was there");
                put_both(&db, &mut model, [key(9999)], b"new");
            }
        })
        .unwrap();
    assert!(calls > 2, "the merge copied in several chunks");
    assert!(m.records_superseded > 0, "{m:?}");
    check(&db, &model, (0..5000).chain([9999]));
    // the stale copies are counted as dead
    assert!(db.stats().unwrap().dead_bytes > 0);
    let db = reopen_and_check(db, &model, (0..5000).chain([9999]));
    db.merge().unwrap();
    reopen_and_check(db, &model, (0..5000).chain([9999]));
}

#[test]
fn readers_and_a_writer_thread_run_while_merges_run() {
    let (_dir, db) = temp_db(opts());
    put_keys(&db, 0..3000);
    let stop = AtomicBool::new(false);
    let writer_model = thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut n = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    let i = (n * 7919) % 3000;
                    let got = db.get(key(i)).unwrap().unwrap();
                    // either the original value or one the writer thread put
                    assert!(got == value(i) || got.starts_with(b"w-"), "key {i}");
                    n += 1;
                }
            });
        }
        let writer = s.spawn(|| {
            let mut model = BTreeMap::new();
            let mut n = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let i = 3000 + n % 500;
                let v = format!("w-{n}").into_bytes();
                db.put(key(i), &v).unwrap();
                model.insert(key(i), v);
                n += 1;
            }
            model
        });
        for _ in 0..3 {
            db.merge().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        writer.join().unwrap()
    });
    for (k, v) in &writer_model {
        assert_eq!(db.get(k).unwrap().unwrap(), v);
    }
    assert_eq!(db.len(), 3000 + writer_model.len());
    let db = reopen(db, opts());
    assert_eq!(db.len(), 3000 + writer_model.len());
    for (k, v) in &writer_model {
        assert_eq!(db.get(k).unwrap().unwrap(), v);
    }
}

#[test]
fn open_reads_hints_instead_of_values() {
    let (dir, db, model) = churned();
    db.merge().unwrap();
    drop(db);
    // Damage a value inside a merged file. A scan would refuse to open; the hint path does not
    // read values, so open succeeds and the damage shows only when that value is read.
    let merged = data_files(dir.path())[0].clone();
    // inside the value of the file's last record
    let at = fs::metadata(&merged).unwrap().len() - 3;
    xor_byte(&merged, at as usize, 0x40);
    let db = opts().open(dir.path()).unwrap();
    assert_eq!(db.len(), model.len());
    let bad: Vec<_> = model
        .keys()
        .filter(|k| matches!(db.get(k), Err(Error::Corrupted { .. })))
        .collect();
    assert_eq!(bad.len(), 1, "exactly the damaged record is reported");
    drop(db);
    // without its hint, the same file is scanned and the damage is found at open
    let hint = hint_files(dir.path())[0].clone();
    fs::remove_file(&hint).unwrap();
    assert!(matches!(
        opts().open(dir.path()),
        Err(Error::Corrupted { file, .. }) if file == merged
    ));
}

#[test]
fn a_missing_torn_or_corrupt_hint_falls_back_to_scanning() {
    let (base, db, model) = churned();
    db.merge().unwrap();
    drop(db);
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 4] = [
        ("missing", |h| fs::remove_file(h).unwrap()),
        ("torn", |h| set_len(h, fs::metadata(h).unwrap().len() / 2)),
        ("corrupt", |h| {
            xor_byte(h, 40, 1);
        }),
        ("empty", |h| fs::write(h, b"").unwrap()),
    ];
    for (name, damage) in damages {
        let dir = copy_of(base.path());
        for h in hint_files(dir.path()) {
            damage(&h);
        }
        let db = opts().open(dir.path()).unwrap();
        check(&db, &model, 0..300);
        assert_eq!(db.stats().unwrap().dead_bytes, 0, "{name}");
    }
}

#[test]
fn overwriting_the_same_keys_stays_bounded_with_automatic_merges_alone() {
    // The classic compaction test: 1000 rounds of setting the same 1000 keys.
    let dir = tempfile::tempdir().unwrap();
    let opts = Options::default()
        .data_file_size(64 << 10)
        .merge_min_dead_bytes(256 << 10)
        .sync(SyncPolicy::Never);
    let db = opts.clone().open(dir.path()).unwrap();
    // A background merge may delete a file between listing and stat: it no longer counts.
    let dir_size = || -> u64 {
        fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok()?.metadata().ok())
            .map(|m| m.len())
            .sum()
    };
    let mut largest = 0;
    let mut sizes = Vec::new();
    for round in 0..1000 {
        for k in 0..1000 {
            db.put(format!("key{k}"), format!("{round}")).unwrap();
        }
        let size = dir_size();
        largest = largest.max(size);
        sizes.push(size);
    }
    // ~21 MB were written; live data is ~20 KB. Without merging the directory would hold it all.
    assert!(largest < 4 << 20, "directory grew to {largest} bytes");
    let late = sizes[900..].iter().max().unwrap();
    let early = sizes[100..200].iter().max().unwrap();
    assert!(late <= &(early * 2), "still growing: {early} then {late}");
    let db = reopen(db, opts);
    assert_eq!(db.len(), 1000);
    for k in 0..1000 {
        assert_eq!(db.get(format!("key{k}")).unwrap().unwrap(), "999");
    }
}

#[test]
fn merging_an_empty_or_all_deleted_database_leaves_one_empty_file() {
    let (dir, db) = temp_db(opts());
    let m = db.merge().unwrap();
    assert_eq!((m.files_written, m.records_copied), (0, 0));
    put_keys(&db, 0..500);
    for i in 0..500 {
        db.delete(key(i)).unwrap();
    }
    assert!(db.stats().unwrap().data_files > 5);
    let m = db.merge().unwrap();
    assert_eq!((m.files_written, m.records_copied), (0, 0));
    let s = db.stats().unwrap();
    assert_eq!((s.keys, s.data_files, s.total_bytes), (0, 1, 16));
    assert_eq!(data_files(dir.path()).len(), 1);
    assert!(hint_files(dir.path()).is_empty());
    let db = reopen(db, opts());
    assert!(db.is_empty());
    assert_eq!(db.get(key(3)).unwrap(), None);
}

#[test]
fn close_waits_for_a_merge_in_another_thread_to_stop() {
    let (dir, db, model) = churned();
    let merger = {
        let db = db.clone();
        thread::spawn(move || db.merge())
    };
    db.close().unwrap();
    let listing = || {
        let mut v: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let at_close = listing();
    // the merge either finished first or stopped at a step with Closed
    match merger.join().unwrap() {
        Ok(_) | Err(Error::Closed) => {}
        Err(e) => panic!("unexpected merge error: {e}"),
    }
    assert_eq!(listing(), at_close, "no file changed after close returned");
    let db = opts().open(dir.path()).unwrap();
    check(&db, &model, 0..300);
}
