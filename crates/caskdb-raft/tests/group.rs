#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! A three-node group in one process, over TCP on 127.0.0.1: it elects a leader by itself,
//! replicates writes to every node's data engine, refuses writes on followers (naming the
//! leader), survives the loss of its leader (a new one is elected and takes writes), and a
//! restarted node catches up. Waits are bounded; election timeouts are long enough not to flap
//! on a loaded machine; nothing asserts on timing.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use caskdb_raft::membership::node_of;
use caskdb_raft::{Effects, Error, Node, NodeId, NodeOptions, Op};

const WAIT: Duration = Duration::from_secs(30);

fn free_addrs(n: usize) -> Vec<String> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().to_string())
        .collect()
}

fn options(id: NodeId, members: &BTreeMap<NodeId, String>, root: &Path) -> NodeOptions {
    let mut o = NodeOptions::new(id, members.clone(), root.join(format!("n{id}/raft")));
    o.election_timeout = Duration::from_millis(700);
    o.heartbeat = Duration::from_millis(100);
    o
}

/// Node `id`'s data engine; after a shutdown, openraft's state-machine task may still hold it
/// a moment: retried while locked (bounded).
fn data(id: NodeId, root: &Path) -> caskdb::Db {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        match caskdb::Options::default()
            .sync(caskdb::SyncPolicy::Always)
            .open(root.join(format!("n{id}/data")))
        {
            Ok(db) => return db,
            Err(caskdb::Error::Locked { .. }) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("node {id}'s data: {e}"),
        }
    }
}

async fn start(id: NodeId, members: &BTreeMap<NodeId, String>, root: &Path) -> Node {
    Node::start(options(id, members, root), data(id, root))
        .await
        .unwrap()
}

/// As [`start`], snapshotting every 10 entries and keeping no entry behind a snapshot.
async fn start_snapshotting(id: NodeId, members: &BTreeMap<NodeId, String>, root: &Path) -> Node {
    let mut o = options(id, members, root);
    o.snapshot_every = 10;
    o.keep_after_snapshot = 0;
    Node::start(o, data(id, root)).await.unwrap()
}

fn put(k: &str, v: &str) -> Effects {
    Effects {
        ops: vec![Op::Put {
            key: Bytes::copy_from_slice(k.as_bytes()),
            value: Bytes::copy_from_slice(v.as_bytes()),
            expire_at: None,
        }],
        ..Default::default()
    }
}

/// The node id of the leader every node in `nodes` agrees on, other than node `gone`
/// (waiting for one). (Raft ids carry an incarnation: a node that started after the others
/// elected a leader joined as incarnation 1.)
async fn leader(nodes: &[&Node], gone: Option<NodeId>) -> NodeId {
    let first = nodes[0]
        .raft()
        .wait(Some(WAIT))
        .metrics(
            |m| m.current_leader.is_some_and(|l| Some(node_of(l)) != gone),
            "a leader",
        )
        .await
        .unwrap()
        .current_leader
        .unwrap();
    for n in &nodes[1..] {
        n.raft()
            .wait(Some(WAIT))
            .metrics(
                |m| m.current_leader == Some(first),
                format!("node {} to follow {first}", n.id()),
            )
            .await
            .unwrap();
    }
    node_of(first)
}

/// A fresh group of three in `root`, once they agree on a leader (returned with them).
async fn three(
    members: &BTreeMap<NodeId, String>,
    root: &Path,
) -> (BTreeMap<NodeId, Node>, NodeId) {
    let (a, b, c) = tokio::join!(
        start(1, members, root),
        start(2, members, root),
        start(3, members, root)
    );
    let nodes: BTreeMap<NodeId, Node> = [(1, a), (2, b), (3, c)].into();
    let all: Vec<&Node> = nodes.values().collect();
    let lead = leader(&all, None).await;
    (nodes, lead)
}

/// Writes `k{i}` = `v{i}` for `i` in `range` through `node` (the leader); returns the index of
/// the last.
async fn write_keys(node: &Node, range: std::ops::Range<usize>) -> u64 {
    let mut last = 0;
    for i in range {
        last = node
            .write(put(&format!("k{i}"), &format!("v{i}")))
            .await
            .unwrap()
            .index;
    }
    last
}

/// Asserts that node `id`'s data holds `{key}{i}` = `{value}{i}` for every `i` below `n`.
fn assert_keys(db: &caskdb::Db, id: NodeId, key: &str, value: &str, n: usize) {
    for i in 0..n {
        assert_eq!(
            db.get(format!("{key}{i}")).unwrap().as_deref(),
            Some(format!("{value}{i}").as_bytes()),
            "node {id}, key {key}{i}"
        );
    }
}

