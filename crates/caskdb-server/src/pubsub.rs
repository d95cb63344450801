//! Pub/sub: which connections listen to which channels, patterns and shard channels, and the
//! delivery of a published message to each of them, with a cap on what a subscriber that does
//! not read may make the server hold.
//!
//! A subscriber's messages wait in an unbounded queue that its connection drains; the bytes
//! waiting are counted, and a subscriber over `client-output-buffer-limit pubsub` (hard, or
//! soft for longer than its seconds) is marked closed: it gets nothing more, and its connection
//! is woken to close it, as Redis does.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::{Notify, mpsc};

use crate::config::OutputLimit as Limit;
use crate::frame::Frame;
use crate::glob;
use crate::notify::{self, Event};

/// The three namespaces a client subscribes in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// SUBSCRIBE / PUBLISH.
    Channel,
    /// PSUBSCRIBE: glob patterns over the channels.
    Pattern,
    /// SSUBSCRIBE / SPUBLISH.
    Shard,
}

/// One message waiting for a subscriber.
pub(crate) enum Message {
    /// To a channel subscriber (`message`) or a shard channel subscriber (`smessage`).
    Direct {
        shard: bool,
        channel: Bytes,
        payload: Bytes,
    },
    /// To a pattern subscriber (`pmessage`).
    Pattern {
        pattern: Bytes,
        channel: Bytes,
        payload: Bytes,
    },
    /// Client-side caching: these keys (`None`: every key) changed. A push `invalidate` in
    /// RESP3; to a RESP2 client a tracking client redirects to, a message of the
    /// `__redis__:invalidate` channel (`as_message`).
    Invalidate {
        keys: Option<Vec<Bytes>>,
        as_message: bool,
    },
    /// Client-side caching: the client a tracking client redirects to is gone.
    RedirectBroken(u64),
}

impl Message {
    /// The push frame the subscriber gets.
    pub fn frame(&self) -> Frame {
        match self {
            Message::Direct {
                shard,
                channel,
                payload,
            } => Frame::Push(vec![
                Frame::Bulk(Bytes::from_static(if *shard {
                    b"smessage"
                } else {
                    b"message"
                })),
                Frame::Bulk(channel.clone()),
                Frame::Bulk(payload.clone()),
            ]),
            Message::Pattern {
                pattern,
                channel,
                payload,
            } => Frame::Push(vec![
                Frame::Bulk(Bytes::from_static(b"pmessage")),
                Frame::Bulk(pattern.clone()),
                Frame::Bulk(channel.clone()),
                Frame::Bulk(payload.clone()),
            ]),
            Message::Invalidate { keys, as_message } => {
                let keys = keys.as_ref().map_or(Frame::Null, |k| {
                    Frame::Array(k.iter().cloned().map(Frame::Bulk).collect())
                });
                if *as_message {
                    Frame::Push(vec![
                        Frame::Bulk(Bytes::from_static(b"message")),
                        Frame::Bulk(Bytes::from_static(b"__redis__:invalidate")),
                        keys,
                    ])
                } else {
                    Frame::Push(vec![Frame::Bulk(Bytes::from_static(b"invalidate")), keys])
                }
            }
            Message::RedirectBroken(id) => Frame::Push(vec![
                Frame::Bulk(Bytes::from_static(b"tracking-redir-broken")),
                Frame::Integer(i64::try_from(*id).unwrap_or(i64::MAX)),
            ]),
        }
    }

    /// What the message costs while it waits: its bytes and a frame's overhead.
    pub fn cost(&self) -> usize {
        match self {
            Message::Direct {
                channel, payload, ..
            } => 48 + channel.len() + payload.len(),
            Message::Pattern {
                pattern,
                channel,
                payload,
            } => 64 + pattern.len() + channel.len() + payload.len(),
            Message::RedirectBroken(_) => 48,
            Message::Invalidate { keys, .. } => {
                48 + keys
                    .as_ref()
                    .map_or(0, |k| k.iter().map(|k| k.len() + 16).sum())
            }
        }
    }
}

/// The sending half of one connection's subscriptions.
pub(crate) struct Subscriber {
    pub id: u64,
    tx: mpsc::UnboundedSender<Message>,
    /// Bytes queued and not yet written to the socket.
    pending: AtomicUsize,
    /// Since when `pending` has been over the soft limit.
    over_soft_since: Mutex<Option<Instant>>,
    /// Over its limit: gets nothing more, and its connection closes.
    closed: AtomicBool,
    /// Wakes the connection when `closed` is raised.
    pub close_signal: Notify,
}

impl Subscriber {
    /// A subscriber for connection `id`, and the queue its connection reads.
    pub fn new(id: u64) -> (Arc<Subscriber>, mpsc::UnboundedReceiver<Message>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let sub = Arc::new(Subscriber {
            id,
            tx,
            pending: AtomicUsize::new(0),
            over_soft_since: Mutex::new(None),
            closed: AtomicBool::new(false),
            close_signal: Notify::new(),
        });
        (sub, rx)
    }

    /// Whether the subscriber went over its output limit.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Bytes its connection has written out (or dropped) of what was queued.
    pub fn written(&self, bytes: usize) {
        self.pending.fetch_sub(bytes, Ordering::AcqRel);
    }

    /// Queues `msg` for the connection, within its output `limit` (over it, the connection
    /// closes, as a subscriber's does).
    pub fn deliver(&self, msg: Message, limit: Limit) {
        if self.is_closed() {
            return;
        }
        let cost = msg.cost();
        let pending = self.pending.fetch_add(cost, Ordering::AcqRel) + cost;
        if limit.broken(pending as u64, &mut self.over_soft_since.lock()) {
            self.pending.fetch_sub(cost, Ordering::AcqRel);
            self.closed.store(true, Ordering::Release);
            self.close_signal.notify_one();
            return;
        }
        if self.tx.send(msg).is_err() {
            // The connection is gone; it unsubscribes on its way out.
            self.pending.fetch_sub(cost, Ordering::AcqRel);
        }
    }
}

