//! A request of a replicated group's client that this node does not answer at once:
//! - on the leader, a write: it takes the write gate, runs staged over the writes in flight
//!   (`cmd/dispatch.rs`), is proposed, lets the gate go, and is answered once applied; a
//!   read: it is answered after a read barrier (which then covers every request already
//!   buffered), and once the writes staged before it are resolved;
//! - on a follower, anything but the connection's own commands is forwarded to the leader over
//!   this client's link, and the reply relayed as it came; with READONLY, reads are answered
//!   from this node's state;
//! - with no leader known, it waits up to `cluster-timeout` for one, then fails with
//!   `-CLUSTERDOWN … not executed`.

use std::time::{Duration, Instant};

use bytes::Bytes;

use super::Connection;
use crate::cluster::forward::{LINK_HELLO, Link, NOT_LEADER};
use crate::cluster::{Cluster, Refused, Role, sentinel};
use crate::cmd::dispatch;
use crate::frame::Frame;

/// Where a request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Answered here at once.
    Local,
    /// The leader's read: after a read barrier.
    Read,
    /// The leader's write: through the gate and Raft.
    Write,
    /// To the leader, over the link.
    Forward,
    /// A follower's link reached a node that does not lead.
    Refuse,
}

/// The membership command (`cluster::raft_node`), run on the leader.
const RAFT_NODE: &str = "RAFT.NODE";

/// Pause between attempts while the leader is changing.
const RETRY: Duration = Duration::from_millis(20);

impl Connection {
    /// Whether `args` is for [`Connection::run_routed`] rather than answered at once.
    pub(super) fn routes(&self, args: &[Bytes]) -> bool {
        let Some(cluster) = &self.shared.cluster else {
            return false;
        };
        if args[0].eq_ignore_ascii_case(LINK_HELLO.as_bytes())
            || args[0].eq_ignore_ascii_case(b"sentinel")
            || args[0].eq_ignore_ascii_case(RAFT_NODE.as_bytes())
        {
            return true;
        }
        match self.route(cluster, args) {
            Route::Local => false,
            Route::Read => !self.read_ok || cluster.last_in_flight().is_some(),
            _ => true,
        }
    }

    fn route(&self, cluster: &Cluster, args: &[Bytes]) -> Route {
        if self.link.as_ref().is_some_and(|l| l.in_multi) {
            return Route::Forward;
        }
        let Some(class) = dispatch::classify(args) else {
            return Route::Local;
        };
        // Refused before it runs (dispatch says why), or the connection's own.
        if class.local || !self.state.authenticated {
            return Route::Local;
        }
        // Queued by this node's MULTI (on the leader), or the connection's subscribe mode.
        if (self.state.multi.is_some() && !class.no_queue)
            || (!self.state.resp3 && self.state.subscribed())
        {
            return Route::Local;
        }
        match cluster.role() {
            Role::Leader if class.writes => Route::Write,
            Role::Leader if class.reads => Route::Read,
            Role::Leader => Route::Local,
            _ if self.state.is_link => Route::Refuse,
            _ if self.state.readonly && class.reads && !class.writes => Route::Local,
            _ => Route::Forward,
        }
    }

    /// Runs a routed request and encodes its reply. Returns `false` if the connection must
    /// close (shutdown).
    pub(super) async fn run_routed(
        &mut self,
        args: Vec<Bytes>,
        stop: &mut crate::shutdown::Listener,
    ) -> bool {
        let Some(cluster) = self.shared.cluster.clone() else {
            return true;
        };
        self.drain_messages(usize::MAX);
        if args[0].eq_ignore_ascii_case(LINK_HELLO.as_bytes()) {
            self.state.is_link = true;
            self.finish(Frame::OK);
            return true;
        }
        if args[0].eq_ignore_ascii_case(b"sentinel") {
            let reply = if self.state.authenticated {
                sentinel::reply(&cluster, &args)
            } else {
                Frame::Error("NOAUTH Authentication required.".into())
            };
            self.finish(reply);
            return true;
        }
        if args[0].eq_ignore_ascii_case(RAFT_NODE.as_bytes()) {
            let reply = if !self.state.authenticated {
                Frame::Error("NOAUTH Authentication required.".into())
            } else {
                match cluster.wait_role().await {
                    Role::Leader => crate::cluster::raft_node(&cluster, &args).await,
                    Role::Follower(_) if self.state.is_link => Frame::Error(NOT_LEADER.into()),
                    Role::Follower(leader) => match self.forward(&cluster, leader, &args).await {
                        Some(reply) => {
                            self.relay(&reply);
                            return true;
                        }
                        None => Frame::Error(Refused::NotLeader.reply_text()),
                    },
                    Role::Unknown => Frame::Error(Refused::NotLeader.reply_text()),
                }
            };
            self.finish(reply);
            return true;
        }
        let deadline = Instant::now() + cluster.timeout;
        loop {
            let route = self.route(&cluster, &args);
            let retry = match route {
                Route::Local => {
                    let mut token = None;
                    self.handle(args, &mut token);
                    return true;
                }
                Route::Refuse => {
                    self.finish(Frame::Error(NOT_LEADER.into()));
                    return true;
                }
                Route::Read => match self.read_after_writes(&cluster).await {
                    Ok(()) => {
                        self.read_ok = true;
                        let mut token = None;
                        self.handle(args, &mut token);
                        return true;
                    }
                    Err(_) => true,
                },
                Route::Write => {
                    let gate = tokio::select! {
                        g = cluster.gate.clone().lock_owned() => g,
                        _ = stop.wait() => return false,
                    };
                    match cluster.ready_to_write().await {
                        Err(_) => true,
                        Ok(new_term) => {
                            if new_term && let Err(e) = self.shared.leading_a_new_term() {
                                tracing::error!("{e}");
                            }
                            self.write_as_leader(&cluster, args, gate).await;
                            return true;
                        }
                    }
                }
                Route::Forward => match cluster.wait_role().await {
                    Role::Follower(leader) => match self.forward(&cluster, leader, &args).await {
                        Some(reply) => {
                            self.relay(&reply);
                            return true;
                        }
                        None => true,
                    },
                    Role::Leader => continue,
                    Role::Unknown => true,
                },
            };
            if retry {
                if Instant::now() >= deadline {
                    self.finish(Frame::Error(Refused::NotLeader.reply_text()));
                    return true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(RETRY) => {}
                    _ = stop.wait() => return false,
                }
            }
        }
    }

