//! Collections on the engine: reading and writing a hash, list, set or sorted set's metadata and
//! members from a command (see `keyspace.rs` for the layout), and the commands that work alike
//! on several types (HLEN/LLEN/SCARD/ZCARD, HEXISTS/SISMEMBER, HDEL/SREM).
//!
//! Every member read goes through the command's engine transaction, so a command sees one state
//! of the collection, and its writes (members and metadata) land as one atomic record.

use std::ops::Bound;

use bytes::Bytes;
use caskdb::ValueRef;

use super::ctx::{Ctx, STREAM_ABOVE};
use super::reply::{CmdError, CmdResult, key_too_large, wrongtype};
use crate::frame::Frame;
use crate::keyspace::{self, Meta, Type, kind};
use crate::string_chunks::Chunked;

impl Ctx<'_, '_> {
    /// The collection of type `ty` under `key`: `None` if there is none, WRONGTYPE if the key
    /// holds another type.
    pub fn coll(&mut self, key: &[u8], ty: Type) -> Result<Option<Meta>, CmdError> {
        let Some(entry) = self.lookup_stored(key)? else {
            return Ok(None);
        };
        if entry.ty != ty {
            return Err(wrongtype());
        }
        Meta::decode(&entry)
            .map(Some)
            .ok_or_else(|| Frame::err("corrupt collection metadata").into())
    }

    /// The collection of type `ty` under `key`, or a new empty one (saved by [`Ctx::save`] once
    /// it has members).
    pub fn coll_or_new(&mut self, key: &[u8], ty: Type) -> Result<Meta, CmdError> {
        Ok(match self.coll(key, ty)? {
            Some(m) => m,
            None => self.new_coll(ty),
        })
    }

    /// A new, empty collection with a fresh id.
    pub fn new_coll(&mut self, ty: Type) -> Meta {
        Meta {
            ty,
            id: self.shared.collections.next_id(),
            len: 0,
            head: keyspace::LIST_START,
            expire_at: None,
            fresh: true,
            converted: false,
        }
    }

    /// HLEN, LLEN, SCARD, ZCARD: the size of the collection of type `ty` under `args[1]` (0 if
    /// there is none).
    pub fn coll_len(&mut self, args: &[Bytes], ty: Type) -> CmdResult {
        let m = self.coll(&args[1], ty)?;
        Ok(Frame::Integer(m.map_or(0, |m| m.len as i64)))
    }

    /// HEXISTS, SISMEMBER: whether `args[2]` is in the hash or set of type `ty` under `args[1]`.
    pub fn coll_contains(&mut self, args: &[Bytes], ty: Type) -> CmdResult {
        let found = match self.coll(&args[1], ty)? {
            Some(m) => self.has_member(&m, kind::MEMBER, &args[2])?,
            None => false,
        };
        Ok(Frame::Integer(i64::from(found)))
    }

    /// HDEL, SREM: deletes `args[2..]` from the hash or set of type `ty` under `args[1]`;
    /// replies with how many were there.
    pub fn coll_remove(&mut self, args: &[Bytes], ty: Type) -> CmdResult {
        let key = &args[1];
        let Some(before) = self.coll(key, ty)? else {
            return Ok(Frame::Integer(0));
        };
        let mut m = before.clone();
        let mut removed = 0;
        for member in &args[2..] {
            if self.del_member(&m, kind::MEMBER, member)? {
                m.len -= 1;
                removed += 1;
            }
        }
        self.save(key, &m, &before)?;
        Ok(Frame::Integer(removed))
    }

    /// Writes `m` back as the collection under `key` in the selected database: its metadata
    /// (and, for a new one, its owner record), or deletes it once it is empty. The caller has
    /// written or deleted the members already. `before` is the metadata as read, so an
    /// unchanged size does not rewrite it.
    pub fn save(&mut self, key: &[u8], m: &Meta, before: &Meta) -> Result<(), CmdError> {
        let db = self.conn.db;
        self.save_in(db, key, m, before)
    }

    /// [`Ctx::save`] in database `db`.
    pub fn save_in(&mut self, db: u8, key: &[u8], m: &Meta, before: &Meta) -> Result<(), CmdError> {
        // Past the compact encoding's limits now: marked for good, as Redis converts for good.
        let grown;
        let m = if !m.converted
            && m.len > 0
            && (std::mem::take(&mut self.breaks_compact)
                || m.len > self.shared.config.compact_max_len(m.ty))
        {
            grown = Meta {
                converted: true,
                ..m.clone()
            };
            &grown
        } else {
            m
        };
        let owner = keyspace::member_key(m.id, kind::OWNER, b"");
        if m.len == 0 {
            if !m.fresh {
                self.remove_in(db, key)?;
                self.tx()?.delete(&owner)?;
            }
            return Ok(());
        }
        if m.fresh {
            if key.len() > keyspace::MAX_KEY_LEN {
                return Err(key_too_large(key.len()).into());
            }
            let value = keyspace::owner_value(self.stored(db), key);
            self.tx()?.put(&owner, value)?;
        } else if m.len == before.len && m.head == before.head && m.converted == before.converted {
            // The metadata did not change. If members did, WATCH still sees the change; a
            // command that changed nothing (SADD of a member already there…) touches nothing.
            if self.member_writes > 0 {
                self.shared.watches.touch(db, key);
                self.invalidate(key);
                self.touched(db, key, false)?;
            }
            return Ok(());
        }
        self.put_raw(db, key, m.encode(), m.expire_at)
    }

