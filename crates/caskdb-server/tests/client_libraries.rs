#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Real client libraries of other languages against the server, as their users drive it:
//! redis-py (RESP2 and RESP3) and ioredis (RESP2, RESP3, RESP3 with its "resp3" reply mapping)
//! run the scripts in `tests/clients/` — pub/sub, blocking commands, sorted set and hash reply
//! shapes, pipelines, transactions, keyspace notifications and streams with consumer groups. The scripts pass against
//! `redis-server` itself (`python3 tests/clients/redis_py_test.py --port P --protocol 3`,
//! `node tests/clients/ioredis_test.js --port P --protocol 3`), which is how they were checked.
//!
//! Needs `python3` with redis-py 8.2.0 (`pip install redis==8.2.0`) and `node` with the
//! clients folder's packages (`npm ci` in `tests/clients`); `.ci/run` installs both. Without
//! them the tests are skipped with a notice, except under CI, where they fail.

mod common;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::start_fresh;

/// How long one script may run before it is killed (each ends in a few seconds when the
/// server answers, and bounds its own waits; this catches a hang in the library or the script).
const LIMIT: Duration = Duration::from_secs(120);

fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients")
}

/// `false` (skip, with a notice) when a prerequisite is missing; under CI, a failure instead.
fn prerequisite(ok: bool, what: &str, install: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{what} is missing: CI must install it ({install})");
    }
    eprintln!("notice: {what} is missing ({install}); client library test skipped");
    false
}

fn command_succeeds(cmd: &mut Command) -> bool {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn have_redis_py() -> bool {
    prerequisite(
        command_succeeds(Command::new("python3").args(["-c", "import redis"])),
        "python3 with redis-py",
        "pip install redis==8.2.0",
    )
}

fn have_ioredis() -> bool {
    let node = command_succeeds(Command::new("node").arg("--version"));
    let modules = clients_dir()
        .join("node_modules/ioredis/package.json")
        .is_file();
    prerequisite(
        node && modules,
        "node with ioredis in tests/clients/node_modules",
        "npm ci in crates/caskdb-server/tests/clients",
    )
}

/// Runs `program args` against a fresh server (host and port appended as `--host H --port P`),
/// killing it after [`LIMIT`]; fails the test, showing everything it printed, unless it exits
/// with status 0.
fn run_against_caskdb(name: &str, program: &str, args: &[&str]) {
    let srv = start_fresh();
    let out_dir = tempfile::tempdir().unwrap();
    let out_path = out_dir.path().join("output");
    let out = File::create(&out_path).unwrap();
    let mut child = Command::new(program)
        .args(args)
        .args(["--host", &srv.addr.ip().to_string()])
        .args(["--port", &srv.addr.port().to_string()])
        .current_dir(clients_dir())
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap_or_else(|e| panic!("{name}: cannot start {program}: {e}"));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut output = String::new();
    File::open(&out_path)
        .unwrap()
        .read_to_string(&mut output)
        .unwrap();
    match status {
        Some(s) if s.success() => {
            // Shown with --nocapture.
            println!("{name}: passed in {:.1?}\n{output}", started.elapsed());
        }
        Some(s) => panic!("{name} failed against caskdb ({s}); its output:\n{output}"),
        None => panic!(
            "{name} still running after {LIMIT:?} against caskdb: killed; its output:\n{output}"
        ),
    }
    srv.stop();
}

fn redis_py(protocol: &str) {
    if !have_redis_py() {
        return;
    }
    run_against_caskdb(
        &format!("redis-py protocol {protocol}"),
        "python3",
        &["redis_py_test.py", "--protocol", protocol],
    );
}

fn ioredis(protocol: &str) {
    if !have_ioredis() {
        return;
    }
    run_against_caskdb(
        &format!("ioredis protocol {protocol}"),
        "node",
        &["ioredis_test.js", "--protocol", protocol],
    );
}

#[test]
fn redis_py_resp2() {
    redis_py("2");
}

#[test]
fn redis_py_resp3() {
    redis_py("3");
}

#[test]
fn ioredis_resp2() {
    ioredis("2");
}

/// RESP3 read back into RESP2's shapes (ioredis's default "legacy" reply mapping).
#[test]
fn ioredis_resp3() {
    ioredis("3");
}

/// RESP3 with replyMapping "resp3": scores as numbers, maps as objects, pairs nested.
#[test]
fn ioredis_resp3_reply_mapping() {
    ioredis("3r");
}
