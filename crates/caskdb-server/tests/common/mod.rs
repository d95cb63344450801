//! Test helpers: an in-process server on a free port, and a raw RESP client.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use caskdb_server::{Config, Server};

pub mod args;
pub mod child;
pub mod diff;

/// A server running on its own runtime thread; stopped by SHUTDOWN on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    thread: Option<JoinHandle<Result<(), String>>>,
    password: Option<String>,
    /// The data directory, when the server owns it (removed after the server stops).
    _dir: Option<tempfile::TempDir>,
}

pub fn start(dir: &Path) -> TestServer {
    start_with(dir, |_| {})
}

/// A server on a new temporary directory of its own.
pub fn start_fresh() -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = start(dir.path());
    srv._dir = Some(dir);
    srv
}

/// The configuration of a test server: `dir`, any free port, then `tweak`.
fn config(dir: &Path, tweak: impl FnOnce(&mut Config)) -> Config {
    let mut config = Config {
        port: 0,
        dir: dir.to_path_buf(),
        ..Config::default()
    };
    tweak(&mut config);
    config
}

pub fn start_with(dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
    let config = config(dir, tweak);
    let password = config.requirepass.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let server = match Server::bind(config).await {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return Ok(());
                }
            };
            let _ = tx.send(Ok(server.local_addrs()[0]));
            server.run().await.map_err(|e| e.to_string())
        })
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server thread answered")
        .expect("server started");
    TestServer {
        addr,
        thread: Some(thread),
        password,
        _dir: None,
    }
}

/// Starts a server expecting it to refuse; returns the error text.
pub fn start_err(dir: &Path, tweak: impl FnOnce(&mut Config)) -> String {
    let config = config(dir, tweak);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    match rt.block_on(Server::bind(config)) {
        Ok(_) => panic!("server started"),
        Err(e) => e.to_string(),
    }
}

impl TestServer {
    pub fn raw(&self) -> Raw {
        Raw::connect(self.addr)
    }

    pub fn url(&self) -> String {
        match &self.password {
            Some(p) => format!("redis://:{p}@{}/", self.addr),
            None => format!("redis://{}/", self.addr),
        }
    }

    pub fn client(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(10))
            .unwrap()
    }

    /// Stops the server with SHUTDOWN and waits for it to close the store.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let mut c = Raw::connect(self.addr);
        if let Some(p) = &self.password {
            c.cmd(&["AUTH", p]);
        }
        c.send(&["SHUTDOWN"]);
        // The server closes the connection without a reply.
        assert_eq!(c.read_to_end(), Vec::<u8>::new());
        thread
            .join()
            .expect("server thread")
            .expect("server ran and closed cleanly");
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.shutdown();
        }
    }
}

/// A RESP reply, as parsed by the tests (independently of the server's own code).
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Vec<u8>),
    Nil,
    /// `*-1` (RESP2's null array: BLPOP's timeout, an aborted EXEC).
    NilArray,
    Array(Vec<Reply>),
    Map(Vec<(Reply, Reply)>),
    Verbatim(String),
    /// RESP3 `,`: the text as sent.
    Double(String),
    /// RESP3 `#`.
    Bool(bool),
    /// RESP3 `~`.
    Set(Vec<Reply>),
    /// RESP3 `>`.
    Push(Vec<Reply>),
    /// RESP3 `(`.
    BigNumber(String),
}

impl Reply {
    pub fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }
}

/// A blocking client that sends exact bytes and parses replies.
pub struct Raw {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
}

pub fn encode(args: &[&str]) -> Vec<u8> {
    encode_bytes(&args.iter().map(|a| a.as_bytes()).collect::<Vec<_>>())
}

