//! Raft's traffic between nodes: one TCP connection per peer, opened with a handshake in which
//! both ends prove they hold the group's secret (`handshake.rs`), then each request a frame
//! and its answer a frame. Besides Raft's requests, members send each other *messages*
//! ([`Broadcast`]: a server's PUBLISH reaches the subscribers of every node), best effort and
//! in order per peer, outside the Raft log. A frame is a `u32` length (little-endian) then a
//! MessagePack body: a request
//! is a kind byte (1 append-entries, 2 vote, 3 install-snapshot, 4 status, 5 join), the Raft
//! id of the member it is for (`u64`, 0 for status and join), then the request; an answer is the handler's `Result`. Status and join are caskdb's own: a starting
//! node asks its peers whether a group exists, and a new member asks the leader to take it in. The wire format is openraft's types through serde (it is not kept
//! on disk). A connection that fails or times out is dropped and made again at the next
//! request; frames over [`MAX_FRAME`] are refused before anything is allocated.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{Backoff, RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::tls::BusStream;

use crate::handshake::{self, Secret};
use crate::{NodeId, TypeConfig};

/// The largest frame either side accepts (a snapshot chunk is far smaller).
pub const MAX_FRAME: usize = 64 << 20;
/// How long making a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

const APPEND: u8 = 1;
const VOTE: u8 = 2;
const SNAPSHOT: u8 = 3;
const STATUS: u8 = 4;
const JOIN: u8 = 5;
const MESSAGE: u8 = 6;

/// What a node does with a message from a peer ([`Broadcast`]).
#[derive(Clone)]
pub struct OnMessage(pub std::sync::Arc<dyn Fn(bytes::Bytes) + Send + Sync>);

impl std::fmt::Debug for OnMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnMessage(..)")
    }
}

/// Messages waiting for one peer, beyond which new ones are dropped (a peer that is down or
/// too slow).
const MESSAGE_QUEUE: usize = 10_000;
/// Messages sent before their answers are read.
const MESSAGE_BATCH: usize = 256;

/// What a node says of itself to a starting peer.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct Status {
    /// It has Raft state (a membership).
    pub initialized: bool,
    /// The leader it follows or is, if any.
    pub leader: Option<NodeId>,
    /// Its last log index.
    pub last_log_index: Option<u64>,
    /// The members of its current membership (voters and learners), with their addresses.
    pub nodes: Vec<(NodeId, String)>,
    /// The voters among them.
    pub voters: Vec<NodeId>,
}

impl Status {
    /// Whether the group has done more than initialise (a leader was elected): a fresh node
    /// then joins it as a new member rather than initialising.
    pub fn live(&self) -> bool {
        self.initialized && (self.leader.is_some() || self.last_log_index.unwrap_or(0) > 0)
    }
}

/// A new member's request to the leader.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Join {
    /// Its Raft id.
    pub id: NodeId,
    /// Its address (`bus [client]`).
    pub addr: String,
    /// The members it replaces (its own earlier incarnations).
    pub replaces: Vec<NodeId>,
}

/// The Raft handle a listener answers with, once made (a starting node answers status
/// requests before it has one).
pub type Slot = std::sync::Arc<std::sync::OnceLock<Raft<TypeConfig>>>;

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

/// Makes the clients Raft uses to reach its peers.
#[derive(Clone)]
pub struct Network {
    /// How long the leader waits before trying an unreachable peer again.
    pub retry: Duration,
    /// The group's secret, proven on each connection.
    pub secret: Secret,
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            addr: crate::membership::bus_of(&node.addr).to_string(),
            stream: None,
            retry: self.retry,
            secret: self.secret.clone(),
        }
    }
}

/// One peer: its address and, once made, the connection to it.
pub struct Peer {
    target: NodeId,
    addr: String,
    stream: Option<BusStream>,
    retry: Duration,
    secret: Secret,
}

