#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Streams across crashes and restarts (caskdb-only: redis-server has no such test to compare
//! with):
//!
//! - kill -9 of a server under `appendfsync always` while producers XADD and a consumer group's
//!   consumers XREADGROUP and XACK: after a restart, no acknowledged XADD is lost or
//!   duplicated, no acknowledged XACK comes back, no delivery is lost (every delivered entry not
//!   acknowledged is still pending for its consumer) or repeated, and the group's
//!   last-delivered-id and entries-read agree with what was delivered;
//! - streams, their groups, consumers and pending entries come back whole after a clean
//!   restart, after BGREWRITEAOF's sweep and merge, and after another restart.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::child::ServerProcess;
use common::{Raw, Reply};

const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `f` until it returns `Some`, for at most [`DEADLINE`].
fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    common::wait_for(what, DEADLINE, f)
}

// ---------------------------------------------------------------------------------------------
// Replies.

/// A stream entry id, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Id(u64, u64);

impl Id {
    fn parse(s: &str) -> Id {
        let (ms, seq) = s
            .split_once('-')
            .unwrap_or_else(|| panic!("an entry id: {s:?}"));
        Id(ms.parse().unwrap(), seq.parse().unwrap())
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

fn text(r: &Reply) -> String {
    match r {
        Reply::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
        Reply::Simple(s) => s.clone(),
        other => panic!("expected a string, got {other:?}"),
    }
}

fn int(r: &Reply) -> i64 {
    match r {
        Reply::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

fn array(r: &Reply) -> &[Reply] {
    match r {
        Reply::Array(items) => items,
        other => panic!("expected an array, got {other:?}"),
    }
}

/// Entries as XRANGE and XREADGROUP give them, each with the one field `p`: (id, payload).
fn entries(r: &Reply) -> Vec<(Id, String)> {
    array(r)
        .iter()
        .map(|e| {
            let [id, fields] = array(e) else {
                panic!("an entry is [id, fields]: {e:?}")
            };
            let [f, v] = array(fields) else {
                panic!("one field: {fields:?}")
            };
            assert_eq!(text(f), "p", "the field's name");
            (Id::parse(&text(id)), text(v))
        })
        .collect()
}

/// The entries of an XREADGROUP reply on the one stream `s` (none for its null reply).
fn read_group_entries(r: &Reply) -> Vec<(Id, String)> {
    match r {
        Reply::NilArray | Reply::Nil => Vec::new(),
        Reply::Array(streams) => {
            let [stream] = &streams[..] else {
                panic!("one stream: {r:?}")
            };
            let [name, items] = array(stream) else {
                panic!("[name, entries]: {stream:?}")
            };
            assert_eq!(text(name), "s");
            entries(items)
        }
        other => panic!("XREADGROUP: {other:?}"),
    }
}

/// A flat RESP2 field/value array (XINFO's replies) as a map.
fn fields(r: &Reply) -> HashMap<String, Reply> {
    let items = array(r);
    assert!(items.len().is_multiple_of(2), "fields and values: {r:?}");
    items
        .chunks(2)
        .map(|kv| (text(&kv[0]), kv[1].clone()))
        .collect()
}

/// Sends a command; panics on an error reply.
fn run(c: &mut Raw, args: &[&str]) -> Reply {
    let r = c.cmd(args);
    if let Reply::Error(e) = &r {
        panic!("{}: error {e}", args.join(" "));
    }
    r
}

// ---------------------------------------------------------------------------------------------
// kill -9.

const CHILD_DIR_ENV: &str = "CASKDB_STREAMS_CHILD_DIR";

/// The server process the crash test kills; returns at once without its environment variable.
#[test]
#[ignore = "not a test on its own: the server process that the crash test starts and kills"]
fn streams_child_server() {
    common::child::serve_always_in(CHILD_DIR_ENV);
}

/// What a producer saw.
#[derive(Debug, Default)]
struct Produced {
    /// Acknowledged XADDs: (id, payload), in order.
    added: Vec<(Id, String)>,
    /// The payload of the XADD sent when the server died, if any (applied or not).
    in_flight: Option<String>,
}

/// A consumer's command whose reply the kill cut off.
#[derive(Debug, Clone, Copy, PartialEq)]
enum InFlight {
    Read,
    Ack(Id),
}

/// What a consumer saw.
#[derive(Debug, Default)]
struct Consumed {
    /// Entries XREADGROUP delivered, in order.
    delivered: Vec<(Id, String)>,
    /// Ids whose XACK answered 1.
    acked: Vec<Id>,
    in_flight: Option<InFlight>,
}

fn producer(addr: std::net::SocketAddr, n: usize, added: Arc<AtomicUsize>) -> Produced {
    let mut c = Raw::connect(addr);
    let mut log = Produced::default();
    for i in 0.. {
        let payload = format!("{n}-{i}");
        log.in_flight = Some(payload.clone());
        let Some(reply) = c.request(&["XADD", "s", "*", "p", &payload]) else {
            return log;
        };
        let Reply::Bulk(id) = &reply else {
            panic!("XADD {payload}: {reply:?}")
        };
        log.added
            .push((Id::parse(std::str::from_utf8(id).unwrap()), payload));
        log.in_flight = None;
        added.fetch_add(1, Ordering::SeqCst);
    }
    unreachable!()
}

fn consumer(addr: std::net::SocketAddr, n: usize, acked: Arc<AtomicUsize>) -> Consumed {
    let mut c = Raw::connect(addr);
    let name = format!("c{n}");
    let mut log = Consumed::default();
    loop {
        log.in_flight = Some(InFlight::Read);
        let read = [
            "XREADGROUP",
            "GROUP",
            "g",
            &name,
            "COUNT",
            "5",
            "STREAMS",
            "s",
            ">",
        ];
        let Some(reply) = c.request(&read) else {
            return log;
        };
        let got = read_group_entries(&reply);
        assert!(got.len() <= 5, "COUNT 5 gave {}", got.len());
        log.delivered.extend(got.iter().cloned());
        log.in_flight = None;
        for (id, _) in got {
            log.in_flight = Some(InFlight::Ack(id));
            let Some(reply) = c.request(&["XACK", "s", "g", &id.to_string()]) else {
                return log;
            };
            assert_eq!(reply, Reply::Int(1), "XACK s g {id} by {name}");
            log.acked.push(id);
            log.in_flight = None;
            acked.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// kill -9 while two producers XADD to `s` and two consumers of group `g` read it with
/// XREADGROUP ... > and XACK every entry they get, under `appendfsync always` (a BGREWRITEAOF's
/// sweep and merge may be running too). After a restart:
/// - XRANGE holds every acknowledged XADD with its payload, once, in id order; any other entry
///   is the one XADD a producer had in flight;
/// - no entry was delivered twice, and every delivered entry is in the stream;
/// - XPENDING holds no entry whose XACK was acknowledged, and every delivered entry not acked,
///   for its consumer, delivered once, except the one XACK each consumer may have had in flight;
///   any other pending entry comes from the XREADGROUP its consumer had in flight;
/// - XINFO GROUPS: last-delivered-id is the largest id delivered (none above it was), entries-read
///   counts the entries up to it, pending and lag agree;
/// - a new consumer's XREADGROUP ... > gets exactly the entries after last-delivered-id, so every
///   entry is delivered once in all.
#[test]
fn kill_9_with_producers_and_a_consumer_group_loses_and_repeats_nothing() {
    const PRODUCERS: usize = 2;
    const CONSUMERS: usize = 2;
    let dir = tempfile::tempdir().unwrap();
    let env = [(CHILD_DIR_ENV, dir.path().as_os_str())];
    let srv = ServerProcess::spawn("streams_child_server", &env, DEADLINE);
    let mut c = srv.raw();
    assert_eq!(
        run(&mut c, &["XGROUP", "CREATE", "s", "g", "0", "MKSTREAM"]),
        Reply::Simple("OK".into())
    );
    let added = Arc::new(AtomicUsize::new(0));
    let acked: Vec<Arc<AtomicUsize>> = (0..CONSUMERS)
        .map(|_| Arc::new(AtomicUsize::new(0)))
        .collect();
    let producers: Vec<JoinHandle<Produced>> = (0..PRODUCERS)
        .map(|n| {
            let (addr, added) = (srv.addr, added.clone());
            std::thread::spawn(move || producer(addr, n, added))
        })
        .collect();
    let consumers: Vec<JoinHandle<Consumed>> = (0..CONSUMERS)
        .map(|n| {
            let (addr, acked) = (srv.addr, acked[n].clone());
            std::thread::spawn(move || consumer(addr, n, acked))
        })
        .collect();
    let progress = |adds: usize, acks: usize| {
        added.load(Ordering::SeqCst) >= adds
            && acked.iter().all(|a| a.load(Ordering::SeqCst) >= acks)
    };
    wait_for("150 XADDs and 25 XACKs per consumer", || {
        progress(150, 25).then_some(())
    });
    // A sweep and merge among the writes, which the kill may interrupt.
    assert!(matches!(run(&mut c, &["BGREWRITEAOF"]), Reply::Simple(_)));
    wait_for("400 XADDs and 100 XACKs per consumer", || {
        progress(400, 100).then_some(())
    });
    drop(c);
    srv.kill();
    let produced: Vec<Produced> = producers.into_iter().map(|t| t.join().unwrap()).collect();
    let consumed: Vec<Consumed> = consumers.into_iter().map(|t| t.join().unwrap()).collect();

    let srv = ServerProcess::spawn("streams_child_server", &env, DEADLINE);
    let mut c = srv.raw();

    // The stream: every acknowledged XADD, once, in id order.
    let stream = entries(&run(&mut c, &["XRANGE", "s", "-", "+"]));
    assert_eq!(
        int(&run(&mut c, &["XLEN", "s"])),
        stream.len() as i64,
        "XLEN"
    );
    assert!(
        stream.windows(2).all(|w| w[0].0 < w[1].0),
        "XRANGE in strictly increasing id order"
    );
    let by_id: BTreeMap<Id, String> = stream.iter().cloned().collect();
    let mut payloads = HashSet::new();
    for (id, p) in &stream {
        assert!(
            payloads.insert(p.clone()),
            "{p} is in the stream twice ({id})"
        );
    }
    let mut acknowledged = HashSet::new();
    for (n, log) in produced.iter().enumerate() {
        for (id, p) in &log.added {
            assert_eq!(
                by_id.get(id),
                Some(p),
                "producer {n}'s acknowledged XADD {id} {p} after kill -9"
            );
            acknowledged.insert(*id);
        }
    }
    for (id, p) in &stream {
        if acknowledged.contains(id) {
            continue;
        }
        let n: usize = p.split('-').next().unwrap().parse().unwrap();
        let log = &produced[n];
        assert_eq!(
            log.in_flight.as_ref(),
            Some(p),
            "{id} {p} is in the stream but was neither acknowledged nor in flight"
        );
        assert!(
            log.added.last().is_none_or(|(last, _)| last < id),
            "the XADD in flight ({id} {p}) got an id after the acknowledged ones"
        );
    }

    // Deliveries: none twice, each of an entry in the stream.
    let mut delivered: HashMap<Id, usize> = HashMap::new();
    for (n, log) in consumed.iter().enumerate() {
        for (id, p) in &log.delivered {
            assert_eq!(by_id.get(id), Some(p), "c{n} was delivered {id} {p}");
            if let Some(other) = delivered.insert(*id, n) {
                panic!("{id} was delivered twice: to c{other} and c{n}");
            }
        }
    }

    // Pending entries.
    let pending: BTreeMap<Id, (String, i64)> =
        array(&run(&mut c, &["XPENDING", "s", "g", "-", "+", "1000000"]))
            .iter()
            .map(|p| {
                let [id, consumer, idle, count] = array(p) else {
                    panic!("[id, consumer, idle, count]: {p:?}")
                };
                assert!(int(idle) >= 0, "idle time {idle:?}");
                (Id::parse(&text(id)), (text(consumer), int(count)))
            })
            .collect();
    for (id, (consumer, count)) in &pending {
        assert!(by_id.contains_key(id), "pending {id} is not in the stream");
        assert_eq!(
            *count, 1,
            "{id} pending for {consumer} delivered {count} times"
        );
    }
    let mut lost_reads = 0;
    for (n, log) in consumed.iter().enumerate() {
        let name = format!("c{n}");
        let acked: HashSet<Id> = log.acked.iter().copied().collect();
        for id in &log.acked {
            assert!(
                !pending.contains_key(id),
                "{id}, acknowledged by {name}'s XACK, is pending again after kill -9"
            );
        }
        for (id, _) in &log.delivered {
            if acked.contains(id) || log.in_flight == Some(InFlight::Ack(*id)) {
                continue;
            }
            assert_eq!(
                pending.get(id).map(|(c, _)| c.as_str()),
                Some(name.as_str()),
                "{id}, delivered to {name} and not acked, is no longer pending for it"
            );
        }
        // Pending entries nobody saw delivered: the XREADGROUP in flight at the kill.
        let unseen: Vec<Id> = pending
            .iter()
            .filter(|(id, (c, _))| *c == name && !delivered.contains_key(id))
            .map(|(id, _)| *id)
            .collect();
        if !unseen.is_empty() {
            assert_eq!(
                log.in_flight,
                Some(InFlight::Read),
                "{unseen:?} pending for {name}, never delivered to it, without an XREADGROUP \
                 in flight"
            );
            assert!(unseen.len() <= 5, "{unseen:?}: more than COUNT 5");
            let seen_max = log.delivered.iter().map(|(id, _)| *id).max();
            assert!(
                seen_max.is_none_or(|m| unseen.iter().all(|id| *id > m)),
                "{unseen:?} pending for {name} but before what it was delivered last"
            );
            lost_reads += unseen.len();
        }
    }
    for (id, (consumer, _)) in &pending {
        assert!(
            (0..CONSUMERS).any(|n| *consumer == format!("c{n}")),
            "{id} pending for an unknown consumer {consumer}"
        );
    }

    // The group.
    let groups = run(&mut c, &["XINFO", "GROUPS", "s"]);
    let [group] = array(&groups) else {
        panic!("one group: {groups:?}")
    };
    let group = fields(group);
    assert_eq!(text(&group["name"]), "g");
    assert_eq!(int(&group["consumers"]), CONSUMERS as i64, "{group:?}");
    assert_eq!(int(&group["pending"]), pending.len() as i64, "{group:?}");
    let last = Id::parse(&text(&group["last-delivered-id"]));
    let max_delivered = delivered.keys().chain(pending.keys()).max().copied();
    assert_eq!(
        Some(last),
        max_delivered,
        "last-delivered-id (it must be >= every delivered id, and nothing after the largest \
         was delivered)"
    );
    let read = stream.iter().filter(|(id, _)| *id <= last).count() as i64;
    assert_eq!(int(&group["entries-read"]), read, "entries-read: {group:?}");
    assert_eq!(
        int(&group["lag"]),
        stream.len() as i64 - read,
        "lag: {group:?}"
    );

    // What is left to deliver: exactly the entries after last-delivered-id, none delivered before.
    let rest = read_group_entries(&run(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "after",
            "COUNT",
            "1000000",
            "STREAMS",
            "s",
            ">",
        ],
    ));
    let want: Vec<(Id, String)> = stream
        .iter()
        .filter(|(id, _)| *id > last)
        .cloned()
        .collect();
    assert_eq!(rest, want, "XREADGROUP > after the restart");
    let mut every: BTreeSet<Id> = delivered.keys().copied().collect();
    every.extend(pending.keys());
    for (id, _) in &rest {
        assert!(every.insert(*id), "{id} delivered again after the restart");
    }
    assert_eq!(
        every,
        by_id.keys().copied().collect(),
        "every entry delivered once in all"
    );

    eprintln!(
        "{} XADDs acknowledged, {} entries, {} delivered, {} acked, {} pending ({} from an \
         XREADGROUP in flight), {} left to deliver",
        acknowledged.len(),
        stream.len(),
        delivered.len(),
        consumed.iter().map(|l| l.acked.len()).sum::<usize>(),
        pending.len(),
        lost_reads,
        rest.len()
    );
    drop(c);
    srv.stop(DEADLINE);
}

// ---------------------------------------------------------------------------------------------
// Restarts and merges.

/// Streams of every shape: many entries over many nodes, deleted and trimmed entries, an
/// explicit XSETID, groups with consumers and pending entries (some claimed, so delivered more
/// than once), a group read with NOACK and moved with XGROUP SETID, a deleted consumer, an empty
/// stream with a group, and a deleted stream whose records the sweep reclaims.
fn build_streams(c: &mut Raw) {
    for i in 0..1000 {
        let v = format!("v{i}");
        run(c, &["XADD", "big", "*", "n", &i.to_string(), "v", &v]);
    }
    run(c, &["XADD", "big", "MAXLEN", "=", "900", "*", "n", "last"]);
    for i in 1..=20 {
        let id = format!("{i}-1");
        run(c, &["XADD", "s", &id, "f", &format!("x{i}"), "g", "y"]);
    }
    run(c, &["XDEL", "s", "3-1", "7-1", "20-1"]);
    run(c, &["XGROUP", "CREATE", "s", "g1", "0"]);
    run(
        c,
        &["XGROUP", "CREATE", "s", "g2", "$", "ENTRIESREAD", "17"],
    );
    run(c, &["XGROUP", "CREATECONSUMER", "s", "g1", "idle"]);
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "6",
            "STREAMS",
            "s",
            ">",
        ],
    );
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "bob",
            "COUNT",
            "4",
            "STREAMS",
            "s",
            ">",
        ],
    );
    run(c, &["XACK", "s", "g1", "1-1", "5-1", "9-1"]);
    run(c, &["XCLAIM", "s", "g1", "bob", "0", "2-1", "4-1"]);
    run(c, &["XCLAIM", "s", "g1", "carol", "0", "6-1", "JUSTID"]);
    run(
        c,
        &[
            "XADD",
            "s",
            "NOMKSTREAM",
            "MAXLEN",
            "=",
            "18",
            "21-5",
            "f",
            "x21",
        ],
    );
    run(
        c,
        &[
            "XSETID",
            "s",
            "30-0",
            "ENTRIESADDED",
            "25",
            "MAXDELETEDID",
            "22-0",
        ],
    );
    run(c, &["XTRIM", "s", "MINID", "2"]);
    // A group read with NOACK (nothing pending), then moved with SETID; a consumer deleted.
    run(c, &["XGROUP", "CREATE", "s", "g3", "0"]);
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g3",
            "x",
            "NOACK",
            "COUNT",
            "3",
            "STREAMS",
            "s",
            ">",
        ],
    );
    run(
        c,
        &["XGROUP", "SETID", "s", "g3", "9-1", "ENTRIESREAD", "7"],
    );
    run(c, &["XGROUP", "CREATECONSUMER", "s", "g1", "temp"]);
    run(c, &["XGROUP", "DELCONSUMER", "s", "g1", "temp"]);
    run(c, &["XGROUP", "CREATE", "empty", "g", "$", "MKSTREAM"]);
    for i in 0..300 {
        run(c, &["XADD", "gone", "*", "i", &i.to_string()]);
    }
    run(c, &["XGROUP", "CREATE", "gone", "g", "0"]);
    run(
        c,
        &[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "COUNT",
            "100",
            "STREAMS",
            "gone",
            ">",
        ],
    );
    run(c, &["DEL", "gone"]);
}

