//! The server under abuse: random and malformed RESP from many connections, huge declared
//! lengths held open, thousands of connections opened and dropped, and clients that never
//! read their replies. Each test checks that the abusers get an answer or a closed connection,
//! that a well-behaved client keeps getting correct answers meanwhile, and that the server's
//! memory and file descriptors stay bounded.
//!
//! The server runs in a child process (this test binary run again as `server_child_process`),
//! so that its memory (`/proc/<pid>/status`) and descriptors (`/proc/<pid>/fd`) are its own
//! and not mixed with the test's. Kernel socket queues are read from `/proc/net/tcp`.
//!
//! The random streams are seeded: set `CASKDB_ABUSE_SEED` to replay a failing run (the failure
//! message names the seed and the stream).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::ffi::OsStr;
use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use caskdb_server::Config;
use caskdb_testkit::rng::{Rng, env_u64};
use common::args::split_args;
use common::child::ServerProcess;
use common::{Raw, Reply, encode, encode_bytes};

// ---------------------------------------------------------------------------------------------
// The server in a child process.

const CHILD_DIR_ENV: &str = "CASKDB_ABUSE_CHILD_DIR";
const CHILD_BULK_ENV: &str = "CASKDB_ABUSE_CHILD_PROTO_MAX_BULK_LEN";
const CHILD_HOLD_ENV: &str = "CASKDB_ABUSE_CHILD_REPLY_HOLD_SECONDS";
/// Address space the server process may use: a server that ran away with memory aborts
/// instead of taking the machine's (it starts at about 0.75 GiB of mostly reserved space).
const CHILD_ADDRESS_SPACE: u64 = 4 << 30;

/// Not a test on its own: the server process the other tests start (see [`ChildServer`]).
/// Without its environment variable it returns at once.
#[test]
#[ignore = "not a test on its own: the server process that the other tests in this file start"]
fn server_child_process() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    // SAFETY: setrlimit with a pointer to a local struct.
    unsafe {
        let lim = libc::rlimit {
            rlim_cur: CHILD_ADDRESS_SPACE,
            rlim_max: CHILD_ADDRESS_SPACE,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_AS, &lim), 0, "RLIMIT_AS");
    }
    let mut config = Config {
        port: 0,
        dir: dir.into(),
        ..Config::default()
    };
    if let Ok(n) = std::env::var(CHILD_BULK_ENV) {
        config.proto_max_bulk_len = n.parse().expect("a number");
    }
    if let Ok(n) = std::env::var(CHILD_HOLD_ENV) {
        config.reply_hold_seconds = n.parse().expect("a number");
    }
    common::child::serve(config);
}

/// The server in its own process, with its data directory.
struct ChildServer {
    process: ServerProcess,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl ChildServer {
    fn start() -> ChildServer {
        Self::start_with(None)
    }

    fn start_with(proto_max_bulk_len: Option<u64>) -> ChildServer {
        Self::start_env(&[(CHILD_BULK_ENV, proto_max_bulk_len)])
    }

    /// With these numeric settings (those `None` left out).
    fn start_env(settings: &[(&str, Option<u64>)]) -> ChildServer {
        raise_nofile_limit();
        let dir = tempfile::tempdir().unwrap();
        let values: Vec<(&str, String)> = settings
            .iter()
            .filter_map(|(k, v)| Some((*k, v.as_ref()?.to_string())))
            .collect();
        let mut envs: Vec<(&str, &OsStr)> = vec![(CHILD_DIR_ENV, dir.path().as_os_str())];
        for (k, v) in &values {
            envs.push((k, OsStr::new(v)));
        }
        let process = ServerProcess::spawn("server_child_process", &envs, Duration::from_secs(60));
        ChildServer {
            addr: process.addr,
            process,
            _dir: dir,
        }
    }

    fn raw(&self) -> Raw {
        self.process.raw()
    }

    /// A field of `/proc/<pid>/status` in KiB (VmRSS, VmHWM).
    fn status_kib(&self, field: &str) -> u64 {
        let pid = self.process.pid;
        let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc/{pid}/status"))
    }

    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS")
    }

    fn hwm_kib(&self) -> u64 {
        self.status_kib("VmHWM")
    }

    fn fd_count(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.process.pid))
            .unwrap()
            .count()
    }

    fn exited_within(&mut self, limit: Duration) -> Option<ExitStatus> {
        self.process.exited_within(limit)
    }

    /// SHUTDOWN, then the process must exit successfully (the store closed cleanly).
    fn stop(self) {
        self.process.stop(Duration::from_secs(60));
    }
}

/// Soft descriptor limit up to the hard one (the child inherits it).
fn raise_nofile_limit() {
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Polls `f` until it returns `Ok`, failing after `limit` with its last `Err` (what it saw).
fn poll_until<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(seen) if Instant::now() > deadline => {
                panic!("timed out after {limit:?} waiting for {what}; last seen: {seen}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn ok() -> Reply {
    Reply::Simple("OK".into())
}

fn text(r: Reply) -> String {
    match r {
        Reply::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("expected a bulk string, got {other:?}"),
    }
}

/// The lines of CLIENT LIST.
/// Polls until the client `c` is the server's only one.
fn until_only_client(c: &mut Raw, what: &str) {
    poll_until(what, Duration::from_secs(30), || {
        let n = common::info_field(c, "clients", "connected_clients");
        if n == 1 {
            Ok(())
        } else {
            Err(format!("{n} clients"))
        }
    });
}

fn client_list(c: &mut Raw) -> Vec<String> {
    text(c.cmd(&["CLIENT", "LIST"]))
        .lines()
        .map(str::to_string)
        .collect()
}

/// A SET/GET round trip with a fresh key; panics on a wrong answer.
fn round_trip(c: &mut Raw, tag: &str, n: u64) {
    let key = format!("healthy:{tag}:{n}");
    let value = format!("value {n} of {tag}");
    assert_eq!(c.cmd(&["SET", &key, &value]), ok(), "healthy SET {key}");
    assert_eq!(
        c.cmd(&["GET", &key]),
        Reply::bulk(&value),
        "healthy GET {key}"
    );
}

fn show(bytes: &[u8]) -> String {
    let s = bytes.escape_ascii().to_string();
    if s.len() > 400 {
        format!("{}… ({} bytes)", &s[..400], bytes.len())
    } else {
        s
    }
}

/// Send and receive queues of one TCP socket on 127.0.0.1, from `/proc/net/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Queues {
    /// Written by the process, not yet acknowledged by the peer.
    tx: u64,
    /// Received, not yet read by the process.
    rx: u64,
}

/// The established TCP sockets between 127.0.0.1 ports, by (local port, remote port). Read
/// once per look: the table may hold tens of thousands of closed connections (TIME_WAIT).
struct TcpTable(std::collections::HashMap<(u16, u16), Queues>);

impl TcpTable {
    fn read() -> TcpTable {
        let text = std::fs::read_to_string("/proc/net/tcp").unwrap();
        let port = |field: &str| {
            let port = field.strip_prefix("0100007F:")?;
            u16::from_str_radix(port, 16).ok()
        };
        let map = text
            .lines()
            .skip(1)
            .filter_map(|line| {
                let f: Vec<&str> = line.split_whitespace().collect();
                // 01: established.
                if f.len() < 5 || f[3] != "01" {
                    return None;
                }
                let (tx, rx) = f[4].split_once(':')?;
                let q = Queues {
                    tx: u64::from_str_radix(tx, 16).ok()?,
                    rx: u64::from_str_radix(rx, 16).ok()?,
                };
                Some(((port(f[1])?, port(f[2])?), q))
            })
            .collect();
        TcpTable(map)
    }

    /// Both ends of a connection to the server: (server side, client side).
    fn both(&self, srv: SocketAddr, client: &TcpStream) -> Result<(Queues, Queues), String> {
        let port = client.local_addr().unwrap().port();
        let server_side = self.0.get(&(srv.port(), port));
        let client_side = self.0.get(&(port, srv.port()));
        match (server_side, client_side) {
            (Some(s), Some(c)) => Ok((*s, *c)),
            _ => Err(format!("connection from port {port} not in /proc/net/tcp")),
        }
    }
}

/// Both ends of one connection to the server: (server side, client side).
fn both_queues(srv: SocketAddr, client: &TcpStream) -> Result<(Queues, Queues), String> {
    TcpTable::read().both(srv, client)
}

/// Whether the server has neither answered nor closed `s` (a read would block).
fn open_and_silent(s: &TcpStream) -> Result<(), String> {
    s.set_nonblocking(true).unwrap();
    let mut byte = [0u8; 1];
    let r = (&*s).read(&mut byte);
    s.set_nonblocking(false).unwrap();
    match r {
        Err(e) if e.kind() == ErrorKind::WouldBlock => Ok(()),
        Ok(0) => Err("closed by the server".into()),
        Ok(_) => Err(format!("the server answered: {:?}", byte[0] as char)),
        Err(e) => Err(format!("read: {e}")),
    }
}

fn set_linger_zero(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a pointer to a local struct of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER");
}

// ---------------------------------------------------------------------------------------------
// A strict reply parser (independent of the server's code and of common::read_reply, which
// panics): every byte the server sends must belong to a well-formed RESP2/RESP3 reply.

fn reply_line<'a>(buf: &'a [u8], pos: &mut usize) -> Result<Option<&'a [u8]>, String> {
    let rest = &buf[*pos..];
    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
        return Ok(None);
    };
    if nl == 0 || rest[nl - 1] != b'\r' || rest[..nl - 1].contains(&b'\r') {
        return Err(format!("bad line ending at byte {}", *pos));
    }
    *pos += nl + 1;
    Ok(Some(&rest[..nl - 1]))
}

