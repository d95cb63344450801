//! A merge stopped at each of its steps — as a killed process would stop it — leaves a
//! directory that opens with every acknowledged write and no deleted key back.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use caskdb::{Db, Error, MergeStep, Options, SyncPolicy};
use caskdb_testkit::faulty::{Op, faulty};
use common::{delete_both, manual_merge, put_both, reopen, temp_db};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

fn opts() -> Options {
    manual_merge(1024)
}

/// Overwrites and deletes spread over many small files.
fn fill(db: &Db) -> Model {
    let mut model = Model::new();
    for round in 0..3 {
        for i in 0..1500 {
            let v = format!("r{round}-{i}").into_bytes();
            db.put(key(i), &v).unwrap();
            model.insert(key(i), v);
        }
    }
    for i in (0..1500).step_by(4) {
        db.delete(key(i)).unwrap();
        model.remove(&key(i));
    }
    model
}

fn verify(db: &Db, model: &Model, context: &str) {
    assert_eq!(db.len(), model.len(), "{context}: len");
    for i in 0..1600 {
        let k = key(i);
        assert_eq!(
            db.get(&k).unwrap().as_deref(),
            model.get(&k).map(Vec::as_slice),
            "{context}: key {i}"
        );
    }
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".merging"))
        .collect()
}

/// What happens after the merge failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum After {
    /// The process dies: reopen from what is on disk.
    Crash,
    /// The process goes on with the same handle: delete, write, merge again, then reopen.
    Continue,
}

/// Runs a merge (with writes interleaved) on a database opened with `opts`, in which `arm`
/// sets up a failure; returns whether the merge failed. Then checks the state as `after` says.
fn run(
    opts: Options,
    arm: impl FnOnce(),
    disarm: impl FnOnce(),
    after: After,
    context: &str,
) -> bool {
    let (dir, db) = temp_db(opts);
    let mut model = fill(&db);
    arm();
    let mut calls = 0;
    // Writes interleaved with the merge: they must win over its copies, failure or not.
    let result = db.merge_with_progress(|_| {
        calls += 1;
        if calls == 1 {
            put_both(&db, &mut model, (1..1500).step_by(7).map(key), b"during");
            delete_both(&db, &mut model, (2..1500).step_by(9).map(key));
            put_both(&db, &mut model, [key(1555)], b"new");
        }
    });
    disarm();
    let died = result.is_err();
    verify(&db, &model, &format!("{context}, right after the merge"));
    match after {
        After::Crash => db.crash(),
        After::Continue => {
            // Keys whose values may sit in old files or in the merge's output: a later merge
            // must drop neither the values nor the tombstones wrongly.
            delete_both(&db, &mut model, (3..1500).step_by(11).map(key));
            put_both(&db, &mut model, (1500..1520).map(key), b"after");
            db.merge().unwrap();
            verify(
                &db,
                &model,
                &format!("{context}, merged again in the same session"),
            );
            assert_eq!(
                db.stats().unwrap().dead_bytes,
                0,
                "{context}: byte counts drifted"
            );
            drop(db);
        }
    }

    let db = opts_plain().open(dir.path()).unwrap();
    verify(&db, &model, &format!("{context}, reopened"));
    assert!(
        leftovers(dir.path()).is_empty(),
        "{context}: temporary files left"
    );
    db.merge().unwrap();
    verify(&db, &model, &format!("{context}, merged after reopening"));
    let db = reopen(db, opts_plain());
    verify(
        &db,
        &model,
        &format!("{context}, reopened after that merge"),
    );
    assert_eq!(db.stats().unwrap().dead_bytes, 0, "{context}");
    died
}

fn opts_plain() -> Options {
    opts()
}

/// Runs a merge that "dies" at the `nth` time it reaches `step`. Returns whether it died.
fn crash_at(step: MergeStep, nth: usize, after: After) -> bool {
    let seen = Arc::new(AtomicUsize::new(0));
    let live = Arc::new(AtomicBool::new(true)); // only the first merge is stopped
    let (counter, armed) = (seen.clone(), live.clone());
    let opts = opts().merge_hook(move |s| {
        if armed.load(Ordering::SeqCst)
            && s == step
            && counter.fetch_add(1, Ordering::SeqCst) + 1 == nth
        {
            return Err(Error::Io(std::io::Error::other("injected crash")));
        }
        Ok(())
    });
    let died = run(
        opts,
        || {},
        || live.store(false, Ordering::SeqCst),
        after,
        &format!("{after:?} at {step:?} #{nth}"),
    );
    assert_eq!(died, seen.load(Ordering::SeqCst) >= nth, "{step:?} #{nth}");
    died
}

