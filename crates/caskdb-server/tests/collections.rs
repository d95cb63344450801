//! Hashes, lists, sets and sorted sets on the server, judged by what a client sees:
//!
//! - property tests, one per type: random command sequences over three keys (some inside
//!   MULTI/EXEC, with SET/DEL/RENAME/COPY/EXPIRE/PERSIST mixed in) against an in-memory model,
//!   every read command checked after every write, while another client keeps requesting
//!   sweeps and merges;
//! - every kind of collection (renamed, moved, copied, expiring, trimmed…) comes back whole after
//!   a restart, after BGREWRITEAOF's sweep and merge, and after another restart;
//! - the sweeper reclaims the records of dead collections, exactly those, and ids are never
//!   reused while records of theirs remain (checked in the engine's files too);
//! - BGREWRITEAOF sent while a sweep runs is not lost;
//! - concurrent writers lose nothing, and member changes abort WATCHing transactions;
//! - kill -9 of a server under `appendfsync always` loses no acknowledged collection write and
//!   leaves every collection's metadata agreeing with its members.
//!
//! `PROPTEST_CASES=n` runs more property cases; `CASKDB_COLLECTIONS_SEED` replays the crash
//! test's write sequence (the kill points depend on timing).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt::Debug;
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use caskdb_testkit::rng::Rng;
use common::child::ServerProcess;
use common::{Raw, Reply, start, start_fresh};
use proptest::prelude::*;
use proptest::test_runner::{Config as PtConfig, TestCaseError, TestRunner};

// ---------------------------------------------------------------------------------------------
// Small helpers.

fn ok() -> Reply {
    Reply::Simple("OK".into())
}

fn bulk(s: &str) -> Reply {
    Reply::bulk(s)
}

fn bulks<S: AsRef<str>>(items: impl IntoIterator<Item = S>) -> Reply {
    Reply::Array(items.into_iter().map(|s| bulk(s.as_ref())).collect())
}

/// The text of a bulk reply.
fn text(r: &Reply) -> Result<String, String> {
    match r {
        Reply::Bulk(b) => String::from_utf8(b.clone()).map_err(|e| e.to_string()),
        other => Err(format!("expected a bulk string, got {other:?}")),
    }
}

/// The texts of an array of bulk replies.
fn texts(r: &Reply) -> Result<Vec<String>, String> {
    match r {
        Reply::Array(items) => items.iter().map(text).collect(),
        other => Err(format!("expected an array, got {other:?}")),
    }
}

/// Sends a command; panics on an error reply.
fn run(c: &mut Raw, args: &[&str]) -> Reply {
    let r = c.cmd(args);
    if let Reply::Error(e) = &r {
        panic!("{}: error {e}", args.join(" "));
    }
    r
}

fn int(r: &Reply) -> i64 {
    match r {
        Reply::Int(n) => *n,
        other => panic!("expected an integer, got {other:?}"),
    }
}

const DEADLINE: Duration = Duration::from_secs(60);

/// Polls `f` until it returns `Some`, for at most a minute.
fn wait_for<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    common::wait_for(what, DEADLINE, f)
}

/// Sends BGREWRITEAOF and waits until a sweep and merge has completed since the server started.
fn rewrite_and_wait(c: &mut Raw) {
    let r = run(c, &["BGREWRITEAOF"]);
    assert!(matches!(r, Reply::Simple(_)), "{r:?}");
    wait_for("caskdb_rewrites >= 1", || {
        (common::info_field(c, "persistence", "caskdb_rewrites") >= 1).then_some(())
    });
}

fn time_seed() -> u64 {
    caskdb_testkit::rng::seed("CASKDB_COLLECTIONS_SEED")
}

/// The items at positions `start` to `stop` (both included), as LRANGE, LTRIM, ZRANGE and
/// ZREMRANGEBYRANK take them (Redis's documentation): a negative position counts from the end
/// (-1 is the last item), and positions out of the sequence select nothing, so the range is cut
/// to the sequence, and empty if `start` comes after `stop`.
fn range<T: Clone>(items: &[T], start: i64, stop: i64) -> Vec<T> {
    let len = items.len() as i64;
    let from_end = |i: i64| if i < 0 { len + i } else { i };
    let wanted = from_end(start)..=from_end(stop);
    (0..len)
        .zip(items)
        .filter(|(i, _)| wanted.contains(i))
        .map(|(_, item)| item.clone())
        .collect()
}

/// The item at position `i` (negative: from the end), as LINDEX and LSET take it.
fn nth<T>(items: &[T], i: i64) -> Option<usize> {
    let len = items.len() as i64;
    let i = if i < 0 { len + i } else { i };
    (0..len).contains(&i).then_some(i as usize)
}

/// A score as Redis prints it, for the scores the tests use (integers and halves).
fn fmt_score(s: f64) -> String {
    if s.is_infinite() {
        if s > 0.0 { "inf" } else { "-inf" }.to_string()
    } else if s.fract() == 0.0 {
        format!("{}", s as i64)
    } else {
        format!("{s}")
    }
}

/// The reply of HMGET or ZMSCORE: for each of `names`, `reply` of its value in `map`, or nil.
fn each_or_nil<V>(map: &BTreeMap<String, V>, names: &[&str], reply: impl Fn(&V) -> Reply) -> Reply {
    Reply::Array(
        names
            .iter()
            .map(|n| map.get(*n).map_or(Reply::Nil, &reply))
            .collect(),
    )
}

// ---------------------------------------------------------------------------------------------
// Property tests: the shared machinery.

/// The keys every property test works on.
const KEYS: [&str; 3] = ["k1", "k2", "k3"];
/// Strings that SET may put under a key.
const STRINGS: [&str; 2] = ["s", "7"];

/// What a key holds in a model: a string, or a collection of the type under test.
#[derive(Debug, Clone, PartialEq)]
enum Val<T> {
    Str(String),
    Coll(T),
}

/// Commands on whole keys, whatever they hold.
#[derive(Debug, Clone)]
enum KeyOp {
    Set(usize, usize),
    Del(usize),
    Rename(usize, usize),
    Copy(usize, usize, bool),
    /// EXPIRE far in the future.
    Expire(usize),
    Persist(usize),
}

#[derive(Debug, Clone)]
enum Step<O> {
    Key(KeyOp),
    Op(O),
}

/// Random arguments for the read commands checked after a step.
#[derive(Debug, Clone)]
struct Probe {
    a: i64,
    b: i64,
    m: usize,
    lo: usize,
    hi: usize,
    other: usize,
}

/// The expected reply of a write.
enum Want {
    Is(Reply),
    /// An error reply starting with this.
    Err(&'static str),
}

const WRONGTYPE: Want = Want::Err("WRONGTYPE");

/// One collection type's model.
trait Model: Clone + Debug + PartialEq + Default {
    type Op: Clone + Debug;
    /// TYPE's reply.
    const TYPE: &'static str;
    /// A read command (`CMD key`) that answers WRONGTYPE for a string.
    const READ: &'static str;
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
    /// Sends `op` and checks its reply, updating the model.
    fn apply(t: &mut Case<Self>, op: &Self::Op) -> Result<(), String>;
    /// Checks the read commands on `key`, which holds `m` (empty: nothing).
    fn check(t: &mut Case<Self>, key: &str, m: &Self, p: &Probe) -> Result<(), String>;
}

/// One test case: a connection, the model, and the writes sent so far.
struct Case<T> {
    c: Raw,
    model: BTreeMap<&'static str, Val<T>>,
    /// The keys that have an expiry (far in the future): writes to a collection keep it.
    ttl: BTreeSet<&'static str>,
    log: Vec<String>,
    /// Send this step's writes inside MULTI/EXEC.
    wrap: bool,
}

impl<T: Model> Case<T> {
    /// Sends a write, logged, and checks its reply.
    fn expect(&mut self, args: &[&str], want: Want) -> Result<Reply, String> {
        let got = self.send(args);
        match &want {
            Want::Is(r) if *r == got => Ok(got),
            Want::Err(p) if matches!(&got, Reply::Error(e) if e.starts_with(p)) => Ok(got),
            Want::Is(r) => Err(format!("{}: expected {r:?}, got {got:?}", args.join(" "))),
            Want::Err(p) => Err(format!(
                "{}: expected an error {p}…, got {got:?}",
                args.join(" ")
            )),
        }
    }

    /// Sends a write whose reply the caller checks.
    fn send(&mut self, args: &[&str]) -> Reply {
        if !self.wrap {
            self.log.push(args.join(" "));
            return self.c.cmd(args);
        }
        // In a transaction: the command's reply is EXEC's only element.
        self.log.push(format!("MULTI; {}; EXEC", args.join(" ")));
        let r = self.c.cmd(&["MULTI"]);
        if r != ok() {
            return Reply::Error(format!("(test) MULTI answered {r:?}"));
        }
        let q = self.c.cmd(args);
        if q != Reply::Simple("QUEUED".into()) {
            let _ = self.c.cmd(&["DISCARD"]);
            return Reply::Error(format!("(test) queueing answered {q:?}"));
        }
        match self.c.cmd(&["EXEC"]) {
            Reply::Array(mut v) if v.len() == 1 => v.pop().unwrap(),
            other => Reply::Error(format!("(test) EXEC answered {other:?}")),
        }
    }

    /// Sends a read command and returns its reply.
    fn get(&mut self, args: &[&str]) -> Reply {
        self.c.cmd(args)
    }

    /// Sends a read command and compares its reply.
    fn read(&mut self, args: &[&str], want: Reply) -> Result<(), String> {
        let got = self.c.cmd(args);
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "{}: expected {want:?}, got {got:?}",
                args.join(" ")
            ))
        }
    }

    fn read_err(&mut self, args: &[&str], prefix: &str) -> Result<(), String> {
        match self.c.cmd(args) {
            Reply::Error(e) if e.starts_with(prefix) => Ok(()),
            got => Err(format!(
                "{}: expected an error {prefix}…, got {got:?}",
                args.join(" ")
            )),
        }
    }

    /// Every item HSCAN/SSCAN/ZSCAN returns for `key`, two at a time, following the cursor.
    fn scan_all(&mut self, cmd: &str, key: &str) -> Result<Vec<String>, String> {
        let mut cursor = "0".to_string();
        let mut out = Vec::new();
        for _ in 0..100 {
            let r = self.get(&[cmd, key, &cursor, "COUNT", "2"]);
            let Reply::Array(parts) = &r else {
                return Err(format!("{cmd} {key} {cursor}: {r:?}"));
            };
            let [next, items] = &parts[..] else {
                return Err(format!("{cmd} {key} {cursor}: {r:?}"));
            };
            cursor = text(next)?;
            out.extend(texts(items)?);
            if cursor == "0" {
                return Ok(out);
            }
        }
        Err(format!("{cmd} {key}: the cursor never came back to 0"))
    }

    /// The collection under `key` as a write command of the type sees it: `Err` if the key holds
    /// a string.
    fn coll(&self, key: &str) -> Result<Option<T>, ()> {
        match self.model.get(key) {
            None => Ok(None),
            Some(Val::Coll(m)) => Ok(Some(m.clone())),
            Some(Val::Str(_)) => Err(()),
        }
    }

    /// Sends the write `args` to the collection under `key`: WRONGTYPE if the key holds a
    /// string; else `f` gets the collection (empty if there is no key: a collection is never
    /// empty) to change as the write must, and returns the reply it must get. Unless that is an
    /// error, the collection is then stored (the key deleted if it is empty).
    fn write(
        &mut self,
        key: &'static str,
        args: &[&str],
        f: impl FnOnce(&mut T) -> Want,
    ) -> Result<(), String> {
        let Ok(m) = self.coll(key) else {
            return self.expect(args, WRONGTYPE).map(drop);
        };
        let mut m = m.unwrap_or_default();
        let want = f(&mut m);
        let failed = matches!(want, Want::Err(_));
        self.expect(args, want)?;
        if !failed {
            self.put(key, m);
        }
        Ok(())
    }

    /// Sends `cmd key items…` (HDEL, SADD, SREM, ZREM), whose reply is the number of items it
    /// changed the collection for: `change` applies one to the model and says whether it did.
    fn write_each(
        &mut self,
        cmd: &str,
        key: &'static str,
        items: &[&str],
        change: impl Fn(&mut T, &str) -> bool,
    ) -> Result<(), String> {
        let mut args = vec![cmd, key];
        args.extend(items);
        self.write(key, &args, |m| {
            let changed = items.iter().filter(|&&i| change(m, i)).count();
            Want::Is(Reply::Int(changed as i64))
        })
    }

    /// Stores `m` under `key`, or deletes the key if `m` is empty (as the server must).
    fn put(&mut self, key: &'static str, m: T) {
        if m.is_empty() {
            self.model.remove(key);
        } else {
            self.model.insert(key, Val::Coll(m));
        }
    }
}

