//! One member of a replicated group: its Raft log and snapshots in a directory, its state
//! machine over the data engine it is given, and the listener that answers its peers.
//!
//! A fresh node initialises the group with the members it was given. Every node computes the
//! same first membership entry (log id 0, from no leader), so several fresh nodes doing so at
//! once agree; a node with any Raft state of its own (a restart) skips this and rejoins from
//! its log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, LogId, Raft, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::network::{self, Network};
use crate::{Effects, Error, LogStore, NodeId, StateMachine, TypeConfig};

/// How a node is set up.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// This node's id.
    pub id: NodeId,
    /// Every member of the group (this node included): its id and Raft address (`host:port`).
    pub members: BTreeMap<NodeId, String>,
    /// Where the Raft log (`log/`) and the snapshots (`snapshots/`) are kept.
    pub dir: PathBuf,
    /// Where the state machine keeps its applied state in the data engine.
    pub meta_key: Bytes,
    /// A follower that hears nothing from a leader for a random time between this and twice
    /// this starts an election. Default 1 s.
    pub election_timeout: Duration,
    /// How often the leader sends heartbeats. Default 100 ms.
    pub heartbeat: Duration,
    /// A snapshot is made after this many entries applied since the last one (the log is
    /// then purged behind it). Default 100,000.
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot, so that a follower a little behind catches
    /// up from the log rather than a snapshot. Default 1,000.
    pub keep_after_snapshot: u64,
}

impl NodeOptions {
    /// The options of node `id` of `members`, keeping its Raft state in `dir`, with the
    /// defaults above.
    pub fn new(id: NodeId, members: BTreeMap<NodeId, String>, dir: impl Into<PathBuf>) -> Self {
        NodeOptions {
            id,
            members,
            dir: dir.into(),
            meta_key: Bytes::from_static(b"\0raft-applied"),
            election_timeout: Duration::from_secs(1),
            heartbeat: Duration::from_millis(100),
            snapshot_every: 100_000,
            keep_after_snapshot: 1000,
        }
    }
}

/// A running member of the group.
pub struct Node {
    id: NodeId,
    raft: Raft<TypeConfig>,
    data: caskdb::Db,
    server: JoinHandle<()>,
}

impl Node {
    /// Starts node `options.id` over data engine `data`: opens its log and snapshots, listens
    /// for its peers on its address, and initialises the group if this node is fresh.
    ///
    /// # Errors
    /// [`Error::Raft`] for options openraft refuses or a failed start; the engine's errors for
    /// the log; [`Error::Snapshot`] for the snapshot directory; [`Error::Listen`] if its
    /// address cannot be bound.
    pub async fn start(options: NodeOptions, data: caskdb::Db) -> Result<Node, Error> {
        let Some(addr) = options.members.get(&options.id).cloned() else {
            return Err(Error::Raft(format!(
                "node {} is not among the members {:?}",
                options.id, options.members
            )));
        };
        let min = options.election_timeout.as_millis() as u64;
        let config = openraft::Config {
            cluster_name: "caskdb".into(),
            election_timeout_min: min,
            election_timeout_max: min * 2,
            heartbeat_interval: options.heartbeat.as_millis() as u64,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(options.snapshot_every),
            max_in_snapshot_log_to_keep: options.keep_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::Raft(e.to_string()))?;
        let log = LogStore::open(options.dir.join("log"))?;
        let sm = StateMachine::open(
            data.clone(),
            options.meta_key.clone(),
            options.dir.join("snapshots"),
        )?;
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| Error::Listen {
                addr: addr.clone(),
                source,
            })?;
        let raft = Raft::new(options.id, Arc::new(config), Network, log, sm)
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        let server = tokio::spawn(network::serve(listener, raft.clone()));
        let fresh = !raft
            .is_initialized()
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        if fresh {
            let nodes: BTreeMap<NodeId, BasicNode> = options
                .members
                .iter()
                .map(|(id, addr)| (*id, BasicNode::new(addr)))
                .collect();
            match raft.initialize(nodes).await {
                Ok(()) => tracing::info!("node {}: initialised the group", options.id),
                // A peer's first entry reached this node first: the same one.
                Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(Error::Raft(e.to_string())),
            }
        }
        Ok(Node {
            id: options.id,
            raft,
            data,
            server,
        })
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The data engine: what the applied entries made (reads here are this node's, possibly
    /// behind the leader).
    pub fn data(&self) -> &caskdb::Db {
        &self.data
    }

    /// The openraft handle (metrics, waits, membership changes).
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.raft
    }

    /// Proposes `effects` and waits until a majority holds them and this node applied them;
    /// returns their log id.
    ///
    /// # Errors
    /// [`Error::NotLeader`] on a follower (with the leader it knows of), [`Error::Raft`] if
    /// the node is shutting down or the entry's outcome is unknown.
    pub async fn write(&self, effects: Effects) -> Result<LogId<NodeId>, Error> {
        match self.raft.client_write(effects).await {
            Ok(r) => Ok(r.log_id),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => {
                Err(Error::NotLeader {
                    leader: f.leader_id,
                })
            }
            Err(e) => Err(Error::Raft(e.to_string())),
        }
    }

    /// Stops the node: Raft, then its listener. (openraft's state-machine task lets the data
    /// engine go shortly after: reopening its directory at once may find it still locked.)
    pub async fn shutdown(self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!("node {}: raft shutdown: {e}", self.id);
        }
        self.server.abort();
        let _ = self.server.await;
    }
}
