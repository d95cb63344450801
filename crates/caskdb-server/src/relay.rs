//! In a replicated group, what reaches the subscribers of every node. A PUBLISH (or SPUBLISH)
//! sent to any node goes to the others as a bus message (`Cluster::broadcast`, as Redis
//! Cluster's bus does), where [`received`] publishes it: best effort, a node that is down
//! misses it. The keyspace events of a write travel inside its Raft entry (the entry's notes,
//! [`encode_events`]), and each node publishes them as it applies the entry ([`applied`]).
//! The bytes are in docs/FORMAT.md ("The bus", "Entries").

use bytes::Bytes;

use crate::notify::Event;
use crate::state::Shared;

/// A message carrying a PUBLISH: then the shard flag (0 or 1), the channel's length (`u32`,
/// little-endian), the channel, the payload.
const PUBLISH: u8 = 1;

/// Sends a PUBLISH made on this node to the group's other nodes.
pub(crate) fn publish(shared: &Shared, shard: bool, channel: &[u8], payload: &[u8]) {
    let Some(cluster) = &shared.cluster else {
        return;
    };
    let mut msg = Vec::with_capacity(6 + channel.len() + payload.len());
    msg.push(PUBLISH);
    msg.push(u8::from(shard));
    msg.extend_from_slice(&(channel.len() as u32).to_le_bytes());
    msg.extend_from_slice(channel);
    msg.extend_from_slice(payload);
    cluster.broadcast(&Bytes::from(msg));
}

/// A note carrying keyspace events: then a `u32` length and [`encode_events`]'s bytes.
const NOTE_EVENTS: u8 = 1;
/// A note saying the FUNCTION libraries changed: each node reloads them from its store.
const NOTE_LIBRARIES: u8 = 2;
/// A note saying the database map changed (SWAPDB): each node reloads it from its store.
const NOTE_DB_MAP: u8 = 3;

/// What a write's entry tells every node besides its writes (its notes): its keyspace events,
/// and whether it changed the FUNCTION libraries or the database map, which nodes keep in
/// memory too. A sequence of tagged notes, so that the notes of writes batched into one entry
/// concatenate.
pub(crate) fn encode_notes(events: &[Event], libraries: bool, db_map: bool) -> Bytes {
    let mut out = Vec::new();
    if !events.is_empty() {
        let bytes = encode_events(events);
        out.push(NOTE_EVENTS);
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(&bytes);
    }
    if libraries {
        out.push(NOTE_LIBRARIES);
    }
    if db_map {
        out.push(NOTE_DB_MAP);
    }
    Bytes::from(out)
}

/// The bytes of keyspace events: per event its class (`u32`), database (`u8`), name (a `u8`
/// length, then the name) and key (a `u32` length, then the key).
fn encode_events(events: &[Event]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        out.extend_from_slice(&e.class.to_le_bytes());
        out.push(e.db);
        // (Event names are short literals.)
        let name = &e.name.as_bytes()[..e.name.len().min(255)];
        out.push(name.len() as u8);
        out.extend_from_slice(name);
        out.extend_from_slice(&(e.key.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.key);
    }
    out
}

/// An entry this node applied carried `notes` ([`encode_notes`]): its keyspace events reach
/// this node's subscribers (as its `notify-keyspace-events` selects them), and the libraries
/// or the database map are reloaded from the store if it changed them. Stops at a malformed
/// note.
pub(crate) fn applied(shared: &Shared, mut notes: &[u8]) {
    let (mut libraries, mut db_map) = (false, false);
    while let Some((&tag, rest)) = notes.split_first() {
        notes = rest;
        match tag {
            NOTE_EVENTS => {
                let Some(len) = take(&mut notes, 4).and_then(le32) else {
                    break;
                };
                let Some(events) = take(&mut notes, len as usize) else {
                    break;
                };
                if !shared.pubsub.is_empty() {
                    publish_events(shared, events);
                }
            }
            NOTE_LIBRARIES => libraries = true,
            NOTE_DB_MAP => db_map = true,
            _ => break,
        }
    }
    // The leader staged these changes in memory already, and maybe later ones over them
    // that a reload now would undo; it reloads when it begins a term, or when a proposal of
    // its fails.
    let leads = shared
        .cluster
        .as_ref()
        .is_some_and(|c| matches!(c.role(), crate::cluster::Role::Leader));
    if leads {
        return;
    }
    shared.reload(libraries, db_map);
}

/// Publishes the events encoded in `bytes` (see [`encode_events`]); stops at a malformed one.
fn publish_events(shared: &Shared, mut rest: &[u8]) {
    let mut take = |n: usize| take(&mut rest, n);
    let flags = shared.config.notify_flags();
    let limit = shared.config.pubsub_limit();
    loop {
        let Some(class) = take(4).and_then(le32) else {
            return;
        };
        let (Some(&[db]), Some(&[name_len])) = (take(1), take(1)) else {
            return;
        };
        let Some(name) = take(name_len as usize).map(Bytes::copy_from_slice) else {
            return;
        };
        let Some(len) = take(4).and_then(le32) else {
            return;
        };
        let Some(key) = take(len as usize).map(Bytes::copy_from_slice) else {
            return;
        };
        shared
            .pubsub
            .publish_event(flags, class, &name, db, &key, limit);
    }
}

/// The first `n` bytes of `rest`, which then starts after them; `None` if it is shorter.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
    *rest = tail;
    Some(head)
}

/// A little-endian `u32` from its 4 bytes.
fn le32(b: &[u8]) -> Option<u32> {
    b.try_into().ok().map(u32::from_le_bytes)
}

/// A message from another node: its PUBLISH reaches this node's subscribers. Unknown or
/// malformed messages are ignored (a newer node may send kinds this one does not know).
pub(crate) fn received(shared: &Shared, msg: &[u8]) {
    let Some((&kind, mut rest)) = msg.split_first() else {
        return;
    };
    if kind != PUBLISH {
        return;
    }
    let mut take = |n: usize| take(&mut rest, n);
    let (Some(&[shard]), Some(len)) = (take(1), take(4).and_then(le32)) else {
        return;
    };
    let Some(channel) = take(len as usize) else {
        return;
    };
    let channel = Bytes::copy_from_slice(channel);
    let payload = Bytes::copy_from_slice(rest);
    let limit = shared.config.pubsub_limit();
    shared.pubsub.publish(shard != 0, &channel, &payload, limit);
}