#[derive(Default)]
struct Registry {
    /// Subscribers of each name, in the order they subscribed.
    names: [HashMap<Bytes, Vec<Arc<Subscriber>>>; 3],
}

impl Kind {
    /// Its place in arrays kept per kind (the registry's, a session's subscriptions).
    pub fn index(self) -> usize {
        match self {
            Kind::Channel => 0,
            Kind::Pattern => 1,
            Kind::Shard => 2,
        }
    }
}

/// Every subscription of every connection.
#[derive(Default)]
pub(crate) struct PubSub {
    inner: RwLock<Registry>,
}

impl PubSub {
    /// Adds `sub` to `name`'s subscribers in `kind`.
    pub fn subscribe(&self, kind: Kind, name: &Bytes, sub: &Arc<Subscriber>) {
        self.inner.write().names[kind.index()]
            .entry(name.clone())
            .or_default()
            .push(sub.clone());
    }

    /// Removes connection `id` from `name`'s subscribers in `kind`.
    pub fn unsubscribe(&self, kind: Kind, name: &[u8], id: u64) {
        let mut reg = self.inner.write();
        let map = &mut reg.names[kind.index()];
        if let Some(list) = map.get_mut(name) {
            list.retain(|s| s.id != id);
            if list.is_empty() {
                map.remove(name);
            }
        }
    }

    /// What connection `id` subscribed to (a scan of every subscription: for rare callers,
    /// such as ACL SETUSER).
    pub fn subscriptions_of(&self, id: u64) -> Vec<(Kind, Bytes)> {
        let reg = self.inner.read();
        let mut out = Vec::new();
        for kind in [Kind::Channel, Kind::Pattern, Kind::Shard] {
            for (name, subs) in &reg.names[kind.index()] {
                if subs.iter().any(|s| s.id == id) {
                    out.push((kind, name.clone()));
                }
            }
        }
        out
    }

    /// Removes connection `id` from every name it subscribed to (`names` in [`Kind`] order).
    pub fn forget(&self, names: &[std::collections::HashSet<Bytes>; 3], id: u64) {
        for (kind, set) in [Kind::Channel, Kind::Pattern, Kind::Shard]
            .into_iter()
            .zip(names)
        {
            for name in set {
                self.unsubscribe(kind, name, id);
            }
        }
    }

    /// Sends `payload` to the subscribers of `channel` (and, unless `shard`, of the patterns
    /// matching it); returns how many received it.
    pub fn publish(&self, shard: bool, channel: &Bytes, payload: &Bytes, limit: Limit) -> usize {
        let reg = self.inner.read();
        let mut n = 0;
        let direct = if shard { Kind::Shard } else { Kind::Channel };
        if let Some(list) = reg.names[direct.index()].get(channel) {
            for s in list {
                let msg = Message::Direct {
                    shard,
                    channel: channel.clone(),
                    payload: payload.clone(),
                };
                s.deliver(msg, limit);
                n += 1;
            }
        }
        if !shard {
            for (pattern, list) in &reg.names[Kind::Pattern.index()] {
                if !glob::matches(pattern, channel) {
                    continue;
                }
                for s in list {
                    let msg = Message::Pattern {
                        pattern: pattern.clone(),
                        channel: channel.clone(),
                        payload: payload.clone(),
                    };
                    s.deliver(msg, limit);
                    n += 1;
                }
            }
        }
        n
    }

    /// Publishes keyspace events on the channels `flags` selects (`notify.rs`).
    pub fn publish_events(&self, flags: u32, events: &[Event], limit: Limit) {
        if self.is_empty() {
            return;
        }
        for e in events {
            let name = Bytes::from_static(e.name.as_bytes());
            self.publish_event(flags, e.class, &name, e.db, &e.key, limit);
        }
    }

    /// Publishes one keyspace event (class `class`, named `name`, of `key` in database `db`)
    /// if `flags` selects it.
    pub fn publish_event(
        &self,
        flags: u32,
        class: u32,
        name: &Bytes,
        db: u8,
        key: &Bytes,
        limit: Limit,
    ) {
        if !notify::wanted(flags, class) {
            return;
        }
        if flags & notify::KEYSPACE != 0 {
            let ch = notify::keyspace_channel(db, key);
            self.publish(false, &ch, name, limit);
        }
        if flags & notify::KEYEVENT != 0 {
            let ch = notify::keyevent_channel(db, name);
            self.publish(false, &ch, key, limit);
        }
    }

    /// Whether anyone subscribes to anything (keyspace notifications skip their work if not).
    pub fn is_empty(&self) -> bool {
        let reg = self.inner.read();
        reg.names[0].is_empty() && reg.names[1].is_empty()
    }

    /// The names with subscribers in `kind` matching `pattern` (all if `None`).
    pub fn names(&self, kind: Kind, pattern: Option<&[u8]>) -> Vec<Bytes> {
        self.inner.read().names[kind.index()]
            .keys()
            .filter(|n| pattern.is_none_or(|p| glob::matches(p, n)))
            .cloned()
            .collect()
    }

    /// The number of subscribers of `name` in `kind`.
    pub fn count(&self, kind: Kind, name: &[u8]) -> usize {
        self.inner.read().names[kind.index()]
            .get(name)
            .map_or(0, Vec::len)
    }

    /// The number of distinct names in `kind` (PUBSUB NUMPAT counts patterns).
    pub fn len(&self, kind: Kind) -> usize {
        self.inner.read().names[kind.index()].len()
    }
}
