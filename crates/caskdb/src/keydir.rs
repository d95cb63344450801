//! The in-memory ordered index: key → where its latest record lives (and when it expires).

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::ops::Bound;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::RwLock;
use smallvec::SmallVec;

/// Where a live record is: file, byte offset of the record, its whole length, and its expiry
/// (milliseconds since the Unix epoch; 0 = never).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loc {
    /// The data file.
    pub file_id: u32,
    /// The record's length, header included.
    pub len: u32,
    /// Where the record starts in its file.
    pub offset: u64,
    /// Milliseconds since the Unix epoch at which the value expires; 0 = never.
    pub expire_at: u64,
}

impl Loc {
    /// Whether the record has expired at `now_ms`.
    pub fn expired(&self, now_ms: u64) -> bool {
        self.expire_at != 0 && self.expire_at <= now_ms
    }

    /// When the record expires (ms since the epoch), if ever.
    pub fn expiry(&self) -> Option<u64> {
        (self.expire_at != 0).then_some(self.expire_at)
    }
}

/// A key as stored in the index: keys up to 24 bytes live inside the tree node, so comparing
/// them during a lookup does not chase a pointer (measured: a lookup among 1M random 16-byte
/// keys takes about half the time it takes with boxed keys).
pub(crate) type KeyBuf = SmallVec<[u8; 24]>;

#[derive(Default)]
struct Inner {
    map: BTreeMap<KeyBuf, Loc>,
    /// (expire_at, key) → record length, for every entry with an expiry: counts expired keys
    /// and their bytes without a scan.
    expiring: BTreeMap<(u64, KeyBuf), u32>,
}

impl Inner {
    fn insert(&mut self, key: &[u8], loc: Loc) -> Option<Loc> {
        let old = match self.map.entry(KeyBuf::from_slice(key)) {
            Entry::Occupied(mut e) => Some(e.insert(loc)),
            Entry::Vacant(e) => {
                e.insert(loc);
                None
            }
        };
        let old_expiry = old.map_or(0, |o| o.expire_at);
        if old_expiry != 0 {
            self.expiring.remove(&(old_expiry, KeyBuf::from_slice(key)));
        }
        if loc.expire_at != 0 {
            self.expiring
                .insert((loc.expire_at, KeyBuf::from_slice(key)), loc.len);
        }
        old
    }

    fn remove(&mut self, key: &[u8]) -> Option<Loc> {
        let old = self.map.remove(key)?;
        if old.expire_at != 0 {
            self.expiring
                .remove(&(old.expire_at, KeyBuf::from_slice(key)));
        }
        Some(old)
    }
}

/// Number of shards: one per value of a key's first byte.
pub(crate) const SHARDS: usize = 256;

/// The shard of `key`: its first byte, so that the shards in order hold the keys in order.
pub(crate) fn shard_of(key: &[u8]) -> usize {
    key.first().map_or(0, |&b| usize::from(b))
}

/// An ordered map from key to [`Loc`], split by the key's first byte into 256 ordered maps,
/// each behind its own reader-writer lock.
///
/// Splitting by the first byte keeps the order (shard after shard) while making each tree a
/// few levels shallower, and spreads readers and the writer over 256 locks instead of one
/// cache line that every core must write (measured in docs/BENCHMARKS.md).
///
/// The locks are the index's own, not the writer's: a reader holds one shared for one lookup
/// (a few hundred nanoseconds) and is never held up by appends, rotation or fsync; the writer
/// holds one exclusively only to insert or remove one entry. All mutations are made while the
/// writer lock is also held, which makes "read the old location, then replace it" one step.
///
/// Entries stay in the index after they expire (a merge drops them); readers filter them out.
pub(crate) struct Keydir {
    shards: Box<[RwLock<Inner>]>,
    /// Bumped after every change: an iterator whose fetched entries are no older than the
    /// current epoch can use their locations without looking each key up again.
    epoch: AtomicU64,
}

