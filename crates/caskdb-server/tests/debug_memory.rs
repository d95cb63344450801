#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! DEBUG and MEMORY against redis-server (RESP2 and RESP3): DEBUG refused by default and, with
//! `enable-debug-command yes` on both, the subcommands test suites use; MEMORY's errors exactly,
//! its sizes by shape (they measure different structures). And CONFIG REWRITE, and Redis
//! parameters in the config file.

mod common;

use common::diff::{differential, differential_with};
use common::{Raw, Reply};

#[test]
fn debug_is_refused_by_default() {
    differential(|d| {
        d.script("debug refused");
        d.run(
            r"
            DEBUG HELP
            DEBUG SLEEP 0
            DEBUG OBJECT k
            ",
        );
    });
}

#[test]
fn debug_subcommands_when_enabled() {
    differential_with(
        &["--enable-debug-command", "yes"],
        |c| c.redis.push(("enable-debug-command".into(), "yes".into())),
        |d| {
            d.script("debug");
            d.run(
                r"
                DEBUG
                DEBUG NOSUCH
                DEBUG JMAP
                DEBUG SLEEP 0
                DEBUG SLEEP 0.01
                DEBUG SET-ACTIVE-EXPIRE 0
                DEBUG SET-ACTIVE-EXPIRE 1
                DEBUG OBJECT nosuch
                DEBUG PROTOCOL string
                DEBUG PROTOCOL integer
                DEBUG PROTOCOL double
                DEBUG PROTOCOL bignum
                DEBUG PROTOCOL null
                DEBUG PROTOCOL array
                DEBUG PROTOCOL set
                DEBUG PROTOCOL map
                DEBUG PROTOCOL true
                DEBUG PROTOCOL false
                DEBUG PROTOCOL verbatim
                DEBUG PROTOCOL nosuch
                DEBUG ERROR BOOM something
                DEBUG LOG hello
                DEBUG CHANGE-REPL-ID
                DEBUG QUICKLIST-PACKED-THRESHOLD 100
                DEBUG DIGEST
                SET k v
                RPUSH l a b
                DEBUG RELOAD
                GET k
                LRANGE l 0 -1
                shape: DEBUG DIGEST
                shape: DEBUG DIGEST-VALUE k nosuch
                DEBUG DIGEST-VALUE
                FLUSHALL
                DEBUG DIGEST
                ",
            );
        },
    );
}

