//! The packed blobs a payload may carry as one string: listpacks (Redis 7), ziplists (Redis 3.2
//! to 6.2), intsets and zipmaps (Redis 2.4). Each is checked whole, as Redis's deep integrity
//! validation does (sizes in the header, every entry inside the blob, the terminator where the
//! header says, the element count), and its elements returned as strings (integers as their
//! decimal text).

use super::{Error, itoa};

type Result<T> = std::result::Result<T, Error>;

/// `n` bytes of `blob` from `at`, if they are inside it.
fn slice(blob: &[u8], at: usize, n: usize) -> Result<&[u8]> {
    blob.get(at..at.checked_add(n).ok_or(Error::Format)?)
        .ok_or(Error::Format)
}

fn u16_le(blob: &[u8], at: usize) -> Result<u16> {
    let b = slice(blob, at, 2)?;
    Ok(u16::from_le_bytes([b[0], b[1]]))
}

fn u32_le(blob: &[u8], at: usize) -> Result<u32> {
    let b = slice(blob, at, 4)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// A little-endian two's-complement integer of `n` bytes (1 to 8) at `at`.
fn int_le(blob: &[u8], at: usize, n: usize) -> Result<i64> {
    let b = slice(blob, at, n)?;
    let mut v = [0u8; 8];
    v[..n].copy_from_slice(b);
    // Sign-extend from the top byte read.
    let shift = 64 - 8 * n as u32;
    Ok((i64::from_le_bytes(v) << shift) >> shift)
}

/// A listpack's elements.
///
/// Layout: total bytes (u32 LE), element count (u16 LE, 65535: unknown), entries, 0xFF. An
/// entry is its encoding (with the string length or the integer), the data, then the length of
/// those two as a backwards varint (7 bits a byte).
pub(super) fn listpack(lp: &[u8]) -> Result<Vec<Vec<u8>>> {
    const HEADER: usize = 6;
    const EOF: u8 = 0xff;
    if lp.len() < HEADER + 1 || u32_le(lp, 0)? as usize != lp.len() || lp[lp.len() - 1] != EOF {
        return Err(Error::Format);
    }
    let declared = u16_le(lp, 4)?;
    let end = lp.len() - 1;
    let mut out = Vec::new();
    let mut p = HEADER;
    while p < end {
        let b = lp[p];
        // (header bytes, data bytes, integer value if an integer)
        let (head, data, int): (usize, usize, Option<i64>) = match b {
            0x00..=0x7f => (1, 0, Some(i64::from(b))),
            0x80..=0xbf => (1, usize::from(b & 0x3f), None),
            0xc0..=0xdf => {
                let u =
                    (i64::from(b & 0x1f) << 8) | i64::from(*lp.get(p + 1).ok_or(Error::Format)?);
                (2, 0, Some(if u >= 1 << 12 { u - (1 << 13) } else { u }))
            }
            0xe0..=0xef => {
                let lo = usize::from(*lp.get(p + 1).ok_or(Error::Format)?);
                (2, (usize::from(b & 0x0f) << 8) | lo, None)
            }
            0xf0 => (5, u32_le(lp, p + 1)? as usize, None),
            0xf1 => (3, 0, Some(int_le(lp, p + 1, 2)?)),
            0xf2 => (4, 0, Some(int_le(lp, p + 1, 3)?)),
            0xf3 => (5, 0, Some(int_le(lp, p + 1, 4)?)),
            0xf4 => (9, 0, Some(int_le(lp, p + 1, 8)?)),
            _ => return Err(Error::Format),
        };
        let entry = head.checked_add(data).ok_or(Error::Format)?;
        let back = backlen_size(entry);
        let next = p
            .checked_add(entry)
            .and_then(|n| n.checked_add(back))
            .ok_or(Error::Format)?;
        if next > end || decode_backlen(&lp[p + entry..next]) != Some(entry as u64) {
            return Err(Error::Format);
        }
        out.push(match int {
            Some(v) => itoa(v),
            None => lp[p + head..p + entry].to_vec(),
        });
        p = next;
    }
    if declared != u16::MAX && usize::from(declared) != out.len() {
        return Err(Error::Format);
    }
    Ok(out)
}

/// An element to write into a listpack.
pub(super) enum Item<'a> {
    Int(i64),
    Str(&'a [u8]),
}

/// A listpack of `items` (the format [`listpack`] reads): integers from 0 to 127 in one
/// byte, others in 9; strings with a 6-, 12- or 32-bit length.
pub(super) fn write_listpack(items: &[Item<'_>]) -> Vec<u8> {
    let mut out = vec![0u8; 6];
    for item in items {
        let start = out.len();
        match item {
            Item::Int(v @ 0..=127) => out.push(*v as u8),
            Item::Int(v) => {
                out.push(0xf4);
                out.extend_from_slice(&v.to_le_bytes());
            }
            Item::Str(s) if s.len() < 64 => {
                out.push(0x80 | s.len() as u8);
                out.extend_from_slice(s);
            }
            Item::Str(s) if s.len() < 4096 => {
                out.extend_from_slice(&[0xe0 | (s.len() >> 8) as u8, s.len() as u8]);
                out.extend_from_slice(s);
            }
            Item::Str(s) => {
                out.push(0xf0);
                out.extend_from_slice(&(s.len() as u32).to_le_bytes());
                out.extend_from_slice(s);
            }
        }
        // The entry's size, backwards: its high 7-bit group first, each later byte marked.
        let size = (out.len() - start) as u64;
        let n = backlen_size(size as usize);
        for i in (0..n).rev() {
            let group = ((size >> (7 * i)) & 0x7f) as u8;
            out.push(if i == n - 1 { group } else { group | 0x80 });
        }
    }
    out.push(0xff);
    let total = out.len() as u32;
    out[..4].copy_from_slice(&total.to_le_bytes());
    let count = u16::try_from(items.len()).unwrap_or(u16::MAX);
    out[4..6].copy_from_slice(&count.to_le_bytes());
    out
}

/// Bytes of the backwards varint of an entry of `len` bytes.
fn backlen_size(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..16383 => 2,
        16383..2097151 => 3,
        2097151..268435455 => 4,
        _ => 5,
    }
}

/// The value of a backwards varint (its bytes in memory order: the last holds the low 7 bits,
/// every byte but the first has the high bit set).
fn decode_backlen(bytes: &[u8]) -> Option<u64> {
    let (first, rest) = bytes.split_first()?;
    if first & 0x80 != 0 || rest.iter().any(|b| b & 0x80 == 0) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0u64, |v, b| (v << 7) | u64::from(b & 0x7f)),
    )
}

