#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! The Raft log and state machine: openraft's own storage suite, then what it does not cover:
//! entries that carry effects, everything surviving a reopen, snapshots holding the data (values
//! and expiry times) and refused when damaged.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use bytes::Bytes;
use caskdb_raft::{Effects, LogStore, NodeId, Op, StateMachine, TypeConfig};
use openraft::storage::{RaftLogStorage, RaftLogStorageExt, RaftStateMachine};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftLogReader,
    RaftSnapshotBuilder, StorageError, StorageIOError, Vote,
};
use tempfile::TempDir;

const META: &[u8] = b"\0raft-applied";

fn open(dir: &Path) -> (LogStore, StateMachine) {
    let log = LogStore::open(dir.join("log")).unwrap();
    let db = caskdb::Db::open(dir.join("data")).unwrap();
    let sm = StateMachine::open(db, META, dir.join("snapshots")).unwrap();
    (log, sm)
}

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachine, TempDir> for Builder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().map_err(|e| StorageIOError::write(&e))?;
        let (log, sm) = open(dir.path());
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    Suite::test_all(Builder).unwrap();
}

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn effects(ops: Vec<Op>) -> Effects {
    Effects {
        ops,
        ..Default::default()
    }
}

fn put(k: &str, v: &str, expire_at: Option<u64>) -> Op {
    Op::Put {
        key: Bytes::copy_from_slice(k.as_bytes()),
        value: Bytes::copy_from_slice(v.as_bytes()),
        expire_at,
    }
}

fn normal(term: u64, index: u64, e: Effects) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(e),
    }
}

fn membership(term: u64, index: u64) -> Entry<TypeConfig> {
    let nodes: BTreeMap<NodeId, BasicNode> = [
        (1, BasicNode::new("127.0.0.1:7001")),
        (2, BasicNode::new("127.0.0.1:7002")),
        (3, BasicNode::new("127.0.0.1:7003")),
    ]
    .into();
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new(vec![BTreeSet::from([1, 2, 3])], nodes)),
    }
}

/// Far in the future, so never expired while the test runs.
const LATER: u64 = 4_000_000_000_000;

#[tokio::test]
async fn the_log_and_the_vote_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let entries = vec![
        membership(1, 1),
        normal(
            1,
            2,
            effects(vec![
                put("a", "1", None),
                put("b", "2", Some(LATER)),
                Op::Delete {
                    key: Bytes::from_static(b"c"),
                },
            ]),
        ),
        Entry {
            log_id: log_id(2, 3),
            payload: EntryPayload::Blank,
        },
        normal(
            2,
            4,
            effects(vec![put("", "empty key is the engine's to refuse", None)]),
        ),
    ];
    {
        let (mut log, _) = open(dir.path());
        log.blocking_append(entries.clone()).await.unwrap();
        log.save_vote(&Vote::new_committed(2, 1)).await.unwrap();
        log.save_committed(Some(log_id(2, 3))).await.unwrap();
    }
    let (mut log, _) = open(dir.path());
    let back = log.try_get_log_entries(0..10).await.unwrap();
    assert_eq!(format!("{back:?}"), format!("{entries:?}"));
    assert_eq!(
        log.read_vote().await.unwrap(),
        Some(Vote::new_committed(2, 1))
    );
    assert_eq!(log.read_committed().await.unwrap(), Some(log_id(2, 3)));
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_log_id, Some(log_id(2, 4)));
    // Truncating and purging are durable too.
    log.truncate(log_id(2, 4)).await.unwrap();
    log.purge(log_id(1, 1)).await.unwrap();
    drop(log);
    let (mut log, _) = open(dir.path());
    let state = log.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 1)));
    assert_eq!(state.last_log_id, Some(log_id(2, 3)));
    let left = log.try_get_log_entries(0..10).await.unwrap();
    assert_eq!(
        left.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
        [2, 3]
    );
}

#[tokio::test]
async fn applying_makes_the_effects_and_records_the_state_atomically() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_, mut sm) = open(dir.path());
        sm.apply(vec![
            membership(1, 1),
            normal(
                1,
                2,
                effects(vec![put("a", "1", None), put("b", "2", Some(LATER))]),
            ),
            normal(
                1,
                3,
                effects(vec![
                    put("a", "3", None),
                    Op::Delete {
                        key: Bytes::from_static(b"b"),
                    },
                    put("c", "4", Some(LATER)),
                ]),
            ),
        ])
        .await
        .unwrap();
    }
    // Reopened: the data and the applied state agree.
    let (_, mut sm) = open(dir.path());
    let (applied, m) = sm.applied_state().await.unwrap();
    assert_eq!(applied, Some(log_id(1, 3)));
    assert_eq!(m.log_id(), &Some(log_id(1, 1)));
    assert_eq!(
        m.membership()
            .nodes()
            .map(|(id, _)| *id)
            .collect::<Vec<_>>(),
        [1, 2, 3]
    );
    drop(sm);
    let db = caskdb::Db::open(dir.path().join("data")).unwrap();
    assert_eq!(db.get("a").unwrap().as_deref(), Some(&b"3"[..]));
    assert_eq!(db.get("b").unwrap(), None);
    assert_eq!(
        db.get_with_expiry("c").unwrap(),
        Some((Bytes::from_static(b"4"), Some(LATER)))
    );
}

