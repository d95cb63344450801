//! One client connection: read, parse every complete request in the buffer and hand each to
//! `cmd::dispatch`, wait for the disk once if `appendfsync always` and something was written,
//! write all replies at once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use caskdb::SyncToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cmd::dispatch;
use crate::config::AppendFsync;
use crate::frame::Frame;
use crate::parse::{Limits, Parsed, parse};
use crate::session::ConnState;
use crate::state::Shared;

/// Replies are written out once this many bytes are waiting, even mid-pipeline.
const FLUSH_AT: usize = 1 << 20;
/// Free space kept in the read buffer before each read.
const READ_CHUNK: usize = 16 * 1024;

/// A client's socket, its session, and its read and write buffers.
pub(crate) struct Connection {
    socket: TcpStream,
    shared: Arc<Shared>,
    state: ConnState,
    rbuf: BytesMut,
    wbuf: BytesMut,
}

impl Connection {
    /// Registers the client; call before the next accept so that `maxclients` holds.
    pub fn new(
        socket: TcpStream,
        addr: SocketAddr,
        laddr: SocketAddr,
        shared: Arc<Shared>,
    ) -> Connection {
        let info = shared.clients.add(addr, laddr);
        let state = ConnState::new(info, !shared.config.has_password());
        Connection {
            socket,
            shared,
            state,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
        }
    }

    /// Serves the client until it leaves, breaks the protocol, idles past `timeout`, or the
    /// server shuts down.
    pub async fn run(mut self) {
        if let Err(e) = self.serve().await {
            tracing::debug!(client = self.state.id, "connection ended: {e}");
        }
        self.state.watch.clear(&self.shared.watches);
        self.shared.clients.remove(self.state.id);
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        let mut stop = self.shared.shutdown.subscribe();
        loop {
            let mut token: Option<SyncToken> = None;
            let more_buffered = self.process(&mut token);
            if let Some(t) = token
                && self.shared.config.appendfsync() == AppendFsync::Always
                && let Err(e) = self.shared.pump.wait(t).await
            {
                // The writes are in memory but maybe not on disk: say nothing rather than
                // acknowledge them. The store now refuses writes until restarted.
                tracing::error!(
                    client = self.state.id,
                    "fsync failed, dropping the connection: {e}"
                );
                return Ok(());
            }
            if !self.wbuf.is_empty() {
                // A client that never reads must not hold up a shutdown; one that reads still
                // gets the replies already made (the write is polled first).
                tokio::select! {
                    biased;
                    r = self.socket.write_all(&self.wbuf) => r?,
                    _ = stop.wait() => return Ok(()),
                }
                self.wbuf.clear();
            }
            if self.state.close_after_reply {
                let _ = self.socket.shutdown().await;
                return Ok(());
            }
            if more_buffered {
                continue;
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK {
                self.rbuf.reserve(READ_CHUNK);
            }
            let timeout = self.shared.config.timeout();
            let read = self.socket.read_buf(&mut self.rbuf);
            let n = tokio::select! {
                biased;
                _ = stop.wait() => return Ok(()),
                r = async {
                    if timeout == 0 {
                        read.await
                    } else {
                        match tokio::time::timeout(Duration::from_secs(timeout), read).await {
                            Ok(r) => r,
                            Err(_) => Ok(0), // idle too long: close, as Redis does
                        }
                    }
                } => r?,
            };
            if n == 0 {
                return Ok(());
            }
        }
    }

    /// Runs every complete request in the read buffer, encoding replies into the write buffer.
    /// Returns whether complete requests may remain (replies were flushed early).
    fn process(&mut self, token: &mut Option<SyncToken>) -> bool {
        loop {
            let limits = Limits {
                max_bulk: i64::try_from(self.shared.config.proto_max_bulk_len())
                    .unwrap_or(i64::MAX),
                authenticated: self.state.authenticated,
            };
            match parse(&mut self.rbuf, limits) {
                Ok(Parsed::Request(args)) => {
                    if args.is_empty() {
                        continue;
                    }
                    let reply = dispatch::request(&self.shared, &mut self.state, args, token);
                    if !std::mem::take(&mut self.state.suppress_reply) {
                        reply.encode(&mut self.wbuf, self.state.resp3);
                    }
                    if self.state.close_after_reply {
                        return false;
                    }
                    if self.wbuf.len() >= FLUSH_AT {
                        return true;
                    }
                }
                Ok(Parsed::Incomplete(need)) => {
                    // Grow towards a large request as its bytes come, never all at once from
                    // the declared length: at most doubling per step.
                    let missing = need.saturating_sub(self.rbuf.len());
                    let spare = self.rbuf.capacity() - self.rbuf.len();
                    if missing > spare {
                        self.rbuf
                            .reserve(missing.min(self.rbuf.len().max(READ_CHUNK)));
                    }
                    return false;
                }
                Err(e) => {
                    tracing::debug!(client = self.state.id, "protocol error: {}", e.0);
                    Frame::err(format!("Protocol error: {}", e.0))
                        .encode(&mut self.wbuf, self.state.resp3);
                    self.state.close_after_reply = true;
                    return false;
                }
            }
        }
    }
}