impl Default for Keydir {
    fn default() -> Self {
        Keydir {
            shards: (0..SHARDS).map(|_| RwLock::default()).collect(),
            epoch: AtomicU64::new(0),
        }
    }
}

impl Keydir {
    fn shard(&self, key: &[u8]) -> &RwLock<Inner> {
        &self.shards[shard_of(key)]
    }

    /// The change counter. Read it before fetching entries: if it is unchanged later, no entry
    /// has changed since.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn changed(&self) {
        self.epoch.fetch_add(1, Ordering::Release);
    }

    /// The entry for `key`, expired or not.
    pub fn get(&self, key: &[u8]) -> Option<Loc> {
        self.shard(key).read().map.get(key).copied()
    }

    /// Points `key` at `loc` and returns where it pointed before.
    pub fn insert(&self, key: &[u8], loc: Loc) -> Option<Loc> {
        let old = self.shard(key).write().insert(key, loc);
        self.changed();
        old
    }

    /// Applies every `(key, Some(loc))` insert and `(key, None)` removal while holding the
    /// write locks of all the shards involved, so readers see none or all of them; calls
    /// `replaced` with each entry it replaced.
    pub fn apply(&self, changes: &[(&[u8], Option<Loc>)], mut replaced: impl FnMut(Loc)) {
        let mut ids: SmallVec<[usize; 16]> = changes.iter().map(|(k, _)| shard_of(k)).collect();
        ids.sort_unstable();
        ids.dedup();
        // Locked in ascending order; only the writer (one at a time) takes several.
        let mut guards: SmallVec<[_; 16]> = ids.iter().map(|&i| self.shards[i].write()).collect();
        for (key, loc) in changes {
            let at = ids.binary_search(&shard_of(key)).unwrap_or_default();
            let inner = &mut guards[at];
            let old = match loc {
                Some(loc) => inner.insert(key, *loc),
                None => inner.remove(key),
            };
            if let Some(old) = old {
                replaced(old);
            }
        }
        self.changed();
    }

    /// Removes `key` and returns where it pointed.
    pub fn remove(&self, key: &[u8]) -> Option<Loc> {
        let old = self.shard(key).write().remove(key);
        self.changed();
        old
    }

    /// Entries that have not expired at `now_ms`.
    pub fn live_len(&self, now_ms: u64) -> usize {
        self.shards
            .iter()
            .map(|shard| {
                let inner = shard.read();
                let expired = inner
                    .expiring
                    .range(..(now_ms.saturating_add(1), KeyBuf::new()))
                    .count();
                inner.map.len() - expired
            })
            .sum()
    }

    /// Bytes of the records of entries that have expired at `now_ms` (garbage a merge drops).
    pub fn expired_bytes(&self, now_ms: u64) -> u64 {
        self.shards
            .iter()
            .map(|shard| {
                shard
                    .read()
                    .expiring
                    .range(..(now_ms.saturating_add(1), KeyBuf::new()))
                    .map(|(_, &len)| u64::from(len))
                    .sum::<u64>()
            })
            .sum()
    }

    /// Up to `n` entries in key order, starting after `after` (from the first key if `None`).
    /// Read locks are held for this chunk only, so writers are never held up for long.
    pub fn chunk_after(&self, after: Option<&[u8]>, n: usize) -> Vec<(KeyBuf, Loc)> {
        let lo = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.chunk(lo, Bound::Unbounded, n, false)
    }

    /// Up to `n` entries with keys within the bounds, in key order, or from the top down if
    /// `reverse`.
    pub fn chunk(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        n: usize,
        reverse: bool,
    ) -> Vec<(KeyBuf, Loc)> {
        if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) =
            (lo, hi)
        {
            // BTreeMap::range panics on inverted or empty-excluded bounds.
            let empty =
                a > b || (a == b && !matches!((lo, hi), (Bound::Included(_), Bound::Included(_))));
            if empty {
                return Vec::new();
            }
        }
        let first = match lo {
            Bound::Included(k) | Bound::Excluded(k) => shard_of(k),
            Bound::Unbounded => 0,
        };
        let last = match hi {
            Bound::Included(k) | Bound::Excluded(k) => shard_of(k),
            Bound::Unbounded => SHARDS - 1,
        };
        let mut out = Vec::with_capacity(n.min(1024));
        let pick = |(k, v): (&KeyBuf, &Loc)| (k.clone(), *v);
        let visit = |shard: &RwLock<Inner>, out: &mut Vec<(KeyBuf, Loc)>| {
            let inner = shard.read();
            let range = inner.map.range::<[u8], _>((lo, hi));
            let want = n - out.len();
            if reverse {
                out.extend(range.rev().take(want).map(pick));
            } else {
                out.extend(range.take(want).map(pick));
            }
        };
        let shards = &self.shards[first..=last.max(first)];
        if reverse {
            for shard in shards.iter().rev() {
                if out.len() == n {
                    break;
                }
                visit(shard, &mut out);
            }
        } else {
            for shard in shards {
                if out.len() == n {
                    break;
                }
                visit(shard, &mut out);
            }
        }
        out
    }

    /// For each `(key, old, new)`, points `key` at `new` only if it still points at `old`, so a
    /// write made meanwhile wins. Calls `switched(old, new)` for each entry that switched and
    /// returns how many did not. Call under the writer lock.
    pub fn switch_if_unchanged(
        &self,
        moves: &[(KeyBuf, Loc, Loc)],
        mut switched: impl FnMut(Loc, Loc),
    ) -> usize {
        let mut lost = 0;
        for (key, old, new) in moves {
            // Moves come in key order: consecutive ones mostly share a shard, whose lock is
            // taken once per move (uncontended: cheap).
            let mut inner = self.shard(key).write();
            match inner.map.get_mut(key.as_slice()) {
                Some(loc) if loc == old => {
                    *loc = *new; // a copy keeps its expiry: the expiring set is unchanged
                    switched(*old, *new);
                }
                _ => lost += 1,
            }
        }
        self.changed();
        lost
    }

    /// Removes each `(key, loc)` whose entry still is `loc`; calls `removed` for each. Call
    /// under the writer lock.
    pub fn remove_if_unchanged(&self, drops: &[(KeyBuf, Loc)], mut removed: impl FnMut(Loc)) {
        for (key, loc) in drops {
            let mut inner = self.shard(key).write();
            if inner.map.get(key.as_slice()) == Some(loc) {
                inner.remove(key);
                removed(*loc);
            }
        }
        self.changed();
    }

    /// Fills an empty index from entries sorted by key, without duplicates. Builds the tree
    /// bottom-up with full nodes: about half the memory of inserting the same keys in order one
    /// by one (which leaves every node half full), and several times faster.
    pub fn fill_sorted(&self, entries: Vec<(KeyBuf, Loc)>) {
        debug_assert!(entries.windows(2).all(|w| w[0].0 < w[1].0));
        let mut entries = entries.into_iter().peekable();
        while let Some(first) = entries.next() {
            let id = shard_of(&first.0);
            let mut run = vec![first];
            while let Some(next) = entries.next_if(|(k, _)| shard_of(k) == id) {
                run.push(next);
            }
            let mut inner = self.shards[id].write();
            debug_assert!(inner.map.is_empty());
            inner.expiring = run
                .iter()
                .filter(|(_, l)| l.expire_at != 0)
                .map(|(k, l)| ((l.expire_at, k.clone()), l.len))
                .collect();
            inner.map = run.into_iter().collect();
        }
        self.changed();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loc(expire_at: u64) -> Loc {
        Loc {
            file_id: 1,
            len: 10,
            offset: 16,
            expire_at,
        }
    }

    #[test]
    fn live_len_follows_expiries_through_replacements_and_removals() {
        let k = Keydir::default();
        k.insert(b"a", loc(0));
        k.insert(b"b", loc(100));
        k.insert(b"c", loc(200));
        assert_eq!(k.live_len(50), 3);
        assert_eq!(k.live_len(100), 2);
        assert_eq!(k.live_len(200), 1);
        k.insert(b"b", loc(300)); // new expiry replaces the old one
        assert_eq!(k.live_len(250), 2);
        k.insert(b"c", loc(0)); // persisted
        assert_eq!(k.live_len(1000), 2);
        assert_eq!(
            k.expired_bytes(1000),
            10,
            "b's record (10 bytes) expired at 300"
        );
        k.remove(b"b");
        assert_eq!(k.live_len(0), 2);
        assert_eq!(k.expired_bytes(1000), 0);
        assert!(k.shards.iter().all(|s| s.read().expiring.is_empty()));
    }

    #[test]
    fn shards_keep_global_order_in_chunks_batches_and_bulk_fills() {
        // Keys whose first bytes span many shards, including 0x00, 0xff and the empty key.
        let mut keys: Vec<Vec<u8>> = vec![vec![], vec![0], vec![0, 5], vec![255], vec![255, 255]];
        for b in (1u8..255).step_by(17) {
            keys.push(vec![b, 1]);
            keys.push(vec![b]);
        }
        keys.sort();
        let k = Keydir::default();
        let changes: Vec<(&[u8], Option<Loc>)> = keys
            .iter()
            .map(|key| (key.as_slice(), Some(loc(0))))
            .collect();
        k.apply(&changes, |_| panic!("nothing to replace"));
        let epoch = k.epoch();
        let all = |k: &Keydir, rev: bool| -> Vec<Vec<u8>> {
            k.chunk(Bound::Unbounded, Bound::Unbounded, 1000, rev)
                .into_iter()
                .map(|(key, _)| key.to_vec())
                .collect()
        };
        assert_eq!(all(&k, false), keys);
        let mut reversed = keys.clone();
        reversed.reverse();
        assert_eq!(all(&k, true), reversed);
        // A limited chunk crossing shard boundaries, from a bound in the middle.
        let mid = &keys[7];
        let got: Vec<Vec<u8>> = k
            .chunk(Bound::Excluded(mid), Bound::Unbounded, 5, false)
            .into_iter()
            .map(|(key, _)| key.to_vec())
            .collect();
        assert_eq!(got, keys[8..13].to_vec());
        let got: Vec<Vec<u8>> = k
            .chunk(Bound::Unbounded, Bound::Included(mid), 3, true)
            .into_iter()
            .map(|(key, _)| key.to_vec())
            .collect();
        assert_eq!(got, vec![keys[7].clone(), keys[6].clone(), keys[5].clone()]);
        // Any change moves the epoch on.
        k.remove(&keys[3]);
        assert!(k.epoch() > epoch);
        // A bulk fill spreads a sorted run over the shards and reads back the same.
        let bulk = Keydir::default();
        bulk.fill_sorted(
            keys.iter()
                .map(|key| (KeyBuf::from_slice(key), loc(0)))
                .collect(),
        );
        assert_eq!(all(&bulk, false), keys);
        assert_eq!(bulk.live_len(0), keys.len());
    }

    #[test]
    fn chunks_respect_bounds_both_ways_and_tolerate_empty_ranges() {
        let k = Keydir::default();
        for key in [b"a", b"b", b"c", b"d"] {
            k.insert(key, loc(0));
        }
        let keys = |v: Vec<(KeyBuf, Loc)>| v.into_iter().map(|(k, _)| k[0]).collect::<Vec<_>>();
        use Bound::*;
        assert_eq!(
            keys(k.chunk(Excluded(b"a"), Included(b"c"), 10, false)),
            b"bc"
        );
        assert_eq!(keys(k.chunk(Unbounded, Excluded(b"d"), 2, true)), b"cb");
        assert!(
            k.chunk(Excluded(b"c"), Excluded(b"c"), 10, false)
                .is_empty()
        );
        assert!(
            k.chunk(Included(b"d"), Included(b"a"), 10, false)
                .is_empty()
        );
        assert_eq!(
            keys(k.chunk(Included(b"b"), Included(b"b"), 10, false)),
            b"b"
        );
    }
}
