//! Replies, and their encoding in RESP2 or RESP3.

use bytes::{BufMut, Bytes, BytesMut};

/// One reply. Types that RESP2 lacks are encoded as their RESP2 equivalents.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame {
    /// `+OK`
    Simple(&'static str),
    /// `+…` of a text made at run time (DEBUG OBJECT; a script's status reply).
    Status(String),
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
    /// `,1.5` in RESP3; a bulk string in RESP2. Both print it as Redis 7.0 does (`%.17g`).
    Double(f64),
    /// A double already formatted (GEOPOS's `%.17Lf` coordinates): `,text` in RESP3, a bulk
    /// string in RESP2.
    DoubleText(String),
    /// `#t` / `#f` in RESP3; `:1` / `:0` in RESP2.
    Boolean(bool),
    /// `~N` in RESP3 (SMEMBERS and the other unordered replies); an array in RESP2.
    Set(Vec<Frame>),
    /// `>N` in RESP3 (pub/sub messages, which come outside the request/reply order); an array
    /// in RESP2.
    Push(Vec<Frame>),
    /// `(N` in RESP3; a bulk string in RESP2.
    BigNumber(String),
    /// (member, score) or (field, value) pairs (WITHSCORES, WITHVALUES): an array of two-element
    /// arrays in RESP3, one flat array in RESP2.
    Pairs(Vec<(Frame, Frame)>),
    /// Several replies to one request, sent one after the other (SUBSCRIBE with several
    /// channels answers once per channel).
    Sequence(Vec<Frame>),
    /// A bulk string still in the store, located when the command ran: a connection reads it
    /// as the client takes the reply (`connection/outbox.rs`); elsewhere it is read whole.
    Stored(Stored),
}

/// A value located in the store, to be sent as a bulk string.
#[derive(Debug, Clone)]
pub struct Stored(pub caskdb::ValueRef);

impl PartialEq for Stored {
    /// Equal if both read back the same bytes (used by tests and comparisons only).
    fn eq(&self, other: &Stored) -> bool {
        matches!((self.0.read(), other.0.read()), (Ok(a), Ok(b)) if a == b)
    }
}

/// Where a frame's encoding goes: a buffer, or a connection's outbox that leaves stored
/// values to be read as the client takes them.
pub(crate) trait Out {
    /// Appends bytes.
    fn raw(&mut self, b: &[u8]);
    /// Appends one byte.
    fn byte(&mut self, b: u8) {
        self.raw(&[b]);
    }
    /// Appends a stored value as a bulk string.
    fn stored(&mut self, v: &caskdb::ValueRef);
}

impl Out for BytesMut {
    fn raw(&mut self, b: &[u8]) {
        self.put_slice(b);
    }

    fn byte(&mut self, b: u8) {
        self.put_u8(b);
    }

    /// Reads the value whole; a value that fails its check becomes an error in its place.
    fn stored(&mut self, v: &caskdb::ValueRef) {
        match v.read() {
            Ok(b) => put_bulk(self, &b),
            Err(e) => Frame::err(e).encode(self, false),
        }
    }
}

impl Frame {
    /// `+OK`.
    pub const OK: Frame = Frame::Simple("OK");

    /// An error reply with the generic `ERR` code.
    pub fn err(msg: impl std::fmt::Display) -> Frame {
        Frame::Error(format!("ERR {msg}"))
    }

    /// A stored value as a reply: a bulk string if it is in memory, else [`Frame::Stored`].
    pub fn value(v: caskdb::ValueRef) -> Frame {
        if v.is_in_memory() {
            // (Reading a value held in memory does not fail.)
            return match v.into_bytes() {
                Ok(b) => Frame::Bulk(b),
                Err(e) => Frame::err(e.to_string()),
            };
        }
        Frame::Stored(Stored(v))
    }

    /// A bulk string copied from `s`.
    pub fn bulk(s: impl AsRef<[u8]>) -> Frame {
        Frame::Bulk(Bytes::copy_from_slice(s.as_ref()))
    }

