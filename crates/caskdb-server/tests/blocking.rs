//! Blocking commands (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP)
//! and LMPOP/ZMPOP: differential scripts against redis-server in both protocols (what is there
//! at once, timeouts, errors, MULTI, clients served in FIFO order by pushes, moves, renames and
//! transactions), then caskdb-only checks (CLIENT UNBLOCK, a client gone mid-wait, kill -9).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::diff::differential;

#[test]
fn immediate_replies_timeouts_and_errors() {
    differential(|d| {
        d.script("lists at hand");
        d.run(
            r#"
            RPUSH l a b c d e
            BLPOP l 0
            BRPOP l 0
            BLPOP nokey l 0
            BRPOP nokey1 nokey2 l 1
            BLPOP nokey 0.01
            BRPOP nokey1 nokey2 0.01
            BLMOVE l dst LEFT RIGHT 0
            BLMOVE nokey dst LEFT RIGHT 0.01
            BRPOPLPUSH dst l 0
            BRPOPLPUSH nokey l 0.01
            LRANGE l 0 -1
            BLMPOP 0.01 2 nokey l LEFT COUNT 5
            EXISTS l
            BLMPOP 0.01 1 l RIGHT
            RPUSH l 1 2 3
            LMPOP 1 l RIGHT
            LMPOP 2 nokey l LEFT COUNT 10
            LMPOP 1 l LEFT
            "#,
        );

        d.script("sorted sets at hand");
        d.run(
            r#"
            ZADD z 1 a 2 b 3 c 4 d 1.5 e
            BZPOPMIN z 0
            BZPOPMAX z 0
            BZPOPMIN nokey z 0
            BZPOPMIN nokey 0.01
            BZPOPMAX nokey 0.01
            BZMPOP 0.01 2 nokey z MIN COUNT 1
            BZMPOP 0.01 1 z MAX COUNT 10
            BZMPOP 0.01 1 z MAX
            ZADD z 1 a 2 b
            ZMPOP 1 z MIN
            ZMPOP 2 nokey z MAX COUNT 3
            ZMPOP 1 z MIN
            "#,
        );

        d.script("errors");
        d.run(
            r#"
            SET s x
            ZADD z 1 a
            RPUSH l a
            BLPOP s 0
            BLPOP nokey s 0
            BRPOP z 0
            BZPOPMIN l 0
            BZPOPMIN s 0
            BLMOVE s d LEFT LEFT 0
            BLMOVE l s LEFT LEFT 0
            LRANGE l 0 -1
            BLPOP l -1
            BLPOP l abc
            BLPOP l inf
            BLPOP l nan
            BLPOP l ""
            BZPOPMIN z -0.5
            BLMOVE l d UP LEFT 0
            BLMOVE l d LEFT LEFT x
            BLMPOP 0.01 0 l LEFT
            BLMPOP 0.01 -1 l LEFT
            BLMPOP 0.01 1 l UP
            BLMPOP 0.01 1 l LEFT COUNT 0
            BLMPOP 0.01 1 l LEFT COUNT -1
            BLMPOP 0.01 1 l LEFT COUNT
            BLMPOP 0.01 1 l LEFT LIMIT 1
            BLMPOP 0.01 2 l LEFT
            BLMPOP 0.01 x l LEFT
            BLMPOP x 1 l LEFT
            BZMPOP 0.01 1 z UP
            BZMPOP 0.01 1 s MIN
            LMPOP 1 s LEFT
            ZMPOP 1 l MIN
            LMPOP 0 l LEFT
            ZMPOP 1 z MIN COUNT 0
            BLPOP
            BLPOP k
            BRPOPLPUSH a b
            BZMPOP 0.01 1 z
            LMPOP 1 l
            "#,
        );

        d.script("inside MULTI a blocking command does not block");
        d.run(
            r#"
            MULTI
            BLPOP nokey 0
            BRPOP nokey 10
            BLMOVE nokey d LEFT LEFT 0
            BRPOPLPUSH nokey d 0
            BLMPOP 0 1 nokey LEFT
            BZPOPMIN nokey 0
            BZMPOP 0 1 nokey MAX
            RPUSH l a
            BLPOP l 0
            EXEC
            "#,
        );
    });
}

