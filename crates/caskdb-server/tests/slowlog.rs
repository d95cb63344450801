//! SLOWLOG and LATENCY against a real redis-server, both protocols. With
//! `slowlog-log-slower-than 0` every command is logged, so the entries are deterministic but
//! for their ids' base, timestamps, durations and client ports: those are compared by shape.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::diff::differential;

#[test]
fn slowlog_and_latency() {
    differential(|d| {
        d.script("slowlog");
        d.run(
            r#"
            SLOWLOG RESET
            SLOWLOG LEN
            CONFIG SET slowlog-log-slower-than 0
            SET a b
            SLOWLOG LEN
            shape: SLOWLOG GET 1
            SLOWLOG GET 0
            SLOWLOG GET -2
            SLOWLOG GET abc
            SLOWLOG GET 1 2
            SLOWLOG LEN x
            SLOWLOG NOSUCH
            SLOWLOG HELP
            SLOWLOG
            CONFIG SET slowlog-max-len 2
            SET c d
            SET e f
            SLOWLOG LEN
            CONFIG SET slowlog-log-slower-than -1
            SLOWLOG RESET
            SET g h
            SLOWLOG LEN
            // Redis lists matching parameters in its dictionary's order.
            pairs: CONFIG GET slowlog-*
            "#,
        );

        d.script("latency");
        d.run(
            r#"
            LATENCY LATEST
            LATENCY HISTORY command
            LATENCY HISTORY
            LATENCY RESET
            LATENCY RESET a b
            LATENCY DOCTOR
            LATENCY LATEST x
            LATENCY HELP
            LATENCY NOSUCH
            "#,
        );
    });
}

/// What an entry holds: the arguments (cut as Redis cuts them), the client's address and name.
#[test]
fn slowlog_entries_hold_arguments_client_and_name() {
    use common::Reply;
    let srv = common::start_fresh();
    let mut c = srv.raw();
    assert_eq!(
        c.cmd(&["CONFIG", "SET", "slowlog-log-slower-than", "0"]),
        Reply::Simple("OK".into())
    );
    assert_eq!(
        c.cmd(&["CLIENT", "SETNAME", "me"]),
        Reply::Simple("OK".into())
    );
    let long = "x".repeat(200);
    let mut many = vec!["MSET"];
    for _ in 0..20 {
        many.push("k");
        many.push("v");
    }
    assert_eq!(c.cmd(&["SET", "k", &long]), Reply::Simple("OK".into()));
    assert_eq!(c.cmd(&many), Reply::Simple("OK".into()));
    let Reply::Array(entries) = c.cmd(&["SLOWLOG", "GET", "2"]) else {
        panic!("SLOWLOG GET")
    };
    let Reply::Array(mset) = &entries[0] else {
        panic!()
    };
    let Reply::Array(margs) = &mset[3] else {
        panic!()
    };
    assert_eq!(margs.len(), 32);
    assert_eq!(margs[31], Reply::bulk("... (10 more arguments)"));
    assert_eq!(mset[5], Reply::bulk("me"));
    let Reply::Bulk(addr) = &mset[4] else {
        panic!()
    };
    assert!(addr.starts_with(b"127.0.0.1:"));
    let Reply::Array(set) = &entries[1] else {
        panic!()
    };
    let Reply::Array(sargs) = &set[3] else {
        panic!()
    };
    assert_eq!(
        sargs[2],
        Reply::Bulk(format!("{}... (72 more bytes)", "x".repeat(128)).into_bytes())
    );
    let (Reply::Int(newer), Reply::Int(older)) = (&mset[0], &set[0]) else {
        panic!()
    };
    assert_eq!(*newer, older + 1);
}
