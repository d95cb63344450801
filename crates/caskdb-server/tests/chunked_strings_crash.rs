#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Long strings kept in chunks across crashes, restarts and merges, and what a change in place
//! costs on disk (caskdb-only: redis-server has nothing to compare with):
//!
//! - kill -9 under `appendfsync always` while clients SETBIT, SETRANGE, APPEND and BITFIELD
//!   their own long strings: after a restart each string is what its acknowledged commands
//!   made it (plus, or not, the one command in flight);
//! - a SETBIT in a 16 MB bitmap appends about one chunk to the log, not 16 MB;
//! - the chunks of deleted and overwritten strings are reclaimed by the sweep, and what is live
//!   reads the same after BGREWRITEAOF's sweep and merge and a restart.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use caskdb_testkit::rng::Rng;
use common::child::ServerProcess;
use common::{Raw, Reply};

const DEADLINE: Duration = Duration::from_secs(60);

fn run(c: &mut Raw, args: &[&str]) -> Reply {
    let r = c.cmd(args);
    if let Reply::Error(e) = &r {
        panic!("{}: error {e}", args.join(" "));
    }
    r
}

fn bytes(r: Reply) -> Vec<u8> {
    match r {
        Reply::Bulk(b) => b,
        Reply::Nil => Vec::new(),
        other => panic!("expected a string, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// kill -9.

const CHILD_DIR_ENV: &str = "CASKDB_CHUNKED_CHILD_DIR";

/// The server process the crash test kills; returns at once without its environment variable.
#[test]
#[ignore = "not a test on its own: the server process that the crash test starts and kills"]
fn chunked_child_server() {
    common::child::serve_always_in(CHILD_DIR_ENV);
}

/// A change in place and what it does to a model of the string.
#[derive(Debug, Clone)]
enum Change {
    SetBit(u64, bool),
    SetRange(u64, Vec<u8>),
    Append(Vec<u8>),
    /// BITFIELD SET u8 at a byte.
    Byte(u64, u8),
}

impl Change {
    fn random(rng: &mut Rng, n: u64) -> Change {
        // Mostly near chunk edges (every 4096 bytes), within 64 KiB.
        let at = if rng.chance(1, 2) {
            (rng.below(16) * 4096 + rng.below(8)).saturating_sub(4)
        } else {
            rng.below(64 * 1024)
        };
        match rng.below(4) {
            0 => Change::SetBit(at * 8 + rng.below(8), rng.chance(1, 2)),
            1 => Change::SetRange(at, format!("<{n}>").into_bytes()),
            2 => Change::Append(format!("[{n}]").into_bytes()),
            _ => Change::Byte(at, (n % 251) as u8 + 1),
        }
    }

    fn args(&self, key: &str) -> Vec<String> {
        let s = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        match self {
            Change::SetBit(bit, on) => {
                vec![
                    "SETBIT".into(),
                    key.into(),
                    bit.to_string(),
                    u8::from(*on).to_string(),
                ]
            }
            Change::SetRange(at, v) => vec!["SETRANGE".into(), key.into(), at.to_string(), s(v)],
            Change::Append(v) => vec!["APPEND".into(), key.into(), s(v)],
            Change::Byte(at, v) => vec![
                "BITFIELD".into(),
                key.into(),
                "SET".into(),
                "u8".into(),
                format!("#{at}"),
                v.to_string(),
            ],
        }
    }

    fn apply(&self, model: &mut Vec<u8>) {
        let end = model.len();
        let mut put = |at: usize, b: &[u8]| {
            if model.len() < at + b.len() {
                model.resize(at + b.len(), 0);
            }
            model[at..at + b.len()].copy_from_slice(b);
        };
        match self {
            Change::SetBit(bit, on) => {
                let byte = (*bit / 8) as usize;
                if model.len() <= byte {
                    model.resize(byte + 1, 0);
                }
                let mask = 0x80u8 >> (bit % 8);
                if *on {
                    model[byte] |= mask;
                } else {
                    model[byte] &= !mask;
                }
            }
            Change::SetRange(at, v) => put(*at as usize, v),
            Change::Append(v) => put(end, v),
            Change::Byte(at, v) => put(*at as usize, &[*v]),
        }
    }
}

/// What a writer saw: its string as its acknowledged changes made it, and the change in flight
/// when the server died.
struct Written {
    key: String,
    model: Vec<u8>,
    in_flight: Option<Change>,
}

fn writer(addr: std::net::SocketAddr, n: usize, done: Arc<AtomicUsize>) -> Written {
    let key = format!("w{n}");
    let mut rng = Rng::new(caskdb_testkit::rng::mix(n as u64 + 1));
    let mut c = Raw::connect(addr);
    let mut log = Written {
        key: key.clone(),
        model: Vec::new(),
        in_flight: None,
    };
    for i in 0.. {
        let change = Change::random(&mut rng, i);
        let args = change.args(&key);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        log.in_flight = Some(change.clone());
        let Some(reply) = c.request(&args) else {
            return log;
        };
        assert!(!matches!(reply, Reply::Error(_)), "{args:?}: {reply:?}");
        change.apply(&mut log.model);
        log.in_flight = None;
        done.fetch_add(1, Ordering::SeqCst);
    }
    unreachable!()
}

/// kill -9 while two clients change their own long strings in place (SETBIT, SETRANGE, APPEND,
/// BITFIELD near chunk edges; a BGREWRITEAOF's sweep and merge among them): after a restart,
/// each string is its model, or its model with the one change in flight applied.
#[test]
fn kill_9_keeps_every_acknowledged_change_in_place() {
    const WRITERS: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let env = [(CHILD_DIR_ENV, dir.path().as_os_str())];
    let srv = ServerProcess::spawn("chunked_child_server", &env, DEADLINE);
    let mut c = srv.raw();
    let done = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|n| {
            let (addr, done) = (srv.addr, done.clone());
            std::thread::spawn(move || writer(addr, n, done))
        })
        .collect();
    let progress = |n: usize| {
        common::wait_for(&format!("{n} changes"), DEADLINE, || {
            (done.load(Ordering::SeqCst) >= n).then_some(())
        })
    };
    progress(300);
    assert!(matches!(run(&mut c, &["BGREWRITEAOF"]), Reply::Simple(_)));
    progress(800);
    drop(c);
    srv.kill();
    let written: Vec<Written> = writers.into_iter().map(|t| t.join().unwrap()).collect();

    let srv = ServerProcess::spawn("chunked_child_server", &env, DEADLINE);
    let mut c = srv.raw();
    for w in &written {
        assert!(
            w.model.len() > 8192,
            "{} is long enough to be in chunks",
            w.key
        );
        let got = bytes(run(&mut c, &["GET", &w.key]));
        let mut with = w.model.clone();
        if let Some(change) = &w.in_flight {
            change.apply(&mut with);
        }
        assert!(
            got == w.model || got == with,
            "{}: {} bytes back, {} acknowledged ({} with the change in flight {:?}); first \
             difference at {:?}",
            w.key,
            got.len(),
            w.model.len(),
            with.len(),
            w.in_flight,
            got.iter().zip(&w.model).position(|(a, b)| a != b)
        );
        // The ranged reads agree with the whole.
        let len = got.len();
        let part = bytes(run(
            &mut c,
            &["GETRANGE", &w.key, "4090", &(len - 1).to_string()],
        ));
        assert_eq!(part, got[4090..], "GETRANGE of {}", w.key);
        let Reply::Int(strlen) = run(&mut c, &["STRLEN", &w.key]) else {
            panic!("STRLEN is an integer");
        };
        assert_eq!(strlen as usize, len);
    }
    drop(c);
    srv.stop(DEADLINE);
}

// ---------------------------------------------------------------------------------------------
// Cost on disk, sweep and merge.

/// A SETBIT in a 16 MB bitmap adds to the data files about one chunk, whatever the bitmap's
/// size: 200 of them add less than 2 MB (they would add 3.2 GB rewriting the whole value).
#[test]
fn a_setbit_in_a_16_mb_bitmap_writes_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let srv = common::start(dir.path());
    let mut c = srv.raw();
    let top = (16u64 << 20) * 8 - 1;
    run(&mut c, &["SETBIT", "bm", &top.to_string(), "1"]);
    // Every chunk present: a bitmap of ones.
    let ones = vec![0xffu8; 1 << 20];
    for mb in 0..16u64 {
        let at = (mb << 20).to_string();
        let mut args: Vec<&[u8]> = vec![b"SETRANGE", b"bm", at.as_bytes()];
        args.push(&ones);
        c.send_bytes(&common::encode_bytes(&args));
        assert_eq!(c.read(), Reply::Int(16 << 20));
    }
    let before = common::info_field(&mut c, "persistence", "caskdb_disk_bytes");
    let mut rng = Rng::new(7);
    for _ in 0..200 {
        let bit = rng.below(top).to_string();
        assert_eq!(run(&mut c, &["SETBIT", "bm", &bit, "0"]), Reply::Int(1));
    }
    let grew =
        common::info_field(&mut c, "persistence", "caskdb_disk_bytes").saturating_sub(before);
    assert!(grew < 2 << 20, "200 SETBITs added {grew} bytes");
    assert_eq!(
        run(&mut c, &["BITCOUNT", "bm"]),
        Reply::Int((16 << 23) - 200)
    );
    drop(c);
    srv.stop();
}

/// Chunks of strings deleted, overwritten by SET, or renamed over are reclaimed by
/// BGREWRITEAOF's sweep; the live ones (also one renamed, one copied) read the same after it
/// and after a restart.
#[test]
fn sweep_merge_and_restart_keep_live_strings_and_reclaim_dead_ones() {
    let dir = tempfile::tempdir().unwrap();
    let srv = common::start(dir.path());
    let mut c = srv.raw();
    let mut rng = Rng::new(11);
    for k in [
        "live",
        "deleted",
        "overwritten",
        "renamed",
        "target",
        "moved",
    ] {
        for _ in 0..40 {
            let at = rng.below(100_000).to_string();
            run(&mut c, &["SETRANGE", k, &at, "some bytes"]);
        }
    }
    run(&mut c, &["DEL", "deleted"]);
    run(&mut c, &["SET", "overwritten", "short"]);
    run(&mut c, &["RENAME", "renamed", "target"]);
    run(&mut c, &["COPY", "live", "copy"]);
    run(&mut c, &["MOVE", "moved", "3"]);
    let keys = ["live", "overwritten", "target", "copy"];
    let snapshot = |c: &mut Raw| -> Vec<Vec<u8>> {
        let mut all: Vec<Vec<u8>> = keys.iter().map(|k| bytes(run(c, &["GET", k]))).collect();
        run(c, &["SELECT", "3"]);
        all.push(bytes(run(c, &["GET", "moved"])));
        run(c, &["SELECT", "0"]);
        all
    };
    let before = snapshot(&mut c);
    assert!(before.iter().all(|v| v.len() > 8192 || v == b"short"));
    assert!(matches!(run(&mut c, &["BGREWRITEAOF"]), Reply::Simple(_)));
    common::wait_for("caskdb_rewrites >= 1", DEADLINE, || {
        (common::info_field(&mut c, "persistence", "caskdb_rewrites") >= 1).then_some(())
    });
    // The three dead strings' chunks (each some of its up to 25 chunks, and its owner).
    let reclaimed = common::info_field(&mut c, "persistence", "caskdb_members_reclaimed");
    assert!(reclaimed >= 30, "reclaimed {reclaimed}");
    assert_eq!(snapshot(&mut c), before, "after the sweep and merge");
    drop(c);
    srv.stop();

    let srv = common::start(dir.path());
    let mut c = srv.raw();
    assert_eq!(snapshot(&mut c), before, "after a restart");
    run(&mut c, &["SETRANGE", "copy", "0", "changed"]);
    assert_eq!(
        bytes(run(&mut c, &["GETRANGE", "live", "0", "6"])),
        before[0][..7]
    );
    drop(c);
    srv.stop();
}

/// A chunk damaged so that it holds more than its part of the string (written with the server
/// stopped) is an error naming it, for GET and for a range read that reaches it, never bytes;
/// what does not read it still works.
#[test]
fn a_chunk_longer_than_its_part_is_an_error_not_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let srv = common::start(dir.path());
    let mut c = srv.raw();
    run(&mut c, &["SETRANGE", "s", "20000", "end"]);
    run(&mut c, &["SETRANGE", "s", "0", "start"]);
    drop(c);
    srv.stop();
    {
        let db = caskdb_server::direct::options().open(dir.path()).unwrap();
        // The first chunk of the only chunked string: member records are keyed
        // [tag 0x80..0xc0][id: 8 bytes][kind 1][index: 8 bytes].
        let chunk = db
            .range_keys([0x80u8]..[0xc0u8])
            .map(Result::unwrap)
            .find(|k| k.len() == 18 && k[9] == 1 && k[10..] == 0u64.to_be_bytes())
            .expect("chunk 0");
        db.put(&chunk, vec![1u8; 5000]).unwrap();
        db.close().unwrap();
    }
    let srv = common::start(dir.path());
    let mut c = srv.raw();
    for args in [&["GET", "s"][..], &["GETRANGE", "s", "0", "10"][..]] {
        match c.cmd(args) {
            Reply::Error(e) => assert!(e.contains("corrupt string: chunk 0"), "{args:?}: {e}"),
            other => panic!("{args:?}: {other:?}"),
        }
    }
    assert_eq!(c.cmd(&["STRLEN", "s"]), Reply::Int(20003));
    assert_eq!(
        c.cmd(&["GETRANGE", "s", "20000", "-1"]),
        Reply::Bulk(b"end".to_vec())
    );
    drop(c);
    srv.stop();
}