fn key_op<T: Model>(t: &mut Case<T>, op: &KeyOp) -> Result<(), String> {
    match *op {
        KeyOp::Set(k, v) => {
            let (key, val) = (KEYS[k], STRINGS[v]);
            t.expect(&["SET", key, val], Want::Is(ok()))?;
            t.model.insert(key, Val::Str(val.into()));
            t.ttl.remove(key);
        }
        KeyOp::Del(k) => {
            let existed = t.model.remove(KEYS[k]).is_some();
            t.expect(&["DEL", KEYS[k]], Want::Is(Reply::Int(i64::from(existed))))?;
        }
        KeyOp::Rename(a, b) => {
            let (src, dst) = (KEYS[a], KEYS[b]);
            match t.model.get(src).cloned() {
                None => {
                    t.expect(&["RENAME", src, dst], Want::Err("ERR"))?;
                }
                Some(v) => {
                    t.expect(&["RENAME", src, dst], Want::Is(ok()))?;
                    if src != dst {
                        t.model.remove(src);
                        t.model.insert(dst, v);
                        if t.ttl.remove(src) {
                            t.ttl.insert(dst);
                        } else {
                            t.ttl.remove(dst);
                        }
                    }
                }
            }
        }
        KeyOp::Copy(a, b, replace) => {
            let (src, dst) = (KEYS[a], KEYS[b]);
            let mut args = vec!["COPY", src, dst];
            if replace {
                args.push("REPLACE");
            }
            let want = if src == dst {
                Want::Err("ERR")
            } else {
                match t.model.get(src).cloned() {
                    None => Want::Is(Reply::Int(0)),
                    Some(_) if t.model.contains_key(dst) && !replace => Want::Is(Reply::Int(0)),
                    Some(v) => {
                        t.model.insert(dst, v);
                        if t.ttl.contains(src) {
                            t.ttl.insert(dst);
                        } else {
                            t.ttl.remove(dst);
                        }
                        Want::Is(Reply::Int(1))
                    }
                }
            };
            t.expect(&args, want)?;
        }
        KeyOp::Expire(k) => {
            let key = KEYS[k];
            let exists = t.model.contains_key(key);
            if exists {
                t.ttl.insert(key);
            }
            t.expect(
                &["EXPIRE", key, "100000"],
                Want::Is(Reply::Int(i64::from(exists))),
            )?;
        }
        KeyOp::Persist(k) => {
            let had = t.ttl.remove(KEYS[k]);
            t.expect(&["PERSIST", KEYS[k]], Want::Is(Reply::Int(i64::from(had))))?;
        }
    }
    Ok(())
}

fn check_all<T: Model>(t: &mut Case<T>, p: &Probe) -> Result<(), String> {
    for key in KEYS {
        let m = t.model.get(key).cloned();
        let (exists, ty) = match &m {
            None => (0, "none"),
            Some(Val::Str(_)) => (1, "string"),
            Some(Val::Coll(_)) => (1, T::TYPE),
        };
        t.read(&["EXISTS", key], Reply::Int(exists))?;
        t.read(&["TYPE", key], Reply::Simple(ty.into()))?;
        let ttl = match t.get(&["TTL", key]) {
            Reply::Int(n) => n,
            other => return Err(format!("TTL {key}: {other:?}")),
        };
        let want_ttl = match (&m, t.ttl.contains(key)) {
            (None, _) => "-2",
            (Some(_), false) => "-1",
            (Some(_), true) => "an expiry",
        };
        let got_ttl = match ttl {
            -2 => "-2",
            -1 => "-1",
            n if n > 0 && n <= 100_000 => "an expiry",
            _ => "a bad reply",
        };
        if got_ttl != want_ttl {
            return Err(format!("TTL {key}: expected {want_ttl}, got {ttl}"));
        }
        match &m {
            Some(Val::Str(s)) => {
                t.read(&["GET", key], bulk(s))?;
                t.read_err(&[T::READ, key], "WRONGTYPE")?;
            }
            Some(Val::Coll(c)) => T::check(t, key, c, p)?,
            None => T::check(t, key, &T::default(), p)?,
        }
    }
    Ok(())
}

fn key_op_strategy() -> impl Strategy<Value = KeyOp> {
    let k = || 0..KEYS.len();
    prop_oneof![
        (k(), 0..STRINGS.len()).prop_map(|(k, v)| KeyOp::Set(k, v)),
        k().prop_map(KeyOp::Del),
        (k(), k()).prop_map(|(a, b)| KeyOp::Rename(a, b)),
        (k(), k(), any::<bool>()).prop_map(|(a, b, r)| KeyOp::Copy(a, b, r)),
        k().prop_map(KeyOp::Expire),
        k().prop_map(KeyOp::Persist),
    ]
}

fn probe_strategy() -> impl Strategy<Value = Probe> {
    (
        -7i64..7,
        -7i64..7,
        0usize..8,
        0usize..BOUNDS.len(),
        0usize..BOUNDS.len(),
        0..KEYS.len(),
    )
        .prop_map(|(a, b, m, lo, hi, other)| Probe {
            a,
            b,
            m,
            lo,
            hi,
            other,
        })
}

/// Runs 32 random sequences of up to 60 steps against a fresh model each, on one server, while
/// another client keeps asking for sweeps and merges (BGREWRITEAOF), so the sweeper runs among
/// the commands and must delete only the records of collections that are gone.
fn run_model<T: Model + 'static>(ops: BoxedStrategy<T::Op>) {
    let srv = start_fresh();
    let stop = Arc::new(AtomicBool::new(false));
    let rewriter = {
        let (mut c, stop) = (srv.raw(), stop.clone());
        std::thread::spawn(move || {
            let mut done = 0;
            while !stop.load(Ordering::Relaxed) {
                if common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == 0 {
                    run(&mut c, &["BGREWRITEAOF"]);
                    done += 1;
                } else {
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            done
        })
    };
    let step = prop_oneof![
        1 => key_op_strategy().prop_map(Step::<T::Op>::Key),
        7 => ops.prop_map(Step::<T::Op>::Op),
    ];
    let in_multi = proptest::bool::weighted(0.2);
    let steps = proptest::collection::vec((step, probe_strategy(), in_multi), 1..=60);
    let mut runner = TestRunner::new(PtConfig {
        // PROPTEST_CASES=n runs more (or fewer) cases.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(32),
        max_shrink_iters: 400,
        failure_persistence: None,
        ..PtConfig::default()
    });
    let result = runner.run(&steps, |steps| {
        let mut t = Case::<T> {
            c: srv.raw(),
            model: BTreeMap::new(),
            ttl: BTreeSet::new(),
            log: Vec::new(),
            wrap: false,
        };
        let fail = |t: &Case<T>, e: String| {
            TestCaseError::fail(format!("{e}\nwrites sent:\n  {}", t.log.join("\n  ")))
        };
        t.expect(&["FLUSHALL"], Want::Is(ok()))
            .map_err(|e| fail(&t, e))?;
        t.log.clear();
        for (step, probe, in_multi) in &steps {
            t.wrap = *in_multi;
            let r = match step {
                Step::Key(op) => key_op(&mut t, op),
                Step::Op(op) => T::apply(&mut t, op),
            };
            t.wrap = false;
            // A key that is gone has lost its expiry.
            let model = &t.model;
            t.ttl.retain(|k| model.contains_key(k));
            r.and_then(|()| check_all(&mut t, probe))
                .map_err(|e| fail(&t, e))?;
        }
        Ok(())
    });
    stop.store(true, Ordering::Relaxed);
    let rewrites = rewriter.join().unwrap();
    if let Err(e) = result {
        panic!("{} model: {e}", T::TYPE);
    }
    assert!(rewrites > 0);
}

// ---------------------------------------------------------------------------------------------
// Hashes.

const FIELDS: [&str; 5] = ["a", "b", "c", "d", "e"];
const HVALUES: [&str; 5] = ["1", "2", "-3", "x", "10"];

#[derive(Debug, Clone, PartialEq, Default)]
struct HashM(BTreeMap<String, String>);

#[derive(Debug, Clone)]
enum HOp {
    Set(usize, Vec<(usize, usize)>),
    SetNx(usize, usize, usize),
    Del(usize, Vec<usize>),
    IncrBy(usize, usize, i64),
}

impl Model for HashM {
    type Op = HOp;
    const TYPE: &'static str = "hash";
    const READ: &'static str = "HGETALL";

    fn apply(t: &mut Case<Self>, op: &HOp) -> Result<(), String> {
        match op {
            HOp::Set(k, pairs) => {
                let mut args = vec!["HSET", KEYS[*k]];
                for &(f, v) in pairs {
                    args.extend([FIELDS[f], HVALUES[v]]);
                }
                t.write(KEYS[*k], &args, |h| {
                    let added = pairs
                        .iter()
                        .filter(|&&(f, v)| {
                            h.0.insert(FIELDS[f].into(), HVALUES[v].into()).is_none()
                        })
                        .count();
                    Want::Is(Reply::Int(added as i64))
                })
            }
            HOp::SetNx(k, f, v) => {
                let args = ["HSETNX", KEYS[*k], FIELDS[*f], HVALUES[*v]];
                t.write(KEYS[*k], &args, |h| {
                    let new = !h.0.contains_key(FIELDS[*f]);
                    if new {
                        h.0.insert(FIELDS[*f].into(), HVALUES[*v].into());
                    }
                    Want::Is(Reply::Int(i64::from(new)))
                })
            }
            HOp::Del(k, fields) => {
                let fields: Vec<&str> = fields.iter().map(|&f| FIELDS[f]).collect();
                t.write_each("HDEL", KEYS[*k], &fields, |h, f| h.0.remove(f).is_some())
            }
            HOp::IncrBy(k, f, by) => {
                let by_s = by.to_string();
                let args = ["HINCRBY", KEYS[*k], FIELDS[*f], by_s.as_str()];
                t.write(KEYS[*k], &args, |h| {
                    match h.0.get(FIELDS[*f]).map_or(Ok(0), |v| v.parse::<i64>()) {
                        Err(_) => Want::Err("ERR"),
                        Ok(n) => {
                            h.0.insert(FIELDS[*f].into(), (n + by).to_string());
                            Want::Is(Reply::Int(n + by))
                        }
                    }
                })
            }
        }
    }

    fn check(t: &mut Case<Self>, key: &str, m: &Self, p: &Probe) -> Result<(), String> {
        let all = texts(&t.get(&["HGETALL", key])).map_err(|e| format!("HGETALL {key}: {e}"))?;
        if all.len() % 2 != 0 {
            return Err(format!("HGETALL {key}: odd reply {all:?}"));
        }
        let mut pairs: Vec<(String, String)> = all
            .chunks(2)
            .map(|p| (p[0].clone(), p[1].clone()))
            .collect();
        pairs.sort();
        let want: Vec<(String, String)> = m.0.clone().into_iter().collect();
        if pairs != want {
            return Err(format!("HGETALL {key}: expected {want:?}, got {pairs:?}"));
        }
        t.read(&["HLEN", key], Reply::Int(m.0.len() as i64))?;
        let f = FIELDS[p.m % FIELDS.len()];
        let v = m.0.get(f);
        t.read(&["HGET", key, f], v.map_or(Reply::Nil, |v| bulk(v)))?;
        t.read(&["HEXISTS", key, f], Reply::Int(i64::from(v.is_some())))?;
        let g = FIELDS[p.lo % FIELDS.len()];
        t.read(
            &["HMGET", key, f, g],
            each_or_nil(&m.0, &[f, g], |v| bulk(v)),
        )?;
        let mut got = texts(&t.get(&["HKEYS", key]))?;
        got.sort();
        let want: Vec<String> = m.0.keys().cloned().collect();
        if got != want {
            return Err(format!("HKEYS {key}: expected {want:?}, got {got:?}"));
        }
        let mut got = texts(&t.get(&["HVALS", key]))?;
        got.sort();
        let mut want: Vec<String> = m.0.values().cloned().collect();
        want.sort();
        if got != want {
            return Err(format!("HVALS {key}: expected {want:?}, got {got:?}"));
        }
        let all = t.scan_all("HSCAN", key)?;
        let mut got: Vec<(String, String)> = all
            .chunks(2)
            .map(|p| (p[0].clone(), p.get(1).cloned().unwrap_or_default()))
            .collect();
        got.sort();
        if got != pairs {
            return Err(format!("HSCAN {key}: expected {pairs:?}, got {got:?}"));
        }
        Ok(())
    }
}

fn hash_ops() -> BoxedStrategy<HOp> {
    let k = || 0..KEYS.len();
    let f = || 0..FIELDS.len();
    let v = || 0..HVALUES.len();
    prop_oneof![
        4 => (k(), proptest::collection::vec((f(), v()), 1..4)).prop_map(|(k, p)| HOp::Set(k, p)),
        1 => (k(), f(), v()).prop_map(|(k, f, v)| HOp::SetNx(k, f, v)),
        3 => (k(), proptest::collection::vec(f(), 1..4)).prop_map(|(k, f)| HOp::Del(k, f)),
        2 => (k(), f(), -5i64..6).prop_map(|(k, f, by)| HOp::IncrBy(k, f, by)),
    ]
    .boxed()
}

#[test]
fn hashes_follow_a_model() {
    run_model::<HashM>(hash_ops());
}

// ---------------------------------------------------------------------------------------------
// Lists.

const ELEMS: [&str; 4] = ["a", "b", "c", "d"];

/// A list as Redis's documentation describes it: a sequence of elements, head first. Written
/// from that description, not from the server's code.
#[derive(Debug, Clone, PartialEq, Default)]
struct ListM(Vec<String>);

#[derive(Debug, Clone)]
enum LOp {
    /// key, left, only if it exists (PUSHX), elements
    Push(usize, bool, bool, Vec<usize>),
    /// key, left, count
    Pop(usize, bool, Option<usize>),
    Set(usize, i64, usize),
    Rem(usize, i64, usize),
    Trim(usize, i64, i64),
    /// key, after, pivot, element
    Insert(usize, bool, usize, usize),
    /// source, destination, from the left, to the left
    Move(usize, usize, bool, bool),
}

fn side(left: bool) -> &'static str {
    if left { "LEFT" } else { "RIGHT" }
}