/// A request of binary arguments, RESP-encoded.
pub fn encode_bytes(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

impl Raw {
    pub fn connect(addr: SocketAddr) -> Raw {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Raw { stream, reader }
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    pub fn send(&mut self, args: &[&str]) {
        self.send_bytes(&encode(args));
    }

    pub fn cmd(&mut self, args: &[&str]) -> Reply {
        self.send(args);
        self.read()
    }

    pub fn read(&mut self) -> Reply {
        read_reply(&mut self.reader).expect("a reply")
    }

    /// The next reply, or `None` when the connection was closed (or timed out) first.
    pub fn try_read(&mut self) -> Option<Reply> {
        read_reply(&mut self.reader)
    }

    /// Sends a command and reads its reply; `None` once the server is gone (whether the
    /// request could not be written or the reply was cut short): for crash tests, whose
    /// server may die at any moment.
    pub fn request(&mut self, args: &[&str]) -> Option<Reply> {
        self.stream.write_all(&encode(args)).ok()?;
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.try_read())).ok()?
    }

    /// Everything until the server closes the connection.
    pub fn read_to_end(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        let _ = self.reader.read_to_end(&mut rest);
        rest
    }
}

fn line(r: &mut impl BufRead) -> Option<String> {
    let mut s = String::new();
    if r.read_line(&mut s).ok()? == 0 {
        return None;
    }
    assert!(s.ends_with("\r\n"), "line not ended by CRLF: {s:?}");
    s.truncate(s.len() - 2);
    Some(s)
}

/// Parses one reply; `None` at end of stream.
pub fn read_reply(r: &mut impl BufRead) -> Option<Reply> {
    let l = line(r)?;
    let (tag, rest) = l.split_at(1);
    Some(match tag {
        "+" => Reply::Simple(rest.into()),
        "-" => Reply::Error(rest.into()),
        ":" => Reply::Int(rest.parse().unwrap()),
        "_" => Reply::Nil,
        "$" | "=" => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                return Some(Reply::Nil);
            }
            let mut buf = vec![0; n as usize + 2];
            r.read_exact(&mut buf).ok()?;
            buf.truncate(n as usize);
            if tag == "=" {
                Reply::Verbatim(String::from_utf8(buf[4..].to_vec()).unwrap())
            } else {
                Reply::Bulk(buf)
            }
        }
        "*" | "~" | ">" => {
            let n: i64 = rest.parse().unwrap();
            if n < 0 {
                return Some(Reply::NilArray);
            }
            let items = (0..n).map(|_| read_reply(r).unwrap()).collect();
            match tag {
                "~" => Reply::Set(items),
                ">" => Reply::Push(items),
                _ => Reply::Array(items),
            }
        }
        "%" => {
            let n: usize = rest.parse().unwrap();
            Reply::Map(
                (0..n)
                    .map(|_| (read_reply(r).unwrap(), read_reply(r).unwrap()))
                    .collect(),
            )
        }
        "," => Reply::Double(rest.into()),
        "#" => Reply::Bool(rest == "t"),
        "(" => Reply::BigNumber(rest.into()),
        other => panic!("unknown reply type {other:?} in {l:?}"),
    })
}

/// Polls `f` every few milliseconds until it returns `Some`; fails the test after `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits up to `limit` until the server on `c` reports `n` blocked clients in INFO (a blocking
/// command sent from another connection has registered).
pub fn wait_blocked(c: &mut Raw, n: u64, limit: Duration) {
    let want = format!("\r\nblocked_clients:{n}\r\n");
    wait_for(&format!("{n} blocked clients"), limit, || {
        let Reply::Bulk(info) = c.cmd(&["INFO", "clients"]) else {
            panic!("INFO clients is not a bulk string")
        };
        String::from_utf8_lossy(&info).contains(&want).then_some(())
    });
}

/// A numeric field of INFO `section`.
pub fn info_field(c: &mut Raw, section: &str, field: &str) -> u64 {
    let info = match c.cmd(&["INFO", section]) {
        Reply::Bulk(b) => String::from_utf8(b).expect("INFO is text"),
        other => panic!("INFO {section} answered {other:?}"),
    };
    info.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{field} in INFO {section}: {info}"))
}