fn reply_int(s: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("not an integer: {}", show(s)))
}

/// One reply from `buf[*pos..]`; `None` if it is not all there.
fn parse_reply(buf: &[u8], pos: &mut usize) -> Result<Option<Reply>, String> {
    let start = *pos;
    let Some(line) = reply_line(buf, pos)? else {
        return Ok(None);
    };
    let Some((&tag, rest)) = line.split_first() else {
        return Err(format!("empty line at byte {start}"));
    };
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let reply = match tag {
        b'+' => Reply::Simple(lossy(rest)),
        b'-' => Reply::Error(lossy(rest)),
        b':' => Reply::Int(reply_int(rest)?),
        b'_' if rest.is_empty() => Reply::Nil,
        b'$' | b'=' => {
            let n = reply_int(rest)?;
            if n == -1 && tag == b'$' {
                return Ok(Some(Reply::Nil));
            }
            let n = usize::try_from(n).map_err(|_| format!("bad length {n}"))?;
            if buf.len() < *pos + n + 2 {
                *pos = start;
                return Ok(None);
            }
            let data = &buf[*pos..*pos + n];
            if &buf[*pos + n..*pos + n + 2] != b"\r\n" {
                return Err(format!("bulk of {n} bytes not followed by CRLF"));
            }
            *pos += n + 2;
            if tag == b'=' {
                if data.len() < 4 || data[3] != b':' {
                    return Err("verbatim string without a format".into());
                }
                Reply::Verbatim(lossy(&data[4..]))
            } else {
                Reply::Bulk(data.to_vec())
            }
        }
        b'*' | b'%' => {
            let n = reply_int(rest)?;
            if n == -1 && tag == b'*' {
                return Ok(Some(Reply::Nil));
            }
            let n = usize::try_from(n).map_err(|_| format!("bad count {n}"))?;
            let items = if tag == b'%' { 2 * n } else { n };
            let mut all = Vec::with_capacity(items.min(1024));
            for _ in 0..items {
                match parse_reply(buf, pos)? {
                    Some(r) => all.push(r),
                    None => {
                        *pos = start;
                        return Ok(None);
                    }
                }
            }
            if tag == b'%' {
                let mut pairs = Vec::new();
                let mut it = all.into_iter();
                while let (Some(k), Some(v)) = (it.next(), it.next()) {
                    pairs.push((k, v));
                }
                Reply::Map(pairs)
            } else {
                Reply::Array(all)
            }
        }
        other => return Err(format!("unknown reply type byte {other:#04x} at {start}")),
    };
    Ok(Some(reply))
}

/// Every reply in `buf`, which must end exactly after the last one.
fn parse_replies(buf: &[u8]) -> Result<Vec<Reply>, String> {
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < buf.len() {
        match parse_reply(buf, &mut pos)? {
            Some(r) => out.push(r),
            None => return Err(format!("incomplete reply at byte {pos}")),
        }
    }
    Ok(out)
}

fn is_protocol_error(r: &Reply) -> bool {
    matches!(r, Reply::Error(e) if e.starts_with("ERR Protocol error: "))
}

// ---------------------------------------------------------------------------------------------
// Random RESP.

/// What the reply to one valid request must be.
#[derive(Debug, Clone)]
enum Want {
    Exact(Reply),
    /// Any reply but a protocol error (its value depends on other connections).
    Any,
}

fn payload(rng: &mut Rng, max: usize) -> Vec<u8> {
    let len = rng.index(max + 1);
    match rng.index(3) {
        0 => (0..len).map(|_| rng.byte()).collect(),
        1 => (0..len)
            .map(|_| *rng.pick(b"abcdefghijklmnopqrstuvwxyz0123456789"))
            .collect(),
        _ => (0..len).map(|_| *rng.pick(b"\r\n\0*$:+- ab")).collect(),
    }
}

fn fuzz_key(rng: &mut Rng) -> Vec<u8> {
    format!("fuzz:{}", rng.index(64)).into_bytes()
}

/// A valid command, as arguments (the base of the mutations).
fn command(rng: &mut Rng) -> Vec<Vec<u8>> {
    let k = fuzz_key(rng);
    match rng.index(8) {
        0 => vec![b"PING".to_vec()],
        1 => vec![b"ECHO".to_vec(), payload(rng, 200)],
        2 => vec![b"SET".to_vec(), k, payload(rng, 200)],
        3 => vec![b"GET".to_vec(), k],
        4 => vec![b"INCR".to_vec(), b"fuzz:counter".to_vec()],
        5 => vec![b"DEL".to_vec(), k, fuzz_key(rng)],
        6 => vec![b"MGET".to_vec(), k, fuzz_key(rng), fuzz_key(rng)],
        _ => vec![b"APPEND".to_vec(), k, payload(rng, 50)],
    }
}

/// A valid request and the reply it must get (none for empty requests).
fn valid(rng: &mut Rng) -> (Vec<u8>, Option<Want>) {
    let pong = || Some(Want::Exact(Reply::Simple("PONG".into())));
    match rng.index(7) {
        0 => (encode(&["PING"]), pong()),
        1 => {
            let p = payload(rng, 300);
            let bytes = encode_bytes(&[b"ECHO", &p]);
            (bytes, Some(Want::Exact(Reply::Bulk(p))))
        }
        2 => {
            let line = rng.pick(&["PING\r\n", "ping\n", "  PiNg  \r\n", "PING\t\r\n"]);
            (line.as_bytes().to_vec(), pong())
        }
        3 => {
            let word: Vec<u8> = (0..1 + rng.index(20))
                .map(|_| *rng.pick(b"abcdefghijklmnopqrstuvwxyz0123456789"))
                .collect();
            let mut line = b"echo ".to_vec();
            line.extend_from_slice(&word);
            line.extend_from_slice(b"\r\n");
            (line, Some(Want::Exact(Reply::Bulk(word))))
        }
        4 => {
            let v = payload(rng, 200);
            let bytes = encode_bytes(&[b"SET", &fuzz_key(rng), &v]);
            (bytes, Some(Want::Exact(ok())))
        }
        5 => {
            let args = command(rng);
            let args: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
            (encode_bytes(&args), Some(Want::Any))
        }
        _ => {
            // Empty requests: skipped without a reply, as Redis does.
            let e = rng.pick(&["*0\r\n", "*-1\r\n", "\r\n", "\n", "   \r\n"]);
            (e.as_bytes().to_vec(), None)
        }
    }
}

