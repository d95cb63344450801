//! A child process writing with `SyncPolicy::Always` (and merging every 400 operations) is
//! SIGKILLed mid-stream; after reopening, every acknowledged operation is there and the state is
//! a prefix of the operation sequence.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::BTreeMap;
use std::process::Stdio;
use std::time::Duration;

use caskdb::{Db, Options, SyncPolicy};
use caskdb_testkit::child::{self, ChildTest};
use common::{key, value};

const DIR_VAR: &str = "CASKDB_KILL_TEST_DIR";
const MAX_OPS: usize = 200_000;

/// The deterministic operation sequence: mostly puts, every fourth op deletes an earlier key,
/// every seventh overwrites one, with values of varying size so files rotate at odd offsets.
fn op(n: usize) -> (Vec<u8>, Option<Vec<u8>>) {
    if n % 4 == 3 {
        (key(n / 2), None)
    } else if n % 7 == 6 {
        (key(n / 3), Some(format!("overwrite-{n}").into_bytes()))
    } else {
        let mut v = value(n);
        v.resize(20 + (n * 37) % 300, b'.');
        (key(n), Some(v))
    }
}

fn model_after(ops: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for n in 0..ops {
        match op(n) {
            (k, Some(v)) => {
                m.insert(k, v);
            }
            (k, None) => {
                m.remove(&k);
            }
        }
    }
    m
}

/// Runs in the child: performs ops in order and prints `ack N` once op N returned Ok.
#[test]
#[ignore = "child process of acknowledged_writes_survive_sigkill; runs only when spawned by it"]
fn kill_child() {
    let dir = std::env::var(DIR_VAR).expect("spawned by acknowledged_writes_survive_sigkill");
    let db = Options::default()
        .data_file_size(4096)
        .sync(SyncPolicy::Always)
        .open(&dir)
        .unwrap();
    child::exit_with_parent();
    for n in 0..MAX_OPS {
        match op(n) {
            (k, Some(v)) => db.put(&k, &v).unwrap(),
            (k, None) => {
                db.delete(&k).unwrap();
            }
        }
        child::ack(n as u64);
        // merges too, so that kills also land in the middle of one
        if n % 400 == 399 {
            db.merge().unwrap();
        }
    }
}

#[test]
fn acknowledged_writes_survive_sigkill() {
    for kill_after in [1usize, 17, 150, 399, 400, 611, 1500, 2001] {
        let dir = tempfile::tempdir().unwrap();
        let child = ChildTest::spawn(
            "kill_child",
            &[(DIR_VAR, dir.path().as_os_str())],
            Stdio::null(),
        );
        let (acked, status) = child
            .kill_after_acks(0, kill_after as u64, Duration::from_secs(120))
            .unwrap_or_else(|n| panic!("the child stalled after {n} acks"));
        let acked = acked as usize;
        assert!(acked >= kill_after, "child stopped early: {status:?}");
        assert!(!status.success(), "the child was killed, not finished");

        let db = Db::open(dir.path()).unwrap();
        // The op in flight at the kill may or may not have landed; ops past it never ran.
        // Every acknowledged op is there, and the state is one of those two prefixes.
        let candidates = [model_after(acked), model_after(acked + 1)];
        let keys: Vec<Vec<u8>> = model_after(acked + 1)
            .into_keys()
            .chain(model_after(acked).into_keys())
            .chain((0..acked + 1).map(|n| op(n).0))
            .collect();
        let actual: BTreeMap<Vec<u8>, Vec<u8>> = keys
            .iter()
            .filter_map(|k| db.get(k).unwrap().map(|v| (k.clone(), v.to_vec())))
            .collect();
        assert!(
            candidates.contains(&actual),
            "kill after {kill_after} acks: state is not a prefix containing every ack"
        );
        assert_eq!(db.len(), actual.len(), "no extra keys");
    }
}
