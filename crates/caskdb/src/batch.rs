//! Atomic write batches: several puts and deletes that land all together or not at all.

use std::time::Duration;

use crate::Db;
use crate::db::{Core, Writer};
use crate::error::{Error, Result};
use crate::keydir::Loc;
use crate::record::{self, MAX_RECORD_HEADER_LEN, RecordType};

/// A set of puts and deletes applied atomically by [`WriteBatch::commit`]: all of them or, if
/// the commit fails or the process dies while it is written, none — also across a crash. Get
/// one from [`Db::batch`].
///
/// On disk a batch is one record (type 4, see `docs/FORMAT.md`) whose value holds the batch's
/// records, each with its own CRC; the envelope's CRC covers them all, so a batch cut anywhere
/// fails that check and recovery drops it whole. Operations apply in the order they were added:
/// a later put or delete of the same key wins.
///
/// ```no_run
/// # fn main() -> caskdb::Result<()> {
/// let db = caskdb::Db::open("/tmp/batch-example")?;
/// let mut batch = db.batch();
/// batch.put("account:a", "90").put("account:b", "110").delete("pending:42");
/// batch.commit()?;
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
        ttl: Option<Duration>,
    },
    Delete {
        key: Vec<u8>,
    },
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
        self.push_put(key.as_ref(), value.as_ref(), None)
    }

    /// Adds a put of `value` under `key` that expires after `ttl` (counted from the commit).
    pub fn put_with_ttl(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        ttl: Duration,
    ) -> &mut Self {
        self.push_put(key.as_ref(), value.as_ref(), Some(ttl))
    }

    /// Adds a deletion of `key` (a no-op at commit if the key does not exist then).
    pub fn delete(&mut self, key: impl AsRef<[u8]>) -> &mut Self {
        let key = key.as_ref().to_vec();
        self.encoded += MAX_RECORD_HEADER_LEN + key.len();
        self.ops.push(Op::Delete { key });
        self
    }

    fn push_put(&mut self, key: &[u8], value: &[u8], ttl: Option<Duration>) -> &mut Self {
        self.encoded += MAX_RECORD_HEADER_LEN + key.len() + value.len();
        self.ops.push(Op::Put {
            key: key.to_vec(),
            value: value.to_vec(),
            ttl,
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
                Op::Put { key, value, ttl } => {
                    core.check_key(key)?;
                    core.check_value(value)?;
                    let expire_at = ttl.map_or(0, |t| core.expiry_after(t));
                    RawOp::put(key, value, expire_at)
                }
                Op::Delete { key } => {
                    core.check_key(key)?;
                    RawOp::delete(key)
                }
            });
        }
        let (lsn, want_merge) = {
            let mut w = core.writer.lock();
            append_ops(core, &mut w, &ops)?;
            (w.lsn, core.wants_merge(&w))
        };
        core.finish_write(lsn, want_merge)
    }
}

/// One checked operation, ready to encode: a put (with `expire_at`, 0 = never) or a deletion.
pub(crate) struct RawOp<'a> {
    kind: RecordType,
    key: &'a [u8],
    value: &'a [u8],
    expire_at: u64,
}

impl<'a> RawOp<'a> {
    pub(crate) fn put(key: &'a [u8], value: &'a [u8], expire_at: u64) -> Self {
        let kind = if expire_at == 0 {
            RecordType::Value
        } else {
            RecordType::ValueWithExpiry
        };
        RawOp {
            kind,
            key,
            value,
            expire_at,
        }
    }

    pub(crate) fn delete(key: &'a [u8]) -> Self {
        RawOp {
            kind: RecordType::Tombstone,
            key,
            value: &[],
            expire_at: 0,
        }
    }

    fn header(&self, buf: &mut [u8; MAX_RECORD_HEADER_LEN]) -> usize {
        let expiry = (self.expire_at != 0).then_some(self.expire_at);
        record::encode_header(self.kind, expiry, self.key, self.value, buf)
    }
}

/// Appends `ops` (keys and values already checked) and points the index at them, under one
/// index lock so readers see none or all. A lone operation is an ordinary record; several are
/// one batch envelope (type 4) whose CRC covers them all. Call under the writer lock.
pub(crate) fn append_ops(core: &Core, w: &mut Writer, ops: &[RawOp<'_>]) -> Result<()> {
    let mut header = [0u8; MAX_RECORD_HEADER_LEN];
    if let [op] = ops {
        // The path of every plain put and delete: no allocation.
        let n = op.header(&mut header);
        let loc = core.append(w, &[&header[..n], op.key, op.value], op.expire_at)?;
        let old = if op.kind == RecordType::Tombstone {
            w.mark_dead(loc);
            core.keydir.remove(op.key)
        } else {
            core.keydir.insert(op.key, loc)
        };
        if let Some(old) = old {
            w.mark_dead(old);
        }
        return Ok(());
    }
    let mut changes: Vec<(&[u8], Option<Loc>)> = Vec::with_capacity(ops.len());
    let mut dead = Vec::new();
    {
        // Encode each operation as an ordinary record, remembering where it lands.
        let size: usize = ops
            .iter()
            .map(|op| MAX_RECORD_HEADER_LEN + op.key.len() + op.value.len())
            .sum();
        let mut payload = Vec::with_capacity(size);
        let mut placed = Vec::with_capacity(ops.len());
        for op in ops {
            let n = op.header(&mut header);
            let at = payload.len();
            payload.extend_from_slice(&header[..n]);
            payload.extend_from_slice(op.key);
            payload.extend_from_slice(op.value);
            placed.push((at, payload.len() - at));
        }
        let mut envelope = [0u8; MAX_RECORD_HEADER_LEN];
        let hlen = record::encode_header(RecordType::Batch, None, &[], &payload, &mut envelope);
        let whole = core.append(w, &[&envelope[..hlen], &payload], 0)?;
        // The envelope's own header holds no data: dead from the start.
        dead.push(Loc {
            len: hlen as u32,
            ..whole
        });
        let base = whole.offset + hlen as u64;
        for (op, (at, len)) in ops.iter().zip(placed) {
            let loc = Loc {
                file_id: whole.file_id,
                len: len as u32,
                offset: base + at as u64,
                expire_at: op.expire_at,
            };
            if op.kind == RecordType::Tombstone {
                dead.push(loc);
                changes.push((op.key, None));
            } else {
                changes.push((op.key, Some(loc)));
            }
        }
    }
    for loc in dead {
        w.mark_dead(loc);
    }
    core.keydir.apply(&changes, |old| w.mark_dead(old));
    Ok(())
}
