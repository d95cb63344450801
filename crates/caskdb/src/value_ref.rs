//! A value located in the store but not read yet ([`ValueRef`]), and reading it in pieces
//! ([`Chunks`]): how a server sends a large value without holding it whole.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};

use crate::error::Result;
use crate::keydir::Loc;
use crate::log::file::DataFile;
use crate::log::record::MAX_RECORD_HEADER_LEN;

/// Bytes read per step when a stored value is checked or read in pieces.
const STEP: usize = 64 * 1024;

/// Bytes of a value kept in memory by [`ValueRef::head`].
const HEAD: usize = 16;

/// A value as it was when it was located: held in memory, or where it lies in a data file.
///
/// From [`Db::get_ref`](crate::Db::get_ref), [`Transaction::get_ref`](crate::Transaction::get_ref)
/// and the `range_refs` iterators. Locating a stored value reads only its record's start
/// (header and key, checked); its CRC is checked when it is read: [`read`](ValueRef::read)
/// returns the error, [`chunks`](ValueRef::chunks) withholds the last piece. Both return the
/// value as of the moment it was located, even if the key changed since: the data
/// file stays open while a `ValueRef` to it lives, even after a merge removed it from the
/// directory (its disk space is then only freed once the last reference is dropped; see
/// [`is_retired`](ValueRef::is_retired)).
///
/// ```
/// # fn main() -> caskdb::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// let db = caskdb::Db::open(dir.path())?;
/// db.put("big", vec![7u8; 100_000])?;
/// let r = db.get_ref("big", 4096)?.expect("stored");
/// db.put("big", "changed")?;
/// assert_eq!(r.len(), 100_000);
/// let mut total = 0;
/// for piece in r.chunks(32 * 1024) {
///     let piece = piece?;
///     assert!(piece.iter().all(|&b| b == 7));
///     total += piece.len();
/// }
/// assert_eq!(total, 100_000);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ValueRef {
    repr: Repr,
    /// The part of the value this reference is to, as offsets into the value.
    start: u64,
    end: u64,
}

#[derive(Clone)]
enum Repr {
    Memory(Bytes),
    Stored(Arc<Stored>),
}

/// Where a checked value record lies.
struct Stored {
    file: Arc<DataFile>,
    loc: Loc,
    /// The key the record holds (checked again on each read).
    key: Bytes,
    /// Where the value starts in the record.
    value_start: u64,
    /// The first bytes of the value.
    head: Bytes,
}

impl std::fmt::Debug for ValueRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.repr {
            Repr::Memory(b) => f.debug_tuple("ValueRef::Memory").field(b).finish(),
            Repr::Stored(s) => f
                .debug_struct("ValueRef::Stored")
                .field("file", &s.file.path)
                .field("offset", &s.loc.offset)
                .field("range", &(self.start..self.end))
                .finish(),
        }
    }
}

impl From<Bytes> for ValueRef {
    fn from(b: Bytes) -> ValueRef {
        ValueRef {
            end: b.len() as u64,
            start: 0,
            repr: Repr::Memory(b),
        }
    }
}

impl ValueRef {
    /// Locates the value of the record at `loc` in `file` (which must hold `key`): read now if
    /// the record takes at most `inline` bytes, otherwise its header and key are checked and
    /// it is left where it is.
    pub(crate) fn locate(
        file: &Arc<DataFile>,
        loc: Loc,
        key: &[u8],
        inline: usize,
    ) -> Result<ValueRef> {
        if loc.len as usize <= inline {
            return file.read_value(loc, key).map(ValueRef::from);
        }
        // The CRC is checked when the value is read, not here: locating a large value costs
        // one small read, whatever its size.
        let (value_start, head) = check_head(file, loc, key)?;
        let value_len = u64::from(loc.len) - value_start;
        Ok(ValueRef {
            repr: Repr::Stored(Arc::new(Stored {
                file: Arc::clone(file),
                loc,
                key: Bytes::copy_from_slice(key),
                value_start,
                head,
            })),
            start: 0,
            end: value_len,
        })
    }

    /// The value's length in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Whether the value is held in memory (no read will touch the disk).
    pub fn is_in_memory(&self) -> bool {
        matches!(self.repr, Repr::Memory(_))
    }

