//! Client-side caching (CLIENT TRACKING): which clients read which keys, and the invalidation
//! messages a change sends them, as Redis 7.0 does. Keys are tracked by name, whatever their
//! database (as in Redis). A client in default mode is told once about each key it read; a
//! client in BCAST mode about every key under its prefixes, one message per prefix and
//! request. Messages go to the client itself (RESP3 push) or to the client it redirects to (a
//! push, or in RESP2 a message of the `__redis__:invalidate` channel).
//!
//! Changes are reported once their transaction is committed (dispatch.rs), and the
//! connection writes invalidations after the reply of the request it is running: a client
//! never gets an invalidation before the reply of a read that came before the change.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use crate::config::OutputLimit;
use crate::pubsub::{Message, Subscriber};

/// Keys forgotten at most per read when the table is over `tracking-table-max-keys`.
const EVICT_AT_ONCE: usize = 1000;

/// How one client tracks.
#[derive(Clone, Default)]
pub(crate) struct Mode {
    /// The client its messages go to instead of itself (REDIRECT); 0 for none.
    pub redirect: u64,
    pub bcast: bool,
    /// BCAST's prefixes (sorted, as Redis lists them); `""` when none was given.
    pub prefixes: BTreeSet<Bytes>,
    pub optin: bool,
    pub optout: bool,
    pub noloop: bool,
    /// The client it redirects to was gone when a message was due.
    pub broken: bool,
}

/// A client that may receive messages: its queue, protocol, and whether it is subscribed (a
/// RESP2 client gets redirected messages only then).
#[derive(Clone)]
pub(crate) struct Target {
    /// `None`: it has no queue (RESP2, never subscribed).
    pub inbox: Option<Arc<Subscriber>>,
    pub resp3: bool,
    pub subscribed: bool,
}

#[derive(Default)]
struct Inner {
    /// Clients tracking, by id.
    clients: HashMap<u64, Mode>,
    /// Keys read by default-mode clients, and who read them.
    keys: HashMap<Bytes, HashSet<u64>>,
    /// The sum of the sets' sizes in `keys` (INFO's tracking_total_items).
    items: usize,
}

/// The tracking table.
#[derive(Default)]
pub(crate) struct Tracking {
    /// Clients tracking: lets readers and writers skip the lock when none.
    count: AtomicUsize,
    inner: Mutex<Inner>,
}

impl Tracking {
    /// Whether any client tracks.
    pub fn active(&self) -> bool {
        self.count.load(Ordering::Relaxed) > 0
    }