/// A malformed (or at least mangled) request, and what was done to it.
fn malformed(rng: &mut Rng) -> (Vec<u8>, &'static str) {
    let args = command(rng);
    let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
    let base = encode_bytes(&refs);
    // Where the type bytes are: the array's, then each bulk's.
    let mut markers = vec![0];
    let mut p = format!("*{}\r\n", args.len()).len();
    for a in &args {
        markers.push(p);
        p += format!("${}\r\n", a.len()).len() + a.len() + 2;
    }
    match rng.index(13) {
        0 => {
            let cut = 1 + rng.index(base.len() - 1);
            (base[..cut].to_vec(), "truncated")
        }
        1 => {
            let bad = rng.index(args.len());
            let mut out = format!("*{}\r\n", args.len()).into_bytes();
            for (i, a) in args.iter().enumerate() {
                let len = if i == bad {
                    let l = a.len() as i64;
                    match rng.index(8) {
                        0 => (l + 1).to_string(),
                        1 => (l - 1).to_string(),
                        2 => (l + 2).to_string(),
                        3 => (l + 100).to_string(),
                        4 => "0".into(),
                        5 => "-2".into(),
                        6 => String::new(),
                        _ => "abc".into(),
                    }
                } else {
                    a.len().to_string()
                };
                out.extend_from_slice(format!("${len}\r\n").as_bytes());
                out.extend_from_slice(a);
                out.extend_from_slice(b"\r\n");
            }
            (out, "wrong bulk length")
        }
        2 => {
            let mut out = base;
            let at = *rng.pick(&markers);
            out[at] = match rng.index(3) {
                0 => *rng.pick(b"+-:%~#!=(_,>|*$"),
                1 => *rng.pick(b"\0 \r\na"),
                _ => rng.byte(),
            };
            (out, "bad type byte")
        }
        3 => {
            let n = 1 + rng.index(1000);
            let out = if rng.index(2) == 0 {
                // A negative count, then what would have been its elements.
                let mut out = format!("*-{n}\r\n").into_bytes();
                out.extend_from_slice(&base[markers[1]..]);
                out
            } else {
                let mut out = format!("*2\r\n$4\r\nECHO\r\n$-{n}\r\n").into_bytes();
                out.extend_from_slice(b"abc\r\n");
                out
            };
            (out, "negative count")
        }
        4 => {
            let head = *rng.pick(&[
                "*2147483647\r\n",
                "*1000000000\r\n",
                "*2147483648\r\n",
                "*9223372036854775807\r\n",
                "*99999999999999999999\r\n",
                "*1\r\n$2147483647\r\n",
                "*1\r\n$536870912\r\n",
                "*1\r\n$536870913\r\n",
                "*1\r\n$9223372036854775807\r\n",
                "*1\r\n$-9223372036854775808\r\n",
                "*2\r\n$3\r\nGET\r\n$4294967296\r\n",
            ]);
            let mut out = head.as_bytes().to_vec();
            out.extend_from_slice(&payload(rng, 64));
            (out, "huge count")
        }
        5 => {
            let mut out = format!("*{}\r\n", 1 + rng.index(3)).into_bytes();
            for _ in 0..rng.index(4) {
                out.extend_from_slice(b"*1\r\n");
            }
            out.extend_from_slice(&base);
            (out, "nested array")
        }
        6 => {
            let mut out = Vec::new();
            for _ in 0..1 + rng.index(8) {
                for _ in 0..1 + rng.index(6) {
                    out.push(*rng.pick(b"abcdefghijklmnopqrstuvwxyz\"'\\x0f \t"));
                }
                out.push(b' ');
            }
            let end = *rng.pick(&["\r\n", "\n", "", "\r", "\"\r\n", "'\n", "\\\r\n"]);
            out.extend_from_slice(end.as_bytes());
            (out, "inline garbage")
        }
        7 => {
            let mut out = base;
            for _ in 0..1 + rng.index(4) {
                let at = rng.index(out.len() + 1);
                out.insert(at, 0);
            }
            (out, "NUL bytes")
        }
        8 => {
            let len = 1 + rng.index(1024);
            ((0..len).map(|_| rng.byte()).collect(), "random bytes")
        }
        9 => {
            let mut out = base;
            for _ in 0..1 + rng.index(4) {
                let at = rng.index(out.len());
                out[at] = rng.byte();
            }
            (out, "flipped bytes")
        }
        10 if rng.index(8) == 0 => {
            // Longer than the 64 KiB a count or inline line may have.
            let n = 70 * 1024;
            let out = match rng.index(3) {
                0 => [b"*".to_vec(), vec![b'1'; n]].concat(),
                1 => [b"*1\r\n$".to_vec(), vec![b'9'; n]].concat(),
                _ => vec![b'a'; n],
            };
            (out, "overlong line")
        }
        10 | 11 => {
            let s = *rng.pick(&[
                "*01\r\n$4\r\nPING\r\n",
                "*+1\r\n$4\r\nPING\r\n",
                "* 1\r\n$4\r\nPING\r\n",
                "*1 \r\n$4\r\nPING\r\n",
                "*0x1\r\n$4\r\nPING\r\n",
                "*1\r\n$04\r\nPING\r\n",
                "*1\r\n$+4\r\nPING\r\n",
                "*1\r\n$ 4\r\nPING\r\n",
                "*-0\r\n",
                "*\r\n",
                "*1\r\n$\r\n",
                "*1\r\n$-0\r\nx\r\n",
            ]);
            (s.as_bytes().to_vec(), "odd number")
        }
        _ => {
            let out = match rng.index(4) {
                0 => base
                    .split(|&b| b == b'\n')
                    .map(|piece| piece.strip_suffix(b"\r").unwrap_or(piece).to_vec())
                    .collect::<Vec<_>>()
                    .join(&b'\n'),
                1 => base
                    .iter()
                    .copied()
                    .filter(|&b| b != b'\n')
                    .collect::<Vec<u8>>(),
                2 => [base.as_slice(), b"\n\r"].concat(),
                _ => {
                    // The two bytes after a bulk are not CRLF.
                    let mut out = base;
                    let n = out.len();
                    out[n - 2] = b'x';
                    out[n - 1] = b'y';
                    out
                }
            };
            (out, "line endings")
        }
    }
}

/// One abusive stream: valid requests (whose replies are known), one malformed request, then
/// a few more of either.
struct Case {
    bytes: Vec<u8>,
    expect: Vec<Want>,
    what: &'static str,
}

fn case(rng: &mut Rng) -> Case {
    let mut bytes = Vec::new();
    let mut expect = Vec::new();
    for _ in 0..rng.index(4) {
        let (b, w) = valid(rng);
        bytes.extend(b);
        expect.extend(w);
    }
    let (m, what) = malformed(rng);
    bytes.extend(m);
    for _ in 0..rng.index(3) {
        if rng.index(2) == 0 {
            bytes.extend(valid(rng).0);
        } else {
            bytes.extend(malformed(rng).0);
        }
    }
    Case {
        bytes,
        expect,
        what,
    }
}