    /// The leader's read: a read barrier unless one covers it already, then a wait for the
    /// writes staged before it (a client that saw them staged, by WATCH or by their replies,
    /// must read them).
    async fn read_after_writes(&self, cluster: &Cluster) -> Result<(), Refused> {
        let staged = cluster.last_in_flight();
        if !self.read_ok {
            cluster.read_barrier().await?;
        }
        match staged {
            Some(seq) => cluster.wait_resolved(seq).await,
            None => Ok(()),
        }
    }

    /// The leader's write: staged, proposed, answered once applied.
    async fn write_as_leader(
        &mut self,
        cluster: &Cluster,
        args: Vec<Bytes>,
        gate: tokio::sync::OwnedMutexGuard<()>,
    ) {
        let mut token = None;
        self.state.write_routed = true;
        let reply = dispatch::request(&self.shared, &mut self.state, args, &mut token);
        self.state.write_routed = false;
        let Some(proposal) = self.state.proposal.take() else {
            drop(gate);
            if self.state.parked.is_none() {
                self.finish(reply);
            }
            return;
        };
        if proposal.effects.ops.is_empty() && self.state.parked.is_some() {
            // Blocked, having written nothing: its reply comes when it is served.
            drop(gate);
            return;
        }
        let outcome = if proposal.effects.ops.is_empty() {
            drop(gate);
            cluster.after(proposal.seq).await
        } else {
            // Its keyspace events travel with it (each node publishes them as it applies it),
            // and word of a change to the libraries or the database map.
            let mut effects = proposal.effects;
            effects.notes = crate::relay::encode_notes(
                &self.state.events,
                self.state.libraries_changed,
                self.state.db_map_changed,
            );
            cluster.propose(proposal.seq, effects, gate).await
        };
        match outcome {
            Ok(()) => {
                dispatch::proposal_done(&self.shared, &mut self.state, proposal.served, None);
                self.finish(reply);
            }
            Err(refused) => {
                let text = refused.reply_text();
                tracing::debug!(client = self.state.id, "write refused: {text}");
                dispatch::proposal_done(
                    &self.shared,
                    &mut self.state,
                    proposal.served,
                    Some(&text),
                );
                self.finish(Frame::Error(text));
            }
        }
    }

    /// Forwards `args` to leader `leader`; `None` if it certainly did not get there (to be
    /// retried). An outcome that is unknown is answered as such.
    async fn forward(&mut self, cluster: &Cluster, leader: u64, args: &[Bytes]) -> Option<Bytes> {
        let addr = cluster.client_addr(leader)?;
        if self
            .link
            .as_ref()
            .is_some_and(|l| l.leader != leader && !l.in_multi)
        {
            self.link = None;
        }
        if self.link.is_none() {
            match Link::connect(leader, &addr, cluster.password.as_deref(), cluster.timeout).await {
                Ok(l) => self.link = Some(l),
                Err(e) => {
                    tracing::debug!(client = self.state.id, "link to node {leader}: {}", e.why);
                    return None;
                }
            }
        }
        let link = self.link.as_mut()?;
        let blocking = dispatch::classify(args).is_some_and(|c| c.blocking);
        let timeout = (!blocking).then_some(cluster.timeout * 5);
        match link
            .forward(args, self.state.resp3, self.state.db, timeout)
            .await
        {
            Ok(reply) if reply.starts_with(format!("-{NOT_LEADER}\r\n").as_bytes()) => {
                // It stopped leading before this node learnt of it: not executed, try again.
                self.link = None;
                None
            }
            Ok(reply) => Some(reply),
            Err(e) => {
                self.link = None;
                if e.sent {
                    Some(Bytes::from(format!(
                        "-{}\r\n",
                        Refused::Unknown(e.why).reply_text()
                    )))
                } else {
                    None
                }
            }
        }
    }

    /// Puts a reply relayed from the leader (already encoded) in the output.
    fn relay(&mut self, reply: &[u8]) {
        let invalidations = self.drain_before_reply();
        if self.state.reply_wanted() {
            self.wbuf.extend_from_slice(reply);
        }
        for m in &invalidations {
            self.queue_message(m);
        }
    }
}
