//! Ordered iteration over a live database.
//!
//! An iterator holds no lock and no snapshot. It walks the index in key order, fetching keys
//! in batches (16 at first, or what `RefIter::first_batch` asks, doubling up to [`BATCH`], so a
//! short range scan fetches little; from either end: iterators are double-ended), and reads
//! each value when it returns that key.
//! If nothing in the index changed since the batch was fetched, it reads the value where the
//! batch said it was; otherwise it looks the key up again. So, for changes made while an
//! iterator is open:
//! - every key is returned at most once, in order, and with its value as of the moment it is
//!   returned;
//! - a key deleted (or expired) before the iterator returns it is skipped, never an error;
//! - a key inserted into the part of the range the iterator has not fetched yet is returned;
//!   one inserted behind the iterator's position (or into a fetched batch) is not;
//! - a merge moving values meanwhile changes nothing of the above.
//!
//! Iterating a million keys holds at most one batch of keys in memory.

use std::collections::VecDeque;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use bytes::Bytes;

use crate::db::Db;
use crate::error::Result;
use crate::keydir::{KeyBuf, Loc};
use crate::log::file::DataFile;
use crate::value_ref::ValueRef;

/// Most keys fetched from the index per step.
pub(crate) const BATCH: usize = 256;

/// Keys fetched by an iterator's first step.
const FIRST_BATCH: usize = 16;

/// A fetched key, where it was, and the index's epoch before it was fetched.
type Fetched = (KeyBuf, Loc, u64);

/// The part of the key space an iterator still has to fetch, and what it fetched.
#[derive(Debug)]
struct Cursor {
    db: Db,
    /// Unfetched keys lie strictly between these bounds.
    lo: Bound<KeyBuf>,
    hi: Bound<KeyBuf>,
    /// Fetched from the front, ascending; fetched from the back, descending.
    front: VecDeque<Fetched>,
    back: VecDeque<Fetched>,
    /// Keys to fetch at the next step.
    batch: usize,
    /// Set after the database reported it is closed: the error is returned once.
    failed: bool,
    /// The file the last value was read from, and the index's epoch when it was looked up:
    /// the next value is most often in it too, and a file-table lookup per value was a tenth
    /// of a range read. Kept only while the index does not change (ids are never reused, so
    /// a location's file id then names this very file), so that the handle does not outlive
    /// a rotation or a merge by more than the next write.
    file: Option<(u64, Arc<DataFile>)>,
}