// ---------------------------------------------------------------------------------------------
// What the server must make of a byte stream: Redis's request framing, written from the RESP
// specification and Redis's documented limits, not from the server's parser. A request is a
// multibulk (`*N\r\n` then N times `$len\r\n` and len bytes and two more) or an inline line
// (up to `\n`, split like redis-cli: `common::args`). The model reads the whole stream, front
// to back, and says how many requests it holds and how it ends: cleanly, inside a request, or
// in a protocol error (and with which message), so that every reply can be counted.

/// Redis's `PROTO_INLINE_MAX_SIZE`: the longest inline request, or count line.
const INLINE_MAX: usize = 64 * 1024;
/// The default `proto-max-bulk-len`.
const MAX_BULK: i64 = 512 * 1024 * 1024;

#[derive(Debug, Default)]
struct Framing {
    /// Requests with at least one argument, in order (empty ones get no reply).
    requests: Vec<Vec<Vec<u8>>>,
    /// The stream ends in a protocol error: `Some(message)`, or `Some(None)` when either of
    /// two messages may come (a line longer than `INLINE_MAX` is refused as too big when it
    /// arrives in pieces, or for its content when it arrives whole).
    error: Option<Option<String>>,
}

impl Framing {
    /// How many requests get a reply, and the protocol error that comes last, if any: every
    /// request is answered up to QUIT, which closes the connection.
    fn replies(&self) -> (usize, Option<&Option<String>>) {
        let quit = self
            .requests
            .iter()
            .position(|r| r[0].eq_ignore_ascii_case(b"quit"));
        let answered = quit.map_or(self.requests.len(), |q| q + 1);
        (answered, self.error.as_ref().filter(|_| quit.is_none()))
    }
}

fn model_framing(stream: &[u8]) -> Framing {
    let mut framing = Framing::default();
    let mut rest = stream;
    while !rest.is_empty() {
        let next = if rest[0] == b'*' {
            multibulk(rest)
        } else {
            inline(rest)
        };
        match next {
            Next::Request(args, after) => {
                if !args.is_empty() {
                    framing.requests.push(args);
                }
                rest = after;
            }
            // The server waits for the rest, then sees the end of the stream.
            Next::Incomplete => break,
            Next::Error(message) => {
                framing.error = Some(message);
                break;
            }
        }
    }
    framing
}

/// The request at the front of a stream.
enum Next<'a> {
    /// Its arguments (none: skipped without a reply), and what follows it.
    Request(Vec<Vec<u8>>, &'a [u8]),
    /// The stream ends inside it.
    Incomplete,
    /// A protocol error (see `Framing::error`).
    Error(Option<String>),
}

/// A protocol error with `message`, or with either of two messages if the line was too long.
fn refused(long: bool, message: String) -> Next<'static> {
    Next::Error((!long).then_some(message))
}

/// An inline request: one line, its `\r\n` or `\n` dropped.
fn inline(s: &[u8]) -> Next<'_> {
    let newline = s.iter().position(|&b| b == b'\n');
    if newline.unwrap_or(s.len()) > INLINE_MAX {
        return refused(false, "too big inline request".into());
    }
    let Some(newline) = newline else {
        return Next::Incomplete;
    };
    let line = &s[..newline];
    match split_args(line.strip_suffix(b"\r").unwrap_or(line)) {
        Some(args) => Next::Request(args, &s[newline + 1..]),
        None => refused(false, "unbalanced quotes in request".into()),
    }
}

/// The header line at the front of `s` (`*count` or `$length`): it ends at the first `\r`, and
/// the byte after that is taken for the `\n` without a look, as Redis does.
enum Header<'a> {
    /// No `\r` yet; `too_big` when more than `INLINE_MAX` bytes came without one.
    Open { too_big: bool },
    /// The type byte, the text after it, whether the line is longer than `INLINE_MAX`, and
    /// what follows the line (`None` if the byte after the `\r` has not come yet).
    Line {
        kind: u8,
        text: &'a [u8],
        long: bool,
        rest: Option<&'a [u8]>,
    },
}

fn header(s: &[u8]) -> Header<'_> {
    let Some(cr) = s.iter().position(|&b| b == b'\r') else {
        return Header::Open {
            too_big: s.len() > INLINE_MAX,
        };
    };
    Header::Line {
        kind: s[0],
        text: s.get(1..cr).unwrap_or_default(),
        long: cr > INLINE_MAX,
        rest: s.get(cr + 2..),
    }
}

/// Redis's `string2ll`: exactly the decimal form of an i64 (no sign but `-`, no leading
/// zeros, no "-0", no blanks).
fn string2ll(text: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(text).ok()?;
    let n: i64 = text.parse().ok()?;
    (n.to_string() == text).then_some(n)
}

/// `*count`, then `count` bulk strings (none at all for a count of 0 or less).
fn multibulk(s: &[u8]) -> Next<'_> {
    let (count, mut rest) = match header(s) {
        Header::Open { too_big: true } => {
            return refused(false, "too big mbulk count string".into());
        }
        Header::Open { too_big: false } | Header::Line { rest: None, .. } => {
            return Next::Incomplete;
        }
        Header::Line {
            text,
            long,
            rest: Some(rest),
            ..
        } => match string2ll(text) {
            Some(n) if n <= i64::from(i32::MAX) && !long => (n, rest),
            _ => return refused(long, "invalid multibulk length".into()),
        },
    };
    let mut args = Vec::new();
    for _ in 0..count {
        match bulk(rest) {
            Ok((arg, after)) => {
                args.push(arg.to_vec());
                rest = after;
            }
            Err(next) => return next,
        }
    }
    Next::Request(args, rest)
}

/// `$length`, the bytes, and two more that are skipped without a look (as Redis does).
fn bulk(s: &[u8]) -> Result<(&[u8], &[u8]), Next<'_>> {
    let (text, long, rest) = match header(s) {
        Header::Open { too_big } => {
            return Err(if too_big {
                refused(false, "too big bulk count string".into())
            } else {
                Next::Incomplete
            });
        }
        Header::Line { kind, long, .. } if kind != b'$' => {
            // Redis turns line breaks in an error message into blanks.
            let got = if kind == b'\r' || kind == b'\n' {
                ' '
            } else {
                char::from(kind)
            };
            return Err(refused(long, format!("expected '$', got '{got}'")));
        }
        Header::Line { rest: None, .. } => return Err(Next::Incomplete),
        Header::Line {
            text,
            long,
            rest: Some(rest),
            ..
        } => (text, long, rest),
    };
    let len = match string2ll(text) {
        Some(n) if (0..=MAX_BULK).contains(&n) && !long => n as usize,
        _ => return Err(refused(long, "invalid bulk length".into())),
    };
    match rest.get(len + 2..) {
        Some(after) => Ok((&rest[..len], after)),
        None => Err(Next::Incomplete),
    }
}

#[derive(Debug, Default)]
struct Tally {
    streams: u64,
    checked_replies: u64,
    replies: u64,
    protocol_errors: u64,
    closed_without_error: u64,
    reset: u64,
    /// Streams whose every reply was counted against the model.
    modelled: u64,
    /// Streams not counted because of the server's vertical tab deviation (see `check_case`).
    vt_streams: u64,
}

/// Sends `bytes`, half-closes, and reads until the server closes. The server must close the
/// connection (having read our end of stream, or after a protocol error): a read that times out
/// means it did neither.
fn exchange(addr: SocketAddr, bytes: &[u8]) -> Result<(Vec<u8>, bool), String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    // Close with a reset: 40,000 streams would otherwise leave as many TIME_WAIT sockets,
    // enough to exhaust ephemeral ports where they are not reused.
    set_linger_zero(&s);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
    match s.write_all(bytes) {
        Ok(()) => {}
        // Closed on us mid-stream: allowed after a protocol error, checked below.
        Err(e) if matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset) => {}
        Err(e) => return Err(format!("write: {e}")),
    }
    let _ = s.shutdown(Shutdown::Write);
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return Ok((got, false)),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return Ok((got, true)),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err(format!(
                    "the server neither answered nor closed the connection within 20 s (received so far: {})",
                    show(&got)
                ));
            }
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

