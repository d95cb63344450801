//! A replicated group (`--node-id`, `--cluster`): this node's Raft member (`caskdb-raft`), who
//! leads, the leader's write gate, proposals and linearizable reads. How a connection routes
//! each request (answer here, read here after a barrier, write through Raft, or forward to the
//! leader) is in `connection.rs`; forwarding itself is `forward.rs`.
//!
//! Writes, first version: one in flight. On the leader a write command runs in an engine
//! transaction that commits nothing ([`caskdb::Db::stage`]); its writes become the proposal,
//! which every node applies (the leader too) once a majority holds it; only then is the reply
//! sent and the gate passed to the next write.

pub(crate) mod forward;
pub(crate) mod sentinel;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caskdb_raft::membership::{client_of, node_of};
use caskdb_raft::{Effects, Node, NodeId, NodeOptions};
use openraft::ServerState;
use openraft::error::{ClientWriteError, RaftError};

/// One member of the group as `--cluster` lists it: `id=host:port[@busport]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Where clients reach it (and followers forward to it).
    pub client: String,
    /// Where its peers reach its Raft member: `host:busport`, by default the client port +
    /// 10000 (as Redis Cluster's bus).
    pub bus: String,
}

/// Reads `--cluster`: `1=127.0.0.1:7001,2=127.0.0.1:7002@17102,…`.
///
/// # Errors
/// Redis-style text naming the entry that does not parse.
pub fn parse_members(spec: &str) -> Result<BTreeMap<NodeId, Member>, String> {
    let mut out = BTreeMap::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let bad = || format!("cluster: expected id=host:port[@busport], got '{entry}'");
        let (id, addr) = entry.split_once('=').ok_or_else(bad)?;
        let id: NodeId = id.trim().parse().map_err(|_| bad())?;
        let (client, bus_port) = match addr.split_once('@') {
            Some((c, b)) => (c, Some(b.parse::<u16>().map_err(|_| bad())?)),
            None => (addr, None),
        };
        let (host, port) = client.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.parse().map_err(|_| bad())?;
        let bus_port = match bus_port {
            Some(p) => p,
            None => port.checked_add(10000).ok_or_else(|| {
                format!("cluster: port {port} + 10000 is not a port: give @busport")
            })?,
        };
        let member = Member {
            client: client.to_string(),
            bus: format!("{host}:{bus_port}"),
        };
        if out.insert(id, member).is_some() {
            return Err(format!("cluster: node {id} is listed twice"));
        }
    }
    if out.is_empty() {
        return Err("cluster: no members".into());
    }
    Ok(out)
}

/// Who this node thinks leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower(NodeId),
    /// No leader known (an election runs, or too few nodes are up).
    Unknown,
}

/// Why a proposal or a read barrier did not succeed.
#[derive(Debug)]
pub enum Refused {
    /// Certainly not applied: this node does not lead.
    NotLeader,
    /// It may or may not be applied (the leader was lost mid-commit, a timeout).
    Unknown(String),
}

impl Refused {
    /// The error a client gets, telling it what it may assume.
    pub fn reply_text(&self) -> String {
        match self {
            Refused::NotLeader => "CLUSTERDOWN no leader, not executed".into(),
            Refused::Unknown(why) => format!("CLUSTERDOWN {why}, outcome unknown"),
        }
    }
}

/// This node's membership in the group.
pub(crate) struct Cluster {
    pub id: NodeId,
    node: Node,
    pub members: BTreeMap<NodeId, Member>,
    /// The leader's writes, one at a time from staging to applied.
    pub gate: Arc<tokio::sync::Mutex<()>>,
    /// How long a request waits for a leader (`cluster-timeout`).
    pub timeout: Duration,
    /// The term this node last started leading in (collection ids are refreshed then).
    led_term: AtomicU64,
    /// The password of this group's nodes, for forwarded connections.
    pub password: Option<String>,
}

/// How `Cluster::start` is set up.
pub(crate) struct Settings<'a> {
    pub id: NodeId,
    pub members: BTreeMap<NodeId, Member>,
    pub dir: &'a Path,
    pub election_timeout: Duration,
    pub timeout: Duration,
    pub password: Option<String>,
    /// What the Raft bus's connections prove (`handshake.rs` in caskdb-raft).
    pub secret: caskdb_raft::Secret,
}

