//! A real Redis client library (the `redis` crate) against the server: commands, atomic
//! pipelines, WATCH, SCAN, databases, persistence across restarts.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Reply, start, start_fresh, start_with};
use redis::Commands;

#[test]
fn strings_through_a_client_library() {
    let srv = start_fresh();
    let mut con = srv.client();
    let _: () = con.set("name", "caskdb").unwrap();
    assert_eq!(con.get::<_, String>("name").unwrap(), "caskdb");
    assert_eq!(con.incr::<_, _, i64>("hits", 5).unwrap(), 5);
    assert_eq!(con.append::<_, _, usize>("name", "!").unwrap(), 7);
    let _: () = con.mset(&[("a", "1"), ("b", "2")]).unwrap();
    let got: Vec<Option<String>> = con.mget(&["a", "b", "zzz"]).unwrap();
    assert_eq!(got, vec![Some("1".into()), Some("2".into()), None]);
    let bin: Vec<u8> = (0..=255).collect();
    let _: () = con.set("bin", &bin[..]).unwrap();
    assert_eq!(con.get::<_, Vec<u8>>("bin").unwrap(), bin);
    let _: () = con.set_ex("temp", "x", 100).unwrap();
    let ttl: i64 = con.ttl("temp").unwrap();
    assert!((99..=100).contains(&ttl), "{ttl}");
    assert_eq!(con.del::<_, i64>(&["a", "b", "nope"]).unwrap(), 2);
}

#[test]
fn atomic_pipeline_and_watch() {
    let srv = start_fresh();
    let mut con = srv.client();
    let (a, b): (i64, i64) = redis::pipe()
        .atomic()
        .incr("x", 1)
        .incr("x", 10)
        .query(&mut con)
        .unwrap();
    assert_eq!((a, b), (1, 11));

    // WATCH: a change by another client between WATCH and EXEC aborts the transaction.
    let mut other = srv.client();
    let _: () = redis::cmd("WATCH").arg("x").query(&mut con).unwrap();
    let _: () = other.set("x", 100).unwrap();
    let aborted: Option<(i64,)> = redis::pipe().atomic().incr("x", 1).query(&mut con).unwrap();
    assert_eq!(aborted, None);
    assert_eq!(con.get::<_, i64>("x").unwrap(), 100);
    // Without interference it goes through.
    let _: () = redis::cmd("WATCH").arg("x").query(&mut con).unwrap();
    let done: Option<(i64,)> = redis::pipe().atomic().incr("x", 1).query(&mut con).unwrap();
    assert_eq!(done, Some((101,)));
}

#[test]
fn scan_visits_every_key_once_with_match_and_count() {
    let srv = start_fresh();
    let mut con = srv.client();
    for i in 0..2500 {
        let _: () = con.set(format!("user:{i}"), i).unwrap();
        let _: () = con.set(format!("item:{i}"), i).unwrap();
    }
    let mut seen: Vec<String> = con
        .scan_match::<_, String>("user:*")
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    seen.sort();
    let mut expected: Vec<String> = (0..2500).map(|i| format!("user:{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected);
    assert_eq!(redis::cmd("DBSIZE").query::<i64>(&mut con).unwrap(), 5000);
    let keys: Vec<String> = con.keys("item:1?9").unwrap();
    assert_eq!(keys.len(), 10);
}

#[test]
fn databases_are_separate_and_move_between_them() {
    let srv = start_fresh();
    let mut c = srv.raw();
    assert_eq!(c.cmd(&["SET", "k", "in0"]), Reply::Simple("OK".into()));
    assert_eq!(c.cmd(&["SELECT", "3"]), Reply::Simple("OK".into()));
    assert_eq!(c.cmd(&["GET", "k"]), Reply::Nil);
    assert_eq!(c.cmd(&["SET", "k", "in3"]), Reply::Simple("OK".into()));
    assert_eq!(c.cmd(&["MOVE", "k", "0"]), Reply::Int(0)); // exists there
    assert_eq!(c.cmd(&["MOVE", "k", "5"]), Reply::Int(1));
    assert_eq!(c.cmd(&["EXISTS", "k"]), Reply::Int(0));
    assert_eq!(c.cmd(&["SELECT", "5"]), Reply::Simple("OK".into()));
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("in3"));
    assert_eq!(c.cmd(&["FLUSHDB"]), Reply::Simple("OK".into()));
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(0));
    assert_eq!(c.cmd(&["SELECT", "0"]), Reply::Simple("OK".into()));
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("in0"));
}

#[test]
fn data_and_expiries_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path());
    let mut c = srv.raw();
    c.cmd(&["SET", "plain", "v"]);
    c.cmd(&["SET", "expiring", "v", "EX", "1000"]);
    c.cmd(&["SET", "gone", "v", "PX", "1"]);
    c.cmd(&["MSET", "m1", "a", "m2", "b"]);
    c.cmd(&["SELECT", "7"]);
    c.cmd(&["SET", "seven", "7"]);
    c.cmd(&["DEL", "nothing"]);
    drop(c);
    srv.stop();

    let srv = start(dir.path());
    let mut c = srv.raw();
    assert_eq!(c.cmd(&["GET", "plain"]), Reply::bulk("v"));
    let Reply::Int(ttl) = c.cmd(&["TTL", "expiring"]) else {
        panic!()
    };
    assert!((998..=1000).contains(&ttl), "{ttl}");
    assert_eq!(c.cmd(&["GET", "gone"]), Reply::Nil);
    assert_eq!(
        c.cmd(&["MGET", "m1", "m2"]),
        Reply::Array(vec![Reply::bulk("a"), Reply::bulk("b")])
    );
    c.cmd(&["SELECT", "7"]);
    assert_eq!(c.cmd(&["GET", "seven"]), Reply::bulk("7"));
}