/// A connection to the peer at `addr`, made within [`CONNECT_TIMEOUT`] and through the
/// handshake.
async fn open(addr: &str, secret: &Secret) -> std::io::Result<BusStream> {
    let made = async {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let mut s = crate::tls::connect(tcp, addr, secret.tls()).await?;
        handshake::connect(&mut s, secret).await?;
        Ok::<_, std::io::Error>(s)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, made)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

async fn write_frame(s: &mut BusStream, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|n| (*n as usize) <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("frame too large"))?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(body);
    s.write_all(&buf).await?;
    // (TLS holds written records back until flushed.)
    s.flush().await
}

async fn read_frame(s: &mut BusStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(std::io::Error::other(format!(
            "frame of {len} bytes, over the limit of {MAX_FRAME}"
        )));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Ok(body)
}

impl Peer {
    /// Sends request `kind` and reads the answer, within `ttl`.
    async fn call<Req, Resp, E>(
        &mut self,
        kind: u8,
        req: &Req,
        ttl: Duration,
        entries_hint: u64,
    ) -> Result<Resp, RpcErr<E>>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let mut body = vec![kind];
        body.extend_from_slice(&self.target.to_le_bytes());
        rmp_serde::encode::write(&mut body, req)
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        if body.len() > MAX_FRAME {
            // Too many entries at once: openraft sends fewer next time (retrying the same
            // frame would fail forever).
            return Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(entries_hint.max(1)),
            ));
        }
        let exchange = async {
            if self.stream.is_none() {
                self.stream = Some(open(&self.addr, &self.secret).await?);
            }
            let Some(s) = self.stream.as_mut() else {
                return Err(std::io::Error::other("no connection"));
            };
            write_frame(s, &body).await?;
            read_frame(s).await
        };
        let answer = match tokio::time::timeout(ttl, exchange).await {
            Ok(Ok(a)) => a,
            Ok(Err(e)) => {
                self.stream = None;
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
            Err(_) => {
                // The answer may still come on this connection: never reuse it.
                self.stream = None;
                let e = std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out");
                return Err(RPCError::Unreachable(Unreachable::new(&e)));
            }
        };
        let result: Result<Resp, RaftError<NodeId, E>> =
            rmp_serde::from_slice(&answer).map_err(|e| {
                self.stream = None;
                RPCError::Network(NetworkError::new(&e))
            })?;
        result.map_err(|e| {
            if matches!(e, RaftError::Fatal(_)) {
                // That node's Raft stopped: a new one may listen there later.
                self.stream = None;
            }
            RPCError::RemoteError(RemoteError::new(self.target, e))
        })
    }
}

