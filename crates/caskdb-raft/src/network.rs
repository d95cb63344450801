//! Raft's traffic between nodes: one TCP connection per peer, each request a frame and its
//! answer a frame. A frame is a `u32` length (little-endian) then a MessagePack body: a request
//! is a kind byte (1 append-entries, 2 vote, 3 install-snapshot) then the request; an answer is
//! the handler's `Result`. The wire format is openraft's types through serde (it is not kept
//! on disk). A connection that fails or times out is dropped and made again at the next
//! request; frames over [`MAX_FRAME`] are refused before anything is allocated.

use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError,
    Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Raft};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::{NodeId, TypeConfig};

/// The largest frame either side accepts (a snapshot chunk is far smaller).
pub const MAX_FRAME: usize = 64 << 20;
/// How long making a connection may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

const APPEND: u8 = 1;
const VOTE: u8 = 2;
const SNAPSHOT: u8 = 3;

type RpcErr<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

/// Makes the clients Raft uses to reach its peers.
#[derive(Clone, Default)]
pub struct Network;

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            stream: None,
        }
    }
}

/// One peer: its address and, once made, the connection to it.
pub struct Peer {
    target: NodeId,
    addr: String,
    stream: Option<TcpStream>,
}

async fn write_frame(s: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(body.len())
        .ok()
        .filter(|n| (*n as usize) <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::other("frame too large"))?;
    let mut buf = Vec::with_capacity(4 + body.len());
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(body);
    s.write_all(&buf).await
}

async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
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
                let s = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.addr))
                    .await
                    .map_err(|_| {
                        std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out")
                    })??;
                s.set_nodelay(true)?;
                self.stream = Some(s);
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
pub async fn serve(listener: TcpListener, raft: Raft<TypeConfig>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((socket, peer)) = accepted else {
                    continue;
                };
                let _ = socket.set_nodelay(true);
                let raft = raft.clone();
                connections.spawn(async move {
                    if let Err(e) = serve_connection(socket, raft).await {
                        tracing::debug!("raft connection from {peer} ended: {e}");
                    }
                });
            }
            // Reap the finished ones, so the set stays the size of the live connections.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn encode<T: Serialize>(v: &T) -> std::io::Result<Vec<u8>> {
    rmp_serde::to_vec(v).map_err(std::io::Error::other)
}

fn decode<T: DeserializeOwned>(b: &[u8]) -> std::io::Result<T> {
    rmp_serde::from_slice(b).map_err(std::io::Error::other)
}

async fn serve_connection(mut socket: TcpStream, raft: Raft<TypeConfig>) -> std::io::Result<()> {
    loop {
        let frame = match read_frame(&mut socket).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        };
        let Some((&kind, body)) = frame.split_first() else {
            return Err(std::io::Error::other("empty frame"));
        };
        let answer = match kind {
            APPEND => encode(&raft.append_entries(decode(body)?).await)?,
            VOTE => encode(&raft.vote(decode(body)?).await)?,
            SNAPSHOT => encode(&raft.install_snapshot(decode(body)?).await)?,
            k => return Err(std::io::Error::other(format!("unknown request kind {k}"))),
        };
        write_frame(&mut socket, &answer).await?;
    }
}
