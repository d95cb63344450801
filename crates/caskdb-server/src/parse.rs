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

/// Parses one request from the front of `buf`, removing it from the buffer when complete. (A
/// fresh [`Parser`] each call: a connection keeps one, so that a request arriving in pieces is
/// not parsed again from its start at every piece.)
#[cfg(any(test, feature = "testing"))]
pub fn parse(buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ProtocolError> {
    Parser::default().parse(buf, limits)
}

/// How far a multibulk request at the front of the buffer was parsed.
#[derive(Debug, Default)]
struct Progress {
    /// Arguments declared.
    count: usize,
    /// Where the next argument's `$` line starts.
    pos: usize,
    /// The arguments complete so far (ranges of the buffer).
    ranges: Vec<std::ops::Range<usize>>,
    /// The argument whose `$` line was read and whose bytes are still arriving.
    waiting: Option<std::ops::Range<usize>>,
}

/// A request parser that remembers, between calls, how far it got into an incomplete
/// multibulk request, so that parsing costs time linear in the bytes received however they are
/// split. The buffer's front must stay as it was between calls (bytes are only appended) until
/// a request is returned or an error ends the connection.
#[derive(Debug, Default)]
pub struct Parser {
    progress: Option<Progress>,
    /// A line still arriving: where it starts, and how far it was searched for its end (so
    /// that a long line sent in pieces is not searched again from its start).
    line: Option<(usize, usize)>,
    /// Bytes examined so far (the tests' measure of the work done).
    scanned: u64,
}

impl Parser {
    /// Bytes this parser has examined, over all calls.
    #[cfg_attr(not(test), allow(dead_code))] // the tests' measure
    pub fn scanned(&self) -> u64 {
        self.scanned
    }

    /// Parses one request from the front of `buf`, removing it when complete.
    ///
    /// # Errors
    /// A [`ProtocolError`] with Redis's text; the connection is then to be closed.
    pub fn parse(&mut self, buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ProtocolError> {
        if buf.is_empty() {
            return Ok(Parsed::Incomplete(1));
        }
        let result = if buf[0] == b'*' {
            self.multibulk(buf, limits)
        } else {
            self.progress = None;
            if let Some(nl) = self.find_byte(buf, 0, b'\n') {
                self.line = None;
                inline_line(buf, nl)
            } else if buf.len() > INLINE_MAX {
                Err(perr("too big inline request"))
            } else {
                Ok(Parsed::Incomplete(buf.len() + 1))
            }
        };
        if !matches!(result, Ok(Parsed::Incomplete(_))) {
            self.progress = None;
            self.line = None;
        }
        result
    }

    /// The first `byte` at or after `from` (the start of a line), resuming where the last
    /// search of that line stopped; counts the bytes looked at.
    fn find_byte(&mut self, buf: &[u8], from: usize, byte: u8) -> Option<usize> {
        let start = match self.line {
            Some((line, searched)) if line == from && searched <= buf.len() => searched,
            _ => from,
        };
        let found = buf[start..]
            .iter()
            .position(|&b| b == byte)
            .map(|p| p + start);
        self.scanned += (found.map_or(buf.len(), |p| p + 1) - start) as u64;
        self.line = match found {
            Some(_) => None,
            None => Some((from, buf.len())),
        };
        found
    }

    /// The next `\r` at or after `from` (the start of a `*` or `$` line).
    fn find_cr(&mut self, buf: &[u8], from: usize) -> Option<usize> {
        self.find_byte(buf, from, b'\r')
    }

    fn multibulk(&mut self, buf: &mut BytesMut, limits: Limits) -> Result<Parsed, ProtocolError> {
        let mut p = match self.progress.take() {
            Some(p) => p,
            None => {
                let Some(cr) = self.find_cr(buf, 1) else {
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
                if count <= 0 {
                    let _ = buf.split_to(cr + 2);
                    return Ok(Parsed::Request(Vec::new()));
                }
                Progress {
                    count: count as usize,
                    pos: cr + 2,
                    // Grown as arguments arrive, not from the declared count.
                    ranges: Vec::with_capacity((count as usize).min(1024)),
                    waiting: None,
                }
            }
        };
        while p.ranges.len() < p.count {
            if let Some(r) = p.waiting.take() {
                // Like Redis, the two bytes after the data are skipped without being looked at.
                if r.end + 2 > buf.len() {
                    let need = r.end + 2;
                    p.waiting = Some(r);
                    self.progress = Some(p);
                    return Ok(Parsed::Incomplete(need));
                }
                p.pos = r.end + 2;
                p.ranges.push(r);
                continue;
            }
            let pos = p.pos;
            if pos >= buf.len() {
                let need = pos + 1;
                self.progress = Some(p);
                return Ok(Parsed::Incomplete(need));
            }
            let Some(cr) = self.find_cr(buf, pos) else {
                if buf.len() - pos > INLINE_MAX {
                    return Err(perr("too big bulk count string"));
                }
                let need = buf.len() + 1;
                self.progress = Some(p);
                return Ok(Parsed::Incomplete(need));
            };
            if buf[pos] != b'$' {
                return Err(ProtocolError(format!(
                    "expected '$', got '{}'",
                    buf[pos] as char
                )));
            }
            if cr + 1 >= buf.len() {
                self.progress = Some(p);
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
            p.waiting = Some(start..start + len);
        }
        let whole = buf.split_to(p.pos).freeze();
        Ok(Parsed::Request(
            p.ranges.into_iter().map(|r| whole.slice(r)).collect(),
        ))
    }
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

/// An inline request whose line ends at `nl`.
fn inline_line(buf: &mut BytesMut, nl: usize) -> Result<Parsed, ProtocolError> {
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

    /// Feeds `input` to one parser `step` bytes at a time; the requests it returns.
    fn fed(input: &[u8], step: usize, parser: &mut Parser) -> Vec<Parsed> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in input.chunks(step) {
            buf.extend_from_slice(chunk);
            loop {
                match parser.parse(&mut buf, OPEN) {
                    Ok(Parsed::Incomplete(_)) => break,
                    Ok(r) => out.push(r),
                    Err(e) => panic!("{e:?}"),
                }
            }
        }
        out
    }

    fn multibulk(args: &[Vec<u8>]) -> Vec<u8> {
        let mut v = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            v.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            v.extend_from_slice(a);
            v.extend_from_slice(b"\r\n");
        }
        v
    }

    #[test]
    fn requests_in_pieces_of_any_size_parse_as_whole_ones() {
        let reqs: Vec<Vec<Vec<u8>>> = (0..20)
            .map(|i| {
                (0..i % 7 + 1)
                    .map(|j| vec![b'a' + j as u8; i * j])
                    .collect()
            })
            .collect();
        let stream: Vec<u8> = reqs.iter().flat_map(|r| multibulk(r)).collect();
        let want: Vec<Parsed> = reqs
            .iter()
            .map(|r| Parsed::Request(r.iter().map(|a| Bytes::copy_from_slice(a)).collect()))
            .collect();
        for step in [1, 2, 3, 7, 64, stream.len()] {
            assert_eq!(
                fed(&stream, step, &mut Parser::default()),
                want,
                "step {step}"
            );
        }
    }

    #[test]
    fn a_large_request_sent_a_byte_at_a_time_is_parsed_in_linear_work() {
        // Work per byte received, for two sizes ten times apart: the same bound for both.
        for n in [20_000, 200_000] {
            let args: Vec<Vec<u8>> = (0..n).map(|i| format!("m{i}").into_bytes()).collect();
            let input = multibulk(&args);
            let mut parser = Parser::default();
            let got = fed(&input, 1, &mut parser);
            assert_eq!(got.len(), 1);
            let per_byte = parser.scanned() as f64 / input.len() as f64;
            assert!(
                per_byte < 2.0,
                "{n} arguments: {} bytes examined for {} received",
                parser.scanned(),
                input.len()
            );
        }
    }

    #[test]
    fn long_lines_sent_a_byte_at_a_time_are_searched_once() {
        // An inline request arriving byte by byte: the bytes examined stay about the bytes
        // received.
        let inline = format!("SET k {}\r\n", "v".repeat(60_000)).into_bytes();
        let mut parser = Parser::default();
        assert_eq!(fed(&inline, 1, &mut parser).len(), 1);
        assert!(
            parser.scanned() < 2 * inline.len() as u64,
            "{}",
            parser.scanned()
        );
        // A count line with no end yet (refused past 64 KB, but searched once until then).
        let mut parser = Parser::default();
        let mut buf = BytesMut::from(&b"*"[..]);
        for _ in 0..60_000 {
            buf.extend_from_slice(b"1");
            assert!(matches!(
                parser.parse(&mut buf, OPEN),
                Ok(Parsed::Incomplete(_))
            ));
        }
        assert!(
            parser.scanned() < 2 * buf.len() as u64,
            "{}",
            parser.scanned()
        );
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
