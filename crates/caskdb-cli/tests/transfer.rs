//! `caskdb export` and `caskdb import` against the server: what a server wrote, exported and
//! imported into a fresh directory, reads back the same from a server there (every type, binary
//! bytes, infinite scores, TTLs, several databases, after SWAPDB); and hand-written lines, old
//! ones included, import into keys a server reads.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::thread::JoinHandle;
use std::time::Duration;

use assert_cmd::Command;
use predicates::prelude::*;
use predicates::str::contains;
use redis::Connection;

/// A server in this process, on its own runtime thread, stopped by SHUTDOWN.
struct TestServer {
    addr: SocketAddr,
    thread: Option<JoinHandle<Result<(), String>>>,
}

fn start(dir: &Path) -> TestServer {
    let config = caskdb_server::Config {
        port: 0,
        dir: dir.to_path_buf(),
        ..Default::default()
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let server = caskdb_server::Server::bind(config)
                .await
                .map_err(|e| e.to_string())?;
            let _ = tx.send(server.local_addrs()[0]);
            server.run().await.map_err(|e| e.to_string())
        })
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server started");
    TestServer {
        addr,
        thread: Some(thread),
    }
}

impl TestServer {
    fn client(&self) -> Connection {
        redis::Client::open(format!("redis://{}/", self.addr))
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(10))
            .unwrap()
    }

    /// SHUTDOWN, then waits until the server has closed the store (and its lock).
    fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        let mut s = TcpStream::connect(self.addr).unwrap();
        s.write_all(b"*1\r\n$8\r\nSHUTDOWN\r\n").unwrap();
        // No reply: the server closes the connection.
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
        thread.join().unwrap().unwrap();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.shutdown();
        }
    }
}

fn caskdb(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("caskdb").unwrap();
    cmd.env_remove("CASKDB_DIR")
        .env_remove("RUST_LOG")
        .arg("--dir")
        .arg(dir);
    cmd
}