fn check_case(addr: SocketAddr, c: &Case, tally: &mut Tally) -> Result<(), String> {
    let model = model_framing(&c.bytes);
    // Known deviation: the server does not take a vertical tab (0x0b) for a blank in an inline
    // request, where Redis (C's isspace) does: `ECHO "a"\vb` is a protocol error ("unbalanced
    // quotes") for the server, and ECHO with two arguments for Redis. Where that changes what
    // a stream holds, its replies are not counted against the model (see `Tally::vt_streams`).
    let (answered, error) = model.replies();
    let vt_as_data: Vec<u8> = c
        .bytes
        .iter()
        .map(|&b| if b == 0x0b { 0x01 } else { b })
        .collect();
    let vt_deviation = model_framing(&vt_as_data).replies() != (answered, error);
    let (got, reset) = exchange(addr, &c.bytes)?;
    let replies = parse_replies(&got).map_err(|e| format!("malformed reply stream: {e}"))?;
    if replies.len() < c.expect.len() {
        return Err(format!(
            "{} replies, but the {} valid requests before the malformed one must all be answered: {replies:?}",
            replies.len(),
            c.expect.len()
        ));
    }
    for (i, (want, got)) in c.expect.iter().zip(&replies).enumerate() {
        let fine = match want {
            Want::Exact(r) => r == got,
            Want::Any => !is_protocol_error(got),
        };
        if !fine {
            return Err(format!("reply {i}: expected {want:?}, got {got:?}"));
        }
    }
    if let Some(i) = replies.iter().position(is_protocol_error)
        && i + 1 != replies.len()
    {
        return Err(format!(
            "reply {i} is a protocol error but more replies followed: {replies:?}"
        ));
    }
    if vt_deviation {
        tally.vt_streams += 1;
    } else {
        let want = answered + usize::from(error.is_some());
        if replies.len() != want {
            return Err(format!(
                "{} replies, expected {answered} for the requests{}: {replies:?}",
                replies.len(),
                if error.is_some() {
                    " and one protocol error"
                } else {
                    ""
                }
            ));
        }
        match (error, replies.last()) {
            (Some(Some(msg)), Some(last)) => {
                let want = Reply::Error(format!("ERR Protocol error: {msg}"));
                if *last != want {
                    return Err(format!("last reply {last:?}, expected {want:?}"));
                }
            }
            (Some(None), Some(last)) if !is_protocol_error(last) => {
                return Err(format!("last reply {last:?}, expected a protocol error"));
            }
            (None, Some(last)) if is_protocol_error(last) => {
                return Err(format!("unexpected protocol error {last:?}"));
            }
            _ => {}
        }
        tally.modelled += 1;
    }
    tally.streams += 1;
    tally.checked_replies += c.expect.len() as u64;
    tally.replies += replies.len() as u64;
    if replies.last().is_some_and(is_protocol_error) {
        tally.protocol_errors += 1;
    } else {
        tally.closed_without_error += 1;
    }
    tally.reset += u64::from(reset);
    Ok(())
}

fn fuzz_seed() -> u64 {
    env_u64("CASKDB_ABUSE_SEED").unwrap_or(0xCA5C_DB5E_ED00_0001)
}

// ---------------------------------------------------------------------------------------------
// 1. Random and malformed RESP.

const FUZZ_STREAMS: u64 = 40_000;
const FUZZ_WORKERS: u64 = 8;

#[test]
fn random_and_malformed_resp_gets_answers_or_a_close_and_others_are_served() {
    let srv = ChildServer::start();
    let addr = srv.addr;
    let seed = fuzz_seed();
    let started = Instant::now();

    // The well-behaved client, all along.
    let done = Arc::new(AtomicBool::new(false));
    let healthy = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut c = Raw::connect(addr);
            let mut n = 0;
            while !done.load(Ordering::Relaxed) || n < 50 {
                round_trip(&mut c, "fuzz", n);
                if n >= 10 {
                    // Earlier writes are still there.
                    let old = n - 10;
                    assert_eq!(
                        c.cmd(&["GET", &format!("healthy:fuzz:{old}")]),
                        Reply::bulk(&format!("value {old} of fuzz"))
                    );
                }
                n += 1;
            }
            n
        })
    };

    let workers: Vec<_> = (0..FUZZ_WORKERS)
        .map(|w| {
            std::thread::spawn(move || {
                let mut tally = Tally::default();
                let mut kinds = std::collections::BTreeMap::<&str, u64>::new();
                for i in (w..FUZZ_STREAMS).step_by(FUZZ_WORKERS as usize) {
                    let mut rng = Rng::new(seed ^ i.wrapping_mul(0xD134_2543_DE82_EF95));
                    let c = case(&mut rng);
                    *kinds.entry(c.what).or_default() += 1;
                    if let Err(e) = check_case(addr, &c, &mut tally) {
                        panic!(
                            "seed {seed:#x} stream {i} ({}): {e}\nsent: {}",
                            c.what,
                            show(&c.bytes)
                        );
                    }
                }
                (tally, kinds)
            })
        })
        .collect();
    let mut total = Tally::default();
    let mut kinds = std::collections::BTreeMap::<&str, u64>::new();
    for w in workers {
        let (t, k) = w.join().expect("fuzz worker");
        total.streams += t.streams;
        total.checked_replies += t.checked_replies;
        total.replies += t.replies;
        total.protocol_errors += t.protocol_errors;
        total.closed_without_error += t.closed_without_error;
        total.reset += t.reset;
        total.modelled += t.modelled;
        total.vt_streams += t.vt_streams;
        for (what, n) in k {
            *kinds.entry(what).or_default() += n;
        }
    }
    done.store(true, Ordering::Relaxed);
    let healthy_rounds = healthy
        .join()
        .expect("the healthy client was served correctly");
    eprintln!(
        "fuzz: seed {seed:#x}, {total:?}, kinds {kinds:?}, healthy round trips {healthy_rounds}, {:?}",
        started.elapsed()
    );

    assert_eq!(total.streams, FUZZ_STREAMS);
    assert!(total.modelled > FUZZ_STREAMS * 85 / 100, "{total:?}");
    // Both outcomes were exercised, and the valid prefixes were really checked.
    assert!(total.protocol_errors > FUZZ_STREAMS / 10, "{total:?}");
    assert!(total.closed_without_error > FUZZ_STREAMS / 10, "{total:?}");
    assert!(total.checked_replies > FUZZ_STREAMS / 2, "{total:?}");
    assert_eq!(
        kinds.len(),
        13,
        "every kind of mangling was sent: {kinds:?}"
    );

    // Afterwards: every abuser is gone, the server still answers.
    let mut c = srv.raw();
    round_trip(&mut c, "after-fuzz", 0);
    until_only_client(&mut c, "only this client to remain");
    assert!(
        common::info_field(&mut c, "stats", "total_connections_received") > total.streams,
        "every stream was its own connection"
    );
    drop(c);
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// 2. Huge declared lengths, held open.

const HUGE_CONNS: usize = 200;
/// The largest bulk the server is configured to accept for this test (Redis's default is
/// 512 MB; the engine allows up to about 2 GiB).
const HUGE_BULK: u64 = 2_000_000_000;

