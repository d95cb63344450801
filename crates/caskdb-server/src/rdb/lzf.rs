//! LZF decompression (liblzf's format, which Redis uses for strings over 20 bytes when
//! `rdbcompression` is on).
//!
//! Written here rather than taken from a crate: the `lzf` crate is marked deprecated by its
//! author, and the decoder is this one loop. Only decompression is needed: DUMP writes
//! strings uncompressed, which Redis loads as well.
//!
//! The stream is a run of tokens. A control byte below 32 is a literal: `ctrl + 1` bytes
//! follow, copied as they are. Otherwise it is a back reference: its top 3 bits are the
//! length - 2 (7: one more byte adds to it), its low 5 bits the high bits of the distance - 1,
//! whose low 8 bits are the next byte; the copy may overlap what it writes.

/// Most bytes one compressed byte can stand for: a back reference of 3 bytes writes at most
/// 7 + 255 + 2 bytes.
pub(super) const MAX_RATIO: u64 = 88;

/// `input` decompressed, if it is a well-formed stream that writes exactly `len` bytes.
pub(super) fn decompress(input: &[u8], len: u64) -> Option<Vec<u8>> {
    if len > (input.len() as u64).saturating_mul(MAX_RATIO) {
        return None;
    }
    let len = usize::try_from(len).ok()?;
    let mut out = Vec::with_capacity(len);
    let mut i = 0;
    while i < input.len() {
        let ctrl = usize::from(input[i]);
        i += 1;
        if ctrl < 32 {
            let literal = input.get(i..i + ctrl + 1)?;
            if out.len() + literal.len() > len {
                return None;
            }
            out.extend_from_slice(literal);
            i += literal.len();
        } else {
            let mut n = ctrl >> 5;
            if n == 7 {
                n += usize::from(*input.get(i)?);
                i += 1;
            }
            n += 2;
            let distance = ((ctrl & 0x1f) << 8) + usize::from(*input.get(i)?) + 1;
            i += 1;
            if out.len() + n > len {
                return None;
            }
            let from = out.len().checked_sub(distance)?;
            // Byte by byte: the source may run into the bytes being written.
            for k in from..from + n {
                let b = out[k];
                out.push(b);
            }
        }
    }
    (out.len() == len).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_compressed_strings() {
        // What redis-server 7.0 writes for 50 × "a" and for a sentence with repeats.
        assert_eq!(
            decompress(b"\x01aa\xe0%\x00\x01aa", 50),
            Some(vec![b'a'; 50])
        );
        let text = b"the quick brown fox jumps over the lazy dog; the quick brown fox jumps again";
        let compressed =
            b"\x1fthe quick brown fox jumps over t \x1e\x08lazy dog;`\r\xe0\r,\x04again";
        assert_eq!(decompress(compressed, 76).as_deref(), Some(&text[..]));
        // A wrong length either way, a reference before the start, a cut stream.
        assert_eq!(decompress(compressed, 75), None);
        assert_eq!(decompress(compressed, 77), None);
        assert_eq!(decompress(b"\x20\x05", 2), None);
        assert_eq!(decompress(b"\x05abc", 6), None);
        assert_eq!(decompress(b"\x01aa\xe0", 50), None);
        assert_eq!(decompress(b"\x00a", 1_000), None);
    }
}
