//! Ordered iteration, atomic batches and expiry.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use caskdb::{Db, Error, ManualClock, Options};
use common::{
    copy_of, data_files, key, manual_merge, reopen, set_len, temp_db, temp_db_with, unsynced, value,
};

fn opts() -> Options {
    manual_merge(4096)
}

fn collect(
    it: impl Iterator<Item = caskdb::Result<(bytes::Bytes, bytes::Bytes)>>,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    it.map(|r| {
        let (k, v) = r.unwrap();
        (k.to_vec(), v.to_vec())
    })
    .collect()
}

fn filled(n: usize) -> (tempfile::TempDir, Db, BTreeMap<Vec<u8>, Vec<u8>>) {
    let (dir, db) = temp_db(opts());
    let mut model = BTreeMap::new();
    // written in a scattered order, over many files
    for i in 0..n {
        let j = (i * 7919) % n;
        db.put(key(j), value(j)).unwrap();
        model.insert(key(j), value(j));
    }
    (dir, db, model)
}

#[test]
fn iteration_in_both_directions_and_over_ranges_matches_the_model() {
    let (_dir, db, model) = filled(1000);
    let all: Vec<_> = model.clone().into_iter().collect();
    assert_eq!(collect(db.iter()), all);
    let rev: Vec<_> = all.iter().rev().cloned().collect();
    assert_eq!(collect(db.iter().rev()), rev);
    let keys: Vec<Vec<u8>> = db.keys().map(|k| k.unwrap().to_vec()).collect();
    assert_eq!(keys, model.keys().cloned().collect::<Vec<_>>());
    assert_eq!(db.keys().rev().count(), 1000);

    let (a, b) = (key(100), key(200));
    let expect = |lo: std::ops::Bound<&Vec<u8>>, hi: std::ops::Bound<&Vec<u8>>| {
        model
            .range::<Vec<u8>, _>((lo, hi))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect::<Vec<_>>()
    };
    use std::ops::Bound::*;
    assert_eq!(
        collect(db.range(a.clone()..b.clone())),
        expect(Included(&a), Excluded(&b))
    );
    assert_eq!(
        collect(db.range(a.clone()..=b.clone())),
        expect(Included(&a), Included(&b))
    );
    assert_eq!(
        collect(db.range(..b.clone())),
        expect(Unbounded, Excluded(&b))
    );
    assert_eq!(collect(db.range(a.clone()..)).len(), 900);
    assert_eq!(
        collect(db.range((Excluded(a.clone()), Excluded(b.clone())))),
        expect(Excluded(&a), Excluded(&b))
    );
    assert!(
        collect(db.range(b.clone()..a.clone())).is_empty(),
        "inverted range"
    );
    assert!(collect(db.range(a.clone()..a.clone())).is_empty());
    assert_eq!(collect(db.range(a.clone()..b.clone()).rev()).len(), 100);

    // prefixes, including one that ends in 0xff
    assert_eq!(collect(db.prefix(b"caskdb-key-00000001")).len(), 10);
    assert_eq!(collect(db.prefix(b"caskdb-key-0000001")).len(), 100);
    assert_eq!(collect(db.prefix(b"caskdb-key-0000001").rev()).len(), 100);
    assert_eq!(collect(db.prefix(b"nope")).len(), 0);
    db.put([b'p', 0xff], "x").unwrap();
    db.put([b'p', 0xff, 0xff], "y").unwrap();
    db.put([b'q'], "z").unwrap();
    assert_eq!(collect(db.prefix([b'p', 0xff])).len(), 2);
}

#[test]
fn front_and_back_meet_in_the_middle_without_repeats_or_gaps() {
    let (_dir, db, model) = filled(1000);
    let mut it = db.iter();
    let mut seen = Vec::new();
    let mut turn = 0;
    loop {
        // uneven steps so the two ends fetch batches at different times
        let item = if turn % 3 == 0 {
            it.next_back()
        } else {
            it.next()
        };
        turn += 1;
        match item {
            Some(r) => seen.push(r.unwrap().0.to_vec()),
            None => break,
        }
    }
    assert!(it.next().is_none() && it.next_back().is_none());
    seen.sort();
    assert_eq!(seen, model.keys().cloned().collect::<Vec<_>>());
}

