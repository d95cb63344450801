#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! CLIENT KILL, PAUSE/UNPAUSE, REPLY, NO-EVICT, LIST filters, TRACKING OFF, and the
//! subcommands' errors: differential scripts against redis-server (RESP2 and RESP3), and
//! scenarios with several connections run the same way on both servers, whose observations
//! must agree (client ids and addresses differ between the two, so they are not in a script).

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::diff::{differential, on_both};
use common::{Raw, Reply, wait_for};

#[test]
fn errors_and_arity() {
    differential(|d| {
        d.script("client errors");
        d.run(
            r"
            CLIENT
            CLIENT FOO
            CLIENT KILL
            CLIENT KILL 1.2.3.4:5
            CLIENT KILL ID 0
            CLIENT KILL ID -3
            CLIENT KILL ID x
            CLIENT KILL TYPE foo
            CLIENT KILL TYPE normal SKIPME maybe
            CLIENT KILL USER nobody
            CLIENT KILL ADDR 1.2.3.4:5 FOO bar
            CLIENT KILL ADDR 1.2.3.4:5 ID
            CLIENT KILL ADDR
            CLIENT KILL TYPE master
            CLIENT KILL TYPE replica
            CLIENT KILL TYPE slave
            CLIENT KILL TYPE pubsub
            CLIENT KILL USER default
            CLIENT KILL LADDR 1.2.3.4:5
            CLIENT KILL ID 99999 SKIPME no
            CLIENT LIST TYPE foo
            CLIENT LIST ID x
            CLIENT LIST ID 99999
            CLIENT LIST FOO
            CLIENT LIST TYPE
            CLIENT LIST TYPE pubsub
            CLIENT LIST TYPE master
            CLIENT PAUSE
            CLIENT PAUSE x
            CLIENT PAUSE -1
            CLIENT PAUSE 0 foo
            CLIENT PAUSE 0 WRITE x
            CLIENT PAUSE 99999999999999999999
            CLIENT PAUSE 0
            CLIENT PAUSE 0 write
            CLIENT PAUSE 0 ALL
            CLIENT UNPAUSE
            CLIENT UNPAUSE x
            CLIENT REPLY
            CLIENT REPLY foo
            CLIENT REPLY on
            CLIENT NO-EVICT
            CLIENT NO-EVICT foo
            CLIENT NO-EVICT on
            CLIENT NO-EVICT off
            CLIENT TRACKING
            CLIENT TRACKING foo
            CLIENT TRACKING off
            CLIENT TRACKING off bogus
            CLIENT TRACKING off prefix
            CLIENT GETREDIR
            CLIENT GETREDIR x
            CLIENT TRACKINGINFO
            CLIENT CACHING yes
            CLIENT CACHING
            CLIENT UNBLOCK 1 timeout extra
            CLIENT UNBLOCK 99999
            CLIENT UNBLOCK x
            CLIENT UNBLOCK 1 maybe
            CLIENT ID x
            CLIENT SETNAME
            CLIENT HELP
            CLIENT HELP x
            ",
        );
    });
}

#[test]
fn reply_off_and_skip() {
    differential(|d| {
        d.script("client reply");
        d.run(
            r"
            send: CLIENT REPLY OFF
            send: SET a 1
            send: INCR a
            send: GET nosuch
            CLIENT REPLY ON
            GET a
            send: CLIENT REPLY SKIP
            send: SET b 2
            GET b
            send: CLIENT REPLY SKIP
            CLIENT REPLY ON
            send: CLIENT REPLY OFF
            send: CLIENT REPLY SKIP
            send: SET c 3
            CLIENT REPLY ON
            GET c
            send: CLIENT REPLY OFF
            RESET
            GET a
            ",
        );
    });
}

/// `name=value` of a CLIENT LIST/INFO line.
fn field(line: &str, name: &str) -> String {
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
        .to_string()
}

fn text(r: Reply) -> String {
    match r {
        Reply::Bulk(b) => String::from_utf8(b).unwrap(),
        Reply::Verbatim(s) => s,
        other => panic!("expected text, got {other:?}"),
    }
}

fn info(c: &mut Raw) -> String {
    text(c.cmd(&["CLIENT", "INFO"]))
}

/// The names of the clients CLIENT LIST shows (those named), sorted.
fn names(c: &mut Raw) -> Vec<String> {
    let mut v: Vec<String> = text(c.cmd(&["CLIENT", "LIST"]))
        .lines()
        .map(|l| field(l, "name"))
        .filter(|n| !n.is_empty())
        .collect();
    v.sort();
    v
}

fn named(addr: SocketAddr, name: &str) -> Raw {
    let mut c = Raw::connect(addr);
    assert_eq!(
        c.cmd(&["CLIENT", "SETNAME", name]),
        Reply::Simple("OK".into())
    );
    c
}

/// Whether the server closed `c` (it reads end of stream).
fn closed(c: &mut Raw) -> bool {
    c.read_to_end().is_empty()
}

