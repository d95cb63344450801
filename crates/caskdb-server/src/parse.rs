//! The request parser: RESP multibulk arrays and inline (telnet-style) commands, with Redis's
//! limits and error messages.
//!
//! Never allocates from a declared length: a bulk of 512 MB is accepted only as its bytes
//! arrive, and the buffer grows with them.

use bytes::{Bytes, BytesMut};

/// Longest inline request, or count line of a multibulk, before it is refused (Redis:
/// `PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX: usize = 64 * 1024;
/// Before authentication, arrays longer than this are refused.
pub const UNAUTH_MAX_ARGS: i64 = 10;
/// Before authentication, bulk strings longer than this are refused.
pub const UNAUTH_MAX_BULK: i64 = 16384;

/// What the parser made of the buffer.
#[derive(Debug, PartialEq)]
pub enum Parsed {
    /// A whole request (possibly with no arguments: then it is skipped, as Redis does).
    Request(Vec<Bytes>),
    /// More bytes are needed: at least this many in the buffer in all.
    Incomplete(usize),
}

/// A protocol error: the client gets `-ERR Protocol error: …` and is disconnected.
#[derive(Debug, PartialEq, Eq)]
pub struct ProtocolError(pub String);

fn perr(msg: &str) -> ProtocolError {
    ProtocolError(msg.to_string())
}

/// Limits that depend on the connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `proto-max-bulk-len`.
    pub max_bulk: i64,
    /// Whether the client has authenticated (or no password is set).
    pub authenticated: bool,
}

/// Parses one request from the front of `buf`, removing it from the buffer when complete.
pub fn parse(buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ProtocolError> {
    if buf.is_empty() {
        return Ok(Parsed::Incomplete(1));
    }
    if buf[0] == b'*' {
        parse_multibulk(buf, limits)
    } else {
        parse_inline(buf)
    }
}

fn find_cr(buf: &[u8], from: usize) -> Option<usize> {
    buf[from..]
        .iter()
        .position(|&b| b == b'\r')
        .map(|p| p + from)
}

/// Redis's `string2ll`: optional '-', digits, no leading zeros, no '+', no spaces.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    let (neg, digits) = match s {
        [b'-', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    if digits[0] == b'0' {
        return (digits.len() == 1 && !neg).then_some(0);
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if neg {
        if v > i64::MAX as u64 + 1 {
            return None;
        }
        Some((v as i64).wrapping_neg())
    } else {
        i64::try_from(v).ok()
    }
}

fn parse_multibulk(buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ProtocolError> {
    let Some(cr) = find_cr(buf, 1) else {
        if buf.len() > INLINE_MAX {
            return Err(perr("too big mbulk count string"));
        }
        return Ok(Parsed::Incomplete(buf.len() + 1));
    };
    if cr + 1 >= buf.len() {
        return Ok(Parsed::Incomplete(cr + 2));
    }
    let count = match parse_i64(&buf[1..cr]) {
        Some(n) if n <= i64::from(i32::MAX) => n,
        _ => return Err(perr("invalid multibulk length")),
    };
    if !limits.authenticated && count > UNAUTH_MAX_ARGS {
        return Err(perr("unauthenticated multibulk length"));
    }
    let mut pos = cr + 2;
    if count <= 0 {
        let _ = buf.split_to(pos);
        return Ok(Parsed::Request(Vec::new()));
    }
    // Ranges first; the buffer is split only once the whole request is there.
    let mut ranges = Vec::with_capacity((count as usize).min(1024));
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(Parsed::Incomplete(pos + 1));
        }
        let Some(cr) = find_cr(buf, pos) else {
            if buf.len() - pos > INLINE_MAX {
                return Err(perr("too big bulk count string"));
            }
            return Ok(Parsed::Incomplete(buf.len() + 1));
        };
        if buf[pos] != b'$' {
            return Err(ProtocolError(format!(
                "expected '$', got '{}'",
                buf[pos] as char
            )));
        }
        if cr + 1 >= buf.len() {
            return Ok(Parsed::Incomplete(cr + 2));
        }
        let len = match parse_i64(&buf[pos + 1..cr]) {
            Some(n) if (0..=limits.max_bulk).contains(&n) => n as usize,
            _ => return Err(perr("invalid bulk length")),
        };
        if !limits.authenticated && len as i64 > UNAUTH_MAX_BULK {
            return Err(perr("unauthenticated bulk length"));
        }
        let start = cr + 2;
        let end = start + len;
        // Like Redis, the two bytes after the data are skipped without being looked at.
        if end + 2 > buf.len() {
            return Ok(Parsed::Incomplete(end + 2));
        }
        ranges.push(start..end);
        pos = end + 2;
    }
    let whole = buf.split_to(pos).freeze();
    Ok(Parsed::Request(
        ranges.into_iter().map(|r| whole.slice(r)).collect(),
    ))
}

fn parse_inline(buf: &mut BytesMut) -> Result<Parsed, ProtocolError> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > INLINE_MAX {
            return Err(perr("too big inline request"));
        }
        return Ok(Parsed::Incomplete(buf.len() + 1));
    };
    if nl > INLINE_MAX {
        return Err(perr("too big inline request"));
    }
    let line = buf.split_to(nl + 1);
    let mut line = &line[..nl];
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    let args = split_args(line).ok_or_else(|| perr("unbalanced quotes in request"))?;
    Ok(Parsed::Request(args))
}