#[test]
fn huge_declared_lengths_held_open_cost_no_memory() {
    let srv = ChildServer::start_with(Some(HUGE_BULK));
    let mut healthy = srv.raw();
    round_trip(&mut healthy, "huge", 0);
    let base_rss = srv.rss_kib();

    // Every request declares 2 GB or a billion elements and sends a little of it.
    let mut held = Vec::new();
    let mut sent = 0;
    let mut declared_bytes: u64 = 0;
    let mut declared_elements: u64 = 0;
    for i in 0..HUGE_CONNS {
        let mut s = TcpStream::connect(srv.addr).unwrap();
        let bytes = match i % 4 {
            0 => {
                let mut b = format!(
                    "*3\r\n$3\r\nSET\r\n${}\r\nhuge:{i}\r\n${HUGE_BULK}\r\n",
                    format!("huge:{i}").len()
                )
                .into_bytes();
                b.extend(std::iter::repeat_n(b'x', 4096));
                b
            }
            1 => {
                let mut b = b"*1000000000\r\n".to_vec();
                for _ in 0..100 {
                    b.extend_from_slice(b"$3\r\nabc\r\n");
                }
                b
            }
            2 => format!("*2147483647\r\n${HUGE_BULK}\r\nabc").into_bytes(),
            _ => format!("*2\r\n$3\r\nGET\r\n${HUGE_BULK}\r\n").into_bytes(),
        };
        declared_bytes += if i % 4 == 1 { 0 } else { HUGE_BULK };
        declared_elements += if i % 4 == 1 || i % 4 == 2 {
            1_000_000_000
        } else {
            0
        };
        sent += bytes.len();
        s.write_all(&bytes).unwrap();
        held.push(s);
    }
    // The server has read every byte sent (nothing waits in its socket queues)…
    poll_until(
        "the server to read everything sent on the held connections",
        Duration::from_secs(60),
        || {
            let table = TcpTable::read();
            for s in &held {
                let (server_side, client_side) = table.both(srv.addr, s)?;
                if server_side.rx + client_side.tx != 0 {
                    return Err(format!("{server_side:?} {client_side:?}"));
                }
            }
            let n = common::info_field(&mut healthy, "clients", "connected_clients");
            if n != HUGE_CONNS as u64 + 1 {
                return Err(format!("{n} clients"));
            }
            Ok(())
        },
    );
    // …answered none of them and closed none: it is waiting for the rest.
    for (i, s) in held.iter().enumerate() {
        open_and_silent(s).unwrap_or_else(|e| panic!("held connection {i}: {e}"));
    }

    // Beyond the limit: refused at once, whatever else is going on.
    for (req, err) in [
        ("*1\r\n$2147483647\r\n", "invalid bulk length"),
        (
            "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2000000001\r\n",
            "invalid bulk length",
        ),
        ("*2147483648\r\n", "invalid multibulk length"),
    ] {
        for _ in 0..10 {
            let mut c = srv.raw();
            c.send_bytes(req.as_bytes());
            assert_eq!(
                c.read(),
                Reply::Error(format!("ERR Protocol error: {err}")),
                "{req:?}"
            );
            assert!(c.read_to_end().is_empty(), "closed after the error");
        }
    }

    // The healthy client is served meanwhile, and nothing was half-written.
    for n in 1..=100 {
        round_trip(&mut healthy, "huge", n);
    }
    assert_eq!(healthy.cmd(&["EXISTS", "huge:0", "huge:4"]), Reply::Int(0));

    let rss = srv.rss_kib();
    let hwm = srv.hwm_kib();
    eprintln!(
        "huge lengths: {HUGE_CONNS} connections sent {sent} bytes declaring {} GB of bulks and at least {declared_elements} elements; server VmRSS {base_rss} KiB before, {rss} KiB held open, VmHWM {hwm} KiB",
        declared_bytes / 1_000_000_000
    );
    assert!(
        hwm.saturating_sub(base_rss) < 64 * 1024,
        "memory grew by {} KiB for {HUGE_CONNS} connections that sent {sent} bytes",
        hwm - base_rss,
    );

    // SHUTDOWN is not held up by the half-sent requests.
    drop(healthy);
    srv.stop();
    drop(held);
}

// ---------------------------------------------------------------------------------------------
// 3. Thousands of connections opened and dropped.

const WAVES: usize = 10;
const PER_WAVE: usize = 500;

#[test]
fn thousands_of_dropped_connections_leave_no_clients_or_descriptors_behind() {
    let srv = ChildServer::start();
    let mut healthy = srv.raw();
    round_trip(&mut healthy, "churn", 0);
    let my_id = match healthy.cmd(&["CLIENT", "ID"]) {
        Reply::Int(id) => id,
        other => panic!("CLIENT ID: {other:?}"),
    };
    let base_fds = srv.fd_count();
    let base_conns = common::info_field(&mut healthy, "stats", "total_connections_received");
    let mut max_fds = base_fds;
    let mut max_clients = 1;

    for w in 0..WAVES {
        let mut held = Vec::new();
        let mut half_closed = Vec::new();
        for i in 0..PER_WAVE {
            let mut s = TcpStream::connect(srv.addr).expect("connect");
            match i % 5 {
                // Connect and close without a word.
                0 => drop(s),
                // Half a request, then silence.
                1 => {
                    s.write_all(b"*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$10\r\nabc")
                        .unwrap();
                    held.push(s);
                }
                // A request whose reply is never read (closing then sends a reset).
                2 => {
                    s.write_all(b"PING\r\n").unwrap();
                    held.push(s);
                }
                // A whole request, then our end of the stream: answered, then closed.
                3 => {
                    s.write_all(&encode(&["SET", &format!("churn:{w}:{i}"), "v"]))
                        .unwrap();
                    s.shutdown(Shutdown::Write).unwrap();
                    half_closed.push(s);
                }
                // Half a request, then an abortive close (RST).
                _ => {
                    set_linger_zero(&s);
                    s.write_all(b"*2\r\n$3\r\nGET\r\n").unwrap();
                    held.push(s);
                }
            }
        }
        let accepted = base_conns + (PER_WAVE * (w + 1)) as u64;
        poll_until(
            "the server to accept the whole wave",
            Duration::from_secs(60),
            || {
                let n = common::info_field(&mut healthy, "stats", "total_connections_received");
                if n == accepted {
                    Ok(())
                } else {
                    Err(format!("{n} of {accepted}"))
                }
            },
        );
        if w == 0 {
            // The measurements see the open connections at all.
            poll_until(
                "the held connections to show up as clients and descriptors",
                Duration::from_secs(60),
                || {
                    let clients = common::info_field(&mut healthy, "clients", "connected_clients");
                    let fds = srv.fd_count();
                    max_fds = max_fds.max(fds);
                    max_clients = max_clients.max(clients);
                    if clients > held.len() as u64 && fds >= base_fds + held.len() {
                        Ok(())
                    } else {
                        Err(format!("{clients} clients, {fds} descriptors"))
                    }
                },
            );
        }
        for mut s in half_closed {
            s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).expect("answered, then closed");
            assert_eq!(got, b"+OK\r\n");
        }
        drop(held);
        round_trip(&mut healthy, "churn", w as u64 + 1);
    }

    let (clients, fds) = poll_until(
        "clients and descriptors back to the start",
        Duration::from_secs(60),
        || {
            let clients = common::info_field(&mut healthy, "clients", "connected_clients");
            let fds = srv.fd_count();
            if clients == 1 && fds <= base_fds {
                Ok((clients, fds))
            } else {
                Err(format!(
                    "{clients} clients, {fds} descriptors (at start {base_fds})"
                ))
            }
        },
    );
    let list = client_list(&mut healthy);
    assert_eq!(list.len(), 1, "{list:?}");
    assert!(list[0].starts_with(&format!("id={my_id} ")), "{list:?}");
    let total =
        common::info_field(&mut healthy, "stats", "total_connections_received") - base_conns;
    assert_eq!(total, (WAVES * PER_WAVE) as u64);
    // The half-closed clients' requests were all carried out; the half-sent ones never were.
    let Reply::Array(keys) = healthy.cmd(&["KEYS", "churn:*"]) else {
        panic!("KEYS")
    };
    assert_eq!(keys.len(), WAVES * PER_WAVE / 5);
    assert_eq!(healthy.cmd(&["EXISTS", "half"]), Reply::Int(0));
    eprintln!(
        "churn: {total} connections in {WAVES} waves; clients {max_clients} at most, {clients} after; descriptors {base_fds} at start, {max_fds} at most, {fds} after"
    );
    drop(healthy);
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// 4. Clients that never read their replies.

