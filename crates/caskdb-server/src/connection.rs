//! One client connection: read, parse every complete request in the buffer and hand each to
//! `cmd::dispatch`, wait for the disk once if `appendfsync always` and something was written,
//! write all replies at once. In a replicated group, `route.rs` takes the requests that are
//! not this node's to answer at once (writes, reads, forwarding).

mod outbox;
mod route;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use caskdb::SyncToken;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use self::outbox::{Outbox, StreamOut};
use crate::blocking::Served;
use crate::cmd::dispatch;
use crate::config::AppendFsync;
use crate::frame::Frame;
use crate::parse::{Limits, Parsed, Parser};
use crate::pubsub::{Message, Subscriber};
use crate::session::{ConnState, Parked};
use crate::state::Shared;
use crate::tls::Socket;

/// Most pipelined writes run as one group (`Connection::process`).
const GROUP_MAX: usize = 128;

/// Replies are written out once this many bytes are waiting, even mid-pipeline.
const FLUSH_AT: usize = 1 << 20;
/// A blocked client's unprocessed input beyond which the server stops reading from it.
const MAX_BUFFERED_WHILE_BLOCKED: usize = 64 << 20;
/// Free space kept in the read buffer before each read.
const READ_CHUNK: usize = 16 * 1024;
/// How long a script's request may spin (yielding its thread) for the scripts' gate before
/// it waits for it asynchronously: most scripts take a few microseconds, and handing the gate
/// to an asynchronous waiter costs a cross-thread wake-up, more than such a script. Once one
/// request waits asynchronously, the others queue behind it without spinning until the queue
/// drains, each hand-off a wake-up: under 50 clients that state lasts. A bound of 50 µs
/// entered it often enough to cost EVAL a seventh of its rate (0.75× Redis against 0.87× with
/// 2 ms, `-c 50`, medians of 7 alternating rounds); only a script that runs long now sends
/// requests to the queue, and it makes those that arrive in its first 2 ms spin.
const GATE_SPIN: Duration = Duration::from_millis(2);
/// Pipelined scripts a connection runs in a row without giving the gate back.
const GATE_BATCH: u32 = 32;

/// A client's socket, its session, and its read and write buffers.
pub(crate) struct Connection {
    socket: Socket,
    shared: Arc<Shared>,
    state: ConnState,
    rbuf: BytesMut,
    /// Where it got to in a request still arriving.
    parser: Parser,
    wbuf: BytesMut,
    /// A request CLIENT PAUSE holds back (the requests after it wait in `rbuf`).
    postponed: Option<Vec<Bytes>>,
    /// In a replicated group: a request `route.rs` runs (the requests after it wait).
    routed: Option<Vec<Bytes>>,
    /// In a replicated group: reads may be served here until more input is read (a read
    /// barrier confirmed this node's leadership after the buffered requests arrived).
    read_ok: bool,
    /// A follower's link to the leader for this client (`cluster/forward.rs`).
    link: Option<crate::cluster::forward::Link>,
    /// The rest of a reply too large for `wbuf`, sent before anything else.
    outbox: Outbox,
    /// Since when the replies waiting passed `client-output-buffer-limit normal`'s soft limit.
    over_soft_since: Option<std::time::Instant>,
    /// The replies waiting broke `client-output-buffer-limit normal`: close.
    over_limit: bool,
}

impl Connection {
    /// Registers the client; call before the next accept so that `maxclients` holds.
    pub fn new(
        socket: Socket,
        addr: SocketAddr,
        laddr: SocketAddr,
        shared: Arc<Shared>,
    ) -> Connection {
        let info = shared.clients.add(addr, laddr);
        // As Redis: a client starts as `default`, authenticated if that user needs no password.
        let user = shared.acl.default_user();
        let mut state = ConnState::new(info, user.enabled() && user.nopass(), user);
        state.acl_generation = shared.acl.generation();
        Connection {
            socket,
            shared,
            state,
            rbuf: BytesMut::with_capacity(READ_CHUNK),
            parser: Parser::default(),
            wbuf: BytesMut::with_capacity(READ_CHUNK),
            postponed: None,
            routed: None,
            read_ok: false,
            link: None,
            outbox: Outbox::default(),
            over_soft_since: None,
            over_limit: false,
        }
    }

