//! Byte layout of data-file headers and log records (see `docs/FORMAT.md`).
//!
//! ```text
//! record := crc32 u32 LE | type u8 | [expire_at u64 LE, type 3 only] | key_len varint | value_len varint | key | value
//! ```
//! The CRC covers every byte after itself. Lengths are LEB128 varints of at most 5 bytes (u32).

/// Length of the header at the start of every data file.
pub const FILE_HEADER_LEN: usize = 16;
/// First bytes of every caskdb file.
const MAGIC: [u8; 6] = *b"caskdb";
/// File kind byte for data files. (Hint files will use `b'H'`.)
pub const KIND_DATA: u8 = b'D';
/// The on-disk format version this build reads and writes.
pub(crate) const FORMAT_VERSION: u8 = 1;

/// Largest possible record header: crc + type + expire_at + two 5-byte varints.
pub const MAX_RECORD_HEADER_LEN: usize = 4 + 1 + 8 + 5 + 5;
/// Smallest possible record: crc + type + two 1-byte varints (empty key is never written, but
/// the decoder does not rely on that).
pub const MIN_RECORD_LEN: usize = 4 + 1 + 1 + 1;

/// The type byte of a record. Zero is never a valid type, so a zero-filled region never decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordType {
    /// A key and its value.
    Value = 1,
    /// A deletion marker: the key, no value.
    Tombstone = 2,
    /// Reserved for TTL: a value with an absolute expiry (`expire_at`, ms since the Unix epoch).
    ValueWithExpiry = 3,
    /// Reserved for atomic batches: empty key; the value is a sequence of records of the other
    /// types, each with its own CRC, applied only if this envelope's CRC checks.
    Batch = 4,
}

impl RecordType {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => RecordType::Value,
            2 => RecordType::Tombstone,
            3 => RecordType::ValueWithExpiry,
            4 => RecordType::Batch,
            _ => return None,
        })
    }
}

/// A decoded record header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordHeader {
    /// The stored CRC.
    pub crc: u32,
    /// The type byte.
    pub kind: RecordType,
    /// The expiry, for type 3.
    pub expire_at: Option<u64>,
    /// Bytes of the key.
    pub key_len: u32,
    /// Bytes of the value.
    pub value_len: u32,
    /// Bytes taken by the header itself (crc through value_len).
    pub header_len: usize,
}

impl RecordHeader {
    /// Length of the whole record: header, key and value.
    pub fn total_len(&self) -> u64 {
        self.header_len as u64 + self.key_len as u64 + self.value_len as u64
    }
}

/// Why a header could not be decoded.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The buffer ends before the header does.
    Incomplete,
    /// The bytes cannot be a record header.
    Invalid(String),
}

/// Decodes the header at the start of `buf` (which may hold more than the header).
pub fn decode_header(buf: &[u8]) -> Result<RecordHeader, HeaderError> {
    if buf.len() < 5 {
        return Err(HeaderError::Incomplete);
    }
    let crc = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let kind = RecordType::from_byte(buf[4])
        .ok_or_else(|| HeaderError::Invalid(format!("unknown record type {}", buf[4])))?;
    let mut pos = 5;
    let expire_at = if kind == RecordType::ValueWithExpiry {
        let bytes = buf.get(pos..pos + 8).ok_or(HeaderError::Incomplete)?;
        pos += 8;
        Some(u64::from_le_bytes(bytes.try_into().expect("8 bytes")))
    } else {
        None
    };
    let key_len = read_varint(buf, &mut pos)?;
    let value_len = read_varint(buf, &mut pos)?;
    Ok(RecordHeader {
        crc,
        kind,
        expire_at,
        key_len,
        value_len,
        header_len: pos,
    })
}

/// Reads a LEB128 length at `*pos`, advancing it: at most 5 bytes, and it must fit in u32.
fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u32, HeaderError> {
    match get_varint(buf, pos, 5) {
        Ok(v) => {
            u32::try_from(v).map_err(|_| HeaderError::Invalid("length varint overflows u32".into()))
        }
        Err(VarintError::Incomplete) => Err(HeaderError::Incomplete),
        Err(VarintError::TooLong) => Err(HeaderError::Invalid(
            "length varint longer than 5 bytes".into(),
        )),
    }
}