#[test]
fn blocked_clients_are_served_in_order() {
    differential(|d| {
        d.script("one push serves one client, in the order they blocked");
        d.run(
            r#"
            @1 send: BLPOP q 0
            blocked 1:
            @2 send: BLPOP q 0
            blocked 2:
            @3 send: BRPOP other q 0
            blocked 3:
            RPUSH q a
            @1 read:
            blocked 2:
            RPUSH q b c
            @2 read:
            @3 read:
            blocked 0:
            LRANGE q 0 -1
            EXISTS q
            "#,
        );

        d.script("a client blocked on several keys is served by the first that fills");
        d.run(
            r#"
            @1 send: BLPOP a b c 0
            blocked 1:
            RPUSH c x
            @1 read:
            @1 send: BRPOP a b 0
            blocked 1:
            LPUSH b y z
            @1 read:
            LRANGE b 0 -1
            "#,
        );

        d.script("served by LMOVE, RENAME, MULTI/EXEC, and a chain of BLMOVEs");
        d.run(
            r#"
            RPUSH src e1 e2
            @1 send: BLPOP q 0
            blocked 1:
            LMOVE src q LEFT LEFT
            @1 read:
            @1 send: BLPOP q 0
            blocked 1:
            RPUSH tmp t1 t2
            RENAME tmp q
            @1 read:
            LRANGE q 0 -1
            DEL q
            @1 send: BLPOP q 0
            blocked 1:
            MULTI
            RPUSH q m1
            RPUSH q m2
            LPOP q
            EXEC
            @1 read:
            EXISTS q
            @1 send: BLMOVE a b RIGHT LEFT 0
            blocked 1:
            @2 send: BLPOP b 0
            blocked 2:
            RPUSH a chained
            @1 read:
            @2 read:
            EXISTS a b
            @1 send: BRPOPLPUSH a b 0
            blocked 1:
            LPUSH a v
            @1 read:
            LRANGE b 0 -1
            "#,
        );

        d.script("sorted sets");
        d.run(
            r#"
            @1 send: BZPOPMIN z 0
            blocked 1:
            @2 send: BZPOPMAX z 0
            blocked 2:
            ZADD z 5 a 3 b 9 c
            @1 read:
            @2 read:
            ZRANGE z 0 -1 WITHSCORES
            @1 send: BZMPOP 0 2 y w MAX COUNT 5
            blocked 1:
            ZADD y 1 m 2 n
            @1 read:
            "#,
        );

        d.script("a type change or an empty push does not serve");
        d.run(
            r#"
            @1 send: BLPOP k 0.5
            blocked 1:
            SET k string
            LPUSHX k x
            DEL k
            RPUSH k finally
            @1 read:
            @1 send: BLPOP k2 0.05
            @1 read:
            "#,
        );

        d.script("a key filled again while serving is served again");
        d.run(
            r#"
            @1 send: BLMOVE a b RIGHT LEFT 0
            blocked 1:
            @3 send: BLPOP a 0
            blocked 2:
            @2 send: BLMOVE b a RIGHT LEFT 0
            blocked 3:
            LPUSH a x
            @1 read:
            @2 read:
            @3 read:
            blocked 0:
            EXISTS a b
            "#,
        );

        d.script("clients waiting for the other type are skipped, not in the way");
        d.run(
            r#"
            @1 send: BZPOPMIN k 0
            blocked 1:
            @2 send: BLPOP k 0
            blocked 2:
            LPUSH k x
            @2 read:
            blocked 1:
            ZADD k 1 m
            @1 read:
            "#,
        );

        d.script("a client is served from the key that filled");
        d.run(
            r#"
            @1 send: BLPOP a 0
            blocked 1:
            @2 send: BLPOP a b 0
            blocked 2:
            MULTI
            LPUSH b x
            LPUSH a y
            EXEC
            @2 read:
            @1 read:
            @1 send: BLPOP a b 0
            blocked 1:
            SET a foo
            LPUSH b x
            @1 read:
            @1 send: BLMPOP 0 2 c b RIGHT COUNT 2
            blocked 1:
            RPUSH b 1 2 3
            @1 read:
            @1 send: BZMPOP 0 3 y z w MIN COUNT 2
            blocked 1:
            ZADD w 1 p 2 q 3 r
            @1 read:
            "#,
        );

        d.script("CLIENT LIST shows the blocked flag");
        d.run(
            r#"
            @1 send: BLPOP k 0
            blocked 1:
            RPUSH k v
            @1 read:
            "#,
        );
    });
}

