#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Client-side caching (CLIENT TRACKING, CACHING, GETREDIR, TRACKINGINFO): the options' errors
//! as a differential script (RESP2 and RESP3), and scenarios with several connections run the
//! same way on caskdb and redis-server, whose observations must agree: invalidation pushes in
//! default, OPTIN, NOLOOP and BCAST modes, a client's own writes (reply first, then the
//! push), flushes (a null), expiry, scripts, MULTI, RESP2 redirection to a
//! `__redis__:invalidate` subscriber, a broken redirection, and INFO's counters.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::diff::{differential, on_both};
use common::{Raw, Reply, wait_for};

#[test]
fn options_and_errors() {
    differential(|d| {
        d.script("tracking options");
        d.run(
            r"
            CLIENT TRACKING on prefix a
            CLIENT TRACKING on optin optout
            CLIENT TRACKING on bcast optin
            CLIENT TRACKING on bcast optout
            CLIENT TRACKING on redirect x
            CLIENT TRACKING on redirect 0
            CLIENT TRACKING on redirect -5
            CLIENT TRACKING on redirect 99999
            CLIENT TRACKING on bogus
            CLIENT TRACKING on redirect
            CLIENT TRACKING on prefix
            CLIENT TRACKING maybe
            CLIENT TRACKING maybe bcast
            CLIENT CACHING yes
            CLIENT CACHING no
            CLIENT TRACKINGINFO
            CLIENT GETREDIR
            CLIENT TRACKING on bcast prefix a prefix ab
            CLIENT TRACKING on bcast prefix ab prefix a
            CLIENT TRACKING on bcast prefix b prefix a
            CLIENT TRACKINGINFO
            CLIENT GETREDIR
            CLIENT TRACKING on bcast prefix bc
            CLIENT TRACKING on bcast prefix b
            CLIENT TRACKING on bcast prefix c
            CLIENT TRACKINGINFO
            CLIENT TRACKING on
            CLIENT TRACKING on optin
            CLIENT CACHING yes
            CLIENT TRACKING on bcast
            CLIENT TRACKINGINFO
            CLIENT TRACKING off
            CLIENT TRACKINGINFO
            CLIENT TRACKING on optin noloop
            CLIENT TRACKINGINFO
            CLIENT CACHING no
            CLIENT CACHING yes
            CLIENT TRACKINGINFO
            CLIENT CACHING maybe
            CLIENT TRACKINGINFO
            CLIENT CACHING yes
            PING
            CLIENT TRACKINGINFO
            CLIENT CACHING yes
            CLIENT GETNAME
            CLIENT TRACKINGINFO
            CLIENT TRACKING on optout
            CLIENT TRACKING on optin
            CLIENT GETREDIR
            CLIENT TRACKING off
            CLIENT TRACKING on optout
            CLIENT CACHING yes
            CLIENT CACHING no
            CLIENT TRACKINGINFO
            GET nothing
            CLIENT TRACKINGINFO
            CLIENT TRACKING on bcast
            RESET
            CLIENT TRACKINGINFO
            CLIENT GETREDIR
            ",
        );
    });
}