#[tokio::test]
async fn an_entry_the_engine_refuses_fails_the_whole_batch() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut sm) = open(dir.path());
    let r = sm
        .apply(vec![
            normal(1, 1, effects(vec![put("a", "1", None)])),
            normal(1, 2, effects(vec![put("", "an empty key", None)])),
        ])
        .await;
    assert!(r.is_err(), "an empty key must be refused");
    let (applied, _) = sm.applied_state().await.unwrap();
    assert_eq!(applied, None, "nothing of the batch is applied");
}

/// Builds a snapshot of `sm` now.
async fn build(sm: &mut StateMachine) -> openraft::Snapshot<TypeConfig> {
    sm.get_snapshot_builder()
        .await
        .build_snapshot()
        .await
        .unwrap()
}

/// Sends the leader's current snapshot (`meta`) to the follower, which installs it: then both
/// report the same applied state.
async fn send_snapshot(
    sm_l: &mut StateMachine,
    sm_f: &mut StateMachine,
    meta: &openraft::SnapshotMeta<NodeId, openraft::BasicNode>,
) {
    let mut incoming = sm_f.begin_receiving_snapshot().await.unwrap();
    let mut from = sm_l.get_current_snapshot().await.unwrap().unwrap();
    tokio::io::copy(&mut from.snapshot, &mut *incoming)
        .await
        .unwrap();
    sm_f.install_snapshot(meta, incoming).await.unwrap();
    assert_eq!(
        sm_f.applied_state().await.unwrap(),
        sm_l.applied_state().await.unwrap()
    );
}

#[tokio::test]
async fn a_snapshot_carries_the_data_to_another_node() {
    let leader = tempfile::tempdir().unwrap();
    let follower = tempfile::tempdir().unwrap();
    let (_, mut sm_l) = open(leader.path());
    sm_l.apply(vec![
        membership(1, 1),
        normal(
            1,
            2,
            effects(vec![
                put("k1", "v1", None),
                put("k2", "v2", Some(LATER)),
                put("k3", &"x".repeat(100_000), None),
            ]),
        ),
    ])
    .await
    .unwrap();
    let snap = build(&mut sm_l).await;
    assert_eq!(snap.meta.last_log_id, Some(log_id(1, 2)));

    let (_, mut sm_f) = open(follower.path());
    // What the follower held before is replaced.
    sm_f.apply(vec![normal(1, 1, effects(vec![put("stale", "x", None)]))])
        .await
        .unwrap();
    send_snapshot(&mut sm_l, &mut sm_f, &snap.meta).await;
    drop(sm_f);
    let db = caskdb::Db::open(follower.path().join("data")).unwrap();
    let keys: Vec<Bytes> = db
        .keys()
        .map(Result::unwrap)
        .filter(|k| k != META)
        .collect();
    assert_eq!(keys, [&b"k1"[..], &b"k2"[..], &b"k3"[..]]);
    assert_eq!(
        db.get_with_expiry("k2").unwrap(),
        Some((Bytes::from_static(b"v2"), Some(LATER)))
    );
    assert_eq!(db.get("k3").unwrap().unwrap().len(), 100_000);
    drop(db);
    // The installed snapshot is the follower's current one, also after a reopen.
    let (_, mut sm_f) = open(follower.path());
    let cur = sm_f.get_current_snapshot().await.unwrap().unwrap();
    assert_eq!(cur.meta, snap.meta);
}

