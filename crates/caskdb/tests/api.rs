//! The seed's Put/Get/Delete cases (with rotation and restarts) and the rest of the public API.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::sync::Arc;
use std::thread;

use caskdb::{Db, Error, Options, SyncPolicy};
use common::{
    data_files, files_of, key, open_small, put_keys, reopen, small_files, temp_db, unsynced, value,
};

#[test]
fn put_cases() {
    let (dir, db) = temp_db(small_files());

    // 1. a normal put
    db.put(key(11), value(11)).unwrap();
    assert_eq!(db.get(key(11)).unwrap().unwrap(), value(11));

    // 2. putting the same key again replaces the value
    db.put(key(22), value(22)).unwrap();
    db.put(key(22), "a new value").unwrap();
    assert_eq!(db.get(key(22)).unwrap().unwrap(), "a new value");

    // 3. an empty key is refused and writes nothing
    let before = db.stats().unwrap().total_bytes;
    assert!(matches!(db.put("", value(1)), Err(Error::KeyIsEmpty)));
    assert_eq!(db.stats().unwrap().total_bytes, before);

    // 4. an empty value is a value
    db.put(key(33), "").unwrap();
    assert_eq!(db.get(key(33)).unwrap().unwrap().len(), 0);
    assert!(db.contains_key(key(33)).unwrap());

    // 5. enough puts to rotate through several data files
    put_keys(&db, 100..1100);
    let files = db.stats().unwrap().data_files;
    assert!(files > 10, "expected rotation, got {files} files");
    assert_eq!(data_files(dir.path()).len(), files);
    for f in &data_files(dir.path())[..files - 1] {
        let len = std::fs::metadata(f).unwrap().len();
        assert!(
            len <= 4096,
            "sealed file {f:?} is {len} bytes, over data_file_size"
        );
    }

    // 6. after a restart, puts work and see the old data
    db.close().unwrap();
    let db = open_small(dir.path());
    db.put(key(55), value(55)).unwrap();
    assert_eq!(db.get(key(55)).unwrap().unwrap(), value(55));
    assert_eq!(db.get(key(11)).unwrap().unwrap(), value(11));
    assert_eq!(db.get(key(1099)).unwrap().unwrap(), value(1099));
    assert_eq!(db.len(), 1000 + 4);
}

#[test]
fn get_cases() {
    let (_dir, db) = temp_db(small_files());

    // 1. a normal get
    db.put(key(111), value(111)).unwrap();
    assert_eq!(db.get(key(111)).unwrap().unwrap(), value(111));

    // 2. a key that was never written
    assert_eq!(db.get("not existed key").unwrap(), None);

    // 3. after the value was replaced
    db.put(key(222), value(222)).unwrap();
    db.put(key(222), "a new value").unwrap();
    assert_eq!(db.get(key(222)).unwrap().unwrap(), "a new value");

    // 4. after the key was deleted
    db.put(key(333), value(333)).unwrap();
    assert!(db.delete(key(333)).unwrap());
    assert_eq!(db.get(key(333)).unwrap(), None);

    // 5. values that now live in older, sealed files
    put_keys(&db, 500..1500);
    let stats = db.stats().unwrap();
    assert!(stats.data_files > 10);
    let first_file = stats.files[0].id;
    assert!(!stats.files[0].active);
    assert_eq!(db.get(key(505)).unwrap().unwrap(), value(505));
    assert_eq!(db.get(key(111)).unwrap().unwrap(), value(111));

    // 6. after a restart everything written before is there
    let db = reopen(db, small_files());
    assert_eq!(db.stats().unwrap().files[0].id, first_file);
    assert_eq!(db.get(key(111)).unwrap().unwrap(), value(111));
    assert_eq!(db.get(key(222)).unwrap().unwrap(), "a new value");
    assert_eq!(db.get(key(333)).unwrap(), None);
    for i in 500..1500 {
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i), "key {i}");
    }

    // an empty key is an error for get too
    assert!(matches!(db.get(""), Err(Error::KeyIsEmpty)));
}