/// A reply as readable text: bulk strings as UTF-8.
fn show(r: &Reply) -> String {
    let list = |items: &[Reply]| items.iter().map(show).collect::<Vec<_>>().join(", ");
    match r {
        Reply::Bulk(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Reply::Array(items) => format!("[{}]", list(items)),
        Reply::Set(items) => format!("~[{}]", list(items)),
        Reply::Push(items) => format!(">[{}]", list(items)),
        Reply::Map(pairs) => format!(
            "%{{{}}}",
            pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", show(k), show(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => format!("{other:?}"),
    }
}

fn ok(r: Reply) {
    assert!(
        matches!(&r, Reply::Simple(s) if s == "OK"),
        "expected OK, got {r:?}"
    );
}

/// A RESP3 connection.
fn resp3(addr: SocketAddr) -> Raw {
    let mut c = Raw::connect(addr);
    assert!(matches!(c.cmd(&["HELLO", "3"]), Reply::Map(_)));
    c
}

/// A RESP3 connection tracking keys with these CLIENT TRACKING options.
fn tracker(addr: SocketAddr, options: &[&str]) -> Raw {
    let mut c = resp3(addr);
    let mut args = vec!["CLIENT", "TRACKING", "ON"];
    args.extend_from_slice(options);
    ok(c.cmd(&args));
    c
}

fn id(c: &mut Raw) -> String {
    match c.cmd(&["CLIENT", "ID"]) {
        Reply::Int(n) => n.to_string(),
        other => panic!("CLIENT ID: {other:?}"),
    }
}

/// What `c` received next, after `PING` is sent: pushes queued for it come first (Redis
/// writes them at once), then the PONG. Ends with `PONG`.
fn pending(c: &mut Raw) -> Vec<String> {
    c.send(&["PING"]);
    let mut seen = Vec::new();
    loop {
        let r = c.read();
        let pong = matches!(&r, Reply::Simple(s) if s == "PONG");
        seen.push(show(&r));
        if pong {
            return seen;
        }
    }
}

#[test]
fn default_mode_pushes_once_per_key_read() {
    on_both(|addr| {
        let mut seen = Vec::new();
        let mut c1 = tracker(addr, &[]);
        let mut c2 = Raw::connect(addr);
        seen.push(show(&c1.cmd(&["GET", "k"])));
        seen.push(show(&c1.cmd(&["MGET", "m1", "m2"])));
        seen.push(show(&c1.cmd(&["HGETALL", "h"])));
        // Another client's writes: one push per key read, then no more for that key.
        ok(c2.cmd(&["SET", "k", "v"]));
        seen.extend(pending(&mut c1));
        ok(c2.cmd(&["SET", "k", "v2"]));
        ok(c2.cmd(&["MSET", "m2", "x", "m1", "y", "unread", "z"]));
        seen.push(show(&c2.cmd(&["HSET", "h", "f", "v"])));
        seen.extend(pending(&mut c1));
        // A write that changes nothing invalidates nothing.
        seen.push(show(&c1.cmd(&["SMEMBERS", "s"])));
        seen.push(show(&c2.cmd(&["SREM", "s", "nope"])));
        seen.extend(pending(&mut c1));
        // Its own write: the reply first, then the push.
        seen.push(show(&c1.cmd(&["GET", "k"])));
        c1.send(&["SET", "k", "mine"]);
        seen.push(show(&c1.read()));
        seen.push(show(&c1.read()));
        // A failed write changes nothing.
        seen.push(show(&c1.cmd(&["GET", "k"])));
        seen.push(show(&c2.cmd(&["LPUSH", "k", "x"])));
        seen.extend(pending(&mut c1));
        // Keys are tracked by name, whatever the database.
        ok(c2.cmd(&["SELECT", "3"]));
        ok(c2.cmd(&["SET", "k", "elsewhere"]));
        seen.extend(pending(&mut c1));
        // Deleted, renamed, expired by EXPIRE 0: all changes.
        seen.push(show(&c1.cmd(&["TTL", "a"])));
        seen.push(show(&c1.cmd(&["EXISTS", "b"])));
        ok(c2.cmd(&["SELECT", "0"]));
        ok(c2.cmd(&["MSET", "a", "1", "b", "2"]));
        seen.extend(pending(&mut c1));
        seen.push(show(&c1.cmd(&["GET", "a"])));
        seen.push(show(&c1.cmd(&["GET", "b"])));
        ok(c2.cmd(&["RENAME", "a", "b"]));
        seen.extend(pending(&mut c1));
        // OFF: nothing more.
        seen.push(show(&c1.cmd(&["GET", "b"])));
        ok(c1.cmd(&["CLIENT", "TRACKING", "OFF"]));
        ok(c2.cmd(&["SET", "b", "3"]));
        seen.extend(pending(&mut c1));
        seen
    });
}

#[test]
fn noloop_optin_optout_multi_and_scripts() {
    on_both(|addr| {
        let mut seen = Vec::new();
        let mut c2 = Raw::connect(addr);

        let mut c1 = tracker(addr, &["NOLOOP"]);
        seen.push(show(&c1.cmd(&["GET", "k"])));
        ok(c1.cmd(&["SET", "k", "own"]));
        seen.extend(pending(&mut c1));
        seen.push(show(&c1.cmd(&["GET", "k"])));
        ok(c2.cmd(&["SET", "k", "theirs"]));
        seen.extend(pending(&mut c1));

        let mut c1 = tracker(addr, &["OPTIN"]);
        seen.push(show(&c1.cmd(&["GET", "a"])));
        ok(c1.cmd(&["CLIENT", "CACHING", "YES"]));
        seen.push(show(&c1.cmd(&["GET", "b"])));
        seen.push(show(&c1.cmd(&["GET", "c"])));
        ok(c2.cmd(&["MSET", "a", "1", "b", "1", "c", "1"]));
        seen.extend(pending(&mut c1));
        // CACHING YES covers a whole MULTI.
        ok(c1.cmd(&["CLIENT", "CACHING", "YES"]));
        ok(c1.cmd(&["MULTI"]));
        seen.push(show(&c1.cmd(&["GET", "a"])));
        seen.push(show(&c1.cmd(&["GET", "c"])));
        seen.push(show(&c1.cmd(&["EXEC"])));
        ok(c2.cmd(&["MSET", "a", "2", "b", "2", "c", "2"]));
        seen.extend(pending(&mut c1));

        let mut c1 = tracker(addr, &["OPTOUT"]);
        ok(c1.cmd(&["CLIENT", "CACHING", "NO"]));
        seen.push(show(&c1.cmd(&["GET", "a"])));
        seen.push(show(&c1.cmd(&["GET", "b"])));
        ok(c2.cmd(&["MSET", "a", "3", "b", "3"]));
        seen.extend(pending(&mut c1));

        // A script's reads are its caller's.
        let mut c1 = tracker(addr, &[]);
        seen.push(format!(
            "{:?}",
            c1.cmd(&["EVAL", "return redis.call('get', KEYS[1])", "1", "s"])
        ));
        seen.push(format!(
            "{:?}",
            c1.cmd(&["EVAL_RO", "return redis.call('exists', KEYS[1])", "1", "t"])
        ));
        ok(c2.cmd(&["MSET", "s", "1", "t", "1"]));
        seen.extend(pending(&mut c1));
        // And a script's writes are changes like any other.
        seen.push(show(&c1.cmd(&["GET", "u"])));
        seen.push(format!(
            "{:?}",
            c2.cmd(&["EVAL", "return redis.call('set', KEYS[1], 'x')", "1", "u"])
        ));
        seen.extend(pending(&mut c1));
        seen
    });
}

#[test]
fn bcast_prefixes() {
    on_both(|addr| {
        let mut seen = Vec::new();
        let mut c2 = Raw::connect(addr);
        let mut c1 = tracker(addr, &["BCAST", "PREFIX", "user:", "PREFIX", "obj:"]);
        // No read needed: every change under a prefix is sent, a message per prefix.
        ok(c2.cmd(&[
            "MSET", "user:2", "a", "obj:1", "b", "other", "c", "user:1", "d",
        ]));
        seen.extend(pending(&mut c1));
        seen.push(show(&c2.cmd(&["DEL", "user:1", "nothing"])));
        seen.extend(pending(&mut c1));
        // Its own changes too, unless NOLOOP.
        ok(c1.cmd(&["SET", "obj:2", "x"]));
        seen.extend(pending(&mut c1));
        let mut c3 = tracker(addr, &["BCAST", "NOLOOP"]);
        ok(c3.cmd(&["SET", "obj:3", "x"]));
        seen.extend(pending(&mut c3));
        ok(c2.cmd(&["SET", "any", "x"]));
        seen.extend(pending(&mut c3));
        seen.extend(pending(&mut c1));
        seen.push(show(&c1.cmd(&["CLIENT", "TRACKINGINFO"])));
        seen
    });
}

#[test]
fn flushes_send_a_null() {
    on_both(|addr| {
        let mut seen = Vec::new();
        let mut c2 = Raw::connect(addr);
        let mut c1 = tracker(addr, &[]);
        let mut b = tracker(addr, &["BCAST"]);
        seen.push(show(&c1.cmd(&["GET", "k"])));
        ok(c2.cmd(&["FLUSHALL"]));
        seen.extend(pending(&mut c1));
        seen.extend(pending(&mut b));
        // The table is emptied: the key read before is not sent again.
        ok(c2.cmd(&["SET", "k", "v"]));
        seen.extend(pending(&mut c1));
        seen.extend(pending(&mut b));
        // Its own flush: the reply, then the null.
        c1.send(&["FLUSHDB"]);
        seen.push(show(&c1.read()));
        seen.push(show(&c1.read()));
        seen.extend(pending(&mut b));
        seen
    });
}

#[test]
fn expired_keys_are_invalidated() {
    on_both(|addr| {
        let mut c1 = tracker(addr, &[]);
        let mut c2 = Raw::connect(addr);
        ok(c2.cmd(&["SET", "k", "v", "PX", "300"]));
        let got = c1.cmd(&["GET", "k"]);
        // The key expires by itself: its end is pushed (read with the connection's timeout).
        let push = c1.read();
        vec![show(&got), show(&push)]
    });
}

#[test]
fn resp2_redirection_to_a_subscriber() {
    on_both(|addr| {
        let mut seen = Vec::new();
        let mut sink = Raw::connect(addr);
        let sink_id = id(&mut sink);
        seen.push(format!(
            "{:?}",
            sink.cmd(&["SUBSCRIBE", "__redis__:invalidate"])
        ));
        let mut c1 = Raw::connect(addr);
        ok(c1.cmd(&["CLIENT", "TRACKING", "ON", "REDIRECT", &sink_id]));
        seen.push(format!(
            "redirect is the sink: {}",
            c1.cmd(&["CLIENT", "GETREDIR"]) == Reply::Int(sink_id.parse().unwrap())
        ));
        seen.push(show(&c1.cmd(&["GET", "k"])));
        let mut c2 = Raw::connect(addr);
        ok(c2.cmd(&["SET", "k", "v"]));
        seen.push(show(&sink.read()));
        ok(c2.cmd(&["FLUSHALL"]));
        seen.push(show(&sink.read()));
        // A RESP2 tracker without redirection gets nothing (RESP2 has no pushes).
        let mut plain = Raw::connect(addr);
        ok(plain.cmd(&["CLIENT", "TRACKING", "ON"]));
        seen.push(show(&plain.cmd(&["GET", "p"])));
        ok(c2.cmd(&["SET", "p", "v"]));
        seen.push(show(&plain.cmd(&["PING"])));
        // CLIENT LIST shows the tracking flag.
        let list = match plain.cmd(&["CLIENT", "INFO"]) {
            Reply::Bulk(b) => String::from_utf8(b).unwrap(),
            other => panic!("{other:?}"),
        };
        seen.push(
            list.split(' ')
                .find(|f| f.starts_with("flags="))
                .unwrap()
                .to_string(),
        );
        seen
    });
}

#[test]
fn broken_redirection_is_reported() {
    on_both(|addr| {
        let mut seen = Vec::new();
        let mut admin = Raw::connect(addr);
        let mut sink = resp3(addr);
        let sink_id = id(&mut sink);
        let mut c1 = tracker(addr, &["REDIRECT", &sink_id]);
        seen.push(show(&c1.cmd(&["GET", "k"])));
        ok(admin.cmd(&["SET", "k", "1"]));
        // A RESP3 target gets a push.
        seen.push(show(&sink.read()));
        seen.push(show(&c1.cmd(&["GET", "k"])));
        drop(sink);
        wait_for("the sink to be gone", Duration::from_secs(10), || {
            let list = match admin.cmd(&["CLIENT", "LIST", "ID", &sink_id]) {
                Reply::Bulk(b) => b,
                other => panic!("{other:?}"),
            };
            list.is_empty().then_some(())
        });
        ok(admin.cmd(&["SET", "k", "2"]));
        // (The sink's id differs between the two servers.)
        let sink = format!("Int({sink_id})");
        let broken = pending(&mut c1)
            .into_iter()
            .map(|s| s.replace(&sink, "Int(SINK)"))
            .collect::<Vec<_>>();
        seen.extend(broken);
        let info = show(&c1.cmd(&["CLIENT", "TRACKINGINFO"]));
        seen.push(info.replace(&sink, "Int(SINK)"));
        seen
    });
}

#[test]
fn info_counts_tracking() {
    on_both(|addr| {
        let mut seen = Vec::new();
        let mut c1 = tracker(addr, &[]);
        let mut c3 = resp3(addr);
        ok(c3.cmd(&["CLIENT", "TRACKING", "ON"]));
        let _b = tracker(addr, &["BCAST", "PREFIX", "x", "PREFIX", "y"]);
        let _b2 = tracker(addr, &["BCAST", "PREFIX", "x"]);
        c1.cmd(&["MGET", "a", "b", "c"]);
        c3.cmd(&["GET", "a"]);
        let fields = |c: &mut Raw| {
            let text = match c.cmd(&["INFO"]) {
                Reply::Bulk(b) => String::from_utf8(b).unwrap(),
                Reply::Verbatim(s) => s,
                other => panic!("{other:?}"),
            };
            text.lines()
                .filter(|l| l.starts_with("tracking_"))
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        seen.extend(fields(&mut c1));
        drop(c3);
        let mut admin = Raw::connect(addr);
        wait_for("the client to be gone", Duration::from_secs(10), || {
            fields(&mut admin)
                .contains(&"tracking_clients:3".to_string())
                .then_some(())
        });
        seen.extend(fields(&mut admin));
        seen
    });
}
