//! The Raft log on the caskdb engine: one directory, entries under `e` + their index
//! (big-endian, so key order is log order), and three marks: the vote, the committed log id,
//! the last purged log id. Every write is durable when it returns (the engine's
//! `SyncPolicy::Always`, which shares one fsync among concurrent writers), and purging or
//! truncating is one atomic batch.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::Path;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};

use crate::codec::{self, decode_entry, encode_entry};
use crate::{Error, NodeId, TypeConfig};

const VOTE: &[u8] = b"m/vote";
const COMMITTED: &[u8] = b"m/committed";
const PURGED: &[u8] = b"m/purged";

fn entry_key(index: u64) -> [u8; 9] {
    let mut k = [0; 9];
    k[0] = b'e';
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// The Raft log of one node. Cheap to clone (clones share the engine).
#[derive(Clone)]
pub struct LogStore {
    db: caskdb::Db,
}

impl LogStore {
    /// Whether this log never held a vote or an entry: a node that never started, or whose
    /// directory was wiped.
    ///
    /// # Errors
    /// The engine's, reading.
    pub fn is_fresh(&self) -> Result<bool, Error> {
        Ok(self.db.get(VOTE)?.is_none()
            && self.db.get(PURGED)?.is_none()
            && self.db.range_keys(&b"e"[..]..&b"f"[..]).next().is_none())
    }

    /// Opens (or creates) the log in directory `dir`.
    ///
    /// # Errors
    /// The engine's: the directory is locked by another process, unreadable, or damaged.
    pub fn open(dir: impl AsRef<Path>) -> Result<LogStore, Error> {
        // Purged entries are dead bytes: merged away in the background.
        LogStore::open_with(
            dir,
            caskdb::Options::default().merge_min_dead_bytes(16 << 20),
        )
    }

    /// Like [`LogStore::open`], with the engine's `options` (a file-system layer for tests…);
    /// their sync policy is replaced by [`caskdb::SyncPolicy::Always`]: the log's writes are
    /// durable when acknowledged.
    ///
    /// # Errors
    /// As [`LogStore::open`].
    pub fn open_with(dir: impl AsRef<Path>, options: caskdb::Options) -> Result<LogStore, Error> {
        // (Entries are appended as one batch: allow 1 GiB of them, not the default 64 MiB.)
        let db = options
            .sync(caskdb::SyncPolicy::Always)
            .max_batch_size(1 << 30)
            .open(dir)?;
        Ok(LogStore { db })
    }

    fn mark(&self, key: &[u8], what: &'static str) -> Result<Option<LogId<NodeId>>, Error> {
        match self.db.get(key)? {
            None => Ok(None),
            Some(v) => codec::decode_opt_log_id(&v, what),
        }
    }

    fn entries(&self, start: Bound<u64>, end: Bound<u64>) -> Result<Vec<Entry<TypeConfig>>, Error> {
        let lo = match start {
            Bound::Included(i) => Bound::Included(entry_key(i)),
            Bound::Excluded(i) => Bound::Excluded(entry_key(i)),
            Bound::Unbounded => Bound::Included(entry_key(0)),
        };
        let hi = match end {
            Bound::Included(i) => Bound::Included(entry_key(i)),
            Bound::Excluded(i) => Bound::Excluded(entry_key(i)),
            Bound::Unbounded => Bound::Included(entry_key(u64::MAX)),
        };
        let mut out = Vec::new();
        for item in self.db.range::<[u8; 9], _>((lo, hi)) {
            let (_, v) = item?;
            out.push(decode_entry(&v)?);
        }
        Ok(out)
    }

    fn last_entry(&self) -> Result<Option<Entry<TypeConfig>>, Error> {
        match self
            .db
            .range::<[u8; 9], _>(entry_key(0)..=entry_key(u64::MAX))
            .next_back()
        {
            None => Ok(None),
            Some(item) => Ok(Some(decode_entry(&item?.1)?)),
        }
    }

    /// Deletes the entries in `range` of indexes, and puts `(key, value)` if given, in one
    /// durable batch.
    fn delete_entries(
        &self,
        range: impl RangeBounds<[u8; 9]>,
        put: Option<(&[u8], Vec<u8>)>,
    ) -> Result<(), Error> {
        let mut batch = self.db.batch();
        if let Some((k, v)) = put {
            batch.put(k, v);
        }
        for key in self.db.range_keys(range) {
            batch.delete(key?);
        }
        batch.commit()?;
        Ok(())
    }
}

fn read_err(e: Error) -> StorageError<NodeId> {
    StorageIOError::read_logs(&e).into()
}

fn write_err(e: Error) -> StorageError<NodeId> {
    StorageIOError::write_logs(&e).into()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        self.entries(range.start_bound().cloned(), range.end_bound().cloned())
            .map_err(read_err)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let purged = self.mark(PURGED, "raft purged mark").map_err(read_err)?;
        let last = self
            .last_entry()
            .map_err(read_err)?
            .map(|e| e.log_id)
            .or(purged);
        Ok(LogState {
            last_purged_log_id: purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.db
            .put(VOTE, codec::encode_vote(vote))
            .map_err(|e| StorageIOError::write_vote(&Error::from(e)).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        let read = || -> Result<Option<Vote<NodeId>>, Error> {
            match self.db.get(VOTE)? {
                None => Ok(None),
                Some(v) => Ok(Some(codec::decode_vote(&v)?)),
            }
        };
        read().map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError<NodeId>> {
        self.db
            .put(COMMITTED, codec::encode_opt_log_id(committed.as_ref()))
            .map_err(|e| write_err(e.into()))
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        self.mark(COMMITTED, "raft committed mark")
            .map_err(read_err)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut batch = self.db.batch();
        for e in entries {
            batch.put(entry_key(e.log_id.index), encode_entry(&e));
        }
        // Durable on return (SyncPolicy::Always): the callback can say so at once.
        match batch.commit() {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let io = std::io::Error::other(e.to_string());
                callback.log_io_completed(Err(io));
                Err(write_err(e.into()))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        self.delete_entries(entry_key(log_id.index)..=entry_key(u64::MAX), None)
            .map_err(write_err)
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mark = codec::encode_opt_log_id(Some(&log_id));
        self.delete_entries(entry_key(0)..=entry_key(log_id.index), Some((PURGED, mark)))
            .map_err(write_err)
    }
}