    /// The value of member `rest` of `kind` in `m`.
    pub fn member(&mut self, m: &Meta, kind: u8, rest: &[u8]) -> Result<Option<Bytes>, CmdError> {
        let k = keyspace::member_key(m.id, kind, rest);
        Ok(self.tx()?.get(&k)?)
    }

    /// The value of member `rest` of `kind` in `m` as a reply (a large one left in its file,
    /// [`Frame::Stored`]), or nil.
    pub fn member_reply(&mut self, m: &Meta, kind: u8, rest: &[u8]) -> CmdResult {
        let k = keyspace::member_key(m.id, kind, rest);
        Ok(self
            .tx()?
            .get_ref(&k, STREAM_ABOVE)?
            .map_or(Frame::Null, Frame::value))
    }

    /// Whether member `rest` of `kind` exists in `m`. Reads no value.
    pub fn has_member(&mut self, m: &Meta, kind: u8, rest: &[u8]) -> Result<bool, CmdError> {
        let k = keyspace::member_key(m.id, kind, rest);
        Ok(self.tx()?.contains_key(&k)?)
    }

    /// Stores member `rest` of `kind` in `m`.
    pub fn put_member(
        &mut self,
        m: &Meta,
        kind: u8,
        rest: &[u8],
        value: impl Into<Bytes>,
    ) -> Result<(), CmdError> {
        let value = value.into();
        self.check_string_len(value.len() as u64)?;
        // Score-index entries carry 8 bytes of score before the member.
        let member_len = rest
            .len()
            .saturating_sub(if kind == kind::SCORE { 8 } else { 0 });
        if member_len > keyspace::MAX_KEY_LEN {
            return Err(Frame::err(format!(
                "member is too large ({member_len} bytes; the limit is {} bytes)",
                keyspace::MAX_KEY_LEN
            ))
            .into());
        }
        if kind == kind::MEMBER
            && !m.converted
            && self.shared.config.breaks_compact(m.ty, rest, &value)
        {
            self.breaks_compact = true;
        }
        let k = keyspace::member_key(m.id, kind, rest);
        self.tx()?.put(&k, value)?;
        self.member_writes += 1;
        Ok(())
    }

    /// Deletes member `rest` of `kind` from `m`; returns whether it existed.
    pub fn del_member(&mut self, m: &Meta, kind: u8, rest: &[u8]) -> Result<bool, CmdError> {
        let k = keyspace::member_key(m.id, kind, rest);
        let existed = self.tx()?.delete(&k)?;
        self.member_writes += u32::from(existed);
        Ok(existed)
    }

    /// Deletes member `rest` of `kind` from `m`, known to exist (its own record or its index
    /// entry was read in this transaction): no lookup (see `Transaction::delete_live`).
    pub fn del_live_member(&mut self, m: &Meta, kind: u8, rest: &[u8]) -> Result<(), CmdError> {
        let k = keyspace::member_key(m.id, kind, rest);
        self.tx()?.delete_live(&k)?;
        self.member_writes += 1;
        Ok(())
    }

