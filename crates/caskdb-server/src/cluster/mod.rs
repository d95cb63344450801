//! A replicated group (`--node-id`, `--cluster`): this node's Raft member (`caskdb-raft`), who
//! leads, the leader's write gate, proposals and linearizable reads. How a connection routes
//! each request (answer here, read here after a barrier, write through Raft, or forward to the
//! leader) is in `connection.rs`; forwarding itself is `forward.rs`.
//!
//! Writes are pipelined. On the leader a write command runs in an engine transaction that
//! commits nothing, reading through the writes still in flight ([`caskdb::Db::stage_over`]
//! over the [`Pipeline`]'s overlay); its writes become a proposal, submitted in staging order
//! (the gate covers staging and submission only), which every node applies once a majority
//! holds it; only then is the reply sent. Proposals waiting while Raft is busy are batched
//! into one entry (`submit`), so many clients' writes share a round trip and an fsync. A
//! write that wrote nothing but read writes in flight is answered once those are applied; a
//! read waits for the writes staged before it. Should a proposal fail, those
//! staged after it (over its writes) fail too, as Raft's log order guarantees, and staging
//! stops until none is left in flight.

pub(crate) mod forward;
pub(crate) mod sentinel;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use caskdb_raft::membership::{client_of, node_of};
use caskdb_raft::{Effects, Node, NodeId, NodeOptions};
use openraft::ServerState;
use openraft::error::ClientWriteError;

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
#[derive(Debug, Clone)]
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

/// The leader's writes in flight (see the module's comment).
pub(crate) struct Pipeline {
    /// The writes in flight, read through by the next stage. Locked only under the gate
    /// (staging can be long, a script's): nothing else waits for it.
    overlay: parking_lot::Mutex<caskdb::Overlay>,
    /// Proposals made since the last stage, and their keys: the overlay forgets them before
    /// the next stage reads it.
    settled: parking_lot::Mutex<Vec<(u64, Vec<bytes::Bytes>)>>,
    /// The proposals' numbers and fates (short critical sections).
    state: parking_lot::Mutex<Flight>,
    /// Bumped whenever a proposal resolves.
    changed: tokio::sync::watch::Sender<u64>,
    /// Proposals staged and not yet handed to Raft, in staging order.
    queue: parking_lot::Mutex<Vec<Queued>>,
    /// Wakes `submit` when the queue gets one.
    wake: tokio::sync::Notify,
}

/// A proposal waiting for `submit`.
struct Queued {
    seq: u64,
    effects: Effects,
    reply: tokio::sync::oneshot::Sender<Result<(), Refused>>,
}

/// Raft entries of batched proposals in flight at once: one being made while the next
/// gathers the proposals staged meanwhile.
const ENTRIES_IN_FLIGHT: usize = 2;

/// A batch stops growing past this many bytes of keys and values (an entry is applied in one
/// engine transaction).
const BATCH_BYTES: usize = 4 << 20;

