//! `caskdb serve` as a process: kill -9 under `appendfsync always`, SIGTERM, a config file,
//! and `redis-cli` against it.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A `caskdb serve` child, killed on drop.
struct Served {
    child: Child,
    port: u16,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `caskdb serve --port 0` with `extra` flags and reads the port from its start-up log.
fn serve(dir: &Path, extra: &[&str]) -> Served {
    serve_limited(dir, extra, None)
}

/// As [`serve`]; with `file_size`, the server's files cannot grow past it (`RLIMIT_FSIZE`, the
/// soft limit only: [`raise_file_size_limit`] lifts it), as if the disk were full there.
fn serve_limited(dir: &Path, extra: &[&str], file_size: Option<u64>) -> Served {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_caskdb"));
    cmd.env_remove("CASKDB_DIR")
        .env_remove("RUST_LOG")
        .arg("--dir")
        .arg(dir)
        .arg("serve")
        .args(["--port", "0"])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null());
    if let Some(limit) = file_size {
        use std::os::unix::process::CommandExt;
        // SAFETY: async-signal-safe libc calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                // Past the limit a write fails with EFBIG instead of killing the process.
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit {
                    rlim_cur: limit,
                    rlim_max: libc::RLIM_INFINITY,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let port = loop {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "server exited before listening"
        );
        if let Some(at) = line.find("127.0.0.1:") {
            let digits: String = line[at + 10..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            break digits.parse().unwrap();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stderr.read_to_end(&mut sink);
    });
    Served { child, port }
}

fn connect(port: u16) -> (TcpStream, BufReader<TcpStream>) {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let r = BufReader::new(s.try_clone().unwrap());
    (s, r)
}

fn request(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

/// Sends one command and returns the first line of the reply (enough for these tests).
fn call(s: &mut TcpStream, r: &mut BufReader<TcpStream>, args: &[&str]) -> std::io::Result<String> {
    s.write_all(&request(args))?;
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    if let Some(len) = line
        .strip_prefix('$')
        .and_then(|n| n.trim().parse::<i64>().ok())
    {
        if len < 0 {
            return Ok("(nil)".into());
        }
        let mut body = vec![0; len as usize + 2];
        r.read_exact(&mut body)?;
        return Ok(String::from_utf8_lossy(&body[..len as usize]).into_owned());
    }
    Ok(line.trim_end().to_string())
}

#[test]
fn kill_9_under_appendfsync_always_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &["--appendfsync", "always"]);
    let acked = Arc::new(Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..8)
        .map(|t| {
            let acked = acked.clone();
            let port = server.port;
            std::thread::spawn(move || {
                let (mut s, mut r) = connect(port);
                for i in 0.. {
                    let (k, v) = (format!("w{t}:{i}"), format!("value-{t}-{i}"));
                    // Single commands, MSET and MULTI/EXEC: every write path of the server.
                    let ok = match i % 3 {
                        0 => call(&mut s, &mut r, &["SET", &k, &v]).map(|l| l == "+OK"),
                        1 => call(&mut s, &mut r, &["MSET", &k, &v, &format!("{k}:b"), &v])
                            .map(|l| l == "+OK"),
                        _ => (|| {
                            call(&mut s, &mut r, &["MULTI"])?;
                            call(&mut s, &mut r, &["SET", &k, &v])?;
                            call(&mut s, &mut r, &["INCR", &format!("count{t}")])?;
                            // EXEC's array header, then the two replies.
                            let head = call(&mut s, &mut r, &["EXEC"])?;
                            let mut a = String::new();
                            r.read_line(&mut a)?;
                            let mut b = String::new();
                            r.read_line(&mut b)?;
                            Ok(head == "*2" && a.trim_end() == "+OK")
                        })(),
                    };
                    match ok {
                        Ok(true) => acked.lock().unwrap().push((k, v, i % 3 == 1)),
                        Ok(false) => panic!("unexpected reply"),
                        Err(_) => return, // the server was killed
                    }
                }
            })
        })
        .collect();
    // Kill once a good number of writes were acknowledged (counted, not timed).
    while acked.lock().unwrap().len() < 2000 {
        std::thread::yield_now();
    }
    drop(server); // SIGKILL
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let server = serve(dir.path(), &[]);
    let (mut s, mut r) = connect(server.port);
    for (k, v, pair) in &acked {
        assert_eq!(&call(&mut s, &mut r, &["GET", k]).unwrap(), v, "lost {k}");
        if *pair {
            assert_eq!(
                &call(&mut s, &mut r, &["GET", &format!("{k}:b")]).unwrap(),
                v
            );
        }
    }
}

#[test]
fn sigterm_finishes_syncs_and_exits_0_releasing_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path(), &[]);
    let (mut s, mut r) = connect(server.port);
    assert_eq!(call(&mut s, &mut r, &["SET", "k", "v"]).unwrap(), "+OK");
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    // The lock is released: a new server opens the directory and has the data.
    let server = serve(dir.path(), &[]);
    let (mut s, mut r) = connect(server.port);
    assert_eq!(call(&mut s, &mut r, &["GET", "k"]).unwrap(), "v");
    assert_eq!(
        call(&mut s, &mut r, &["SHUTDOWN"]).ok(),
        None,
        "no reply to SHUTDOWN"
    );
}

