//! Redis's DUMP payload (see `docs/FORMAT.md`): one value in RDB's encoding, then the RDB
//! version (2 bytes, little endian) and a CRC-64 (Jones, as Redis's `crc64`; 8 bytes, little
//! endian) of everything before it. [`restore`] reads every encoding redis-server 7.0 writes
//! (and the older ones it still loads); [`dump`] writes the plainest one of each type, which
//! Redis loads to the same value.
//!
//! Independent of the commands: a payload in, a [`Value`] out, and back. `decode` reads the RDB
//! object, `packed` the blobs inside it (listpack, ziplist, intset, zipmap), `lzf` compressed
//! strings; `encode` writes.

mod decode;
mod encode;
mod lzf;
mod packed;

use bytes::Bytes;
use crc::{CRC_64_REDIS, Crc};

/// The RDB version this server writes and the newest it reads (Redis 7.0's).
pub const RDB_VERSION: u16 = 10;

/// The RDB type bytes of values (Redis's `RDB_TYPE_*`).
mod ty {
    pub const STRING: u8 = 0;
    pub const LIST: u8 = 1;
    pub const SET: u8 = 2;
    pub const ZSET: u8 = 3;
    pub const HASH: u8 = 4;
    pub const ZSET_2: u8 = 5;
    pub const MODULE: u8 = 6;
    pub const MODULE_2: u8 = 7;
    pub const HASH_ZIPMAP: u8 = 9;
    pub const LIST_ZIPLIST: u8 = 10;
    pub const SET_INTSET: u8 = 11;
    pub const ZSET_ZIPLIST: u8 = 12;
    pub const HASH_ZIPLIST: u8 = 13;
    pub const LIST_QUICKLIST: u8 = 14;
    pub const STREAM_LISTPACKS: u8 = 15;
    pub const HASH_LISTPACK: u8 = 16;
    pub const ZSET_LISTPACK: u8 = 17;
    pub const LIST_QUICKLIST_2: u8 = 18;
    pub const STREAM_LISTPACKS_2: u8 = 19;
}

const CRC64: Crc<u64> = Crc::<u64>::new(&CRC_64_REDIS);

/// A value as a payload carries it. Collections are never empty.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A string.
    String(Bytes),
    /// A list's elements, head first.
    List(Vec<Bytes>),
    /// A set's members (distinct).
    Set(Vec<Bytes>),
    /// A hash's (field, value) pairs (distinct fields).
    Hash(Vec<(Bytes, Bytes)>),
    /// A sorted set's (member, score) pairs (distinct members, no NaN).
    ZSet(Vec<(Bytes, f64)>),
}

/// Why a payload was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Shorter than its footer, written by a newer RDB version, or its CRC does not match.
    Checksum,
    /// The value is malformed: truncated, trailing bytes, an unknown type or encoding, an empty
    /// or duplicated collection, a module value.
    Format,
    /// A stream, which this server has no type for.
    Stream,
}

/// Footer: 2 bytes of version, 8 of CRC.
const FOOTER: usize = 10;

/// An integer's decimal text, as Redis turns integer encodings back into strings.
fn itoa(n: i64) -> Vec<u8> {
    n.to_string().into_bytes()
}

/// The DUMP payload of `value`.
pub fn dump(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    encode::value(value, &mut out);
    out.extend_from_slice(&RDB_VERSION.to_le_bytes());
    let crc = CRC64.checksum(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

/// The value in `payload`, checked as Redis's RESTORE does (version, then CRC), then decoded
/// whole: the body must hold exactly one value. No decoded string may be longer than
/// `max_string` (memory is bounded by the payload's size and that).
pub fn restore(payload: &[u8], max_string: u64) -> Result<Value, Error> {
    let body_len = payload.len().checked_sub(FOOTER).ok_or(Error::Checksum)?;
    let (body, footer) = payload.split_at(body_len);
    let version = u16::from_le_bytes([footer[0], footer[1]]);
    if version > RDB_VERSION {
        return Err(Error::Checksum);
    }
    let crc = CRC64.checksum(&payload[..body_len + 2]);
    if crc.to_le_bytes() != footer[2..] {
        return Err(Error::Checksum);
    }
    decode::payload_body(body, max_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_is_redis_crc64() {
        // Redis's crc64 self-test vector.
        assert_eq!(CRC64.checksum(b"123456789"), 0xe9c6_d914_c4b8_d9ca);
    }

    #[test]
    fn redis_string_payload() {
        // `SET s hello` then `DUMP s` on redis-server 7.0.15.
        let p = b"\x00\x05hello\n\x00cr\xdfve4 \n";
        let hello = Value::String(Bytes::from_static(b"hello"));
        assert_eq!(restore(p, u64::MAX), Ok(hello.clone()));
        assert_eq!(dump(&hello), p.to_vec());
        let mut bad = p.to_vec();
        bad[3] ^= 1;
        assert_eq!(restore(&bad, u64::MAX), Err(Error::Checksum));
        assert_eq!(restore(&p[..9], u64::MAX), Err(Error::Checksum));
    }

    #[test]
    fn round_trips() {
        let b = |s: &[u8]| Bytes::copy_from_slice(s);
        let values = [
            Value::String(Bytes::new()),
            Value::String(b(&[0xff; 300])),
            Value::List(vec![b(b"a"), Bytes::new(), b(&[7; 20_000])]),
            Value::Set(vec![b(b"1"), b(b"x")]),
            Value::Hash(vec![(b(b"f"), b(b"v"))]),
            Value::ZSet(vec![
                (b(b"a"), f64::NEG_INFINITY),
                (b(b"b"), 1.5),
                (b(b"c"), f64::INFINITY),
            ]),
        ];
        for v in values {
            assert_eq!(restore(&dump(&v), u64::MAX), Ok(v));
        }
    }

    #[test]
    fn newer_version_is_refused() {
        let mut p = dump(&Value::String(Bytes::from_static(b"x")));
        let at = p.len() - FOOTER;
        p[at..at + 2].copy_from_slice(&(RDB_VERSION + 1).to_le_bytes());
        let crc = CRC64.checksum(&p[..at + 2]);
        p[at + 2..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(restore(&p, u64::MAX), Err(Error::Checksum));
    }
}
