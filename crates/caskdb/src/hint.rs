//! Hint files: key → location of every record of a merged data file, without the values, so
//! that opening a database reads kilobytes per file instead of the whole file.
//!
//! ```text
//! hint file := file header (kind 'H', id of its data file)
//!              entry*
//!              trailer: entry_count u64 LE | data_file_len u64 LE | crc32 u32 LE | "hint"
//! entry     := type u8 | [expire_at u64 LE, type 3 only] | key_len varint | record_len varint
//!              | offset varint (u64) | key
//! ```
//! The CRC covers every byte from the end of the file header to the CRC field. A hint is used
//! only if it checks, `data_file_len` equals the data file's length, and its entries tile the
//! data file exactly (the first record at offset 16, each next one where the previous ends, the
//! last ending at the end of the file — as a merge writes them); otherwise the data file is
//! scanned instead.

use crate::keydir::Loc;
use crate::log::record::{
    self, FILE_HEADER_LEN, MAX_VARINT_LEN, MIN_RECORD_LEN, RecordType, VarintError,
};

/// File kind byte of hint files.
pub(crate) const KIND_HINT: u8 = b'H';
const TRAILER_MAGIC: &[u8; 4] = b"hint";
const TRAILER_LEN: usize = 8 + 8 + 4 + 4;

/// Suffix of hint files; the stem is the id of the data file they describe.
const HINT_SUFFIX: &str = ".hint";

/// File name of the hint for data file `id`, e.g. `0000000042.hint`.
pub(crate) fn hint_file_name(id: u32) -> String {
    format!("{id:010}{HINT_SUFFIX}")
}

/// The data-file id in a hint file's name.
pub(crate) fn parse_hint_file_name(name: &str) -> Option<u32> {
    let stem = name.strip_suffix(HINT_SUFFIX)?;
    if stem.len() != 10 || !stem.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    stem.parse().ok()
}

/// Builds the bytes of a hint file, one entry per appended record.
pub struct HintWriter {
    buf: Vec<u8>,
    count: u64,
}

impl HintWriter {
    /// An empty hint for data file `data_file_id`.
    pub fn new(data_file_id: u32) -> Self {
        HintWriter {
            buf: record::encode_file_header(KIND_HINT, data_file_id).to_vec(),
            count: 0,
        }
    }

    /// Adds the entry for a record of `kind` holding `key`, at `offset`, `len` bytes long.
    pub fn add(
        &mut self,
        kind: RecordType,
        expire_at: Option<u64>,
        key: &[u8],
        offset: u64,
        len: u32,
    ) {
        self.buf.push(kind as u8);
        if let Some(t) = expire_at {
            self.buf.extend_from_slice(&t.to_le_bytes());
        }
        let mut lens = [0u8; 3 * MAX_VARINT_LEN];
        let mut n = 0;
        for v in [key.len() as u64, u64::from(len), offset] {
            record::put_varint(&mut lens, &mut n, v);
        }
        self.buf.extend_from_slice(&lens[..n]);
        self.buf.extend_from_slice(key);
        self.count += 1;
    }

    /// The finished file, for a data file of `data_file_len` bytes.
    pub fn finish(mut self, data_file_len: u64) -> Vec<u8> {
        self.buf.extend_from_slice(&self.count.to_le_bytes());
        self.buf.extend_from_slice(&data_file_len.to_le_bytes());
        let crc = crc32fast::hash(&self.buf[FILE_HEADER_LEN..]);
        self.buf.extend_from_slice(&crc.to_le_bytes());
        self.buf.extend_from_slice(TRAILER_MAGIC);
        self.buf
    }
}

/// One decoded hint entry.
#[derive(Debug, PartialEq, Eq)]
pub struct HintEntry<'a> {
    /// The record's key.
    pub key: &'a [u8],
    /// Where the record is, and its expiry.
    pub loc: Loc,
}

/// Largest hint worth reading for a data file of `data_file_len` bytes. An entry is at most 14
/// bytes longer than the record it describes (wider varints, no CRC), and a record is at least
/// 7 bytes, so an entry is at most three times its record: three times the data file's size
/// (plus header and trailer) bounds any genuine hint.
pub fn max_len(data_file_len: u64) -> u64 {
    data_file_len.saturating_mul(3) + 64
}