/// LPOS `element` RANK `rank` [COUNT `count`] MAXLEN `maxlen`: the matches are looked for from
/// the head, or from the tail for a negative rank, among the first `maxlen` elements looked at
/// (0: all of them), and the |rank|-th match is the first one returned; positions count from
/// the head either way. Without COUNT, that match or nil; with it, up to `count` matches (0:
/// all of them).
fn lpos(items: &[String], element: &str, rank: i64, count: Option<usize>, maxlen: usize) -> Reply {
    let order: Vec<usize> = if rank < 0 {
        (0..items.len()).rev().collect()
    } else {
        (0..items.len()).collect()
    };
    let looked_at = if maxlen == 0 { items.len() } else { maxlen };
    let mut matches = order
        .into_iter()
        .take(looked_at)
        .filter(|&i| items[i] == element)
        .skip(rank.unsigned_abs() as usize - 1)
        .map(|i| Reply::Int(i as i64));
    match count {
        None => matches.next().unwrap_or(Reply::Nil),
        Some(0) => Reply::Array(matches.collect()),
        Some(n) => Reply::Array(matches.take(n).collect()),
    }
}

impl Model for ListM {
    type Op = LOp;
    const TYPE: &'static str = "list";
    const READ: &'static str = "LLEN";

    fn apply(t: &mut Case<Self>, op: &LOp) -> Result<(), String> {
        match op {
            LOp::Push(k, left, only_existing, elems) => {
                let name = match (left, only_existing) {
                    (true, false) => "LPUSH",
                    (false, false) => "RPUSH",
                    (true, true) => "LPUSHX",
                    (false, true) => "RPUSHX",
                };
                let mut args = vec![name, KEYS[*k]];
                args.extend(elems.iter().map(|&e| ELEMS[e]));
                t.write(KEYS[*k], &args, |l| {
                    if *only_existing && l.0.is_empty() {
                        return Want::Is(Reply::Int(0));
                    }
                    // Each element goes to the head in turn: LPUSH a b leaves b first.
                    for &e in elems {
                        if *left {
                            l.0.insert(0, ELEMS[e].into());
                        } else {
                            l.0.push(ELEMS[e].into());
                        }
                    }
                    Want::Is(Reply::Int(l.0.len() as i64))
                })
            }
            LOp::Pop(k, left, count) => {
                let count_s = count.map(|c| c.to_string());
                let mut args = vec![if *left { "LPOP" } else { "RPOP" }, KEYS[*k]];
                args.extend(count_s.as_deref());
                t.write(KEYS[*k], &args, |l| {
                    if l.0.is_empty() {
                        // With a count, Redis's null is the null array.
                        return Want::Is(if count.is_some() {
                            Reply::NilArray
                        } else {
                            Reply::Nil
                        });
                    }
                    let n = count.unwrap_or(1).min(l.0.len());
                    // Popped in the order they leave the list: RPOP takes the last first.
                    let popped: Vec<String> = if *left {
                        l.0.drain(..n).collect()
                    } else {
                        l.0.drain(l.0.len() - n..).rev().collect()
                    };
                    Want::Is(match count {
                        Some(_) => bulks(&popped),
                        None => bulk(&popped[0]),
                    })
                })
            }
            LOp::Set(k, i, e) => {
                let i_s = i.to_string();
                let args = ["LSET", KEYS[*k], i_s.as_str(), ELEMS[*e]];
                t.write(KEYS[*k], &args, |l| match nth(&l.0, *i) {
                    // No such key, or the index is out of range.
                    None => Want::Err("ERR"),
                    Some(at) => {
                        l.0[at] = ELEMS[*e].into();
                        Want::Is(ok())
                    }
                })
            }
            LOp::Rem(k, count, e) => {
                let c_s = count.to_string();
                let args = ["LREM", KEYS[*k], c_s.as_str(), ELEMS[*e]];
                t.write(KEYS[*k], &args, |l| {
                    // The first `count` matches from the head, the last |count| for a negative
                    // count, or all of them for 0.
                    let mut hits: Vec<usize> =
                        (0..l.0.len()).filter(|&i| l.0[i] == ELEMS[*e]).collect();
                    if *count < 0 {
                        hits.reverse();
                    }
                    if *count != 0 {
                        hits.truncate(count.unsigned_abs() as usize);
                    }
                    let before = l.0.len();
                    l.0 = (0..before)
                        .filter(|i| !hits.contains(i))
                        .map(|i| l.0[i].clone())
                        .collect();
                    Want::Is(Reply::Int((before - l.0.len()) as i64))
                })
            }
            LOp::Trim(k, start, stop) => {
                let (a, b) = (start.to_string(), stop.to_string());
                let args = ["LTRIM", KEYS[*k], a.as_str(), b.as_str()];
                t.write(KEYS[*k], &args, |l| {
                    l.0 = range(&l.0, *start, *stop);
                    Want::Is(ok())
                })
            }
            LOp::Insert(k, after, pivot, e) => {
                let place = if *after { "AFTER" } else { "BEFORE" };
                let args = ["LINSERT", KEYS[*k], place, ELEMS[*pivot], ELEMS[*e]];
                t.write(KEYS[*k], &args, |l| {
                    if l.0.is_empty() {
                        return Want::Is(Reply::Int(0));
                    }
                    // The first occurrence of the pivot from the head.
                    match l.0.iter().position(|v| v == ELEMS[*pivot]) {
                        None => Want::Is(Reply::Int(-1)),
                        Some(at) => {
                            l.0.insert(at + usize::from(*after), ELEMS[*e].into());
                            Want::Is(Reply::Int(l.0.len() as i64))
                        }
                    }
                })
            }
            LOp::Move(s, d, from_left, to_left) => {
                let (src, dst) = (KEYS[*s], KEYS[*d]);
                let args = ["LMOVE", src, dst, side(*from_left), side(*to_left)];
                // The source is looked at first (no key: nil), then the destination. The
                // element is popped, then pushed: onto the same list when src is dst.
                let want = match (t.coll(src), t.coll(dst)) {
                    (Err(()), _) => WRONGTYPE,
                    (Ok(None), _) => Want::Is(Reply::Nil),
                    (Ok(Some(_)), Err(())) => WRONGTYPE,
                    (Ok(Some(mut from)), Ok(_)) => {
                        let v = if *from_left {
                            from.0.remove(0)
                        } else {
                            from.0.pop().unwrap()
                        };
                        t.put(src, from);
                        let mut to = t.coll(dst).unwrap().unwrap_or_default();
                        if *to_left {
                            to.0.insert(0, v.clone());
                        } else {
                            to.0.push(v.clone());
                        }
                        t.put(dst, to);
                        Want::Is(bulk(&v))
                    }
                };
                t.expect(&args, want).map(drop)
            }
        }
    }

    fn check(t: &mut Case<Self>, key: &str, m: &Self, p: &Probe) -> Result<(), String> {
        let items = &m.0;
        t.read(&["LRANGE", key, "0", "-1"], bulks(items))?;
        t.read(&["LLEN", key], Reply::Int(items.len() as i64))?;
        let (a, b) = (p.a.to_string(), p.b.to_string());
        t.read(&["LRANGE", key, &a, &b], bulks(range(items, p.a, p.b)))?;
        let at = nth(items, p.a);
        t.read(
            &["LINDEX", key, &a],
            at.map_or(Reply::Nil, |i| bulk(&items[i])),
        )?;
        let e = ELEMS[p.m % ELEMS.len()];
        t.read(&["LPOS", key, e], lpos(items, e, 1, None, 0))?;
        // RANK (never 0: an error), COUNT and MAXLEN.
        let (count, maxlen) = (p.lo % 4, p.hi % 5);
        let (c, ml) = (count.to_string(), maxlen.to_string());
        let with_rank = ["LPOS", key, e, "RANK", &b, "MAXLEN", &ml];
        let with_count = ["LPOS", key, e, "RANK", &b, "COUNT", &c, "MAXLEN", &ml];
        if p.b == 0 {
            t.read_err(&with_rank, "ERR")?;
            t.read_err(&with_count, "ERR")?;
        } else {
            t.read(&with_rank, lpos(items, e, p.b, None, maxlen))?;
            t.read(&with_count, lpos(items, e, p.b, Some(count), maxlen))?;
        }
        Ok(())
    }
}

