#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Pipelined requests against redis-server (RESP2 and RESP3), sent in one write so that the
//! server reads them together: caskdb runs consecutive plain writes of a pipeline as one group
//! in one engine transaction, and each must still answer, fail and serve blocked clients as
//! it does alone, in order with the requests around it.

mod common;

use common::diff::{Diff, differential};
use common::{Reply, encode_bytes};

/// Sends `script`'s lines (one command each, as `Diff::run` writes them) to both servers in
/// one write each, then reads and compares every reply in order.
fn pipeline(d: &mut Diff, script: &str) {
    let cmds: Vec<Vec<Vec<u8>>> = script
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| common::args::split_args(l.as_bytes()).unwrap())
        .collect();
    let mut bytes = Vec::new();
    for c in &cmds {
        let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
        bytes.extend(encode_bytes(&args));
    }
    let (redis, cask) = d.conn(0);
    redis.send_bytes(&bytes);
    cask.send_bytes(&bytes);
    let replies: Vec<(Reply, Reply)> = cmds.iter().map(|_| (redis.read(), cask.read())).collect();
    for (c, (r, k)) in cmds.iter().zip(replies) {
        if r != k {
            let args: Vec<&[u8]> = c.iter().map(Vec::as_slice).collect();
            d.mismatch(0, &args, &r, &k);
        }
    }
}

#[test]
fn pipelined_writes_answer_as_alone() {
    differential(|d| {
        d.script("pipelined writes");
        pipeline(
            d,
            r#"
            SET a 1
            INCR a
            INCRBY a 10
            GET a
            INCR a
            LPUSH l x y z
            LPOP l
            RPOP l
            INCR l
            SET a
            INCR a
            SADD s m1 m2
            SREM s m1 nope
            HSET h f 1 g 2
            HINCRBY h f 5
            HINCRBY h g x
            HDEL h g
            ZADD z 1 one 2 two 3 three
            ZPOPMIN z
            ZPOPMAX z 1
            ZINCRBY z 5 one
            ZADD z nan bad
            MULTI
            SET inmulti 1
            INCR inmulti
            EXEC
            SET b 5
            APPEND b 67
            SETRANGE b 1 x
            SETBIT b 7 1
            MSET k1 v1 k2 v2
            MSETNX k1 x k3 y
            PFADD hll a b c
            XADD st 1-0 f v
            XADD st 1-0 f v
            XADD st 2-0 f v
            EXPIRE b 100
            TTL b
            PERSIST b
            DEL a b k1 nothere
            UNLINK k2
            SETNX k3 z
            SETEX e 100 v
            GETRANGE b 0 -1
            INCRBYFLOAT f 1.5
            INCRBYFLOAT f x
            LSET l 0 q
            LSET nolist 0 q
            LRANGE l 0 -1
            HGETALL h
            ZRANGE z 0 -1 WITHSCORES
            SMEMBERS s
            XLEN st
            PFCOUNT hll
            "#,
        );
        // The same keys read alone afterwards.
        d.run(
            "MGET a b k1 k2 k3 f e
            LRANGE l 0 -1",
        );
    });
}

/// A client blocked in BLPOP is served after the push that fed it, inside a pipelined group
/// of pushes: it gets the first element, and the next push sees the list it left.
#[test]
fn a_blocked_client_is_served_after_the_push_that_fed_it() {
    differential(|d| {
        d.script("pipelined pushes and a blocked client");
        d.run(
            "@1 send: BLPOP q 0
            blocked 1:",
        );
        pipeline(
            d,
            "RPUSH q a
            RPUSH q b
            RPUSH q c
            LLEN q",
        );
        d.run(
            "@1 read:
            LRANGE q 0 -1",
        );
    });
}

// ---------------------------------------------------------------------------------------------
// kill -9.

const CHILD_DIR_ENV: &str = "CASKDB_PIPELINES_CHILD_DIR";

/// The server process the crash test kills; returns at once without its environment variable.
#[test]
#[ignore = "not a test on its own: the server process that the crash test starts and kills"]
fn pipelines_child_server() {
    common::child::serve_always_in(CHILD_DIR_ENV);
}

