//! The table of connected clients, for CLIENT LIST/INFO and INFO clients.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
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
    last_cmd: Mutex<&'static str>,
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

    /// Called for every command.
    pub fn record(&self, cmd: &'static str) {
        self.last_active
            .store(self.created.elapsed().as_millis() as u64, Ordering::Relaxed);
        *self.last_cmd.lock() = cmd;
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
            "id={} addr={} laddr={} fd=-1 name={} age={} idle={} flags=N db={} sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 argv-mem=0 multi-mem=0 obl=0 oll=0 omem=0 tot-mem=0 events=r cmd={} user=default redir=-1 resp=2",
            self.id,
            self.addr,
            self.laddr,
            name,
            age.as_secs(),
            idle_ms / 1000,
            self.db.load(Ordering::Relaxed),
            self.last_cmd.lock(),
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
            last_cmd: Mutex::new("NULL"),
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
}