fn list_ops() -> BoxedStrategy<LOp> {
    let k = || 0..KEYS.len();
    let e = || 0..ELEMS.len();
    prop_oneof![
        5 => (k(), any::<bool>(), proptest::bool::weighted(0.15), proptest::collection::vec(e(), 1..5))
            .prop_map(|(k, l, x, v)| LOp::Push(k, l, x, v)),
        3 => (k(), any::<bool>(), proptest::option::of(1usize..5))
            .prop_map(|(k, l, c)| LOp::Pop(k, l, c)),
        1 => (k(), -5i64..5, e()).prop_map(|(k, i, e)| LOp::Set(k, i, e)),
        1 => (k(), -3i64..4, e()).prop_map(|(k, c, e)| LOp::Rem(k, c, e)),
        1 => (k(), -7i64..7, -7i64..7).prop_map(|(k, a, b)| LOp::Trim(k, a, b)),
        1 => (k(), any::<bool>(), e(), e()).prop_map(|(k, a, p, v)| LOp::Insert(k, a, p, v)),
        2 => (k(), k(), any::<bool>(), any::<bool>()).prop_map(|(s, d, f, t)| LOp::Move(s, d, f, t)),
    ]
    .boxed()
}

#[test]
fn lists_follow_a_model() {
    run_model::<ListM>(list_ops());
}

// ---------------------------------------------------------------------------------------------
// Sets.

const MEMBERS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];

#[derive(Debug, Clone, PartialEq, Default)]
struct SetM(BTreeSet<String>);

#[derive(Debug, Clone, Copy)]
enum Combine {
    Inter,
    Union,
    Diff,
}

impl Combine {
    fn name(self, store: bool) -> &'static str {
        match (self, store) {
            (Combine::Inter, false) => "SINTER",
            (Combine::Union, false) => "SUNION",
            (Combine::Diff, false) => "SDIFF",
            (Combine::Inter, true) => "SINTERSTORE",
            (Combine::Union, true) => "SUNIONSTORE",
            (Combine::Diff, true) => "SDIFFSTORE",
        }
    }

    /// The result over `keys` in `t`'s model; `None` if one holds a string (WRONGTYPE).
    fn eval(self, t: &Case<SetM>, keys: &[&str]) -> Option<BTreeSet<String>> {
        let mut sets = Vec::new();
        for k in keys {
            sets.push(t.coll(k).ok()?.map(|s| s.0));
        }
        Some(match self {
            Combine::Inter => {
                if sets.iter().any(Option::is_none) {
                    BTreeSet::new()
                } else {
                    let mut it = sets.into_iter().flatten();
                    let first = it.next().unwrap();
                    it.fold(first, |acc, s| acc.intersection(&s).cloned().collect())
                }
            }
            Combine::Union => sets.into_iter().flatten().flatten().collect(),
            Combine::Diff => {
                let mut it = sets.into_iter();
                let first = it.next().unwrap().unwrap_or_default();
                it.flatten()
                    .fold(first, |acc, s| acc.difference(&s).cloned().collect())
            }
        })
    }
}

#[derive(Debug, Clone)]
enum SOp {
    Add(usize, Vec<usize>),
    Rem(usize, Vec<usize>),
    Pop(usize, Option<usize>),
    Move(usize, usize, usize),
    Store(Combine, usize, Vec<usize>),
}

impl Model for SetM {
    type Op = SOp;
    const TYPE: &'static str = "set";
    const READ: &'static str = "SMEMBERS";

    fn apply(t: &mut Case<Self>, op: &SOp) -> Result<(), String> {
        match op {
            SOp::Add(k, members) | SOp::Rem(k, members) => {
                let add = matches!(op, SOp::Add(..));
                let members: Vec<&str> = members.iter().map(|&m| MEMBERS[m]).collect();
                let cmd = if add { "SADD" } else { "SREM" };
                t.write_each(cmd, KEYS[*k], &members, |s, m| {
                    if add {
                        s.0.insert(m.into())
                    } else {
                        s.0.remove(m)
                    }
                })?;
            }
            SOp::Pop(k, count) => {
                let key = KEYS[*k];
                let count_s = count.map(|c| c.to_string());
                let mut args = vec!["SPOP", key];
                if let Some(c) = &count_s {
                    args.push(c);
                }
                let Ok(s) = t.coll(key) else {
                    return t.expect(&args, WRONGTYPE).map(drop);
                };
                let Some(mut s) = s else {
                    let want = if count.is_some() {
                        bulks(Vec::<String>::new())
                    } else {
                        Reply::Nil
                    };
                    return t.expect(&args, Want::Is(want)).map(drop);
                };
                // Random members: checked by membership and number.
                let got = t.send(&args);
                let popped = match count {
                    Some(_) => texts(&got),
                    None => text(&got).map(|m| vec![m]),
                }
                .map_err(|e| format!("{}: {e}", args.join(" ")))?;
                let n = count.unwrap_or(1).min(s.0.len());
                let distinct: BTreeSet<&String> = popped.iter().collect();
                if popped.len() != n || distinct.len() != n {
                    return Err(format!(
                        "{}: expected {n} distinct members of {:?}, got {popped:?}",
                        args.join(" "),
                        s.0
                    ));
                }
                for m in &popped {
                    if !s.0.remove(m) {
                        return Err(format!(
                            "{}: popped {m:?}, not a member of {:?}",
                            args.join(" "),
                            s.0
                        ));
                    }
                }
                t.put(key, s);
            }
            SOp::Move(a, b, m) => {
                let (src, dst, member) = (KEYS[*a], KEYS[*b], MEMBERS[*m]);
                let args = ["SMOVE", src, dst, member];
                let want = match (t.coll(src), t.coll(dst)) {
                    (Ok(None), _) => Want::Is(Reply::Int(0)),
                    (Err(()), _) | (_, Err(())) => WRONGTYPE,
                    (Ok(Some(_)), Ok(_)) if src == dst => {
                        let has = t.coll(src).unwrap().unwrap().0.contains(member);
                        Want::Is(Reply::Int(i64::from(has)))
                    }
                    (Ok(Some(mut s)), Ok(d)) => {
                        if s.0.remove(member) {
                            let mut d = d.unwrap_or_default();
                            d.0.insert(member.into());
                            t.put(src, s);
                            t.put(dst, d);
                            Want::Is(Reply::Int(1))
                        } else {
                            Want::Is(Reply::Int(0))
                        }
                    }
                };
                t.expect(&args, want)?;
            }
            SOp::Store(how, d, srcs) => {
                let dst = KEYS[*d];
                let srcs: Vec<&str> = srcs.iter().map(|&k| KEYS[k]).collect();
                let mut args = vec![how.name(true), dst];
                args.extend(&srcs);
                match how.eval(t, &srcs) {
                    None => {
                        t.expect(&args, WRONGTYPE)?;
                    }
                    Some(result) => {
                        let n = result.len() as i64;
                        t.model.remove(dst);
                        t.ttl.remove(dst);
                        t.put(dst, SetM(result));
                        t.expect(&args, Want::Is(Reply::Int(n)))?;
                    }
                }
            }
        }
        Ok(())
    }

    fn check(t: &mut Case<Self>, key: &str, m: &Self, p: &Probe) -> Result<(), String> {
        let got = texts(&t.get(&["SMEMBERS", key])).map_err(|e| format!("SMEMBERS {key}: {e}"))?;
        let got_set: BTreeSet<String> = got.iter().cloned().collect();
        if got_set != m.0 || got.len() != m.0.len() {
            return Err(format!("SMEMBERS {key}: expected {:?}, got {got:?}", m.0));
        }
        t.read(&["SCARD", key], Reply::Int(m.0.len() as i64))?;
        let member = MEMBERS[p.m % MEMBERS.len()];
        t.read(
            &["SISMEMBER", key, member],
            Reply::Int(i64::from(m.0.contains(member))),
        )?;
        let other = MEMBERS[p.lo % MEMBERS.len()];
        t.read(
            &["SMISMEMBER", key, member, other],
            Reply::Array(vec![
                Reply::Int(i64::from(m.0.contains(member))),
                Reply::Int(i64::from(m.0.contains(other))),
            ]),
        )?;
        let mut got = t.scan_all("SSCAN", key)?;
        got.sort();
        if got != m.0.iter().cloned().collect::<Vec<_>>() {
            return Err(format!("SSCAN {key}: expected {:?}, got {got:?}", m.0));
        }
        // A read combination with another key.
        let how = [Combine::Inter, Combine::Union, Combine::Diff][p.lo % 3];
        let keys = [key, KEYS[p.other]];
        let args = [how.name(false), key, KEYS[p.other]];
        match how.eval(t, &keys) {
            None => t.read_err(&args, "WRONGTYPE")?,
            Some(want) => {
                let got = texts(&t.get(&args)).map_err(|e| format!("{}: {e}", args.join(" ")))?;
                let got_set: BTreeSet<String> = got.iter().cloned().collect();
                if got_set != want || got.len() != want.len() {
                    return Err(format!(
                        "{}: expected {want:?}, got {got:?}",
                        args.join(" ")
                    ));
                }
            }
        }
        Ok(())
    }
}

fn set_ops() -> BoxedStrategy<SOp> {
    let k = || 0..KEYS.len();
    let m = || 0..MEMBERS.len();
    let combine = prop_oneof![
        Just(Combine::Inter),
        Just(Combine::Union),
        Just(Combine::Diff)
    ];
    prop_oneof![
        5 => (k(), proptest::collection::vec(m(), 1..5)).prop_map(|(k, v)| SOp::Add(k, v)),
        2 => (k(), proptest::collection::vec(m(), 1..4)).prop_map(|(k, v)| SOp::Rem(k, v)),
        2 => (k(), proptest::option::of(0usize..5)).prop_map(|(k, c)| SOp::Pop(k, c)),
        2 => (k(), k(), m()).prop_map(|(a, b, m)| SOp::Move(a, b, m)),
        2 => (combine, k(), proptest::collection::vec(k(), 1..4))
            .prop_map(|(c, d, s)| SOp::Store(c, d, s)),
    ]
    .boxed()
}

#[test]
fn sets_follow_a_model() {
    run_model::<SetM>(set_ops());
}

// ---------------------------------------------------------------------------------------------
// Sorted sets.

const ZMEMBERS: [&str; 6] = ["a", "b", "c", "d", "e", "f"];
const SCORES: [&str; 10] = ["-2", "-1", "0", "1", "1.5", "2", "2.5", "3", "-inf", "+inf"];
const BOUNDS: [&str; 18] = [
    "-inf", "+inf", "-2", "(-2", "-1", "(-1", "0", "(0", "1", "(1", "1.5", "(1.5", "2", "(2.5",
    "3", "(3", "(-inf", "(+inf",
];

#[derive(Debug, Clone, PartialEq, Default)]
struct ZSetM(BTreeMap<String, f64>);

impl ZSetM {
    /// Members in Redis's order: by score, then by member.
    fn sorted(&self) -> Vec<(String, f64)> {
        let mut v: Vec<(String, f64)> = self.0.iter().map(|(m, s)| (m.clone(), *s)).collect();
        v.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap().then_with(|| a.0.cmp(&b.0)));
        v
    }
}

/// A score bound: `(x` is exclusive.
fn parse_bound(b: &str) -> (f64, bool) {
    match b.strip_prefix('(') {
        Some(rest) => (rest.parse().unwrap(), true),
        None => (b.parse().unwrap(), false),
    }
}

fn in_range(s: f64, lo: &str, hi: &str) -> bool {
    let (lo, lo_ex) = parse_bound(lo);
    let (hi, hi_ex) = parse_bound(hi);
    (if lo_ex { s > lo } else { s >= lo }) && (if hi_ex { s < hi } else { s <= hi })
}

fn with_scores(items: &[(String, f64)]) -> Reply {
    Reply::Array(
        items
            .iter()
            .flat_map(|(m, s)| [bulk(m), bulk(&fmt_score(*s))])
            .collect(),
    )
}

#[derive(Debug, Clone, Default)]
struct ZFlags {
    nx: bool,
    xx: bool,
    gt: bool,
    lt: bool,
    ch: bool,
    incr: bool,
}