#[test]
fn a_chosen_first_batch_changes_nothing_but_how_much_is_fetched() {
    let (_dir, db, model) = filled(1000);
    let all: Vec<_> = model.clone().into_iter().collect();
    fn read(
        it: impl Iterator<Item = caskdb::Result<(bytes::Bytes, caskdb::ValueRef)>>,
    ) -> Vec<(Vec<u8>, Vec<u8>)> {
        it.map(|r| {
            let (k, v) = r.unwrap();
            (k.to_vec(), v.read().unwrap().to_vec())
        })
        .collect()
    }
    for n in [0, 1, 3, 16, 255, 256, 10_000] {
        let fwd = read(db.range_refs::<&[u8], _>(.., 64).first_batch(n));
        assert_eq!(fwd, all, "first batch {n}");
        let mut back = read(db.range_refs::<&[u8], _>(.., 64).first_batch(n).rev());
        back.reverse();
        assert_eq!(back, all, "first batch {n}, from the back");
        // From one end only a few: what a pop of `n` members does.
        let few: Vec<_> = db
            .range_refs::<&[u8], _>(.., 64)
            .first_batch(n)
            .take(n.min(5))
            .map(|r| r.unwrap().0.to_vec())
            .collect();
        assert_eq!(
            few,
            model.keys().take(n.min(5)).cloned().collect::<Vec<_>>()
        );
    }
    // Writes made after the first (one-key) batch follow the documented rules: a key deleted
    // ahead is skipped, one inserted ahead is returned.
    let mut it = db.range_refs::<&[u8], _>(.., 64).first_batch(1);
    assert_eq!(it.next().unwrap().unwrap().0.to_vec(), key(0));
    db.delete(key(1)).unwrap();
    db.put(b"caskdb-key-000000001a", "inserted ahead").unwrap();
    let rest: Vec<Vec<u8>> = it.map(|r| r.unwrap().0.to_vec()).collect();
    assert_eq!(rest[0], b"caskdb-key-000000001a".to_vec());
    assert!(!rest.contains(&key(1)));
    assert_eq!(rest.len(), 1000 - 1 - 1 + 1);
    // And through a transaction, its own writes merged in.
    db.transaction(|tx| -> Result<(), Error> {
        tx.put(key(2), "staged")?;
        tx.delete(key(0))?;
        let firsts: Vec<(Vec<u8>, Vec<u8>)> = tx
            .range_refs::<&[u8], _>(.., 64)
            .first_batch(1)
            .take(2)
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.to_vec(), v.read().unwrap().to_vec())
            })
            .collect();
        assert_eq!(
            firsts,
            vec![
                (
                    b"caskdb-key-000000001a".to_vec(),
                    b"inserted ahead".to_vec()
                ),
                (key(2), b"staged".to_vec()),
            ]
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn an_open_iterator_sees_writes_as_documented() {
    let (dir, db, _) = filled(1000);
    let mut it = db.iter();
    let first: Vec<_> = (0..10)
        .map(|_| it.next().unwrap().unwrap().0.to_vec())
        .collect();
    assert_eq!(first[9], key(9));
    // the iterator has fetched keys 0..256 and returned 0..10
    db.delete(key(20)).unwrap(); // fetched, not yet returned: skipped
    db.put(key(30), "new value").unwrap(); // fetched: returned with the new value
    db.delete(key(500)).unwrap(); // not fetched yet: skipped
    db.put(b"caskdb-key-000000700a", "inserted ahead").unwrap(); // ahead: returned
    db.put(b"caskdb-key-000000005a", "inserted behind").unwrap(); // behind: not returned
    db.merge().unwrap(); // every value moves: nothing changes for the iterator
    let rest: BTreeMap<Vec<u8>, Vec<u8>> = collect(it).into_iter().collect();
    assert!(!rest.contains_key(&key(20)));
    assert_eq!(rest[&key(30)], b"new value");
    assert!(!rest.contains_key(&key(500)));
    assert_eq!(rest[b"caskdb-key-000000700a".as_slice()], b"inserted ahead");
    assert!(!rest.contains_key(b"caskdb-key-000000005a".as_slice()));
    assert_eq!(rest.len(), 1000 - 10 - 2 + 1);
    drop(dir);
}

#[test]
fn once_the_ends_of_an_iterator_meet_later_inserts_are_not_returned() {
    // Found by fuzzing: after one end took the last key the other end had fetched, a key
    // inserted beyond it was still returned — after a smaller key from the other end, or by
    // the back end in ascending order.
    let (_dir, db) = temp_db_with(opts(), &[("a", "1"), ("ab", "2")]);
    let key = |r: Option<caskdb::Result<(caskdb::Bytes, caskdb::Bytes)>>| {
        r.map(|r| String::from_utf8(r.unwrap().0.to_vec()).unwrap())
    };

    let mut it = db.range::<&str, _>(..);
    assert_eq!(key(it.next()).as_deref(), Some("a"));
    assert_eq!(key(it.next_back()).as_deref(), Some("ab"));
    db.put("key:0010", "3").unwrap(); // beyond both ends' positions
    assert_eq!(key(it.next()), None);
    assert_eq!(key(it.next_back()), None);

    let mut it = db.range::<&str, _>(..);
    assert_eq!(key(it.next()).as_deref(), Some("a"));
    assert_eq!(key(it.next_back()).as_deref(), Some("key:0010"));
    assert_eq!(key(it.next_back()).as_deref(), Some("ab")); // taken from the front's batch
    db.put("b", "4").unwrap(); // between "ab" and "key:0010": behind the back end
    assert_eq!(key(it.next_back()), None);
    assert_eq!(key(it.next()), None);
}

#[test]
fn an_iterator_of_a_closed_database_reports_it_once() {
    let (_dir, db, _) = filled(10);
    let mut it = db.iter();
    it.next().unwrap().unwrap();
    db.clone().close().unwrap();
    assert!(matches!(it.next(), Some(Err(Error::Closed))));
    assert!(it.next().is_none());
}

#[test]
fn a_batch_applies_every_operation_in_order() {
    let (_dir, db) = temp_db_with(opts(), &[("gone", "1"), ("kept", "1")]);
    let mut b = db.batch();
    b.put("a", "1")
        .put("b", "2")
        .delete("gone")
        .put("c", "3")
        .delete("c");
    b.put("a", "overwritten").delete("never-existed");
    assert_eq!(b.len(), 7);
    b.commit().unwrap();
    let all = collect(db.iter());
    let expect: Vec<(Vec<u8>, Vec<u8>)> = [("a", "overwritten"), ("b", "2"), ("kept", "1")]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(all, expect);
    let db = reopen(db, opts());
    assert_eq!(collect(db.iter()), expect);
    db.merge().unwrap();
    let db = reopen(db, opts());
    assert_eq!(collect(db.iter()), expect);
    assert_eq!(db.stats().unwrap().dead_bytes, 0);
}

#[test]
fn an_empty_batch_writes_nothing_and_a_bad_batch_writes_nothing() {
    let (_dir, db) = temp_db(Options::default().max_batch_size(1000).max_value_size(100));
    let before = db.stats().unwrap();
    db.batch().commit().unwrap();
    let mut b = db.batch();
    b.put("ok", "1").put("", "empty key");
    assert!(matches!(b.commit(), Err(Error::KeyIsEmpty)));
    let mut b = db.batch();
    b.put("ok", "1").put("big", [0u8; 101]);
    assert!(matches!(b.commit(), Err(Error::ValueTooLarge { .. })));
    let mut b = db.batch();
    for i in 0..20 {
        b.put(format!("k{i}"), [0u8; 60]);
    }
    match b.commit() {
        Err(Error::BatchTooLarge { size, max: 1000 }) => assert!(size > 1000),
        other => panic!("expected BatchTooLarge, got {other:?}"),
    }
    assert_eq!(db.stats().unwrap(), before);
    assert_eq!(db.get("ok").unwrap(), None);
}

#[test]
fn a_batch_cut_at_any_byte_is_wholly_absent_and_a_whole_one_wholly_present() {
    let (dir, db) = temp_db_with(unsynced(), &[("before", "1")]);
    let start = db.stats().unwrap().total_bytes;
    let mut b = db.batch();
    b.put("x", "1").put("y", "2").delete("before").put_with_ttl(
        "z",
        "3",
        Duration::from_secs(3600),
    );
    b.commit().unwrap();
    let end = db.stats().unwrap().total_bytes;
    db.close().unwrap();
    let file = data_files(dir.path())[0].clone();
    for cut in start..=end {
        let work = copy_of(dir.path());
        set_len(&work.path().join(file.file_name().unwrap()), cut);
        let db = Db::open(work.path()).unwrap();
        let got: Vec<_> = db.keys().map(|k| k.unwrap().to_vec()).collect();
        if cut == end {
            assert_eq!(
                got,
                [b"x".to_vec(), b"y".to_vec(), b"z".to_vec()],
                "whole batch"
            );
        } else {
            assert_eq!(
                got,
                [b"before".to_vec()],
                "cut at {cut}: nothing of the batch"
            );
        }
    }
}

fn clocked(clock: &Arc<ManualClock>) -> Options {
    opts().clock(clock.clone())
}

#[test]
fn expired_keys_are_invisible_everywhere_and_stay_expired_across_restart_and_merge() {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let (_dir, db) = temp_db(clocked(&clock));
    db.put("plain", "p").unwrap();
    db.put("shadowed", "older value").unwrap();
    db.put_with_ttl("shadowed", "short", Duration::from_secs(10))
        .unwrap();
    db.put_with_ttl("long", "l", Duration::from_secs(100))
        .unwrap();
    assert_eq!(db.ttl("shadowed").unwrap(), Some(Duration::from_secs(10)));
    assert_eq!(db.len(), 3);
    clock.advance(Duration::from_secs(10));
    assert_eq!(
        db.get("shadowed").unwrap(),
        None,
        "expires at exactly its deadline"
    );
    assert!(!db.contains_key("shadowed").unwrap());
    assert_eq!(db.ttl("shadowed").unwrap(), None);
    assert!(
        !db.delete("shadowed").unwrap(),
        "an expired key does not exist"
    );
    assert_eq!(db.len(), 2);
    assert_eq!(db.stats().unwrap().keys, 2);
    let keys: Vec<_> = db.keys().map(|k| k.unwrap().to_vec()).collect();
    assert_eq!(keys, [b"long".to_vec(), b"plain".to_vec()]);
    assert_eq!(collect(db.iter().rev()).len(), 2);
    assert_eq!(db.ttl("long").unwrap(), Some(Duration::from_secs(90)));

    // across a restart: the expired record shadows the older value of its key
    let db = reopen(db, clocked(&clock));
    assert_eq!(db.get("shadowed").unwrap(), None);
    assert_eq!(db.len(), 2);
    // a merge drops it for good: even a clock set back cannot bring it back afterwards
    let m = db.merge().unwrap();
    assert_eq!(m.records_copied, 2);
    clock.set(0);
    assert_eq!(db.get("shadowed").unwrap(), None);
    let db = reopen(db, clocked(&clock));
    assert_eq!(db.get("shadowed").unwrap(), None);
    assert_eq!(
        db.get("long").unwrap().unwrap(),
        "l",
        "the clock is back before its expiry"
    );
    clock.set(1_000_000 + 100_000);
    assert_eq!(db.get("long").unwrap(), None);
}

#[test]
fn expire_persist_and_ttl_follow_redis_semantics() {
    let clock = Arc::new(ManualClock::new(5_000));
    let (_dir, db) = temp_db(clocked(&clock));
    assert!(!db.expire("missing", Duration::from_secs(1)).unwrap());
    assert!(!db.persist("missing").unwrap());
    assert_eq!(db.ttl("missing").unwrap(), None);
    db.put("k", "v").unwrap();
    assert_eq!(db.ttl("k").unwrap(), None);
    assert!(!db.persist("k").unwrap(), "no expiry to remove");
    assert!(db.expire("k", Duration::from_millis(1500)).unwrap());
    assert_eq!(db.ttl("k").unwrap(), Some(Duration::from_millis(1500)));
    assert_eq!(db.get("k").unwrap().unwrap(), "v", "the value is kept");
    assert!(db.persist("k").unwrap());
    assert_eq!(db.ttl("k").unwrap(), None);
    clock.advance(Duration::from_secs(10));
    assert_eq!(db.get("k").unwrap().unwrap(), "v", "persisted");
    assert!(db.expire("k", Duration::from_secs(1)).unwrap());
    let db = reopen(db, clocked(&clock));
    assert_eq!(
        db.ttl("k").unwrap(),
        Some(Duration::from_secs(1)),
        "the expiry survives restart"
    );
    db.merge().unwrap();
    let db = reopen(db, clocked(&clock));
    assert_eq!(
        db.ttl("k").unwrap(),
        Some(Duration::from_secs(1)),
        "and merge, through the hint"
    );
    clock.advance(Duration::from_secs(1));
    assert!(
        !db.expire("k", Duration::from_secs(1)).unwrap(),
        "expired keys cannot be revived"
    );
    assert_eq!(db.len(), 0);
}