    /// Serves the client until it leaves, breaks the protocol, idles past `timeout`, or the
    /// server shuts down.
    pub async fn run(mut self) {
        if let Err(e) = self.serve().await {
            tracing::debug!(client = self.state.id, "connection ended: {e}");
        }
        self.state.watch.clear(&self.shared.watches);
        // Parked but never waited for (the connection failed first): not to be served.
        if let Some(p) = self.state.parked.take() {
            self.shared.blocking.remove(&p.waiter);
        }
        if let Some(subs) = self.state.subs.take() {
            self.shared.pubsub.forget(&subs.names, subs.handle.id);
        }
        self.shared.tracking.disable(self.state.id);
        self.shared.clients.remove(self.state.id);
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        let mut stop = self.shared.shutdown.subscribe();
        let info = self.state.info.clone();
        // A shutdown or CLIENT KILL, as one future made once for the reads and writes below:
        // made anew for each wait, its two waiter registrations (and their removal) were a
        // cost every request paid.
        let ended = {
            let mut stop = self.shared.shutdown.subscribe();
            let info = info.clone();
            async move {
                tokio::select! {
                    _ = stop.wait() => {}
                    _ = info.killed() => {}
                }
            }
        };
        tokio::pin!(ended);
        loop {
            let mut token: Option<SyncToken> = None;
            let more_buffered = if let Some(args) = self.routed.take() {
                if !self.run_routed(args, &mut stop).await {
                    return Ok(());
                }
                true
            } else {
                match self.postponed.take() {
                    Some(args) => {
                        if !self.wait_unpaused(&args, &mut stop).await {
                            return Ok(());
                        }
                        if self.shared.cluster.is_some() && self.routes(&args) {
                            self.routed = Some(args);
                            continue;
                        }
                        let gate = if dispatch::is_script(&args) {
                            match self.wait_gate(&mut stop).await {
                                Gate::Got(g) => Some(g),
                                // Past busy-reply-threshold: dispatch answers BUSY.
                                Gate::Busy => None,
                                Gate::Closed => return Ok(()),
                            }
                        } else {
                            None
                        };
                        let next = self.handle(args, &mut token);
                        drop(gate);
                        match next {
                            Next::Request => self.process(&mut token),
                            Next::Flush => true,
                            Next::Wait => false,
                        }
                    }
                    None => self.process(&mut token),
                }
            };
            if info.is_killed() {
                return Ok(());
            }
            if self.over_limit {
                return self.overflowed("normal");
            }
            if let Some(t) = token
                && self.shared.config.appendfsync() == AppendFsync::Always
                && let Err(e) = self.shared.pump.wait(t).await
            {
                // The writes are in memory but maybe not on disk: say nothing rather than
                // acknowledge them. The store now refuses writes until restarted.
                self.shared.disk.sync_failed(&e);
                tracing::error!(
                    client = self.state.id,
                    "fsync failed, dropping the connection: {e}"
                );
                return Ok(());
            }
            if !self.outbox.is_empty() {
                // A streamed reply (what is in `wbuf` goes first, in the same writes).
                if !self.drain_outbox(&mut stop).await? {
                    return Ok(());
                }
            } else if !self.wbuf.is_empty() {
                // A client that never reads must not hold up a shutdown, nor stay once over its
                // output limit; one that reads still gets the replies already made (the write
                // is polled first).
                let sub = self.state.subs.as_ref().map(|s| s.handle.clone());
                tokio::select! {
                    biased;
                    // (Flushed too: TLS keeps encrypted records back until then.)
                    r = async {
                        self.socket.write_all(&self.wbuf).await?;
                        self.socket.flush().await
                    } => r?,
                    _ = &mut ended => return Ok(()),
                    _ = closed(sub.as_deref()) => return self.overflowed("pubsub"),
                }
                self.shared.stats.net_output.add(self.wbuf.len() as u64);
                self.shared.stats.writes.add(1);
                self.wbuf.clear();
            }
            if self.state.close_after_reply {
                let _ = self.socket.shutdown().await;
                return Ok(());
            }
            if self.postponed.is_some() || self.routed.is_some() {
                continue;
            }
            if let Some(parked) = self.state.parked.take() {
                if !self.wait_parked(parked, &mut stop).await? {
                    return Ok(());
                }
                continue;
            }
            if more_buffered {
                continue;
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK {
                self.rbuf.reserve(READ_CHUNK);
            }
            // Subscribers wait for messages, not requests: no idle timeout for them (as Redis).
            let timeout = if self.state.subscribed() {
                0
            } else {
                self.shared.config.timeout()
            };
            let sub = self.state.subs.as_ref().map(|s| s.handle.clone());
            let rx = self.state.subs.as_mut().map(|s| &mut s.rx);
            let read = self.socket.read_buf(&mut self.rbuf);
            let n = tokio::select! {
                biased;
                _ = &mut ended => return Ok(()),
                _ = closed(sub.as_deref()) => return self.overflowed("pubsub"),
                // Requests first: a stream of messages must not starve them (nor hide a
                // hang-up).
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
                Some(m) = recv(rx) => {
                    self.queue_message(&m);
                    self.drain_messages(FLUSH_AT);
                    continue;
                }
            };
            if n == 0 {
                return Ok(());
            }
            self.read_ok = false;
            self.shared.stats.net_input.add(n as u64);
            self.shared.stats.reads.add(1);
            if self.over_query_limit() {
                return Ok(());
            }
        }
    }

    /// Whether the unprocessed input passed `client-query-buffer-limit`: then the client is to
    /// be closed (logged), as Redis does.
    fn over_query_limit(&self) -> bool {
        let limit = self.shared.config.query_buffer_limit();
        if (self.rbuf.len() as u64) <= limit {
            return false;
        }
        tracing::warn!(
            client = self.state.id,
            addr = %self.state.info.addr,
            "closing client that reached max query buffer length ({} bytes, client-query-buffer-limit {limit})",
            self.rbuf.len()
        );
        true
    }

    /// Waits for a blocked command's reply (served by a writer, its timeout, CLIENT UNBLOCK),
    /// and encodes it. Meanwhile reads only to notice the client leaving (its next requests
    /// wait in the buffer). Returns `false` if the connection must close.
    async fn wait_parked(
        &mut self,
        parked: Parked,
        stop: &mut crate::shutdown::Listener,
    ) -> std::io::Result<bool> {
        let Parked {
            waiter,
            mut rx,
            mut deadline,
        } = parked;
        let info = self.state.info.clone();
        let leave = |shared: &Shared| {
            shared.blocking.remove(&waiter);
        };
        let served = loop {
            let until = deadline;
            let time_up = async move {
                match until {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            // Past this much unprocessed input, stop reading (and noticing a hang-up).
            let can_read = self.rbuf.len() < MAX_BUFFERED_WHILE_BLOCKED;
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK {
                self.rbuf.reserve(READ_CHUNK);
            }
            tokio::select! {
                biased;
                r = &mut rx => match r {
                    Ok(served) => break served,
                    // Never: the waiter holds the sender. Answer as a timeout would.
                    Err(_) => break Served { frame: waiter.timeout_reply.clone(), token: None },
                },
                _ = stop.wait() => {
                    leave(&self.shared);
                    return Ok(false);
                }
                _ = info.killed() => {
                    leave(&self.shared);
                    return Ok(false);
                }
                _ = time_up => {
                    if self.shared.blocking.remove(&waiter) {
                        break Served { frame: waiter.timeout_reply.clone(), token: None };
                    }
                    // A writer took it at this very moment: its reply is on the way.
                    deadline = None;
                }
                r = self.socket.read_buf(&mut self.rbuf), if can_read => {
                    let n = match r {
                        Ok(n) => n,
                        Err(e) => {
                            leave(&self.shared);
                            return Err(e);
                        }
                    };
                    if n == 0 {
                        leave(&self.shared);
                        return Ok(false);
                    }
                    self.shared.stats.net_input.add(n as u64);
                    self.shared.stats.reads.add(1);
                    if self.over_query_limit() {
                        leave(&self.shared);
                        return Ok(false);
                    }
                }
            }
        };
        if let Some(t) = served.token
            && self.shared.config.appendfsync() == AppendFsync::Always
            && let Err(e) = self.shared.pump.wait(t).await
        {
            self.shared.disk.sync_failed(&e);
            tracing::error!(
                client = self.state.id,
                "fsync failed, dropping the connection: {e}"
            );
            return Ok(false);
        }
        if self.state.reply_wanted() {
            served.frame.encode(&mut self.wbuf, self.state.resp3);
        }
        Ok(true)
    }

    /// Encodes one pub/sub message into the write buffer. From here its bytes count against
    /// the write buffer, not the subscriber's queue.
    fn queue_message(&mut self, m: &Message) {
        let resp3 = self.state.resp3;
        m.frame().encode(&mut self.out(), resp3);
        if let Some(subs) = &self.state.subs {
            subs.handle.written(m.cost());
        }
    }

    /// Moves the messages waiting for this connection into the write buffer, while it holds
    /// less than `limit` bytes.
    fn drain_messages(&mut self, limit: usize) {
        while self.wbuf.len() < limit {
            let Some(subs) = self.state.subs.as_mut() else {
                return;
            };
            let Ok(m) = subs.rx.try_recv() else {
                return;
            };
            self.queue_message(&m);
        }
    }

    /// Moves the messages waiting for this connection into the write buffer, but for
    /// invalidations (CLIENT TRACKING), returned to be written after the reply.
    fn drain_before_reply(&mut self) -> Vec<Message> {
        let mut later = Vec::new();
        loop {
            let Some(subs) = self.state.subs.as_mut() else {
                return later;
            };
            let Ok(m) = subs.rx.try_recv() else {
                return later;
            };
            if matches!(m, Message::Invalidate { .. } | Message::RedirectBroken(_)) {
                later.push(m);
            } else {
                self.queue_message(&m);
            }
        }
    }

    /// A client over its output limit (of `class`): closed, as Redis does, and counted.
    fn overflowed(&self, class: &str) -> std::io::Result<()> {
        self.shared.stats.output_limit_closes.add(1);
        tracing::warn!(
            client = self.state.id,
            addr = %self.state.info.addr,
            "closing a client over its output buffer limit (client-output-buffer-limit {class})"
        );
        Ok(())
    }

    /// Where replies are encoded: the write buffer, or behind a reply still being streamed.
    fn out(&mut self) -> StreamOut<'_> {
        StreamOut {
            wbuf: &mut self.wbuf,
            outbox: &mut self.outbox,
        }
    }

    /// Whether the replies waiting break `client-output-buffer-limit normal` (pub/sub clients
    /// have theirs, counted on their message queue). Counts a streamed reply's bytes not yet
    /// read, as Redis counts the whole reply it holds; but not the first 16 KiB, which Redis
    /// keeps in a client's fixed buffer, outside what it counts.
    fn over_normal_limit(&mut self, buffered: u64) -> bool {
        const UNCOUNTED: u64 = 16 * 1024;
        let limit = match self.shared.config.normal_limit() {
            Some(l) if !self.state.subscribed() => l,
            _ => {
                self.over_soft_since = None;
                return false;
            }
        };
        let pending = (buffered + self.outbox.unsent()).saturating_sub(UNCOUNTED);
        limit.broken(pending, &mut self.over_soft_since)
    }

    /// Sends the rest of a streamed reply, reading its values as the client takes them.
    /// Returns `false` if the connection must close: shut down, killed, over its output
    /// limit, a value that can no longer be read, or past `reply-hold-seconds` while holding
    /// a file a merge removed.
    async fn drain_outbox(
        &mut self,
        stop: &mut crate::shutdown::Listener,
    ) -> std::io::Result<bool> {
        let info = self.state.info.clone();
        let hold = self.shared.config.reply_hold();
        let mut next_check = self.outbox.since().and_then(|s| s.checked_add(hold));
        while !self.outbox.is_empty() {
            if let Err(e) = self.outbox.fill(&mut self.wbuf) {
                tracing::error!(
                    client = self.state.id,
                    "cannot finish a reply, closing the connection: {e}"
                );
                return Ok(false);
            }
            if self.over_normal_limit(self.wbuf.len() as u64) {
                self.overflowed("normal")?;
                return Ok(false);
            }
            // Write it all, then flush (TLS holds records back until flushed): one step at a
            // time (a write not completed writes nothing), so that the checks below can
            // interrupt a client that does not read.
            let mut flushed = false;
            while !flushed {
                let check = next_check;
                let wake = async move {
                    match check {
                        Some(at) => tokio::time::sleep_until(at.into()).await,
                        None => std::future::pending().await,
                    }
                };
                let step = async {
                    if self.wbuf.is_empty() {
                        self.socket.flush().await.map(|()| None)
                    } else {
                        self.socket.write(&self.wbuf).await.map(Some)
                    }
                };
                tokio::select! {
                    biased;
                    r = step => match r? {
                        None => flushed = true,
                        Some(0) => return Err(std::io::ErrorKind::WriteZero.into()),
                        Some(n) => {
                            self.shared.stats.net_output.add(n as u64);
                            bytes::Buf::advance(&mut self.wbuf, n);
                        }
                    },
                    _ = stop.wait() => return Ok(false),
                    _ = info.killed() => return Ok(false),
                    _ = wake => {
                        if self.outbox.holds_retired() {
                            self.shared.stats.output_limit_closes.add(1);
                            tracing::warn!(
                                client = self.state.id,
                                addr = %self.state.info.addr,
                                "closing a client whose reply held a merged-away data file for longer than reply-hold-seconds ({}s)",
                                hold.as_secs()
                            );
                            return Ok(false);
                        }
                        next_check = Some(std::time::Instant::now() + std::time::Duration::from_secs(1));
                    }
                }
            }
            self.shared.stats.writes.add(1);
            if next_check.is_none() {
                next_check = self.outbox.since().and_then(|s| s.checked_add(hold));
            }
        }
        self.wbuf.clear();
        Ok(true)
    }

    /// Runs every complete request in the read buffer, encoding replies into the write buffer.
    /// Returns whether complete requests may remain (replies were flushed early).
    ///
    /// Consecutive pipelined writes (`dispatch::groupable`) run as one group, in one engine
    /// transaction: one lock and one log record for all of them, their replies after it.
    fn process(&mut self, token: &mut Option<SyncToken>) -> bool {
        let mut group = Vec::new();
        let more = self.process_requests(token, &mut group);
        if group.is_empty() || self.state.info.is_killed() {
            // (A client killed meanwhile: as if it had been killed before they came.)
            return more;
        }
        // The loop stopped after the group's requests (waiting for more bytes, a paused or
        // routed request, a killed client): the group runs now, before anything after it.
        match self.run_group(group, token) {
            Next::Flush => true,
            Next::Request | Next::Wait => more,
        }
    }

    /// Runs a group of pipelined writes and encodes their replies.
    fn run_group(&mut self, group: Vec<Vec<Bytes>>, token: &mut Option<SyncToken>) -> Next {
        self.drain_messages(usize::MAX);
        let replies = dispatch::request_group(&self.shared, &mut self.state, group, token);
        let mut next = Next::Request;
        for reply in replies {
            match self.finish(reply) {
                Next::Wait => next = Next::Wait,
                Next::Flush if !matches!(next, Next::Wait) => next = Next::Flush,
                _ => {}
            }
        }
        next
    }

    /// [`Connection::process`]'s loop; writes that may run as a group are gathered in `group`
    /// (run here before any other request, or once it is full).
    fn process_requests(
        &mut self,
        token: &mut Option<SyncToken>,
        group: &mut Vec<Vec<Bytes>>,
    ) -> bool {
        // The scripts' gate, kept over a run of pipelined scripts (up to GATE_BATCH): passing
        // it to another thread costs more than a short script.
        let mut gate: Option<tokio::sync::OwnedMutexGuard<()>> = None;
        let mut batch = 0;
        let mut group_bytes = 0;
        loop {
            if self.state.info.is_killed() {
                return false;
            }
            let limits = Limits {
                max_bulk: i64::try_from(self.shared.config.proto_max_bulk_len())
                    .unwrap_or(i64::MAX),
                authenticated: self.state.authenticated,
            };
            match self.parser.parse(&mut self.rbuf, limits) {
                Ok(Parsed::Request(args)) => {
                    if args.is_empty() {
                        continue;
                    }
                    if dispatch::paused_until(&self.shared, &self.state, &args).is_some() {
                        // CLIENT PAUSE: this request and those after it wait (`serve`).
                        self.postponed = Some(args);
                        return false;
                    }
                    // In a group, what is not this node's to answer at once goes to `route.rs`.
                    if self.shared.cluster.is_some() && self.routes(&args) {
                        self.routed = Some(args);
                        return false;
                    }
                    // Scripts take turns at the gate; one that must wait waits in `serve`.
                    if dispatch::is_script(&args) {
                        if batch >= GATE_BATCH {
                            gate = None;
                            batch = 0;
                        }
                        if gate.is_none() {
                            match gate_soon(&self.shared.scripts) {
                                Some(g) => gate = Some(g),
                                None => {
                                    self.postponed = Some(args);
                                    return false;
                                }
                            }
                        }
                        batch += 1;
                    } else {
                        gate = None;
                        batch = 0;
                    }
                    let bytes = args.iter().map(Bytes::len).sum::<usize>();
                    if bytes <= dispatch::GROUPABLE_BYTES
                        && dispatch::groupable(&self.shared, &self.state, &args)
                    {
                        group_bytes += bytes;
                        group.push(args);
                        if group.len() < GROUP_MAX && group_bytes < dispatch::GROUP_BYTES {
                            continue;
                        }
                        group_bytes = 0;
                        match self.run_group(std::mem::take(group), token) {
                            Next::Request => continue,
                            Next::Flush => return true,
                            Next::Wait => return false,
                        }
                    }
                    group_bytes = 0;
                    if !group.is_empty()
                        && let Next::Wait = self.run_group(std::mem::take(group), token)
                    {
                        // (A reply of the group stopped the connection: this request waits.)
                        self.postponed = Some(args);
                        return false;
                    }
                    let next = self.handle(args, token);
                    match next {
                        Next::Request => {}
                        Next::Flush => return true,
                        Next::Wait => return false,
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
                    // The writes before the bad request get their replies first.
                    if !group.is_empty() {
                        self.run_group(std::mem::take(group), token);
                    }
                    tracing::debug!(client = self.state.id, "protocol error: {}", e.0);
                    Frame::err(format!("Protocol error: {}", e.0))
                        .encode(&mut self.wbuf, self.state.resp3);
                    self.state.close_after_reply = true;
                    return false;
                }
            }
        }
    }

    /// Runs one request and encodes its reply (unless CLIENT REPLY turned replies off).
    fn handle(&mut self, args: Vec<Bytes>, token: &mut Option<SyncToken>) -> Next {
        // What was queued before this request goes first, as Redis would have sent it.
        self.drain_messages(usize::MAX);
        let mut reply = dispatch::request(&self.shared, &mut self.state, args, token);
        if let Some(p) = self.state.proposal.take() {
            // Writes staged outside `route.rs` (a request routed as local that wrote): never
            // acknowledged unless proposed.
            let text = "CLUSTERDOWN the write was not routed to the group, not executed";
            tracing::error!(client = self.state.id, "{text}");
            dispatch::proposal_done(&self.shared, &mut self.state, p.served, Some(text));
            reply = Frame::Error(text.into());
        }
        if self.state.parked.is_some() {
            // Blocked: its reply comes later; the requests after it wait.
            return Next::Wait;
        }
        self.finish(reply)
    }

    /// Encodes a request's reply, with the messages due before and after it.
    fn finish(&mut self, reply: Frame) -> Next {
        // Messages published before the reply (a notification the command itself caused,
        // those before an UNSUBSCRIBE) come before it, as in Redis: all of them (the queue is
        // bounded by the subscriber's limit). Invalidations come after it: one sent before
        // the reply of a read would let the client cache what the read saw, stale for good.
        let invalidations = self.drain_before_reply();
        let before = self.wbuf.len();
        if self.state.reply_wanted() {
            let resp3 = self.state.resp3;
            reply.encode(&mut self.out(), resp3);
        }
        for m in &invalidations {
            self.queue_message(m);
        }
        // This reply's bytes: the earlier replies batched in `wbuf` are on their way (a
        // client that does not take them holds up its own requests, not memory).
        if self.over_normal_limit((self.wbuf.len() - before) as u64) {
            self.over_limit = true;
            return Next::Wait;
        }
        if self.state.close_after_reply {
            return Next::Wait;
        }
        if self.wbuf.len() >= FLUSH_AT || !self.outbox.is_empty() {
            return Next::Flush;
        }
        Next::Request
    }

    /// Waits for the scripts' gate (FIFO), or until the running script passes
    /// `busy-reply-threshold`.
    async fn wait_gate(&mut self, stop: &mut crate::shutdown::Listener) -> Gate {
        let info = self.state.info.clone();
        let threshold = self.shared.config.busy_threshold();
        let since = self
            .shared
            .scripts
            .running_for_other(self.state.id)
            .map_or_else(std::time::Instant::now, |(s, _)| s);
        let gate = self.shared.scripts.gate.clone();
        let _waiting = GateWaiter::new(&self.shared.scripts.gate_waiters);
        tokio::select! {
            g = gate.lock_owned() => Gate::Got(g),
            _ = tokio::time::sleep_until((since + threshold).into()) => Gate::Busy,
            _ = stop.wait() => Gate::Closed,
            _ = info.killed() => Gate::Closed,
        }
    }

    /// Waits while CLIENT PAUSE, or another client's script (until `busy-reply-threshold`),
    /// holds the postponed request (shown as blocked meanwhile).
    /// Returns `false` if the connection must close.
    async fn wait_unpaused(
        &mut self,
        args: &[Bytes],
        stop: &mut crate::shutdown::Listener,
    ) -> bool {
        let info = self.state.info.clone();
        info.blocked.store(true, Ordering::Relaxed);
        let open = loop {
            let resumed = self.shared.pause.resumed();
            tokio::pin!(resumed);
            resumed.as_mut().enable();
            let script_ended = self.shared.scripts.ended();
            tokio::pin!(script_ended);
            script_ended.as_mut().enable();
            let Some(until) = dispatch::paused_until(&self.shared, &self.state, args) else {
                break true;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(until.into()) => {}
                _ = resumed => {}
                _ = script_ended => {}
                _ = stop.wait() => break false,
                _ = info.killed() => break false,
            }
        };
        info.blocked.store(false, Ordering::Relaxed);
        open
    }
}

/// The scripts' gate, if it is free or comes free within [`GATE_SPIN`]. No spinning while
/// connections wait for it asynchronously: it goes to them (whose task may need this very
/// thread to run).
fn gate_soon(scripts: &crate::script::Scripts) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    let until = std::time::Instant::now() + GATE_SPIN;
    let mut first = true;
    loop {
        if let Ok(g) = scripts.gate.clone().try_lock_owned() {
            return Some(g);
        }
        // A script that already ran past the bound will likely run on (or past
        // busy-reply-threshold, when the answer is BUSY): no spinning for it.
        if std::mem::take(&mut first) && scripts.running_longer_than(GATE_SPIN) {
            return None;
        }
        if scripts.gate_waiters.load(Ordering::Acquire) > 0 || std::time::Instant::now() >= until {
            return None;
        }
        // The holder is most likely running on the other core: spin a little; it may also
        // share this one: then let it run.
        for _ in 0..64 {
            std::hint::spin_loop();
        }
        std::thread::yield_now();
    }
}

/// Counts a connection among the gate's asynchronous waiters while it lives.
struct GateWaiter<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> GateWaiter<'a> {
    fn new(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        GateWaiter(count)
    }
}

impl Drop for GateWaiter<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// How waiting for the scripts' gate ended.
enum Gate {
    Got(tokio::sync::OwnedMutexGuard<()>),
    /// The running script passed `busy-reply-threshold`.
    Busy,
    /// The connection is to close (shutdown, CLIENT KILL).
    Closed,
}

/// What `process` does after a request.
enum Next {
    /// Parse the next request.
    Request,
    /// Write the replies out, then go on with the buffered requests.
    Flush,
    /// Stop processing: blocked, paused or closing.
    Wait,
}

/// Resolves once `sub` went over its output limit; never without a subscriber.
async fn closed(sub: Option<&Subscriber>) {
    match sub {
        Some(s) if s.is_closed() => {}
        Some(s) => s.close_signal.notified().await,
        None => std::future::pending().await,
    }
}

/// The next message for the connection; never without subscriptions.
async fn recv(rx: Option<&mut tokio::sync::mpsc::UnboundedReceiver<Message>>) -> Option<Message> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
