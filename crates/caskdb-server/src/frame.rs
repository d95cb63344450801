//! Replies, and their encoding in RESP2 or RESP3.

use bytes::{BufMut, Bytes, BytesMut};

/// One reply. Types that RESP2 lacks are encoded as their RESP2 equivalents.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+OK`
    Simple(&'static str),
    /// `-ERR …`: the text includes the error code.
    Error(String),
    /// `:42`
    Integer(i64),
    /// `$3\r\nfoo`
    Bulk(Bytes),
    /// `$-1` in RESP2, `_` in RESP3.
    Null,
    /// `*-1` in RESP2, `_` in RESP3 (EXEC aborted by WATCH).
    NullArray,
    /// `*N`
    Array(Vec<Frame>),
    /// `%N` in RESP3; a flat array of keys and values in RESP2.
    Map(Vec<(Frame, Frame)>),
    /// `=N\r\ntxt:` in RESP3; a bulk string in RESP2.
    Verbatim(String),
}

impl Frame {
    /// `+OK`.
    pub const OK: Frame = Frame::Simple("OK");

    /// An error reply with the generic `ERR` code.
    pub fn err(msg: impl std::fmt::Display) -> Frame {
        Frame::Error(format!("ERR {msg}"))
    }

    /// A bulk string copied from `s`.
    pub fn bulk(s: impl AsRef<[u8]>) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_ref()))
    }

    /// Appends the encoding of this frame to `out`.
    pub fn encode(&self, out: &mut BytesMut, resp3: bool) {
        match self {
            Frame::Simple(s) => {
                out.put_u8(b'+');
                out.put_slice(s.as_bytes());
                out.put_slice(b"\r\n");
            }
            Frame::Error(s) => {
                out.put_u8(b'-');
                // An error must be one line: replace line breaks rather than break the stream.
                for &b in s.as_bytes() {
                    out.put_u8(if b == b'\r' || b == b'\n' { b' ' } else { b });
                }
                out.put_slice(b"\r\n");
            }
            Frame::Integer(n) => {
                out.put_u8(b':');
                put_int(out, *n);
                out.put_slice(b"\r\n");
            }
            Frame::Bulk(b) => put_bulk(out, b),
            Frame::Null if resp3 => out.put_slice(b"_\r\n"),
            Frame::Null => out.put_slice(b"$-1\r\n"),
            Frame::NullArray if resp3 => out.put_slice(b"_\r\n"),
            Frame::NullArray => out.put_slice(b"*-1\r\n"),
            Frame::Array(items) => {
                put_len(out, b'*', items.len());
                for item in items {
                    item.encode(out, resp3);
                }
            }
            Frame::Map(pairs) => {
                if resp3 {
                    put_len(out, b'%', pairs.len());
                } else {
                    put_len(out, b'*', pairs.len() * 2);
                }
                for (k, v) in pairs {
                    k.encode(out, resp3);
                    v.encode(out, resp3);
                }
            }
            Frame::Verbatim(text) if resp3 => {
                put_len(out, b'=', text.len() + 4);
                out.put_slice(b"txt:");
                out.put_slice(text.as_bytes());
                out.put_slice(b"\r\n");
            }
            Frame::Verbatim(text) => put_bulk(out, text.as_bytes()),
        }
    }
}

fn put_int(out: &mut BytesMut, n: i64) {
    let mut buf = itoa_buf(n);
    out.put_slice(buf.as_bytes_mut());
}

fn put_len(out: &mut BytesMut, tag: u8, n: usize) {
    out.put_u8(tag);
    put_int(out, n as i64);
    out.put_slice(b"\r\n");
}

fn put_bulk(out: &mut BytesMut, b: &[u8]) {
    put_len(out, b'$', b.len());
    out.put_slice(b);
    out.put_slice(b"\r\n");
}

/// Decimal digits of `n` without allocating.
struct IntBuf {
    buf: [u8; 20],
    start: usize,
}

impl IntBuf {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(n: i64) -> IntBuf {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let neg = n < 0;
    let mut v = n.unsigned_abs();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    if neg {
        i -= 1;
        buf[i] = b'-';
    }
    IntBuf { buf, start: i }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(f: &Frame, resp3: bool) -> String {
        let mut out = BytesMut::new();
        f.encode(&mut out, resp3);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn encodes_resp2_and_resp3() {
        assert_eq!(enc(&Frame::OK, false), "+OK\r\n");
        assert_eq!(
            enc(&Frame::Integer(i64::MIN), false),
            ":-9223372036854775808\r\n"
        );
        assert_eq!(enc(&Frame::Integer(0), false), ":0\r\n");
        assert_eq!(enc(&Frame::bulk("ab"), false), "$2\r\nab\r\n");
        assert_eq!(enc(&Frame::Null, false), "$-1\r\n");
        assert_eq!(enc(&Frame::Null, true), "_\r\n");
        assert_eq!(enc(&Frame::NullArray, false), "*-1\r\n");
        let map = Frame::Map(vec![(Frame::bulk("a"), Frame::Integer(1))]);
        assert_eq!(enc(&map, false), "*2\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&map, true), "%1\r\n$1\r\na\r\n:1\r\n");
        assert_eq!(enc(&Frame::Verbatim("x".into()), true), "=5\r\ntxt:x\r\n");
        assert_eq!(enc(&Frame::err("a\r\nb"), false), "-ERR a  b\r\n");
    }
}
