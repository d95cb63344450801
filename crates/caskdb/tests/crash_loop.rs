//! The crash loop: a child process applies a seeded random stream of puts, deletes, batches
//! and merges with `SyncPolicy::Always`, printing each acknowledged operation to a pipe; the
//! parent SIGKILLs it after a random number of acknowledgements, reopens the same directory,
//! checks that the whole content equals the model after every acknowledged operation (plus, at
//! most, the one in flight), and starts the next child where the state left off. Round after
//! round on one database, as RocksDB's crash test and sled's crash loop do.
//!
//! `CASKDB_CRASH_ROUNDS` sets the number of kills (default 30, about a minute in a debug build);
//! `CASKDB_CRASH_SEED` replays a run (the seed is printed). A soak run:
//! `CASKDB_CRASH_ROUNDS=5000 cargo test --release -p caskdb --test crash_loop -- --nocapture`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;

use caskdb::{Options, SyncPolicy};
use caskdb_testkit::child::{self, ChildTest};
use caskdb_testkit::rng::{env_u64, mix, seed};

const DIR_VAR: &str = "CASKDB_CRASH_LOOP_DIR";
const SEED_VAR: &str = "CASKDB_CRASH_LOOP_CHILD_SEED";
const START_VAR: &str = "CASKDB_CRASH_LOOP_START";

/// Keys come from a small space so that overwrites and deletes of live keys are common.
const KEYS: u64 = 300;
/// A child that acknowledges nothing for this long is taken to hang.
const STALL: std::time::Duration = std::time::Duration::from_secs(120);
/// Most acknowledgements a round waits for before the kill.
const MAX_ACKS_PER_ROUND: u64 = 500;

#[derive(Clone, Debug)]
enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// Applied all or nothing.
    Batch(Vec<(Vec<u8>, Option<Vec<u8>>)>),
    /// Changes no content; a kill may land in the middle of one.
    Merge,
}

fn key(r: u64) -> Vec<u8> {
    format!("key-{:04}", r % KEYS).into_bytes()
}

/// Values of 1 to ~1,500 bytes, so records straddle the 4 KiB file size at odd offsets.
fn value(n: u64, r: u64) -> Vec<u8> {
    let len = 1 + (r >> 20) as usize % 1_500;
    let mut v = format!("v{n}-").into_bytes();
    v.resize(len, b'a' + (r % 26) as u8);
    v
}

/// Operation `n` of the stream `seed`: a pure function, so parent and child agree on it.
fn op(seed: u64, n: u64) -> Op {
    let r = mix(seed ^ mix(n));
    match r % 100 {
        0..=54 => Op::Put(key(r >> 8), value(n, r)),
        55..=79 => Op::Delete(key(r >> 8)),
        80..=97 => {
            let len = 2 + (r >> 40) % 6;
            let items = (0..len)
                .map(|i| {
                    let ri = mix(r ^ i);
                    let v = (!ri.is_multiple_of(3)).then(|| value(n * 8 + i, ri));
                    (key(ri >> 8), v)
                })
                .collect();
            Op::Batch(items)
        }
        _ => Op::Merge,
    }
}

fn apply(model: &mut BTreeMap<Vec<u8>, Vec<u8>>, op: &Op) {
    let mut set = |k: &Vec<u8>, v: &Option<Vec<u8>>| match v {
        Some(v) => {
            model.insert(k.clone(), v.clone());
        }
        None => {
            model.remove(k);
        }
    };
    match op {
        Op::Put(k, v) => set(k, &Some(v.clone())),
        Op::Delete(k) => set(k, &None),
        Op::Batch(items) => items.iter().for_each(|(k, v)| set(k, v)),
        Op::Merge => {}
    }
}

fn options() -> Options {
    Options::default()
        .data_file_size(4096)
        .sync(SyncPolicy::Always)
        // merges happen when the stream says so, not in the background
        .auto_merge(false)
}