/// Waits until `node` applied index `index`.
async fn applied(node: &Node, index: u64) {
    node.raft()
        .wait(Some(WAIT))
        .applied_index_at_least(Some(index), format!("node {} to apply {index}", node.id()))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_elects_replicates_fails_over_and_catches_up() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let addrs = free_addrs(3);
    let members: BTreeMap<NodeId, String> = (1..=3).zip(addrs).collect();
    // Every node starts fresh; once a majority is up they initialise, and agree.
    let (mut nodes, first_leader) = three(&members, root).await;
    // Writes on the leader reach every node.
    let last = write_keys(&nodes[&first_leader], 0..20).await;
    for n in nodes.values() {
        applied(n, last).await;
    }
    // A follower refuses a write and names the leader.
    let follower = *nodes.keys().find(|id| **id != first_leader).unwrap();
    match nodes[&follower].write(put("x", "y")).await {
        Err(Error::NotLeader { leader }) => assert_eq!(leader.map(node_of), Some(first_leader)),
        other => panic!("a follower's write: {other:?}"),
    }

    // The leader goes away: the two others elect one of them and take writes.
    let old = nodes.remove(&first_leader).unwrap();
    old.shutdown().await;
    let rest: Vec<&Node> = nodes.values().collect();
    let second_leader = leader(&rest, Some(first_leader)).await;
    assert_ne!(second_leader, first_leader);
    let last = write_keys(&nodes[&second_leader], 20..30).await;
    for n in nodes.values() {
        applied(n, last).await;
    }

    // The old leader comes back from its directories and catches up.
    nodes.insert(first_leader, start(first_leader, &members, root).await);
    applied(&nodes[&first_leader], last).await;

    // Every node's data engine holds every write.
    for (id, n) in std::mem::take(&mut nodes) {
        let db = n.data().clone();
        assert_keys(&db, id, "k", "v", 30);
        assert_eq!(db.get("x").unwrap(), None, "node {id}: the refused write");
        drop(db);
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_behind_a_purged_log_catches_up_from_a_snapshot() {
    // `CASKDB_RAFT_LOG=openraft=info cargo test -p caskdb-raft --test group` shows what
    // openraft does.
    if let Ok(filter) = std::env::var("CASKDB_RAFT_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    }
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let addrs = free_addrs(3);
    let members: BTreeMap<NodeId, String> = (1..=3).zip(addrs).collect();
    let (a, b, c) = tokio::join!(
        start_snapshotting(1, &members, root),
        start_snapshotting(2, &members, root),
        start_snapshotting(3, &members, root)
    );
    let mut nodes: BTreeMap<NodeId, Node> = [(1, a), (2, b), (3, c)].into();
    let all: Vec<&Node> = nodes.values().collect();
    let lead = leader(&all, None).await;
    let lagging = *nodes.keys().find(|id| **id != lead).unwrap();
    nodes.remove(&lagging).unwrap().shutdown().await;
    // Far more entries than the log keeps: the leader snapshots and purges behind itself.
    let last = write_keys(&nodes[&lead], 0..60).await;
    nodes[&lead]
        .raft()
        .wait(Some(WAIT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= 40),
            "the leader to purge its log behind a snapshot",
        )
        .await
        .unwrap();
    // The lagging node can only be brought up to date by a snapshot.
    nodes.insert(lagging, start_snapshotting(lagging, &members, root).await);
    applied(&nodes[&lagging], last).await;
    let m = nodes[&lagging].raft().metrics().borrow().clone();
    assert!(
        m.snapshot.is_some_and(|s| s.index >= 40),
        "the node installed a snapshot: {:?}",
        m.snapshot
    );
    let db = nodes[&lagging].data().clone();
    for i in 0..60 {
        assert_eq!(
            db.get(format!("k{i}")).unwrap().as_deref(),
            Some(format!("v{i}").as_bytes()),
            "key k{i}"
        );
    }
    drop(db);
    for (_, n) in nodes {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wiped_node_comes_back_as_a_new_incarnation_that_replaces_it() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let addrs = free_addrs(3);
    let members: BTreeMap<NodeId, String> = (1..=3).zip(addrs).collect();
    let (mut nodes, lead) = three(&members, root).await;
    let last = write_keys(&nodes[&lead], 0..20).await;
    // A follower loses its disk: vote, log and data.
    let wiped = *nodes.keys().find(|id| **id != lead).unwrap();
    // (Its first incarnation may already be above 0: a node that starts after the others
    // elected a leader joins as a new incarnation too.)
    let old_id = nodes[&wiped].id();
    nodes.remove(&wiped).unwrap().shutdown().await;
    let dir = root.join(format!("n{wiped}"));
    let deadline = std::time::Instant::now() + WAIT;
    // (openraft's state-machine task may hold the data engine a moment after the shutdown.)
    while data_locked(&dir) {
        assert!(
            std::time::Instant::now() < deadline,
            "node {wiped}'s data stays locked"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    std::fs::remove_dir_all(&dir).unwrap();

    // Started again with the same id, it is not the old member: the next incarnation
    // replaces it.
    let back = start(wiped, &members, root).await;
    let next = caskdb_raft::membership::incarnation_of(old_id) + 1;
    let new_id = caskdb_raft::membership::raft_id(wiped, next);
    assert_eq!(back.id(), new_id);
    assert_eq!(
        std::fs::read_to_string(dir.join("raft/incarnation")).unwrap(),
        format!("caskdb-incarnation 1 {next}\n")
    );
    nodes[&lead]
        .raft()
        .wait(Some(WAIT))
        .metrics(
            |m| {
                let voters: Vec<NodeId> = m.membership_config.membership().voter_ids().collect();
                voters.contains(&new_id) && !voters.contains(&old_id) && voters.len() == 3
            },
            "the new incarnation to replace the old one among the voters",
        )
        .await
        .unwrap();
    applied(&back, last).await;
    nodes.insert(wiped, back);
    // The group goes on, the new member included.
    let last = write_keys(&nodes[&lead], 20..25).await;
    // Every node applies before any stops: a leader stopped early would strand the others.
    for n in nodes.values() {
        applied(n, last).await;
    }
    for (id, n) in std::mem::take(&mut nodes) {
        let db = n.data().clone();
        assert_keys(&db, id, "k", "v", 25);
        drop(db);
        n.shutdown().await;
    }
}

/// Whether node directory `dir`'s data engine is still locked by a stopped node's task.
fn data_locked(dir: &Path) -> bool {
    matches!(
        caskdb::Db::open(dir.join("data")),
        Err(caskdb::Error::Locked { .. })
    )
}

/// Node 1's directory (data already in `root`) starts a group alone, whose first snapshot
/// holds the data; nodes 2 and 3 of `members` join it and copy the data from that snapshot.
/// Returns the three once every one applied a write of `new` made after.
async fn adopted(members: &BTreeMap<NodeId, String>, root: &Path) -> BTreeMap<NodeId, Node> {
    let alone: BTreeMap<NodeId, String> = [(1, members[&1].clone())].into();
    let first = start(1, &alone, root).await;
    assert!(first.raft().metrics().borrow().snapshot.is_some());
    let (b, c) = tokio::join!(start(2, members, root), start(3, members, root));
    let nodes: BTreeMap<NodeId, Node> = [(1, first), (2, b), (3, c)].into();
    nodes[&1]
        .raft()
        .wait(Some(WAIT))
        .metrics(
            |m| m.membership_config.membership().voter_ids().count() == 3,
            "three voters",
        )
        .await
        .unwrap();
    let last = nodes[&1].write(put("new", "n")).await.unwrap().index;
    // Every node applies before any stops: the joiners get their entries from node 1, the leader.
    for n in nodes.values() {
        applied(n, last).await;
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_directory_becomes_the_first_member_of_a_group() {
    if let Ok(filter) = std::env::var("CASKDB_RAFT_LOG") {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
    }
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    let addrs = free_addrs(3);
    let members: BTreeMap<NodeId, String> = (1..=3).zip(addrs).collect();
    // Data written before there was a group.
    {
        let db = data(1, root);
        for i in 0..50 {
            db.put(format!("old{i}"), format!("o{i}")).unwrap();
        }
    }
    // Started with the whole list, it refuses: the others could not get that data.
    let refused = Node::start(options(1, &members, root), data(1, root)).await;
    match refused {
        Err(Error::Raft(why)) => assert!(why.contains("already holds data"), "{why}"),
        Err(e) => panic!("unexpected error: {e}"),
        Ok(_) => panic!("a node over existing data started a group of three"),
    }
    std::fs::remove_dir_all(root.join("n1/raft")).unwrap();
    let nodes = adopted(&members, root).await;
    for (id, n) in nodes {
        let db = n.data().clone();
        assert_keys(&db, id, "old", "o", 50);
        assert_eq!(db.get("new").unwrap().as_deref(), Some(&b"n"[..]));
        drop(db);
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_of_one_node_starts_a_new_group() {
    let old_root = tempfile::tempdir().unwrap();
    let old_root = old_root.path();
    let members: BTreeMap<NodeId, String> = (1..=3).zip(free_addrs(3)).collect();
    let (nodes, first) = three(&members, old_root).await;
    let last = write_keys(&nodes[&first], 0..30).await;
    // One node's data, copied while the group runs (a follower's, at a known index).
    let follower = *nodes.keys().find(|id| **id != first).unwrap();
    applied(&nodes[&follower], last).await;
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    nodes[&follower]
        .data()
        .backup(root.join("n1/data"))
        .unwrap();
    nodes[&first].write(put("later", "l")).await.unwrap();
    for n in nodes.into_values() {
        n.shutdown().await;
    }

    // The copy starts a new group: alone first (its data, and the old group's applied index
    // it carries, are not in any log of the new group), then two fresh nodes join it.
    let members: BTreeMap<NodeId, String> = (1..=3).zip(free_addrs(3)).collect();
    let nodes = adopted(&members, root).await;
    for (id, n) in nodes {
        let db = n.data().clone();
        assert_keys(&db, id, "k", "v", 30);
        assert_eq!(db.get("new").unwrap().as_deref(), Some(&b"n"[..]));
        assert_eq!(
            db.get("later").unwrap(),
            None,
            "node {id}: written after the backup"
        );
        drop(db);
        n.shutdown().await;
    }
}
