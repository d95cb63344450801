#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! SWAPDB against redis-server (RESP2 and RESP3): contents, errors, WATCH and blocked clients;
//! that a swap survives `kill -9` and a restart (it is one record, the database map); that the
//! command line reads the swapped databases; and RANDOMKEY's uniformity.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::child::ServerProcess;
use common::diff::differential;
use common::{Raw, Reply};

#[test]
fn swapdb_like_redis() {
    differential(|d| {
        d.script("swapdb");
        d.run(
            r"
            SET a db0
            RPUSH l x y
            HSET h f v
            EXPIRE h 1000
            SELECT 1
            SET a db1
            SADD s m n
            SELECT 0
            SWAPDB 0 1
            GET a
            TYPE s
            TYPE l
            unordered: SMEMBERS s
            DBSIZE
            TTL h
            SELECT 1
            GET a
            LRANGE l 0 -1
            HGETALL h
            TTL h
            DBSIZE
            SWAPDB 1 1
            SWAPDB 1 0
            GET a
            SWAPDB 0 15
            GET a
            SELECT 15
            GET a
            SWAPDB 15 0
            SWAPDB x 1
            SWAPDB 1 x
            SWAPDB 0 16
            SWAPDB 16 0
            SWAPDB -1 0
            SWAPDB 99999999999 0
            SWAPDB 0 99999999999
            SWAPDB 0
            SWAPDB 0 1 2
            MULTI
            SWAPDB 0 1
            GET a
            EXEC
            ",
        );
        d.script("swapdb wakes blocked clients and touches watched keys");
        d.run(
            r"
            @1 send: BLPOP q 0
            blocked 1:
            SELECT 1
            RPUSH q v
            SELECT 0
            SWAPDB 0 1
            @1 read:
            LRANGE q 0 -1
            SELECT 1
            SET w1 x
            SELECT 0
            @1 WATCH w1
            @1 MULTI
            @1 SET after 1
            SWAPDB 0 1
            @1 EXEC
            @1 WATCH nowhere
            @1 MULTI
            @1 SET after 2
            SWAPDB 0 1
            @1 EXEC
            @1 GET after
            ",
        );
    });
}

#[test]
#[ignore = "not a test on its own: the server process that the crash test starts and kills"]
fn swapdb_child_server() {
    common::child::serve_always_in("CASKDB_SWAPDB_CHILD_DIR");
}

#[test]
fn a_swap_survives_kill_9_and_the_cli_reads_the_swapped_databases() {
    const DEADLINE: Duration = Duration::from_secs(30);
    let dir = tempfile::tempdir().unwrap();
    let env = [("CASKDB_SWAPDB_CHILD_DIR", dir.path().as_os_str())];
    let srv = ServerProcess::spawn("swapdb_child_server", &env, DEADLINE);
    let mut c = srv.raw();
    c.cmd(&["SET", "k", "zero"]);
    c.cmd(&["SELECT", "3"]);
    c.cmd(&["SET", "k", "three"]);
    c.cmd(&["SADD", "s", "member"]);
    assert_eq!(c.cmd(&["SWAPDB", "0", "3"]), Reply::Simple("OK".into()));
    // Acknowledged under `appendfsync always`: on disk.
    srv.kill();

    let srv = ServerProcess::spawn("swapdb_child_server", &env, DEADLINE);
    let mut c = srv.raw();
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("three"));
    assert_eq!(
        c.cmd(&["SMEMBERS", "s"]),
        Reply::Array(vec![Reply::bulk("member")])
    );
    c.cmd(&["SELECT", "3"]);
    assert_eq!(c.cmd(&["GET", "k"]), Reply::bulk("zero"));
    srv.stop(DEADLINE);

    let db = caskdb::Db::open(dir.path()).unwrap();
    let get = |i| match caskdb_server::direct::get(&db, i, b"k").unwrap() {
        Some(caskdb_server::direct::Value::String(v)) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(&get(0)[..], b"three");
    assert_eq!(&get(3)[..], b"zero");
}

#[test]
fn randomkey_is_uniform_however_keys_are_spread() {
    let srv = common::start_fresh();
    let mut c = Raw::connect(srv.addr);
    // Names far apart and close together: a pick by a random point in the key space would
    // favour the keys after the large gaps.
    let keys = [
        "a",
        "b",
        "c",
        "ca",
        "cb",
        "m",
        "zz",
        "zzz",
        "\u{7f}",
        "\u{7f}\u{7f}",
    ];
    for k in keys {
        c.cmd(&["SET", k, "v"]);
    }
    let mut seen: HashMap<Vec<u8>, u32> = HashMap::new();
    const DRAWS: u32 = 3000;
    for _ in 0..DRAWS {
        match c.cmd(&["RANDOMKEY"]) {
            Reply::Bulk(k) => *seen.entry(k).or_default() += 1,
            other => panic!("{other:?}"),
        }
    }
    // 300 expected for each; below 150 has a probability under 1e-20 when uniform.
    for k in keys {
        let n = seen.get(k.as_bytes()).copied().unwrap_or(0);
        assert!(n >= 150, "{k:?} drawn {n} times of {DRAWS}: {seen:?}");
    }
}