#[test]
fn config_file_with_redis_names_and_flags_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("caskdb.toml");
    let data = dir.path().join("data");
    std::fs::write(
        &conf,
        format!(
            "dir = \"{}\"\nappendfsync = \"always\"\nrequirepass = \"pw\"\ntimeout = 300\n",
            data.display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_caskdb"))
        .env_remove("CASKDB_DIR")
        .args(["serve", "--port", "0", "--appendfsync", "no", "--config"])
        .arg(&conf)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(line.contains(&data.display().to_string()), "{line}");
    assert!(line.contains("appendfsync=\"no\""), "{line}");
    assert!(data.join("LOCK").exists() || data.is_dir());

    std::fs::write(&conf, "appendfsync = \"sometimes\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_caskdb"))
        .args(["serve", "--config"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected always, everysec or no"), "{err}");
}

#[test]
fn redis_cli_works_against_caskdb() {
    if Command::new("redis-cli").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install redis-tools"
        );
        eprintln!("redis-cli not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .args(["-p", &server.port.to_string()])
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(cli(&["PING"]), "PONG\n");
    assert_eq!(cli(&["SET", "greeting", "hello world"]), "OK\n");
    assert_eq!(cli(&["GET", "greeting"]), "hello world\n");
    assert_eq!(cli(&["INCRBY", "n", "41"]), "41\n");
    assert_eq!(cli(&["GET", "nothing"]), "\n");
    assert_eq!(cli(&["TYPE", "greeting"]), "string\n");
    // Many commands through one connection, as a user would paste them.
    let mut child = Command::new("redis-cli")
        .args(["-p", &server.port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"SET a 1\nINCR a\nMULTI\nINCR a\nEXEC\nDBSIZE\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "OK\n2\nOK\nQUEUED\n3\n3\n"
    );
}

/// `caskdb` run on a directory, returning (exit code, stdout).
fn cask(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_caskdb"))
        .env_remove("CASKDB_DIR")
        .env_remove("RUST_LOG")
        .arg("--dir")
        .arg(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// Stops a served process with SHUTDOWN and waits for it to exit successfully.
fn shutdown(mut server: Served) {
    let (mut s, mut r) = connect(server.port);
    assert_eq!(call(&mut s, &mut r, &["SHUTDOWN"]).ok(), None);
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn the_command_line_and_the_server_share_one_keyspace() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Written through the server…
    let server = serve(d, &[]);
    let (mut s, mut r) = connect(server.port);
    assert_eq!(
        call(&mut s, &mut r, &["SET", "hello", "world"]).unwrap(),
        "+OK"
    );
    assert_eq!(
        call(&mut s, &mut r, &["RPUSH", "l", "a", "b"]).unwrap(),
        ":2"
    );
    assert_eq!(call(&mut s, &mut r, &["SELECT", "2"]).unwrap(), "+OK");
    assert_eq!(call(&mut s, &mut r, &["SET", "in2", "x"]).unwrap(), "+OK");
    // …while it runs, the command line says who holds the directory.
    let (code, _) = cask(d, &["get", "hello"]);
    assert_eq!(code, 1);
    drop((s, r));
    shutdown(server);
    // …is read by the command line.
    assert_eq!(cask(d, &["get", "hello"]), (0, "world\n".into()));
    assert_eq!(
        cask(d, &["get", "l"]),
        (0, "(list of 2: read it with redis-cli)\n".into())
    );
    assert_eq!(cask(d, &["--db", "2", "get", "in2"]), (0, "x\n".into()));
    assert_eq!(cask(d, &["get", "in2"]), (0, "Key not found\n".into()));
    assert_eq!(
        cask(d, &["scan"]),
        (
            0,
            "hello\tworld\nl\t(list of 2: read it with redis-cli)\n".into()
        )
    );
    let (_, stats) = cask(d, &["stats"]);
    assert!(
        stats.starts_with(
            "keys          3\ndatabases     2 of 16 hold keys\n  db0         2\n  db2         1\n"
        ),
        "{stats}"
    );
    // Written by the command line…
    assert_eq!(cask(d, &["set", "from-cli", "v"]).0, 0);
    assert_eq!(cask(d, &["remove", "hello"]).0, 0);
    assert_eq!(cask(d, &["--db", "16", "get", "x"]).0, 2, "no database 16");
    // …is read by the server.
    let server = serve(d, &[]);
    let (mut s, mut r) = connect(server.port);
    assert_eq!(call(&mut s, &mut r, &["GET", "from-cli"]).unwrap(), "v");
    assert_eq!(call(&mut s, &mut r, &["EXISTS", "hello"]).unwrap(), ":0");
    assert_eq!(call(&mut s, &mut r, &["LLEN", "l"]).unwrap(), ":2");
    drop((s, r));
    shutdown(server);
}

#[test]
fn a_directory_of_the_old_raw_encoding_is_migrated_at_open() {
    // What the command line wrote before it shared the server's keyspace: raw engine keys.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    {
        let db = caskdb::Db::open(d).unwrap();
        db.put("old", "value").unwrap();
        db.put_with_ttl("temp", "t", Duration::from_secs(1000))
            .unwrap();
        db.close().unwrap();
    }
    let server = serve(d, &[]);
    let (mut s, mut r) = connect(server.port);
    assert_eq!(call(&mut s, &mut r, &["GET", "old"]).unwrap(), "value");
    let ttl = call(&mut s, &mut r, &["TTL", "temp"]).unwrap();
    assert!(
        ttl.starts_with(':') && ttl != ":-1" && ttl != ":-2",
        "{ttl}"
    );
    drop((s, r));
    shutdown(server);
    assert_eq!(cask(d, &["get", "old"]), (0, "value\n".into()));
}

/// Lifts the file size limit of `server` (space comes back).
fn raise_file_size_limit(server: &Served) {
    let lim = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: a plain syscall on our own child's limits.
    let rc = unsafe {
        libc::prlimit(
            server.child.id() as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[test]
fn a_full_disk_refuses_writes_with_misconf_until_space_is_back_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let always = ["--appendfsync", "always"];
    // The data file's first 4 MiB are allocated at once; the next step passes 6 MiB.
    let server = serve_limited(dir.path(), &always, Some(6 << 20));
    let (mut s, mut r) = connect(server.port);
    // A transaction queued before the disk fills: its EXEC comes after.
    let (mut s2, mut r2) = connect(server.port);
    assert_eq!(call(&mut s2, &mut r2, &["MULTI"]).unwrap(), "+OK");
    assert_eq!(
        call(&mut s2, &mut r2, &["SET", "queued", "x"]).unwrap(),
        "+QUEUED"
    );
    let value = "v".repeat(1000);
    let full = "-MISCONF Errors writing to the AOF file: File too large";
    let mut acked = 0;
    let refused = loop {
        let reply = call(&mut s, &mut r, &["SET", &format!("k{acked}"), &value]).unwrap();
        if reply != "+OK" {
            break reply;
        }
        acked += 1;
    };
    assert_eq!(refused, full, "after {acked} writes");
    assert!(acked > 3000, "only {acked} writes before the disk was full");
    // Reads go on; writes and PING are refused, as Redis refuses them after an AOF error.
    assert_eq!(call(&mut s, &mut r, &["GET", "k0"]).unwrap(), value);
    assert_eq!(
        call(&mut s, &mut r, &["DBSIZE"]).unwrap(),
        format!(":{acked}")
    );
    assert_eq!(call(&mut s, &mut r, &["PING"]).unwrap(), full);
    let info = call(&mut s, &mut r, &["INFO", "persistence"]).unwrap();
    assert!(info.contains("aof_last_write_status:err\r\n"), "{info}");
    assert_eq!(call(&mut s, &mut r, &["DEL", "k0"]).unwrap(), full);
    assert_eq!(
        call(&mut s2, &mut r2, &["EXEC"]).unwrap(),
        format!(
            "-EXECABORT Transaction discarded because of: {}",
            &full[1..]
        )
    );
    // A subcommand that writes is a write too.
    assert_eq!(
        call(&mut s, &mut r, &["FUNCTION", "FLUSH"]).unwrap(),
        full,
        "FUNCTION FLUSH"
    );
    let script = ["EVAL", "return redis.call('SET', KEYS[1], 'x')", "1", "k0"];
    let script_reply = call(&mut s, &mut r, &script).unwrap();
    assert!(script_reply.contains(&full[1..]), "{script_reply}");
    assert_eq!(call(&mut s, &mut r, &["MULTI"]).unwrap(), "+OK");
    assert_eq!(call(&mut s, &mut r, &["INCR", "n"]).unwrap(), full);
    assert_eq!(
        call(&mut s, &mut r, &["EXEC"]).unwrap(),
        "-EXECABORT Transaction discarded because of previous errors."
    );
    // Space comes back: the server finds out by itself (it probes once a second).
    raise_file_size_limit(&server);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while call(&mut s, &mut r, &["PING"]).unwrap() != "+PONG" {
        assert!(std::time::Instant::now() < deadline, "writes never resumed");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(
        call(&mut s, &mut r, &["SET", "after", "back"]).unwrap(),
        "+OK"
    );
    // Nothing acknowledged is lost, across a kill -9.
    drop(server);
    let server = serve(dir.path(), &always);
    let (mut s, mut r) = connect(server.port);
    assert_eq!(
        call(&mut s, &mut r, &["DBSIZE"]).unwrap(),
        format!(":{}", acked + 1)
    );
    for i in (0..acked).step_by(97).chain([acked - 1]) {
        assert_eq!(
            call(&mut s, &mut r, &["GET", &format!("k{i}")]).unwrap(),
            value
        );
    }
    assert_eq!(call(&mut s, &mut r, &["GET", "after"]).unwrap(), "back");
}

#[test]
fn a_data_file_cut_short_underneath_the_server_gives_errors_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path(), &[]);
    let (mut s, mut r) = connect(server.port);
    let n = 2000;
    let value = |i: usize| format!("{i:0>200}");
    for i in 0..n {
        assert_eq!(
            call(&mut s, &mut r, &["SET", &format!("k{i}"), &value(i)]).unwrap(),
            "+OK"
        );
    }
    // Two values large enough to be sent from the file as the client takes them; after the
    // merge, in key order, the first starts before the cut and ends after it.
    let large = "L".repeat(100_000);
    for key in ["a-large", "b-large"] {
        assert_eq!(call(&mut s, &mut r, &["SET", key, &large]).unwrap(), "+OK");
    }
    shutdown(server);
    // A merge moves the values into a sealed file of their own.
    assert_eq!(cask(dir.path(), &["merge"]).0, 0);
    let server = serve(dir.path(), &[]);
    let (mut s, mut r) = connect(server.port);
    let biggest = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .max_by_key(|p| std::fs::metadata(p).unwrap().len())
        .unwrap();
    let name = biggest.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&biggest)
        .unwrap()
        .set_len(8192)
        .unwrap();
    let mut errors = 0;
    for i in 0..n {
        let reply = call(&mut s, &mut r, &["GET", &format!("k{i}")]).unwrap();
        if reply.starts_with('-') {
            assert!(
                reply.starts_with("-ERR storage: read the record at offset"),
                "{reply}"
            );
            assert!(reply.contains(&name), "names the file: {reply}");
            errors += 1;
        } else {
            assert_eq!(reply, value(i), "k{i}");
        }
    }
    assert!(errors > n / 2, "only {errors} records past the cut");
    // A large value whose record starts past the cut: an error naming the file.
    let reply = call(&mut s, &mut r, &["GET", "b-large"]).unwrap();
    assert!(
        reply.starts_with("-ERR storage:") && reply.contains(&name),
        "{reply}"
    );
    // One cut in its middle: the value is read as the reply is sent, so the failure comes
    // after the reply began; the connection is closed before its end (never a whole reply of
    // wrong bytes), and the server goes on.
    {
        let (mut s, mut r) = connect(server.port);
        s.write_all(&request(&["GET", "a-large"])).unwrap();
        let mut got = Vec::new();
        let _ = r.read_to_end(&mut got);
        assert!(got.len() < 100_000, "{} bytes", got.len());
    }
    // The server is up and takes writes (into another file).
    assert_eq!(call(&mut s, &mut r, &["PING"]).unwrap(), "+PONG");
    assert_eq!(
        call(&mut s, &mut r, &["SET", "after", "cut"]).unwrap(),
        "+OK"
    );
    assert_eq!(call(&mut s, &mut r, &["GET", "after"]).unwrap(), "cut");
}

/// `caskdb serve` as node 1 of a group of itself with config file `text`: its stderr, once it
/// exited (it must fail to start).
fn group_node_refused(dir: &Path, text: &str) -> String {
    let config = dir.join("c.toml");
    std::fs::write(&config, text).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = Command::new(env!("CARGO_BIN_EXE_caskdb"))
        .env_remove("CASKDB_DIR")
        .arg("--dir")
        .arg(dir.join("data"))
        .arg("serve")
        .args(["--port", &port.to_string(), "--node-id", "1"])
        .args(["--cluster", &format!("1=127.0.0.1:{port}")])
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn acl_users_are_refused_in_a_group() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.acl"), "user a on nopass +@all ~*\n").unwrap();
    let text = format!("aclfile = \"{}\"\n", dir.path().join("users.acl").display());
    let err = group_node_refused(dir.path(), &text);
    assert!(
        err.contains("aclfile: ACL users are not supported in a replicated group yet"),
        "{err}"
    );
}

#[test]
fn a_tls_bus_without_its_files_refuses_to_start_and_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let err = group_node_refused(dir.path(), "tls-replication = \"yes\"\n");
    assert!(
        err.contains(
            "tls-replication yes: tls-cert-file, tls-key-file and tls-ca-cert-file are required"
        ),
        "{err}"
    );
}