#[test]
fn a_merge_killed_at_any_step_loses_nothing_and_resurrects_nothing() {
    use MergeStep::*;
    for step in MergeStep::ALL {
        let mut died = 0;
        for nth in [1, 2, 5] {
            if crash_at(step, nth, After::Crash) {
                died += 1;
            }
        }
        assert!(died >= 1, "{step:?} was never reached");
        if !matches!(step, Started | Finished) {
            assert!(died >= 2, "{step:?} happens several times per merge");
        }
    }
}

#[test]
fn after_a_merge_stopped_at_any_step_the_same_session_goes_on_correctly() {
    for step in MergeStep::ALL {
        for nth in [1, 2] {
            crash_at(step, nth, After::Continue);
        }
    }
}

#[test]
fn a_merge_whose_file_operations_fail_leaves_a_consistent_session() {
    for op in [Op::Create, Op::Open, Op::Rename, Op::Remove, Op::SyncDir] {
        for after in [0, 1, 3] {
            for mode in [After::Continue, After::Crash] {
                let (opts, faults) = faulty(opts());
                let context = format!("{op:?} fails after {after} ({mode:?})");
                let (f, g) = (faults.clone(), faults.clone());
                run(
                    opts,
                    move || f.arm(op, after),
                    move || {
                        assert!(g.tripped(), "the failure was never reached");
                    },
                    mode,
                    &context,
                );
            }
        }
    }
}

#[test]
fn reserved_ids_suffice_when_each_record_nearly_fills_a_file() {
    // 505-byte records (9-byte key, 488-byte value, 8-byte header) in 1 KiB files: two would
    // need 16 + 1010 bytes, so each output file holds one. The id reservation must allow it.
    let (_dir, db) = temp_db(opts());
    for i in 0..300 {
        db.put(key(i), vec![b'x'; 488]).unwrap();
    }
    let m = db.merge().unwrap();
    assert_eq!((m.records_copied, m.files_written), (300, 300));
    // and with tiny files and small records
    let (_dir, db) = temp_db(Options::default().data_file_size(64).auto_merge(false));
    for i in 0..100 {
        db.put(format!("k{i:03}"), [b'v'; 12]).unwrap();
    }
    db.merge().unwrap();
    let db = reopen(db, Options::default());
    assert_eq!(db.len(), 100);
}

#[test]
fn expired_records_alone_trigger_an_automatic_merge() {
    use caskdb::ManualClock;
    use std::time::Duration;
    let clock = Arc::new(ManualClock::new(1_000_000));
    let (tx, rx) = std::sync::mpsc::channel();
    let tx = parking_lot::Mutex::new(tx);
    let (_dir, db) = temp_db(
        Options::default()
            .data_file_size(4096)
            .merge_min_dead_bytes(1024)
            .sync(SyncPolicy::Never)
            .clock(clock.clone())
            .merge_hook(move |s| {
                if s == MergeStep::Finished {
                    let _ = tx.lock().send(());
                }
                Ok(())
            }),
    );
    for i in 0..200 {
        db.put_with_ttl(key(i), [b'v'; 50], Duration::from_secs(1))
            .unwrap();
    }
    let before = db.stats().unwrap();
    assert_eq!(before.dead_bytes, 0, "no write made anything dead");
    assert!(rx.try_recv().is_err(), "no merge yet");
    clock.advance(Duration::from_secs(2));
    // Nothing is written: only the merger's periodic look at expired bytes can start a merge.
    rx.recv_timeout(Duration::from_secs(60))
        .expect("an automatic merge ran");
    assert!(db.is_empty());
    let after = db.stats().unwrap();
    assert!(
        after.total_bytes < before.total_bytes / 10,
        "{} -> {}",
        before.total_bytes,
        after.total_bytes
    );
}
