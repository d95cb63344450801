//! The `hint` harness: hint files from fuzz input, decoded as recovery pairs them with their
//! data file.

use caskdb::testing::{
    FILE_HEADER_LEN, HintWriter, MIN_RECORD_LEN, RecordType, decode_hint, max_hint_len,
};

/// `hint` flag: recompute the file header's CRC.
const FIX_HEADER_CRC: u8 = 1;
/// `hint` flag: recompute the trailer's CRC, so that mutated entries reach the entry parser.
const FIX_TRAILER_CRC: u8 = 2;
/// `hint` flag: pass a data-file length other than the one the trailer states (by
/// `flags >> 3`), so that the length check and what follows a mismatch run too.
const SKEW_LENGTH: u8 = 4;
/// Trailer: entry count u64, data file length u64, CRC u32, magic.
const HINT_TRAILER_LEN: usize = 24;

/// Decodes a hint file with `hint::decode`.
///
/// The first byte holds flags (`FIX_HEADER_CRC`, `FIX_TRAILER_CRC`, `SKEW_LENGTH`); the
/// rest is the hint file. The data file's id is the one in the file header and its length the
/// one in the trailer (skewed if asked), as when recovery pairs a hint with its data file. A
/// hint that decodes must tile the data file, fail for any other length or id, and decode to
/// the same entries once re-encoded.
pub fn hint(data: &[u8]) {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let mut buf = rest.to_vec();
    if flags & FIX_HEADER_CRC != 0 && buf.len() >= FILE_HEADER_LEN {
        let crc = crc32fast::hash(&buf[..12]);
        buf[12..16].copy_from_slice(&crc.to_le_bytes());
    }
    let trailer_at = buf.len().checked_sub(HINT_TRAILER_LEN);
    if flags & FIX_TRAILER_CRC != 0
        && let Some(t) = trailer_at.filter(|&t| t >= FILE_HEADER_LEN)
    {
        let crc = crc32fast::hash(&buf[FILE_HEADER_LEN..t + 16]);
        buf[t + 16..t + 20].copy_from_slice(&crc.to_le_bytes());
    }
    let id = le_u32(buf.get(8..12));
    let stated = trailer_at.map_or(0, |t| le_u64(buf.get(t + 8..t + 16)));
    let data_len = if flags & SKEW_LENGTH != 0 {
        stated.wrapping_add(u64::from(flags >> 3))
    } else {
        stated
    };
    let Ok(entries) = decode_hint(&buf, id, data_len) else {
        return;
    };
    // The entries tile the data file from its header to its end.
    let mut next = FILE_HEADER_LEN as u64;
    for e in &entries {
        assert_eq!(e.loc.file_id, id, "entry names another file");
        assert_eq!(e.loc.offset, next, "entries do not tile the data file");
        assert!(!e.key.is_empty(), "entry with an empty key");
        assert!(
            e.loc.len as usize >= MIN_RECORD_LEN,
            "record shorter than any record"
        );
        next += u64::from(e.loc.len);
    }
    assert_eq!(next, data_len, "entries do not cover the data file");
    assert!(
        entries.len() <= buf.len() / 5,
        "more entries than the bytes can hold"
    );
    assert!(
        decode_hint(&buf, id, data_len.wrapping_add(1)).is_err(),
        "length not checked"
    );
    assert!(
        decode_hint(&buf, id.wrapping_add(1), data_len).is_err(),
        "id not checked"
    );
    // Written again by the merge's writer, the entries decode to themselves.
    let mut w = HintWriter::new(id);
    let mut genuine = true;
    for e in &entries {
        let expire_at = e.loc.expiry();
        let kind = match expire_at {
            None => RecordType::Value,
            Some(_) => RecordType::ValueWithExpiry,
        };
        w.add(kind, expire_at, e.key, e.loc.offset, e.loc.len);
        // The smallest record that can hold this key (and expiry), with an empty value.
        let smallest =
            4 + 1 + 8 * u64::from(expire_at.is_some()) + varint_len(e.key.len() as u64) + 1;
        genuine &= u64::from(e.loc.len) >= smallest + e.key.len() as u64;
    }
    let again = w.finish(data_len);
    let decoded = decode_hint(&again, id, data_len)
        .unwrap_or_else(|e| panic!("a re-encoded hint does not decode: {e}"));
    assert_eq!(decoded, entries, "re-encoded hint decodes differently");
    // Recovery ignores hints over `max_len`: one a merge could write must stay under it.
    if genuine {
        assert!(
            again.len() as u64 <= max_hint_len(data_len),
            "a plausible hint of {} bytes is over max_len({data_len})",
            again.len()
        );
    }
}

fn le_u32(b: Option<&[u8]>) -> u32 {
    b.and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_le_bytes)
}

fn le_u64(b: Option<&[u8]>) -> u64 {
    b.and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_le_bytes)
}

/// Bytes of the LEB128 encoding of `v`.
fn varint_len(mut v: u64) -> u64 {
    let mut n = 1;
    while v >= 0x80 {
        v >>= 7;
        n += 1;
    }
    n
}
