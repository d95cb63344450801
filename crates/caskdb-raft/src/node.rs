//! One member of a replicated group: its Raft log and snapshots in a directory, its state
//! machine over the data engine it is given, and the listener that answers its peers.
//!
//! A node without Raft state asks its peers first: if the group has elected a leader, this
//! node may be a wiped member (its vote and log lost), so it joins as a new incarnation in
//! place of the old one; otherwise, once a majority of the members is up and fresh, it
//! initialises the group with them. Every node computes the same first membership entry (log
//! id 0, from no leader), so several fresh nodes doing so at once agree. A node with Raft state
//! (a restart) rejoins from its log.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, LogId, Raft, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::handshake::Secret;
use crate::membership::{bus_of, incarnation_of, node_of, raft_id};
use crate::network::{self, Network};
use crate::{Effects, Error, LogStore, NodeId, StateMachine, TypeConfig};

/// How long a peer may take to answer a snapshot chunk (the last one: to install it).
const INSTALL_TIMEOUT: Duration = Duration::from_secs(60);

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
    /// The secret every connection between members proves (`handshake.rs`). Default: none
    /// (the empty secret; members must agree on that too).
    pub secret: Secret,
    /// What to do with a message from a peer ([`Node::broadcast`]). Default: drop it.
    pub on_message: Option<network::OnMessage>,
    /// Given the notes of each entry this node applies ([`crate::Effects::notes`]). Default:
    /// none.
    pub on_apply: Option<crate::state_machine::OnApply>,
    /// Called (with empty notes) once a snapshot from the leader replaced this node's data.
    /// Default: none.
    pub on_install: Option<crate::state_machine::OnApply>,
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
            secret: Secret::default(),
            on_message: None,
            on_apply: None,
            on_install: None,
        }
    }
}

