//! The table of connected clients (CLIENT LIST/INFO/KILL, INFO clients), and CLIENT PAUSE's
//! state.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::Mutex;

/// What other connections may see of one client.
pub(crate) struct ClientInfo {
    pub id: u64,
    pub addr: SocketAddr,
    pub laddr: SocketAddr,
    created: Instant,
    /// Milliseconds since `created` at the last command.
    last_active: AtomicU64,
    db: AtomicU8,
    name: Mutex<Option<Bytes>>,
    /// The ACL user it runs as.
    user: Mutex<Bytes>,
    /// The last command's full name (`client|info` for a subcommand).
    last_cmd: Mutex<String>,
    /// 2 or 3.
    resp: AtomicU8,
    /// Channels, patterns and shard channels subscribed to.
    pub subs: [AtomicUsize; 3],
    /// Waiting in a blocking command.
    pub blocked: AtomicBool,
    /// Commands queued since MULTI; -1 outside MULTI.
    pub multi: AtomicI64,
    /// CLIENT NO-EVICT ON (shown as flag `e`; nothing is evicted yet).
    pub no_evict: AtomicBool,
    /// The queue of messages to this connection, once it subscribed or tracks (where
    /// redirected invalidation messages go).
    pub inbox: Mutex<Option<Arc<crate::pubsub::Subscriber>>>,
    /// CLIENT TRACKING: on (flag `t`), BCAST (flag `B`).
    pub tracking: AtomicU8,
    /// Set by CLIENT KILL; the connection closes at its next wait.
    killed: AtomicBool,
    kill_signal: tokio::sync::Notify,
}

impl ClientInfo {
    pub fn set_db(&self, db: u8) {
        self.db.store(db, Ordering::Relaxed);
    }

    pub fn set_name(&self, name: Option<Bytes>) {
        *self.name.lock() = name;
    }

    pub fn name(&self) -> Option<Bytes> {
        self.name.lock().clone()
    }

    pub fn set_user(&self, user: Bytes) {
        *self.user.lock() = user;
    }

    pub fn user(&self) -> Bytes {
        self.user.lock().clone()
    }

    pub fn set_resp(&self, resp: u8) {
        self.resp.store(resp, Ordering::Relaxed);
    }

    /// Called for every command: its name, and the subcommand of a container command.
    pub fn record(&self, cmd: &'static str, sub: Option<&[u8]>) {
        self.last_active
            .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
        let mut last = self.last_cmd.lock();
        last.clear();
        last.push_str(cmd);
        if let Some(sub) = sub.filter(|s| s.len() <= 32 && s.iter().all(u8::is_ascii_alphanumeric))
        {
            last.push('|');
            for &b in sub {
                last.push(char::from(b.to_ascii_lowercase()));
            }
        }
    }

    /// Whether CLIENT KILL closed this client.
    pub fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Relaxed)
    }

    /// Resolves once CLIENT KILL closed this client.
    pub async fn killed(&self) {
        let signal = self.kill_signal.notified();
        tokio::pin!(signal);
        // Registered before the flag is read: a kill in between still wakes us.
        signal.as_mut().enable();
        if !self.is_killed() {
            signal.await;
        }
    }

    /// Redis's client type: `pubsub` while subscribed to anything, else `normal`.
    pub fn kind(&self) -> &'static str {
        if self.subs.iter().any(|n| n.load(Ordering::Relaxed) > 0) {
            "pubsub"
        } else {
            "normal"
        }
    }

    /// CLIENT LIST's flags: P (pub/sub), x (MULTI), b (blocked), e (no-evict), or N for none.
    fn flags(&self) -> String {
        let mut f = String::new();
        if self.subs.iter().any(|n| n.load(Ordering::Relaxed) > 0) {
            f.push('P');
        }
        if self.multi.load(Ordering::Relaxed) >= 0 {
            f.push('x');
        }
        if self.blocked.load(Ordering::Relaxed) {
            f.push('b');
        }
        match self.tracking.load(Ordering::Relaxed) {
            1 => f.push('t'),
            2 => f.push_str("tB"),
            _ => {}
        }
        if self.no_evict.load(Ordering::Relaxed) {
            f.push('e');
        }
        if f.is_empty() {
            f.push('N');
        }
        f
    }

    /// One line of CLIENT LIST, with Redis's field names.
    pub fn describe(&self) -> String {
        let age = self.created.elapsed();
        let idle_ms =
            (age.as_millis() as u64).saturating_sub(self.last_active.load(Ordering::Relaxed));
        let name = self
            .name()
            .map(|n| String::from_utf8_lossy(&n).into_owned())
            .unwrap_or_default();
        format!(
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user={} redir=-1 resp={}",
            self.id,
            self.addr,
            self.laddr,
            name,
            age.as_secs(),
            idle_ms / 1000,
            self.flags(),
            self.db.load(Ordering::Relaxed),
            self.subs[0].load(Ordering::Relaxed),
            self.subs[1].load(Ordering::Relaxed),
            self.subs[2].load(Ordering::Relaxed),
            self.multi.load(Ordering::Relaxed),
            self.last_cmd.lock(),
            String::from_utf8_lossy(&self.user()),
            self.resp.load(Ordering::Relaxed),
        )
    }
}

