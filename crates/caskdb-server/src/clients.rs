//! The table of connected clients, for CLIENT LIST/INFO and INFO clients.

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

    /// CLIENT LIST's flags: P (pub/sub), x (MULTI), b (blocked), or N for none.
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
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags={} db={} sub={} psub={} ssub={} multi={} qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp={}",
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
            last_cmd: Mutex::new("NULL".to_string()),
            resp: AtomicU8::new(2),
            subs: Default::default(),
            blocked: AtomicBool::new(false),
            multi: AtomicI64::new(-1),
        });
        self.map.lock().insert(id, info.clone());
        info
    }

    pub fn remove(&self, id: u64) {
        self.map.lock().remove(&id);
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
