//! [`Overlay`]: writes staged by earlier transactions ([`Db::stage_over`](crate::Db::stage_over))
//! that are not in the database yet, which later staged transactions read through. A
//! replicated server stages a command on top of the commands still being agreed on, rather
//! than waiting for each to be applied before staging the next.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::tx_iter::Pending;

/// Staged writes not yet in the database, each tagged with the stage that made it last.
///
/// Reads of a transaction staged over it see these writes as if made. Once a stage's writes
/// are in the database, [`Overlay::settle`] forgets those no later stage replaced; if a stage
/// will never be made, [`Overlay::clear`] drops everything (the stages after it were staged
/// over it: they must not be made either).
#[derive(Debug, Default)]
pub struct Overlay {
    pub(crate) writes: BTreeMap<Vec<u8>, Pending>,
    owner: HashMap<Vec<u8>, u64>,
}

impl Overlay {
    /// An empty overlay.
    pub fn new() -> Overlay {
        Overlay::default()
    }

    /// Whether no staged write is pending.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// How many keys have a staged write pending.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// Stage `seq`'s writes are in the database now: forgets those of `keys` that no later
    /// stage replaced.
    pub fn settle(&mut self, seq: u64, keys: &[Bytes]) {
        for key in keys {
            if self.owner.get(key.as_ref()) == Some(&seq) {
                self.owner.remove(key.as_ref());
                self.writes.remove(key.as_ref());
            }
        }
    }

    /// Drops every pending write.
    pub fn clear(&mut self) {
        self.writes.clear();
        self.owner.clear();
    }

    /// Records that stage `seq` made the last write of `key`.
    pub(crate) fn own(&mut self, key: Vec<u8>, seq: u64) {
        self.owner.insert(key, seq);
    }
}
