//! Strings kept in chunks (the layout `docs/FORMAT.md` gives), so that a change in place costs
//! one chunk on disk rather than the whole string.
//!
//! Such a string's key record is `[STRING_CHUNKED][id: u64 BE][len: u64 BE]`; its bytes are
//! member records of collection `id` (`keyspace::member_key`): `MEMBER [index: u64 BE]` holds
//! the bytes from `index * CHUNK` on, at most [`CHUNK`] of them and never past `len`. Bytes a
//! record does not hold are zeros: a chunk may be shorter than [`CHUNK`] or absent, so a
//! bitmap set far from its start stores only the chunks it has bits in. An owner record names
//! the key, as for collections, so the sweeper reclaims the chunks of a string that is gone.
//!
//! The commands' side (reads of a range, edits that write only the chunks they change) is in
//! `cmd/string_store.rs`; here are the encodings and a range read from a transaction, which
//! the command line's `get` and `export` (`direct`) use too.

use bytes::Bytes;
use caskdb::Transaction;

use crate::keyspace::{
    self, CHUNKED_RECORD_LEN, EngineKey, Entry, MEMBER_PREFIX_LEN, STRING_CHUNKED, kind,
};

/// Bytes per chunk: a change in place writes at most this many (per chunk it touches).
pub(crate) const CHUNK: u64 = 4096;

/// A string that a change in place leaves longer than this is kept in chunks; shorter ones
/// stay whole in their key record (one read, one write).
pub(crate) const CHUNKED_ABOVE: u64 = 2 * CHUNK;

/// A chunked string's key record: where its chunks are and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Chunked {
    /// The collection id its chunks are keyed by.
    pub id: u64,
    /// Its length in bytes.
    pub len: u64,
}

impl Chunked {
    /// The chunked string `e` holds; `None` if `e` is not one (or its record is malformed).
    pub fn of(e: &Entry) -> Option<Chunked> {
        Chunked::decode(&e.raw)
    }

    /// Decodes a key record (type byte included).
    pub fn decode(raw: &[u8]) -> Option<Chunked> {
        if raw.len() != CHUNKED_RECORD_LEN || raw[0] != STRING_CHUNKED {
            return None;
        }
        let rest = &raw[1..];
        let word = |i: usize| u64::from_be_bytes(rest[i..i + 8].try_into().unwrap_or([0; 8]));
        Some(Chunked {
            id: word(0),
            len: word(8),
        })
    }

    /// The key record: type byte, id, length.
    pub fn encode(&self) -> Bytes {
        let mut v = Vec::with_capacity(CHUNKED_RECORD_LEN);
        v.push(STRING_CHUNKED);
        v.extend_from_slice(&self.id.to_be_bytes());
        v.extend_from_slice(&self.len.to_be_bytes());
        Bytes::from(v)
    }

    /// How many chunks a string of this length spans (present or not).
    pub fn chunks(&self) -> u64 {
        self.len.div_ceil(CHUNK)
    }

    /// The engine key of chunk `index`.
    pub fn key(&self, index: u64) -> EngineKey {
        keyspace::member_key(self.id, kind::MEMBER, &index.to_be_bytes())
    }

    /// How many bytes of the string chunk `index` covers (`CHUNK`, less for the last).
    pub fn span(&self, index: u64) -> usize {
        self.len
            .saturating_sub(index.saturating_mul(CHUNK))
            .min(CHUNK) as usize
    }
}

/// A chunk record that cannot be part of the string it is under.
#[derive(Debug)]
pub(crate) enum ReadError {
    Engine(caskdb::Error),
    /// What is wrong with which chunk.
    Corrupt(String),
}

impl From<caskdb::Error> for ReadError {
    fn from(e: caskdb::Error) -> Self {
        ReadError::Engine(e)
    }
}