/// `text` with each line cut to 200 bytes, for a failure's message.
fn short(text: &str) -> String {
    text.lines()
        .map(|l| l.get(..200).unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

fn run(con: &mut Connection, args: &[&[u8]]) -> redis::Value {
    let mut cmd = redis::cmd(std::str::from_utf8(args[0]).unwrap());
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(con).unwrap()
}

fn bytes_list(v: redis::Value) -> Vec<Vec<u8>> {
    redis::from_redis_value(v).unwrap()
}

/// What a key looks like to a client: its type, its contents as the server replies them
/// (scores as the server prints them), its encoding, and its PTTL.
#[derive(Debug)]
struct Seen {
    ty: String,
    contents: Vec<Vec<u8>>,
    encoding: String,
    pttl: i64,
}

impl PartialEq for Seen {
    /// TTLs count down between two looks: equal within 10 s, and both there or both not.
    fn eq(&self, other: &Seen) -> bool {
        (self.ty.as_str(), &self.contents, self.encoding.as_str())
            == (other.ty.as_str(), &other.contents, other.encoding.as_str())
            && (self.pttl < 0) == (other.pttl < 0)
            && (self.pttl < 0 || (self.pttl - other.pttl).abs() < 10_000)
    }
}

/// Every key of databases 0 to 15, as a client sees it.
fn snapshot(con: &mut Connection) -> BTreeMap<(u8, Vec<u8>), Seen> {
    let mut all = BTreeMap::new();
    for db in 0..16u8 {
        run(con, &[b"SELECT", db.to_string().as_bytes()]);
        for key in bytes_list(run(con, &[b"KEYS", b"*"])) {
            let ty: String = redis::from_redis_value(run(con, &[b"TYPE", &key])).unwrap();
            let mut contents = match ty.as_str() {
                "string" => vec![redis::from_redis_value(run(con, &[b"GET", &key])).unwrap()],
                "hash" => bytes_list(run(con, &[b"HGETALL", &key])),
                "list" => bytes_list(run(con, &[b"LRANGE", &key, b"0", b"-1"])),
                "set" => bytes_list(run(con, &[b"SMEMBERS", &key])),
                "zset" => bytes_list(run(con, &[b"ZRANGE", &key, b"0", b"-1", b"WITHSCORES"])),
                // Entries, state, groups, consumers and pending entries, times included.
                "stream" => vec![
                    format!("{:?}", run(con, &[b"XINFO", b"STREAM", &key, b"FULL"])).into_bytes(),
                ],
                other => panic!("type {other}"),
            };
            match ty.as_str() {
                // Hash-table order is no content: pairs by field, members sorted.
                "hash" => {
                    let mut pairs: Vec<_> = contents.chunks(2).map(<[_]>::to_vec).collect();
                    pairs.sort();
                    contents = pairs.concat();
                }
                "set" => contents.sort(),
                _ => {}
            }
            let encoding =
                redis::from_redis_value(run(con, &[b"OBJECT", b"ENCODING", &key])).unwrap();
            let pttl = redis::from_redis_value(run(con, &[b"PTTL", &key])).unwrap();
            let seen = Seen {
                ty,
                contents,
                encoding,
                pttl,
            };
            all.insert((db, key), seen);
        }
    }
    all
}

/// Writes, through `con`, keys of every type into databases 0 and 3, then swaps 3 with 5.
fn fill(con: &mut Connection) {
    let cmds: &[&[&[u8]]] = &[
        &[b"SET", b"greeting", b"hello world"],
        &[b"SET", b"\xff\xfe", b"\x00\x80\tbinary\n"],
        &[b"SET", b"n", b"12345"],
        &[b"SET", b"", b"the empty key"],
        &[b"SET", b"session", b"x", b"EX", b"1000"],
        &[
            b"HSET",
            b"user",
            b"name",
            b"Ada",
            b"born",
            b"1815",
            b"bin",
            b"\xfe\xff",
        ],
        &[b"HSET", b"\xc0hash", b"\xc1field", b"v", b"plain", b"\x00"],
        &[b"PEXPIRE", b"user", b"5000000"],
        &[b"RPUSH", b"queue", b"a", b"b", b"a", b"\x80", b""],
        &[b"LPUSH", b"queue", b"first"],
        &[b"SADD", b"ints", b"1", b"2", b"-7"],
        &[b"SADD", b"tags", b"red", b"\xc3", b"blue"],
        &[
            b"ZADD",
            b"scores",
            b"-inf",
            b"low",
            b"1.5",
            b"ada",
            b"0.1",
            b"tenth",
            b"0.30000000000000004",
            b"sum",
            b"1e300",
            b"huge",
            b"-0",
            b"zero",
            b"+inf",
            b"top",
            b"2",
            b"\x81bin",
        ],
        &[b"EXPIRE", b"scores", b"2000"],
        &[b"XADD", b"events", b"1-0", b"f", b"v", b"\xffbin", b"\x00"],
        &[b"XADD", b"events", b"2-0", b"f", b"w"],
        &[b"XADD", b"events", b"3-5", b"other", b"x"],
        &[b"XADD", b"events", b"4-0", b"f", b"y"],
        &[b"XDEL", b"events", b"2-0"],
        &[b"XGROUP", b"CREATE", b"events", b"g", b"0"],
        &[b"XGROUP", b"CREATE", b"events", b"\xc0late", b"$"],
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g",
            b"alice",
            b"COUNT",
            b"2",
            b"STREAMS",
            b"events",
            b">",
        ],
        &[
            b"XREADGROUP",
            b"GROUP",
            b"g",
            b"bob",
            b"STREAMS",
            b"events",
            b">",
        ],
        &[b"XACK", b"events", b"g", b"3-5"],
        &[b"XGROUP", b"CREATECONSUMER", b"events", b"g", b"idle"],
        &[b"XADD", b"emptied", b"7-0", b"a", b"b"],
        &[b"XDEL", b"emptied", b"7-0"],
        &[b"XGROUP", b"CREATE", b"emptied", b"g", b"$"],
        &[b"SELECT", b"3"],
        &[b"SET", b"greeting", b"in database 3"],
        &[b"RPUSH", b"l3", b"x", b"y"],
        &[b"ZADD", b"z3", b"1", b"a", b"1", b"b", b"-1", b"c"],
        &[b"SELECT", b"0"],
        &[b"SWAPDB", b"3", b"5"],
    ];
    for c in cmds {
        run(con, c);
    }
    // Past the compact encodings' limits, and a hash of ~10 MB (a transaction of its own on
    // import).
    let mut big = vec![b"HSET".to_vec(), b"big".to_vec()];
    for i in 0..5000 {
        big.push(format!("field{i}").into_bytes());
        big.push(vec![b'a' + (i % 26) as u8; 2000]);
    }
    run(con, &big.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let mut many = vec![b"SADD".to_vec(), b"many".to_vec()];
    many.extend((0..600).map(|i| i.to_string().into_bytes()));
    run(con, &many.iter().map(Vec::as_slice).collect::<Vec<_>>());
    let mut long = vec![b"RPUSH".to_vec(), b"long".to_vec()];
    long.extend((0..3000).map(|i| format!("e{i}").into_bytes()));
    run(con, &long.iter().map(Vec::as_slice).collect::<Vec<_>>());
}

#[test]
fn what_a_server_wrote_exports_and_imports_into_a_server_that_reads_it_the_same() {
    let a = tempfile::tempdir().unwrap();
    let server = start(a.path());
    let mut con = server.client();
    fill(&mut con);
    let before = snapshot(&mut con);
    assert_eq!(before.len(), 19, "{:?}", before.keys());
    assert!(before.contains_key(&(5, b"l3".to_vec())), "swapped");
    // While the server holds the directory, export says so.
    caskdb(a.path())
        .arg("export")
        .assert()
        .code(1)
        .stdout("")
        .stderr(contains("locked").and(contains("redis-cli")));
    drop(con);
    server.stop();

    let exported = caskdb(a.path())
        .arg("export")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(exported.clone()).unwrap();
    assert_eq!(text.lines().count(), 19);
    for line in [
        r#"{"db":0,"key":"greeting","type":"string","value":"hello world"}"#,
        r#"{"db":0,"key":"queue","type":"list","value":["first","a","b","a",{"base64":"gA=="},""]}"#,
        r#"{"db":0,"key":"ints","type":"set","value":["-7","1","2"]}"#,
        r#"{"db":5,"key":"z3","type":"zset","value":[["c",-1.0],["a",1.0],["b",1.0]]}"#,
        r#"{"db":0,"key":"emptied","type":"stream","value":{"entries":[],"last_id":"7-0","first_id":"0-0","max_deleted_id":"7-0","entries_added":1,"groups":[{"name":"g","last_delivered_id":"7-0","entries_read":null,"consumers":[],"pending":[]}]}}"#,
        r#"{"db":0,"key_base64":"wGhhc2g=","type":"hash","value":[["plain","\u0000"],[{"base64":"wWZpZWxk"},"v"]]}"#,
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "{line} in\n{}",
            short(&text)
        );
    }
    let scores = text
        .lines()
        .find(|l| l.contains(r#""key":"scores""#))
        .unwrap();
    assert!(
        scores.starts_with(
            r#"{"db":0,"key":"scores","type":"zset","value":[["low","-inf"],["zero",0.0],["tenth",0.1],["sum",0.30000000000000004],["ada",1.5],[{"base64":"gWJpbg=="},2.0],["huge",1e+300],["top","inf"]],"ttl_ms":"#
        ),
        "{scores}"
    );
    caskdb(a.path()).arg("stats").assert().success().stdout(
        contains("keys          19\n")
            .and(contains("databases     2 of 16 hold keys\n"))
            .and(contains("  db0         16\n"))
            .and(contains("  db5         3\n")),
    );
    // Only one database with --db.
    let only5 = caskdb(a.path())
        .args(["--db", "5", "export"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let only5 = String::from_utf8(only5).unwrap();
    assert_eq!(only5.lines().count(), 3);
    assert!(
        only5.lines().all(|l| l.starts_with(r#"{"db":5,"#)),
        "{only5}"
    );

    let b = tempfile::tempdir().unwrap();
    caskdb(b.path())
        .arg("import")
        .write_stdin(exported.clone())
        .assert()
        .success()
        .stdout("imported 19 keys\n");
    let server = start(b.path());
    let mut con = server.client();
    let after = snapshot(&mut con);
    assert_eq!(after.len(), before.len());
    for (k, seen) in &before {
        assert_eq!(after.get(k), Some(seen), "{k:?}");
    }
    // New writes to the imported collections work as on any other.
    run(&mut con, &[b"SELECT", b"0"]);
    run(&mut con, &[b"RPUSH", b"queue", b"last"]);
    run(&mut con, &[b"HSET", b"user", b"city", b"London"]);
    let len: i64 = redis::from_redis_value(run(&mut con, &[b"LLEN", b"queue"])).unwrap();
    assert_eq!(len, 7);
    let city: Vec<u8> =
        redis::from_redis_value(run(&mut con, &[b"HGET", b"user", b"city"])).unwrap();
    assert_eq!(city, b"London");
    drop(con);
    server.stop();

    // Importing again replaces every key: the same keys, nothing doubled.
    caskdb(b.path())
        .arg("import")
        .write_stdin(exported)
        .assert()
        .success();
    let server = start(b.path());
    let again = snapshot(&mut server.client());
    assert_eq!(again.len(), before.len());
    for (k, seen) in &before {
        assert_eq!(again.get(k), Some(seen), "{k:?}");
    }
    server.stop();
}

#[test]
fn hand_written_and_old_lines_import_into_keys_a_server_reads() {
    let dir = tempfile::tempdir().unwrap();
    let lines = [
        r#"{"db":0,"key":"h","type":"hash","value":{"f":"v","bin":{"base64":"/w=="}},"ttl_ms":600000}"#,
        r#"{"db":0,"key":"z","type":"zset","value":[["b","+inf"],["a",-3],["c","-inf"]]}"#,
        r#"{"db":2,"key":"l","type":"list","value":["x",{"base64":"AAE="},"x"]}"#,
        r#"{"db":2,"key":"s","type":"set","value":["m"]}"#,
        // The old format: no db, no type (strings of database 0).
        r#"{"key":"old","value":"from an old export"}"#,
        r#"{"key_base64":"/w==","value_base64":"AA==","ttl_ms":600000}"#,
        "",
    ];
    caskdb(dir.path())
        .arg("import")
        .write_stdin(lines.join("\n"))
        .assert()
        .success()
        .stdout("imported 6 keys\n");
    let server = start(dir.path());
    let mut con = server.client();
    let seen = snapshot(&mut con);
    let contents = |db: u8, k: &[u8]| seen[&(db, k.to_vec())].contents.clone();
    let v = |items: &[&[u8]]| items.iter().map(|i| i.to_vec()).collect::<Vec<_>>();
    assert_eq!(contents(0, b"h"), v(&[b"bin", b"\xff", b"f", b"v"]));
    assert!(seen[&(0, b"h".to_vec())].pttl > 500_000);
    assert_eq!(
        contents(0, b"z"),
        v(&[b"c", b"-inf", b"a", b"-3", b"b", b"inf"])
    );
    assert_eq!(contents(2, b"l"), v(&[b"x", b"\x00\x01", b"x"]));
    assert_eq!(seen[&(2, b"s".to_vec())].encoding, "hashtable");
    assert_eq!(contents(0, b"old"), v(&[b"from an old export"]));
    assert_eq!(contents(0, b"\xff"), v(&[b"\x00"]));
    assert!(seen[&(0, b"\xff".to_vec())].pttl > 500_000);
    assert_eq!(seen.len(), 6);
    drop(con);
    server.stop();

    // --db N: old lines go to N; an export of one database is moved to N.
    let other = tempfile::tempdir().unwrap();
    let input = format!("{}\n{}\n{}\n", lines[2], lines[3], lines[4]);
    caskdb(other.path())
        .args(["--db", "7", "import"])
        .write_stdin(input)
        .assert()
        .success()
        .stdout("imported 3 keys\n");
    let server = start(other.path());
    let seen = snapshot(&mut server.client());
    let keys: Vec<_> = seen.keys().cloned().collect();
    assert_eq!(
        keys,
        [(7, b"l".to_vec()), (7, b"old".to_vec()), (7, b"s".to_vec())]
    );
    server.stop();
    // Lines of several databases do not mix into one.
    caskdb(other.path())
        .args(["--db", "7", "import"])
        .write_stdin(format!("{}\n{}\n", lines[0], lines[2]))
        .assert()
        .code(1)
        .stderr(contains("line 2").and(contains("--db 7")));
}

#[test]
fn export_names_a_key_of_a_type_it_does_not_know() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = caskdb::Db::open(dir.path()).unwrap();
        // Database 0, namespace 0, key "future": a type byte no version has yet.
        db.put(b"\x00\x00future", b"\x2av").unwrap();
        db.close().unwrap();
    }
    caskdb(dir.path()).arg("export").assert().code(1).stderr(
        contains("key \"future\" of database 0")
            .and(contains("unknown type"))
            .and(contains("42")),
    );
}