#[test]
fn kill_by_each_filter() {
    on_both(|addr| {
        let mut seen = Vec::new();
        let mut admin = named(addr, "admin");
        let mut by_id = named(addr, "by-id");
        let mut by_addr = named(addr, "by-addr");
        let mut old_form = named(addr, "old-form");
        let mut sub = named(addr, "sub");
        sub.cmd(&["SUBSCRIBE", "ch"]);
        seen.push(format!("{:?}", names(&mut admin)));

        let id = field(&info(&mut by_id), "id");
        seen.push(format!("{:?}", admin.cmd(&["CLIENT", "KILL", "ID", &id])));
        seen.push(format!("by-id closed: {}", closed(&mut by_id)));

        let a = field(&info(&mut by_addr), "addr");
        seen.push(format!(
            "{:?}",
            admin.cmd(&["CLIENT", "KILL", "ADDR", &a, "SKIPME", "yes"])
        ));
        seen.push(format!("by-addr closed: {}", closed(&mut by_addr)));

        let a = field(&info(&mut old_form), "addr");
        seen.push(format!("{:?}", admin.cmd(&["CLIENT", "KILL", &a])));
        seen.push(format!("{:?}", admin.cmd(&["CLIENT", "KILL", &a])));
        seen.push(format!("old-form closed: {}", closed(&mut old_form)));

        seen.push(format!(
            "{:?}",
            admin.cmd(&["CLIENT", "KILL", "TYPE", "pubsub"])
        ));
        seen.push(format!("sub closed: {}", closed(&mut sub)));
        seen.push(format!("{:?}", names(&mut admin)));

        // LADDR, TYPE normal and USER default match the caller too: SKIPME (the default)
        // spares it.
        let mut other = named(addr, "other");
        let laddr = field(&info(&mut admin), "laddr");
        seen.push(format!(
            "{:?}",
            admin.cmd(&["CLIENT", "KILL", "LADDR", &laddr])
        ));
        seen.push(format!("other closed: {}", closed(&mut other)));
        let mut other = named(addr, "other2");
        seen.push(format!(
            "{:?}",
            admin.cmd(&["CLIENT", "KILL", "USER", "default", "TYPE", "normal"])
        ));
        seen.push(format!("other2 closed: {}", closed(&mut other)));
        seen.push(format!("{:?}", names(&mut admin)));

        // Killing itself: the reply comes, then the connection closes.
        let id = field(&info(&mut admin), "id");
        seen.push(format!(
            "{:?}",
            admin.cmd(&["CLIENT", "KILL", "ID", &id, "SKIPME", "no"])
        ));
        seen.push(format!("admin closed: {}", closed(&mut admin)));
        seen
    });
}

#[test]
fn kill_ends_a_blocked_client() {
    on_both(|addr| {
        let mut admin = Raw::connect(addr);
        let mut blocked = named(addr, "blocked");
        let id = field(&info(&mut blocked), "id");
        blocked.send(&["BLPOP", "nothing", "0"]);
        common::wait_blocked(&mut admin, 1, Duration::from_secs(10));
        let killed = admin.cmd(&["CLIENT", "KILL", "ID", &id]);
        let gone = closed(&mut blocked);
        // The waiter is gone with it: a push is not served to it.
        admin.cmd(&["RPUSH", "nothing", "x"]);
        vec![
            format!("{killed:?} {gone}"),
            format!("{:?}", admin.cmd(&["LRANGE", "nothing", "0", "-1"])),
            format!("{:?}", admin.cmd(&["INFO", "clients"]).to_owned_blocked()),
        ]
    });
}

trait BlockedField {
    fn to_owned_blocked(self) -> String;
}

impl BlockedField for Reply {
    /// INFO's `blocked_clients:` line.
    fn to_owned_blocked(self) -> String {
        text(self)
            .lines()
            .find(|l| l.starts_with("blocked_clients:"))
            .unwrap_or_default()
            .to_string()
    }
}

/// Whether the client named `name` shows as blocked (flag `b`) in CLIENT LIST.
fn shows_blocked(c: &mut Raw, name: &str) -> bool {
    text(c.cmd(&["CLIENT", "LIST"]))
        .lines()
        .any(|l| field(l, "name") == name && field(l, "flags").contains('b'))
}

#[test]
fn pause_write_holds_writes_until_unpause() {
    on_both(|addr| {
        let mut seen = Vec::new();
        let mut admin = Raw::connect(addr);
        let mut writer = named(addr, "writer");
        let mut reader = named(addr, "reader");
        seen.push(format!(
            "{:?}",
            admin.cmd(&["CLIENT", "PAUSE", "100000", "WRITE"])
        ));
        writer.send(&["SET", "k", "v"]);
        wait_for(
            "the writer held by the pause",
            Duration::from_secs(10),
            || shows_blocked(&mut admin, "writer").then_some(()),
        );
        // Reads go on, and see the write not done yet; PUBLISH may write: held too.
        seen.push(format!("{:?}", reader.cmd(&["GET", "k"])));
        reader.send(&["PUBLISH", "ch", "m"]);
        wait_for(
            "the publisher held by the pause",
            Duration::from_secs(10),
            || shows_blocked(&mut admin, "reader").then_some(()),
        );
        seen.push(format!("{:?}", admin.cmd(&["CLIENT", "UNPAUSE"])));
        seen.push(format!("{:?}", writer.read()));
        seen.push(format!("{:?}", reader.read()));
        seen.push(format!("{:?}", admin.cmd(&["GET", "k"])));
        seen
    });
}

#[test]
fn pause_all_ends_at_its_timeout() {
    on_both(|addr| {
        let mut admin = Raw::connect(addr);
        let mut other = Raw::connect(addr);
        let paused = admin.cmd(&["CLIENT", "PAUSE", "200", "ALL"]);
        // Held until the pause ends by itself, then answered in order.
        other.send(&["SET", "k", "v"]);
        other.send(&["GET", "k"]);
        vec![format!("{paused:?} {:?} {:?}", other.read(), other.read())]
    });
}
