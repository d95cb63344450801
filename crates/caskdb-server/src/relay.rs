//! In a replicated group, what one node's pub/sub sends to the others' subscribers: a PUBLISH
//! (or SPUBLISH) sent to any node, and the keyspace events of the writes it made, go to every
//! other node as bus messages (`Cluster::broadcast`; Redis Cluster's bus does the same for
//! PUBLISH), where [`received`] publishes them. Best effort: a node that is down misses them.
//! The bytes are in docs/FORMAT.md ("The bus").

use bytes::Bytes;

use crate::notify::Event;
use crate::state::Shared;

/// A message carrying a PUBLISH: then the shard flag (0 or 1), the channel's length (`u32`,
/// little-endian), the channel, the payload.
const PUBLISH: u8 = 1;
/// A message carrying keyspace events: per event its class (`u32`), database (`u8`), name (a
/// `u8` length, then the name) and key (a `u32` length, then the key), until the message ends.
const EVENTS: u8 = 2;

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

/// Sends the keyspace events of a write this node made to the group's other nodes; each
/// publishes those its own `notify-keyspace-events` selects.
pub(crate) fn events(shared: &Shared, events: &[Event]) {
    let Some(cluster) = &shared.cluster else {
        return;
    };
    if events.is_empty() {
        return;
    }
    let mut msg = vec![EVENTS];
    for e in events {
        msg.extend_from_slice(&e.class.to_le_bytes());
        msg.push(e.db);
        // (Event names are short literals.)
        let name = &e.name.as_bytes()[..e.name.len().min(255)];
        msg.push(name.len() as u8);
        msg.extend_from_slice(name);
        msg.extend_from_slice(&(e.key.len() as u32).to_le_bytes());
        msg.extend_from_slice(&e.key);
    }
    cluster.broadcast(&Bytes::from(msg));
}

/// A little-endian `u32` from its 4 bytes.
fn le32(b: &[u8]) -> Option<u32> {
    b.try_into().ok().map(u32::from_le_bytes)
}

/// A message from another node: its PUBLISH, or its write's keyspace events, reach this
/// node's subscribers. Unknown or malformed messages are ignored (a newer node may send kinds
/// this one does not know).
pub(crate) fn received(shared: &Shared, msg: &[u8]) {
    let Some((&kind, mut rest)) = msg.split_first() else {
        return;
    };
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = (rest.get(..n)?, rest.get(n..)?);
        rest = tail;
        Some(head)
    };
    let limit = shared.config.pubsub_limit();
    match kind {
        PUBLISH => {
            let (Some(&[shard]), Some(len)) = (take(1), take(4).and_then(le32)) else {
                return;
            };
            let Some(channel) = take(len as usize) else {
                return;
            };
            let channel = Bytes::copy_from_slice(channel);
            let payload = Bytes::copy_from_slice(rest);
            shared.pubsub.publish(shard != 0, &channel, &payload, limit);
        }
        EVENTS => {
            if shared.pubsub.is_empty() {
                return;
            }
            let flags = shared.config.notify_flags();
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
        _ => {}
    }
}