    /// Up to `limit` members of `kind` in `m` between `lo` and `hi` (bounds on the part after
    /// the prefix), ascending or descending: `(rest, value)` pairs.
    pub fn members(
        &mut self,
        m: &Meta,
        kind: u8,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        limit: usize,
        reverse: bool,
    ) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
        let refs = self.member_refs(m, kind, lo, hi, limit, reverse, usize::MAX)?;
        let mut out = Vec::with_capacity(refs.len());
        for (k, v) in refs {
            out.push((k, v.into_bytes()?));
        }
        Ok(out)
    }

    /// [`Ctx::members`] with values in records over `inline` bytes left in their files.
    #[allow(clippy::too_many_arguments)] // members' arguments, and how to read values
    pub fn member_refs(
        &mut self,
        m: &Meta,
        kind: u8,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        limit: usize,
        reverse: bool,
        inline: usize,
    ) -> Result<Vec<(Bytes, ValueRef)>, CmdError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let prefix = keyspace::member_prefix(m.id, kind);
        let full = |b: Bound<&[u8]>| -> Bound<Vec<u8>> {
            b.map(|r| {
                let mut k = prefix.to_vec();
                k.extend_from_slice(r);
                k
            })
        };
        let lo = match lo {
            Bound::Unbounded => Bound::Included(prefix.to_vec()),
            b => full(b),
        };
        let hi = match hi {
            Bound::Unbounded => {
                // Just past every key of this kind: the kind byte + 1.
                let mut end = prefix.to_vec();
                end[keyspace::MEMBER_PREFIX_LEN - 1] += 1;
                Bound::Excluded(end)
            }
            b => full(b),
        };
        let tx = self.tx()?;
        // (A pop of one member needs one key, not the default first batch of 16.)
        let range = tx.range_refs((lo, hi), inline).first_batch(limit);
        let pairs: Box<dyn Iterator<Item = _>> = if reverse {
            Box::new(range.rev())
        } else {
            Box::new(range)
        };
        let mut out = Vec::new();
        for pair in pairs.take(limit) {
            let (mut k, v) = pair?;
            // (Advanced, not sliced: no shared header allocated for the key.)
            bytes::Buf::advance(&mut k, keyspace::MEMBER_PREFIX_LEN);
            out.push((k, v));
        }
        Ok(out)
    }

    /// Every member of `kind` in `m`, in order.
    pub fn all_members(&mut self, m: &Meta, kind: u8) -> Result<Vec<(Bytes, Bytes)>, CmdError> {
        self.members(
            m,
            kind,
            Bound::Unbounded,
            Bound::Unbounded,
            usize::MAX,
            false,
        )
    }

    /// After RENAME or MOVE: if `entry` is a collection, records that `key` in `db` now holds it.
    pub fn set_owner(
        &mut self,
        entry: &keyspace::Entry,
        db: u8,
        key: &[u8],
    ) -> Result<(), CmdError> {
        let id = Meta::decode(entry)
            .map(|m| m.id)
            .or_else(|| Chunked::of(entry).map(|c| c.id));
        if let Some(id) = id {
            let owner = keyspace::member_key(id, kind::OWNER, b"");
            let value = keyspace::owner_value(self.stored(db), key);
            self.tx()?.put(&owner, value)?;
        }
        Ok(())
    }

    /// COPY of a string kept in chunks (`entry`, holding `c`): its chunks under a new id,
    /// then its key record, with the same expiry, under `key` in `db`.
    pub fn copy_chunked(
        &mut self,
        c: Chunked,
        entry: &keyspace::Entry,
        db: u8,
        key: &[u8],
    ) -> Result<(), CmdError> {
        let copy = Chunked {
            id: self.shared.collections.next_id(),
            len: c.len,
        };
        let lo = keyspace::member_prefix(c.id, kind::MEMBER);
        let mut hi = lo;
        hi[keyspace::MEMBER_PREFIX_LEN - 1] += 1;
        let chunks = self
            .tx()?
            .range(lo.to_vec()..hi.to_vec())
            .collect::<caskdb::Result<Vec<_>>>()?;
        self.put_raw(db, key, copy.encode(), entry.expire_at)?;
        let owner = keyspace::owner_value(self.stored(db), key);
        let tx = self.tx()?;
        tx.put(keyspace::member_key(copy.id, kind::OWNER, b""), owner)?;
        for (k, v) in chunks {
            let mut k = k.to_vec();
            k[..keyspace::MEMBER_PREFIX_LEN]
                .copy_from_slice(&keyspace::member_prefix(copy.id, kind::MEMBER));
            tx.put(k, v)?;
        }
        Ok(())
    }

    /// COPY of a collection (`entry`, whose metadata is `m`): every record under a new id
    /// (a stream's groups, consumers and pending entries too), then its metadata, with the
    /// same expiry, under `key` in `db`.
    pub fn copy_collection(
        &mut self,
        m: &Meta,
        entry: &keyspace::Entry,
        db: u8,
        key: &[u8],
    ) -> Result<(), CmdError> {
        let mut copy = self.new_coll(m.ty);
        let before = copy.clone();
        for k in [
            kind::MEMBER,
            kind::SCORE,
            kind::GROUP,
            kind::CONSUMER,
            kind::PENDING,
            kind::CONSUMER_PENDING,
        ] {
            for (rest, value) in self.all_members(m, k)? {
                self.put_member(&copy, k, &rest, value)?;
            }
        }
        copy.len = m.len;
        copy.head = m.head;
        copy.expire_at = m.expire_at;
        if m.ty == Type::Stream {
            // The stream's own state follows its id: the stored form with the new id.
            let mut raw = entry.raw.to_vec();
            raw[1..9].copy_from_slice(&copy.id.to_be_bytes());
            let owner = keyspace::member_key(copy.id, kind::OWNER, b"");
            let value = keyspace::owner_value(self.stored(db), key);
            self.tx()?.put(&owner, value)?;
            return self.put_raw(db, key, Bytes::from(raw), m.expire_at);
        }
        self.save_in(db, key, &copy, &before)
    }
}
