//! MULTI/EXEC/DISCARD/WATCH/UNWATCH, and the registry of watched keys.
//!
//! EXEC itself is run by the connection (it needs the queued commands): all queued commands
//! run inside one engine transaction, so no other write interleaves and their writes land on
//! disk as one atomic record.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::Mutex;

use super::flags::{FAST, NO_MULTI, NO_QUEUE};
use super::{CmdResult, Ctx, Spec, spec};
use crate::frame::Frame;
use crate::keyspace::{self, EngineKey};

pub(crate) fn register(t: &mut Vec<Spec>) {
    let g = "transactions";
    t.extend([
        spec(
            "multi",
            1,
            FAST | NO_QUEUE | NO_MULTI,
            (0, 0, 0),
            g,
            "Starts a transaction.",
            multi,
        ),
        spec(
            "exec",
            1,
            NO_QUEUE,
            (0, 0, 0),
            g,
            "Executes all commands in a transaction.",
            exec_outside_multi,
        ),
        spec(
            "discard",
            1,
            FAST | NO_QUEUE,
            (0, 0, 0),
            g,
            "Discards a transaction.",
            discard,
        ),
        spec(
            "watch",
            -2,
            FAST | NO_QUEUE | NO_MULTI,
            (1, -1, 1),
            g,
            "Monitors changes to keys to determine the execution of a transaction.",
            watch,
        ),
        spec(
            "unwatch",
            1,
            FAST,
            (0, 0, 0),
            g,
            "Forgets about watched keys of a transaction.",
            unwatch,
        ),
    ]);
}

/// A connection's MULTI state.
#[derive(Default)]
pub(crate) struct Multi {
    /// Commands queued since MULTI.
    pub queue: Vec<Vec<Bytes>>,
    /// A command was refused while queuing: EXEC will abort.
    pub failed: bool,
}

fn multi(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    if ctx.conn.multi.is_some() {
        return Ok(Frame::err("MULTI calls can not be nested"));
    }
    ctx.conn.multi = Some(Multi::default());
    Ok(Frame::OK)
}

fn exec_outside_multi(_ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    Ok(Frame::err("EXEC without MULTI"))
}

fn discard(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    if ctx.conn.multi.take().is_none() {
        return Ok(Frame::err("DISCARD without MULTI"));
    }
    ctx.conn.watch.clear(&ctx.shared.watches);
    Ok(Frame::OK)
}

fn watch(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    if ctx.conn.multi.is_some() {
        return Ok(Frame::err("WATCH inside MULTI is not allowed"));
    }
    let db = ctx.conn.db;
    for key in &args[1..] {
        ctx.conn.watch.add(&ctx.shared.watches, db, key);
    }
    Ok(Frame::OK)
}

fn unwatch(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    ctx.conn.watch.clear(&ctx.shared.watches);
    Ok(Frame::OK)
}

/// The keys one connection watches, and the flag writers raise when one changes.
#[derive(Default)]
pub(crate) struct WatchState {
    keys: Vec<EngineKey>,
    dirty: Arc<AtomicBool>,
}

impl WatchState {
    fn add(&mut self, registry: &Watches, db: u8, key: &[u8]) {
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