impl Cluster {
    /// Starts this node's Raft member over `data`, its log and snapshots in `dir/raft`,
    /// listening for its peers on its bus address.
    ///
    /// # Errors
    /// A text naming what failed (the Raft log, the bus port…).
    pub async fn start(settings: Settings<'_>, data: caskdb::Db) -> Result<Cluster, String> {
        let Settings {
            id,
            members,
            dir,
            election_timeout,
            timeout,
            password,
            secret,
        } = settings;
        if !members.contains_key(&id) {
            return Err(format!("node-id {id} is not among the cluster's members"));
        }
        let bus = members.iter().map(|(id, m)| (*id, m.bus.clone())).collect();
        let mut options = NodeOptions::new(id, bus, dir.join("raft"));
        options.meta_key = bytes::Bytes::from_static(&crate::keyspace::RAFT_APPLIED_KEY);
        options.election_timeout = election_timeout;
        options.heartbeat = (election_timeout / 5).max(Duration::from_millis(20));
        options.secret = secret;
        let node = Node::start(options, data)
            .await
            .map_err(|e| format!("starting node {id}: {e}"))?;
        tracing::info!(
            "node {id} of a group of {}: Raft on {}",
            members.len(),
            members[&id].bus
        );
        Ok(Cluster {
            id,
            node,
            members,
            gate: Arc::new(tokio::sync::Mutex::new(())),
            timeout,
            led_term: AtomicU64::new(0),
            password,
        })
    }

    /// Who leads, as this node knows now.
    pub fn role(&self) -> Role {
        let m = self.node.raft().metrics().borrow().clone();
        match (m.state, m.current_leader.map(node_of)) {
            (ServerState::Leader, _) => Role::Leader,
            (_, Some(l)) if l != self.id => Role::Follower(l),
            _ => Role::Unknown,
        }
    }

    /// Who leads, waiting up to `cluster-timeout` for one to be known.
    pub async fn wait_role(&self) -> Role {
        let until = Instant::now() + self.timeout;
        let mut rx = self.node.raft().metrics();
        loop {
            let role = self.role();
            if role != Role::Unknown {
                return role;
            }
            match tokio::time::timeout_at(until.into(), rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return self.role(),
            }
        }
    }

    /// Once a leader holds the gate: waits until everything in its log is applied (entries of
    /// earlier terms included), so the write about to be staged sees all that was committed.
    /// Returns `true` if this is the first write of a new term (the caller then refreshes what
    /// it derives from the data).
    pub async fn ready_to_write(&self) -> Result<bool, Refused> {
        let until = Instant::now() + self.timeout;
        let mut rx = self.node.raft().metrics();
        loop {
            let m = rx.borrow().clone();
            if m.state != ServerState::Leader {
                return Err(Refused::NotLeader);
            }
            let applied = m.last_applied.map(|l| l.index);
            if applied >= m.last_log_index {
                let term = m.current_term;
                return Ok(self.led_term.swap(term, Ordering::AcqRel) != term);
            }
            match tokio::time::timeout_at(until.into(), rx.changed()).await {
                Ok(Ok(())) => {}
                _ => return Err(Refused::NotLeader),
            }
        }
    }