/// Hands the queued proposals to Raft, batched: whatever was staged while the entries before
/// were being made goes in one entry (applied as one transaction, in staging order), so one
/// append, round trip and fsync serve them all. Runs for the node's life.
async fn submit(pipeline: Arc<Pipeline>, raft: openraft::Raft<caskdb_raft::TypeConfig>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(ENTRIES_IN_FLIGHT));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let batch = loop {
            let taken = {
                let mut queue = pipeline.queue.lock();
                let mut bytes = 0;
                let n = queue
                    .iter()
                    .take_while(|q| {
                        let first = bytes == 0;
                        bytes += q.effects.bytes().max(1);
                        first || bytes <= BATCH_BYTES
                    })
                    .count();
                queue.drain(..n).collect::<Vec<_>>()
            };
            if !taken.is_empty() {
                break taken;
            }
            pipeline.wake.notified().await;
        };
        // One staged over a proposal that failed since is never submitted; nor one of a run
        // given up on when this node led again in a new term (`ready_to_write`): that term's
        // first stage did not see it, and submitted now it could still commit after writes
        // staged without it (two INCRs answering the same number).
        let refused: Vec<bool> = {
            let f = pipeline.state.lock();
            batch.iter().map(|q| f.is_tainted(q.seq)).collect()
        };
        let mut ops = Vec::new();
        let mut notes = Vec::new();
        let mut members = Vec::with_capacity(batch.len());
        for (q, refused) in batch.into_iter().zip(refused) {
            let keys = q.effects.keys();
            if refused {
                pipeline.resolve(q.seq, keys, false);
                let _ = q.reply.send(Err(Refused::NotLeader));
                continue;
            }
            ops.extend(q.effects.ops);
            notes.extend_from_slice(&q.effects.notes);
            members.push((q.seq, keys, q.reply));
        }
        if members.is_empty() {
            continue;
        }
        let effects = Effects {
            ops,
            notes: notes.into(),
        };
        let outcome = match raft.client_write_ff(effects).await {
            Ok(rx) => rx,
            Err(e) => {
                for (seq, keys, reply) in members {
                    pipeline.resolve(seq, keys, false);
                    let _ = reply.send(Err(Refused::Unknown(format!("raft: {e}"))));
                }
                continue;
            }
        };
        let pipeline = pipeline.clone();
        tokio::spawn(async move {
            let result = match outcome.await {
                Ok(Ok(_)) => Ok(()),
                // Refused before it was appended, or appended and then truncated by a new
                // leader's log: never committed.
                Ok(Err(ClientWriteError::ForwardToLeader(_))) => Err(Refused::NotLeader),
                Ok(Err(e)) => Err(Refused::Unknown(format!("raft: {e}"))),
                Err(_) => Err(Refused::Unknown("raft stopped".into())),
            };
            for (seq, keys, reply) in members {
                pipeline.resolve(seq, keys, result.is_ok());
                let _ = reply.send(result.clone());
            }
            drop(slot);
        });
    }
}

struct Flight {
    /// The next proposal's number (from 1).
    next: u64,
    /// Proposals staged and not yet resolved.
    flying: BTreeSet<u64>,
    /// Every proposal up to this one has resolved.
    resolved: u64,
    /// Those resolved beyond `resolved`, out of order.
    ahead: BTreeSet<u64>,
    /// The first proposal that failed while this run of proposals was in flight: every later
    /// one was staged over it.
    failed: Option<u64>,
    /// Earlier runs' failures: the proposals from the first failed one to the run's last.
    tainted: Vec<(u64, u64)>,
    /// The term this run's proposals are made in.
    term: u64,
}

impl Flight {
    /// Proposal `seq` failed, or is given up on: it and every later one in this run fail.
    fn fail_from(&mut self, seq: u64) {
        self.failed = Some(self.failed.map_or(seq, |first| first.min(seq)));
    }

    fn is_tainted(&self, seq: u64) -> bool {
        self.failed.is_some_and(|f| seq >= f)
            || self.tainted.iter().any(|(a, b)| (*a..=*b).contains(&seq))
    }
}

impl Pipeline {
    fn new() -> Pipeline {
        Pipeline {
            overlay: parking_lot::Mutex::new(caskdb::Overlay::new()),
            settled: parking_lot::Mutex::new(Vec::new()),
            state: parking_lot::Mutex::new(Flight {
                next: 1,
                flying: BTreeSet::new(),
                resolved: 0,
                ahead: BTreeSet::new(),
                failed: None,
                tainted: Vec::new(),
                term: 0,
            }),
            changed: tokio::sync::watch::Sender::new(0),
            queue: parking_lot::Mutex::new(Vec::new()),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Proposal `seq` is made (`ok`: the overlay forgets its writes before the next stage) or
    /// will never be (the run is marked failed from it on).
    /// A proposal given up on already (`Cluster::ready_to_write` after a new term) is
    /// ignored.
    fn resolve(&self, seq: u64, keys: Vec<bytes::Bytes>, ok: bool) {
        let mut f = self.state.lock();
        if !f.flying.remove(&seq) {
            return;
        }
        if ok {
            // (Under the state lock: a reset that clears `settled` comes before or after.)
            self.settled.lock().push((seq, keys));
        } else {
            f.fail_from(seq);
        }
        f.ahead.insert(seq);
        loop {
            let n = f.resolved + 1;
            if !f.ahead.remove(&n) {
                break;
            }
            f.resolved = n;
        }
        drop(f);
        self.changed.send_modify(|n| *n += 1);
    }
}

/// Marks the pipeline failed if staging unwinds (see `Cluster::stage`).
struct PoisonOnUnwind<'a> {
    pipeline: &'a Pipeline,
    seq: u64,
}

impl Drop for PoisonOnUnwind<'_> {
    fn drop(&mut self) {
        let mut f = self.pipeline.state.lock();
        let first = f.flying.first().copied().unwrap_or(self.seq);
        f.fail_from(first);
        // (The overlay is emptied by the next `ready_to_write`, once none is in flight: its
        // lock is still held here.)
    }
}