// ---------------------------------------------------------------------------------------------
// caskdb only: client ids, disconnections and crashes differ between servers.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Reply;
use common::child::ServerProcess;

const DEADLINE: Duration = Duration::from_secs(30);

/// Polls `f` until it returns `Some`, for at most [`DEADLINE`].
fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    common::wait_for(what, DEADLINE, f)
}

#[test]
fn client_unblock_client_list_and_a_client_gone_mid_wait() {
    let srv = common::start_fresh();
    let mut c = srv.raw();
    let mut b = srv.raw();
    let Reply::Int(id) = b.cmd(&["CLIENT", "ID"]) else {
        panic!("CLIENT ID")
    };
    let id = id.to_string();
    b.send(&["BLPOP", "q", "0"]);
    common::wait_blocked(&mut c, 1, DEADLINE);
    let Reply::Bulk(list) = c.cmd(&["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST")
    };
    let list = String::from_utf8(list).unwrap();
    let line = list
        .lines()
        .find(|l| l.starts_with(&format!("id={id} ")))
        .unwrap();
    assert!(line.contains(" flags=b "), "{line}");
    assert!(line.contains(" cmd=blpop "), "{line}");
    // TIMEOUT: the timeout's reply.
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "TIMEOUT"]), Reply::Int(1));
    assert_eq!(b.read(), Reply::NilArray);
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id]), Reply::Int(0));
    // ERROR: Redis's error.
    b.send(&["BLMOVE", "q", "d", "LEFT", "LEFT", "0"]);
    common::wait_blocked(&mut c, 1, DEADLINE);
    assert_eq!(c.cmd(&["CLIENT", "UNBLOCK", &id, "ERROR"]), Reply::Int(1));
    assert_eq!(
        b.read(),
        Reply::Error("UNBLOCKED client unblocked via CLIENT UNBLOCK".into())
    );
    // The connection goes on as usual.
    assert_eq!(b.cmd(&["PING"]), Reply::Simple("PONG".into()));
    // A client that leaves while blocked takes nothing: the next push stays in the list.
    b.send(&["BLPOP", "q", "0"]);
    common::wait_blocked(&mut c, 1, DEADLINE);
    drop(b);
    common::wait_blocked(&mut c, 0, DEADLINE);
    assert_eq!(c.cmd(&["RPUSH", "q", "x"]), Reply::Int(1));
    assert_eq!(c.cmd(&["LLEN", "q"]), Reply::Int(1));
    // Requests pipelined behind a blocked one wait for it, then run in order.
    let mut p = srv.raw();
    p.send_bytes(&common::encode(&["BLPOP", "empty", "0"]));
    p.send_bytes(&common::encode(&["ECHO", "after"]));
    common::wait_blocked(&mut c, 1, DEADLINE);
    assert_eq!(c.cmd(&["RPUSH", "empty", "e"]), Reply::Int(1));
    assert_eq!(
        p.read(),
        Reply::Array(vec![Reply::bulk("empty"), Reply::bulk("e")])
    );
    assert_eq!(p.read(), Reply::bulk("after"));
    // A server shutting down with a client blocked stops cleanly (the drop checks it).
    p.send(&["BLPOP", "never", "0"]);
    common::wait_blocked(&mut c, 1, DEADLINE);
}

/// The server process the crash test kills; returns at once without its environment variable.
#[test]
#[ignore = "not a test on its own: the server process that the crash test starts and kills"]
fn blocking_child_server() {
    common::child::serve_always_in("CASKDB_BLOCKING_CHILD_DIR");
}