/// Everything a client can read of the streams that does not depend on the clock (XPENDING's
/// idle times and XINFO CONSUMERS's are left out).
fn snapshot(c: &mut Raw) -> Vec<(String, Reply)> {
    let mut out = Vec::new();
    let read = |out: &mut Vec<(String, Reply)>, c: &mut Raw, args: &[&str]| {
        out.push((args.join(" "), run(c, args)));
    };
    for key in ["big", "s", "empty"] {
        read(&mut out, c, &["XRANGE", key, "-", "+"]);
        read(&mut out, c, &["XREVRANGE", key, "+", "-", "COUNT", "3"]);
        read(&mut out, c, &["XLEN", key]);
        read(&mut out, c, &["XINFO", "STREAM", key]);
        read(&mut out, c, &["XINFO", "GROUPS", key]);
        read(&mut out, c, &["TYPE", key]);
    }
    read(&mut out, c, &["EXISTS", "gone"]);
    for group in ["g1", "g2", "g3"] {
        read(&mut out, c, &["XPENDING", "s", group]);
        // [id, consumer, idle, count] without the idle time.
        let r = run(c, &["XPENDING", "s", group, "-", "+", "100"]);
        let stable = array(&r)
            .iter()
            .map(|p| {
                let mut p = array(p).to_vec();
                p.remove(2);
                Reply::Array(p)
            })
            .collect();
        out.push((format!("XPENDING s {group} - + 100"), Reply::Array(stable)));
        // Consumers' names and pending counts.
        let r = run(c, &["XINFO", "CONSUMERS", "s", group]);
        let stable = array(&r)
            .iter()
            .map(|cons| {
                let f = fields(cons);
                Reply::Array(vec![f["name"].clone(), f["pending"].clone()])
            })
            .collect();
        out.push((format!("XINFO CONSUMERS s {group}"), Reply::Array(stable)));
    }
    out
}