/// Splits an inline request like Redis's `sdssplitargs`: blanks separate arguments; "double
/// quotes" allow `\n \r \t \b \a \\ \" \xHH` escapes; 'single quotes' allow `\'`. A closing quote
/// must be followed by a blank or the end. A NUL byte ends the line, as it ends Redis's C
/// string (inside quotes that leaves them unbalanced).
pub fn split_args(line: &[u8]) -> Option<Vec<Bytes>> {
    let line = &line[..line.iter().position(|&b| b == 0).unwrap_or(line.len())];
    let mut args = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(args);
        }
        let mut cur = Vec::new();
        let mut in_dq = false;
        let mut in_sq = false;
        loop {
            if in_dq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\'
                    && i + 3 < n
                    && line[i + 1] == b'x'
                    && let (Some(h), Some(l)) = (hex(line[i + 2]), hex(line[i + 3]))
                {
                    cur.push(h * 16 + l);
                    i += 4;
                    continue;
                }
                if c == b'\\' && i + 1 < n {
                    i += 1;
                    cur.push(match line[i] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 8,
                        b'a' => 7,
                        other => other,
                    });
                } else if c == b'"' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                } else {
                    cur.push(c);
                }
                i += 1;
            } else if in_sq {
                if i >= n {
                    return None;
                }
                let c = line[i];
                if c == b'\\' && i + 1 < n && line[i + 1] == b'\'' {
                    cur.push(b'\'');
                    i += 2;
                    continue;
                } else if c == b'\'' {
                    if i + 1 < n && !line[i + 1].is_ascii_whitespace() {
                        return None;
                    }
                    i += 1;
                    break;
                }
                cur.push(c);
                i += 1;
            } else {
                if i >= n {
                    break;
                }
                match line[i] {
                    b' ' | b'\n' | b'\r' | b'\t' => break,
                    b'"' => in_dq = true,
                    b'\'' => in_sq = true,
                    c => cur.push(c),
                }
                i += 1;
            }
        }
        args.push(Bytes::from(cur));
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPEN: Limits = Limits {
        max_bulk: 512 * 1024 * 1024,
        authenticated: true,
    };

    fn one(input: &[u8]) -> Result<Parsed, ProtocolError> {
        parse(&mut BytesMut::from(input), OPEN)
    }

    fn req(args: &[&str]) -> Parsed {
        Parsed::Request(
            args.iter()
                .map(|a| Bytes::copy_from_slice(a.as_bytes()))
                .collect(),
        )
    }

    #[test]
    fn multibulk_whole_and_in_pieces() {
        let full = b"*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n";
        assert_eq!(one(full), Ok(req(&["GET", "foo"])));
        for cut in 0..full.len() {
            assert!(
                matches!(one(&full[..cut]), Ok(Parsed::Incomplete(n)) if n > cut),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn a_nul_byte_ends_an_inline_line_as_in_redis() {
        let args = |v: &[&str]| v.iter().map(|a| Bytes::from(a.to_string())).collect();
        assert_eq!(split_args(b"PING\0"), Some(args(&["PING"])));
        assert_eq!(split_args(b"SET a\0 b c"), Some(args(&["SET", "a"])));
        assert_eq!(split_args(b"\0PING"), Some(args(&[])));
        assert_eq!(split_args(b"ECHO \"x\0y\""), None);
    }

    #[test]
    fn pipelined_requests_come_one_at_a_time() {
        let mut buf = BytesMut::from(&b"*1\r\n$4\r\nPING\r\nPING\r\n*1\r\n$4\r\nPI"[..]);
        assert_eq!(parse(&mut buf, OPEN), Ok(req(&["PING"])));
        assert_eq!(parse(&mut buf, OPEN), Ok(req(&["PING"])));
        assert!(matches!(parse(&mut buf, OPEN), Ok(Parsed::Incomplete(_))));
    }

    #[test]
    fn redis_protocol_errors() {
        assert_eq!(one(b"*x\r\n"), Err(perr("invalid multibulk length")));
        assert_eq!(
            one(b"*3000000000\r\n"),
            Err(perr("invalid multibulk length"))
        );
        assert_eq!(one(b"*1\r\n+a\r\n"), Err(perr("expected '$', got '+'")));
        assert_eq!(one(b"*1\r\n$-1\r\n"), Err(perr("invalid bulk length")));
        let huge = b"*1\r\n$600000000\r\n";
        assert_eq!(one(huge), Err(perr("invalid bulk length")));
        let long = vec![b'a'; INLINE_MAX + 1];
        assert_eq!(one(&long), Err(perr("too big inline request")));
        assert_eq!(
            one(b"set a \"b\n"),
            Err(perr("unbalanced quotes in request"))
        );
        let unauth = Limits {
            authenticated: false,
            ..OPEN
        };
        let mut b = BytesMut::from(&b"*11\r\n"[..]);
        assert_eq!(
            parse(&mut b, unauth),
            Err(perr("unauthenticated multibulk length"))
        );
        let mut b = BytesMut::from(&b"*1\r\n$16385\r\n"[..]);
        assert_eq!(
            parse(&mut b, unauth),
            Err(perr("unauthenticated bulk length"))
        );
    }

    #[test]
    fn declared_length_is_not_allocated() {
        // 512 MB declared, 5 bytes present: incomplete, and the buffer did not grow.
        let mut buf = BytesMut::from(&b"*1\r\n$536870912\r\nhello"[..]);
        let before = buf.capacity();
        assert!(matches!(parse(&mut buf, OPEN), Ok(Parsed::Incomplete(_))));
        assert_eq!(buf.capacity(), before);
    }

    #[test]
    fn inline_commands_split_like_redis() {
        assert_eq!(one(b"set  a   b\r\n"), Ok(req(&["set", "a", "b"])));
        assert_eq!(one(b"set \"a b\" 'c d'\n"), Ok(req(&["set", "a b", "c d"])));
        assert_eq!(one(b"echo \"\\x41\\n\"\n"), Ok(req(&["echo", "A\n"])));
        assert_eq!(one(b"\r\n"), Ok(req(&[])));
        assert_eq!(
            one(b"echo \"a\"b\n"),
            Err(perr("unbalanced quotes in request"))
        );
    }

    #[test]
    fn integers_parse_like_string2ll() {
        assert_eq!(parse_i64(b"0"), Some(0));
        assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
        assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
        for bad in [
            &b"9223372036854775808"[..],
            b"01",
            b"+1",
            b" 1",
            b"-0",
            b"",
            b"-",
            b"1a",
        ] {
            assert_eq!(parse_i64(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