#[derive(Debug, Clone)]
enum ZOp {
    Add(usize, ZFlags, Vec<(usize, usize)>),
    IncrBy(usize, usize, usize),
    Rem(usize, Vec<usize>),
    /// key, max, count
    Pop(usize, bool, Option<usize>),
    RemRank(usize, i64, i64),
    RemScore(usize, usize, usize),
}

impl Model for ZSetM {
    type Op = ZOp;
    const TYPE: &'static str = "zset";
    const READ: &'static str = "ZCARD";

    fn apply(t: &mut Case<Self>, op: &ZOp) -> Result<(), String> {
        match op {
            ZOp::Add(k, f, pairs) => {
                let key = KEYS[*k];
                let mut args = vec!["ZADD", key];
                for (on, name) in [
                    (f.nx, "NX"),
                    (f.xx, "XX"),
                    (f.gt, "GT"),
                    (f.lt, "LT"),
                    (f.ch, "CH"),
                    (f.incr, "INCR"),
                ] {
                    if on {
                        args.push(name);
                    }
                }
                for &(s, m) in pairs {
                    args.extend([SCORES[s], ZMEMBERS[m]]);
                }
                if (f.nx && (f.xx || f.gt || f.lt)) || (f.gt && f.lt) {
                    return t.expect(&args, Want::Err("ERR")).map(drop);
                }
                if f.incr && pairs.len() > 1 {
                    return t.expect(&args, Want::Err("ERR")).map(drop);
                }
                t.write(key, &args, |z| {
                    let (mut added, mut updated) = (0, 0);
                    let mut last = None;
                    for &(s, m) in pairs {
                        let score: f64 = SCORES[s].parse().unwrap();
                        let member = ZMEMBERS[m];
                        match z.0.get(member).copied() {
                            Some(old) => {
                                if f.nx {
                                    continue;
                                }
                                let new = if f.incr { old + score } else { score };
                                if new.is_nan() {
                                    return Want::Err("ERR");
                                }
                                if (f.gt && new <= old) || (f.lt && new >= old) {
                                    continue;
                                }
                                last = Some(new);
                                if new != old {
                                    z.0.insert(member.into(), new);
                                    updated += 1;
                                }
                            }
                            None => {
                                if f.xx {
                                    continue;
                                }
                                z.0.insert(member.into(), score);
                                added += 1;
                                last = Some(score);
                            }
                        }
                    }
                    Want::Is(if f.incr {
                        last.map_or(Reply::Nil, |s| bulk(&fmt_score(s)))
                    } else {
                        Reply::Int(if f.ch { added + updated } else { added })
                    })
                })
            }
            ZOp::IncrBy(k, by, m) => {
                let key = KEYS[*k];
                let args = ["ZINCRBY", key, SCORES[*by], ZMEMBERS[*m]];
                t.write(key, &args, |z| {
                    let by: f64 = SCORES[*by].parse().unwrap();
                    let new = z.0.get(ZMEMBERS[*m]).copied().unwrap_or(0.0) + by;
                    if new.is_nan() {
                        return Want::Err("ERR");
                    }
                    z.0.insert(ZMEMBERS[*m].into(), new);
                    Want::Is(bulk(&fmt_score(new)))
                })
            }
            ZOp::Rem(k, members) => {
                let members: Vec<&str> = members.iter().map(|&m| ZMEMBERS[m]).collect();
                t.write_each("ZREM", KEYS[*k], &members, |z, m| z.0.remove(m).is_some())
            }
            ZOp::Pop(k, max, count) => {
                let key = KEYS[*k];
                let count_s = count.map(|c| c.to_string());
                let mut args = vec![if *max { "ZPOPMAX" } else { "ZPOPMIN" }, key];
                args.extend(count_s.as_deref());
                t.write(key, &args, |z| {
                    let mut order = z.sorted();
                    if *max {
                        order.reverse();
                    }
                    order.truncate(count.unwrap_or(1));
                    for (m, _) in &order {
                        z.0.remove(m);
                    }
                    Want::Is(with_scores(&order))
                })
            }
            ZOp::RemRank(k, start, stop) => {
                let key = KEYS[*k];
                let (a, b) = (start.to_string(), stop.to_string());
                let args = ["ZREMRANGEBYRANK", key, a.as_str(), b.as_str()];
                t.write(key, &args, |z| {
                    let gone = range(&z.sorted(), *start, *stop);
                    for (m, _) in &gone {
                        z.0.remove(m);
                    }
                    Want::Is(Reply::Int(gone.len() as i64))
                })
            }
            ZOp::RemScore(k, lo, hi) => {
                let key = KEYS[*k];
                let (lo, hi) = (BOUNDS[*lo], BOUNDS[*hi]);
                let args = ["ZREMRANGEBYSCORE", key, lo, hi];
                t.write(key, &args, |z| {
                    let before = z.0.len();
                    z.0.retain(|_, s| !in_range(*s, lo, hi));
                    Want::Is(Reply::Int((before - z.0.len()) as i64))
                })
            }
        }
    }

    fn check(t: &mut Case<Self>, key: &str, m: &Self, p: &Probe) -> Result<(), String> {
        let order = m.sorted();
        t.read(
            &["ZRANGE", key, "0", "-1", "WITHSCORES"],
            with_scores(&order),
        )?;
        t.read(&["ZCARD", key], Reply::Int(order.len() as i64))?;
        let (a, b) = (p.a.to_string(), p.b.to_string());
        let pick = |items: &[(String, f64)]| range(items, p.a, p.b);
        let want = pick(&order);
        t.read(&["ZRANGE", key, &a, &b], bulks(want.iter().map(|(m, _)| m)))?;
        let mut rev = order.clone();
        rev.reverse();
        t.read(
            &["ZREVRANGE", key, &a, &b, "WITHSCORES"],
            with_scores(&pick(&rev)),
        )?;
        let (lo, hi) = (BOUNDS[p.lo], BOUNDS[p.hi]);
        let inside: Vec<(String, f64)> = order
            .iter()
            .filter(|(_, s)| in_range(*s, lo, hi))
            .cloned()
            .collect();
        t.read(
            &["ZRANGEBYSCORE", key, lo, hi, "WITHSCORES"],
            with_scores(&inside),
        )?;
        t.read(&["ZCOUNT", key, lo, hi], Reply::Int(inside.len() as i64))?;
        let mut inside_rev = inside.clone();
        inside_rev.reverse();
        t.read(
            &["ZREVRANGEBYSCORE", key, hi, lo],
            bulks(inside_rev.iter().map(|(m, _)| m)),
        )?;
        let (offset, count) = (p.a.rem_euclid(4) - 1, p.b);
        let limited: Vec<(String, f64)> = if offset < 0 {
            Vec::new()
        } else {
            inside
                .iter()
                .skip(offset as usize)
                .take(if count < 0 {
                    usize::MAX
                } else {
                    count as usize
                })
                .cloned()
                .collect()
        };
        let (o, n) = (offset.to_string(), count.to_string());
        t.read(
            &["ZRANGEBYSCORE", key, lo, hi, "WITHSCORES", "LIMIT", &o, &n],
            with_scores(&limited),
        )?;
        let member = ZMEMBERS[p.m % ZMEMBERS.len()];
        let other = ZMEMBERS[p.lo % ZMEMBERS.len()];
        t.read(
            &["ZMSCORE", key, member, other],
            each_or_nil(&m.0, &[member, other], |s| bulk(&fmt_score(*s))),
        )?;
        let all = t.scan_all("ZSCAN", key)?;
        let mut got: Vec<String> = all
            .chunks(2)
            .map(|p| format!("{}={}", p[0], p.get(1).cloned().unwrap_or_default()))
            .collect();
        got.sort();
        let want: Vec<String> =
            m.0.iter()
                .map(|(x, s)| format!("{x}={}", fmt_score(*s)))
                .collect();
        if got != want {
            return Err(format!("ZSCAN {key}: expected {want:?}, got {got:?}"));
        }
        let rank = order.iter().position(|(x, _)| x == member);
        t.read(
            &["ZRANK", key, member],
            rank.map_or(Reply::Nil, |r| Reply::Int(r as i64)),
        )?;
        t.read(
            &["ZREVRANK", key, member],
            rank.map_or(Reply::Nil, |r| Reply::Int((order.len() - 1 - r) as i64)),
        )?;
        t.read(
            &["ZSCORE", key, member],
            m.0.get(member).map_or(Reply::Nil, |s| bulk(&fmt_score(*s))),
        )?;
        Ok(())
    }
}

fn zset_ops() -> BoxedStrategy<ZOp> {
    let k = || 0..KEYS.len();
    let m = || 0..ZMEMBERS.len();
    let s = || 0..SCORES.len();
    let b = || 0..BOUNDS.len();
    let flag = || proptest::bool::weighted(0.15);
    let flags =
        (flag(), flag(), flag(), flag(), flag(), flag()).prop_map(|(nx, xx, gt, lt, ch, incr)| {
            ZFlags {
                nx,
                xx,
                gt,
                lt,
                ch,
                incr,
            }
        });
    // INCR mostly with one pair (more is an error).
    let pairs = prop_oneof![
        3 => proptest::collection::vec((s(), m()), 1..2),
        2 => proptest::collection::vec((s(), m()), 2..4),
    ];
    prop_oneof![
        6 => (k(), flags, pairs).prop_map(|(k, f, p)| ZOp::Add(k, f, p)),
        2 => (k(), s(), m()).prop_map(|(k, s, m)| ZOp::IncrBy(k, s, m)),
        2 => (k(), proptest::collection::vec(m(), 1..4)).prop_map(|(k, v)| ZOp::Rem(k, v)),
        2 => (k(), any::<bool>(), proptest::option::of(0usize..4))
            .prop_map(|(k, x, c)| ZOp::Pop(k, x, c)),
        1 => (k(), -7i64..7, -7i64..7).prop_map(|(k, a, b)| ZOp::RemRank(k, a, b)),
        1 => (k(), b(), b()).prop_map(|(k, lo, hi)| ZOp::RemScore(k, lo, hi)),
    ]
    .boxed()
}

#[test]
fn sorted_sets_follow_a_model() {
    run_model::<ZSetM>(zset_ops());
}

// ---------------------------------------------------------------------------------------------
// Restarts and merges.

/// What a client sees of one key: type, absolute expiry (-1: none), size by the size command,
/// and contents (hash pairs and set members sorted; lists and sorted sets in their order).
#[derive(Debug, PartialEq)]
struct KeyDump {
    ty: String,
    expire_at: i64,
    len: i64,
    content: Vec<String>,
}

type Snapshot = BTreeMap<(u8, String), KeyDump>;

/// Every key of databases 0 and 1 with its contents; checks that each collection's size agrees
/// with its members.
fn snapshot(c: &mut Raw) -> Snapshot {
    let mut out = Snapshot::new();
    for db in [0u8, 1] {
        run(c, &["SELECT", &db.to_string()]);
        let keys = texts(&run(c, &["KEYS", "*"])).unwrap();
        for key in keys {
            let ty = match run(c, &["TYPE", &key]) {
                Reply::Simple(t) => t,
                other => panic!("TYPE {key}: {other:?}"),
            };
            let expire_at = int(&run(c, &["PEXPIRETIME", &key]));
            let (len, content) = match ty.as_str() {
                "string" => (1, vec![text(&run(c, &["GET", &key])).unwrap()]),
                "hash" => {
                    let all = texts(&run(c, &["HGETALL", &key])).unwrap();
                    let mut pairs: Vec<String> = all
                        .chunks(2)
                        .map(|p| format!("{}={}", p[0], p[1]))
                        .collect();
                    pairs.sort();
                    (int(&run(c, &["HLEN", &key])), pairs)
                }
                "list" => (
                    int(&run(c, &["LLEN", &key])),
                    texts(&run(c, &["LRANGE", &key, "0", "-1"])).unwrap(),
                ),
                "set" => {
                    let mut m = texts(&run(c, &["SMEMBERS", &key])).unwrap();
                    m.sort();
                    (int(&run(c, &["SCARD", &key])), m)
                }
                "zset" => {
                    let all = texts(&run(c, &["ZRANGE", &key, "0", "-1", "WITHSCORES"])).unwrap();
                    let pairs: Vec<String> = all
                        .chunks(2)
                        .map(|p| format!("{}={}", p[0], p[1]))
                        .collect();
                    (int(&run(c, &["ZCARD", &key])), pairs)
                }
                other => panic!("TYPE {key}: {other}"),
            };
            if ty != "string" {
                assert_eq!(
                    len,
                    content.len() as i64,
                    "db {db} {ty} {key}: its size disagrees with its members"
                );
            }
            out.insert(
                (db, key),
                KeyDump {
                    ty,
                    expire_at,
                    len,
                    content,
                },
            );
        }
    }
    run(c, &["SELECT", "0"]);
    out
}

