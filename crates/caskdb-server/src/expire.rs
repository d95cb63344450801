//! Announcing expirations: while `notify-keyspace-events` asks for `expired` events, or a
//! client tracks keys (CLIENT TRACKING), a task walks the index a chunk at a time, deletes the
//! keys whose time has passed, and publishes an `expired` event for each (as Redis's active
//! expiry does) and tells the tracking clients. The engine itself already hides
//! expired values from every read; this only makes their end visible.
//!
//! In a replicated group the leader alone does it, and its deletions are a write like any
//! other (staged over the writes in flight, proposed, applied on every node): followers never
//! expire keys on their own clock. Every node's subscribers get the `expired` events.

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
        if let Some(cluster) = &shared.cluster {
            if cluster.role() == crate::cluster::Role::Leader {
                match in_group(&shared, cluster, cursor.take()).await {
                    Ok(next) => cursor = next,
                    Err(e) => tracing::debug!("expiry in the group: {e}"),
                }
            }
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

/// The expired top-level keys of a chunk after `after`, and where to resume.
fn scan(shared: &Shared, after: Option<&[u8]>) -> caskdb::Result<(Vec<Bytes>, Option<Bytes>)> {
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    // Top-level keys sort before every member record (whose first byte is a tag from
    // MEMBER_TAG_BASE up): the scan stops there. Members are reclaimed by the sweeper once
    // their collection is gone.
    let end = [MEMBER_TAG_BASE];
    let (expired, next) = shared
        .db
        .expired_keys(start, Bound::Excluded(&end[..]), CHUNK)?;
    let keys = expired
        .into_iter()
        .filter(|k| k.len() >= 2 && k[1] == NS_KEYS)
        .collect();
    Ok((keys, next))
}

/// The deletions of those of `keys` still stored and expired, and their events.
fn expire_all(
    shared: &Shared,
    tx: &mut caskdb::Transaction<'_>,
    keys: &[Bytes],
) -> caskdb::Result<Vec<Event>> {
    let mut events = Vec::new();
    for k in keys {
        events.extend(expire_one(shared, tx, k)?);
    }
    Ok(events)
}

/// The deletion of `k` if it is still stored and expired, and its event.
fn expire_one(
    shared: &Shared,
    tx: &mut caskdb::Transaction<'_>,
    k: &Bytes,
) -> caskdb::Result<Option<Event>> {
    let (still, _) = shared
        .db
        .expired_keys(Bound::Included(k), Bound::Included(k), 1)?;
    // (In a group, a write in flight may have set it again: the transaction sees it.)
    if still.is_empty() || tx.get(k)?.is_some() {
        return Ok(None);
    }
    tx.delete(k)?;
    // Registries and events speak logical databases (SWAPDB).
    let db = shared.dbs.logical(k[0]);
    shared.watches.touch(db, &k[2..]);
    Ok(Some(Event {
        class: notify::EXPIRED,
        name: "expired",
        db,
        key: k.slice(2..),
    }))
}

/// Makes the expiry's end known: counted, told to tracking clients and subscribers.
fn announce(shared: &Shared, events: &[Event]) {
    count_and_invalidate(shared, events);
    let flags = shared.config.notify_flags();
    shared
        .pubsub
        .publish_events(flags, events, shared.config.pubsub_limit());
}

/// Counts the expired keys of `events` (INFO) and tells the clients tracking them.
fn count_and_invalidate(shared: &Shared, events: &[Event]) {
    shared.stats.expired_keys.add(events.len() as u64);
    let gone: Vec<Bytes> = events.iter().map(|e| e.key.clone()).collect();
    shared.keys_changed(&gone, None);
}

/// One chunk on a group's leader: the deletions go through the write path (gate, stage,
/// proposal); the events go out once they are applied, here and on the other nodes.
async fn in_group(
    shared: &Arc<Shared>,
    cluster: &crate::cluster::Cluster,
    after: Option<Bytes>,
) -> Result<Option<Bytes>, String> {
    let (sh, from) = (shared.clone(), after.clone());
    let (keys, next) = tokio::task::spawn_blocking(move || scan(&sh, from.as_deref()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    if keys.is_empty() {
        return Ok(next);
    }
    let gate = cluster.gate.clone().lock_owned().await;
    if cluster.ready_to_write().await.map_err(|r| r.reply_text())? {
        shared.leading_a_new_term()?;
    }
    let (events, staged) = cluster
        .stage(&shared.db, |tx| expire_all(shared, tx, &keys))
        .map_err(|e| e.to_string())?;
    let outcome = match staged {
        crate::cluster::Staged::Nothing => {
            drop(gate);
            Ok(())
        }
        crate::cluster::Staged::After(seq) => {
            drop(gate);
            cluster.after(seq).await
        }
        crate::cluster::Staged::Proposal(seq, mut effects) => {
            // The `expired` events travel with the deletions: each node publishes them as it
            // applies them.
            effects.notes = crate::relay::encode_notes(&events, false, false);
            let outcome = cluster.propose(seq, effects, gate).await;
            if outcome.is_ok() {
                count_and_invalidate(shared, &events);
                return Ok(next);
            }
            outcome
        }
    };
    match outcome {
        Ok(()) => {
            announce(shared, &events);
            Ok(next)
        }
        // Tried again from the same place.
        Err(r) => Err(r.reply_text()),
    }
}

/// One chunk: deletes the expired top-level keys after `after` and announces them; returns
/// where to resume.
fn cycle(shared: &Shared, after: Option<&[u8]>) -> caskdb::Result<Option<Bytes>> {
    let (keys, next) = scan(shared, after)?;
    if keys.is_empty() {
        return Ok(next);
    }
    // Writers wait for this transaction: what it finds expired stays so until it deletes it.
    let events = shared.db.transaction(|tx| expire_all(shared, tx, &keys))?;
    announce(shared, &events);
    Ok(next)
}