/// Every connected client, by id.
#[derive(Default)]
pub(crate) struct Clients {
    next_id: AtomicU64,
    map: Mutex<BTreeMap<u64, Arc<ClientInfo>>>,
}

impl Clients {
    /// Registers a new connection and returns its record.
    pub fn add(&self, addr: SocketAddr, laddr: SocketAddr) -> Arc<ClientInfo> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let info = Arc::new(ClientInfo {
            id,
            addr,
            laddr,
            created: Instant::now(),
            last_active: AtomicU64::new(0),
            db: AtomicU8::new(0),
            name: Mutex::new(None),
            user: Mutex::new(Bytes::from_static(b"default")),
            last_cmd: Mutex::new("NULL".to_string()),
            resp: AtomicU8::new(2),
            subs: Default::default(),
            blocked: AtomicBool::new(false),
            multi: AtomicI64::new(-1),
            no_evict: AtomicBool::new(false),
            inbox: Mutex::new(None),
            tracking: AtomicU8::new(0),
            killed: AtomicBool::new(false),
            kill_signal: tokio::sync::Notify::new(),
        });
        self.map.lock().insert(id, info.clone());
        info
    }

    pub fn remove(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    /// Closes a client (CLIENT KILL): gone from the table at once, as in Redis; its connection
    /// ends at its next wait.
    pub fn kill(&self, id: u64) {
        if let Some(c) = self.map.lock().remove(&id) {
            c.killed.store(true, Ordering::Relaxed);
            c.kill_signal.notify_waiters();
        }
    }

    pub fn get(&self, id: u64) -> Option<Arc<ClientInfo>> {
        self.map.lock().get(&id).cloned()
    }

    /// Where a tracking client's redirected messages go: client `id`'s queue, protocol and
    /// subscription state.
    pub fn tracking_target(&self, id: u64) -> Option<crate::tracking::Target> {
        let c = self.get(id)?;
        let inbox = c.inbox.lock().clone();
        Some(crate::tracking::Target {
            inbox,
            resp3: c.resp.load(Ordering::Relaxed) == 3,
            subscribed: c.subs.iter().any(|n| n.load(Ordering::Relaxed) > 0),
        })
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    pub fn all(&self) -> Vec<Arc<ClientInfo>> {
        self.map.lock().values().cloned().collect()
    }

    /// Clients subscribed to anything, and clients blocked (INFO's `pubsub_clients`,
    /// `blocked_clients`).
    pub fn counts(&self) -> (usize, usize) {
        let map = self.map.lock();
        let subscribed = map
            .values()
            .filter(|c| c.subs.iter().any(|n| n.load(Ordering::Relaxed) > 0))
            .count();
        let blocked = map
            .values()
            .filter(|c| c.blocked.load(Ordering::Relaxed))
            .count();
        (subscribed, blocked)
    }
}

/// CLIENT PAUSE: until when, and whether every command waits or only those that may write.
#[derive(Default)]
pub(crate) struct Pause {
    state: Mutex<Option<(Instant, bool)>>,
    resumed: tokio::sync::Notify,
}

impl Pause {
    /// Pauses until `until` (`all`: every command, else only those that may write). A pause
    /// in force is extended, and made stricter, never shortened (as Redis).
    pub fn set(&self, until: Instant, all: bool) {
        let mut s = self.state.lock();
        *s = Some(match *s {
            Some((u, a)) => (u.max(until), a || all),
            None => (until, all),
        });
    }

    /// CLIENT UNPAUSE.
    pub fn clear(&self) {
        *self.state.lock() = None;
        self.resumed.notify_waiters();
    }

    /// Until when a command waits: `Some` while a pause holds it (`writes`: it may write).
    pub fn holds(&self, writes: bool) -> Option<Instant> {
        let mut s = self.state.lock();
        match *s {
            Some((until, _)) if until <= Instant::now() => {
                *s = None;
                None
            }
            Some((until, all)) if all || writes => Some(until),
            _ => None,
        }
    }

    /// Resolves when CLIENT UNPAUSE lifts the pause (its end is the caller's timer). Create
    /// and `enable` it before [`Pause::holds`], so that an UNPAUSE in between is not missed.
    pub fn resumed(&self) -> tokio::sync::futures::Notified<'_> {
        self.resumed.notified()
    }
}