/// kill -9 under `appendfsync always` while two clients pipeline RPUSHes and INCRs, 16 at a
/// time (run as groups): after the restart, every push whose reply came back is in its list,
/// once and in order, with at most the pushes of the batch in flight after it; every counter
/// is at least its last acknowledged value and at most that plus its batch in flight.
#[test]
fn kill_9_loses_no_acknowledged_pipelined_write() {
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    const BATCH: usize = 16;
    let dir = tempfile::tempdir().unwrap();
    let env = [(CHILD_DIR_ENV, dir.path().as_os_str())];
    let srv = common::child::ServerProcess::spawn(
        "pipelines_child_server",
        &env,
        std::time::Duration::from_secs(60),
    );
    let acked = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..2)
        .map(|n| {
            let (addr, acked) = (srv.addr, acked.clone());
            std::thread::spawn(move || {
                let mut c = common::Raw::connect(addr);
                let (list, counter) = (format!("q{n}"), format!("n{n}"));
                // (pushed and acknowledged, the last counter value acknowledged, in flight)
                let mut pushed: Vec<String> = Vec::new();
                let mut count = 0i64;
                for batch in 0.. {
                    let mut bytes = Vec::new();
                    let values: Vec<String> =
                        (0..BATCH / 2).map(|i| format!("{n}-{batch}-{i}")).collect();
                    for v in &values {
                        bytes.extend(common::encode(&["RPUSH", &list, v]));
                        bytes.extend(common::encode(&["INCR", &counter]));
                    }
                    if c.stream.write_all(&bytes).is_err() {
                        return (pushed, count, values);
                    }
                    for v in &values {
                        let Some(pushed_reply) = c.try_read() else {
                            return (pushed, count, values);
                        };
                        assert!(matches!(pushed_reply, Reply::Int(_)), "{pushed_reply:?}");
                        pushed.push(v.clone());
                        let Some(Reply::Int(n)) = c.try_read() else {
                            return (pushed, count, values);
                        };
                        assert_eq!(n, count + 1, "INCR {counter}");
                        count = n;
                        acked.fetch_add(1, Ordering::SeqCst);
                    }
                }
                unreachable!()
            })
        })
        .collect();
    common::wait_for(
        "1,000 acknowledged pushes",
        std::time::Duration::from_secs(60),
        || (acked.load(Ordering::SeqCst) >= 1000).then_some(()),
    );
    srv.kill();
    let seen: Vec<(Vec<String>, i64, Vec<String>)> =
        writers.into_iter().map(|t| t.join().unwrap()).collect();
    let srv = common::child::ServerProcess::spawn(
        "pipelines_child_server",
        &env,
        std::time::Duration::from_secs(60),
    );
    let mut c = srv.raw();
    for (n, (pushed, count, in_flight)) in seen.iter().enumerate() {
        let Reply::Array(items) = c.cmd(&["LRANGE", &format!("q{n}"), "0", "-1"]) else {
            panic!("LRANGE is an array");
        };
        let items: Vec<String> = items
            .into_iter()
            .map(|r| match r {
                Reply::Bulk(b) => String::from_utf8(b).unwrap(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert!(
            items.len() >= pushed.len() && items[..pushed.len()] == pushed[..],
            "q{n}: {} acknowledged pushes, {} back",
            pushed.len(),
            items.len()
        );
        let extra = &items[pushed.len()..];
        assert!(
            extra.len() <= in_flight.len() && in_flight.iter().zip(extra).all(|(a, b)| a == b),
            "q{n}: {extra:?} past the acknowledged pushes, in flight {in_flight:?}"
        );
        let got = match c.cmd(&["GET", &format!("n{n}")]) {
            Reply::Bulk(b) => String::from_utf8(b).unwrap().parse::<i64>().unwrap(),
            other => panic!("{other:?}"),
        };
        assert!(
            (*count..=count + in_flight.len() as i64).contains(&got),
            "n{n}: {got}, acknowledged {count}"
        );
    }
    drop(c);
    srv.stop(std::time::Duration::from_secs(60));
}
