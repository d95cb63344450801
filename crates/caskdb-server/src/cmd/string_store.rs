//! Strings at the command's level, whichever way they are stored (whole in their key record,
//! or in chunks: `string_chunks.rs`): a range of one read without reading the rest (STRLEN,
//! GETRANGE, GETBIT, BITCOUNT, BITPOS), and edits in place ([`StringEdit`]: SETBIT, SETRANGE,
//! APPEND, BITFIELD, PFADD…) that write only the chunks they change.
//!
//! An edit that leaves a string longer than `CHUNKED_ABOVE` keeps it in chunks from then on:
//! the first such edit writes it whole once, later ones one chunk per chunk they touch. A
//! command that replaces a string (SET, BITOP, RESTORE…) stores it whole again.

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;

use super::ctx::{Ctx, chunk_read};
use super::reply::{CmdError, wrongtype};
use crate::frame::Frame;
use crate::keyspace::{self, Entry, Type, kind};
use crate::string_chunks::{CHUNK, CHUNKED_ABOVE, Chunked, overlay, stored_form};

impl Ctx<'_, '_> {
    /// The string under `key`: its length and the bytes `pick` asks for given that length
    /// (`from..to`, clamped to it; `None`: none), reading only the chunks they are in. `pick`
    /// may be called twice, the last call's length being the one returned (a write came
    /// between the first read of a string in chunks and the consistent one). `Ok(None)` if
    /// the key is absent; WRONGTYPE for another type.
    pub fn string_range(
        &mut self,
        key: &[u8],
        mut pick: impl FnMut(u64) -> Option<(u64, u64)>,
    ) -> Result<Option<(u64, Bytes)>, CmdError> {
        fn slice(whole: &Bytes, range: Option<(u64, u64)>) -> (u64, Bytes) {
            let len = whole.len() as u64;
            let (from, to) = range.unwrap_or((0, 0));
            let to = to.min(len);
            let from = from.min(to);
            (len, whole.slice(from as usize..to as usize))
        }
        let Some(e) = self.lookup_stored(key)? else {
            return Ok(None);
        };
        if e.ty != Type::String {
            return Err(wrongtype());
        }
        let Some(seen) = Chunked::of(&e) else {
            let range = pick(e.payload.len() as u64);
            return Ok(Some(slice(&e.payload, range)));
        };
        // No bytes wanted (STRLEN): the key record says all.
        let Some(range) = pick(seen.len) else {
            return Ok(Some((seen.len, Bytes::new())));
        };
        let ek = keyspace::engine_key(self.stored(self.conn.db), key);
        self.consistent(|tx| {
            // Read again in this view: a write may have come between.
            let Some(e) = tx.get(&ek)?.and_then(|raw| Entry::decode(raw, None)) else {
                return Ok(None);
            };
            if e.ty != Type::String {
                return Err(wrongtype());
            }
            let Some(c) = Chunked::of(&e) else {
                let range = pick(e.payload.len() as u64);
                return Ok(Some(slice(&e.payload, range)));
            };
            let range = if c.len == seen.len {
                Some(range)
            } else {
                pick(c.len)
            };
            let Some((from, to)) = range else {
                return Ok(Some((c.len, Bytes::new())));
            };
            Ok(Some((c.len, Bytes::from(chunk_read(tx, &c, from, to)?))))
        })
    }

    /// An edit of the string under `key` (an empty one if the key is absent); WRONGTYPE for
    /// another type. Nothing is read but the key record until the edit reads or writes.
    pub fn string_edit(&mut self, key: &[u8]) -> Result<StringEdit, CmdError> {
        let Some(e) = self.lookup_stored(key)? else {
            return Ok(StringEdit {
                existed: false,
                expire_at: None,
                raw: false,
                len: 0,
                body: Body::Whole(Bytes::new()),
                changed: false,
            });
        };
        if e.ty != Type::String {
            return Err(wrongtype());
        }
        let raw = e.is_raw_string();
        Ok(match Chunked::of(&e) {
            Some(c) => StringEdit {
                existed: true,
                expire_at: e.expire_at,
                raw,
                len: c.len,
                body: Body::Chunked {
                    c,
                    loaded: BTreeMap::new(),
                    dirty: BTreeSet::new(),
                    fresh: false,
                },
                changed: false,
            },
            None => StringEdit {
                existed: true,
                expire_at: e.expire_at,
                raw,
                len: e.payload.len() as u64,
                body: Body::Whole(e.payload),
                changed: false,
            },
        })
    }
}