/// Bytes `from..to` of string `c` (`to` at most its length), absent chunks read as zeros:
/// reads only the chunks the range covers.
pub(crate) fn read(
    tx: &Transaction<'_>,
    c: &Chunked,
    from: u64,
    to: u64,
) -> Result<Vec<u8>, ReadError> {
    let to = to.min(c.len);
    if from >= to {
        return Ok(Vec::new());
    }
    let mut out = vec![0u8; (to - from) as usize];
    let (first, last) = (from / CHUNK, (to - 1) / CHUNK);
    for r in tx.range(c.key(first).to_vec()..c.key(last + 1).to_vec()) {
        let (k, v) = r?;
        let index = k
            .get(MEMBER_PREFIX_LEN..)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_be_bytes)
            .ok_or_else(|| ReadError::Corrupt(format!("a chunk key of string {}", c.id)))?;
        if v.len() > c.span(index) {
            return Err(ReadError::Corrupt(format!(
                "chunk {index} of string {} holds {} bytes, past the string's {}",
                c.id,
                v.len(),
                c.len
            )));
        }
        overlay(&mut out, from, &v, index * CHUNK);
    }
    Ok(out)
}

/// Copies into `out`, which holds the string's bytes from `out_at` on, the part of `bytes`
/// (the string's bytes from `at` on) that falls inside it; returns where that part ends in
/// the string (at least `at` and `out_at`).
pub(crate) fn overlay(out: &mut [u8], out_at: u64, bytes: &[u8], at: u64) -> u64 {
    let lo = at.max(out_at);
    let hi = (at + bytes.len() as u64).min(out_at + out.len() as u64);
    if lo < hi {
        out[(lo - out_at) as usize..(hi - out_at) as usize]
            .copy_from_slice(&bytes[(lo - at) as usize..(hi - at) as usize]);
    }
    hi.max(lo)
}

/// What a chunk record stores for `bytes` (chunk content): without its trailing zeros, which
/// reads supply; `None` (no record) if it is all zeros.
pub(crate) fn stored_form(bytes: &[u8]) -> Option<&[u8]> {
    let end = bytes.iter().rposition(|&b| b != 0)? + 1;
    Some(&bytes[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_record_round_trips_and_spans_cover_the_length() {
        let c = Chunked {
            id: 0x0102_0304_0506_0708,
            len: 2 * CHUNK + 5,
        };
        assert_eq!(Chunked::decode(&c.encode()), Some(c));
        assert_eq!(Chunked::decode(&[STRING_CHUNKED, 1, 2]), None);
        assert_eq!(c.chunks(), 3);
        assert_eq!((c.span(0), c.span(2), c.span(3)), (CHUNK as usize, 5, 0));
        assert_eq!(stored_form(&[1, 0, 2, 0, 0]), Some(&[1, 0, 2][..]));
        assert_eq!(stored_form(&[0, 0]), None);
    }

    #[test]
    fn reads_fill_absent_chunks_and_short_records_with_zeros() {
        let dir = tempfile::tempdir().unwrap();
        let db = caskdb::Db::open(dir.path()).unwrap();
        let c = Chunked {
            id: 9,
            len: 3 * CHUNK,
        };
        db.put(c.key(0), [1u8, 2]).unwrap();
        db.put(c.key(2), vec![7u8; CHUNK as usize]).unwrap();
        db.transaction(|tx| {
            let all = read(tx, &c, 0, c.len)?;
            assert_eq!(&all[..3], &[1, 2, 0]);
            assert!(all[2..2 * CHUNK as usize].iter().all(|&b| b == 0));
            assert!(all[2 * CHUNK as usize..].iter().all(|&b| b == 7));
            assert_eq!(read(tx, &c, 1, 2)?, vec![2]);
            assert_eq!(read(tx, &c, 2 * CHUNK - 1, 2 * CHUNK + 1)?, vec![0, 7]);
            assert!(read(tx, &c, 5, 5)?.is_empty());
            Ok::<_, ReadError>(())
        })
        .unwrap();
        // A record longer than its chunk's part of the string is refused, not read past.
        db.put(c.key(2), vec![7u8; CHUNK as usize + 1]).unwrap();
        let err = db.transaction(|tx| read(tx, &c, 0, c.len)).unwrap_err();
        assert!(
            matches!(err, ReadError::Corrupt(ref w) if w.contains("chunk 2")),
            "{err:?}"
        );
    }
}