#[test]
fn delete_cases() {
    let (dir, db) = temp_db(small_files());

    // 1. deleting a key that exists
    db.put(key(111), value(111)).unwrap();
    assert!(db.delete(key(111)).unwrap());
    assert_eq!(db.get(key(111)).unwrap(), None);
    assert!(!db.contains_key(key(111)).unwrap());

    // 2. deleting a missing key is Ok(false) and writes nothing
    let before = db.stats().unwrap().total_bytes;
    assert!(!db.delete("not-existed-key").unwrap());
    assert!(!db.delete(key(111)).unwrap());
    assert_eq!(db.stats().unwrap().total_bytes, before);

    // 3. an empty key
    assert!(matches!(db.delete(""), Err(Error::KeyIsEmpty)));

    // 4. put again after a delete
    db.put(key(222), value(222)).unwrap();
    assert!(db.delete(key(222)).unwrap());
    db.put(key(222), "a new value").unwrap();
    assert_eq!(db.get(key(222)).unwrap().unwrap(), "a new value");

    // deletes spread over rotated files
    put_keys(&db, 1000..1400);
    for i in (1000..1400).step_by(2) {
        assert!(db.delete(key(i)).unwrap());
    }

    // 5. after a restart deletes stay deleted and re-puts stay
    db.close().unwrap();
    let db = open_small(dir.path());
    assert_eq!(db.get(key(111)).unwrap(), None);
    assert_eq!(db.get(key(222)).unwrap().unwrap(), "a new value");
    for i in 1000..1400 {
        let got = db.get(key(i)).unwrap();
        if i % 2 == 0 {
            assert_eq!(got, None, "key {i} came back");
        } else {
            assert_eq!(got.unwrap(), value(i));
        }
    }
    assert_eq!(db.len(), 1 + 200);
}

#[test]
fn oversized_keys_and_values_are_refused_and_write_nothing() {
    let (dir, db) = temp_db(Options::default().max_key_size(8).max_value_size(16));
    db.put("k", "v").unwrap();
    let before = db.stats().unwrap();
    match db.put("123456789", "v") {
        Err(Error::KeyTooLarge { size: 9, max: 8 }) => {}
        other => panic!("expected KeyTooLarge, got {other:?}"),
    }
    match db.put("k", [0u8; 17]) {
        Err(Error::ValueTooLarge { size: 17, max: 16 }) => {}
        other => panic!("expected ValueTooLarge, got {other:?}"),
    }
    assert_eq!(db.stats().unwrap(), before);
    assert_eq!(db.get("k").unwrap().unwrap(), "v");
    // exactly at the limits is fine
    db.put("12345678", [7u8; 16]).unwrap();
    db.close().unwrap();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get("k").unwrap().unwrap(), "v");
    assert_eq!(db.get("12345678").unwrap().unwrap(), &[7u8; 16][..]);
    assert_eq!(db.len(), 2);
}

#[test]
fn a_record_bigger_than_the_file_size_gets_its_own_file() {
    let (_dir, db) = temp_db(small_files());
    let big = vec![0xabu8; 10_000];
    db.put("small", "x").unwrap();
    db.put("big", &big).unwrap();
    db.put("after", "y").unwrap();
    assert_eq!(db.get("big").unwrap().unwrap(), &big[..]);
    let db = reopen(db, small_files());
    assert_eq!(db.get("big").unwrap().unwrap(), &big[..]);
    assert_eq!(db.get("after").unwrap().unwrap(), "y");
    assert_eq!(db.get("small").unwrap().unwrap(), "x");
}

#[test]
fn binary_keys_and_values_roundtrip() {
    let (_dir, db) = temp_db(small_files());
    let k: Vec<u8> = (0..=255u8).collect();
    let v: Vec<u8> = (0..=255u8).rev().cycle().take(1000).collect();
    db.put(&k, &v).unwrap();
    db.put([0u8], [0u8]).unwrap();
    let db = reopen(db, small_files());
    assert_eq!(db.get(&k).unwrap().unwrap(), v);
    assert_eq!(db.get([0u8]).unwrap().unwrap(), &[0u8][..]);
}

#[test]
fn stats_count_live_and_dead_bytes() {
    let (_dir, db) = temp_db(unsynced());
    let empty = db.stats().unwrap();
    assert_eq!((empty.keys, empty.data_files, empty.dead_bytes), (0, 1, 0));
    assert_eq!(empty.total_bytes, 16, "just the file header");
    db.put("a", "1").unwrap(); // 4 crc + 1 type + 1 + 1 + 1 + 1 = 9 bytes
    let one = db.stats().unwrap();
    assert_eq!(one.total_bytes, 16 + 9);
    db.put("a", "2").unwrap();
    let two = db.stats().unwrap();
    assert_eq!((two.total_bytes, two.dead_bytes), (16 + 18, 9));
    assert!(db.delete("a").unwrap()); // tombstone: 4 + 1 + 1 + 1 + 1 = 8 bytes
    let three = db.stats().unwrap();
    assert_eq!(
        (three.keys, three.total_bytes, three.dead_bytes),
        (0, 16 + 26, 26)
    );
    assert_eq!(three.live_bytes, 16);
    // the same numbers are rebuilt by replay
    let db = reopen(db, Options::default());
    let again = db.stats().unwrap();
    assert_eq!(
        (again.keys, again.total_bytes, again.dead_bytes),
        (0, 42, 26)
    );
    assert_eq!(again.files.len(), 1);
    assert!(again.files[0].active);
}