/// A ziplist's elements.
///
/// Layout: total bytes (u32 LE), offset of the last entry (u32 LE), element count (u16 LE,
/// 65535: unknown), entries, 0xFF. An entry is the previous entry's size (1 byte, or 0xFE and a
/// u32 LE), its encoding (string lengths big endian; integers of 1, 2, 3, 4 or 8 bytes LE, or a
/// 4-bit immediate), then the data.
pub(super) fn ziplist(zl: &[u8]) -> Result<Vec<Vec<u8>>> {
    const HEADER: usize = 10;
    const END: u8 = 0xff;
    if zl.len() < HEADER + 1 || u32_le(zl, 0)? as usize != zl.len() || zl[zl.len() - 1] != END {
        return Err(Error::Format);
    }
    let tail = u32_le(zl, 4)? as usize;
    let declared = u16_le(zl, 8)?;
    let end = zl.len() - 1;
    let mut out = Vec::new();
    let mut p = HEADER;
    let mut prev_size = 0usize;
    let mut last = None;
    while p < end {
        let (prevlen, prevlen_size) = match zl[p] {
            0xfe => (u32_le(zl, p + 1)? as usize, 5),
            0xff => return Err(Error::Format),
            n => (usize::from(n), 1),
        };
        if prevlen != prev_size {
            return Err(Error::Format);
        }
        let q = p + prevlen_size;
        let enc = *zl.get(q).ok_or(Error::Format)?;
        let (head, data, int): (usize, usize, Option<i64>) = match enc {
            0x00..=0x3f => (1, usize::from(enc & 0x3f), None),
            0x40..=0x7f => {
                let lo = usize::from(*zl.get(q + 1).ok_or(Error::Format)?);
                (2, (usize::from(enc & 0x3f) << 8) | lo, None)
            }
            0x80..=0xbf => {
                let b = slice(zl, q + 1, 4)?;
                (
                    5,
                    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize,
                    None,
                )
            }
            0xc0 => (1, 0, Some(int_le(zl, q + 1, 2)?)),
            0xd0 => (1, 0, Some(int_le(zl, q + 1, 4)?)),
            0xe0 => (1, 0, Some(int_le(zl, q + 1, 8)?)),
            0xf0 => (1, 0, Some(int_le(zl, q + 1, 3)?)),
            0xfe => (1, 0, Some(int_le(zl, q + 1, 1)?)),
            0xf1..=0xfd => (1, 0, Some(i64::from(enc & 0x0f) - 1)),
            _ => return Err(Error::Format),
        };
        let int_bytes = match enc {
            0xc0 => 2,
            0xd0 => 4,
            0xe0 => 8,
            0xf0 => 3,
            0xfe => 1,
            _ => 0,
        };
        let size = prevlen_size + head + data + int_bytes;
        let next = p.checked_add(size).ok_or(Error::Format)?;
        if next > end {
            return Err(Error::Format);
        }
        out.push(match int {
            Some(v) => itoa(v),
            None => zl[q + head..q + head + data].to_vec(),
        });
        last = Some(p);
        prev_size = size;
        p = next;
    }
    if last.is_some_and(|l| l != tail)
        || (declared != u16::MAX && usize::from(declared) != out.len())
    {
        return Err(Error::Format);
    }
    Ok(out)
}

