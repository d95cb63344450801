//! WATCH: the registry of watched keys that writers signal, and one connection's watched keys.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use parking_lot::Mutex;

use crate::keyspace::{self, EngineKey};

/// The keys one connection watches, and the flag writers raise when one changes.
#[derive(Default)]
pub(crate) struct WatchState {
    keys: Vec<EngineKey>,
    dirty: Arc<AtomicBool>,
}

impl WatchState {
    /// Watches `key` in `db` (once, however often it is named).
    pub fn add(&mut self, registry: &Watches, db: u8, key: &[u8]) {
        let ek = keyspace::engine_key(db, key);
        if self.keys.contains(&ek) {
            return;
        }
        registry.add(&ek, &self.dirty);
        self.keys.push(ek);
    }

    /// Whether a watched key changed since it was watched.
    pub fn is_dirty(&self) -> bool {
        self.dirty.load(Ordering::Acquire)
    }

    /// Forgets every watched key.
    pub fn clear(&mut self, registry: &Watches) {
        for k in self.keys.drain(..) {
            registry.remove(&k, &self.dirty);
        }
        self.dirty = Arc::new(AtomicBool::new(false));
    }
}

/// Which connections watch which keys. Writers call [`Watches::touch`] for every key they
/// change, under the engine's writer lock, so a change can never slip between an EXEC's check
/// and its writes.
#[derive(Default)]
pub(crate) struct Watches {
    /// Number of watched (key, connection) pairs: lets writers skip the lock when none.
    count: AtomicUsize,
    map: Mutex<HashMap<Vec<u8>, Vec<Arc<AtomicBool>>>>,
}

impl Watches {
    fn add(&self, key: &[u8], flag: &Arc<AtomicBool>) {
        self.map
            .lock()
            .entry(key.to_vec())
            .or_default()
            .push(flag.clone());
        self.count.fetch_add(1, Ordering::AcqRel);
    }

    fn remove(&self, key: &[u8], flag: &Arc<AtomicBool>) {
        let mut map = self.map.lock();
        if let Some(list) = map.get_mut(key) {
            let before = list.len();
            list.retain(|f| !Arc::ptr_eq(f, flag));
            self.count.fetch_sub(before - list.len(), Ordering::AcqRel);
            if list.is_empty() {
                map.remove(key);
            }
        }
    }

    /// Marks the watchers of `key` in `db` dirty.
    pub fn touch(&self, db: u8, key: &[u8]) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        let ek = keyspace::engine_key(db, key);
        if let Some(list) = self.map.lock().get(&ek[..]) {
            for f in list {
                f.store(true, Ordering::Release);
            }
        }
    }

    /// Marks the watchers of every key in `db` (or all databases) dirty.
    /// The watched keys of database `db` (SWAPDB touches those that exist).
    pub fn keys_in_db(&self, db: u8) -> Vec<Vec<u8>> {
        if self.count.load(Ordering::Acquire) == 0 {
            return Vec::new();
        }
        self.map
            .lock()
            .keys()
            .filter(|k| k.first() == Some(&db))
            .map(|k| k[2..].to_vec())
            .collect()
    }

    pub fn touch_db(&self, db: Option<u8>) {
        if self.count.load(Ordering::Acquire) == 0 {
            return;
        }
        for (k, list) in self.map.lock().iter() {
            if db.is_none_or(|d| k.first() == Some(&d)) {
                for f in list {
                    f.store(true, Ordering::Release);
                }
            }
        }
    }
}