/// Sends `head` followed by the arguments `rest`; panics on an error reply.
fn run_with(c: &mut Raw, head: &[&str], rest: impl IntoIterator<Item = String>) -> Reply {
    let rest: Vec<String> = rest.into_iter().collect();
    let args: Vec<&str> = head
        .iter()
        .copied()
        .chain(rest.iter().map(String::as_str))
        .collect();
    run(c, &args)
}

/// Sends `head` followed by `items`, `per` items at a time (a command each).
fn run_in_chunks(c: &mut Raw, head: &[&str], items: impl IntoIterator<Item = String>, per: usize) {
    let items: Vec<String> = items.into_iter().collect();
    for chunk in items.chunks(per) {
        run_with(c, head, chunk.iter().cloned());
    }
}

/// Builds collections of every type, renamed, moved, copied, expiring, trimmed, deleted and
/// overwritten: a few thousand members in all.
fn build_everything(c: &mut Raw) {
    let mut rng = Rng::new(7);
    for i in 0..8 {
        let pairs = (0..50 + i * 40)
            .flat_map(|j| [format!("f{j}"), format!("v{i}-{j}-{}", rng.below(1000))]);
        let added = run_with(c, &["HSET", &format!("hash:{i}")], pairs);
        assert_eq!(int(&added), 50 + i as i64 * 40);
    }
    for i in 0..6 {
        let key = format!("list:{i}");
        run_with(c, &["RPUSH", &key], (0..200).map(|j| format!("r{i}-{j}")));
        run_with(c, &["LPUSH", &key], (0..150).map(|j| format!("l{i}-{j}")));
        run(c, &["LTRIM", &key, &(10 + i).to_string(), "-20"]);
        run(c, &["LPOP", &key, "3"]);
        run(c, &["RPOP", &key]);
        run(c, &["LSET", &key, "5", "changed"]);
        run(
            c,
            &["LINSERT", &key, "BEFORE", &format!("r{i}-100"), "inserted"],
        );
    }
    for i in 0..6 {
        let members = (0..100 + i * 20).map(|j| format!("m{j}"));
        run_with(c, &["SADD", &format!("set:{i}")], members);
        run(c, &["SREM", &format!("set:{i}"), "m3", "m5", "m7"]);
    }
    for i in 0..6 {
        let pairs = (0..150).flat_map(|j| {
            let score = if j % 3 == 0 {
                format!("{}.5", j % 17)
            } else {
                format!("{}", j % 17)
            };
            [score, format!("z{j}")]
        });
        run_with(c, &["ZADD", &format!("zset:{i}")], pairs);
        run(c, &["ZREM", &format!("zset:{i}"), "z1", "z2"]);
        run(c, &["ZINCRBY", &format!("zset:{i}"), "100", "z10"]);
    }
    // Expiries far in the future.
    for key in ["hash:1", "list:1", "set:1", "zset:1"] {
        assert_eq!(int(&run(c, &["EXPIRE", key, "1000000"])), 1);
    }
    // Renamed (one of them with its expiry).
    run(c, &["RENAME", "hash:2", "hash:renamed"]);
    run(c, &["RENAME", "list:1", "list:renamed-with-ttl"]);
    run(c, &["RENAME", "zset:2", "zset:renamed"]);
    // Moved to database 1.
    for key in ["set:2", "zset:3", "hash:3", "list:2"] {
        assert_eq!(int(&run(c, &["MOVE", key, "1"])), 1);
    }
    // Copied, within db 0 and into db 1.
    assert_eq!(int(&run(c, &["COPY", "zset:4", "zset:copy"])), 1);
    assert_eq!(int(&run(c, &["COPY", "list:3", "list:copy", "DB", "1"])), 1);
    assert_eq!(int(&run(c, &["COPY", "hash:1", "hash:copy"])), 1);
    assert_eq!(int(&run(c, &["COPY", "set:1", "set:copy", "DB", "1"])), 1);
    // The copies are independent of the originals.
    run(c, &["HSET", "hash:copy", "only-in-copy", "1"]);
    run(c, &["RPUSH", "list:3", "only-in-original"]);
    // Deleted, overwritten, emptied; some keys recreated after.
    assert_eq!(int(&run(c, &["DEL", "hash:4", "list:4", "set:4"])), 3);
    run(c, &["SET", "zset:5", "now a string"]);
    run(c, &["ZREMRANGEBYRANK", "zset:0", "0", "-1"]);
    run(c, &["HSET", "hash:4", "reborn", "yes"]);
    run(c, &["SADD", "set:4", "reborn"]);
    run(c, &["SET", "plain", "string"]);
}

fn check_built(snap: &Snapshot) {
    let get = |db: u8, k: &str| snap.get(&(db, k.to_string()));
    for gone in [
        "hash:2", "list:1", "zset:2", "set:2", "zset:3", "hash:3", "list:2", "zset:0", "list:4",
    ] {
        assert!(get(0, gone).is_none(), "{gone} should be gone from db 0");
    }
    assert_eq!(get(0, "hash:renamed").unwrap().len, 130);
    let renamed = get(0, "list:renamed-with-ttl").unwrap();
    assert!(renamed.expire_at > 0, "{renamed:?}");
    assert_eq!(get(1, "set:2").unwrap().len, 137);
    assert_eq!(get(1, "hash:3").unwrap().len, 170);
    assert_eq!(
        get(0, "hash:copy").unwrap().expire_at,
        get(0, "hash:1").unwrap().expire_at
    );
    assert_eq!(get(0, "hash:copy").unwrap().len, 91);
    assert_eq!(get(0, "hash:4").unwrap().content, vec!["reborn=yes"]);
    assert_eq!(get(0, "set:4").unwrap().content, vec!["reborn"]);
    assert_eq!(get(0, "zset:5").unwrap().ty, "string");
    assert_eq!(get(0, "zset:4").unwrap(), get(0, "zset:copy").unwrap());
    let l3 = &get(0, "list:3").unwrap().content;
    let copy = &get(1, "list:copy").unwrap().content;
    assert_eq!(&l3[..l3.len() - 1], &copy[..]);
    let total: i64 = snap.values().map(|d| d.len).sum();
    assert!(total > 3000, "{total} members");
}

#[test]
fn restart_and_merge_keep_every_collection() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path());
    let mut c = srv.raw();
    build_everything(&mut c);
    let before = snapshot(&mut c);
    check_built(&before);
    drop(c);
    srv.stop();

    let srv = start(dir.path());
    let mut c = srv.raw();
    assert!(snapshot(&mut c) == before, "after a restart");
    rewrite_and_wait(&mut c);
    assert!(
        snapshot(&mut c) == before,
        "after BGREWRITEAOF's sweep and merge"
    );
    // The sweep reclaimed the dead collections (hash:4, list:4, set:4, zset:5 and zset:0).
    assert!(common::info_field(&mut c, "persistence", "caskdb_members_reclaimed") > 0);
    drop(c);
    srv.stop();

    let srv = start(dir.path());
    let mut c = srv.raw();
    let after = snapshot(&mut c);
    if after != before {
        for (k, v) in &before {
            assert_eq!(after.get(k), Some(v), "{k:?} after the merge and a restart");
        }
        panic!(
            "keys appeared after the merge and a restart: {:?}",
            after
                .keys()
                .filter(|k| !before.contains_key(k))
                .collect::<Vec<_>>()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The sweeper.

/// `[tag][id][kind]` of every member-namespace key in the engine at `dir` (server stopped).
fn member_records(dir: &Path) -> Vec<(u64, u8, Vec<u8>)> {
    let db = caskdb::Db::open(dir).unwrap();
    let mut out = Vec::new();
    for k in db.keys() {
        let k = k.unwrap();
        if !(0x80..0xC0).contains(&k[0]) {
            continue;
        }
        assert!(k.len() >= 10, "member key too short: {k:?}");
        let id = u64::from_be_bytes(k[1..9].try_into().unwrap());
        assert_eq!(k[0], 0x80 + (id % 64) as u8, "tag of id {id}");
        out.push((id, k[9], k[10..].to_vec()));
    }
    drop(db);
    out
}

#[test]
fn sweeper_reclaims_orphans_and_only_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path());
    let mut c = srv.raw();
    let pairs = (0..2000).flat_map(|j| [format!("field{j}"), format!("value{j}")]);
    run_in_chunks(&mut c, &["HSET", "doomed-hash"], pairs, 400);
    let members = (0..500).map(|j| format!("member{j}"));
    run_with(&mut c, &["SADD", "overwritten-set"], members);
    run_with(
        &mut c,
        &["RPUSH", "expiring-list"],
        (0..120).map(|j| format!("e{j}")),
    );
    run(&mut c, &["LPOP", "expiring-list", "20"]);
    let pairs = (0..300).flat_map(|j| [format!("{}", j % 37), format!("z{j}")]);
    run_with(&mut c, &["ZADD", "live-zset"], pairs);
    let live = run(&mut c, &["ZRANGE", "live-zset", "0", "-1", "WITHSCORES"]);
    assert_eq!(int(&run(&mut c, &["HLEN", "doomed-hash"])), 2000);

    assert_eq!(int(&run(&mut c, &["DEL", "doomed-hash"])), 1);
    run(&mut c, &["SET", "overwritten-set", "a string now"]);
    assert_eq!(int(&run(&mut c, &["PEXPIRE", "expiring-list", "20"])), 1);
    wait_for("expiring-list to expire", || {
        (int(&run(&mut c, &["EXISTS", "expiring-list"])) == 0).then_some(())
    });
    rewrite_and_wait(&mut c);
    // hash: 2000 fields + owner; set: 500 + owner; list: 100 elements + owner.
    assert_eq!(
        common::info_field(&mut c, "persistence", "caskdb_members_reclaimed"),
        2001 + 501 + 101
    );
    assert_eq!(
        run(&mut c, &["ZRANGE", "live-zset", "0", "-1", "WITHSCORES"]),
        live
    );
    assert_eq!(int(&run(&mut c, &["ZCARD", "live-zset"])), 300);
    assert_eq!(
        run(&mut c, &["GET", "overwritten-set"]),
        bulk("a string now")
    );
    drop(c);
    srv.stop();

    // In the files: only the live sorted set's records are left, all of them.
    let records = member_records(dir.path());
    let ids: BTreeSet<u64> = records.iter().map(|r| r.0).collect();
    assert_eq!(ids.len(), 1, "member records of ids {ids:?} remain");
    let count = |kind: u8| records.iter().filter(|r| r.1 == kind).count();
    assert_eq!((count(0), count(1), count(2)), (1, 300, 300));
    let owner = records.iter().find(|r| r.1 == 0).unwrap();
    assert!(
        owner.2.is_empty(),
        "owner key carries nothing after the kind"
    );
    let db = caskdb::Db::open(dir.path()).unwrap();
    let id = owner.0;
    let mut owner_key = vec![0x80 + (id % 64) as u8];
    owner_key.extend_from_slice(&id.to_be_bytes());
    owner_key.push(0);
    assert_eq!(
        db.get(&owner_key).unwrap().as_deref(),
        Some(&b"\0live-zset"[..]),
        "the owner record names db 0, live-zset"
    );
}