/// Runs in the child: applies ops from `START` on and prints `ack N` once op N returned Ok.
#[test]
#[ignore = "child process of the crash loop; runs only when spawned by it"]
fn crash_loop_child() {
    let dir = std::env::var(DIR_VAR).expect("spawned by the crash loop");
    let seed: u64 = std::env::var(SEED_VAR).unwrap().parse().unwrap();
    let start: u64 = std::env::var(START_VAR).unwrap().parse().unwrap();
    let db = options().open(&dir).unwrap();
    child::exit_with_parent();
    for n in start.. {
        match op(seed, n) {
            Op::Put(k, v) => db.put(k, v).unwrap(),
            Op::Delete(k) => {
                db.delete(k).unwrap();
            }
            Op::Batch(items) => {
                let mut batch = db.batch();
                for (k, v) in items {
                    match v {
                        Some(v) => batch.put(k, v),
                        None => batch.delete(k),
                    };
                }
                batch.commit().unwrap();
            }
            Op::Merge => {
                db.merge().unwrap();
            }
        }
        child::ack(n);
    }
}

#[test]
fn crash_loop() {
    let rounds = env_u64("CASKDB_CRASH_ROUNDS").unwrap_or(30);
    let seed = seed("CASKDB_CRASH_SEED");
    eprintln!("crash loop: {rounds} rounds, CASKDB_CRASH_SEED={seed}");
    let dir = tempfile::tempdir().unwrap();
    // The child's stderr goes to a file, quoted if it dies on its own.
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut model = BTreeMap::new();
    // The next op to run: everything before it is in `model` and on disk.
    let mut next = 0u64;
    let (mut acks, mut in_flight_landed, mut merges) = (0u64, 0u64, 0u64);
    for round in 0..rounds {
        let kill_after = 1 + mix(seed ^ mix(round ^ 0xdead)) % MAX_ACKS_PER_ROUND;
        let (seed_arg, start_arg) = (seed.to_string(), next.to_string());
        let envs = [
            (DIR_VAR, dir.path().as_os_str()),
            (SEED_VAR, seed_arg.as_ref()),
            (START_VAR, start_arg.as_ref()),
        ];
        let child = ChildTest::spawn("crash_loop_child", &envs, log.reopen().unwrap().into());
        let stderr = || std::fs::read_to_string(log.path()).unwrap_or_default();
        let (acked, status) = child
            .kill_after_acks(next, next + kill_after, STALL)
            .unwrap_or_else(|acked| {
                panic!(
                    "round {round}: no acknowledgement for {STALL:?} after op {acked}; \
                     seed {seed}; the child's stderr:\n{}",
                    stderr()
                )
            });
        assert!(
            acked >= next + kill_after,
            "round {round}: the child stopped early ({status:?}); seed {seed}; its stderr:\n{}",
            stderr()
        );

        for n in next..acked {
            let op = op(seed, n);
            merges += u64::from(matches!(op, Op::Merge));
            apply(&mut model, &op);
        }
        acks += acked - next;
        let db = options().open(dir.path()).unwrap_or_else(|e| {
            panic!("round {round}: reopen after the kill failed: {e}; seed {seed}")
        });
        let actual: BTreeMap<Vec<u8>, Vec<u8>> = db
            .iter()
            .map(|r| {
                let (k, v) = r.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect();
        // The op in flight at the kill may have landed (wholly), nothing after it.
        let mut with_in_flight = model.clone();
        apply(&mut with_in_flight, &op(seed, acked));
        if actual == model {
            next = acked;
        } else if actual == with_in_flight {
            model = with_in_flight;
            next = acked + 1;
            in_flight_landed += 1;
        } else {
            let diff: Vec<_> = model
                .keys()
                .chain(actual.keys())
                .filter(|k| model.get(*k) != actual.get(*k))
                .take(5)
                .map(|k| String::from_utf8_lossy(k).into_owned())
                .collect();
            panic!(
                "round {round}: after {acked} acknowledged ops the content is no prefix \
                 containing them all (keys differing: {diff:?}); seed {seed}"
            );
        }
        assert_eq!(
            db.len(),
            actual.len(),
            "round {round}: len agrees with iteration"
        );
        db.close().unwrap();
    }
    eprintln!(
        "crash loop: {rounds} kills, {acks} acknowledged ops checked ({merges} merges), \
         in-flight op found applied {in_flight_landed} times; seed {seed}"
    );
}
