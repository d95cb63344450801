//! A merge stopped at each of its steps — as a killed process would stop it — leaves a
//! directory that opens with every acknowledged write and no deleted key back.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::merge::MergeStep;
use crate::options::MergeHook;
use crate::{Db, Error, Options, SyncPolicy};

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

fn key(i: usize) -> Vec<u8> {
    format!("key-{i:05}").into_bytes()
}

fn opts() -> Options {
    Options::default()
        .data_file_size(1024)
        .sync(SyncPolicy::Never)
        .auto_merge(false)
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

/// Runs a merge that "dies" at the `nth` time it reaches `step`. Returns whether it died.
fn crash_at(step: MergeStep, nth: usize) -> bool {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let hook = MergeHook(Arc::new(move |s| {
        if s == step && counter.fetch_add(1, Ordering::SeqCst) + 1 == nth {
            return Err(Error::Io(std::io::Error::other("injected crash")));
        }
        Ok(())
    }));
    let db = Options {
        merge_hook: Some(hook),
        ..opts()
    }
    .open(dir.path())
    .unwrap();
    let mut model = fill(&db);
    let mut calls = 0;
    // Writes interleaved with the merge: they must win over its copies, crash or not.
    let result = db.merge_with_progress(|_| {
        calls += 1;
        if calls == 1 {
            for i in (1..1500).step_by(7) {
                db.put(key(i), b"during").unwrap();
                model.insert(key(i), b"during".to_vec());
            }
            for i in (2..1500).step_by(9) {
                if db.delete(key(i)).unwrap() {
                    model.remove(&key(i));
                }
            }
            db.put(key(1555), b"new").unwrap();
            model.insert(key(1555), b"new".to_vec());
        }
    });
    let died = seen.load(Ordering::SeqCst) >= nth;
    let context = format!("crash at {step:?} #{nth}");
    assert_eq!(result.is_err(), died, "{context}: {result:?}");
    if died {
        verify(&db, &model, &format!("{context}, before the crash"));
    }
    db.crash();

    let db = opts().open(dir.path()).unwrap();
    verify(&db, &model, &format!("{context}, reopened"));
    assert!(
        leftovers(dir.path()).is_empty(),
        "{context}: temporary files left"
    );
    db.merge().unwrap();
    verify(&db, &model, &format!("{context}, merged again"));
    drop(db);
    let db = opts().open(dir.path()).unwrap();
    verify(
        &db,
        &model,
        &format!("{context}, reopened after the second merge"),
    );
    assert_eq!(db.stats().unwrap().dead_bytes, 0, "{context}");
    died
}

#[test]
fn a_merge_killed_at_any_step_loses_nothing_and_resurrects_nothing() {
    use MergeStep::*;
    for step in [
        Started,
        Copied,
        OutputSynced,
        OutputInPlace,
        Switched,
        Deleted,
        Finished,
    ] {
        let mut died = 0;
        for nth in [1, 2, 5] {
            if crash_at(step, nth) {
                died += 1;
            }
        }
        assert!(died >= 1, "{step:?} was never reached");
        if !matches!(step, Started | Finished) {
            assert!(died >= 2, "{step:?} happens several times per merge");
        }
    }
}