#[test]
fn new_collections_after_a_restart_never_see_old_members() {
    let dir = tempfile::tempdir().unwrap();
    let srv = start(dir.path());
    let mut c = srv.raw();
    // 70 live collections, then the victims with the highest ids.
    for i in 0..70 {
        run(&mut c, &["HSET", &format!("keep:{i}"), "f", &i.to_string()]);
    }
    let pairs = (0..50).flat_map(|j| [format!("old{j}"), "x".into()]);
    run_with(&mut c, &["HSET", "victim-hash"], pairs);
    run(&mut c, &["RPUSH", "victim-list", "old1", "old2", "old3"]);
    run(&mut c, &["SADD", "victim-set", "old1", "old2", "old3"]);
    run(&mut c, &["ZADD", "victim-zset", "1", "old1", "2", "old2"]);
    // Dead without a sweep: two deleted, one overwritten, one expired.
    assert_eq!(int(&run(&mut c, &["DEL", "victim-hash", "victim-list"])), 2);
    run(&mut c, &["SET", "victim-set", "string"]);
    run(&mut c, &["PEXPIRE", "victim-zset", "1"]);
    wait_for("victim-zset to expire", || {
        (int(&run(&mut c, &["EXISTS", "victim-zset"])) == 0).then_some(())
    });
    drop(c);
    srv.stop();
    let old_ids: BTreeSet<u64> = member_records(dir.path()).iter().map(|r| r.0).collect();
    assert_eq!(old_ids.len(), 74);

    let srv = start(dir.path());
    let mut c = srv.raw();
    let check_new = |c: &mut Raw| {
        assert_eq!(
            run(c, &["HGETALL", "victim-hash"]),
            bulks(["new", "1"]),
            "a new hash at the old key"
        );
        assert_eq!(int(&run(c, &["HLEN", "victim-hash"])), 1);
        assert_eq!(
            run(c, &["LRANGE", "victim-list", "0", "-1"]),
            bulks(["new"])
        );
        assert_eq!(run(c, &["LINDEX", "victim-list", "-1"]), bulk("new"));
        assert_eq!(run(c, &["SMEMBERS", "victim-set2"]), bulks(["new"]));
        assert_eq!(
            run(c, &["ZRANGE", "victim-zset", "0", "-1", "WITHSCORES"]),
            bulks(["new", "5"])
        );
        assert_eq!(run(c, &["ZRANK", "victim-zset", "old1"]), Reply::Nil);
        for i in [0, 33, 69] {
            assert_eq!(
                run(c, &["HGETALL", &format!("keep:{i}")]),
                bulks(["f".to_string(), i.to_string()])
            );
        }
    };
    run(&mut c, &["HSET", "victim-hash", "new", "1"]);
    run(&mut c, &["RPUSH", "victim-list", "new"]);
    run(&mut c, &["SADD", "victim-set2", "new"]);
    run(&mut c, &["ZADD", "victim-zset", "5", "new"]);
    check_new(&mut c);
    // The sweep then reclaims the old ids' records, not the new collections'.
    rewrite_and_wait(&mut c);
    assert_eq!(
        common::info_field(&mut c, "persistence", "caskdb_members_reclaimed"),
        51 + 4 + 4 + 5,
        "the four dead collections' records"
    );
    check_new(&mut c);
    drop(c);
    srv.stop();
    let records = member_records(dir.path());
    let new_ids: BTreeSet<u64> = records.iter().map(|r| r.0).collect();
    assert_eq!(new_ids.len(), 74);
    let reused: Vec<&u64> = new_ids.intersection(&old_ids).collect();
    assert_eq!(reused.len(), 70, "only the 70 kept hashes keep their ids");
}

/// BGREWRITEAOF while a sweep that nobody asked for (started by many orphans) is running must
/// still get its sweep and merge: the reply says it is scheduled.
#[test]
fn bgrewriteaof_during_an_automatic_sweep_is_not_lost() {
    let srv = start_fresh();
    let mut c = srv.raw();
    let members = (0..100_000).map(|j| format!("m{j}"));
    run_in_chunks(&mut c, &["SADD", "big"], members, 1000);
    run(&mut c, &["SADD", "small", "kept"]);
    // 100 000 orphans start a sweep at once.
    assert_eq!(int(&run(&mut c, &["DEL", "big"])), 1);
    let running = wait_for("the automatic sweep to start or end", || {
        if common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == 1 {
            Some(true)
        } else if common::info_field(&mut c, "persistence", "caskdb_members_reclaimed") > 0 {
            Some(false)
        } else {
            None
        }
    });
    let reply = run(&mut c, &["BGREWRITEAOF"]);
    // While a requested rewrite is pending or running, INFO shows it in progress; once it
    // reads 0, the requested sweep and merge must have completed.
    wait_for("aof_rewrite_in_progress:0", || {
        (common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == 0).then_some(())
    });
    assert!(
        common::info_field(&mut c, "persistence", "caskdb_rewrites") >= 1,
        "BGREWRITEAOF answered {reply:?} (an automatic sweep was {}running when it was sent) \
         but no sweep and merge followed",
        if running { "" } else { "not " }
    );
    assert_eq!(
        common::info_field(&mut c, "persistence", "caskdb_members_reclaimed"),
        100_001
    );
    assert_eq!(run(&mut c, &["SMEMBERS", "small"]), bulks(["kept"]));
}

/// A second BGREWRITEAOF while a requested sweep is running, if it is accepted ("scheduled"
/// rather than Redis's "already in progress" error), covers what was deleted between the two:
/// once no rewrite is in progress any more, those collections' records are reclaimed.
#[test]
fn bgrewriteaof_during_a_rewrite_covers_later_deletes() {
    let srv = start_fresh();
    let mut c = srv.raw();
    // Small collections first (lower ids: most of them sorted before the big one's records,
    // whatever tag the big one gets), then a big one.
    for i in 0..64 {
        run(&mut c, &["SADD", &format!("small:{i}"), "x"]);
    }
    let members = (0..60_000).map(|j| format!("m{j}"));
    run_in_chunks(&mut c, &["SADD", "big"], members, 1000);
    run(&mut c, &["SADD", "kept", "k"]);
    assert_eq!(int(&run(&mut c, &["DEL", "big"])), 1);
    let dead = common::info_field(&mut c, "persistence", "caskdb_dead_bytes");
    assert_eq!(
        run(&mut c, &["BGREWRITEAOF"]),
        Reply::Simple("Background append only file rewriting started".into())
    );
    // Once the sweep deletes records (only the big set's are garbage), it has walked past the
    // small sets, which are live so far.
    wait_for("the sweep to delete records or finish", || {
        (common::info_field(&mut c, "persistence", "caskdb_dead_bytes") > dead
            || common::info_field(&mut c, "persistence", "caskdb_rewrites") >= 1)
            .then_some(())
    });
    let small = (0..64).map(|i| format!("small:{i}"));
    assert_eq!(int(&run_with(&mut c, &["DEL"], small)), 64);
    let reply = c.cmd(&["BGREWRITEAOF"]);
    if matches!(&reply, Reply::Error(e) if e.contains("already in progress")) {
        // Redis's answer while a rewrite runs: the client knows nothing was scheduled.
        return;
    }
    assert!(matches!(reply, Reply::Simple(_)), "{reply:?}");
    wait_for("aof_rewrite_in_progress:0", || {
        (common::info_field(&mut c, "persistence", "aof_rewrite_in_progress") == 0).then_some(())
    });
    assert_eq!(
        common::info_field(&mut c, "persistence", "caskdb_members_reclaimed"),
        60_001 + 64 * 2,
        "after the second BGREWRITEAOF (answered {reply:?}) no rewrite is in progress, but the \
         small sets deleted after the first one began are not all reclaimed"
    );
    assert_eq!(run(&mut c, &["SMEMBERS", "kept"]), bulks(["k"]));
}

// ---------------------------------------------------------------------------------------------
// Several clients at once.

