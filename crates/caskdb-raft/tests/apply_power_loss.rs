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
        payload: EntryPayload::Normal(Effects {
            ops: ops(i),
            ..Default::default()
        }),
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

/// The snapshot installs in the test below: keys `s0`… of 150 KiB, about 9 MiB in all (three
/// load steps), at index `SNAP_INDEX`.
const SNAP_KEYS: u64 = 60;
const SNAP_INDEX: u64 = 50;

fn snapshot_value(i: u64) -> Bytes {
    Bytes::from(vec![b'a' + (i % 26) as u8; 150 << 10])
}

/// A leader's snapshot (built on the real file system): its meta and its bytes.
async fn leader_snapshot() -> (
    openraft::SnapshotMeta<caskdb_raft::NodeId, openraft::BasicNode>,
    Vec<u8>,
) {
    let dir = tempfile::tempdir().unwrap();
    let db = caskdb::Db::open(dir.path().join("data")).unwrap();
    let mut sm = StateMachine::open(db, META, dir.path().join("snapshots")).unwrap();
    let ops = (0..SNAP_KEYS)
        .map(|i| Op::Put {
            key: Bytes::from(format!("s{i}")),
            value: snapshot_value(i),
            expire_at: None,
        })
        .collect();
    sm.apply([Entry {
        log_id: LogId::new(CommittedLeaderId::new(2, 0), SNAP_INDEX),
        payload: EntryPayload::Normal(Effects {
            ops,
            ..Default::default()
        }),
    }])
    .await
    .unwrap();
    use openraft::storage::RaftSnapshotBuilder;
    let snap = sm
        .get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap();
    let mut bytes = Vec::new();
    let mut file = sm.get_current_snapshot().await.unwrap().unwrap().snapshot;
    tokio::io::AsyncReadExt::read_to_end(&mut *file, &mut bytes)
        .await
        .unwrap();
    (snap.meta, bytes)
}

fn open_big(sim: &SimVfs, dir: &Path, snapshots: &Path) -> caskdb::Result<StateMachine> {
    let db = sim
        .options(
            caskdb::Options::default()
                .sync(caskdb::SyncPolicy::Always)
                .data_file_size(4 << 20),
        )
        .open(dir)?;
    StateMachine::open(db, META, snapshots)
        .map_err(|e| caskdb::Error::Io(std::io::Error::other(e.to_string())))
}

/// Applies three entries, then installs the snapshot; stops at the first failure.
async fn install_run(
    sim: &SimVfs,
    dir: &Path,
    snapshots: &Path,
    snap: &(
        openraft::SnapshotMeta<caskdb_raft::NodeId, openraft::BasicNode>,
        Vec<u8>,
    ),
) {
    let Ok(mut sm) = open_big(sim, dir, snapshots) else {
        return;
    };
    for i in 1..=3 {
        if sm.apply([entry(i)]).await.is_err() {
            return;
        }
    }
    let Ok(mut incoming) = sm.begin_receiving_snapshot().await else {
        return;
    };
    if tokio::io::AsyncWriteExt::write_all(&mut *incoming, &snap.1)
        .await
        .is_err()
    {
        return;
    }
    let _ = sm.install_snapshot(&snap.0, incoming).await;
}

#[tokio::test]
async fn a_snapshot_install_cut_by_power_loss_is_finished_at_reopen() {
    let dir = Path::new("/sim/data");
    let snap = leader_snapshot().await;
    let total = {
        let sim = SimVfs::new();
        let snapshots = tempfile::tempdir().unwrap();
        install_run(&sim, dir, snapshots.path(), &snap).await;
        sim.calls().1
    };
    assert!(total > 20, "the run makes {total} changes");
    let mut rng = Rng::new(caskdb_testkit::rng::seed("CASKDB_RAFT_SEED"));
    let snapshot_model: BTreeMap<Bytes, Bytes> = (0..SNAP_KEYS)
        .map(|i| (Bytes::from(format!("s{i}")), snapshot_value(i)))
        .collect();
    let (mut finished, mut resumed) = (0, 0);
    for cut in 0..total {
        let sim = SimVfs::new();
        sim.set_fault(Fault::PowerCut(cut));
        let snapshots = tempfile::tempdir().unwrap();
        install_run(&sim, dir, snapshots.path(), &snap).await;
        let (after, _) = sim.crash(&mut rng, Tear::Random);
        {
            let db = after.options(caskdb::Options::default()).open(dir);
            if db.is_ok_and(|db| db.get([META, b"-installing"].concat()).unwrap().is_some()) {
                resumed += 1;
            }
        }
        // The reopen finishes an install the cut interrupted.
        let mut sm = open_big(&after, dir, snapshots.path())
            .unwrap_or_else(|e| panic!("power cut before change {cut}: reopen failed: {e}"));
        let applied = sm.applied_state().await.unwrap().0.map_or(0, |l| l.index);
        drop(sm);
        let db = after.options(caskdb::Options::default()).open(dir).unwrap();
        let got: BTreeMap<Bytes, Bytes> = db
            .iter()
            .map(Result::unwrap)
            .filter(|(k, _)| !k.starts_with(META))
            .collect();
        assert!(
            db.get([META, b"-installing"].concat()).unwrap().is_none(),
            "power cut before change {cut}: the install marker is left"
        );
        if applied == SNAP_INDEX {
            finished += 1;
            assert!(
                got == snapshot_model,
                "power cut before change {cut}: not the snapshot's data"
            );
        } else {
            assert!(
                applied <= 3,
                "power cut before change {cut}: applied {applied}"
            );
            assert!(
                got == model(applied),
                "power cut before change {cut}: the data is not the state at index {applied}"
            );
        }
    }
    assert!(finished > 0, "some cuts fell after the install began");
    assert!(
        resumed > 0,
        "some cuts fell in the middle of the install ({total} changes)"
    );
    eprintln!(
        "{total} power cuts, {resumed} in the middle of an install, {finished} with the snapshot installed"
    );
}