/// What a leader's write command left to do, from [`Cluster::stage`].
pub(crate) enum Staged {
    /// Nothing: it wrote nothing and read no write in flight.
    Nothing,
    /// It wrote nothing, but read writes in flight: answered once proposals up to this one
    /// are made.
    After(u64),
    /// Its writes, proposal `seq`, to submit.
    Proposal(u64, Effects),
}

/// This node's membership in the group.
pub(crate) struct Cluster {
    pub id: NodeId,
    node: Node,
    pub members: BTreeMap<NodeId, Member>,
    /// The leader's writes, one at a time through staging and submission.
    pub gate: Arc<tokio::sync::Mutex<()>>,
    /// The leader's writes in flight.
    pipeline: Arc<Pipeline>,
    /// Read barriers started so far; the last one that succeeded (held while one runs).
    barriers_started: AtomicU64,
    barrier: tokio::sync::Mutex<u64>,
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
    /// Entries between snapshots.
    pub snapshot_every: u64,
    pub timeout: Duration,
    pub password: Option<String>,
    /// What the Raft bus's connections prove (`handshake.rs` in caskdb-raft).
    pub secret: caskdb_raft::Secret,
    /// Where the other nodes' messages go (`relay::received`).
    pub on_message: caskdb_raft::network::OnMessage,
    /// What this node does with an entry's notes once applied (`relay::applied`).
    pub on_apply: caskdb_raft::OnApply,
    /// What it does once a snapshot replaced its data.
    pub on_install: caskdb_raft::OnApply,
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
            snapshot_every,
            timeout,
            password,
            secret,
            on_message,
            on_apply,
            on_install,
        } = settings;
        if !members.contains_key(&id) {
            return Err(format!("node-id {id} is not among the cluster's members"));
        }
        let bus = members.iter().map(|(id, m)| (*id, m.bus.clone())).collect();
        let mut options = NodeOptions::new(id, bus, dir.join("raft"));
        options.meta_key = bytes::Bytes::from_static(&crate::keyspace::RAFT_APPLIED_KEY);
        options.election_timeout = election_timeout;
        options.snapshot_every = snapshot_every;
        // (A follower further behind catches up from the snapshot.)
        options.keep_after_snapshot = options.keep_after_snapshot.min(snapshot_every);
        options.heartbeat = (election_timeout / 5).max(Duration::from_millis(20));
        options.secret = secret;
        options.on_message = Some(on_message);
        options.on_apply = Some(on_apply);
        options.on_install = Some(on_install);
        let node = Node::start(options, data)
            .await
            .map_err(|e| format!("starting node {id}: {e}"))?;
        tracing::info!(
            "node {id} of a group of {}: Raft on {}",
            members.len(),
            members[&id].bus
        );
        let pipeline = Arc::new(Pipeline::new());
        tokio::spawn(submit(pipeline.clone(), node.raft().clone()));
        Ok(Cluster {
            id,
            node,
            members,
            gate: Arc::new(tokio::sync::Mutex::new(())),
            pipeline,
            barriers_started: AtomicU64::new(0),
            barrier: tokio::sync::Mutex::new(0),
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

    /// Once a leader holds the gate: whether a write may be staged now. With writes in flight
    /// (of this term, none failed) it may at once: it stages over them. Otherwise it waits
    /// until none is in flight and everything in the log is applied (entries of earlier terms
    /// included), so the write sees all that was committed. Returns `true` if this is the
    /// first write of a new term (the caller then refreshes what it derives from the data).
    pub async fn ready_to_write(&self) -> Result<bool, Refused> {
        let until = Instant::now() + self.timeout;
        let mut metrics = self.node.raft().metrics();
        let mut changed = self.pipeline.changed.subscribe();
        loop {
            let m = metrics.borrow().clone();
            if m.state != ServerState::Leader {
                return Err(Refused::NotLeader);
            }
            {
                // (Lock order: state, then settled, then overlay. `stage` takes the overlay
                // first, then state; no deadlock: both run only under the gate.)
                let mut f = self.pipeline.state.lock();
                if !f.flying.is_empty() && f.term != m.current_term {
                    // Leading again in a new term with proposals of an old one unresolved: an
                    // entry skipped by a snapshot install never answers. Given up on: their
                    // clients got (or get) `outcome unknown`; whatever of them is in this
                    // node's log is applied before the next stage (below).
                    let first = f.flying.first().copied().unwrap_or(f.next);
                    f.fail_from(first);
                    f.flying.clear();
                    f.resolved = f.next - 1;
                    f.ahead.clear();
                    self.pipeline.changed.send_modify(|n| *n += 1);
                }
                if !f.flying.is_empty() {
                    if f.failed.is_none() {
                        return Ok(false);
                    }
                } else {
                    if let Some(first) = f.failed.take() {
                        let last = f.next - 1;
                        f.tainted.push((first, last));
                        // (Waiters look back a little; older runs no longer matter.)
                        if f.tainted.len() > 64 {
                            f.tainted.remove(0);
                        }
                    }
                    // (No stage runs: the caller holds the gate.)
                    self.pipeline.settled.lock().clear();
                    self.pipeline.overlay.lock().clear();
                    let applied = m.last_applied.map(|l| l.index);
                    if applied >= m.last_log_index {
                        let term = m.current_term;
                        f.term = term;
                        return Ok(self.led_term.swap(term, Ordering::AcqRel) != term);
                    }
                }
            }
            tokio::select! {
                r = tokio::time::timeout_at(until.into(), metrics.changed()) => {
                    if !matches!(r, Ok(Ok(()))) {
                        return Err(Refused::NotLeader);
                    }
                }
                _ = changed.changed() => {}
            }
        }
    }

    /// Stages `f` over the writes in flight, under the gate ([`Cluster::ready_to_write`]).
    /// A proposal it returns must be submitted ([`Cluster::propose`]) before the gate is let
    /// go.
    ///
    /// # Errors
    /// Whatever `f` returns (the overlay is then as it was).
    pub fn stage<T, E: From<caskdb::Error>>(
        &self,
        db: &caskdb::Db,
        f: impl FnOnce(&mut caskdb::Transaction<'_>) -> Result<T, E>,
    ) -> Result<(T, Staged), E> {
        let mut overlay = self.pipeline.overlay.lock();
        for (seq, keys) in self.pipeline.settled.lock().drain(..) {
            overlay.settle(seq, &keys);
        }
        // What it reads rests on the proposals whose writes are in the overlay.
        let read_in_flight = !overlay.is_empty();
        let seq = self.pipeline.state.lock().next;
        // Should `f` panic, the overlay (moved into its transaction) is lost: the writes in
        // flight are then treated as failed, so nothing is staged without them.
        let guard = PoisonOnUnwind {
            pipeline: &self.pipeline,
            seq,
        };
        let result = db.stage_over(&mut overlay, seq, f);
        std::mem::forget(guard);
        let (out, staged) = result?;
        let mut flight = self.pipeline.state.lock();
        if !staged.is_empty() {
            flight.next += 1;
            flight.flying.insert(seq);
            return Ok((out, Staged::Proposal(seq, Effects::from_staged(staged))));
        }
        if read_in_flight || flight.resolved < seq - 1 {
            return Ok((out, Staged::After(seq - 1)));
        }
        Ok((out, Staged::Nothing))
    }

    /// Queues proposal `seq` (from [`Cluster::stage`]) for Raft and lets the gate go; then
    /// waits until this node applied it (a majority holds it). Gives up waiting after
    /// `cluster-timeout` five times over; the pipeline still follows the proposal until it is
    /// made or dropped.
    pub async fn propose(
        &self,
        seq: u64,
        effects: Effects,
        gate: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<(), Refused> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        self.pipeline.queue.lock().push(Queued {
            seq,
            effects,
            reply,
        });
        self.pipeline.wake.notify_one();
        drop(gate);
        match tokio::time::timeout(self.timeout * 5, outcome).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Refused::Unknown("raft stopped".into())),
            Err(_) => Err(Refused::Unknown(
                "the write was not committed in time".into(),
            )),
        }
    }

    /// Waits until proposals up to `seq` are resolved; an error if one of them failed (a
    /// write that read them must not be answered as if they were made).
    pub async fn after(&self, seq: u64) -> Result<(), Refused> {
        self.wait_resolved(seq).await?;
        if self.pipeline.state.lock().is_tainted(seq) {
            return Err(Refused::NotLeader);
        }
        Ok(())
    }

    /// The last proposal staged so far, if it is not yet resolved: a read waits for it
    /// ([`Cluster::wait_resolved`]).
    pub fn last_in_flight(&self) -> Option<u64> {
        let f = self.pipeline.state.lock();
        (f.resolved < f.next - 1).then_some(f.next - 1)
    }

    /// Waits until proposals up to `seq` are resolved (made, or dropped), within
    /// `cluster-timeout` five times over.
    pub async fn wait_resolved(&self, seq: u64) -> Result<(), Refused> {
        let until = Instant::now() + self.timeout * 5;
        let mut changed = self.pipeline.changed.subscribe();
        loop {
            if self.pipeline.state.lock().resolved >= seq {
                return Ok(());
            }
            if !matches!(
                tokio::time::timeout_at(until.into(), changed.changed()).await,
                Ok(Ok(()))
            ) {
                return Err(Refused::Unknown(
                    "the writes before it were not committed in time".into(),
                ));
            }
        }
    }

    /// A read barrier: confirms with a quorum that this node still leads, and waits until it
    /// applied everything committed before (openraft's `ensure_linearizable`, a ReadIndex).
    /// Barriers run one at a time, and one that started after a read arrived serves it: the
    /// reads arriving while one runs share the next.
    pub async fn read_barrier(&self) -> Result<(), Refused> {
        let arrived = self.barriers_started.load(Ordering::Acquire);
        let until = Instant::now() + self.timeout;
        // (Behind others' barriers, it still gives up after `cluster-timeout`.)
        let Ok(mut last_ok) = tokio::time::timeout_at(until.into(), self.barrier.lock()).await
        else {
            return Err(Refused::NotLeader);
        };
        if *last_ok > arrived {
            return Ok(());
        }
        let id = self.barriers_started.fetch_add(1, Ordering::AcqRel) + 1;
        match tokio::time::timeout_at(until.into(), self.node.raft().ensure_linearizable()).await {
            Ok(Ok(_)) => {
                *last_ok = id;
                Ok(())
            }
            Ok(Err(e)) => {
                tracing::debug!("read barrier: {e}");
                Err(Refused::NotLeader)
            }
            Err(_) => Err(Refused::NotLeader),
        }
    }

    /// Sends `msg` to the group's other nodes (`relay.rs`: PUBLISHes, keyspace events),
    /// best effort.
    pub fn broadcast(&self, msg: &bytes::Bytes) {
        self.node.broadcast(msg);
    }

    /// Messages sent to other nodes (PUBLISHes, keyspace events) that were lost (a node down,
    /// or too slow).
    pub fn messages_dropped(&self) -> u64 {
        self.node.broadcast_dropped()
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
