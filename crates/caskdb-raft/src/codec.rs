//! The bytes of what the Raft log and the state machine keep: log ids, votes, entries and
//! memberships, each value starting with a format version (docs/FORMAT.md, "Raft"). Integers
//! are little-endian and fixed-width; byte strings carry a `u32` length. Written by hand
//! rather than through serde, so the disk format does not follow openraft's types.

use std::collections::{BTreeMap, BTreeSet};

use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, StoredMembership, Vote,
};

use bytes::Bytes;

use crate::{Effects, Error, NodeId, Op, TypeConfig};

/// The version byte every encoded value starts with.
pub const FORMAT: u8 = 1;

/// Writes values into a byte buffer.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    /// A buffer starting with the format version.
    pub fn versioned() -> Writer {
        Writer(vec![FORMAT])
    }

    pub fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self, b: &[u8]) {
        // (A key or value is far below 4 GiB: the engine bounds them.)
        self.u32(b.len() as u32);
        self.0.extend_from_slice(b);
    }

    pub fn log_id(&mut self, id: &LogId<NodeId>) {
        self.u64(id.leader_id.term);
        self.u64(id.leader_id.node_id);
        self.u64(id.index);
    }

    /// `0`, or `1` and the log id.
    pub fn opt_log_id(&mut self, id: Option<&LogId<NodeId>>) {
        match id {
            None => self.u8(0),
            Some(id) => {
                self.u8(1);
                self.log_id(id);
            }
        }
    }

    pub fn membership(&mut self, m: &Membership<NodeId, BasicNode>) {
        let configs = m.get_joint_config();
        self.u32(configs.len() as u32);
        for c in configs {
            self.u32(c.len() as u32);
            for id in c {
                self.u64(*id);
            }
        }
        let nodes: Vec<(&NodeId, &BasicNode)> = m.nodes().collect();
        self.u32(nodes.len() as u32);
        for (id, node) in nodes {
            self.u64(*id);
            self.bytes(node.addr.as_bytes());
        }
    }

    pub fn stored_membership(&mut self, m: &StoredMembership<NodeId, BasicNode>) {
        self.opt_log_id(m.log_id().as_ref());
        self.membership(m.membership());
    }
}

/// Reads values back; every read fails cleanly on short or bad input.
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads a value of kind `what` (named in errors), checking its format version.
    pub fn versioned(buf: &'a [u8], what: &'static str) -> Result<Reader<'a>, Error> {
        let mut r = Reader { buf, what };
        let v = r.u8()?;
        if v != FORMAT {
            return Err(Error::Format(format!("{what}: unknown format version {v}")));
        }
        Ok(r)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.buf.len() < n {
            return Err(Error::Format(format!("{}: truncated", self.what)));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }

    pub fn u32(&mut self) -> Result<u32, Error> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(b))
    }

    pub fn u64(&mut self) -> Result<u64, Error> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(b))
    }

    pub fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let n = self.u32()? as usize;
        self.take(n)
    }

    /// A count of items that each take at least `min` bytes: bounded by what is left.
    fn count(&mut self, min: usize) -> Result<usize, Error> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.buf.len() {
            return Err(Error::Format(format!("{}: truncated", self.what)));
        }
        Ok(n)
    }

    pub fn log_id(&mut self) -> Result<LogId<NodeId>, Error> {
        let term = self.u64()?;
        let node_id = self.u64()?;
        let index = self.u64()?;
        Ok(LogId::new(CommittedLeaderId::new(term, node_id), index))
    }

    pub fn opt_log_id(&mut self) -> Result<Option<LogId<NodeId>>, Error> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.log_id()?)),
            t => Err(Error::Format(format!("{}: bad option tag {t}", self.what))),
        }
    }

    pub fn membership(&mut self) -> Result<Membership<NodeId, BasicNode>, Error> {
        let n = self.count(4)?;
        let mut configs = Vec::with_capacity(n);
        for _ in 0..n {
            let m = self.count(8)?;
            let mut c = BTreeSet::new();
            for _ in 0..m {
                c.insert(self.u64()?);
            }
            configs.push(c);
        }
        let n = self.count(12)?;
        let mut nodes = BTreeMap::new();
        for _ in 0..n {
            let id = self.u64()?;
            let addr = String::from_utf8_lossy(self.bytes()?).into_owned();
            nodes.insert(id, BasicNode { addr });
        }
        Ok(Membership::new(configs, nodes))
    }

    pub fn stored_membership(&mut self) -> Result<StoredMembership<NodeId, BasicNode>, Error> {
        let log_id = self.opt_log_id()?;
        Ok(StoredMembership::new(log_id, self.membership()?))
    }

    /// Fails unless every byte was read.
    pub fn end(&self) -> Result<(), Error> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::Format(format!(
                "{}: {} trailing bytes",
                self.what,
                self.buf.len()
            )))
        }
    }
}

const BLANK: u8 = 0;
const NORMAL: u8 = 1;
const MEMBERSHIP: u8 = 2;