#[derive(Default)]
struct Crash {
    /// Items whose RPUSH was acknowledged.
    pushed: Vec<String>,
    /// Items a consumer received, with the consumer's number.
    popped: Vec<(usize, String)>,
}

/// kill -9 while consumers wait in BLPOP and a producer pushes, under `appendfsync always`:
/// after a restart, every acknowledged push was received by a consumer or is still in the list,
/// none twice; an element may be neither only if a consumer's BLPOP was in flight (its pop
/// committed, its reply lost with the server): at most one per consumer.
#[test]
fn kill_9_with_blocked_consumers_loses_and_repeats_nothing() {
    const CONSUMERS: usize = 3;
    let dir = tempfile::tempdir().unwrap();
    let env = [("CASKDB_BLOCKING_CHILD_DIR", dir.path().as_os_str())];
    let srv = ServerProcess::spawn("blocking_child_server", &env, DEADLINE);
    let log = Arc::new(Mutex::new(Crash::default()));
    let mut threads = Vec::new();
    for n in 0..CONSUMERS {
        let (log, addr) = (log.clone(), srv.addr);
        threads.push(std::thread::spawn(move || {
            let mut c = common::Raw::connect(addr);
            loop {
                c.send(&["BLPOP", "q", "0"]);
                let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.try_read()));
                let Ok(Some(Reply::Array(kv))) = reply else {
                    return; // the server is gone
                };
                let Reply::Bulk(v) = &kv[1] else {
                    panic!("BLPOP value")
                };
                log.lock()
                    .unwrap()
                    .popped
                    .push((n, String::from_utf8(v.clone()).unwrap()));
            }
        }));
    }
    let producer = {
        let (log, addr) = (log.clone(), srv.addr);
        std::thread::spawn(move || {
            let mut c = common::Raw::connect(addr);
            for i in 0.. {
                let item = format!("item-{i}");
                c.send(&["RPUSH", "q", &item]);
                let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| c.try_read()));
                let Ok(Some(Reply::Int(_))) = reply else {
                    return;
                };
                log.lock().unwrap().pushed.push(item);
            }
        })
    };
    wait_for("pushes and pops", || {
        let l = log.lock().unwrap();
        (l.pushed.len() >= 300 && l.popped.len() >= 100).then_some(())
    });
    srv.kill();
    producer.join().unwrap();
    for t in threads {
        t.join().unwrap();
    }
    let srv = ServerProcess::spawn("blocking_child_server", &env, DEADLINE);
    let mut c = srv.raw();
    let Reply::Array(left) = c.cmd(&["LRANGE", "q", "0", "-1"]) else {
        panic!("LRANGE")
    };
    let left: Vec<String> = left
        .into_iter()
        .map(|r| match r {
            Reply::Bulk(b) => String::from_utf8(b).unwrap(),
            other => panic!("{other:?}"),
        })
        .collect();
    let log = log.lock().unwrap();
    let mut seen = HashSet::new();
    for (_, v) in &log.popped {
        assert!(seen.insert(v.clone()), "{v} was popped twice");
    }
    for v in &left {
        assert!(
            seen.insert(v.clone()),
            "{v} was popped and is still in the list"
        );
    }
    let missing: Vec<&String> = log.pushed.iter().filter(|v| !seen.contains(*v)).collect();
    assert!(
        missing.len() <= CONSUMERS,
        "acknowledged pushes lost: {missing:?} (more than one in-flight pop per consumer)"
    );
    // The list keeps push order.
    let order = |v: &String| v["item-".len()..].parse::<u64>().unwrap();
    assert!(
        left.windows(2).all(|w| order(&w[0]) < order(&w[1])),
        "{left:?}"
    );
    eprintln!(
        "{} pushes acknowledged, {} popped, {} left, {} in doubt",
        log.pushed.len(),
        log.popped.len(),
        left.len(),
        missing.len()
    );
    drop(c);
    srv.stop(DEADLINE);
}
