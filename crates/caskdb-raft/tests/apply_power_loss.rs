#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Applying entries under power loss (the test kit's simulated file system, the data directory
//! with `SyncPolicy::Always`): for every point the power can fail at, the state left holds
//! exactly the effects of the entries up to the applied index it records, and that index is the
//! last acknowledged one or the one in flight.

use std::collections::BTreeMap;
use std::path::Path;

use bytes::Bytes;
use caskdb_raft::{Effects, Op, StateMachine, TypeConfig};
use caskdb_testkit::rng::Rng;
use caskdb_testkit::simfs::{Fault, SimVfs, Tear};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

const ENTRIES: u64 = 20;
const META: &[u8] = b"\0raft-applied";

/// Entry `i` writes key `k{i}`, overwrites `k{i-1}` and deletes `k{i-3}`.
fn ops(i: u64) -> Vec<Op> {
    let mut ops = vec![Op::Put {
        key: Bytes::from(format!("k{i}")),
        value: Bytes::from(vec![i as u8; 300]),
        expire_at: None,
    }];
    if i >= 2 {
        ops.push(Op::Put {
            key: Bytes::from(format!("k{}", i - 1)),
            value: Bytes::from(format!("rewritten by {i}")),
            expire_at: None,
        });
    }
    if i >= 4 {
        ops.push(Op::Delete {
            key: Bytes::from(format!("k{}", i - 3)),
        });
    }
    ops
}

fn entry(i: u64) -> Entry<TypeConfig> {
    Entry {
        log_id: LogId::new(CommittedLeaderId::new(1, 1), i),
        payload: EntryPayload::Normal(Effects { ops: ops(i) }),
    }
}

/// The keyspace after entries 1..=n.
fn model(n: u64) -> BTreeMap<Bytes, Bytes> {
    let mut m = BTreeMap::new();
    for i in 1..=n {
        for op in ops(i) {
            match op {
                Op::Put { key, value, .. } => {
                    m.insert(key, value);
                }
                Op::Delete { key } => {
                    m.remove(&key);
                }
            }
        }
    }
    m
}

fn open(sim: &SimVfs, dir: &Path, snapshots: &Path) -> caskdb::Result<StateMachine> {
    let db = sim
        .options(
            caskdb::Options::default()
                .sync(caskdb::SyncPolicy::Always)
                .data_file_size(4096),
        )
        .open(dir)?;
    Ok(StateMachine::open(db, META, snapshots).unwrap())
}

/// Applies the entries one at a time; returns the last acknowledged index.
async fn run(sim: &SimVfs, dir: &Path, snapshots: &Path) -> u64 {
    let Ok(mut sm) = open(sim, dir, snapshots) else {
        return 0;
    };
    for i in 1..=ENTRIES {
        if sm.apply([entry(i)]).await.is_err() {
            return i - 1;
        }
    }
    ENTRIES
}

#[tokio::test]
async fn the_applied_index_and_the_data_agree_after_power_loss() {
    let dir = Path::new("/sim/data");
    // (Snapshots are plain files; none is made here.)
    let snapshots = tempfile::tempdir().unwrap();
    let snapshots = snapshots.path();
    let total = {
        let sim = SimVfs::new();
        run(&sim, dir, snapshots).await;
        sim.calls().1
    };
    assert!(total > 30, "the run makes {total} changes");
    let mut rng = Rng::new(caskdb_testkit::rng::seed("CASKDB_RAFT_SEED"));
    for cut in 0..total {
        let sim = SimVfs::new();
        sim.set_fault(Fault::PowerCut(cut));
        let acked = run(&sim, dir, snapshots).await;
        let (after, _) = sim.crash(&mut rng, Tear::Random);
        let mut sm = open(&after, dir, snapshots)
            .unwrap_or_else(|e| panic!("power cut before change {cut}: reopen failed: {e}"));
        let applied = sm.applied_state().await.unwrap().0.map_or(0, |l| l.index);
        assert!(
            applied == acked || applied == acked + 1,
            "power cut before change {cut}: applied {applied}, acknowledged {acked}"
        );
        drop(sm);
        let db = after.options(caskdb::Options::default()).open(dir).unwrap();
        let got: BTreeMap<Bytes, Bytes> = db
            .iter()
            .map(Result::unwrap)
            .filter(|(k, _)| k != META)
            .collect();
        assert_eq!(
            got,
            model(applied),
            "power cut before change {cut}: the data is not the state at index {applied}"
        );
    }
}