    /// Appends the encoding of this frame to `out`.
    pub(crate) fn encode<O: Out>(&self, out: &mut O, resp3: bool) {
        match self {
            Frame::Simple(s) => {
                out.byte(b'+');
                out.raw(s.as_bytes());
                out.raw(b"\r\n");
            }
            Frame::Status(s) => {
                out.byte(b'+');
                for &b in s.as_bytes() {
                    out.byte(if b == b'\r' || b == b'\n' { b' ' } else { b });
                }
                out.raw(b"\r\n");
            }
            Frame::Error(s) => {
                out.byte(b'-');
                // An error must be one line: replace line breaks rather than break the stream.
                for &b in s.as_bytes() {
                    out.byte(if b == b'\r' || b == b'\n' { b' ' } else { b });
                }
                out.raw(b"\r\n");
            }
            Frame::Integer(n) => {
                out.byte(b':');
                put_int(out, *n);
                out.raw(b"\r\n");
            }
            Frame::Bulk(b) => put_bulk(out, b),
            Frame::Null if resp3 => out.raw(b"_\r\n"),
            Frame::Null => out.raw(b"$-1\r\n"),
            Frame::NullArray if resp3 => out.raw(b"_\r\n"),
            Frame::NullArray => out.raw(b"*-1\r\n"),
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
                out.raw(b"txt:");
                out.raw(text.as_bytes());
                out.raw(b"\r\n");
            }
            Frame::Verbatim(text) => put_bulk(out, text.as_bytes()),
            Frame::Double(v) if resp3 => {
                out.byte(b',');
                out.raw(format_double(*v).as_bytes());
                out.raw(b"\r\n");
            }
            Frame::Double(v) => put_bulk(out, format_double(*v).as_bytes()),
            Frame::DoubleText(t) if resp3 => {
                out.byte(b',');
                out.raw(t.as_bytes());
                out.raw(b"\r\n");
            }
            Frame::DoubleText(t) => put_bulk(out, t.as_bytes()),
            Frame::Boolean(b) if resp3 => out.raw(if *b { b"#t\r\n" } else { b"#f\r\n" }),
            Frame::Boolean(b) => out.raw(if *b { b":1\r\n" } else { b":0\r\n" }),
            Frame::Set(items) | Frame::Push(items) => {
                let tag = match (self, resp3) {
                    (Frame::Set(_), true) => b'~',
                    (Frame::Push(_), true) => b'>',
                    _ => b'*',
                };
                put_len(out, tag, items.len());
                for item in items {
                    item.encode(out, resp3);
                }
            }
            Frame::BigNumber(n) if resp3 => {
                out.byte(b'(');
                out.raw(n.as_bytes());
                out.raw(b"\r\n");
            }
            Frame::BigNumber(n) => put_bulk(out, n.as_bytes()),
            Frame::Pairs(pairs) => {
                if resp3 {
                    put_len(out, b'*', pairs.len());
                } else {
                    put_len(out, b'*', pairs.len() * 2);
                }
                for (a, b) in pairs {
                    if resp3 {
                        out.raw(b"*2\r\n");
                    }
                    a.encode(out, resp3);
                    b.encode(out, resp3);
                }
            }
            Frame::Sequence(frames) => {
                for f in frames {
                    f.encode(out, resp3);
                }
            }
            Frame::Stored(v) => out.stored(&v.0),
        }
    }
}

/// Formats a double as Redis 7.0 does (`%.17g`, `inf`, `-inf`).
pub(crate) fn format_double(v: f64) -> String {
    if v.is_nan() {
        return "nan".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.to_string();
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    let sci = format!("{v:.16e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..17).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(mantissa), exp.abs())
    } else {
        let decimals = (16 - exp).max(0) as usize;
        strip(&format!("{v:.decimals$}"))
    }
}

fn put_int<O: Out>(out: &mut O, n: i64) {
    let mut buf = itoa_buf(n);
    out.raw(buf.as_bytes_mut());
}

/// A length line: `tag`, the number, CRLF.
pub(crate) fn put_len<O: Out>(out: &mut O, tag: u8, n: usize) {
    out.byte(tag);
    put_int(out, n as i64);
    out.raw(b"\r\n");
}

/// A bulk string: its length line, its bytes, CRLF.
pub(crate) fn put_bulk<O: Out>(out: &mut O, b: &[u8]) {
    put_len(out, b'$', b.len());
    out.raw(b);
    out.raw(b"\r\n");
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
        assert_eq!(enc(&Frame::Double(1.5), true), ",1.5\r\n");
        assert_eq!(enc(&Frame::Double(1.5), false), "$3\r\n1.5\r\n");
        assert_eq!(enc(&Frame::Double(f64::NEG_INFINITY), true), ",-inf\r\n");
        assert_eq!(enc(&Frame::Boolean(true), true), "#t\r\n");
        assert_eq!(enc(&Frame::Boolean(false), false), ":0\r\n");
        let set = Frame::Set(vec![Frame::bulk("a")]);
        assert_eq!(enc(&set, true), "~1\r\n$1\r\na\r\n");
        assert_eq!(enc(&set, false), "*1\r\n$1\r\na\r\n");
        let push = Frame::Push(vec![Frame::bulk("a")]);
        assert_eq!(enc(&push, true), ">1\r\n$1\r\na\r\n");
        let pairs = Frame::Pairs(vec![(Frame::bulk("m"), Frame::Double(2.0))]);
        assert_eq!(enc(&pairs, false), "*2\r\n$1\r\nm\r\n$1\r\n2\r\n");
        assert_eq!(enc(&pairs, true), "*1\r\n*2\r\n$1\r\nm\r\n,2\r\n");
        assert_eq!(enc(&Frame::BigNumber("12".into()), true), "(12\r\n");
        let seq = Frame::Sequence(vec![Frame::OK, Frame::Integer(1)]);
        assert_eq!(enc(&seq, true), "+OK\r\n:1\r\n");
    }
}