    /// Proposes `effects` and waits until this node applied them (a majority holds them). The
    /// gate guard goes with the proposal: if this gives up waiting (`cluster-timeout` five
    /// times over), the next write still waits until the entry is committed or dropped.
    pub async fn propose(
        &self,
        effects: Effects,
        gate: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<(), Refused> {
        let raft = self.node.raft().clone();
        let task = tokio::spawn(async move {
            let r = raft.client_write(effects).await;
            drop(gate);
            r
        });
        match tokio::time::timeout(self.timeout * 5, task).await {
            Ok(Ok(Ok(_))) => Ok(()),
            // Refused before it was appended, or appended and then truncated by a new
            // leader's log: never committed.
            Ok(Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(_))))) => {
                Err(Refused::NotLeader)
            }
            Ok(Ok(Err(e))) => Err(Refused::Unknown(format!("raft: {e}"))),
            Ok(Err(e)) => Err(Refused::Unknown(format!("raft: {e}"))),
            Err(_) => Err(Refused::Unknown(
                "the write was not committed in time".into(),
            )),
        }
    }

    /// A read barrier: confirms with a quorum that this node still leads, and waits until it
    /// applied everything committed before (openraft's `ensure_linearizable`, a ReadIndex).
    pub async fn read_barrier(&self) -> Result<(), Refused> {
        match tokio::time::timeout(self.timeout, self.node.raft().ensure_linearizable()).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => {
                tracing::debug!("read barrier: {e}");
                Err(Refused::NotLeader)
            }
            Err(_) => Err(Refused::NotLeader),
        }
    }

    /// The Raft metrics (INFO, ROLE).
    pub fn metrics(&self) -> openraft::RaftMetrics<NodeId, openraft::BasicNode> {
        self.node.raft().metrics().borrow().clone()
    }

    /// Where clients reach node `id` (a node id, not a Raft id): as `--cluster` lists it, or
    /// as it joined the group.
    pub fn client_addr(&self, id: u64) -> Option<String> {
        if let Some(m) = self.members.get(&id) {
            return Some(m.client.clone());
        }
        let m = self.metrics();
        m.membership_config
            .membership()
            .nodes()
            .find(|(raft, _)| node_of(**raft) == id)
            .and_then(|(_, n)| client_of(&n.addr).map(str::to_string))
    }

    /// On the leader: each other member (node id) and the last log index it holds.
    pub fn followers(&self) -> Vec<(u64, Option<u64>)> {
        self.metrics()
            .replication
            .iter()
            .flatten()
            .filter(|(id, _)| node_of(**id) != self.id)
            .map(|(id, matched)| (node_of(*id), matched.map(|l| l.index)))
            .collect()
    }

    /// The Raft handle (membership changes).
    pub fn raft(&self) -> &openraft::Raft<caskdb_raft::TypeConfig> {
        self.node.raft()
    }

    /// Stops the Raft member.
    pub async fn shutdown(&self) {
        if let Err(e) = self.node.raft().shutdown().await {
            tracing::warn!("raft shutdown: {e}");
        }
    }
}

/// RAFT.NODE ADD id host:port[@busport] | REMOVE id, on the leader: ADD makes the node a
/// learner (it is promoted once it runs and has caught up); REMOVE takes every incarnation of
/// the node out of the group (the leader too).
pub async fn raft_node(cluster: &Cluster, args: &[bytes::Bytes]) -> crate::frame::Frame {
    use crate::frame::Frame;
    let sub = args
        .get(1)
        .map(|s| String::from_utf8_lossy(s).to_ascii_lowercase());
    let text = |i: usize| args.get(i).map(|a| String::from_utf8_lossy(a).into_owned());
    match (sub.as_deref(), args.len()) {
        (Some("add"), 4) => {
            let (Some(id), Some(addr)) = (text(2), text(3)) else {
                return Frame::err("syntax error");
            };
            let members = match parse_members(&format!("{id}={addr}")) {
                Ok(m) => m,
                Err(e) => return Frame::err(e),
            };
            let Some((id, m)) = members.into_iter().next() else {
                return Frame::err("syntax error");
            };
            let raft = cluster.raft();
            let known = raft
                .metrics()
                .borrow()
                .membership_config
                .membership()
                .nodes()
                .any(|(r, _)| node_of(*r) == id);
            if known {
                return Frame::err(format!("node {id} is already a member"));
            }
            let addr = format!("{} {}", m.bus, m.client);
            match raft
                .add_learner(
                    caskdb_raft::membership::raft_id(id, 0),
                    openraft::BasicNode::new(&addr),
                    false,
                )
                .await
            {
                Ok(_) => {
                    tracing::info!(
                        "RAFT.NODE ADD: node {id} ({addr}) is a learner; it is promoted once it runs and catches up"
                    );
                    Frame::OK
                }
                Err(e) => Frame::err(e.to_string()),
            }
        }
        (Some("remove"), 3) => {
            let Some(id) = text(2).and_then(|t| t.parse::<u64>().ok()) else {
                return Frame::err("value is not an integer or out of range");
            };
            match caskdb_raft::membership::remove_node(cluster.raft(), id).await {
                Ok(()) => Frame::OK,
                Err(e) => Frame::err(e),
            }
        }
        _ => Frame::err("syntax error: RAFT.NODE ADD id host:port[@busport] | RAFT.NODE REMOVE id"),
    }
}