#[test]
fn appendfsync_always_acknowledges_after_the_disk() {
    // Under `always` every reply waits for an fsync; many clients share each one. This checks
    // the replies and the data; durability across kill -9 is tested with the binary.
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with(dir.path(), |c| {
        c.appendfsync = caskdb_server::AppendFsync::Always
    });
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let addr = srv.addr;
            std::thread::spawn(move || {
                let mut c = common::Raw::connect(addr);
                for i in 0..50 {
                    let k = format!("t{t}:{i}");
                    assert_eq!(c.cmd(&["SET", &k, "v"]), Reply::Simple("OK".into()));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(srv.raw().cmd(&["DBSIZE"]), Reply::Int(400));
}

#[test]
fn config_set_changes_settings_at_run_time() {
    let srv = start_fresh();
    let mut c = srv.raw();
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendfsync"]),
        Reply::Array(vec![Reply::bulk("appendfsync"), Reply::bulk("everysec")])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "appendfsync", "always"]),
        Reply::Simple("OK".into())
    );
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "appendfs*"]),
        Reply::Array(vec![Reply::bulk("appendfsync"), Reply::bulk("always")])
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "port", "1"]),
        Reply::Error(
            "ERR CONFIG SET failed (possibly related to argument 'port') - can't set immutable config"
                .into()
        )
    );
    // A password set at run time applies to new connections.
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "requirepass", "pw"]),
        Reply::Simple("OK".into())
    );
    let mut d = srv.raw();
    assert_eq!(
        d.cmd(&["GET", "x"]),
        Reply::Error("NOAUTH Authentication required.".into())
    );
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "requirepass", ""]),
        Reply::Simple("OK".into())
    );
}

#[test]
fn oversized_keys_and_values_are_refused_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start_with(dir.path(), |c| c.proto_max_bulk_len = 1024 * 1024);
    let mut c = srv.raw();
    c.cmd(&["SET", "keep", "me"]);
    let big_key = "k".repeat(64 * 1024 + 1);
    assert_eq!(
        c.cmd(&["SET", &big_key, "v"]),
        Reply::Error("ERR key is too large (65537 bytes; the limit is 65536 bytes)".into())
    );
    let half = "v".repeat(600 * 1024);
    assert_eq!(c.cmd(&["SET", "s", &half]), Reply::Simple("OK".into()));
    assert_eq!(
        c.cmd(&["APPEND", "s", &half]),
        Reply::Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)".into())
    );
    assert_eq!(
        c.cmd(&["SETRANGE", "s", "1048576", "x"]),
        Reply::Error("ERR string exceeds maximum allowed size (proto-max-bulk-len)".into())
    );
    assert_eq!(c.cmd(&["STRLEN", "s"]), Reply::Int(600 * 1024));
    assert_eq!(c.cmd(&["GET", "keep"]), Reply::bulk("me"));
}

#[test]
fn info_counts_calls_rejections_failures_and_error_codes() {
    let srv = start_fresh();
    let mut c = srv.raw();
    let info = |c: &mut common::Raw, section: &str| -> String {
        let r = if section.is_empty() {
            c.cmd(&["INFO"])
        } else {
            c.cmd(&["INFO", section])
        };
        match r {
            Reply::Bulk(b) => String::from_utf8(b).unwrap(),
            other => panic!("INFO: {other:?}"),
        }
    };
    assert_eq!(c.cmd(&["SET", "s", "v"]), Reply::Simple("OK".into()));
    assert!(matches!(c.cmd(&["SET", "s"]), Reply::Error(_))); // rejected: arity
    assert!(matches!(c.cmd(&["LPUSH", "s", "x"]), Reply::Error(_))); // failed: WRONGTYPE
    assert!(matches!(c.cmd(&["NOSUCH"]), Reply::Error(_)));
    let stats = info(&mut c, "commandstats");
    assert!(stats.starts_with("# Commandstats\r\n"), "{stats}");
    for line in [
        "cmdstat_set:calls=2,",
        "rejected_calls=1,failed_calls=0\r\n",
        "cmdstat_lpush:calls=1,",
        "rejected_calls=0,failed_calls=1\r\n",
    ] {
        assert!(stats.contains(line), "{line} in {stats}");
    }
    let errors = info(&mut c, "errorstats");
    assert!(errors.contains("errorstat_ERR:count=2\r\n"), "{errors}");
    assert!(
        errors.contains("errorstat_WRONGTYPE:count=1\r\n"),
        "{errors}"
    );
    assert!(info(&mut c, "stats").contains("total_error_replies:3\r\n"));
    // The default sections leave commandstats out, as Redis does.
    let default = info(&mut c, "");
    assert!(default.contains("# Errorstats") && !default.contains("# Commandstats"));
    assert!(info(&mut c, "everything").contains("# Commandstats"));
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Reply::Simple("OK".into()));
    assert!(!info(&mut c, "errorstats").contains("errorstat_"));
    assert!(!info(&mut c, "commandstats").contains("cmdstat_set"));
}