const BIG: usize = 1024 * 1024;
const STALLED_GETS: usize = 2000;
const ABANDONED_GETS: usize = 20_000;

fn big_value() -> String {
    (0..BIG)
        .map(|i| char::from(b'a' + ((i / 4096 + i) % 26) as u8))
        .collect()
}

/// Bytes of requests on `s` that the server has not read yet (in its socket, or still in ours).
fn unread_requests(srv: SocketAddr, s: &TcpStream) -> Result<u64, String> {
    let (server_side, client_side) = both_queues(srv, s)?;
    Ok(server_side.rx + client_side.tx)
}

#[test]
fn clients_that_never_read_cannot_grow_server_memory() {
    let srv = ChildServer::start();
    let value = big_value();
    let mut healthy = srv.raw();
    assert_eq!(healthy.cmd(&["SET", "big", &value]), ok());
    for _ in 0..3 {
        assert_eq!(text(healthy.cmd(&["GET", "big"])), value);
    }
    let base_rss = srv.rss_kib();
    let get_big = encode(&["GET", "big"]);

    // One client pipelines 2,000 GETs of 1 MiB (2 GiB of replies) and reads nothing, yet.
    let mut stalled = TcpStream::connect(srv.addr).unwrap();
    stalled
        .set_write_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stalled.write_all(&get_big.repeat(STALLED_GETS)).unwrap();
    // Another pipelines 20,000 from a thread (its writes block once the server stops reading)
    // and will leave without reading anything.
    let abandoned = TcpStream::connect(srv.addr).unwrap();
    let writer = {
        let mut s = abandoned.try_clone().unwrap();
        s.set_write_timeout(Some(Duration::from_secs(120))).unwrap();
        let bytes = get_big.repeat(ABANDONED_GETS);
        std::thread::spawn(move || s.write_all(&bytes).is_ok())
    };

    // Wait until both are stuck: the server has replies queued that the clients do not take,
    // and nothing moves between two looks with the healthy client served in between.
    let mut previous = None;
    let mut n = 0;
    let settled = poll_until("both pipelines to stall", Duration::from_secs(60), || {
        for _ in 0..10 {
            n += 1;
            round_trip(&mut healthy, "stall", n);
        }
        let table = TcpTable::read();
        let now = (
            table.both(srv.addr, &stalled)?,
            table.both(srv.addr, &abandoned)?,
        );
        let stuck = now.0.0.tx > 0 && now.1.0.tx > 0;
        if stuck && previous == Some(now) {
            Ok(now)
        } else {
            previous = Some(now);
            Err(format!("{now:?}"))
        }
    });
    let unread_stalled = unread_requests(srv.addr, &stalled).unwrap();
    let unread_abandoned = unread_requests(srv.addr, &abandoned).unwrap();

    // Others are served all along, the big value included.
    let mut max_rss = srv.rss_kib();
    for i in 0..100 {
        n += 1;
        round_trip(&mut healthy, "stall", n);
        if i % 10 == 0 {
            assert_eq!(text(healthy.cmd(&["GET", "big"])), value);
        }
        max_rss = max_rss.max(srv.rss_kib());
    }
    // The server read no more requests from either while their replies could not be sent.
    assert_eq!(
        unread_requests(srv.addr, &stalled).unwrap(),
        unread_stalled,
        "the server kept reading a client that does not read (settled at {settled:?})"
    );
    assert_eq!(
        unread_requests(srv.addr, &abandoned).unwrap(),
        unread_abandoned,
        "the server kept reading a client that does not read (settled at {settled:?})"
    );
    assert!(
        unread_abandoned > 0,
        "of {} bytes of requests the server read all while unable to reply",
        get_big.len() * ABANDONED_GETS
    );
    let hwm_stalled = srv.hwm_kib();
    assert!(
        hwm_stalled.saturating_sub(base_rss) < 64 * 1024,
        "server memory grew by {} KiB with {} GiB of replies not taken",
        hwm_stalled - base_rss,
        (STALLED_GETS + ABANDONED_GETS) / 1024
    );

    // The abandoned one leaves; the stalled one finally reads: every reply is there, in order.
    abandoned.shutdown(Shutdown::Both).unwrap();
    drop(abandoned);
    writer.join().expect("writer thread");
    let mut reader = BufReader::with_capacity(256 * 1024, stalled.try_clone().unwrap());
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    for i in 0..STALLED_GETS {
        match common::read_reply(&mut reader) {
            Some(Reply::Bulk(b)) if b == value.as_bytes() => {}
            Some(other) => panic!("reply {i}: {:?}", show(&format!("{other:?}").into_bytes())),
            None => panic!("reply {i}: connection closed"),
        }
    }
    drop(reader);
    drop(stalled);
    round_trip(&mut healthy, "stall", n + 1);
    until_only_client(&mut healthy, "only the healthy client to remain");
    let hwm = srv.hwm_kib();
    eprintln!(
        "no reader: server VmRSS {base_rss} KiB before, {max_rss} KiB at most while stalled; VmHWM {hwm_stalled} KiB while stalled, {hwm} KiB after draining; unread request bytes {unread_stalled} and {unread_abandoned}; queues when stalled {settled:?}"
    );
    assert!(
        hwm.saturating_sub(base_rss) < 64 * 1024,
        "server memory grew by {} KiB while a client read 2 GiB of replies",
        hwm - base_rss
    );
    drop(healthy);
    srv.stop();
}

// ---------------------------------------------------------------------------------------------
// 5. Small requests for huge replies.

const HUGE_REPLY_CLIENTS: usize = 100;
const MGET_KEYS: usize = 256;

/// Waits until every one of `clients` has replies queued that it does not take, unchanged
/// between two looks (serving `healthy` in between).
fn until_stalled(srv: SocketAddr, clients: &[TcpStream], healthy: &mut Raw, n: &mut u64) {
    let mut previous = None;
    poll_until("the clients to stall", Duration::from_secs(120), || {
        *n += 1;
        round_trip(healthy, "huge", *n);
        let table = TcpTable::read();
        let now = clients
            .iter()
            .map(|c| table.both(srv, c))
            .collect::<Result<Vec<_>, String>>()?;
        let stuck = now.iter().all(|(server_side, _)| server_side.tx > 0);
        if stuck && previous.as_ref() == Some(&now) {
            Ok(())
        } else {
            let waiting = now.iter().filter(|(s, _)| s.tx == 0).count();
            previous = Some(now);
            Err(format!("{waiting} clients without queued replies"))
        }
    });
}

