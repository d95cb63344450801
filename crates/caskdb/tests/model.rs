//! A property test: random sequences of put, delete, batch, expiry, merge and reopen, checked
//! after every step against a `BTreeMap` model — `get` of every key, iteration in both
//! directions, and `len`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::time::Duration;

use caskdb::{Clock, Db, ManualClock, Options, SyncPolicy};
use caskdb_testkit::model::Model;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    Put(u8, u8),
    PutTtl(u8, u8, u8),
    Delete(u8),
    Batch(Vec<(u8, Option<u8>)>),
    Expire(u8, u8),
    Persist(u8),
    Advance(u8),
    Merge,
    Reopen,
}

const KEYS: u8 = 24;

fn key(k: u8) -> Vec<u8> {
    format!("key-{k:02}").into_bytes()
}

fn value(v: u8) -> Vec<u8> {
    // values of different sizes, some empty
    vec![v; (v as usize * 7) % 90]
}

fn step() -> impl Strategy<Value = Step> {
    let k = 0..KEYS;
    prop_oneof![
        6 => (k.clone(), any::<u8>()).prop_map(|(k, v)| Step::Put(k, v)),
        2 => (k.clone(), any::<u8>(), 1..20u8).prop_map(|(k, v, s)| Step::PutTtl(k, v, s)),
        3 => k.clone().prop_map(Step::Delete),
        2 => proptest::collection::vec((k.clone(), proptest::option::of(any::<u8>())), 0..6)
            .prop_map(Step::Batch),
        2 => (k.clone(), 0..20u8).prop_map(|(k, s)| Step::Expire(k, s)),
        1 => k.prop_map(Step::Persist),
        2 => (1..15u8).prop_map(Step::Advance),
        1 => Just(Step::Merge),
        1 => Just(Step::Reopen),
    ]
}

fn open(dir: &std::path::Path, clock: &Arc<ManualClock>) -> Db {
    Options::default()
        .data_file_size(512)
        .sync(SyncPolicy::Never)
        .auto_merge(false)
        .clock(clock.clone())
        .open(dir)
        .unwrap()
}

fn run(steps: Vec<Step>) {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(1_000_000));
    let mut db = open(dir.path(), &clock);
    let mut model = Model::new(clock.now_ms());
    for (n, step) in steps.into_iter().enumerate() {
        match &step {
            Step::Put(k, v) => {
                db.put(key(*k), value(*v)).unwrap();
                model.put(key(*k), value(*v), None);
            }
            Step::PutTtl(k, v, s) => {
                db.put_with_ttl(key(*k), value(*v), Duration::from_secs(u64::from(*s)))
                    .unwrap();
                model.put(key(*k), value(*v), Some(u64::from(*s) * 1000));
            }
            Step::Delete(k) => {
                let existed = db.delete(key(*k)).unwrap();
                assert_eq!(existed, model.delete(&key(*k)), "step {n}: delete result");
            }
            Step::Batch(ops) => {
                let mut b = db.batch();
                for (k, v) in ops {
                    match v {
                        Some(v) => {
                            b.put(key(*k), value(*v));
                            model.put(key(*k), value(*v), None);
                        }
                        None => {
                            b.delete(key(*k));
                            model.delete(&key(*k));
                        }
                    }
                }
                b.commit().unwrap();
            }
            Step::Expire(k, s) => {
                let current = model.get(&key(*k)).cloned();
                let got = db
                    .expire(key(*k), Duration::from_secs(u64::from(*s)))
                    .unwrap();
                assert_eq!(got, current.is_some(), "step {n}: expire result");
                if let Some((v, _)) = current {
                    model.put(key(*k), v, Some(u64::from(*s) * 1000));
                }
            }
            Step::Persist(k) => {
                let current = model.get(&key(*k)).cloned();
                let had = current.as_ref().is_some_and(|(_, at)| *at != 0);
                assert_eq!(
                    db.persist(key(*k)).unwrap(),
                    had,
                    "step {n}: persist result"
                );
                if let Some((v, _)) = current.filter(|_| had) {
                    model.put(key(*k), v, None);
                }
            }
            Step::Advance(s) => {
                clock.advance(Duration::from_secs(u64::from(*s)));
                model.set_now(clock.now_ms());
            }
            Step::Merge => {
                db.merge().unwrap();
            }
            Step::Reopen => {
                drop(db);
                db = open(dir.path(), &clock);
            }
        }
        // Expired entries are gone for good once time passed them: forget them in the model
        // too, so that a later expiry or persist sees the same absence.
        model.drop_expired();
        let expect: Vec<_> = model.visible(model.now()).into_iter().collect();
        for k in 0..KEYS {
            let want = model.get(&key(k)).map(|(v, _)| v.as_slice());
            assert_eq!(
                db.get(key(k)).unwrap().as_deref(),
                want,
                "step {n} ({step:?}): key {k}"
            );
        }
        let forward: Vec<_> = db
            .iter()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        assert_eq!(forward, expect, "step {n} ({step:?}): iteration");
        let mut backward: Vec<_> = db
            .iter()
            .rev()
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).unwrap())
            .collect();
        backward.reverse();
        assert_eq!(backward, expect, "step {n} ({step:?}): reverse iteration");
        assert_eq!(db.len(), expect.len(), "step {n} ({step:?}): len");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_store_behaves_like_a_sorted_map(steps in proptest::collection::vec(step(), 1..60)) {
        run(steps);
    }
}