#[test]
fn debug_digest_follows_the_data_not_its_history() {
    let dir = tempfile::tempdir().unwrap();
    let srv = common::start_with(dir.path(), |c| {
        c.redis.push(("enable-debug-command".into(), "yes".into()));
    });
    let mut c = Raw::connect(srv.addr);
    let digest = |c: &mut Raw| c.cmd(&["DEBUG", "DIGEST"]);
    let empty = digest(&mut c);
    assert_eq!(empty, Reply::Simple("0".repeat(40)));
    c.cmd(&["RPUSH", "l", "a", "b"]);
    c.cmd(&["HSET", "h", "f", "v"]);
    let one = digest(&mut c);
    assert_ne!(one, empty);
    // The same list built another way: the same digest.
    c.cmd(&["DEL", "l"]);
    c.cmd(&["LPUSH", "l", "b", "x"]);
    c.cmd(&["LPOP", "l"]);
    c.cmd(&["LPUSH", "l", "a"]);
    assert_eq!(
        c.cmd(&["LRANGE", "l", "0", "-1"]),
        Reply::Array(vec![Reply::bulk("a"), Reply::bulk("b")])
    );
    assert_eq!(digest(&mut c), one);
    c.cmd(&["HSET", "h", "f", "w"]);
    assert_ne!(digest(&mut c), one);
    // SET-ACTIVE-EXPIRE 0 stops the expiry task: the key stays (hidden) until it is back on.
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Ex"]);
    c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "0"]);
    c.cmd(&["DEBUG", "SET-ACTIVE-EXPIRE", "1"]);
    // DEBUG OBJECT reports the encoding OBJECT ENCODING gives.
    c.cmd(&["SET", "n", "12"]);
    match c.cmd(&["DEBUG", "OBJECT", "n"]) {
        Reply::Simple(s) => assert!(s.contains("encoding:int"), "{s}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn memory_like_redis() {
    differential(|d| {
        d.script("memory");
        d.run(
            r"
            MEMORY
            MEMORY NOSUCH
            MEMORY HELP
            MEMORY HELP x
            MEMORY USAGE
            MEMORY USAGE nosuch
            MEMORY USAGE nosuch SAMPLES 0
            MEMORY USAGE nosuch SAMPLES -1
            MEMORY USAGE nosuch SAMPLES x
            MEMORY USAGE nosuch FOO
            MEMORY USAGE nosuch SAMPLES
            SET k v
            HSET h a 1 b 2 c 3
            RPUSH l a b c
            shape: MEMORY USAGE k
            shape: MEMORY USAGE h
            shape: MEMORY USAGE h SAMPLES 0
            shape: MEMORY USAGE l SAMPLES 2
            MEMORY USAGE k SAMPLES -1
            MEMORY STATS x
            MEMORY DOCTOR x
            MEMORY PURGE
            MEMORY PURGE x
            unchecked: MEMORY MALLOC-STATS
            ",
        );
    });
}

#[test]
fn memory_stats_has_redis_s_fields() {
    let Some(redis) = common::diff::start_redis() else {
        return;
    };
    let cask = common::start_fresh();
    let names = |addr| {
        let mut c = Raw::connect(addr);
        c.cmd(&["SET", "k", "v"]);
        match c.cmd(&["MEMORY", "STATS"]) {
            Reply::Array(items) => items
                .chunks(2)
                .map(|kv| match &kv[0] {
                    Reply::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
                    other => panic!("{other:?}"),
                })
                .collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(names(cask.addr), names(redis.addr));
    let mut c = Raw::connect(cask.addr);
    match c.cmd(&["MEMORY", "USAGE", "k"]) {
        Reply::Int(n) => assert!(n > 2, "{n}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_rewrite_keeps_the_file_and_writes_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("caskdb.toml");
    std::fs::write(
        &file,
        "# my settings\nport = 0\nmaxclients = 100\nhz = 20\nenable-debug-command = \"local\"\n",
    )
    .unwrap();
    let data = tempfile::tempdir().unwrap();
    let mut config = caskdb_server::Config::from_file(&file).unwrap();
    config.dir = data.path().to_path_buf();
    let srv = common::start_with(data.path(), move |c| *c = config.clone());
    let mut c = Raw::connect(srv.addr);
    // The file's Redis parameters took effect: DEBUG from loopback, hz in INFO.
    assert_eq!(c.cmd(&["DEBUG", "SLEEP", "0"]), Reply::Simple("OK".into()));
    assert_eq!(
        c.cmd(&["CONFIG", "GET", "hz"]),
        Reply::Array(vec![Reply::bulk("hz"), Reply::bulk("20")])
    );
    c.cmd(&["CONFIG", "SET", "maxclients", "200"]);
    c.cmd(&["CONFIG", "SET", "timeout", "30"]);
    c.cmd(&["CONFIG", "SET", "hash-max-listpack-entries", "64"]);
    assert_eq!(c.cmd(&["CONFIG", "REWRITE"]), Reply::Simple("OK".into()));
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("# my settings\n"), "{text}");
    for line in [
        "maxclients = \"200\"",
        "timeout = \"30\"",
        "hz = \"20\"",
        "hash-max-listpack-entries = \"64\"",
        "enable-debug-command = \"local\"",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} in {text}");
    }
    // What it wrote reads back as the same settings.
    let again = caskdb_server::Config::from_file(&file).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(again.maxclients, 200);
    assert_eq!(again.timeout, 30);
    assert!(
        again
            .redis
            .iter()
            .any(|(k, v)| k == "hash-max-listpack-entries" && v == "64")
    );
    assert_eq!(
        c.cmd(&["CONFIG", "REWRITE", "x"]),
        Reply::Error("ERR wrong number of arguments for 'config|rewrite' command".into())
    );
}

#[test]
fn config_rewrite_without_a_file() {
    let srv = common::start_fresh();
    let mut c = Raw::connect(srv.addr);
    assert_eq!(
        c.cmd(&["CONFIG", "REWRITE"]),
        Reply::Error("ERR The server is running without a config file".into())
    );
}