#[tokio::test]
async fn a_damaged_snapshot_is_refused_and_changes_nothing() {
    let leader = tempfile::tempdir().unwrap();
    let follower = tempfile::tempdir().unwrap();
    let (_, mut sm_l) = open(leader.path());
    sm_l.apply(vec![normal(1, 1, effects(vec![put("k", "v", None)]))])
        .await
        .unwrap();
    let snap = build(&mut sm_l).await;
    let path = std::fs::read_dir(leader.path().join("snapshots"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .next()
        .unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;

    let (_, mut sm_f) = open(follower.path());
    sm_f.apply(vec![normal(1, 1, effects(vec![put("mine", "1", None)]))])
        .await
        .unwrap();
    let mut incoming = sm_f.begin_receiving_snapshot().await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut *incoming, &bytes)
        .await
        .unwrap();
    let err = sm_f
        .install_snapshot(&snap.meta, incoming)
        .await
        .unwrap_err();
    let text = format!("{err}");
    assert!(text.contains("CRC mismatch"), "{text}");
    assert_eq!(
        sm_f.applied_state().await.unwrap().0,
        Some(log_id(1, 1)),
        "the follower's state is untouched"
    );
    assert!(sm_f.get_current_snapshot().await.unwrap().is_none());
}

#[tokio::test]
async fn a_batch_larger_than_one_engine_transaction_is_applied_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    let (_, mut sm) = open(dir.path());
    // Three entries of 30 MB each: 90 MB, over the engine's 64 MiB batch limit together.
    let big = |i: u64| {
        normal(
            1,
            i,
            Effects {
                ops: vec![Op::Put {
                    key: Bytes::from(format!("big{i}")),
                    value: Bytes::from(vec![i as u8; 30 << 20]),
                    expire_at: None,
                }],
                ..Default::default()
            },
        )
    };
    let replies = sm.apply(vec![big(1), big(2), big(3)]).await.unwrap();
    assert_eq!(replies.len(), 3);
    assert_eq!(sm.applied_state().await.unwrap().0, Some(log_id(1, 3)));
    drop(sm);
    let db = caskdb::Db::open(dir.path().join("data")).unwrap();
    for i in 1..=3u64 {
        let v = db.get(format!("big{i}")).unwrap().unwrap();
        assert_eq!((v.len(), v[0]), (30 << 20, i as u8));
    }
}

#[tokio::test]
async fn a_snapshot_larger_than_one_engine_transaction_installs() {
    let leader = tempfile::tempdir().unwrap();
    let follower = tempfile::tempdir().unwrap();
    let (_, mut sm_l) = open(leader.path());
    // 20 MiB of values, in entries of 2 MiB.
    let value = "v".repeat(200 << 10);
    let mut entries = vec![membership(1, 1)];
    for e in 0..10 {
        let ops = (0..10)
            .map(|i| put(&format!("k{e}-{i}"), &value, None))
            .collect();
        entries.push(normal(1, 2 + e, effects(ops)));
    }
    sm_l.apply(entries).await.unwrap();
    let snap = build(&mut sm_l).await;
    // The follower's engine takes transactions of 8 MiB at most: the snapshot is not one.
    let db = caskdb::Options::default()
        .max_batch_size(8 << 20)
        .open(follower.path().join("data"))
        .unwrap();
    let mut sm_f = StateMachine::open(db, META, follower.path().join("snapshots")).unwrap();
    send_snapshot(&mut sm_l, &mut sm_f, &snap.meta).await;
    drop(sm_f);
    let db = caskdb::Db::open(follower.path().join("data")).unwrap();
    let keys = db.keys().map(Result::unwrap).filter(|k| k != META).count();
    assert_eq!(keys, 100);
    assert_eq!(db.get("k9-9").unwrap().unwrap().len(), 200 << 10);
    assert!(
        db.keys()
            .map(Result::unwrap)
            .all(|k| !k.starts_with(b"\0raft-applied-")),
        "no install marker is left"
    );
}

#[tokio::test]
async fn each_applied_entrys_notes_reach_the_hook_once_its_writes_are_committed() {
    let dir = tempfile::tempdir().unwrap();
    let db = caskdb::Db::open(dir.path().join("data")).unwrap();
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let hook = {
        let (seen, db) = (seen.clone(), db.clone());
        caskdb_raft::OnApply(std::sync::Arc::new(move |notes: &Bytes| {
            // What a reader sees when the hook runs.
            seen.lock().push((notes.clone(), db.get("k").unwrap()));
        }))
    };
    let mut sm = StateMachine::open(db, META, dir.path().join("snapshots"))
        .unwrap()
        .on_apply(Some(hook));
    let with = |v: &str, notes: &'static str| Effects {
        ops: vec![put("k", v, None)],
        notes: Bytes::from_static(notes.as_bytes()),
    };
    sm.apply(vec![
        normal(1, 1, with("1", "first")),
        normal(1, 2, with("2", "")),
        normal(1, 3, with("3", "third")),
    ])
    .await
    .unwrap();
    let v3 = Some(Bytes::from_static(b"3"));
    assert_eq!(
        *seen.lock(),
        vec![
            (Bytes::from_static(b"first"), v3.clone()),
            (Bytes::from_static(b"third"), v3),
        ]
    );
}

#[tokio::test]
async fn a_snapshot_builds_when_the_raft_files_sit_inside_the_data_directory() {
    // The server's layout: data in DIR, the Raft state in DIR/raft.
    let dir = tempfile::tempdir().unwrap();
    let db = caskdb::Db::open(dir.path()).unwrap();
    let mut sm = StateMachine::open(db, META, dir.path().join("raft/snapshots")).unwrap();
    sm.apply(vec![
        membership(1, 1),
        normal(1, 2, effects(vec![put("k", "v", None)])),
    ])
    .await
    .unwrap();
    let snap = build(&mut sm).await;
    assert_eq!(snap.meta.last_log_id, Some(log_id(1, 2)));
    // The copy it was made from is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path().join("raft/snapshots"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "{left:?}");
}