    /// CLIENT TRACKING ON for client `id`: its new mode (the caller checked it against the old
    /// one); BCAST prefixes add to those it had.
    pub fn enable(&self, id: u64, mut mode: Mode) {
        let mut inner = self.inner.lock();
        match inner.clients.get_mut(&id) {
            Some(old) => {
                if mode.bcast {
                    mode.prefixes.append(&mut old.prefixes);
                }
                *old = mode;
            }
            None => {
                inner.clients.insert(id, mode);
                self.count.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// CLIENT TRACKING OFF, RESET, or the client gone. (Its entries in the key table are
    /// dropped lazily, when those keys change, as in Redis.)
    pub fn disable(&self, id: u64) {
        if !self.active() {
            return;
        }
        let mut inner = self.inner.lock();
        if inner.clients.remove(&id).is_some() {
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The client's mode, if it tracks.
    pub fn mode(&self, id: u64) -> Option<Mode> {
        if !self.active() {
            return None;
        }
        self.inner.lock().clients.get(&id).cloned()
    }

    /// Client `id` read `keys`: it is told when they change. Past `max_keys` keys in the
    /// table (`tracking-table-max-keys`, 0 for no limit), keys are forgotten and their
    /// readers told, as if they had changed.
    pub fn remember(
        &self,
        id: u64,
        keys: Vec<Bytes>,
        max_keys: usize,
        target: &dyn Fn(u64) -> Option<Target>,
    ) {
        let mut inner = self.inner.lock();
        for k in keys {
            if inner.keys.entry(k).or_default().insert(id) {
                inner.items += 1;
            }
        }
        if max_keys > 0 && inner.keys.len() > max_keys {
            // At most EVICT_AT_ONCE per read (in one pass over the table): a lowered limit is
            // reached over several reads, never by one long stall under the lock.
            let excess = (inner.keys.len() - max_keys).min(EVICT_AT_ONCE);
            let victims: Vec<Bytes> = inner.keys.keys().take(excess).cloned().collect();
            let mut out = Vec::new();
            for k in &victims {
                invalidate_key(&mut inner, k, None, &mut out);
            }
            send_all(&mut inner, out, target);
        }
    }

    /// `keys` changed by client `by` (`None`: the server, an expiry), their transaction
    /// committed: the invalidation messages.
    pub fn changed(&self, keys: &[Bytes], by: Option<u64>, target: &dyn Fn(u64) -> Option<Target>) {
        if !self.active() || keys.is_empty() {
            return;
        }
        let mut inner = self.inner.lock();
        let mut out = Vec::new();
        for k in keys {
            invalidate_key(&mut inner, k, by, &mut out);
        }
        if inner.clients.values().any(|m| m.bcast) {
            let mut sorted: Vec<&Bytes> = keys.iter().collect();
            sorted.sort();
            sorted.dedup();
            for (id, m) in &inner.clients {
                if !m.bcast || (m.noloop && by == Some(*id)) {
                    continue;
                }
                for p in &m.prefixes {
                    let under: Vec<Bytes> = sorted
                        .iter()
                        .filter(|k| k.starts_with(p))
                        .map(|k| (*k).clone())
                        .collect();
                    if !under.is_empty() {
                        out.push((*id, Some(under)));
                    }
                }
            }
        }
        send_all(&mut inner, out, target);
    }

    /// FLUSHDB/FLUSHALL: every tracking client is told that every key changed (a null), and
    /// the key table is emptied.
    pub fn flushed(&self, target: &dyn Fn(u64) -> Option<Target>) {
        if !self.active() {
            return;
        }
        let mut inner = self.inner.lock();
        inner.keys.clear();
        inner.items = 0;
        let out = inner.clients.keys().map(|id| (*id, None)).collect();
        send_all(&mut inner, out, target);
    }

    /// INFO's tracking_clients, tracking_total_keys, tracking_total_items,
    /// tracking_total_prefixes (distinct prefixes over all clients).
    pub fn counts(&self) -> (usize, usize, usize, usize) {
        let inner = self.inner.lock();
        let prefixes: HashSet<&Bytes> = inner
            .clients
            .values()
            .flat_map(|m| m.prefixes.iter())
            .collect();
        (
            inner.clients.len(),
            inner.keys.len(),
            inner.items,
            prefixes.len(),
        )
    }
}

/// Forgets `key` and queues a message for each default-mode client that read it (but the
/// one that changed it, if NOLOOP).
fn invalidate_key(
    inner: &mut Inner,
    key: &Bytes,
    by: Option<u64>,
    out: &mut Vec<(u64, Option<Vec<Bytes>>)>,
) {
    let Some(ids) = inner.keys.remove(key) else {
        return;
    };
    inner.items -= ids.len();
    for id in ids {
        // A client that stopped tracking, or switched to BCAST, left entries behind.
        match inner.clients.get(&id) {
            Some(m) if !(m.bcast || (m.noloop && by == Some(id))) => {
                out.push((id, Some(vec![key.clone()])));
            }
            _ => {}
        }
    }
}

fn send_all(
    inner: &mut Inner,
    out: Vec<(u64, Option<Vec<Bytes>>)>,
    target: &dyn Fn(u64) -> Option<Target>,
) {
    for (id, keys) in out {
        if let Some(m) = inner.clients.get_mut(&id) {
            send(id, m, keys, target);
        }
    }
}

/// One invalidation message to tracking client `id`, or the client it redirects to.
fn send(id: u64, m: &mut Mode, keys: Option<Vec<Bytes>>, target: &dyn Fn(u64) -> Option<Target>) {
    // Invalidations count against the normal class, unlimited by default.
    let unlimited = OutputLimit::default();
    let invalidate = |as_message| Message::Invalidate { keys, as_message };
    if m.redirect == 0 {
        // RESP2 has no pushes: without a redirection nothing can be sent.
        if let Some(Target {
            inbox: Some(inbox),
            resp3: true,
            ..
        }) = target(id)
        {
            inbox.deliver(invalidate(false), unlimited);
        }
        return;
    }
    match target(m.redirect) {
        Some(Target {
            inbox: Some(inbox),
            resp3,
            subscribed,
        }) => {
            if resp3 {
                inbox.deliver(invalidate(false), unlimited);
            } else if subscribed {
                inbox.deliver(invalidate(true), unlimited);
            }
        }
        // A RESP2 client subscribed to nothing: it cannot take a message.
        Some(_) => {}
        // Gone: the tracking client learns it (RESP3), as in Redis.
        None => {
            m.broken = true;
            if let Some(Target {
                inbox: Some(inbox),
                resp3: true,
                ..
            }) = target(id)
            {
                inbox.deliver(Message::RedirectBroken(m.redirect), unlimited);
            }
        }
    }
}