/// Checks a whole hint file for data file `id` of `data_file_len` bytes and returns its
/// entries, or why it cannot be used. Only entries of types 1 and 3 are accepted (a merge
/// writes no others).
pub fn decode(buf: &[u8], id: u32, data_file_len: u64) -> Result<Vec<HintEntry<'_>>, String> {
    record::check_file_header(buf, KIND_HINT, id).map_err(|e| format!("{e:?}"))?;
    if buf.len() < FILE_HEADER_LEN + TRAILER_LEN {
        return Err("shorter than header and trailer (torn?)".into());
    }
    let t = buf.len() - TRAILER_LEN;
    let trailer = &buf[t..];
    if &trailer[20..24] != TRAILER_MAGIC {
        return Err("no trailer (torn?)".into());
    }
    let count = u64::from_le_bytes(trailer[0..8].try_into().expect("8 bytes"));
    let described = u64::from_le_bytes(trailer[8..16].try_into().expect("8 bytes"));
    let crc = u32::from_le_bytes(trailer[16..20].try_into().expect("4 bytes"));
    if crc32fast::hash(&buf[FILE_HEADER_LEN..t + 16]) != crc {
        return Err("CRC mismatch".into());
    }
    if described != data_file_len {
        return Err(format!(
            "describes a data file of {described} bytes, but it has {data_file_len}"
        ));
    }
    let body = &buf[FILE_HEADER_LEN..t];
    // Each entry takes at least 5 bytes: bound the allocation by what the buffer can hold.
    let mut entries = Vec::with_capacity(count.min(body.len() as u64 / 5) as usize);
    let mut pos = 0;
    let mut next_offset = FILE_HEADER_LEN as u64;
    while pos < body.len() {
        let expire_at = match body[pos] {
            1 => 0,
            3 => {
                let bytes = body
                    .get(pos + 1..pos + 9)
                    .ok_or("entry runs past the end")?;
                let t = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
                if t == 0 {
                    return Err(format!("entry at {pos} has a zero expiry"));
                }
                pos += 8;
                t
            }
            other => return Err(format!("entry of unsupported type {other} at {pos}")),
        };
        pos += 1;
        let key_len = get_varint(body, &mut pos)?;
        let len = get_varint(body, &mut pos)?;
        let offset = get_varint(body, &mut pos)?;
        let key_end = usize::try_from(key_len)
            .ok()
            .and_then(|k| pos.checked_add(k))
            .filter(|&e| e <= body.len())
            .ok_or("entry key runs past the end")?;
        let len = u32::try_from(len)
            .ok()
            .filter(|&l| l as usize >= MIN_RECORD_LEN)
            .ok_or("record length out of range")?;
        if key_len == 0 || offset != next_offset {
            return Err(format!(
                "entry at {pos} is not where the previous record ends ({offset} vs {next_offset})"
            ));
        }
        next_offset = offset
            .checked_add(u64::from(len))
            .filter(|&end| end <= data_file_len)
            .ok_or_else(|| format!("entry at {pos} points past the end of the data file"))?;
        entries.push(HintEntry {
            key: &body[pos..key_end],
            loc: Loc {
                file_id: id,
                len,
                offset,
                expire_at,
            },
        });
        pos = key_end;
    }
    if entries.len() as u64 != count {
        return Err(format!("{} entries, trailer says {count}", entries.len()));
    }
    if next_offset != data_file_len {
        return Err(format!(
            "entries cover {next_offset} of the data file's {data_file_len} bytes"
        ));
    }
    Ok(entries)
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Result<u64, String> {
    record::get_varint(buf, pos, MAX_VARINT_LEN).map_err(|e| match e {
        VarintError::Incomplete => "entry runs past the end".into(),
        VarintError::TooLong => "varint longer than 10 bytes".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        let mut w = HintWriter::new(7);
        w.add(RecordType::Value, None, b"alpha", 16, 20);
        w.add(RecordType::Value, None, b"beta", 36, 300);
        w.add(RecordType::Value, None, b"gamma", 336, 40);
        w.finish(376)
    }

    fn hint(entries: &[(&[u8], u64, u32)], data_len: u64) -> Vec<u8> {
        let mut w = HintWriter::new(7);
        for &(k, off, len) in entries {
            w.add(RecordType::Value, None, k, off, len);
        }
        w.finish(data_len)
    }

    #[test]
    fn roundtrip() {
        let buf = sample();
        let e = decode(&buf, 7, 376).unwrap();
        assert_eq!(e.len(), 3);
        assert_eq!(e[1].key, b"beta");
        assert_eq!(
            e[1].loc,
            Loc {
                file_id: 7,
                len: 300,
                offset: 36,
                expire_at: 0
            }
        );
        assert_eq!(parse_hint_file_name(&hint_file_name(7)), Some(7));
    }

    #[test]
    fn checksummed_but_wrong_hints_are_rejected() {
        // a missing entry (a gap), an overlap, an entry past the end, an offset that overflows,
        // a record shorter than any record, too little coverage
        type Case<'a> = (&'a [(&'a [u8], u64, u32)], u64);
        let cases: [Case; 6] = [
            (&[(b"a", 16, 20), (b"c", 56, 20)], 76),
            (&[(b"a", 16, 20), (b"b", 30, 20)], 50),
            (&[(b"a", 16, 20), (b"b", 36, 100)], 76),
            (&[(b"a", u64::MAX - 3, 20)], 76),
            (&[(b"a", 16, 3)], 19),
            (&[(b"a", 16, 20)], 76),
        ];
        for (entries, data_len) in cases {
            assert!(
                decode(&hint(entries, data_len), 7, data_len).is_err(),
                "{entries:?}"
            );
        }
        let mut w = HintWriter::new(7);
        w.add(RecordType::Tombstone, None, b"a", 16, 28);
        assert!(
            decode(&w.finish(44), 7, 44).is_err(),
            "merge output has no tombstones"
        );
        let mut w = HintWriter::new(7);
        w.add(RecordType::ValueWithExpiry, Some(9), b"a", 16, 28);
        assert_eq!(decode(&w.finish(44), 7, 44).unwrap()[0].loc.expire_at, 9);
        assert!(max_len(376) >= sample().len() as u64);
    }

    #[test]
    fn every_truncation_and_every_bit_flip_is_rejected() {
        let buf = sample();
        for cut in 0..buf.len() {
            assert!(decode(&buf[..cut], 7, 376).is_err(), "cut at {cut}");
        }
        for bit in 0..buf.len() * 8 {
            let mut b = buf.clone();
            b[bit / 8] ^= 1 << (bit % 8);
            assert!(decode(&b, 7, 376).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn a_hint_for_another_file_or_length_is_rejected() {
        let buf = sample();
        assert!(decode(&buf, 8, 376).is_err());
        assert!(decode(&buf, 7, 377).is_err());
    }
}