#[test]
fn invalid_options_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    for opts in [
        Options::default().data_file_size(10),
        Options::default().max_key_size(0),
        Options::default().sync(SyncPolicy::Interval(std::time::Duration::ZERO)),
        Options::default().max_value_size(usize::MAX / 2),
    ] {
        match opts.open(dir.path()) {
            Err(Error::InvalidOptions(msg)) => assert!(!msg.is_empty()),
            other => panic!("expected InvalidOptions, got {other:?}"),
        }
    }
}

#[test]
fn the_documented_builder_chain_compiles_and_works() -> caskdb::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("db");
    let db = Options::default()
        .data_file_size(1 << 20)
        .sync(SyncPolicy::Always)
        .open(&path)?;
    db.put(b"k".as_slice(), String::from("v"))?;
    db.put(bytes::Bytes::from_static(b"k2"), vec![1, 2, 3])?;
    assert_eq!(db.get("k")?, Some(bytes::Bytes::from_static(b"v")));
    assert_eq!(db.options().sync_policy(), SyncPolicy::Always);
    assert_eq!(db.path(), path);
    db.sync()?;
    db.close()
}

#[test]
fn many_threads_put_and_get_on_clones() {
    let (_dir, db) = temp_db(files_of(64 << 10));
    let threads = 8;
    let per_thread = 2000;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let db = db.clone();
            thread::spawn(move || {
                for i in 0..per_thread {
                    let n = t * per_thread + i;
                    db.put(key(n), value(n)).unwrap();
                    // read back our own write and a neighbour's key (present or not)
                    assert_eq!(db.get(key(n)).unwrap().unwrap(), value(n));
                    let other = ((t + 1) % threads) * per_thread + i / 2;
                    if let Some(v) = db.get(key(other)).unwrap() {
                        assert_eq!(v, value(other));
                    }
                    if i % 10 == 0 {
                        assert!(db.delete(key(n)).unwrap());
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let expected = threads * per_thread - threads * per_thread / 10;
    assert_eq!(db.len(), expected);
    assert!(db.stats().unwrap().data_files > 1);
    let db = reopen(db, Options::default());
    assert_eq!(db.len(), expected);
    for n in 0..threads * per_thread {
        let got = db.get(key(n)).unwrap();
        if n % per_thread % 10 == 0 {
            assert_eq!(got, None);
        } else {
            assert_eq!(got.unwrap(), value(n));
        }
    }
}

#[test]
fn always_policy_with_concurrent_writers_keeps_every_write() {
    let (dir, db) = temp_db(
        Options::default()
            .data_file_size(8 << 10)
            .sync(SyncPolicy::Always),
    );
    let db = Arc::new(db);
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let db = db.clone();
            thread::spawn(move || {
                for i in 0..100 {
                    db.put(key(t * 1000 + i), value(i)).unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    drop(db);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.len(), 800);
}

#[test]
fn second_open_is_locked_until_the_last_clone_goes() {
    let (dir, db) = temp_db(Options::default());
    let clone = db.clone();
    match Db::open(dir.path()) {
        Err(Error::Locked { path }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(db);
    assert!(matches!(Db::open(dir.path()), Err(Error::Locked { .. })));
    drop(clone);
    Db::open(dir.path()).unwrap();
}

#[test]
fn close_releases_the_lock_and_other_clones_get_closed() {
    let (dir, db) = temp_db(Options::default());
    db.put("k", "v").unwrap();
    let clone = db.clone();
    db.close().unwrap();
    assert!(matches!(clone.get("k"), Err(Error::Closed)));
    assert!(matches!(clone.put("k", "w"), Err(Error::Closed)));
    assert!(matches!(clone.delete("k"), Err(Error::Closed)));
    let reopened = Db::open(dir.path()).unwrap();
    assert_eq!(reopened.get("k").unwrap().unwrap(), "v");
    drop(clone); // dropping a closed clone must not disturb the new owner
    reopened.put("k2", "v2").unwrap();
    assert_eq!(reopened.get("k2").unwrap().unwrap(), "v2");
}

#[test]
fn a_clean_close_leaves_no_preallocated_tail() {
    let (dir, db) = temp_db(Options::default());
    db.put("k", "v").unwrap();
    let stats = db.stats().unwrap();
    db.close().unwrap();
    let files = data_files(dir.path());
    assert_eq!(files.len(), 1);
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().len(),
        stats.total_bytes
    );
}

#[test]
fn reopening_continues_the_newest_file_instead_of_starting_one() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..20 {
        let db = Db::open(dir.path()).unwrap();
        db.put(key(i), value(i)).unwrap();
    }
    assert_eq!(data_files(dir.path()).len(), 1);
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.len(), 20);
}