    /// The value's first 16 bytes (fewer if it is shorter), kept in memory when it was
    /// located: enough to tell a value's type from a tag it starts with, without reading it.
    /// After [`skip`](ValueRef::skip), those of them that remain.
    pub fn head(&self) -> &[u8] {
        let all: &[u8] = match &self.repr {
            Repr::Memory(b) => b,
            Repr::Stored(s) => &s.head,
        };
        let lo = (self.start as usize).min(all.len());
        let hi = (self.end.min(self.start + HEAD as u64) as usize).min(all.len());
        &all[lo..hi.max(lo)]
    }

    /// The part of the value from byte `from` on (`from` is clamped to the length).
    #[must_use]
    pub fn skip(&self, from: u64) -> ValueRef {
        let mut r = self.clone();
        r.start = self.start.saturating_add(from).min(self.end);
        r
    }

    /// Whether the value lies in a data file that a merge has since removed from the
    /// directory: this reference then keeps that file's disk space in use until it is dropped.
    pub fn is_retired(&self) -> bool {
        match &self.repr {
            Repr::Memory(_) => false,
            Repr::Stored(s) => s.file.retired.load(Ordering::Acquire),
        }
    }

    /// Reads the whole value, checked again.
    ///
    /// # Errors
    /// [`Error::Corrupted`](crate::Error::Corrupted) (naming file and offset) if the record
    /// fails its check; [`Error::Io`](crate::Error::Io) if the disk fails the read.
    pub fn read(&self) -> Result<Bytes> {
        match &self.repr {
            Repr::Memory(b) => Ok(b.slice(self.start as usize..self.end as usize)),
            Repr::Stored(s) => {
                let v = s.file.read_value(s.loc, &s.key)?;
                Ok(v.slice(self.start as usize..self.end as usize))
            }
        }
    }

    /// [`ValueRef::read`], consuming the reference: a value held in memory is returned without
    /// a clone (cloning a `Bytes` made from a `Vec` allocates a shared header).
    ///
    /// ```
    /// # fn main() -> caskdb::Result<()> {
    /// # let dir = tempfile::tempdir().unwrap();
    /// let db = caskdb::Db::open(dir.path())?;
    /// db.put("k", "small")?;
    /// let r = db.get_ref("k", 4096)?.expect("present");
    /// assert_eq!(r.into_bytes()?, "small");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// As [`ValueRef::read`].
    pub fn into_bytes(self) -> Result<Bytes> {
        let (start, end) = (self.start as usize, self.end as usize);
        let mut b = match self.repr {
            Repr::Memory(b) => b,
            Repr::Stored(s) => s.file.read_value(s.loc, &s.key)?,
        };
        b.truncate(end);
        bytes::Buf::advance(&mut b, start);
        Ok(b)
    }

    /// The value in pieces of about `step` bytes (at least one byte), read from the file as
    /// they are asked for and checked again: the last piece is only returned once the whole
    /// record passed its CRC, so a reader never receives all of a damaged value.
    pub fn chunks(&self, step: usize) -> Chunks {
        Chunks {
            value: self.clone(),
            step: step.max(1),
            pos: self.start,
            hash: None,
            done: false,
            failed: false,
        }
    }
}

/// Reads the start of the value record at `loc` and checks its header (length, type) and key.
/// Returns where the value starts in the record and its first bytes.
fn check_head(file: &DataFile, loc: Loc, key: &[u8]) -> Result<(u64, Bytes)> {
    let first_len = (MAX_RECORD_HEADER_LEN + key.len() + HEAD).min(loc.len as usize);
    let mut first = vec![0u8; first_len];
    file.read_part(loc.offset, loc.offset, &mut first)?;
    let header = file.check_length(loc, &first)?;
    file.check_value(loc, key, &header, &first)?;
    let value_start = header.header_len + header.key_len as usize;
    let head = Bytes::copy_from_slice(&first[value_start..(value_start + HEAD).min(first_len)]);
    Ok((value_start as u64, head))
}

/// A value's pieces, from [`ValueRef::chunks`]: an iterator, or
/// [`read_into`](Chunks::read_into) a buffer of the caller's.
pub struct Chunks {
    value: ValueRef,
    step: usize,
    /// Where the next piece starts: an offset into the value (in memory) or the record.
    pos: u64,
    /// For a stored value, once its reading began: the CRC of what was read, and the one
    /// stored in the record.
    hash: Option<(crc32fast::Hasher, u32)>,
    done: bool,
    /// A read or the check failed: every later call fails too.
    failed: bool,
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks")
            .field("value", &self.value)
            .field("pos", &self.pos)
            .finish_non_exhaustive()
    }
}

