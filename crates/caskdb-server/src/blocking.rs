//! Blocked clients (BLPOP, BLMOVE, BZPOPMIN…): who waits on which key, in arrival order.
//!
//! A blocking command that finds nothing registers a [`Waiter`] under the engine's writer lock
//! (inside its transaction), so no write can slip between its look and its registration. A
//! write that changes a key someone waits on notes the key as ready (`Ctx::put_raw`); at the end
//! of that write's transaction, dispatch serves the waiters of each ready key in FIFO order,
//! running their commands in the same transaction, so a pop that serves a blocked client is in
//! the same atomic record as the push that fed it. Each served waiter gets its reply and the
//! sync token to wait for (under `appendfsync always`) through a oneshot channel. A waiter
//! leaves the registry exactly once: served, timed out, unblocked, or gone; whoever removes it
//! owns its reply.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use caskdb::SyncToken;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::clients::ClientInfo;
use crate::frame::Frame;
use crate::keyspace::{self, EngineKey, Type};

/// A reply to a blocked client, and what it must wait for before sending it.
pub(crate) struct Served {
    pub frame: Frame,
    /// The writes the reply depends on (its pop), to be on disk first under `always`.
    pub token: Option<SyncToken>,
}

/// One blocked client.
pub(crate) struct Waiter {
    pub info: Arc<ClientInfo>,
    pub db: u8,
    pub resp3: bool,
    /// The command, run again when a key is ready.
    pub args: Vec<Bytes>,
    /// The keys it waits on (in the command's order).
    pub keys: Vec<Bytes>,
    /// The type a key must have to serve it.
    pub ty: Type,
    /// Its reply if it times out (or CLIENT UNBLOCK … TIMEOUT).
    pub timeout_reply: Frame,
    reply: Mutex<Option<oneshot::Sender<Served>>>,
}

impl Waiter {
    /// A waiter and the receiver its connection waits on.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        info: Arc<ClientInfo>,
        db: u8,
        resp3: bool,
        args: Vec<Bytes>,
        keys: Vec<Bytes>,
        ty: Type,
        timeout_reply: Frame,
    ) -> (Arc<Waiter>, oneshot::Receiver<Served>) {
        let (tx, rx) = oneshot::channel();
        let w = Arc::new(Waiter {
            info,
            db,
            resp3,
            args,
            keys,
            ty,
            timeout_reply,
            reply: Mutex::new(Some(tx)),
        });
        (w, rx)
    }

    /// Sends the reply (once; later calls do nothing).
    pub fn send(&self, served: Served) {
        if let Some(tx) = self.reply.lock().take() {
            let _ = tx.send(served);
        }
    }
}

/// Every blocked client, by the keys it waits on.
#[derive(Default)]
pub(crate) struct Blocking {
    /// Waiters registered: lets writers skip the lock when none.
    count: AtomicUsize,
    map: Mutex<HashMap<EngineKey, VecDeque<Arc<Waiter>>>>,
}

impl Blocking {
    /// Registers `w` behind the clients already waiting on each of its keys.
    pub fn add(&self, w: &Arc<Waiter>) {
        let mut map = self.map.lock();
        for k in &w.keys {
            map.entry(keyspace::engine_key(w.db, k))
                .or_default()
                .push_back(w.clone());
        }
        self.count.fetch_add(1, Ordering::AcqRel);
        w.info
            .blocked
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Removes `w` from every key; returns whether it was still registered (the caller then
    /// owns its reply).
    pub fn remove(&self, w: &Arc<Waiter>) -> bool {
        let mut map = self.map.lock();
        let mut found = false;
        for k in &w.keys {
            let ek = keyspace::engine_key(w.db, k);
            if let Some(q) = map.get_mut(&ek) {
                let before = q.len();
                q.retain(|x| !Arc::ptr_eq(x, w));
                found |= q.len() != before;
                if q.is_empty() {
                    map.remove(&ek);
                }
            }
        }
        if found {
            self.count.fetch_sub(1, Ordering::AcqRel);
            w.info
                .blocked
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        found
    }

    /// Whether anyone waits on engine key `ek`.
    pub fn waits_on(&self, ek: &[u8]) -> bool {
        self.count.load(Ordering::Acquire) > 0 && self.map.lock().contains_key(ek)
    }

    /// The keys clients of database `db` wait on, as engine keys (SWAPDB serves those that
    /// now hold something).
    pub fn keys_in_db(&self, db: u8) -> Vec<EngineKey> {
        if self.count.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        self.map
            .lock()
            .keys()
            .filter(|k| k.first() == Some(&db))
            .cloned()
            .collect()
    }

    /// The first client waiting on `ek` for a value of type `ty`, left registered.
    pub fn first_of(&self, ek: &[u8], ty: Type) -> Option<Arc<Waiter>> {
        self.map
            .lock()
            .get(ek)
            .and_then(|q| q.iter().find(|w| w.ty == ty).cloned())
    }

    /// Every client waiting on `ek` for a value of type `ty`, in arrival order, left
    /// registered (a stream's new entries serve them all).
    pub fn all_of(&self, ek: &[u8], ty: Type) -> Vec<Arc<Waiter>> {
        self.map.lock().get(ek).map_or_else(Vec::new, |q| {
            q.iter().filter(|w| w.ty == ty).cloned().collect()
        })
    }

    /// The waiter of client `id`, if it is blocked.
    pub fn of_client(&self, id: u64) -> Option<Arc<Waiter>> {
        let map = self.map.lock();
        map.values()
            .flat_map(|q| q.iter())
            .find(|w| w.info.id == id)
            .cloned()
    }
}
