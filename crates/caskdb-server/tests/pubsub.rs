//! Pub/sub against a real redis-server: the same subscriptions, publications and mistakes on
//! both, in RESP2 (subscribe mode) and RESP3 (push frames on a normal connection); every
//! confirmation, message and error compared.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::diff::differential;

#[test]
fn channels_patterns_and_shard_channels() {
    differential(|d| {
        d.script("subscribe/publish");
        d.run(
            r#"
            @1 PUBLISH news hello
            replies 2: SUBSCRIBE news sport
            replies 1: SUBSCRIBE news
            @1 PUBLISH news hello
            read:
            @1 PUBLISH sport ""
            read:
            @1 PUBLISH weather x
            @1 PUBSUB NUMSUB news sport weather
            @1 PUBSUB NUMSUB
            @1 PUBSUB NUMPAT
            @1 unordered: PUBSUB CHANNELS
            @1 unordered: PUBSUB CHANNELS s*
            @1 PUBSUB CHANNELS nomatch*
            PING
            PING hi
            replies 1: UNSUBSCRIBE news
            @1 PUBLISH news gone
            @1 PUBLISH sport still
            read:
            replies 1: UNSUBSCRIBE nosuch
            replies 1: UNSUBSCRIBE
            replies 1: UNSUBSCRIBE
            PING
            SET k v
            GET k
            "#,
        );

        d.script("subscribe mode refuses other commands in RESP2");
        d.run(
            r#"
            replies 1: SUBSCRIBE c
            GET k
            SET k v
            MULTI
            HELLO 2
            ECHO x
            NOSUCHCOMMAND
            PING a b
            SUBSCRIBE
            replies 1: PSUBSCRIBE p*
            replies 1: PUNSUBSCRIBE p*
            replies 1: UNSUBSCRIBE c
            GET k
            "#,
        );

        d.script("patterns");
        d.run(
            r#"
            replies 6: PSUBSCRIBE h?llo h*llo h[ae]llo h[^e]llo "h\\*" *
            @1 PUBLISH hello 1
            unordered-replies 4: read:
            @1 PUBLISH hallo 2
            unordered-replies 5: read:
            @1 PUBLISH h* 3
            unordered-replies 2: read:
            @1 PUBLISH x 4
            read:
            @1 PUBSUB NUMPAT
            replies 1: SUBSCRIBE hello
            @1 PUBLISH hello 5
            unordered-replies 5: read:
            replies 1: PUNSUBSCRIBE *
            replies 1: PUNSUBSCRIBE nosuch
            replies 4: PUNSUBSCRIBE h?llo h*llo h[ae]llo h[^e]llo
            replies 1: PUNSUBSCRIBE "h\*"
            @1 PUBSUB NUMPAT
            // The last one by "all": the order of several would be the server's own.
            replies 1: PUNSUBSCRIBE
            replies 1: PUNSUBSCRIBE
            @1 PUBSUB NUMPAT
            replies 1: UNSUBSCRIBE
            "#,
        );

        d.script("binary channels and payloads");
        d.run(
            r#"
            replies 2: SUBSCRIBE "\x00\xff\r\n" ""
            replies 1: PSUBSCRIBE "\x00*"
            @1 PUBLISH "\x00\xff\r\n" "a\x00b"
            unordered-replies 2: read:
            @1 PUBLISH "" "empty channel"
            read:
            @1 unordered: PUBSUB CHANNELS
            replies 2: UNSUBSCRIBE "\x00\xff\r\n" ""
            replies 1: PUNSUBSCRIBE "\x00*"
            "#,
        );

        d.script("shard channels");
        d.run(
            r#"
            replies 2: SSUBSCRIBE s1 s2
            replies 1: SUBSCRIBE c1
            @1 SPUBLISH s1 m
            read:
            @1 PUBLISH s1 not-shard
            @1 PUBSUB SHARDNUMSUB s1 s2 s3
            @1 unordered: PUBSUB SHARDCHANNELS
            @1 PUBSUB SHARDCHANNELS s1*
            @1 PUBSUB NUMSUB s1
            replies 1: SUNSUBSCRIBE s1
            replies 1: SUNSUBSCRIBE
            replies 1: SUNSUBSCRIBE
            replies 1: UNSUBSCRIBE
            "#,
        );

        d.script("unsubscribing without subscriptions");
        d.run(
            r#"
            replies 2: UNSUBSCRIBE a b
            replies 1: UNSUBSCRIBE
            replies 3: PUNSUBSCRIBE p* q* r*
            replies 1: SUNSUBSCRIBE s
            PING
            "#,
        );

        d.script("errors");
        d.run(
            r#"
            PUBLISH
            PUBLISH a
            PUBLISH a b c
            SPUBLISH a
            PUBSUB
            PUBSUB NOSUCH
            PUBSUB NUMPAT x
            PUBSUB CHANNELS a b
            SUBSCRIBE
            PSUBSCRIBE
            SSUBSCRIBE
            PUBSUB HELP
            "#,
        );

        d.script("reset leaves subscribe mode");
        d.run(
            r#"
            replies 2: SUBSCRIBE a b
            replies 1: PSUBSCRIBE c*
            RESET
            @1 PUBLISH a x
            @1 PUBSUB NUMPAT
            PING
            GET k
            "#,
        );
    });
}