/// An intset's members, as decimal text.
///
/// Layout: the width of each integer (u32 LE: 2, 4 or 8), the count (u32 LE), then the
/// integers, little endian, strictly ascending. An empty intset is malformed.
pub(super) fn intset(is: &[u8]) -> Result<Vec<Vec<u8>>> {
    let width = u32_le(is, 0)? as usize;
    let count = u32_le(is, 4)? as usize;
    if !matches!(width, 2 | 4 | 8)
        || count == 0
        || count.checked_mul(width).and_then(|n| n.checked_add(8)) != Some(is.len())
    {
        return Err(Error::Format);
    }
    let mut out = Vec::with_capacity(count);
    let mut prev = None;
    for i in 0..count {
        let v = int_le(is, 8 + i * width, width)?;
        if prev.is_some_and(|p| v <= p) {
            return Err(Error::Format);
        }
        prev = Some(v);
        out.push(itoa(v));
    }
    Ok(out)
}

/// A zipmap's (field, value) pairs.
///
/// Layout: a count byte (254: unknown), then per pair the field's length (1 byte, or
/// 254 and a u32 LE), the field, the value's length, a byte of free space after the value, the
/// value and that free space; 0xFF at the end. An empty zipmap is malformed.
pub(super) fn zipmap(zm: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    const END: u8 = 0xff;
    const BIGLEN: u8 = 254;
    let (&declared, _) = zm.split_first().ok_or(Error::Format)?;
    if zm.len() < 2 || zm[zm.len() - 1] != END {
        return Err(Error::Format);
    }
    let end = zm.len() - 1;
    // (length, bytes it took) at `at`.
    let len_at = |at: usize| -> Result<(usize, usize)> {
        match *zm.get(at).ok_or(Error::Format)? {
            END => Err(Error::Format),
            BIGLEN => Ok((u32_le(zm, at + 1)? as usize, 5)),
            n => Ok((usize::from(n), 1)),
        }
    };
    let mut out = Vec::new();
    let mut p = 1;
    while p < end {
        let (flen, s) = len_at(p)?;
        let field = slice(zm, p + s, flen)?.to_vec();
        p += s + flen;
        let (vlen, s) = len_at(p)?;
        let free = usize::from(*zm.get(p + s).ok_or(Error::Format)?);
        let value = slice(zm, p + s + 1, vlen)?.to_vec();
        p += s + 1 + vlen + free;
        if p > end {
            return Err(Error::Format);
        }
        out.push((field, value));
    }
    if out.is_empty() || (declared != BIGLEN && usize::from(declared) != out.len()) {
        return Err(Error::Format);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listpack of `entries` (encoding and data bytes of each), with their backlens.
    fn lp(entries: &[&[u8]], count: u16) -> Vec<u8> {
        let mut body = Vec::new();
        for e in entries {
            body.extend_from_slice(e);
            let n = e.len();
            match backlen_size(n) {
                1 => body.push(n as u8),
                2 => body.extend_from_slice(&[(n >> 7) as u8, (n & 127) as u8 | 128]),
                _ => unreachable!(),
            }
        }
        let mut out = ((body.len() + 7) as u32).to_le_bytes().to_vec();
        out.extend_from_slice(&count.to_le_bytes());
        out.extend(body);
        out.push(0xff);
        out
    }

    #[test]
    fn listpack_encodings() {
        let mut long = vec![0xe0 | 1, 0x00];
        long.extend(vec![b'z'; 256]);
        let got = listpack(&lp(
            &[
                b"\x05",
                b"\x83abc",
                b"\xdf\xff",
                b"\xc1\x00",
                b"\xf1\x00\x80",
                b"\xf2\xff\xff\x7f",
                b"\xf3\x00\x00\x00\x80",
                b"\xf4\xff\xff\xff\xff\xff\xff\xff\xff",
                &long,
            ],
            9,
        ))
        .unwrap();
        let want: Vec<Vec<u8>> = [
            &b"5"[..],
            b"abc",
            b"-1",
            b"256",
            b"-32768",
            b"8388607",
            b"-2147483648",
            b"-1",
        ]
        .iter()
        .map(|s| s.to_vec())
        .chain([vec![b'z'; 256]])
        .collect();
        assert_eq!(got, want);
        // A wrong count, a wrong backlen, a truncated entry.
        assert!(listpack(&lp(&[b"\x05"], 2)).is_err());
        let mut bad = lp(&[b"\x83abc"], 1);
        bad[10] = 3;
        assert!(listpack(&bad).is_err());
        assert!(listpack(&lp(&[b"\x85abc"], 1)).is_err());
        assert_eq!(listpack(&lp(&[b"\x05"], u16::MAX)).unwrap(), vec![b"5"]);
    }

    #[test]
    fn intset_checks() {
        let mut is = vec![2, 0, 0, 0, 2, 0, 0, 0];
        is.extend_from_slice(&(-3i16).to_le_bytes());
        is.extend_from_slice(&7i16.to_le_bytes());
        assert_eq!(intset(&is).unwrap(), vec![b"-3".to_vec(), b"7".to_vec()]);
        is[10..12].copy_from_slice(&(-3i16).to_le_bytes());
        assert!(intset(&is).is_err());
        assert!(intset(&[2, 0, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn zipmap_pairs() {
        // Redis 2.4's `HSET h f v` then `HSET h ab 12` (with a byte of free space).
        let zm = b"\x02\x01f\x01\x00v\x02ab\x02\x0112x\xff";
        assert_eq!(
            zipmap(zm).unwrap(),
            vec![
                (b"f".to_vec(), b"v".to_vec()),
                (b"ab".to_vec(), b"12".to_vec())
            ]
        );
        assert!(zipmap(b"\x03\x01f\x01\x00v\xff").is_err());
        assert!(zipmap(b"\x00\xff").is_err());
    }
}