/// Four clients write to the same collections at once (while sweeps and merges run): every
/// command is atomic, so no increment, push or member is lost and sizes agree with members.
#[test]
fn concurrent_writers_lose_nothing() {
    let srv = start_fresh();
    const CLIENTS: usize = 4;
    const OPS: usize = 300;
    let workers: Vec<_> = (0..CLIENTS)
        .map(|w| {
            let mut c = srv.raw();
            std::thread::spawn(move || {
                for i in 0..OPS {
                    let item = format!("w{w}-{i}");
                    run(&mut c, &["HINCRBY", "counters", "shared", "1"]);
                    run(&mut c, &["HSET", "counters", &item, "1"]);
                    run(&mut c, &["RPUSH", "queue", &item, &item]);
                    run(&mut c, &["LPOP", "queue"]);
                    run(&mut c, &["SADD", "members", &item]);
                    run(&mut c, &["ZINCRBY", "scores", "1", "shared"]);
                    run(&mut c, &["ZADD", "scores", &i.to_string(), &item]);
                    // Garbage for the sweeper: a collection made and deleted.
                    run(&mut c, &["SADD", &format!("tmp-{w}"), "a", "b", "c"]);
                    run(&mut c, &["DEL", &format!("tmp-{w}")]);
                    if i % 100 == 0 {
                        run(&mut c, &["BGREWRITEAOF"]);
                    }
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let mut c = srv.raw();
    let n = CLIENTS * OPS;
    assert_eq!(
        run(&mut c, &["HGET", "counters", "shared"]),
        bulk(&n.to_string())
    );
    assert_eq!(int(&run(&mut c, &["HLEN", "counters"])), n as i64 + 1);
    assert_eq!(
        texts(&run(&mut c, &["HGETALL", "counters"])).unwrap().len(),
        2 * (n + 1)
    );
    // Each client pushed two and popped one: n elements left, each item at most twice.
    let queue = texts(&run(&mut c, &["LRANGE", "queue", "0", "-1"])).unwrap();
    assert_eq!(queue.len(), n);
    assert_eq!(int(&run(&mut c, &["LLEN", "queue"])), n as i64);
    let mut seen: BTreeMap<&String, usize> = BTreeMap::new();
    for item in &queue {
        *seen.entry(item).or_default() += 1;
    }
    assert!(
        seen.values().all(|&k| k <= 2),
        "an element pushed twice appears more often"
    );
    assert_eq!(int(&run(&mut c, &["SCARD", "members"])), n as i64);
    assert_eq!(
        texts(&run(&mut c, &["SMEMBERS", "members"])).unwrap().len(),
        n
    );
    assert_eq!(
        run(&mut c, &["ZSCORE", "scores", "shared"]),
        bulk(&n.to_string())
    );
    assert_eq!(int(&run(&mut c, &["ZCARD", "scores"])), n as i64 + 1);
    assert_eq!(
        int(&run(&mut c, &["ZCOUNT", "scores", "-inf", "+inf"])),
        n as i64 + 1
    );
    assert_eq!(
        run(&mut c, &["ZRANGE", "scores", "-1", "-1"]),
        bulks(["shared"])
    );
    for w in 0..CLIENTS {
        assert_eq!(int(&run(&mut c, &["EXISTS", &format!("tmp-{w}")])), 0);
    }
}

/// A write that changes members but not a collection's size still aborts a transaction that
/// WATCHes the key.
#[test]
fn member_changes_abort_watching_transactions() {
    let srv = start_fresh();
    let mut c = srv.raw();
    let mut other = srv.raw();
    run(&mut c, &["HSET", "h", "f", "1"]);
    run(&mut c, &["RPUSH", "l", "a", "b"]);
    run(&mut c, &["ZADD", "z", "1", "a"]);
    run(&mut c, &["SADD", "s", "a"]);
    for (key, write) in [
        ("h", &["HSET", "h", "f", "2"][..]),
        ("h", &["HINCRBY", "h", "f", "5"][..]),
        ("l", &["LSET", "l", "0", "x"][..]),
        ("l", &["LMOVE", "l", "l", "LEFT", "LEFT"][..]),
        ("l", &["LINSERT", "l", "BEFORE", "b", "c"][..]),
        ("z", &["ZADD", "z", "5", "a"][..]),
        ("z", &["ZINCRBY", "z", "1", "a"][..]),
        ("s", &["SADD", "s", "b"][..]),
        ("s", &["SINTERSTORE", "s", "s"][..]),
    ] {
        run(&mut c, &["WATCH", key]);
        run(&mut other, write);
        run(&mut c, &["MULTI"]);
        assert_eq!(c.cmd(&["PING"]), Reply::Simple("QUEUED".into()));
        assert_eq!(
            c.cmd(&["EXEC"]),
            Reply::NilArray,
            "{} did not abort a transaction watching {key}",
            write.join(" ")
        );
    }
    // And without a change in between it goes through.
    run(&mut c, &["WATCH", "h"]);
    run(&mut c, &["MULTI"]);
    c.cmd(&["HGET", "h", "f"]);
    assert_eq!(c.cmd(&["EXEC"]), Reply::Array(vec![bulk("7")]));
}

// ---------------------------------------------------------------------------------------------
// kill -9.

const CHILD_DIR_ENV: &str = "CASKDB_COLLECTIONS_CHILD_DIR";

/// Not a test on its own: the server process that `kill_9_loses_no_acknowledged_write` starts
/// and kills (this test binary run again). Without its environment variable it returns at once.
#[test]
#[ignore = "not a test on its own: the server process that the crash test starts and kills"]
fn crash_child_server() {
    common::child::serve_always_in(CHILD_DIR_ENV);
}

/// The writes of the crash test, on four keys.
#[derive(Debug, Clone)]
enum COp {
    RPush(Vec<String>),
    LPop,
    HSet(String, String),
    HDel(String),
    ZAdd(i64, String),
    ZRem(String),
    SAdd(String),
    SRem(String),
    Del(&'static str),
    /// BGREWRITEAOF: a sweep and merge for the kill to interrupt.
    Rewrite,
}

impl COp {
    fn random(rng: &mut Rng, seq: u64) -> COp {
        match rng.below(100) {
            0..=19 => COp::RPush(
                (0..1 + rng.below(3))
                    .map(|i| format!("v{seq}.{i}"))
                    .collect(),
            ),
            20..=29 => COp::LPop,
            30..=44 => COp::HSet(format!("f{}", rng.below(20)), format!("{seq}")),
            45..=49 => COp::HDel(format!("f{}", rng.below(20))),
            50..=64 => COp::ZAdd(rng.below(40) as i64 - 10, format!("m{}", rng.below(30))),
            65..=69 => COp::ZRem(format!("m{}", rng.below(30))),
            70..=84 => COp::SAdd(format!("s{}", rng.below(30))),
            85..=94 => COp::SRem(format!("s{}", rng.below(30))),
            95..=97 => COp::Del(["cl", "ch", "cz", "cs"][rng.below(4) as usize]),
            _ => COp::Rewrite,
        }
    }

    fn args(&self) -> Vec<String> {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        match self {
            COp::RPush(items) => [v(&["RPUSH", "cl"]), items.clone()].concat(),
            COp::LPop => v(&["LPOP", "cl"]),
            COp::HSet(f, x) => v(&["HSET", "ch", f.as_str(), x.as_str()]),
            COp::HDel(f) => v(&["HDEL", "ch", f.as_str()]),
            COp::ZAdd(s, m) => v(&["ZADD", "cz", s.to_string().as_str(), m.as_str()]),
            COp::ZRem(m) => v(&["ZREM", "cz", m.as_str()]),
            COp::SAdd(m) => v(&["SADD", "cs", m.as_str()]),
            COp::SRem(m) => v(&["SREM", "cs", m.as_str()]),
            COp::Del(k) => v(&["DEL", k]),
            COp::Rewrite => v(&["BGREWRITEAOF"]),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
struct CState {
    list: VecDeque<String>,
    hash: BTreeMap<String, String>,
    zset: BTreeMap<String, i64>,
    set: BTreeSet<String>,
}

impl CState {
    /// Applies `op`; returns its expected reply (`None`: any status reply).
    fn apply(&mut self, op: &COp) -> Option<Reply> {
        Some(match op {
            COp::RPush(items) => {
                self.list.extend(items.iter().cloned());
                Reply::Int(self.list.len() as i64)
            }
            COp::LPop => self.list.pop_front().map_or(Reply::Nil, |v| bulk(&v)),
            COp::HSet(f, x) => {
                Reply::Int(i64::from(self.hash.insert(f.clone(), x.clone()).is_none()))
            }
            COp::HDel(f) => Reply::Int(i64::from(self.hash.remove(f).is_some())),
            COp::ZAdd(s, m) => Reply::Int(i64::from(self.zset.insert(m.clone(), *s).is_none())),
            COp::ZRem(m) => Reply::Int(i64::from(self.zset.remove(m).is_some())),
            COp::SAdd(m) => Reply::Int(i64::from(self.set.insert(m.clone()))),
            COp::SRem(m) => Reply::Int(i64::from(self.set.remove(m))),
            COp::Del(k) => {
                let existed = match *k {
                    "cl" => !std::mem::take(&mut self.list).is_empty(),
                    "ch" => !std::mem::take(&mut self.hash).is_empty(),
                    "cz" => !std::mem::take(&mut self.zset).is_empty(),
                    _ => !std::mem::take(&mut self.set).is_empty(),
                };
                Reply::Int(i64::from(existed))
            }
            COp::Rewrite => return None,
        })
    }

    /// What the server holds, checking that every size agrees with the members.
    fn read(c: &mut Raw) -> CState {
        let list = texts(&run(c, &["LRANGE", "cl", "0", "-1"])).unwrap();
        assert_eq!(
            int(&run(c, &["LLEN", "cl"])),
            list.len() as i64,
            "LLEN vs LRANGE"
        );
        let hash = texts(&run(c, &["HGETALL", "ch"])).unwrap();
        assert_eq!(
            int(&run(c, &["HLEN", "ch"])) * 2,
            hash.len() as i64,
            "HLEN vs HGETALL"
        );
        let zset = texts(&run(c, &["ZRANGE", "cz", "0", "-1", "WITHSCORES"])).unwrap();
        assert_eq!(
            int(&run(c, &["ZCARD", "cz"])) * 2,
            zset.len() as i64,
            "ZCARD vs ZRANGE"
        );
        let set = texts(&run(c, &["SMEMBERS", "cs"])).unwrap();
        assert_eq!(
            int(&run(c, &["SCARD", "cs"])),
            set.len() as i64,
            "SCARD vs SMEMBERS"
        );
        for (k, ty, n) in [
            ("cl", "list", list.len()),
            ("ch", "hash", hash.len()),
            ("cz", "zset", zset.len()),
            ("cs", "set", set.len()),
        ] {
            let want = if n == 0 { "none" } else { ty };
            assert_eq!(run(c, &["TYPE", k]), Reply::Simple(want.into()), "TYPE {k}");
        }
        let s = CState {
            list: list.into(),
            hash: hash
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].clone()))
                .collect(),
            zset: zset
                .chunks(2)
                .map(|p| (p[0].clone(), p[1].parse().unwrap()))
                .collect(),
            set: set.iter().cloned().collect(),
        };
        assert_eq!(s.set.len(), set.len(), "SMEMBERS repeats a member");
        s
    }
}

/// Acknowledged writes and the one sent but not answered, shared with the client thread.
#[derive(Default)]
struct Log {
    acked: Vec<(COp, Reply)>,
    /// Sent, not answered, in order: any prefix of them may have been applied.
    in_flight: VecDeque<COp>,
}

/// Sends random writes until the connection breaks, logging each reply: one at a time, or
/// (`pipeline`) in batches of up to 8 sent at once, whose replies come back after one fsync.
fn drive(addr: SocketAddr, seed: u64, pipeline: bool, log: &Mutex<Log>) {
    let Ok(stream) = TcpStream::connect(addr) else {
        return;
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    let mut rng = Rng::new(seed);
    let mut seq = 0;
    while seq < 100_000 {
        let batch = if pipeline { 1 + rng.below(8) } else { 1 };
        let mut bytes = Vec::new();
        {
            let mut l = log.lock().unwrap();
            for _ in 0..batch {
                let op = COp::random(&mut rng, seq);
                seq += 1;
                let args = op.args();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                bytes.extend(common::encode(&args));
                l.in_flight.push_back(op);
            }
        }
        if w.write_all(&bytes).is_err() {
            return;
        }
        for _ in 0..batch {
            // A reply cut by the kill may fail to parse: then it was not acknowledged.
            let reply = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                common::read_reply(&mut reader)
            }));
            let Ok(Some(reply)) = reply else {
                return;
            };
            let mut l = log.lock().unwrap();
            let op = l.in_flight.pop_front().unwrap();
            l.acked.push((op, reply));
        }
    }
}

#[test]
fn kill_9_loses_no_acknowledged_write() {
    let seed = time_seed();
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    let mut model = CState::default();
    let mut in_flight: VecDeque<COp> = VecDeque::new();
    let rounds = 5 + rng.below(6);
    for round in 0..=rounds {
        let srv = ServerProcess::spawn(
            "crash_child_server",
            &[(CHILD_DIR_ENV, dir.path().as_os_str())],
            DEADLINE,
        );
        let mut c = Raw::connect(srv.addr);
        let got = CState::read(&mut c);
        // The acknowledged writes, then some prefix of those in flight.
        let mut candidate = model.clone();
        let mut applied = None;
        for n in 0..=in_flight.len() {
            if n > 0 {
                candidate.apply(&in_flight[n - 1]);
            }
            if candidate == got {
                applied = Some(n);
                break;
            }
        }
        let Some(applied) = applied else {
            panic!(
                "seed {seed} round {round}: after kill -9 the server holds\n{got:?}\nbut the \
                 acknowledged writes make\n{model:?}\n(in flight: {in_flight:?})"
            );
        };
        if round > 0 {
            eprintln!("  of which {applied} applied");
        }
        model = got;
        if round == rounds {
            drop(c);
            srv.stop(DEADLINE);
            break;
        }
        let target = 1 + rng.below(250) as usize;
        let pipeline = rng.below(2) == 1;
        let log = Arc::new(Mutex::new(Log::default()));
        let client = {
            let (log, addr, seed) = (log.clone(), srv.addr, rng.next_u64());
            std::thread::spawn(move || drive(addr, seed, pipeline, &log))
        };
        wait_for("acknowledged writes", || {
            if log.lock().unwrap().acked.len() >= target {
                return Some(());
            }
            assert!(
                !client.is_finished(),
                "seed {seed} round {round}: the client stopped after {} replies",
                log.lock().unwrap().acked.len()
            );
            None
        });
        srv.kill();
        client.join().unwrap();
        drop(c);
        let log = std::mem::take(&mut *log.lock().unwrap());
        for (i, (op, reply)) in log.acked.iter().enumerate() {
            let want = model.apply(op);
            let good = match &want {
                Some(w) => w == reply,
                None => matches!(reply, Reply::Simple(_)),
            };
            assert!(
                good,
                "seed {seed} round {round} write {i}: {:?} answered {reply:?}, expected {want:?}",
                op.args()
            );
        }
        eprintln!(
            "seed {seed} round {round}: {} killed after {} acknowledged writes, {} in flight",
            if pipeline {
                "pipelined,"
            } else {
                "one at a time,"
            },
            log.acked.len(),
            log.in_flight.len()
        );
        in_flight = log.in_flight;
    }
}