/// A string being changed in place by one command: reads and writes at any offset (past the
/// end it reads zeros and grows), then [`StringEdit::save`]. Runs in the command's transaction.
pub(crate) struct StringEdit {
    existed: bool,
    expire_at: Option<u64>,
    /// Stored in Redis's `raw` encoding already.
    raw: bool,
    len: u64,
    body: Body,
    changed: bool,
}

enum Body {
    /// Whole, as read.
    Whole(Bytes),
    /// Whole, changed.
    Owned(Vec<u8>),
    /// In chunks: the key record as read (`fresh`: made by this edit, nothing stored yet),
    /// the chunks read or written so far, and those to write back.
    Chunked {
        c: Chunked,
        loaded: BTreeMap<u64, Vec<u8>>,
        dirty: BTreeSet<u64>,
        fresh: bool,
    },
}

impl StringEdit {
    /// Whether the key held a string.
    pub fn existed(&self) -> bool {
        self.existed
    }

    /// The string's length now.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Makes [`StringEdit::save`] write even if nothing changed (the command changes the key
    /// as far as WATCH and keyspace events go).
    pub fn mark_changed(&mut self) {
        self.changed = true;
    }

    /// `n` bytes from `at` (zeros past the end).
    pub fn read(&mut self, ctx: &mut Ctx<'_, '_>, at: u64, n: usize) -> Result<Vec<u8>, CmdError> {
        let end = at.saturating_add(n as u64);
        let mut out = vec![0u8; n];
        let len = self.len;
        let copy_from = |out: &mut [u8], whole: &[u8]| {
            if at < len {
                let hi = end.min(len).min(whole.len() as u64);
                if at < hi {
                    out[..(hi - at) as usize].copy_from_slice(&whole[at as usize..hi as usize]);
                }
            }
        };
        match &mut self.body {
            Body::Whole(b) => copy_from(&mut out, b),
            Body::Owned(v) => copy_from(&mut out, v),
            Body::Chunked { c, loaded, .. } => {
                if at >= len || n == 0 {
                    return Ok(out);
                }
                let hi = end.min(len);
                let (first, last) = (at / CHUNK, (hi - 1) / CHUNK);
                if last - first < 2 {
                    // A byte or a field: its chunk (or two), read once in the edit.
                    for i in first..=last {
                        load(c, loaded, ctx, i)?;
                    }
                } else {
                    // What is stored (records past the length as read hold nothing)…
                    let stored = *c;
                    let part =
                        ctx.consistent(|tx| chunk_read(tx, &stored, at, hi.min(stored.len)))?;
                    out[..part.len()].copy_from_slice(&part);
                }
                // …under what this edit read or changed.
                let window = &mut out[..(hi - at) as usize];
                for (&i, chunk) in loaded.range(at / CHUNK..=(hi - 1) / CHUNK) {
                    let start = i * CHUNK;
                    let end = overlay(window, at, chunk, start);
                    // A loaded chunk shorter than its span reads as zeros after its end.
                    let zeros_to = (start + CHUNK).min(hi);
                    if end < zeros_to {
                        window[(end - at) as usize..(zeros_to - at) as usize].fill(0);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The whole string.
    pub fn all(&mut self, ctx: &mut Ctx<'_, '_>) -> Result<Vec<u8>, CmdError> {
        let n = usize::try_from(self.len).map_err(|_| super::reply::string_too_large())?;
        self.read(ctx, 0, n)
    }

    /// Grows the string to `len` bytes with zeros (nothing if it is that long already).
    pub fn grow(&mut self, ctx: &mut Ctx<'_, '_>, len: u64) -> Result<(), CmdError> {
        if len <= self.len {
            return Ok(());
        }
        ctx.check_string_len(len)?;
        if len > CHUNKED_ABOVE {
            // Long now: in chunks before it grows, so that zeros are not made in memory.
            self.keep_in_chunks(ctx);
        }
        self.len = len;
        self.changed = true;
        if let Some(v) = self.owned() {
            v.resize(len as usize, 0);
        }
        Ok(())
    }

    /// Keeps the string in chunks from now on (under a new id), its bytes so far loaded
    /// and to be written (all-zero chunks are not).
    fn keep_in_chunks(&mut self, ctx: &mut Ctx<'_, '_>) {
        let whole = match std::mem::replace(&mut self.body, Body::Whole(Bytes::new())) {
            Body::Whole(b) => b,
            Body::Owned(v) => Bytes::from(v),
            chunked @ Body::Chunked { .. } => {
                self.body = chunked;
                return;
            }
        };
        let whole = &whole[..whole.len().min(self.len as usize)];
        let mut loaded = BTreeMap::new();
        for (i, part) in whole.chunks(CHUNK as usize).enumerate() {
            if stored_form(part).is_some() {
                loaded.insert(i as u64, part.to_vec());
            }
        }
        self.body = Body::Chunked {
            c: Chunked {
                id: ctx.shared.collections.next_id(),
                len: 0,
            },
            dirty: loaded.keys().copied().collect(),
            loaded,
            fresh: true,
        };
    }

    /// Writes `bytes` at `at`, growing the string with zeros up to it if needed.
    pub fn write(&mut self, ctx: &mut Ctx<'_, '_>, at: u64, bytes: &[u8]) -> Result<(), CmdError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let end = at.saturating_add(bytes.len() as u64);
        self.grow(ctx, end)?;
        self.changed = true;
        if let Some(v) = self.owned() {
            v[at as usize..end as usize].copy_from_slice(bytes);
            return Ok(());
        }
        for i in at / CHUNK..=(end - 1) / CHUNK {
            let start = i * CHUNK;
            let lo = start.max(at);
            let hi = (start + CHUNK).min(end);
            let chunk = self.chunk(ctx, i)?;
            if chunk.len() < (hi - start) as usize {
                chunk.resize((hi - start) as usize, 0);
            }
            chunk[(lo - start) as usize..(hi - start) as usize]
                .copy_from_slice(&bytes[(lo - at) as usize..(hi - at) as usize]);
        }
        Ok(())
    }

    /// Makes the string `new`, writing back only the chunks that differ.
    pub fn replace(&mut self, ctx: &mut Ctx<'_, '_>, new: &[u8]) -> Result<(), CmdError> {
        ctx.check_string_len(new.len() as u64)?;
        if !matches!(self.body, Body::Chunked { .. }) {
            let same = match &self.body {
                Body::Whole(b) => b[..] == *new,
                Body::Owned(v) => v[..] == *new,
                Body::Chunked { .. } => false,
            };
            if !same || !self.existed {
                self.body = Body::Owned(new.to_vec());
                self.len = new.len() as u64;
                self.changed = true;
            }
            return Ok(());
        }
        let old = self.all(ctx)?;
        let Body::Chunked { loaded, dirty, .. } = &mut self.body else {
            return Ok(());
        };
        let part = |v: &[u8], i: u64| -> Vec<u8> {
            let lo = (i * CHUNK).min(v.len() as u64) as usize;
            let hi = ((i + 1) * CHUNK).min(v.len() as u64) as usize;
            v[lo..hi].to_vec()
        };
        let chunks = (old.len().max(new.len()) as u64).div_ceil(CHUNK);
        for i in 0..chunks {
            let (was, now) = (part(&old, i), part(new, i));
            if was != now {
                loaded.insert(i, now);
                dirty.insert(i);
                self.changed = true;
            }
        }
        if self.len != new.len() as u64 {
            self.len = new.len() as u64;
            self.changed = true;
        }
        Ok(())
    }

    /// Stores the string as changed (nothing if nothing changed), in Redis's `raw` encoding:
    /// whole if it is short, else in chunks, writing only those the edit changed.
    pub fn save(self, ctx: &mut Ctx<'_, '_>, key: &[u8]) -> Result<(), CmdError> {
        if self.changed {
            self.store(ctx, key, true)
        } else {
            Ok(())
        }
    }

    /// For an edit that changed nothing: stores the string in Redis's `raw` encoding if it is
    /// not in it, as a change of representation only (no WATCH, tracking or keyspace event
    /// hears of it). SETBIT does this, as Redis unshares the string even when no bit changes.
    pub fn save_as_raw(self, ctx: &mut Ctx<'_, '_>, key: &[u8]) -> Result<(), CmdError> {
        if self.raw || !self.existed {
            return Ok(());
        }
        self.store(ctx, key, false)
    }

    fn store(mut self, ctx: &mut Ctx<'_, '_>, key: &[u8], signal: bool) -> Result<(), CmdError> {
        let at = self.expire_at;
        if self.len > CHUNKED_ABOVE {
            self.keep_in_chunks(ctx);
        }
        let len = self.len;
        let whole = match self.body {
            Body::Whole(b) => b,
            Body::Owned(v) => Bytes::from(v),
            Body::Chunked {
                mut c,
                loaded,
                dirty,
                fresh,
            } => {
                c.len = len;
                put_record(ctx, key, c.encode(), at, signal)?;
                if fresh {
                    // The sweeper finds the key through it once the string is gone.
                    let owner = keyspace::owner_value(ctx.stored(ctx.conn.db), key);
                    ctx.tx()?
                        .put(keyspace::member_key(c.id, kind::OWNER, b""), owner)?;
                }
                let tx = ctx.tx()?;
                for i in dirty {
                    let bytes = loaded
                        .get(&i)
                        .map_or(&[][..], |v| &v[..c.span(i).min(v.len())]);
                    match stored_form(bytes) {
                        Some(b) => tx.put(c.key(i), Bytes::copy_from_slice(b))?,
                        None if fresh => {}
                        None => {
                            tx.delete(c.key(i))?;
                        }
                    }
                }
                return Ok(());
            }
        };
        if signal {
            ctx.set_raw_string(key, &whole, at)
        } else {
            ctx.reencode_raw_string(key, &whole, at)
        }
    }

    /// The whole string as a vector to change (`None` if it is in chunks).
    fn owned(&mut self) -> Option<&mut Vec<u8>> {
        if let Body::Whole(b) = &self.body {
            self.body = Body::Owned(b.to_vec());
        }
        match &mut self.body {
            Body::Owned(v) => Some(v),
            _ => None,
        }
    }

    /// Chunk `i`, read if this edit has not yet, marked to be written back.
    fn chunk(&mut self, ctx: &mut Ctx<'_, '_>, i: u64) -> Result<&mut Vec<u8>, CmdError> {
        let Body::Chunked {
            c, loaded, dirty, ..
        } = &mut self.body
        else {
            return Err(Frame::err("internal error: chunk of a whole string").into());
        };
        dirty.insert(i);
        load(c, loaded, ctx, i)
    }
}

/// Chunk `i` of `c` as the edit has it: read from the store the first time.
fn load<'l>(
    c: &Chunked,
    loaded: &'l mut BTreeMap<u64, Vec<u8>>,
    ctx: &mut Ctx<'_, '_>,
    i: u64,
) -> Result<&'l mut Vec<u8>, CmdError> {
    match loaded.entry(i) {
        std::collections::btree_map::Entry::Occupied(e) => Ok(e.into_mut()),
        std::collections::btree_map::Entry::Vacant(e) => {
            let stored = ctx.tx()?.get(c.key(i))?.map(|b| b.to_vec());
            if stored.as_ref().is_some_and(|v| v.len() > c.span(i)) {
                return Err(Frame::err(format!(
                    "corrupt string: chunk {i} of string {} is longer than its part of the \
                     string",
                    c.id
                ))
                .into());
            }
            Ok(e.insert(stored.unwrap_or_default()))
        }
    }
}

/// Writes a string's key record: as a change (WATCH, tracking and events hear of it) or as a
/// change of representation only.
fn put_record(
    ctx: &mut Ctx<'_, '_>,
    key: &[u8],
    raw: Bytes,
    at: Option<u64>,
    signal: bool,
) -> Result<(), CmdError> {
    if signal {
        let db = ctx.conn.db;
        return ctx.put_raw(db, key, raw, at);
    }
    let ek = keyspace::engine_key(ctx.stored(ctx.conn.db), key);
    let tx = ctx.tx()?;
    match at {
        None => tx.put(&ek, raw)?,
        Some(at) => tx.put_expiring_at(&ek, raw, at)?,
    }
    Ok(())
}