impl RaftNetwork<TypeConfig> for Peer {
    /// A peer that was down is tried again after `retry` (`Node::start` sets it): a restarted
    /// node must hear from the leader before its election timer runs out, or its election
    /// (which it cannot win, its log being behind) makes the leader step down.
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.retry))
    }

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcErr> {
        // (Half the entries, should the frame be too large.)
        let hint = rpc.entries.len() as u64 / 2;
        self.call(APPEND, &rpc, option.hard_ttl(), hint).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcErr<InstallSnapshotError>> {
        self.call(SNAPSHOT, &rpc, option.hard_ttl(), 1).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcErr> {
        self.call(VOTE, &rpc, option.hard_ttl(), 1).await
    }
}

/// Answers the Raft requests of peers on `listener` until the task is dropped or aborted;
/// its connections end with it (a peer must not keep talking to a stopped node's handle).
/// Until `raft` holds a handle, only status requests are answered. A connection whose
/// handshake fails (another secret, not a caskdb node) is closed and logged.
pub async fn serve(
    listener: TcpListener,
    raft: Slot,
    secret: Secret,
    on_message: Option<OnMessage>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((socket, peer)) = accepted else {
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let raft = raft.clone();
                let secret = secret.clone();
                let on_message = on_message.clone();
                connections.spawn(async move {
                    let shake = async {
                        let mut s = crate::tls::accept(socket, secret.tls()).await?;
                        handshake::accept(&mut s, &secret).await?;
                        Ok::<_, std::io::Error>(s)
                    };
                    let shaken = tokio::time::timeout(handshake::TIMEOUT, shake)
                        .await
                        .unwrap_or_else(|_| Err(std::io::Error::new(
                            std::io::ErrorKind::TimedOut,
                            "no handshake in time",
                        )));
                    let socket = match shaken {
                        Ok(s) => s,
                        Err(e) => {
                            refused(&peer, &e);
                            return;
                        }
                    };
                    if let Err(e) = serve_connection(socket, raft, on_message).await {
                        tracing::debug!("raft connection from {peer} ended: {e}");
                    }
                });
            }
            // Reap the finished ones, so the set stays the size of the live connections.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// Logs a refused connection: a warning at most every ten seconds (a peer with the wrong
/// secret retries every heartbeat), the others at debug level.
fn refused(peer: &std::net::SocketAddr, e: &std::io::Error) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let last = LAST.load(Ordering::Relaxed);
    if now >= last + 10
        && LAST
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    {
        tracing::warn!("raft bus: refused a connection from {peer}: {e}");
    } else {
        tracing::debug!("raft bus: refused a connection from {peer}: {e}");
    }
}

fn encode<T: Serialize>(v: &T) -> std::io::Result<Vec<u8>> {
    rmp_serde::to_vec(v).map_err(std::io::Error::other)
}

fn decode<T: DeserializeOwned>(b: &[u8]) -> std::io::Result<T> {
    rmp_serde::from_slice(b).map_err(std::io::Error::other)
}

async fn serve_connection(
    mut socket: BusStream,
    slot: Slot,
    on_message: Option<OnMessage>,
) -> std::io::Result<()> {
    loop {
        let frame = match read_frame(&mut socket).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some((&kind, rest)) = frame.split_first() else {
            return Err(std::io::Error::other("empty frame"));
        };
        let (Some(target), Some(body)) = (rest.get(..8), rest.get(8..)) else {
            return Err(std::io::Error::other("frame without a target"));
        };
        let target = u64::from_le_bytes(target.try_into().map_err(std::io::Error::other)?);
        if kind == MESSAGE {
            if let Some(handle) = &on_message {
                (handle.0)(bytes::Bytes::copy_from_slice(body));
            }
            write_frame(&mut socket, &encode(&())?).await?;
            continue;
        }
        let Some(raft) = slot.get() else {
            if kind != STATUS {
                return Err(std::io::Error::other("raft is not started yet"));
            }
            write_frame(&mut socket, &encode(&Status::default())?).await?;
            continue;
        };
        // Raft's requests name the member they are for: a node that came back as a new
        // incarnation must not answer for the old one (whose vote and log it lost).
        let me = raft.metrics().borrow().id;
        if matches!(kind, APPEND | VOTE | SNAPSHOT) && target != me {
            return Err(std::io::Error::other(format!(
                "a request for member {target} reached member {me}"
            )));
        }
        let answer = match kind {
            STATUS => encode(&status_of(raft))?,
            JOIN => {
                let req: Join = decode(body)?;
                let r = if raft.metrics().borrow().state.is_leader() {
                    crate::membership::add_voter(raft, req.id, &req.addr, &req.replaces).await
                } else {
                    Err("not the leader".to_string())
                };
                encode(&r)?
            }
            APPEND => encode(&raft.append_entries(decode(body)?).await)?,
            VOTE => encode(&raft.vote(decode(body)?).await)?,
            SNAPSHOT => encode(&raft.install_snapshot(decode(body)?).await)?,
            k => return Err(std::io::Error::other(format!("unknown request kind {k}"))),
        };
        write_frame(&mut socket, &answer).await?;
    }
}

/// This node's [`Status`].
fn status_of(raft: &Raft<TypeConfig>) -> Status {
    let m = raft.metrics().borrow().clone();
    let membership = m.membership_config.membership();
    Status {
        initialized: m.membership_config.log_id().is_some() || m.last_log_index.is_some(),
        leader: m.current_leader,
        last_log_index: m.last_log_index,
        nodes: membership
            .nodes()
            .map(|(id, n)| (*id, n.addr.clone()))
            .collect(),
        voters: membership.voter_ids().collect(),
    }
}

/// One request of `kind` to the node at `addr` on a connection of its own, within `ttl`.
async fn ask<Req: Serialize, Resp: DeserializeOwned>(
    addr: &str,
    secret: &Secret,
    kind: u8,
    req: &Req,
    ttl: Duration,
) -> std::io::Result<Resp> {
    let exchange = async {
        let mut s = open(addr, secret).await?;
        let mut body = vec![kind];
        body.extend_from_slice(&0u64.to_le_bytes());
        rmp_serde::encode::write(&mut body, req).map_err(std::io::Error::other)?;
        write_frame(&mut s, &body).await?;
        decode(&read_frame(&mut s).await?)
    };
    tokio::time::timeout(ttl, exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request timed out"))?
}

/// Asks the node at `addr` (its bus address) for its [`Status`].
///
/// # Errors
/// It cannot be reached, does not answer within a second, or does not hold `secret`
/// (`PermissionDenied`).
pub async fn status(addr: &str, secret: &Secret) -> std::io::Result<Status> {
    ask(addr, secret, STATUS, &(), Duration::from_secs(1)).await
}

/// Asks the leader at `addr` to take `join` in (it answers once the new member is a voter,
/// after catching up: this may take a while).
///
/// # Errors
/// It cannot be reached; or its refusal, as text.
pub async fn join(addr: &str, secret: &Secret, join: &Join) -> Result<(), String> {
    ask::<_, Result<(), String>>(addr, secret, JOIN, join, Duration::from_secs(600))
        .await
        .map_err(|e| e.to_string())?
}

/// Sends messages to peers: one task and connection per peer, messages in the order sent,
/// best effort — a peer that cannot be reached, or whose queue is full, loses them (counted).
pub struct Broadcast {
    peers: parking_lot::Mutex<
        std::collections::HashMap<String, tokio::sync::mpsc::Sender<bytes::Bytes>>,
    >,
    secret: Secret,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Broadcast {
    /// Sends over connections opened with `secret`.
    pub fn new(secret: Secret) -> Broadcast {
        Broadcast {
            peers: parking_lot::Mutex::default(),
            secret,
            dropped: std::sync::Arc::default(),
        }
    }

    /// Queues `msg` for each peer at the bus addresses `to`. Must run within a tokio runtime.
    pub fn send(&self, to: impl IntoIterator<Item = String>, msg: &bytes::Bytes) {
        use std::sync::atomic::Ordering;
        let mut peers = self.peers.lock();
        for addr in to {
            let tx = peers.entry(addr.clone()).or_insert_with(|| {
                let (tx, rx) = tokio::sync::mpsc::channel(MESSAGE_QUEUE);
                tokio::spawn(send_to_peer(
                    addr,
                    self.secret.clone(),
                    rx,
                    self.dropped.clone(),
                ));
                tx
            });
            if tx.try_send(msg.clone()).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Messages dropped so far (a peer down, or too slow).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// One peer's messages, sent in batches over one connection (made again after a failure).
async fn send_to_peer(
    addr: String,
    secret: Secret,
    mut rx: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let mut stream: Option<BusStream> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MESSAGE_BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let exchange = async {
            if stream.is_none() {
                stream = Some(open(&addr, &secret).await?);
            }
            let Some(s) = stream.as_mut() else {
                return Err(std::io::Error::other("no connection"));
            };
            let mut out = Vec::new();
            for m in &batch {
                let len = u32::try_from(1 + 8 + m.len())
                    .ok()
                    .filter(|n| (*n as usize) <= MAX_FRAME)
                    .ok_or_else(|| std::io::Error::other("message too large"))?;
                out.extend_from_slice(&len.to_le_bytes());
                out.push(MESSAGE);
                out.extend_from_slice(&0u64.to_le_bytes());
                out.extend_from_slice(m);
            }
            s.write_all(&out).await?;
            s.flush().await?;
            for _ in &batch {
                read_frame(s).await?;
            }
            Ok::<_, std::io::Error>(())
        };
        let sent = tokio::time::timeout(Duration::from_secs(5), exchange)
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("timed out")));
        if let Err(e) = sent {
            tracing::debug!("messages to {addr}: {e}");
            stream = None;
            dropped.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
    }
}
