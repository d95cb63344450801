//! Iteration inside a transaction: the database's entries merged with the transaction's own
//! pending writes, from either end, so that [`Transaction`](crate::Transaction) iterates with
//! the same verbs and iterator shapes as [`Db`](crate::Db).

use std::collections::btree_map;
use std::ops::Bound;

use bytes::Bytes;

use crate::error::Result;
use crate::iter::{Iter, Keys, RefIter};
use crate::value_ref::ValueRef;

/// A pending write: `Some((value, expire_at))` (0 = never) or `None` for a deletion.
pub(crate) type Pending = Option<(Bytes, u64)>;

/// The pending writes within an iteration's range (`None`: the range is empty).
pub(crate) type PendingRange<'t> = Option<btree_map::Range<'t, Vec<u8>, Pending>>;

/// Merges stored entries (ascending from the front) with pending writes in the same range.
/// A pending write decides for its key: its value if live, nothing if it is a deletion or has
/// expired. Each end keeps one entry of each source it has looked at; an end whose source ran
/// dry takes what the other end looked at, so the two ends meet without losing or repeating a
/// key.
struct Merge<'t, S, T> {
    stored: S,
    stored_front: Option<Result<(Bytes, T)>>,
    stored_back: Option<Result<(Bytes, T)>>,
    pending: PendingRange<'t>,
    pending_front: Option<(&'t Vec<u8>, &'t Pending)>,
    pending_back: Option<(&'t Vec<u8>, &'t Pending)>,
    now: u64,
    /// What the caller wants of a live pending value.
    pick: fn(&Bytes) -> T,
}

impl<'t, S, T> Merge<'t, S, T>
where
    S: DoubleEndedIterator<Item = Result<(Bytes, T)>>,
{
    fn new(stored: S, pending: PendingRange<'t>, now: u64, pick: fn(&Bytes) -> T) -> Self {
        Merge {
            stored,
            stored_front: None,
            stored_back: None,
            pending,
            pending_front: None,
            pending_back: None,
            now,
            pick,
        }
    }

    /// The next entry from the front (`rev` false) or the back.
    fn step(&mut self, rev: bool) -> Option<Result<(Bytes, T)>> {
        loop {
            let (own_s, other_s, own_p, other_p) = if rev {
                (
                    &mut self.stored_back,
                    &mut self.stored_front,
                    &mut self.pending_back,
                    &mut self.pending_front,
                )
            } else {
                (
                    &mut self.stored_front,
                    &mut self.stored_back,
                    &mut self.pending_front,
                    &mut self.pending_back,
                )
            };
            if own_s.is_none() {
                let next = if rev {
                    self.stored.next_back()
                } else {
                    self.stored.next()
                };
                *own_s = next.or_else(|| other_s.take());
            }
            if own_p.is_none() {
                let next = self
                    .pending
                    .as_mut()
                    .and_then(|p| if rev { p.next_back() } else { p.next() });
                *own_p = next.or_else(|| other_p.take());
            }
            // Which source's entry comes first in this direction (the pending one on a tie,
            // which also drops the stored one).
            let take_pending = match (&*own_s, &*own_p) {
                (None, None) => return None,
                (Some(Err(_)), _) => return own_s.take(),
                (Some(Ok(_)), None) => false,
                (None, Some(_)) => true,
                (Some(Ok((s, _))), Some((p, _))) => {
                    if s.as_ref() == p.as_slice() {
                        *own_s = None;
                        true
                    } else {
                        (p.as_slice() < s.as_ref()) != rev
                    }
                }
            };
            if !take_pending {
                return own_s.take();
            }
            let (key, write) = own_p.take()?;
            if let Some((value, at)) = write
                && (*at == 0 || *at > self.now)
            {
                return Some(Ok((Bytes::copy_from_slice(key), (self.pick)(value))));
            }
        }
    }
}