/// A running member of the group.
pub struct Node {
    id: NodeId,
    raft: Raft<TypeConfig>,
    data: caskdb::Db,
    server: JoinHandle<()>,
    broadcast: network::Broadcast,
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
            // Each snapshot chunk's request, the last one of which waits for the install
            // (copy, check, load, fsyncs): openraft's 200 ms default was often too short on a
            // busy disk, and a leader that times out sends the whole snapshot again, forever.
            install_snapshot_timeout: INSTALL_TIMEOUT.as_millis() as u64,
            max_in_snapshot_log_to_keep: options.keep_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| Error::Raft(e.to_string()))?;
        std::fs::create_dir_all(&options.dir).map_err(|source| Error::Snapshot {
            path: options.dir.clone(),
            source,
        })?;
        let log = LogStore::open(options.dir.join("log"))?;
        let fresh = log.is_fresh()?;
        // No Raft state, yet the data says it applied some log: the data came from another
        // node (a backup, a copied directory) or its `raft/` was removed. That position names
        // entries of a log this node does not have (openraft would refuse to start a group
        // over it): keep the data, forget the position.
        if fresh && data.get(&options.meta_key)?.is_some() {
            tracing::warn!(
                "node {}: the data directory was applied from a Raft log this node does not \
                 hold (a backup, or a directory whose raft/ was removed): its data is kept, \
                 its old log position dropped",
                options.id
            );
            data.delete(&options.meta_key)?;
            // Durable before Raft writes anything: a crash after the new log's first entries
            // must not bring the old position back (openraft would take the new entries up
            // to it for applied).
            data.sync()?;
        }
        let sm = StateMachine::open(
            data.clone(),
            options.meta_key.clone(),
            options.dir.join("snapshots"),
        )?
        .on_apply(options.on_apply.clone())
        .on_install(options.on_install.clone());
        let bus = bus_of(&addr).to_string();
        let listener = TcpListener::bind(&bus)
            .await
            .map_err(|source| Error::Listen {
                addr: bus.clone(),
                source,
            })?;
        // Peers may ask for this node's status while it decides how to start.
        let slot: network::Slot = Arc::default();
        let server = tokio::spawn(network::serve(
            listener,
            slot.clone(),
            options.secret.clone(),
            options.on_message.clone(),
        ));
        let incarnation_file = options.dir.join("incarnation");
        let stored = read_incarnation(&incarnation_file)?;
        // Data from before the group is in no log entry: only a group of this node alone may
        // start from it (its first snapshot carries it to the others); joining a group, it
        // would be mixed with the group's.
        let has_data = fresh
            && data
                .range_keys::<&[u8], _>(..)
                .any(|k| k.is_ok_and(|k| k != options.meta_key));
        if has_data && options.members.len() > 1 {
            server.abort();
            return Err(Error::Raft(format!(
                "node {}: the data directory already holds data but no Raft state. To make it \
                 the first member of a group, start it as a group of itself alone (--cluster \
                 listing only this node), then start the others with the whole list: they \
                 join and copy the data. To add it to a group that has the data, move the \
                 directory aside first",
                options.id
            )));
        }
        let plan = if fresh {
            decide(&options, stored).await
        } else {
            Plan::Restart(stored.unwrap_or(0))
        };
        let incarnation = incarnation_of_plan(&plan);
        // An unreachable peer is tried again before a restarted node's first election can
        // fire (three election timeouts at the least: openraft waits out the lease first), at
        // most every 500 ms as openraft's default. (Retrying every heartbeat made a node that
        // joins by snapshot sometimes never get the entries after it: not understood yet.)
        let network = Network {
            retry: (options.election_timeout * 2).min(Duration::from_millis(500)),
            secret: options.secret.clone(),
        };
        let started = async {
            if stored != Some(incarnation) {
                write_incarnation(&incarnation_file, incarnation)?;
            }
            let id = raft_id(options.id, incarnation);
            let raft = Raft::new(id, Arc::new(config), network, log, sm)
                .await
                .map_err(|e| Error::Raft(e.to_string()))?;
            let _ = slot.set(raft.clone());
            Self::begin(&options, &addr, raft.clone(), plan, has_data).await?;
            Ok::<_, Error>((id, raft))
        };
        let (id, raft) = match started.await {
            Ok(x) => x,
            Err(e) => {
                server.abort();
                return Err(e);
            }
        };
        Ok(Node {
            id,
            raft,
            data,
            server,
            broadcast: network::Broadcast::new(options.secret.clone()),
        })
    }

    /// Carries out `plan` once Raft runs: initialise the group (and hand data already there to
    /// its first snapshot), or ask to join it.
    async fn begin(
        options: &NodeOptions,
        addr: &str,
        raft: Raft<TypeConfig>,
        plan: Plan,
        has_data: bool,
    ) -> Result<(), Error> {
        let id = raft_id(options.id, incarnation_of_plan(&plan));
        match plan {
            Plan::Restart(_) => {}
            Plan::Init(_) => {
                let nodes: BTreeMap<NodeId, BasicNode> = options
                    .members
                    .iter()
                    .map(|(node, addr)| (raft_id(*node, 0), BasicNode::new(addr)))
                    .collect();
                match raft.initialize(nodes).await {
                    Ok(()) => tracing::info!("node {}: initialised the group", options.id),
                    // A peer's first entry reached this node first: the same one.
                    Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                    Err(e) => return Err(Error::Raft(e.to_string())),
                }
                if has_data {
                    adopt(&raft, options.id).await?;
                }
            }
            Plan::Join { replaces, .. } => {
                tracing::info!(
                    "node {}: joining the group as incarnation {}{}",
                    options.id,
                    incarnation_of(id),
                    if replaces.is_empty() {
                        String::new()
                    } else {
                        format!(" in place of {replaces:?} (its directory was new or wiped)")
                    }
                );
                let join = network::Join {
                    id,
                    addr: addr.to_string(),
                    replaces,
                };
                tokio::spawn(join_group(
                    raft,
                    peers(options),
                    options.secret.clone(),
                    join,
                ));
            }
        }
        Ok(())
    }

    /// This node's Raft id (its node id and incarnation: [`crate::membership::raft_id`]).
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

    /// Sends `msg` to every other member of the current membership (voters and learners),
    /// best effort: a member that is down, or too slow, does not get it. Their node's
    /// [`NodeOptions::on_message`] receives it.
    pub fn broadcast(&self, msg: &Bytes) {
        let m = self.raft.metrics().borrow().clone();
        let to: Vec<String> = m
            .membership_config
            .membership()
            .nodes()
            .filter(|(id, _)| **id != self.id)
            .map(|(_, n)| bus_of(&n.addr).to_string())
            .collect();
        self.broadcast.send(to, msg);
    }

    /// Messages [`Node::broadcast`] could not deliver so far.
    pub fn broadcast_dropped(&self) -> u64 {
        self.broadcast.dropped()
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

/// How a node starts.
enum Plan {
    /// It has Raft state: it rejoins from it (as the incarnation it was).
    Restart(u64),
    /// A fresh group: it initialises with the others (incarnation 0).
    Init(u64),
    /// The group exists and this node has no state: it joins as a new incarnation, in place
    /// of its earlier ones.
    Join {
        incarnation: u64,
        replaces: Vec<NodeId>,
    },
}

/// A one-member group started over existing data: once it leads, a snapshot (which holds
/// every key) is made and the log purged behind it, so that members joining later copy the
/// data from the snapshot rather than replay a log that never held it.
async fn adopt(raft: &Raft<TypeConfig>, node: u64) -> Result<(), Error> {
    let raft_err = |e: &dyn std::fmt::Display| Error::Raft(e.to_string());
    let m = raft
        .wait(Some(Duration::from_secs(60)))
        .metrics(
            |m| m.state.is_leader() && m.last_applied.is_some(),
            "the one-member group to elect itself",
        )
        .await
        .map_err(|e| raft_err(&e))?;
    raft.trigger().snapshot().await.map_err(|e| raft_err(&e))?;
    let applied = m.last_applied.map_or(0, |l| l.index);
    raft.wait(Some(Duration::from_secs(600)))
        .metrics(
            |m| m.snapshot.is_some_and(|s| s.index >= applied),
            "the snapshot of the adopted data",
        )
        .await
        .map_err(|e| raft_err(&e))?;
    raft.trigger()
        .purge_log(applied)
        .await
        .map_err(|e| raft_err(&e))?;
    tracing::info!(
        "node {node}: the data already in the directory is in the group's first snapshot (index {applied})"
    );
    Ok(())
}

fn incarnation_of_plan(plan: &Plan) -> u64 {
    match plan {
        Plan::Restart(i) | Plan::Init(i) => *i,
        Plan::Join { incarnation, .. } => *incarnation,
    }
}

/// Pause between rounds of asking the peers.
const ASK_AGAIN: Duration = Duration::from_millis(200);

/// The other members' bus addresses.
fn peers(options: &NodeOptions) -> Vec<String> {
    options
        .members
        .iter()
        .filter(|(id, _)| **id != options.id)
        .map(|(_, a)| bus_of(a).to_string())
        .collect()
}

/// A node without Raft state decides: if a peer reports a group that elected a leader, this
/// node's vote and log may have been lost (a wiped directory), so it joins as a new
/// incarnation; otherwise, once a majority of the members (itself included) is up and fresh,
/// it initialises the group with them. A node that was already told to join (a stored
/// incarnation above 0) never initialises.
async fn decide(options: &NodeOptions, stored: Option<u64>) -> Plan {
    let majority = options.members.len() / 2 + 1;
    let mut said = false;
    loop {
        let mut fresh = 1;
        for peer in peers(options) {
            let status = match network::status(&peer, &options.secret).await {
                Ok(s) => s,
                Err(e) => {
                    if e.kind() == std::io::ErrorKind::PermissionDenied {
                        tracing::error!("node {}: the peer at {peer}: {e}", options.id);
                    }
                    continue;
                }
            };
            if status.live() {
                // Earlier incarnations that were voters may have voted and acknowledged
                // entries: replaced by a new one. One that is only a learner (RAFT.NODE ADD
                // made it, or a join cut short) never did: taken over as it is.
                let mine = |ids: &mut dyn Iterator<Item = NodeId>| -> Vec<NodeId> {
                    ids.filter(|id| node_of(*id) == options.id).collect()
                };
                let voters = mine(&mut status.voters.iter().copied());
                let all = mine(&mut status.nodes.iter().map(|(id, _)| *id));
                let newest_voter = voters.iter().map(|id| incarnation_of(*id)).max();
                let learner = all
                    .iter()
                    .filter(|id| !voters.contains(id))
                    .map(|id| incarnation_of(*id))
                    .filter(|inc| newest_voter.is_none_or(|v| *inc > v))
                    .max();
                let incarnation = learner.unwrap_or_else(|| {
                    all.iter()
                        .map(|id| incarnation_of(*id) + 1)
                        .chain(stored.map(|s| s + 1))
                        .max()
                        .unwrap_or(0)
                });
                return Plan::Join {
                    incarnation,
                    replaces: voters,
                };
            }
            fresh += 1;
        }
        if stored.unwrap_or(0) == 0 && fresh >= majority {
            return Plan::Init(0);
        }
        if !said {
            tracing::info!(
                "node {}: waiting for a majority of the group ({majority} of {}) to start",
                options.id,
                options.members.len()
            );
            said = true;
        }
        tokio::time::sleep(ASK_AGAIN).await;
    }
}

/// Asks the leader, found through the peers, to take `join` in; until it has.
async fn join_group(
    raft: Raft<TypeConfig>,
    peers: Vec<String>,
    secret: Secret,
    join: network::Join,
) {
    loop {
        let mut leader_addr = None;
        for peer in &peers {
            if let Ok(s) = network::status(peer, &secret).await
                && let Some(l) = s.leader
                && let Some((_, a)) = s.nodes.iter().find(|(id, _)| *id == l)
            {
                leader_addr = Some(bus_of(a).to_string());
                break;
            }
        }
        if let Some(addr) = leader_addr {
            match network::join(&addr, &secret, &join).await {
                Ok(()) => {
                    tracing::info!("node {}: joined the group", node_of(join.id));
                    return;
                }
                Err(e) => tracing::info!("node {}: joining: {e}", node_of(join.id)),
            }
        }
        if raft.is_initialized().await.unwrap_or(false)
            && crate::membership::voters(&raft).contains(&join.id)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The incarnation stored in `path`, if any.
fn read_incarnation(path: &std::path::Path) -> Result<Option<u64>, Error> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let v = text
                .trim()
                .strip_prefix("caskdb-incarnation 1 ")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    Error::Format(format!("{}: not an incarnation file", path.display()))
                })?;
            Ok(Some(v))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Snapshot {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Stores `incarnation` in `path` durably (a temporary file renamed over it, then the
/// directory synced).
fn write_incarnation(path: &std::path::Path, incarnation: u64) -> Result<(), Error> {
    let err = |source| Error::Snapshot {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).map_err(err)?;
        f.write_all(format!("caskdb-incarnation 1 {incarnation}\n").as_bytes())
            .map_err(err)?;
        f.sync_all().map_err(err)?;
    }
    std::fs::rename(&tmp, path).map_err(err)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
    }
    Ok(())
}