/// Longest LEB128 encoding of a u64.
pub(crate) const MAX_VARINT_LEN: usize = 10;

/// Why a varint could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum VarintError {
    /// The buffer ends inside it.
    Incomplete,
    /// It goes on past the allowed number of bytes.
    TooLong,
}

/// Encodes `v` as LEB128 at `out[*pos..]`, advancing `pos`. Records and hint entries share it.
pub(crate) fn put_varint(out: &mut [u8], pos: &mut usize, mut v: u64) {
    while v >= 0x80 {
        out[*pos] = (v as u8) | 0x80;
        v >>= 7;
        *pos += 1;
    }
    out[*pos] = v as u8;
    *pos += 1;
}

/// Decodes a LEB128 value of at most `max_len` bytes at `buf[*pos..]`, advancing `pos`.
pub(crate) fn get_varint(buf: &[u8], pos: &mut usize, max_len: usize) -> Result<u64, VarintError> {
    let mut value: u64 = 0;
    for i in 0..max_len {
        let b = *buf.get(*pos).ok_or(VarintError::Incomplete)?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(VarintError::TooLong)
}

/// Encodes the header of a record holding `key` and `value` into `out`, CRC included, and
/// returns its length. The record on disk is `out[..len] ++ key ++ value`.
///
/// Callers guarantee both lengths fit in u32 (enforced by the size limits in `Options`).
pub fn encode_header(
    kind: RecordType,
    expire_at: Option<u64>,
    key: &[u8],
    value: &[u8],
    out: &mut [u8; MAX_RECORD_HEADER_LEN],
) -> usize {
    out[4] = kind as u8;
    let mut pos = 5;
    if let Some(t) = expire_at {
        out[5..13].copy_from_slice(&t.to_le_bytes());
        pos = 13;
    }
    put_varint(out, &mut pos, key.len() as u64);
    put_varint(out, &mut pos, value.len() as u64);
    let mut h = crc32fast::Hasher::new();
    h.update(&out[4..pos]);
    h.update(key);
    h.update(value);
    out[..4].copy_from_slice(&h.finalize().to_le_bytes());
    pos
}

/// Checks the CRC of a whole record (`buf` holds exactly header, key and value).
pub fn crc_matches(header: &RecordHeader, buf: &[u8]) -> bool {
    crc32fast::hash(&buf[4..]) == header.crc
}

/// Encodes a data-file header for file `id`.
pub fn encode_file_header(kind: u8, id: u32) -> [u8; FILE_HEADER_LEN] {
    let mut h = [0u8; FILE_HEADER_LEN];
    h[..6].copy_from_slice(&MAGIC);
    h[6] = kind;
    h[7] = FORMAT_VERSION;
    h[8..12].copy_from_slice(&id.to_le_bytes());
    let crc = crc32fast::hash(&h[..12]);
    h[12..16].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What is wrong with a file header.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FileHeaderError {
    /// Not a caskdb file of the expected kind, or a bad CRC.
    Invalid(String),
    /// A caskdb file of another format version.
    Version(u8),
}

/// Checks a file header against the expected kind and file id.
pub(crate) fn check_file_header(h: &[u8], kind: u8, id: u32) -> Result<(), FileHeaderError> {
    if h.len() < FILE_HEADER_LEN {
        return Err(FileHeaderError::Invalid(format!(
            "file header is {} bytes, expected {FILE_HEADER_LEN}",
            h.len()
        )));
    }
    if h[..6] != MAGIC {
        return Err(FileHeaderError::Invalid(
            "not a caskdb file (bad magic)".into(),
        ));
    }
    let stored = u32::from_le_bytes(h[12..16].try_into().expect("4 bytes"));
    if crc32fast::hash(&h[..12]) != stored {
        return Err(FileHeaderError::Invalid("file header CRC mismatch".into()));
    }
    if h[7] != FORMAT_VERSION {
        return Err(FileHeaderError::Version(h[7]));
    }
    if h[6] != kind {
        return Err(FileHeaderError::Invalid(format!(
            "file kind {:?}, expected {:?}",
            h[6] as char, kind as char
        )));
    }
    let found = u32::from_le_bytes(h[8..12].try_into().expect("4 bytes"));
    if found != id {
        return Err(FileHeaderError::Invalid(format!(
            "header names file id {found}, file name says {id}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(kind: RecordType, expire_at: Option<u64>, key: &[u8], value: &[u8]) -> Vec<u8> {
        let mut h = [0u8; MAX_RECORD_HEADER_LEN];
        let n = encode_header(kind, expire_at, key, value, &mut h);
        [&h[..n], key, value].concat()
    }

    #[test]
    fn known_bytes_of_a_small_record() {
        let rec = encode(RecordType::Value, None, b"foo", b"bar");
        // crc(4) type(1) klen(1) vlen(1) key(3) value(3)
        assert_eq!(rec.len(), 13);
        assert_eq!(&rec[4..], &[1, 3, 3, b'f', b'o', b'o', b'b', b'a', b'r']);
        assert_eq!(
            u32::from_le_bytes(rec[..4].try_into().unwrap()),
            crc32fast::hash(&rec[4..])
        );
    }

    #[test]
    fn varint_boundaries_roundtrip() {
        for v in [0u32, 1, 127, 128, 16383, 16384, u32::MAX - 1, u32::MAX] {
            let mut out = [0u8; 5];
            let mut pos = 0;
            put_varint(&mut out, &mut pos, u64::from(v));
            let mut rpos = 0;
            assert_eq!(read_varint(&out[..pos], &mut rpos), Ok(v));
            assert_eq!(rpos, pos);
        }
    }

    #[test]
    fn oversized_varint_is_invalid_not_a_panic() {
        let buf = [0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x7f, 0];
        assert!(matches!(decode_header(&buf), Err(HeaderError::Invalid(_))));
        let buf = [0, 0, 0, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x80, 0];
        assert!(matches!(decode_header(&buf), Err(HeaderError::Invalid(_))));
    }

    #[test]
    fn zero_bytes_never_decode() {
        assert!(matches!(
            decode_header(&[0u8; 32]),
            Err(HeaderError::Invalid(_))
        ));
    }

    #[test]
    fn file_header_checks() {
        let h = encode_file_header(KIND_DATA, 7);
        assert_eq!(check_file_header(&h, KIND_DATA, 7), Ok(()));
        assert!(check_file_header(&h, KIND_DATA, 8).is_err());
        assert!(check_file_header(&h[..10], KIND_DATA, 7).is_err());
        let mut v = h;
        v[7] = 9;
        let crc = crc32fast::hash(&v[..12]);
        v[12..16].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            check_file_header(&v, KIND_DATA, 7),
            Err(FileHeaderError::Version(9))
        );
        let mut bad = h;
        bad[9] ^= 1;
        assert!(matches!(
            check_file_header(&bad, KIND_DATA, 7),
            Err(FileHeaderError::Invalid(_))
        ));
    }

    proptest! {
        #[test]
        fn encode_decode_roundtrip(
            key in proptest::collection::vec(any::<u8>(), 1..300),
            value in proptest::collection::vec(any::<u8>(), 0..300),
            expiry in proptest::option::of(any::<u64>()),
        ) {
            let kind = if expiry.is_some() { RecordType::ValueWithExpiry } else { RecordType::Value };
            let rec = encode(kind, expiry, &key, &value);
            let h = decode_header(&rec).unwrap();
            prop_assert_eq!(h.kind, kind);
            prop_assert_eq!(h.expire_at, expiry);
            prop_assert_eq!(h.total_len(), rec.len() as u64);
            prop_assert!(crc_matches(&h, &rec));
            let k = &rec[h.header_len..h.header_len + key.len()];
            prop_assert_eq!(k, &key[..]);
        }

        #[test]
        fn any_single_bit_flip_is_detected(
            key in proptest::collection::vec(any::<u8>(), 1..64),
            value in proptest::collection::vec(any::<u8>(), 0..64),
            bit in any::<usize>(),
        ) {
            let mut rec = encode(RecordType::Value, None, &key, &value);
            let bit = bit % (rec.len() * 8);
            rec[bit / 8] ^= 1 << (bit % 8);
            match decode_header(&rec) {
                Err(_) => {}
                Ok(h) => prop_assert!(h.total_len() != rec.len() as u64 || !crc_matches(&h, &rec)),
            }
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(buf in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_header(&buf);
        }
    }
}