/// The live `(key, value)` pairs of a range as a transaction sees them, from
/// [`Transaction::iter`](crate::Transaction::iter), [`Transaction::range`](crate::Transaction::range)
/// or [`Transaction::prefix`](crate::Transaction::prefix): ascending, or descending with
/// `.rev()`, and both ends can be mixed.
pub struct TxIter<'t> {
    merge: Merge<'t, Iter, Bytes>,
}

impl<'t> TxIter<'t> {
    pub(crate) fn new(stored: Iter, pending: PendingRange<'t>, now: u64) -> Self {
        TxIter {
            merge: Merge::new(stored, pending, now, Bytes::clone),
        }
    }
}

impl Iterator for TxIter<'_> {
    type Item = Result<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.merge.step(false)
    }
}

impl DoubleEndedIterator for TxIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.merge.step(true)
    }
}

impl std::fmt::Debug for TxIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxIter")
    }
}

/// The live `(key, value)` pairs of a range as a transaction sees them, with values located
/// rather than read, from [`Transaction::range_refs`](crate::Transaction::range_refs).
pub struct TxRefIter<'t> {
    merge: Merge<'t, RefIter, ValueRef>,
}

impl<'t> TxRefIter<'t> {
    pub(crate) fn new(stored: RefIter, pending: PendingRange<'t>, now: u64) -> Self {
        TxRefIter {
            merge: Merge::new(stored, pending, now, |v| ValueRef::from(v.clone())),
        }
    }

    /// How many keys the first step fetches from the index: see
    /// [`RefIter::first_batch`](crate::RefIter::first_batch).
    #[must_use]
    pub fn first_batch(mut self, n: usize) -> Self {
        self.merge.stored = self.merge.stored.first_batch(n);
        self
    }
}

impl Iterator for TxRefIter<'_> {
    type Item = Result<(Bytes, ValueRef)>;

    fn next(&mut self) -> Option<Self::Item> {
        self.merge.step(false)
    }
}

impl DoubleEndedIterator for TxRefIter<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.merge.step(true)
    }
}

impl std::fmt::Debug for TxRefIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxRefIter")
    }
}

/// The live keys of a range as a transaction sees them, without reading values, from
/// [`Transaction::keys`](crate::Transaction::keys) or
/// [`Transaction::range_keys`](crate::Transaction::range_keys).
pub struct TxKeys<'t> {
    merge: Merge<'t, KeyPairs, ()>,
}

/// [`Keys`] as `(key, ())` pairs, to merge like values.
struct KeyPairs(Keys);

impl Iterator for KeyPairs {
    type Item = Result<(Bytes, ())>;

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|r| r.map(|k| (k, ())))
    }
}

impl DoubleEndedIterator for KeyPairs {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.0.next_back().map(|r| r.map(|k| (k, ())))
    }
}

impl<'t> TxKeys<'t> {
    pub(crate) fn new(stored: Keys, pending: PendingRange<'t>, now: u64) -> Self {
        TxKeys {
            merge: Merge::new(KeyPairs(stored), pending, now, |_| ()),
        }
    }
}

impl Iterator for TxKeys<'_> {
    type Item = Result<Bytes>;

    fn next(&mut self) -> Option<Self::Item> {
        self.merge.step(false).map(|r| r.map(|(k, ())| k))
    }
}

impl DoubleEndedIterator for TxKeys<'_> {
    fn next_back(&mut self) -> Option<Self::Item> {
        self.merge.step(true).map(|r| r.map(|(k, ())| k))
    }
}

impl std::fmt::Debug for TxKeys<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TxKeys")
    }
}

/// Whether `(lo, hi)` holds no key at all (`BTreeMap::range` panics on such bounds).
pub(crate) fn is_empty_range(lo: Bound<&[u8]>, hi: Bound<&[u8]>) -> bool {
    match (lo, hi) {
        (Bound::Included(a), Bound::Included(b)) => a > b,
        (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
            a >= b
        }
        _ => false,
    }
}