#[test]
fn small_requests_for_huge_replies_hold_little_server_memory() {
    let srv = ChildServer::start();
    let value = big_value();
    let mut healthy = srv.raw();
    assert_eq!(healthy.cmd(&["SET", "big", &value]), ok());
    assert_eq!(text(healthy.cmd(&["GET", "big"])), value);
    let base_rss = srv.rss_kib();
    let base_hwm = srv.hwm_kib();

    // 100 clients each ask for 256 MiB (an MGET of one 1 MiB key 256 times: a 2.3 KB
    // request), and read nothing: 25 GiB of replies.
    let mut keys = vec!["MGET"];
    keys.extend(std::iter::repeat_n("big", MGET_KEYS));
    let request = encode(&keys);
    let clients: Vec<TcpStream> = (0..HUGE_REPLY_CLIENTS)
        .map(|_| {
            let mut c = TcpStream::connect(srv.addr).unwrap();
            c.write_all(&request).unwrap();
            c
        })
        .collect();
    let mut n = 0;
    until_stalled(srv.addr, &clients, &mut healthy, &mut n);
    // Others are served meanwhile, the big value included.
    for _ in 0..20 {
        n += 1;
        round_trip(&mut healthy, "huge", n);
    }
    assert_eq!(text(healthy.cmd(&["GET", "big"])), value);
    let stalled_rss = srv.rss_kib();
    let stalled_hwm = srv.hwm_kib();

    // One of them reads its reply: all of it, right.
    let mut reader = BufReader::with_capacity(1 << 20, clients[0].try_clone().unwrap());
    clients[0]
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    match common::read_reply(&mut reader) {
        Some(Reply::Array(items)) => {
            assert_eq!(items.len(), MGET_KEYS);
            for (i, item) in items.iter().enumerate() {
                assert!(
                    matches!(item, Reply::Bulk(b) if b == value.as_bytes()),
                    "element {i} of the MGET reply"
                );
            }
        }
        other => panic!("MGET reply: {other:?}"),
    }
    drop(reader);
    drop(clients);
    until_only_client(&mut healthy, "the stalled clients to be gone");
    eprintln!(
        "huge replies: {HUGE_REPLY_CLIENTS} clients asking {MGET_KEYS} MiB each; server VmRSS {base_rss} KiB before, {stalled_rss} KiB stalled; VmHWM {base_hwm} KiB before, {stalled_hwm} KiB stalled"
    );
    // Bound: 200 MiB over the start for all of them (without streaming each held about twice
    // its reply: 50 GiB).
    assert!(
        stalled_hwm.saturating_sub(base_rss) < 200 * 1024,
        "server memory grew by {} KiB for {HUGE_REPLY_CLIENTS} stalled replies",
        stalled_hwm - base_rss
    );
    srv.stop();
}

/// Whether the server process still holds a deleted data file open or mapped.
fn holds_deleted_data_file(pid: u32) -> bool {
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap();
    let open = fds.filter_map(|e| std::fs::read_link(e.ok()?.path()).ok());
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).unwrap();
    open.map(|p| p.display().to_string())
        .chain(maps.lines().map(str::to_string))
        .any(|l| l.contains(".data (deleted)"))
}

#[test]
fn a_stalled_reply_keeps_a_merged_file_for_reply_hold_seconds_only() {
    let srv = ChildServer::start_env(&[(CHILD_HOLD_ENV, Some(1))]);
    let value = big_value();
    let mut healthy = srv.raw();
    assert_eq!(healthy.cmd(&["SET", "big", &value]), ok());
    // A client asks for 64 MiB of it and reads nothing.
    let mut keys = vec!["MGET"];
    keys.extend(std::iter::repeat_n("big", 64));
    let mut stalled = TcpStream::connect(srv.addr).unwrap();
    stalled.write_all(&encode(&keys)).unwrap();
    let mut n = 0;
    until_stalled(
        srv.addr,
        std::slice::from_ref(&stalled),
        &mut healthy,
        &mut n,
    );
    // Fill the first data file (256 MiB) so that it is sealed, and make all of it dead.
    let filler = "f".repeat(4 << 20);
    for i in 0..70 {
        assert_eq!(healthy.cmd(&["SET", &format!("fill:{i}"), &filler]), ok());
    }
    for i in 0..70 {
        healthy.cmd(&["DEL", &format!("fill:{i}")]);
    }
    assert_eq!(healthy.cmd(&["SET", "big", "small now"]), ok());
    assert_eq!(
        client_list(&mut healthy).len(),
        2,
        "the stalled client is served"
    );
    assert_eq!(
        common::info_field(
            &mut healthy,
            "stats",
            "client_output_buffer_limit_disconnections"
        ),
        0
    );
    // The merge removes the file the stalled reply reads: the client is closed a second later,
    // counted, and the file's space is given back.
    healthy.cmd(&["BGREWRITEAOF"]);
    poll_until(
        "the stalled client to be closed",
        Duration::from_secs(60),
        || match common::info_field(
            &mut healthy,
            "stats",
            "client_output_buffer_limit_disconnections",
        ) {
            1 => Ok(()),
            k => Err(format!("{k} closed")),
        },
    );
    until_only_client(&mut healthy, "the stalled client to be gone");
    let pid = srv.process.pid;
    poll_until(
        "the deleted file to be let go",
        Duration::from_secs(30),
        || {
            if holds_deleted_data_file(pid) {
                Err("a deleted data file is still open".into())
            } else {
                Ok(())
            }
        },
    );
    // It got part of its reply, never all of it.
    let mut got = Vec::new();
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let _ = stalled.read_to_end(&mut got);
    assert!(got.len() < 64 * BIG, "{} bytes", got.len());
    assert_eq!(text(healthy.cmd(&["GET", "big"])), "small now");
    srv.stop();
}

#[test]
fn shutdown_is_not_held_up_by_a_client_that_never_reads() {
    let mut srv = ChildServer::start();
    let mut healthy = srv.raw();
    assert_eq!(healthy.cmd(&["SET", "big", &big_value()]), ok());
    let mut stalled = TcpStream::connect(srv.addr).unwrap();
    stalled
        .write_all(&encode(&["GET", "big"]).repeat(100))
        .unwrap();
    let mut previous = None;
    poll_until("the pipeline to stall", Duration::from_secs(60), || {
        healthy.cmd(&["PING"]);
        let now = both_queues(srv.addr, &stalled)?;
        if now.0.tx > 0 && previous == Some(now) {
            Ok(())
        } else {
            previous = Some(now);
            Err(format!("{now:?}"))
        }
    });
    healthy.send(&["SHUTDOWN"]);
    assert_eq!(healthy.read_to_end(), Vec::<u8>::new());
    let exited = srv.exited_within(Duration::from_secs(20));
    drop(stalled);
    let status = exited.expect("the server exits within 20 s of SHUTDOWN");
    assert!(status.success(), "{status}");
}

#[test]
fn an_inline_nul_byte_is_answered_or_refused() {
    let srv = ChildServer::start();
    let mut healthy = srv.raw();
    round_trip(&mut healthy, "nul", 0);
    let base_rss = srv.rss_kib();
    let mut c = TcpStream::connect(srv.addr).unwrap();
    c.write_all(b"PING\0\r\n").unwrap();
    c.shutdown(Shutdown::Write).unwrap();
    c.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut got = Vec::new();
    // Watch the server's memory while waiting: this bug grows it by hundreds of MiB a second.
    poll_until(
        "an answer and the end of the connection",
        Duration::from_secs(10),
        || {
            let rss = srv.rss_kib();
            assert!(
                rss < base_rss + 256 * 1024,
                "server memory grew from {base_rss} to {rss} KiB on a 7-byte request"
            );
            let mut buf = [0u8; 1024];
            match c.read(&mut buf) {
                Ok(0) => Ok(()),
                Ok(n) => {
                    got.extend_from_slice(&buf[..n]);
                    Err(show(&got))
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => Ok(()),
                Err(e) => Err(format!("{e}; received {}", show(&got))),
            }
        },
    );
    let replies = parse_replies(&got).expect("well-formed replies");
    // Redis ends the line at the NUL: the request is `PING`.
    assert_eq!(replies, vec![Reply::Simple("PONG".into())]);
    round_trip(&mut healthy, "nul", 1);
    drop(healthy);
    srv.stop();
}