/// A log entry: version, log id, payload kind, payload.
pub fn encode_entry(e: &Entry<TypeConfig>) -> Vec<u8> {
    let mut w = Writer::versioned();
    w.log_id(&e.log_id);
    match &e.payload {
        EntryPayload::Blank => w.u8(BLANK),
        EntryPayload::Normal(effects) => {
            w.u8(NORMAL);
            encode_effects(effects, &mut w);
        }
        EntryPayload::Membership(m) => {
            w.u8(MEMBERSHIP);
            w.membership(m);
        }
    }
    w.0
}

/// The entry [`encode_entry`] wrote.
pub fn decode_entry(buf: &[u8]) -> Result<Entry<TypeConfig>, Error> {
    let mut r = Reader::versioned(buf, "raft log entry")?;
    let log_id = r.log_id()?;
    let payload = match r.u8()? {
        BLANK => EntryPayload::Blank,
        NORMAL => EntryPayload::Normal(decode_effects(&mut r)?),
        MEMBERSHIP => EntryPayload::Membership(r.membership()?),
        k => {
            return Err(Error::Format(format!(
                "raft log entry: bad payload kind {k}"
            )));
        }
    };
    r.end()?;
    Ok(Entry { log_id, payload })
}

/// A vote: version, term, node id (the candidate voted for, or the leader), committed.
pub fn encode_vote(v: &Vote<NodeId>) -> Vec<u8> {
    let mut w = Writer::versioned();
    w.u64(v.leader_id.term);
    w.u64(v.leader_id.node_id);
    w.u8(u8::from(v.committed));
    w.0
}

/// The vote [`encode_vote`] wrote.
pub fn decode_vote(buf: &[u8]) -> Result<Vote<NodeId>, Error> {
    let mut r = Reader::versioned(buf, "raft vote")?;
    let term = r.u64()?;
    let node_id = r.u64()?;
    let committed = r.u8()? != 0;
    r.end()?;
    Ok(if committed {
        Vote::new_committed(term, node_id)
    } else {
        Vote::new(term, node_id)
    })
}

/// An optional log id on its own (the purged and committed marks).
pub fn encode_opt_log_id(id: Option<&LogId<NodeId>>) -> Vec<u8> {
    let mut w = Writer::versioned();
    w.opt_log_id(id);
    w.0
}

/// The log id [`encode_opt_log_id`] wrote.
pub fn decode_opt_log_id(buf: &[u8], what: &'static str) -> Result<Option<LogId<NodeId>>, Error> {
    let mut r = Reader::versioned(buf, what)?;
    let id = r.opt_log_id()?;
    r.end()?;
    Ok(id)
}

const PUT: u8 = 1;
const PUT_EXPIRING: u8 = 2;
const DELETE: u8 = 3;

/// Appends the bytes of `effects`: a `u32` count, then per op a tag (1 put, 2 put with
/// an expiry, 3 delete), the key, and for a put the value and (tag 2) the expiry `u64`; then,
/// if there are notes, their bytes (length-prefixed). Effects end their entry.
pub fn encode_effects(effects: &Effects, w: &mut Writer) {
    w.u32(effects.ops.len() as u32);
    for op in &effects.ops {
        match op {
            Op::Put {
                key,
                value,
                expire_at: None,
            } => {
                w.u8(PUT);
                w.bytes(key);
                w.bytes(value);
            }
            Op::Put {
                key,
                value,
                expire_at: Some(at),
            } => {
                w.u8(PUT_EXPIRING);
                w.bytes(key);
                w.bytes(value);
                w.u64(*at);
            }
            Op::Delete { key } => {
                w.u8(DELETE);
                w.bytes(key);
            }
        }
    }
    if !effects.notes.is_empty() {
        w.bytes(&effects.notes);
    }
}

/// The effects [`encode_effects`] wrote.
pub fn decode_effects(r: &mut Reader<'_>) -> Result<Effects, Error> {
    let n = r.u32()? as usize;
    // (Each op takes at least 5 bytes: never trust a count beyond what is there.)
    let mut ops = Vec::with_capacity(n.min(1 << 16));
    for _ in 0..n {
        let tag = r.u8()?;
        let key = Bytes::copy_from_slice(r.bytes()?);
        ops.push(match tag {
            PUT | PUT_EXPIRING => {
                let value = Bytes::copy_from_slice(r.bytes()?);
                let expire_at = if tag == PUT_EXPIRING {
                    Some(r.u64()?)
                } else {
                    None
                };
                Op::Put {
                    key,
                    value,
                    expire_at,
                }
            }
            DELETE => Op::Delete { key },
            t => return Err(Error::Format(format!("raft effects: bad op tag {t}"))),
        });
    }
    // The notes follow the ops when there are any (entries written before they existed end
    // with the ops).
    let notes = if r.buf.is_empty() {
        Bytes::new()
    } else {
        Bytes::copy_from_slice(r.bytes()?)
    };
    Ok(Effects { ops, notes })
}