fn check_snapshot(c: &mut Raw, before: &[(String, Reply)], when: &str) {
    let after = snapshot(c);
    assert_eq!(after.len(), before.len());
    for ((cmd, want), (_, got)) in before.iter().zip(&after) {
        assert_eq!(got, want, "{cmd} {when}");
    }
}

#[test]
fn restart_and_merge_keep_every_stream() {
    let dir = tempfile::tempdir().unwrap();
    let srv = common::start(dir.path());
    let mut c = srv.raw();
    build_streams(&mut c);
    let before = snapshot(&mut c);
    // A few facts of the scenario, so that the snapshot holds something worth comparing.
    assert_eq!(int(&run(&mut c, &["XLEN", "big"])), 900);
    assert_eq!(int(&run(&mut c, &["XLEN", "s"])), 17);
    assert_eq!(
        run(&mut c, &["XPENDING", "s", "g1"]),
        Reply::Array(vec![
            Reply::Int(7),
            Reply::bulk("2-1"),
            Reply::bulk("12-1"),
            Reply::Array(vec![
                Reply::Array(vec![Reply::bulk("alice"), Reply::bulk("1")]),
                Reply::Array(vec![Reply::bulk("bob"), Reply::bulk("5")]),
                Reply::Array(vec![Reply::bulk("carol"), Reply::bulk("1")]),
            ]),
        ])
    );
    drop(c);
    srv.stop();

    let srv = common::start(dir.path());
    let mut c = srv.raw();
    check_snapshot(&mut c, &before, "after a restart");
    let r = run(&mut c, &["BGREWRITEAOF"]);
    assert!(matches!(r, Reply::Simple(_)), "{r:?}");
    wait_for("caskdb_rewrites >= 1", || {
        (common::info_field(&mut c, "persistence", "caskdb_rewrites") >= 1).then_some(())
    });
    check_snapshot(&mut c, &before, "after BGREWRITEAOF's sweep and merge");
    // The deleted stream's entries, groups and pending entries were reclaimed.
    assert!(common::info_field(&mut c, "persistence", "caskdb_members_reclaimed") >= 300);
    drop(c);
    srv.stop();

    let srv = common::start(dir.path());
    let mut c = srv.raw();
    check_snapshot(&mut c, &before, "after the merge and a restart");
    // The streams go on from where they were: ids after the last generated one, the groups'
    // next deliveries after their last-delivered-id.
    let id = text(&run(&mut c, &["XADD", "s", "*", "f", "new"]));
    assert!(Id::parse(&id) > Id(30, 0), "{id}");
    assert_eq!(
        c.cmd(&["XADD", "s", "30-0", "f", "old"]),
        Reply::Error(
            "ERR The ID specified in XADD is equal or smaller than the target stream top item"
                .into()
        )
    );
    let entry = |id: &str, v: &str| {
        Reply::Array(vec![
            Reply::bulk(id),
            Reply::Array(vec![Reply::bulk("f"), Reply::bulk(v)]),
        ])
    };
    assert_eq!(
        run(
            &mut c,
            &["XREADGROUP", "GROUP", "g2", "dave", "STREAMS", "s", ">"],
        ),
        Reply::Array(vec![Reply::Array(vec![
            Reply::bulk("s"),
            Reply::Array(vec![entry("21-5", "x21"), entry(&id, "new")]),
        ])]),
        "g2 goes on after 20-1"
    );
    let got = run(
        &mut c,
        &[
            "XREADGROUP",
            "GROUP",
            "g1",
            "alice",
            "COUNT",
            "2",
            "STREAMS",
            "s",
            ">",
        ],
    );
    assert_eq!(
        read_entry_ids(&got),
        ["13-1", "14-1"],
        "g1 goes on after 12-1"
    );
    drop(c);
    srv.stop();
}

/// The ids of an XREADGROUP reply on one stream.
fn read_entry_ids(r: &Reply) -> Vec<String> {
    let [stream] = array(r) else {
        panic!("one stream: {r:?}")
    };
    array(&array(stream)[1])
        .iter()
        .map(|e| text(&array(e)[0]))
        .collect()
}
