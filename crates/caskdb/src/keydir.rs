//! The in-memory ordered index: key → where its latest record lives.

use std::collections::BTreeMap;

use parking_lot::RwLock;
use smallvec::SmallVec;

/// Where a live record is: file, byte offset of the record, and its whole length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub file_id: u32,
    pub len: u32,
    pub offset: u64,
}

/// A key as stored in the index: keys up to 24 bytes live inside the tree node, so comparing
/// them during a lookup does not chase a pointer (measured: a lookup among 1M random 16-byte
/// keys takes about half the time it takes with boxed keys).
pub(crate) type KeyBuf = SmallVec<[u8; 24]>;

/// An ordered map from key to [`Loc`] behind a reader-writer lock.
///
/// The lock is the index's own, not the writer's: a reader holds it shared for one lookup (a few
/// hundred nanoseconds) and is never held up by appends, rotation or fsync; the writer holds it
/// exclusively only to insert or remove one entry. All mutations are made while the writer lock
/// is also held, which makes "read the old location, then replace it" one step.
#[derive(Default)]
pub(crate) struct Keydir {
    map: RwLock<BTreeMap<KeyBuf, Loc>>,
}

impl Keydir {
    pub fn get(&self, key: &[u8]) -> Option<Loc> {
        self.map.read().get(key).copied()
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.map.read().contains_key(key)
    }

    /// Points `key` at `loc` and returns where it pointed before.
    pub fn insert(&self, key: &[u8], loc: Loc) -> Option<Loc> {
        let key = KeyBuf::from_slice(key);
        self.map.write().insert(key, loc)
    }

    /// Removes `key` and returns where it pointed.
    pub fn remove(&self, key: &[u8]) -> Option<Loc> {
        self.map.write().remove(key)
    }

    pub fn len(&self) -> usize {
        self.map.read().len()
    }
}