/// A subscriber that does not read is closed once its queued messages pass the pubsub output
/// limit; one that reads gets every message, and the publisher is not slowed by either.
#[test]
fn a_subscriber_that_does_not_read_is_closed_at_its_limit() {
    use common::Reply;
    use std::io::Read;
    let srv = common::start_fresh();
    let mut admin = srv.raw();
    assert_eq!(
        admin.cmd(&[
            "CONFIG",
            "SET",
            "client-output-buffer-limit",
            "pubsub 1mb 256kb 60"
        ]),
        Reply::Simple("OK".into())
    );
    let mut stalled = srv.raw();
    assert!(matches!(
        stalled.cmd(&["SUBSCRIBE", "flood"]),
        Reply::Array(_)
    ));
    let mut reader = srv.raw();
    assert!(matches!(
        reader.cmd(&["SUBSCRIBE", "flood"]),
        Reply::Array(_)
    ));
    const N: usize = 1000;
    let payload = "x".repeat(64 * 1024);
    // The reader keeps up: the publisher waits for it to have each message before the next.
    let (ack, acked) = std::sync::mpsc::channel();
    let reading = std::thread::spawn(move || {
        for i in 0..N {
            let Reply::Array(m) = reader.read() else {
                panic!("message {i} is not an array")
            };
            assert_eq!(m[2], Reply::Bulk(vec![b'x'; 64 * 1024]), "message {i}");
            ack.send(()).unwrap();
        }
    });
    let mut publisher = srv.raw();
    for _ in 0..N {
        let Reply::Int(n) = publisher.cmd(&["PUBLISH", "flood", &payload]) else {
            panic!("PUBLISH did not answer with an integer")
        };
        assert!(n <= 2);
        acked.recv().expect("the reader got the message");
    }
    reading
        .join()
        .expect("the reading subscriber got every message");
    // The stalled one was cut off: reading now finds the end of the stream before all the
    // messages (64 MB were published; the limit is 1 MB beyond what the sockets hold).
    let mut got = Vec::new();
    stalled
        .stream
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    stalled
        .stream
        .read_to_end(&mut got)
        .expect("the server closed the stalled subscriber (no timeout)");
    assert!(
        got.len() < N * 64 * 1024,
        "the stalled subscriber got all {} bytes",
        got.len()
    );
    let info = admin.cmd(&["INFO", "stats"]);
    let Reply::Bulk(info) = info else {
        panic!("INFO: {info:?}")
    };
    let info = String::from_utf8(info).unwrap();
    assert!(
        info.contains("client_output_buffer_limit_disconnections:1\r\n"),
        "{info}"
    );
}

/// CLIENT INFO tells the protocol, the subscriptions and the last command as Redis does.
#[test]
fn client_info_reports_protocol_subscriptions_and_command() {
    use common::Reply;
    let srv = common::start_fresh();
    let mut c = srv.raw();
    let info = |c: &mut common::Raw| match c.cmd(&["CLIENT", "INFO"]) {
        Reply::Verbatim(s) => s,
        Reply::Bulk(b) => String::from_utf8(b).unwrap(),
        other => panic!("CLIENT INFO: {other:?}"),
    };
    let line = info(&mut c);
    for field in [
        " resp=2",
        " sub=0 psub=0 ssub=0",
        " flags=N ",
        " cmd=client|info ",
    ] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert!(matches!(c.cmd(&["HELLO", "3"]), Reply::Map(_)));
    c.send(&["SUBSCRIBE", "a", "b"]);
    for _ in 0..2 {
        assert!(matches!(c.read(), Reply::Push(_)));
    }
    assert!(matches!(c.cmd(&["PSUBSCRIBE", "p*"]), Reply::Push(_)));
    assert!(matches!(c.cmd(&["SSUBSCRIBE", "s"]), Reply::Push(_)));
    let line = info(&mut c);
    for field in [" resp=3", " sub=2 psub=1 ssub=1", " flags=P "] {
        assert!(line.contains(field), "{field} in {line}");
    }
    assert_eq!(c.cmd(&["MULTI"]), Reply::Simple("OK".into()));
    assert_eq!(c.cmd(&["PING"]), Reply::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["CLIENT", "INFO"]), Reply::Simple("QUEUED".into()));
    assert_eq!(c.cmd(&["DISCARD"]), Reply::Simple("OK".into()));
    let Reply::Verbatim(list) = c.cmd(&["CLIENT", "LIST"]) else {
        panic!("CLIENT LIST")
    };
    assert!(list.contains(" flags=P "), "{list}");
    assert!(list.contains(" multi=-1 "), "{list}");
}
