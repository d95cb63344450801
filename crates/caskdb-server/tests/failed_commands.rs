//! A command that fails part-way has no effect: writes it staged before failing (members of a
//! collection, its metadata) are rolled back, alone or inside MULTI/EXEC.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::{Reply, start_fresh};

fn int(n: i64) -> Reply {
    Reply::Int(n)
}

fn is_error(r: &Reply, text: &str) -> bool {
    matches!(r, Reply::Error(e) if e.contains(text))
}

#[test]
fn a_command_failing_after_some_writes_leaves_nothing_behind() {
    let srv = start_fresh();
    let mut c = srv.raw();
    let big = "m".repeat(64 * 1024 + 1); // one byte over the member limit
    // New collections: the first pairs were staged before the too-large member failed.
    for cmd in [
        vec!["HSET", "h", "f1", "v1", &big, "v2"],
        vec!["SADD", "s", "a", "b", &big],
        vec!["ZADD", "z", "1", "a", "2", &big],
    ] {
        let r = c.cmd(&cmd);
        assert!(is_error(&r, "member is too large"), "{}: {r:?}", cmd[0]);
        assert_eq!(c.cmd(&["EXISTS", cmd[1]]), int(0), "{}", cmd[0]);
    }
    // An existing collection keeps its state, members and size alike.
    assert_eq!(c.cmd(&["HSET", "h", "keep", "1"]), int(1));
    let r = c.cmd(&["HSET", "h", "new", "2", &big, "3"]);
    assert!(is_error(&r, "member is too large"), "{r:?}");
    assert_eq!(c.cmd(&["HLEN", "h"]), int(1));
    assert_eq!(c.cmd(&["HGET", "h", "new"]), Reply::Nil);
    assert_eq!(
        c.cmd(&["HGETALL", "h"]),
        Reply::Array(vec![Reply::bulk("keep"), Reply::bulk("1")])
    );
}

#[test]
fn inside_exec_only_the_failed_command_is_undone() {
    let srv = start_fresh();
    let mut c = srv.raw();
    let big = "m".repeat(64 * 1024 + 1);
    assert_eq!(c.cmd(&["MULTI"]), Reply::Simple("OK".into()));
    for cmd in [
        vec!["RPUSH", "l", "a"],
        vec!["SADD", "s", "x", &big],
        vec!["SADD", "s", "y"],
        vec!["LRANGE", "l", "0", "-1"],
        vec!["SMEMBERS", "s"],
    ] {
        assert_eq!(c.cmd(&cmd), Reply::Simple("QUEUED".into()));
    }
    let Reply::Array(replies) = c.cmd(&["EXEC"]) else {
        panic!("EXEC did not return an array");
    };
    assert_eq!(replies[0], int(1));
    assert!(
        is_error(&replies[1], "member is too large"),
        "{:?}",
        replies[1]
    );
    assert_eq!(replies[2], int(1));
    assert_eq!(replies[3], Reply::Array(vec![Reply::bulk("a")]));
    assert_eq!(replies[4], Reply::Array(vec![Reply::bulk("y")]));
    assert_eq!(c.cmd(&["SCARD", "s"]), int(1));
}
