//! Atomic write batches: several puts and deletes that land all together or not at all.

use std::time::Duration;

use crate::db::Db;
use crate::error::{Error, Result};
use crate::log::record::MAX_RECORD_HEADER_LEN;
use crate::log::writer::RawOp;

/// A set of puts and deletes applied atomically by [`WriteBatch::commit`]: all of them or, if
/// the commit fails or the process dies while it is written, none — also across a crash. Get
/// one from [`Db::batch`].
///
/// On disk a batch is one record (type 4, see `docs/FORMAT.md`) whose value holds the batch's
/// records, each with its own CRC; the envelope's CRC covers them all, so a batch cut anywhere
/// fails that check and recovery drops it whole. Operations apply in the order they were added:
/// a later put or delete of the same key wins.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let db = caskdb::Db::open(dir.path())?;
/// db.put("pending:42", "transfer")?;
/// let mut batch = db.batch();
/// batch.put("account:a", "90").put("account:b", "110").delete("pending:42");
/// assert_eq!(batch.len(), 3);
/// batch.commit()?;
/// assert_eq!(db.get("account:b")?.as_deref(), Some(&b"110"[..]));
/// assert!(!db.contains_key("pending:42")?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a batch does nothing until it is committed"]
pub struct WriteBatch {
    db: Db,
    ops: Vec<Op>,
    /// Bytes the batch will take on disk, headers included.
    encoded: usize,
}

#[derive(Debug)]
enum Op {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        expiry: Expiry,
    },
    Delete {
        key: Vec<u8>,
    },
}

/// When a put of a batch expires.
#[derive(Debug, Clone, Copy)]
enum Expiry {
    Never,
    /// After this long, counted from the commit.
    After(Duration),
    /// At this instant (ms since the Unix epoch).
    At(u64),
}

impl Db {
    /// Starts an empty [`WriteBatch`].
    pub fn batch(&self) -> WriteBatch {
        WriteBatch {
            db: self.clone(),
            ops: Vec::new(),
            encoded: 0,
        }
    }
}

impl WriteBatch {
    /// Adds a put of `value` under `key`.
    pub fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> &mut Self {
        self.push_put(key.as_ref(), value.as_ref(), Expiry::Never)
    }

    /// Adds a put of `value` under `key` that expires after `ttl` (counted from the commit).
    pub fn put_with_ttl(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> &mut Self {
        self.push_put(key.as_ref(), value.as_ref(), Expiry::After(ttl))
    }

    /// Adds a put of `value` under `key` that expires at `expire_at_ms` (milliseconds since the
    /// Unix epoch, by the database's clock).
    pub fn put_expiring_at(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        expire_at_ms: u64,
    ) -> &mut Self {
        self.push_put(key.as_ref(), value.as_ref(), Expiry::At(expire_at_ms))
    }

    /// Adds a deletion of `key` (a no-op at commit if the key does not exist then).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref().to_vec();
        self.encoded += MAX_RECORD_HEADER_LEN + key.len();
        self.ops.push(Op::Delete { key });
        self
    }

    fn push_put(&mut self, key: &[u8], value: &[u8], expiry: Expiry) -> &mut Self {
        self.encoded += MAX_RECORD_HEADER_LEN + key.len() + value.len();
        self.ops.push(Op::Put {
            key: key.to_vec(),
            value: value.to_vec(),
            expiry,
        });
        self
    }

    /// Number of operations added.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no operation was added.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Writes every operation as one record and applies them all to the index at once:
    /// readers see none of them, then all. Under [`SyncPolicy::Always`](crate::SyncPolicy)
    /// the batch is on disk when this returns `Ok`. An empty batch writes nothing.
    ///
    /// # Errors
    /// [`Error::KeyIsEmpty`], [`Error::KeyTooLarge`], [`Error::ValueTooLarge`] for any
    /// operation, or [`Error::BatchTooLarge`] when the batch encodes to more than
    /// [`Options::max_batch_size`](crate::Options::max_batch_size): nothing is written. Otherwise
    /// as [`Db::put`].
    pub fn commit(self) -> Result<()> {
        if self.ops.is_empty() {
            return Ok(());
        }
        let core = &self.db.inner.core;
        let max = core.opts.max_batch_size;
        if self.encoded > max {
            return Err(Error::BatchTooLarge {
                size: self.encoded,
                max,
            });
        }
        let mut ops = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            ops.push(match op {
                Op::Put { key, value, expiry } => {
                    core.opts.check_key(key)?;
                    core.opts.check_value(value)?;
                    let expire_at = match *expiry {
                        Expiry::Never => 0,
                        Expiry::After(ttl) => core.expiry_after(ttl),
                        Expiry::At(at) => at.max(1),
                    };
                    RawOp::put(key, value, expire_at)
                }
                Op::Delete { key } => {
                    core.opts.check_key(key)?;
                    RawOp::delete(key)
                }
            });
        }
        self.db.write_if(&ops, || Ok(true)).map(drop)
    }
}
