//! Announcing expirations: while `notify-keyspace-events` asks for `expired` events, or a
//! client tracks keys (CLIENT TRACKING), a task walks the index a chunk at a time, deletes the
//! keys whose time has passed, and publishes an `expired` event for each (as Redis's active
//! expiry does) and tells the tracking clients. The engine itself already hides
//! expired values from every read; this only makes their end visible.

use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::keyspace::{MEMBER_TAG_BASE, NS_KEYS};
use crate::notify::{self, Event};
use crate::state::Shared;

/// How often a chunk is scanned.
const TICK: Duration = Duration::from_millis(100);
/// Index entries scanned per tick.
const CHUNK: usize = 1000;

/// Runs until the server shuts down.
pub(crate) async fn run(shared: Arc<Shared>) {
    let mut stop = shared.shutdown.subscribe();
    let mut tick = tokio::time::interval(TICK);
    let mut cursor: Option<Bytes> = None;
    loop {
        tokio::select! {
            _ = stop.wait() => return,
            _ = tick.tick() => {}
        }
        // Needed by `expired` events, and by tracking clients (their caches must learn that
        // a key expired).
        if !(notify::wanted(shared.config.notify_flags(), notify::EXPIRED)
            || shared.tracking.active())
            || !shared
                .active_expire
                .load(std::sync::atomic::Ordering::Relaxed)
        {
            continue;
        }
        // The scan and the deletes take the engine's locks: off the async workers.
        let (sh, after) = (shared.clone(), cursor.take());
        match tokio::task::spawn_blocking(move || cycle(&sh, after.as_deref())).await {
            Ok(Ok(next)) => cursor = next,
            Ok(Err(e)) => tracing::warn!("expiry scan: {e}"),
            Err(e) => tracing::warn!("expiry scan: {e}"),
        }
    }
}

/// One chunk: deletes the expired top-level keys after `after` and announces them; returns
/// where to resume.
fn cycle(shared: &Shared, after: Option<&[u8]>) -> caskdb::Result<Option<Bytes>> {
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    // Top-level keys sort before every member record (whose first byte is a tag from
    // MEMBER_TAG_BASE up): the scan stops there. Members are reclaimed by the sweeper once
    // their collection is gone.
    let end = [MEMBER_TAG_BASE];
    let (expired, next) = shared
        .db
        .expired_keys(start, Bound::Excluded(&end[..]), CHUNK)?;
    let keys: Vec<Bytes> = expired
        .into_iter()
        .filter(|k| k.len() >= 2 && k[1] == NS_KEYS)
        .collect();
    if keys.is_empty() {
        return Ok(next);
    }
    let events = shared.db.transaction(|tx| {
        let mut events = Vec::new();
        for k in &keys {
            // Still stored and expired (not rewritten nor deleted since the scan; writers wait
            // for this transaction, so it stays so): delete it.
            let (still, _) = shared
                .db
                .expired_keys(Bound::Included(k), Bound::Included(k), 1)?;
            if !still.is_empty() {
                tx.delete(k)?;
                // Registries and events speak logical databases (SWAPDB).
                let db = shared.dbs.logical(k[0]);
                shared.watches.touch(db, &k[2..]);
                events.push(Event {
                    class: notify::EXPIRED,
                    name: "expired",
                    db,
                    key: k.slice(2..),
                });
            }
        }
        Ok::<_, caskdb::Error>(events)
    })?;
    shared.stats.expired_keys.add(events.len() as u64);
    let gone: Vec<Bytes> = events.iter().map(|e| e.key.clone()).collect();
    shared.keys_changed(&gone, None);
    let flags = shared.config.notify_flags();
    shared
        .pubsub
        .publish_events(flags, &events, shared.config.pubsub_limit());
    Ok(next)
}
