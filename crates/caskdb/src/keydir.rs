//! The in-memory ordered index: key → where its latest record lives.

use std::cell::Cell;

use crossbeam_skiplist::SkipMap;

/// Where a live record is: file, byte offset of the record, and its whole length.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loc {
    pub file_id: u32,
    pub len: u32,
    pub offset: u64,
}

/// An ordered, lock-free map from key to [`Loc`].
///
/// Readers never block: lookups run concurrently with each other and with the writer. All
/// mutations happen under the engine's writer lock, which is what makes "read the old location,
/// then replace it" one step.
#[derive(Default)]
pub(crate) struct Keydir {
    map: SkipMap<Box<[u8]>, Loc>,
}

impl Keydir {
    pub fn get(&self, key: &[u8]) -> Option<Loc> {
        self.map.get(key).map(|e| *e.value())
    }

    pub fn contains(&self, key: &[u8]) -> bool {
        self.map.contains_key(key)
    }

    /// Points `key` at `loc` and returns where it pointed before. Call under the writer lock.
    pub fn insert(&self, key: &[u8], loc: Loc) -> Option<Loc> {
        let old = Cell::new(None);
        // One traversal: the closure sees the replaced value.
        self.map.compare_insert(key.into(), loc, |prev| {
            old.set(Some(*prev));
            true
        });
        old.get()
    }

    /// Removes `key` and returns where it pointed. Call under the writer lock.
    pub fn remove(&self, key: &[u8]) -> Option<Loc> {
        self.map.remove(key).map(|e| *e.value())
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }
}