fn as_slice(b: &Bound<KeyBuf>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

impl Cursor {
    fn new(db: Db, lo: Bound<KeyBuf>, hi: Bound<KeyBuf>) -> Self {
        Cursor {
            db,
            lo,
            hi,
            front: VecDeque::new(),
            back: VecDeque::new(),
            batch: FIRST_BATCH,
            failed: false,
            file: None,
        }
    }

    /// The next key from the front (`rev` = false) or the back, fetching when needed. Keys
    /// fetched by the other end are used last, when nothing is left unfetched in between.
    fn next_key(&mut self, rev: bool) -> Option<Result<Fetched>> {
        if self.failed {
            return None;
        }
        if let Err(e) = self.db.inner.core.check_open() {
            self.failed = true;
            return Some(Err(e));
        }
        let own = if rev { &mut self.back } else { &mut self.front };
        if let Some(k) = own.pop_front() {
            return Some(Ok(k));
        }
        let keydir = &self.db.inner.core.keydir;
        let epoch = keydir.epoch();
        let chunk = keydir.chunk(as_slice(&self.lo), as_slice(&self.hi), self.batch, rev);
        self.batch = (self.batch * 2).min(BATCH);
        if let Some(last) = chunk.last().map(|(k, _)| k.clone()) {
            let fetched = chunk.into_iter().map(|(k, l)| (k, l, epoch));
            if rev {
                self.hi = Bound::Excluded(last);
                self.back.extend(fetched);
                return self.back.pop_front().map(Ok);
            }
            self.lo = Bound::Excluded(last);
            self.front.extend(fetched);
            return self.front.pop_front().map(Ok);
        }
        // Nothing unfetched remains: finish with what the other end fetched. The key taken is
        // now this end's position, so the unfetched range closes behind it: a key inserted
        // past it later would come after a key the other end has already returned.
        let other = if rev { &mut self.front } else { &mut self.back };
        let taken = other.pop_back()?;
        if rev {
            self.hi = Bound::Excluded(taken.0.clone());
        } else {
            self.lo = Bound::Excluded(taken.0.clone());
        }
        Some(Ok(taken))
    }

    /// The next live entry: the key and its current value, skipping keys gone meanwhile.
    fn next_entry(&mut self, rev: bool) -> Option<Result<(Bytes, Bytes)>> {
        self.next_read(rev, |f, loc, key| f.read_value(loc, key))
    }

    /// [`Cursor::next_entry`] reading the value with `read`, given its file and place.
    fn next_read<T>(
        &mut self,
        rev: bool,
        read: impl Fn(&Arc<DataFile>, Loc, &[u8]) -> Result<T>,
    ) -> Option<Result<(Bytes, T)>> {
        loop {
            let (key, loc, epoch) = match self.next_key(rev)? {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            let core = &self.db.inner.core;
            if core.keydir.epoch() == epoch {
                // Nothing changed since the fetch: `loc` is still the key's entry.
                if core.expired(&loc) {
                    continue;
                }
                if self
                    .file
                    .as_ref()
                    .is_none_or(|(at, f)| *at != epoch || f.id != loc.file_id)
                {
                    self.file = core.log.files.get(loc.file_id).map(|f| (epoch, f));
                }
                match self.file.as_ref().map(|(_, f)| read(f, loc, &key)) {
                    Some(Ok(value)) => return Some(Ok((Bytes::copy_from_slice(&key), value))),
                    Some(Err(e)) => return Some(Err(e)),
                    None => {} // its file went away meanwhile: look the key up
                }
            }
            match self.db.read_live_with(&key, |f, loc| read(f, loc, &key)) {
                Ok(Some((_, value))) => return Some(Ok((Bytes::copy_from_slice(&key), value))),
                Ok(None) => continue, // deleted or expired since it was fetched
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// The next live key, without reading its value.
    fn next_live_key(&mut self, rev: bool) -> Option<Result<Bytes>> {
        loop {
            let (key, loc, epoch) = match self.next_key(rev)? {
                Ok(k) => k,
                Err(e) => return Some(Err(e)),
            };
            let core = &self.db.inner.core;
            let current = if core.keydir.epoch() == epoch {
                Some(loc)
            } else {
                core.keydir.get(&key)
            };
            if current.is_some_and(|l| !core.expired(&l)) {
                return Some(Ok(Bytes::copy_from_slice(&key)));
            }
        }
    }
}

/// An iterator over `(key, value)` pairs in key order (or reverse order, from the back), from
/// [`Db::iter`], [`Db::range`] or [`Db::prefix`]. See the module documentation for what it
/// sees of writes and merges made while it is open.
#[derive(Debug)]
pub struct Iter {
    cursor: Cursor,
}

impl Iterator for Iter {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next_entry(false)
    }
}

impl DoubleEndedIterator for Iter {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.cursor.next_entry(true)
    }
}

/// An iterator over `(key, value)` pairs like [`Iter`], whose values are located rather than
/// read (see [`Db::get_ref`]), from [`Db::range_refs`].
#[derive(Debug)]
pub struct RefIter {
    cursor: Cursor,
    inline: usize,
}

impl RefIter {
    /// Sets how many keys the first step fetches from the index (default 16, at most 256),
    /// for a caller that knows how many it will take: a pop of one member fetches one key, a
    /// read of 100 fetches 100 in one step. Only the first step, so call it before iterating.
    #[must_use]
    pub fn first_batch(mut self, n: usize) -> Self {
        self.cursor.batch = n.clamp(1, BATCH);
        self
    }
}

impl Iterator for RefIter {
    type Item = Result<(Bytes, ValueRef)>;

    fn next(&mut self) -> Option<Self::Item> {
        let inline = self.inline;
        self.cursor
            .next_read(false, |f, loc, key| ValueRef::locate(f, loc, key, inline))
    }
}

impl DoubleEndedIterator for RefIter {
    fn next_back(&mut self) -> Option<Self::Item> {
        let inline = self.inline;
        self.cursor
            .next_read(true, |f, loc, key| ValueRef::locate(f, loc, key, inline))
    }
}

/// An iterator over the keys in key order, from [`Db::keys`]: like [`Iter`] without reading
/// values.
#[derive(Debug)]
pub struct Keys {
    cursor: Cursor,
}

impl Iterator for Keys {
    type Item = Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        self.cursor.next_live_key(false)
    }
}

impl DoubleEndedIterator for Keys {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.cursor.next_live_key(true)
    }
}

fn owned(b: Bound<&[u8]>) -> Bound<KeyBuf> {
    match b {
        Bound::Included(k) => Bound::Included(KeyBuf::from_slice(k)),
        Bound::Excluded(k) => Bound::Excluded(KeyBuf::from_slice(k)),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// The smallest key greater than every key starting with `prefix`, if there is one.
fn prefix_end(prefix: &[u8]) -> Option<KeyBuf> {
    let mut end = KeyBuf::from_slice(prefix);
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// The bounds of the keys that start with `prefix`.
pub(crate) fn prefix_bounds(prefix: &[u8]) -> (Bound<KeyBuf>, Bound<KeyBuf>) {
    let hi = prefix_end(prefix).map_or(Bound::Unbounded, Bound::Excluded);
    (Bound::Included(KeyBuf::from_slice(prefix)), hi)
}

impl Db {
    /// Every live `(key, value)` in key order; `.rev()` for descending order.
    pub fn iter(&self) -> Iter {
        Iter {
            cursor: Cursor::new(self.clone(), Bound::Unbounded, Bound::Unbounded),
        }
    }

    /// The live `(key, value)` pairs whose keys lie in `range`, in key order, e.g.
    /// `db.range("a".."n")` or `db.range::<&str, _>(..)`.
    pub fn range<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Iter {
        let lo = owned(range.start_bound().map(|k| k.as_ref()));
        let hi = owned(range.end_bound().map(|k| k.as_ref()));
        Iter {
            cursor: Cursor::new(self.clone(), lo, hi),
        }
    }

    /// [`Db::range`] with values located, not read: records of at most `inline` bytes are read,
    /// larger ones are checked and left in their files (see [`Db::get_ref`]).
    pub fn range_refs<K: AsRef<[u8]>, R: RangeBounds<K>>(
        &self,
        range: R,
        inline: usize,
    ) -> RefIter {
        let lo = owned(range.start_bound().map(|k| k.as_ref()));
        let hi = owned(range.end_bound().map(|k| k.as_ref()));
        RefIter {
            cursor: Cursor::new(self.clone(), lo, hi),
            inline,
        }
    }

    /// The live `(key, value)` pairs whose keys start with `prefix`, in key order.
    pub fn prefix(&self, prefix: impl AsRef<[u8]>) -> Iter {
        let (lo, hi) = prefix_bounds(prefix.as_ref());
        Iter {
            cursor: Cursor::new(self.clone(), lo, hi),
        }
    }

    /// The live keys within `range`, in key order, without reading values (see [`Keys`] for
    /// what it sees of concurrent writes).
    pub fn range_keys<K: AsRef<[u8]>, R: RangeBounds<K>>(&self, range: R) -> Keys {
        let lo = owned(range.start_bound().map(|k| k.as_ref()));
        let hi = owned(range.end_bound().map(|k| k.as_ref()));
        Keys {
            cursor: Cursor::new(self.clone(), lo, hi),
        }
    }

    /// Every live key in key order, without reading values.
    pub fn keys(&self) -> Keys {
        Keys {
            cursor: Cursor::new(self.clone(), Bound::Unbounded, Bound::Unbounded),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_carries_over_0xff() {
        assert_eq!(prefix_end(b"ab").unwrap().as_slice(), b"ac");
        assert_eq!(prefix_end(b"a\xff").unwrap().as_slice(), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }
}