impl Iterator for Chunks {
    type Item = Result<Bytes>;

    fn next(&mut self) -> Option<Result<Bytes>> {
        let mut piece = BytesMut::new();
        match self.read_into(&mut piece, self.step) {
            Ok(true) => Some(Ok(piece.freeze())),
            Ok(false) => None,
            Err(e) => Some(Err(e)),
        }
    }
}

impl Chunks {
    /// The value these are the pieces of.
    pub fn value(&self) -> &ValueRef {
        &self.value
    }

    /// Appends the next piece of the value, at most `max` bytes (at least one), to `out`.
    /// Returns `Ok(false)` once the value was all handed out. For a stored value, the rest of
    /// the record is checked before its last piece is appended: on a CRC mismatch nothing is
    /// appended and the error is returned (and again on the next call).
    ///
    /// # Errors
    /// [`Error::Corrupted`](crate::Error::Corrupted) if the record fails its check;
    /// [`Error::Io`](crate::Error::Io) if the disk fails a read.
    pub fn read_into(&mut self, out: &mut BytesMut, max: usize) -> Result<bool> {
        let max = max.max(1) as u64;
        let (start, end) = (self.value.start, self.value.end);
        let s = match &self.value.repr {
            Repr::Memory(b) => {
                let from = self.pos.max(start);
                if from >= end {
                    return Ok(false);
                }
                let to = (from + max).min(end);
                out.extend_from_slice(&b[from as usize..to as usize]);
                self.pos = to;
                return Ok(true);
            }
            Repr::Stored(s) => Arc::clone(s),
        };
        if self.failed {
            return Err(s
                .file
                .corrupted(s.loc.offset, "an earlier read of this value failed"));
        }
        if self.done {
            return Ok(false);
        }
        let result = self.read_stored(&s, out, max);
        self.failed = result.is_err();
        result
    }

    fn read_stored(&mut self, s: &Stored, out: &mut BytesMut, max: u64) -> Result<bool> {
        let (start, end) = (self.value.start, self.value.end);
        let (lo, hi) = (s.value_start + start, s.value_start + end);
        if self.hash.is_none() {
            // The record up to the view: hashed, not handed out.
            let mut crc = [0u8; 4];
            s.file.read_part(s.loc.offset, s.loc.offset, &mut crc)?;
            let mut hasher = crc32fast::Hasher::new();
            hash_range(s, 4, lo, &mut hasher)?;
            self.hash = Some((hasher, u32::from_le_bytes(crc)));
            self.pos = lo;
        }
        let Some((hasher, _)) = &mut self.hash else {
            return Ok(false);
        };
        let at = out.len();
        if self.pos < hi {
            let n = (hi - self.pos).min(max) as usize;
            out.resize(at + n, 0);
            if let Err(e) = s
                .file
                .read_part(s.loc.offset, s.loc.offset + self.pos, &mut out[at..])
            {
                out.truncate(at);
                return Err(e);
            }
            hasher.update(&out[at..]);
            self.pos += n as u64;
            if self.pos < hi {
                return Ok(true);
            }
        }
        // The view is complete: check the whole record before handing out its last piece.
        if let Err(e) = self.finish(s) {
            out.truncate(at);
            return Err(e);
        }
        self.done = true;
        Ok(out.len() > at)
    }

    /// Hashes the record past the view and compares the CRC.
    fn finish(&mut self, s: &Stored) -> Result<()> {
        let Some((mut hasher, stored)) = self.hash.take() else {
            return Ok(());
        };
        hash_range(s, self.pos, u64::from(s.loc.len), &mut hasher)?;
        if hasher.finalize() == stored {
            Ok(())
        } else {
            Err(s.file.corrupted(s.loc.offset, "CRC mismatch"))
        }
    }
}

/// Feeds bytes `from..to` of the record to `hasher`, [`STEP`] bytes at a time.
fn hash_range(s: &Stored, from: u64, to: u64, hasher: &mut crc32fast::Hasher) -> Result<()> {
    let mut at = from;
    let mut buf = Vec::new();
    while at < to {
        let n = (to - at).min(STEP as u64) as usize;
        buf.resize(n, 0);
        s.file
            .read_part(s.loc.offset, s.loc.offset + at, &mut buf)?;
        hasher.update(&buf);
        at += n as u64;
    }
    Ok(())
}
