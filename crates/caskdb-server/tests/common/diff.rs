//! The differential harness: a reference `redis-server` child process, and `Diff`, which sends
//! the same commands to it and to caskdb and records every pair of replies that differ.
//!
//! Needs `redis-server` on the PATH (Debian's Redis 7.0 is the reference). Without it the tests
//! are skipped, except under CI, where they fail.
//!
//! With `DIFF_TRACE` set in the environment, every command is printed with both replies
//! (`cargo test --test <name> -- --nocapture`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::{Raw, Reply, encode_bytes as encode};

// ---------------------------------------------------------------------------------------------
// The reference server.

/// A `redis-server` child process, killed on drop (also when a test panics).
pub struct RedisServer {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

/// The `process_id` that the server on `addr` gives in `INFO server`.
fn pid_on(addr: SocketAddr) -> Option<u32> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(b"*2\r\n$4\r\nINFO\r\n$6\r\nserver\r\n").ok()?;
    let Reply::Bulk(info) = super::read_reply(&mut std::io::BufReader::new(s))? else {
        return None;
    };
    String::from_utf8_lossy(&info)
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Whether something on `addr` answers PING with PONG.
pub fn answers_ping(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(1)));
    if s.write_all(b"*1\r\n$4\r\nPING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

/// Starts `redis-server` on a free loopback port; `None` (skip) when it is not installed.
/// Runs `scenario` (several connections, observations as text) against redis-server, then
/// caskdb; their observations must agree. Without redis-server, nothing runs.
pub fn on_both(scenario: impl Fn(std::net::SocketAddr) -> Vec<String>) {
    let Some(redis) = start_redis() else {
        return;
    };
    let cask = super::start_fresh();
    let expected = scenario(redis.addr);
    let got = scenario(cask.addr);
    assert_eq!(
        got, expected,
        "caskdb (left) and redis-server (right) differ"
    );
}

pub fn start_redis() -> Option<RedisServer> {
    start_redis_with(&[])
}

/// [`start_redis`] with more command-line options (`--enable-debug-command yes`…).
pub fn start_redis_with(extra: &[&str]) -> Option<RedisServer> {
    // Another process may take the port between our probe and redis binding it: then redis
    // exits at once, and we try another port.
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let spawned = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--daemonize", "no"])
            .args(extra)
            .arg("--dir")
            .arg(dir.path())
            // Redis collates SORT … ALPHA with `strcoll` in the environment's locale: the C
            // locale's is byte order, as caskdb's.
            .env("LC_ALL", "C")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match spawned {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::env::var_os("CI").is_some() {
                    panic!("redis-server not found on PATH: CI must install redis-server");
                }
                eprintln!("notice: redis-server not found on PATH; differential test skipped");
                return None;
            }
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        let mut server = RedisServer {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // Whatever answers must be this child: another test's server (caskdb binds port
            // 0 and may be given the port we probed) would answer PING too, and every
            // comparison would then run against the wrong server.
            if answers_ping(server.addr) && pid_on(server.addr) == Some(server.child.id()) {
                return Some(server);
            }
            if server
                .child
                .try_wait()
                .expect("poll redis-server")
                .is_some()
            {
                break; // exited (port taken?): try another port
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("redis-server exited at start five times");
}

// ---------------------------------------------------------------------------------------------
// The comparison harness.

pub fn show_arg(a: &[u8]) -> String {
    let plain = !a.is_empty()
        && a.iter()
            .all(|&b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
    if plain {
        String::from_utf8_lossy(a).into_owned()
    } else {
        format!("\"{}\"", a.escape_ascii())
    }
}

pub fn show_cmd(args: &[&[u8]]) -> String {
    args.iter()
        .map(|a| show_arg(a))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn show(r: &Reply) -> String {
    match r {
        Reply::Simple(s) => format!("+{s}"),
        Reply::Error(e) => format!("-{e}"),
        Reply::Int(i) => format!(":{i}"),
        Reply::Bulk(b) => format!("\"{}\"", b.escape_ascii()),
        Reply::Nil => "(nil)".into(),
        Reply::NilArray => "(nil array)".into(),
        Reply::Array(items) => {
            let inner: Vec<String> = items.iter().map(show).collect();
            format!("[{}]", inner.join(", "))
        }
        Reply::Set(items) => {
            let inner: Vec<String> = items.iter().map(show).collect();
            format!("~{{{}}}", inner.join(", "))
        }
        Reply::Push(items) => {
            let inner: Vec<String> = items.iter().map(show).collect();
            format!(">[{}]", inner.join(", "))
        }
        Reply::Map(pairs) => {
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", show(k), show(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        Reply::Double(d) => format!(",{d}"),
        Reply::Bool(b) => format!("#{}", if *b { 't' } else { 'f' }),
        other => format!("{other:?}"),
    }
}

/// The keys of a KEYS-like reply, sorted; other replies unchanged.
pub fn sorted(r: Reply) -> Reply {
    let sort = |items: &mut Vec<Reply>| {
        items.sort_by(|a, b| match (a, b) {
            (Reply::Bulk(x), Reply::Bulk(y)) => x.cmp(y),
            _ => std::cmp::Ordering::Equal,
        })
    };
    match r {
        Reply::Array(mut items) => {
            sort(&mut items);
            Reply::Array(items)
        }
        Reply::Set(mut items) => {
            sort(&mut items);
            Reply::Set(items)
        }
        other => other,
    }
}

/// How the two replies to a command are compared.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// Exactly.
    Exact,
    /// Array replies as multisets (SMEMBERS, SINTER, HKEYS, HVALS…: Redis leaves their order
    /// unspecified).
    Unordered,
    /// Flat arrays of (field, value) pairs as multisets of pairs (HGETALL).
    Pairs,
    /// Arrays as sorted sets of keys (KEYS).
    Sorted,
    /// Integers within this of each other (TTLs after relative expiries); negative values (-1
    /// no expiry, -2 no key) exactly.
    Near(i64),
    /// Bulk replies holding numbers as f64 values (within a relative 1e-14), not as text: Redis
    /// prints `long double` results whose last digits are precision noise.
    Float,
    /// Only the type of the reply (server-specific contents).
    Shape,
    /// Not at all: the command is sent to both to keep them in the same state around a
    /// documented, accepted difference.
    Unchecked,
    /// ACL rules (GETUSER, LIST): the single-command rules after the last category rule as a
    /// set. Redis emits them in its command hash table's order, seeded at random per process.
    AclRules,
    /// Stream replies with their clock readings zeroed (see [`timeless`]): idle times and
    /// delivery or seen times depend on when each server ran the command. (XINFO STREAM's
    /// `radix-tree-nodes`, the inner nodes of Redis's radix tree, which caskdb estimates, is
    /// zeroed too.)
    Timeless,
}

impl Check {
    /// A reply as compared: sorted where the order is unspecified. Other replies than arrays
    /// are compared exactly in every case.
    fn normal(self, r: Reply) -> Reply {
        match self {
            Check::Unordered => sort_units(r, 1),
            Check::Pairs => sort_units(r, 2),
            Check::Sorted => sorted(r),
            Check::AclRules => acl_rules(r),
            Check::Timeless => timeless(r),
            _ => r,
        }
    }

    fn agree(self, r: &Reply, c: &Reply) -> bool {
        let number = |rep: &Reply| match rep {
            Reply::Bulk(b) => std::str::from_utf8(b)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
                .filter(|v| v.is_finite()),
            Reply::Double(s) => s.parse::<f64>().ok().filter(|v| v.is_finite()),
            _ => None,
        };
        match (self, r, c) {
            (Check::Near(tol), Reply::Int(a), Reply::Int(b)) if *a >= 0 && *b >= 0 => {
                (a - b).abs() <= tol
            }
            (Check::Float, _, _) => match (number(r), number(c)) {
                (Some(a), Some(b)) => (a - b).abs() <= 1e-14 * a.abs().max(b.abs()),
                _ => r == c,
            },
            (Check::Shape, _, _) => std::mem::discriminant(r) == std::mem::discriminant(c),
            (Check::Unchecked, _, _) => true,
            _ => r == c,
        }
    }
}

/// Whether `r` is a stream id (`ms-seq`).
fn is_stream_id(r: &Reply) -> bool {
    let Reply::Bulk(b) = r else { return false };
    let s = String::from_utf8_lossy(b);
    s.split_once('-').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && (a.to_owned() + b).bytes().all(|c| c.is_ascii_digit())
    })
}

/// `r` with the clock readings of stream replies zeroed: the value after an `idle` or
/// `seen-time` key (XINFO, flat in RESP2), and the time in pending-entry rows —
/// `[id, consumer, time, count]` (XPENDING, XINFO FULL) and `[id, time, count]` (a consumer's
/// rows in XINFO FULL).
pub fn timeless(r: Reply) -> Reply {
    let zero_after = |k: &Reply| matches!(k, Reply::Bulk(b) if b == b"idle" || b == b"seen-time" || b == b"radix-tree-nodes");
    match r {
        Reply::Map(pairs) => Reply::Map(
            pairs
                .into_iter()
                .map(|(k, v)| {
                    let v = if zero_after(&k) {
                        Reply::Int(0)
                    } else {
                        timeless(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Reply::Array(items) => {
            let row4 = items.len() == 4
                && is_stream_id(&items[0])
                && matches!(items[1], Reply::Bulk(_))
                && matches!((&items[2], &items[3]), (Reply::Int(_), Reply::Int(_)));
            let row3 = items.len() == 3
                && is_stream_id(&items[0])
                && matches!((&items[1], &items[2]), (Reply::Int(_), Reply::Int(_)));
            let mut out = Vec::with_capacity(items.len());
            let mut zero_next = false;
            for (i, item) in items.into_iter().enumerate() {
                if zero_next || (row4 && i == 2) || (row3 && i == 1) {
                    out.push(Reply::Int(0));
                    zero_next = false;
                    continue;
                }
                zero_next = zero_after(&item);
                out.push(timeless(item));
            }
            Reply::Array(out)
        }
        other => other,
    }
}

/// `r` with every string's trailing single-command ACL rules sorted (see [`Check::AclRules`]).
fn acl_rules(r: Reply) -> Reply {
    match r {
        Reply::Bulk(b) => {
            let text = String::from_utf8_lossy(&b).into_owned();
            let mut words: Vec<&str> = text.split(' ').collect();
            let from = words
                .iter()
                .rposition(|w| w.starts_with("+@") || w.starts_with("-@"))
                .map_or(words.len(), |i| i + 1);
            words[from..].sort_unstable();
            Reply::Bulk(words.join(" ").into_bytes())
        }
        Reply::Array(items) => Reply::Array(items.into_iter().map(acl_rules).collect()),
        Reply::Map(pairs) => {
            Reply::Map(pairs.into_iter().map(|(k, v)| (k, acl_rules(v))).collect())
        }
        other => other,
    }
}

/// What a script line does with its command.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum How {
    /// Sends it to both servers and compares the replies.
    Check(Check),
    /// `random:` SPOP, SRANDMEMBER, HRANDFIELD or ZRANDMEMBER (see [`Diff::random`]), or
    /// RANDOMKEY (see [`Diff::randomkey`]).
    Random,
    /// `replies N:` the command gets N replies (SUBSCRIBE a b c: one per channel), compared
    /// as one array; `unordered-replies N:` as a multiset (UNSUBSCRIBE of all channels).
    Replies(usize, Check),
    /// `read:` no command is sent: one more reply is read from both (a published message, a
    /// blocked command's reply).
    Read,
    /// `send:` the command is sent to both and its reply left unread (a command that blocks;
    /// a later `read:` on the same client reads it).
    Send,
    /// `blocked N:` no command: waits until both servers report N blocked clients (INFO), so
    /// that the next command comes after the blocking ones registered.
    Blocked(u64),
    /// `scan:` `SCAN opts…` or `HSCAN|SSCAN|ZSCAN key opts…`, without the cursor: iterated to
    /// completion on each side, and the sets of keys or elements compared (cursors and batching
    /// differ by design).
    Scan,
}

/// One line of a script (see [`Diff::run`]).
#[derive(Debug, Clone)]
pub struct Step {
    pub slot: usize,
    pub how: How,
    pub args: Vec<Vec<u8>>,
}

/// The first word of `s`, and the rest after the blanks that follow it.
fn first_word(s: &str) -> (&str, &str) {
    let (w, tail) = s.split_once(' ').unwrap_or((s, ""));
    (w, tail.trim_start())
}

/// The steps of a script; panics on a malformed line.
pub fn steps(script: &str) -> Vec<Step> {
    let mut out = Vec::new();
    for line in script.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("//") {
            continue;
        }
        let (first, tail) = first_word(line);
        let (slot, body) = match first.strip_prefix('@') {
            Some(n) => (n.parse().expect("a client slot after @"), tail),
            None => (0, line),
        };
        let (w, tail) = first_word(body);
        let (how, rest) = match w {
            "unordered:" => (How::Check(Check::Unordered), tail),
            "pairs:" => (How::Check(Check::Pairs), tail),
            "sorted:" => (How::Check(Check::Sorted), tail),
            "float:" => (How::Check(Check::Float), tail),
            "acl:" => (How::Check(Check::AclRules), tail),
            "timeless:" => (How::Check(Check::Timeless), tail),
            "shape:" => (How::Check(Check::Shape), tail),
            "unchecked:" => (How::Check(Check::Unchecked), tail),
            "random:" => (How::Random, tail),
            "read:" => (How::Read, "READ"),
            "send:" => (How::Send, tail),
            "blocked" => {
                let (n, _) = first_word(tail);
                let n = n.strip_suffix(':').and_then(|n| n.parse().ok());
                let n = n.unwrap_or_else(|| panic!("blocked N: expected in {line:?}"));
                (How::Blocked(n), "BLOCKED")
            }
            "replies" | "unordered-replies" => {
                let (n, tail) = first_word(tail);
                let n = n.strip_suffix(':').and_then(|n| n.parse().ok());
                let n = n.unwrap_or_else(|| panic!("replies N: expected in {line:?}"));
                let check = if w == "replies" {
                    Check::Exact
                } else {
                    Check::Unordered
                };
                (How::Replies(n, check), tail)
            }
            "scan:" => (How::Scan, tail),
            "near" => {
                let (n, tail) = first_word(tail);
                let tol = n.strip_suffix(':').and_then(|n| n.parse().ok());
                let tol = tol.unwrap_or_else(|| panic!("near N: expected in {line:?}"));
                (How::Check(Check::Near(tol)), tail)
            }
            w if w.ends_with(':') => panic!("unknown check {w} in {line:?}"),
            _ => (How::Check(Check::Exact), body),
        };
        let args = super::args::split_args(rest.as_bytes())
            .unwrap_or_else(|| panic!("unbalanced quotes in {line:?}"));
        assert!(!args.is_empty(), "no command in {line:?}");
        out.push(Step { slot, how, args });
    }
    out
}

/// Both servers, a pair of connections per client slot, and the mismatches seen so far.
pub struct Diff {
    redis: SocketAddr,
    cask: SocketAddr,
    /// Whether every connection says `HELLO 3` first.
    pub resp3: bool,
    /// (redis, caskdb) connections; slot 0 is the default, slot 1 a second client.
    conns: Vec<(Raw, Raw)>,
    script: String,
    mismatches: Vec<String>,
    /// Commands sent to both servers so far.
    exchanges: usize,
}

impl Diff {
    pub fn new(redis: SocketAddr, cask: SocketAddr) -> Diff {
        Diff {
            redis,
            cask,
            resp3: false,
            conns: Vec::new(),
            script: String::new(),
            mismatches: Vec::new(),
            exchanges: 0,
        }
    }

    /// Starts a script: fresh connections (database 0, no transaction), both servers empty.
    pub fn script(&mut self, name: &str) {
        self.script = name.to_string();
        self.conns.clear();
        let (r, c) = self.exchange(0, &[b"FLUSHALL"]);
        assert_eq!(r, Reply::Simple("OK".into()), "FLUSHALL on redis");
        assert_eq!(c, Reply::Simple("OK".into()), "FLUSHALL on caskdb");
    }

    pub fn conn(&mut self, slot: usize) -> &mut (Raw, Raw) {
        while self.conns.len() <= slot {
            let pair = (self.connect(self.redis), self.connect(self.cask));
            self.conns.push(pair);
        }
        &mut self.conns[slot]
    }

    /// A new connection to `addr`, switched to RESP3 if the script runs in it.
    fn connect(&self, addr: SocketAddr) -> Raw {
        let mut c = Raw::connect(addr);
        if self.resp3 {
            let hello = c.cmd(&["HELLO", "3"]);
            assert!(matches!(hello, Reply::Map(_)), "HELLO 3 answered {hello:?}");
        }
        c
    }

    /// Sends one command to both servers and returns (redis reply, caskdb reply).
    pub fn exchange(&mut self, slot: usize, args: &[&[u8]]) -> (Reply, Reply) {
        let bytes = encode(args);
        self.exchanges += 1;
        let (r, c) = self.conn(slot);
        r.send_bytes(&bytes);
        let rr = r.read();
        c.send_bytes(&bytes);
        let cr = match c.try_read() {
            Some(reply) => reply,
            None => {
                // caskdb dropped the connection (a crashed command, say): record it as a
                // reply that cannot match, and go on with a fresh connection (which has lost
                // any SELECT or MULTI state) so the rest of the script still runs.
                self.conns[slot].1 = self.connect(self.cask);
                Reply::Error("(caskdb closed the connection)".into())
            }
        };
        if std::env::var_os("DIFF_TRACE").is_some() {
            // Debugging aid: every exchange, with both replies.
            eprintln!(
                "[{}] {}\n    redis:  {}\n    caskdb: {}",
                self.script,
                show_cmd(args),
                show(&rr),
                show(&cr)
            );
        }
        (rr, cr)
    }

    pub fn mismatch(&mut self, slot: usize, args: &[&[u8]], redis: &Reply, cask: &Reply) {
        let on = if slot == 0 {
            String::new()
        } else {
            format!(" (client {slot})")
        };
        self.mismatches.push(format!(
            "[{}{}] {}{on}\n      redis:  {}\n      caskdb: {}",
            self.script,
            if self.resp3 { ", RESP3" } else { "" },
            show_cmd(args),
            show(redis),
            show(cask)
        ));
    }

    /// A mismatch with an explanation of what was checked.
    pub fn mismatch_note(&mut self, args: &[&[u8]], redis: &Reply, cask: &Reply, note: &str) {
        self.mismatches.push(format!(
            "[{}] {} ({note})\n      redis:  {}\n      caskdb: {}",
            self.script,
            show_cmd(args),
            show(redis),
            show(cask)
        ));
    }

    /// Sends one command to both servers on client `slot` and compares the replies.
    pub fn compare(&mut self, slot: usize, check: Check, args: &[&[u8]]) {
        let (r, c) = self.exchange(slot, args);
        let (r, c) = (check.normal(r), check.normal(c));
        if !check.agree(&r, &c) {
            self.mismatch(slot, args, &r, &c);
        }
    }

    /// Exact comparison on client `slot`.
    pub fn eq_on(&mut self, slot: usize, args: &[&str]) {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        self.compare(slot, Check::Exact, &args);
    }

    /// Exact comparison on the default client.
    pub fn eq(&mut self, args: &[&str]) {
        self.eq_on(0, args);
    }

    pub fn eq_bytes(&mut self, args: &[&[u8]]) {
        self.compare(0, Check::Exact, args);
    }

    /// Runs a script: one command a line, with its arguments written as redis-cli takes them
    /// (blanks between arguments, `"…"` for empty ones, blanks and `\xHH` escapes; see
    /// `common::args`). Blank lines and `//` comments are skipped. A line may start with the
    /// client slot (`@1`), then with how its replies are compared (`unordered:`, `pairs:`,
    /// `sorted:`, `near N:`, `float:`, `shape:`, `unchecked:`, `random:`, `scan:`; see
    /// [`How`]); without one they must be equal.
    pub fn run(&mut self, script: &str) {
        for step in steps(script) {
            self.step(&step);
        }
    }

    /// Runs the script `forms` once for each line of `rows`: a row is a few arguments (written as
    /// in a script, without blanks inside), which replace `$1`, `$2`… in `forms`. One table of
    /// arguments, several commands for each.
    pub fn each(&mut self, rows: &str, forms: &str) {
        for row in rows.lines().map(str::trim) {
            if row.is_empty() || row.starts_with("//") {
                continue;
            }
            let mut script = forms.to_string();
            let args: Vec<&str> = row.split_whitespace().collect();
            for (i, arg) in args.iter().enumerate().rev() {
                script = script.replace(&format!("${}", i + 1), arg);
            }
            self.run(&script);
        }
    }

    /// For each (write, queued) case: WATCH `key`, the write from client 1, then MULTI, the
    /// queued command and EXEC (each a script line): whether EXEC runs tells whether the write
    /// touched the key.
    pub fn watch_writes(&mut self, key: &str, cases: &[(&str, &str)]) {
        for (write, queued) in cases {
            self.run(&format!("WATCH {key}\n@1 {write}\nMULTI\n{queued}\nEXEC"));
        }
    }

    /// Runs one step of a script.
    pub fn step(&mut self, step: &Step) {
        let args: Vec<&[u8]> = step.args.iter().map(Vec::as_slice).collect();
        let text = |a: &[u8]| std::str::from_utf8(a).expect("a text argument").to_string();
        let texts = |a: &[&[u8]]| a.iter().map(|a| text(a)).collect::<Vec<_>>();
        match step.how {
            How::Check(check) => self.compare(step.slot, check, &args),
            How::Replies(n, check) => {
                let bytes = encode(&args);
                self.exchanges += 1;
                let (r, c) = self.conn(step.slot);
                // `replies N: read:` reads N replies without sending anything.
                if args != [b"read:"] {
                    r.send_bytes(&bytes);
                    c.send_bytes(&bytes);
                }
                if std::env::var_os("DIFF_TRACE").is_some() {
                    eprintln!("{} ({n} replies)", show_cmd(&args));
                }
                let rr = Reply::Array((0..n).map(|_| r.read()).collect());
                if std::env::var_os("DIFF_TRACE").is_some() {
                    eprintln!("    redis:  {}", show(&rr));
                }
                let cr = Reply::Array((0..n).map(|_| c.read()).collect());
                let (rr, cr) = (check.normal(rr), check.normal(cr));
                if rr != cr {
                    self.mismatch(step.slot, &args, &rr, &cr);
                }
            }
            How::Send => {
                let bytes = encode(&args);
                self.exchanges += 1;
                let (r, c) = self.conn(step.slot);
                r.send_bytes(&bytes);
                c.send_bytes(&bytes);
            }
            How::Blocked(n) => {
                let (redis, cask) = (self.redis, self.cask);
                for addr in [redis, cask] {
                    super::wait_blocked(&mut Raw::connect(addr), n, Duration::from_secs(10));
                }
            }
            How::Read => {
                if std::env::var_os("DIFF_TRACE").is_some() {
                    eprintln!("[{}] read:", self.script);
                }
                let (r, c) = self.conn(step.slot);
                let rr = r.read();
                if std::env::var_os("DIFF_TRACE").is_some() {
                    eprintln!("    redis:  {}", show(&rr));
                }
                let cr = c.read();
                if rr != cr {
                    self.mismatch(step.slot, &args, &rr, &cr);
                }
            }
            How::Random if args == [b"RANDOMKEY"] => self.randomkey(),
            How::Random => {
                let args = texts(&args);
                self.random(&args.iter().map(String::as_str).collect::<Vec<_>>());
            }
            How::Scan => {
                let (cmd, key, opts) = match args.as_slice() {
                    [cmd, opts @ ..] if cmd.eq_ignore_ascii_case(b"SCAN") => (*cmd, None, opts),
                    [cmd, key, opts @ ..] => (*cmd, Some(*key), opts),
                    _ => panic!("scan: needs a command and a key"),
                };
                let opts = texts(opts);
                let opts: Vec<&str> = opts.iter().map(String::as_str).collect();
                match key {
                    None => self.scan_all(&opts),
                    Some(key) => self.scan_elems_bytes(&text(cmd), key, &opts),
                }
            }
        }
    }

    /// RANDOMKEY: both nil (empty database), or both a key that exists on its own side.
    pub fn randomkey(&mut self) {
        let args: &[&[u8]] = &[b"RANDOMKEY"];
        let (r, c) = self.exchange(0, args);
        let ok = match (&r, &c) {
            (Reply::Nil, Reply::Nil) => true,
            (Reply::Bulk(rk), Reply::Bulk(ck)) => {
                let (rs, cs) = self.conn(0);
                rs.send_bytes(&encode(&[b"EXISTS", rk]));
                cs.send_bytes(&encode(&[b"EXISTS", ck]));
                rs.read() == Reply::Int(1) && cs.read() == Reply::Int(1)
            }
            _ => false,
        };
        if !ok {
            self.mismatch(0, args, &r, &c);
        }
    }

    /// SCAN with options `opts`, iterated to completion on each side: the sets of keys are
    /// compared (cursors and batching differ by design). An error on the first call is
    /// compared exactly.
    pub fn scan_all(&mut self, opts: &[&str]) {
        self.scan_to_end("SCAN", None, opts);
    }

    /// A command with a random reply: SPOP, SRANDMEMBER (set key), HRANDFIELD (hash key) or
    /// ZRANDMEMBER (sorted-set key), with or without a count. The reply shapes and lengths must
    /// match, and on each side every element returned must belong to that side's collection as
    /// it was before the command (with WITHVALUES or WITHSCORES, as a (field, value) or
    /// (member, score) pair); elements must be distinct unless the count is negative. After
    /// SPOP, the popped elements must be gone and both cardinalities must match. Errors, nils
    /// and empty replies must match exactly.
    pub fn random(&mut self, args: &[&str]) {
        let cmd = args[0].to_ascii_uppercase();
        let Some(&key) = args.get(1) else {
            return self.eq(args);
        };
        // `hash`: the collection lists as (field, value) or (member, score) pairs.
        let (hash, listing): (bool, &[&[u8]]) = match cmd.as_str() {
            "HRANDFIELD" => (true, &[b"HGETALL"]),
            "ZRANDMEMBER" => (true, &[b"ZRANGE", b"0", b"-1", b"WITHSCORES"]),
            "SPOP" | "SRANDMEMBER" => (false, &[b"SMEMBERS"]),
            _ => panic!("random(): unsupported command {cmd}"),
        };
        let mut list_args: Vec<&[u8]> = vec![listing[0], key.as_bytes()];
        list_args.extend_from_slice(&listing[1..]);
        let (rsnap, csnap) = self.exchange(0, &list_args);
        let (rsnap, csnap) = (flat(rsnap), flat(csnap));
        let bargs: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        let (r, c) = self.exchange(0, &bargs);
        // RESP3 shapes must match as such; then the members are compared as flat arrays.
        let kinds_agree =
            std::mem::discriminant(&r) == std::mem::discriminant(&c) && nested(&r) == nested(&c);

        let with_values = hash
            && args.iter().skip(3).any(|a| {
                a.eq_ignore_ascii_case("WITHVALUES") || a.eq_ignore_ascii_case("WITHSCORES")
            });
        let width = if with_values { 2 } else { 1 };
        let distinct = args
            .get(2)
            .and_then(|n| n.parse::<i64>().ok())
            .is_none_or(|n| n >= 0);
        // The collection as units: set members, hash fields, or hash (field, value) pairs.
        let units_of = |snap: &Reply| -> Vec<Vec<Reply>> {
            let Reply::Array(items) = snap else {
                return Vec::new();
            };
            if !hash {
                items.iter().map(|i| vec![i.clone()]).collect()
            } else if with_values {
                items.chunks(2).map(|p| p.to_vec()).collect()
            } else {
                items.chunks(2).map(|p| vec![p[0].clone()]).collect()
            }
        };
        let reply_units = |rep: &Reply| -> Option<Vec<Vec<Reply>>> {
            match rep {
                Reply::Bulk(_) => Some(vec![vec![rep.clone()]]),
                Reply::Array(items) if items.len() % width == 0 => {
                    Some(items.chunks(width).map(|p| p.to_vec()).collect())
                }
                _ => None,
            }
        };
        let valid = |rep: &Reply, snap: &Reply| -> bool {
            let members = units_of(snap);
            let Some(units) = reply_units(rep) else {
                return false;
            };
            let all_members = units.iter().all(|u| members.contains(u));
            let mut seen = units.clone();
            seen.sort_by_key(|u| u.iter().map(sort_key).collect::<Vec<_>>());
            seen.dedup();
            all_members && (!distinct || seen.len() == units.len())
        };
        let (r, c) = (flat(r), flat(c));
        let same_shape = kinds_agree
            && match (&r, &c) {
                (Reply::Bulk(_), Reply::Bulk(_)) => true,
                (Reply::Array(a), Reply::Array(b)) => a.len() == b.len() && !a.is_empty(),
                _ => false,
            };
        if !same_shape {
            if r != c {
                self.mismatch(0, &bargs, &r, &c);
            }
        } else if !valid(&r, &rsnap) {
            panic!(
                "[{}] {}: redis's own reply {} does not fit its collection {}: test bug",
                self.script,
                show_cmd(&bargs),
                show(&r),
                show(&rsnap)
            );
        } else if !valid(&c, &csnap) {
            let note = format!(
                "caskdb returned non-members or repeats; its collection was {}",
                show(&csnap)
            );
            self.mismatch_note(&bargs, &r, &c, &note);
        }

        if cmd == "SPOP" {
            // The popped members are gone, and as many remain on both sides.
            for (rep, side) in [(&r, 0), (&c, 1)] {
                for unit in reply_units(rep).unwrap_or_default() {
                    let Reply::Bulk(m) = &unit[0] else { continue };
                    let (rs, cs) = self.conn(0);
                    let conn = if side == 0 { rs } else { cs };
                    conn.send_bytes(&encode(&[b"SISMEMBER", key.as_bytes(), m]));
                    let still = conn.read();
                    if still != Reply::Int(0) {
                        let name = if side == 0 { "redis" } else { "caskdb" };
                        self.mismatches.push(format!(
                            "[{}] {}: {name} still has popped member {} (SISMEMBER: {})",
                            self.script,
                            show_cmd(&bargs),
                            show(&unit[0]),
                            show(&still)
                        ));
                    }
                }
            }
            self.eq(&["SCARD", key]);
        }
    }

    /// HSCAN/SSCAN/ZSCAN `key` with options `opts`, iterated to completion on each side: the
    /// multisets of elements ((field, value) or (member, score) pairs for HSCAN and ZSCAN) are
    /// compared, since cursors and batching differ by design. A non-array reply (an error)
    /// is compared exactly.
    pub fn scan_elems(&mut self, cmd: &str, key: &str, opts: &[&str]) {
        self.scan_elems_bytes(cmd, key.as_bytes(), opts);
    }

    pub fn scan_elems_bytes(&mut self, cmd: &str, key: &[u8], opts: &[&str]) {
        self.scan_to_end(cmd, Some(key), opts);
    }

    /// `cmd [key] cursor opts…` iterated to completion on each side (see `scan`), the results
    /// compared.
    fn scan_to_end(&mut self, cmd: &str, key: Option<&[u8]>, opts: &[&str]) {
        let mut shown: Vec<&[u8]> = vec![cmd.as_bytes()];
        shown.extend(key);
        shown.push(b"*");
        shown.extend(opts.iter().map(|o| o.as_bytes()));
        // Set members and keys are single elements; hashes and sorted sets give pairs.
        let width = if key.is_none() || cmd.eq_ignore_ascii_case("SSCAN") {
            1
        } else {
            2
        };
        let (r, c) = self.conn(0);
        let re = scan(r, cmd, key, opts, width);
        let ce = scan(c, cmd, key, opts, width);
        if re != ce {
            self.mismatch(0, &shown, &re, &ce);
        }
    }

    /// Fails the test with every mismatch seen.
    pub fn finish(self) {
        assert!(
            self.mismatches.is_empty(),
            "{} replies differ between redis-server and caskdb:\n  {}\n",
            self.mismatches.len(),
            self.mismatches.join("\n  ")
        );
    }
}

/// Whether a reply is an array of two-element arrays (RESP3's pairs).
fn nested(r: &Reply) -> bool {
    matches!(r, Reply::Array(items) if items.iter().any(|i| matches!(i, Reply::Array(_))))
}

/// RESP3's collection shapes as RESP2's flat arrays: a set's members, a map's keys and values,
/// pairs' elements in order.
fn flat(r: Reply) -> Reply {
    match r {
        Reply::Set(items) => Reply::Array(items),
        Reply::Map(pairs) => Reply::Array(pairs.into_iter().flat_map(|(k, v)| [k, v]).collect()),
        Reply::Array(items) if nested(&Reply::Array(items.clone())) => Reply::Array(
            items
                .into_iter()
                .flat_map(|i| match i {
                    Reply::Array(p) => p,
                    other => vec![other],
                })
                .collect(),
        ),
        other => other,
    }
}

/// A sort key for reply elements: a bulk string's bytes, or the displayed reply.
fn sort_key(r: &Reply) -> Vec<u8> {
    match r {
        Reply::Bulk(b) => b.clone(),
        other => show(other).into_bytes(),
    }
}

/// An array reply taken as units of `width` consecutive elements (1: members, 2: pairs),
/// sorted; other replies, and arrays not made of whole units, unchanged.
///
/// RESP3's shapes are sorted too: a set's members, a map's entries, and an array of
/// two-element arrays (RESP3's pairs) pair by pair.
pub fn sort_units(r: Reply, width: usize) -> Reply {
    match r {
        Reply::Set(items) => match sort_units(Reply::Array(items), 1) {
            Reply::Array(items) => Reply::Set(items),
            other => other,
        },
        Reply::Map(mut pairs) => {
            pairs.sort_by_key(|(k, v)| (sort_key(k), sort_key(v)));
            Reply::Map(pairs)
        }
        Reply::Array(items)
            if width == 2
                && !items.is_empty()
                && items
                    .iter()
                    .all(|i| matches!(i, Reply::Array(p) if p.len() == 2)) =>
        {
            sort_units(Reply::Array(items), 1)
        }
        Reply::Array(items) if items.len() % width == 0 => {
            let mut units: Vec<Vec<Reply>> = items.chunks(width).map(|u| u.to_vec()).collect();
            units.sort_by_key(|u| u.iter().map(sort_key).collect::<Vec<_>>());
            Reply::Array(units.into_iter().flatten().collect())
        }
        other => other,
    }
}

/// Iterates `cmd [key] cursor opts…` (SCAN without a key; HSCAN, SSCAN, ZSCAN with one) to
/// completion; returns the elements as sorted units of `width`, deduplicated (Redis may return
/// an element twice when its table is rehashed during the scan), or the first reply that is not
/// a well-formed scan reply (an error).
fn scan(conn: &mut Raw, cmd: &str, key: Option<&[u8]>, opts: &[&str], width: usize) -> Reply {
    let mut cursor = b"0".to_vec();
    let mut elems = Vec::new();
    for _ in 0..10_000 {
        let mut args: Vec<&[u8]> = vec![cmd.as_bytes()];
        args.extend(key);
        args.push(&cursor);
        args.extend(opts.iter().map(|o| o.as_bytes()));
        conn.send_bytes(&encode(&args));
        let reply = conn.read();
        let Reply::Array(parts) = &reply else {
            return reply;
        };
        let [Reply::Bulk(next), Reply::Array(batch)] = parts.as_slice() else {
            return reply;
        };
        elems.extend(batch.iter().cloned());
        if next.as_slice() == b"0" {
            return match sort_units(Reply::Array(elems), width) {
                Reply::Array(items) => {
                    let mut units: Vec<Vec<Reply>> =
                        items.chunks(width).map(|u| u.to_vec()).collect();
                    units.dedup();
                    Reply::Array(units.into_iter().flatten().collect())
                }
                other => other,
            };
        }
        cursor = next.clone();
    }
    Reply::Error(format!("{cmd} did not finish in 10000 calls"))
}

/// Runs `body` against a fresh redis-server and a fresh caskdb server, then fails with every
/// mismatch. Skips when redis-server is not installed (outside CI).
///
/// The body runs twice, on fresh servers each time: with RESP2 connections, then with
/// connections that said `HELLO 3`, so every command's reply is compared in both protocols.
pub fn differential(body: impl Fn(&mut Diff)) {
    differential_with(&[], |_| {}, body);
}

/// [`differential`] with settings: `redis_args` for redis-server's command line, `tweak` for
/// caskdb's configuration.
pub fn differential_with(
    redis_args: &[&str],
    tweak: impl Fn(&mut caskdb_server::Config),
    body: impl Fn(&mut Diff),
) {
    for resp3 in [false, true] {
        let Some(redis) = start_redis_with(redis_args) else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let cask = super::start_with(dir.path(), &tweak);
        let mut d = Diff::new(redis.addr, cask.addr);
        d.resp3 = resp3;
        body(&mut d);
        eprintln!(
            "{} commands sent to both servers (RESP{})",
            d.exchanges,
            if resp3 { 3 } else { 2 }
        );
        d.finish();
        cask.stop();
        drop(redis);
    }
}

pub fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Wall-clock times for absolute expiries: (future s, future ms, past s, past ms).
pub fn times() -> (String, String, String, String) {
    let now = now_s();
    let fut = now + 1000;
    (
        fut.to_string(),
        (fut * 1000 + 567).to_string(),
        (now - 1000).to_string(),
        ((now - 1000) * 1000 + 250).to_string(),
    )
}
