//! A replicated group of three `caskdb serve` processes on 127.0.0.1: eight clients write
//! through every node under `appendfsync always` while faults come in turn — the leader
//! killed with SIGKILL and restarted, the leader paused (SIGSTOP) for 3 s, a follower killed,
//! a follower's directory wiped — one per round, four rounds (`CASKDB_RAFT_ROUNDS` for more);
//! then every acknowledged write must be on every node, each counter between its acknowledged
//! and its attempted increments, and no acknowledged INCR reply may repeat.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const NODES: u64 = 3;
const WRITERS: usize = 8;
const COUNTERS: usize = 4;

/// How long any one wait of this test may take before it fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A port nothing listens on now, never handed out before in this process (the kernel may
/// give a just-released port again: two nodes, or a node's client and bus ports, must not
/// get the same one).
fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if GIVEN.lock().unwrap().insert(port) {
            return port;
        }
    }
}

struct Group {
    /// How many members the group has (running or not).
    voters: usize,
    ports: BTreeMap<u64, u16>,
    spec: String,
    root: PathBuf,
    children: BTreeMap<u64, Child>,
}

impl Drop for Group {
    fn drop(&mut self) {
        for c in self.children.values_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Group {
    fn new(root: &Path) -> Group {
        Group::with_config(root, "")
    }

    /// As [`Group::new`], with `extra` lines in every node's config file.
    fn with_config(root: &Path, extra: &str) -> Group {
        let ports: BTreeMap<u64, u16> = (1..=NODES).map(|id| (id, free_port())).collect();
        let spec = ports
            .iter()
            .map(|(id, p)| format!("{id}=127.0.0.1:{p}@{}", free_port()))
            .collect::<Vec<_>>()
            .join(",");
        // Election and leader timeouts a loaded CI machine does not trip over.
        std::fs::write(
            root.join("group.toml"),
            format!(
                "cluster-election-timeout = 1000\ncluster-timeout = 10000\ncluster-secret = \"group-test-secret\"\n{extra}"
            ),
        )
        .unwrap();
        Group {
            voters: NODES as usize,
            ports,
            spec,
            root: root.to_path_buf(),
            children: BTreeMap::new(),
        }
    }

    /// Starts node `id`; the receiver says when it accepts clients (`true`), or that it
    /// exited first (`false`).
    fn spawn(&mut self, id: u64) -> std::sync::mpsc::Receiver<bool> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_caskdb"))
            .env_remove("CASKDB_DIR")
            .env("RUST_LOG", "info")
            .arg("--dir")
            .arg(self.root.join(format!("node{id}")))
            .arg("serve")
            .args(["--port", &self.ports[&id].to_string()])
            .args(["--node-id", &id.to_string()])
            .args(["--cluster", &self.spec])
            .args(["--appendfsync", "always"])
            .arg("--config")
            .arg(self.root.join("group.toml"))
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        self.children.insert(id, child);
        // The log goes to `node<id>.log` (shown if the test fails).
        let path = self.root.join(format!("node{id}.log"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .unwrap();
            let mut ready = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = writeln!(log, "{line}");
                if line.contains("ready to accept connections")
                    && let Some(tx) = ready.take()
                {
                    let _ = tx.send(true);
                }
            }
            if let Some(tx) = ready {
                let _ = tx.send(false);
            }
        });
        rx
    }

    /// Starts a node that is not in the group yet (its `--cluster` lists the members and
    /// itself): it joins as a learner, catches up, and is made a voter.
    fn start_new(&mut self, id: u64) {
        let port = free_port();
        self.ports.insert(id, port);
        self.spec = format!("{},{id}=127.0.0.1:{port}@{}", self.spec, free_port());
        self.voters += 1;
        self.start(id);
    }

    /// Waits until the leader counts `voters` voters and no learner.
    fn wait_voters(&self, voters: usize) {
        let until = Instant::now() + PATIENCE;
        loop {
            let infos = self.children.keys().filter_map(|id| {
                let mut c = self.conn(*id).ok()?;
                redis::cmd("INFO")
                    .arg("replication")
                    .query::<String>(&mut c)
                    .ok()
            });
            if infos.into_iter().any(|info| {
                info.contains("role:master\r\n")
                    && info.contains(&format!("raft_voters:{voters}\r\n"))
                    && info.contains("raft_learners:0\r\n")
            }) {
                return;
            }
            assert!(Instant::now() < until, "never {voters} voters");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts node `id` and returns once it accepts clients.
    fn start(&mut self, id: u64) {
        let ready = self.spawn(id);
        assert!(ready.recv().unwrap(), "node {id} exited before listening");
    }

    /// A group in `root` with every node started, once they agree on a leader (returned).
    fn running(root: &Path) -> (Group, u64) {
        let mut group = Group::new(root);
        group.start_all();
        let leader = group.leader();
        (group, leader)
    }

    /// Starts every node (a fresh group initialises once a majority is up).
    fn start_all(&mut self) {
        let ready: Vec<_> = (1..=NODES).map(|id| (id, self.spawn(id))).collect();
        for (id, r) in ready {
            assert!(r.recv().unwrap(), "node {id} exited before listening");
        }
    }

    fn kill(&mut self, id: u64) {
        let mut c = self.children.remove(&id).unwrap();
        c.kill().unwrap();
        c.wait().unwrap();
    }

    fn conn(&self, id: u64) -> redis::RedisResult<redis::Connection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.ports[&id]))?;
        let c = client.get_connection_with_timeout(Duration::from_secs(5))?;
        c.set_read_timeout(Some(Duration::from_secs(30)))?;
        Ok(c)
    }

    /// The node every running node names as leader (`ROLE`), once they agree.
    fn leader(&self) -> u64 {
        let until = Instant::now() + PATIENCE;
        loop {
            let mut masters = BTreeSet::new();
            let mut followers_of = Vec::new();
            for &id in self.children.keys() {
                let Ok(mut c) = self.conn(id) else { continue };
                let Ok(role) = redis::cmd("ROLE").query::<Vec<redis::Value>>(&mut c) else {
                    continue;
                };
                match role.first() {
                    Some(redis::Value::BulkString(r)) if r == b"master" => {
                        masters.insert(id);
                    }
                    Some(redis::Value::BulkString(r)) if r == b"slave" => {
                        if let Some(redis::Value::Int(port)) = role.get(2) {
                            followers_of.push(*port as u16);
                        }
                    }
                    _ => {}
                }
            }
            if masters.len() == 1 {
                let m = *masters.first().unwrap();
                let port = self.ports[&m];
                // Every member a voter: a node that started late, or came back wiped, joins
                // as a learner first.
                let settled = self.conn(m).ok().and_then(|mut c| {
                    let info: String = redis::cmd("INFO").arg("replication").query(&mut c).ok()?;
                    Some(
                        info.contains(&format!("raft_voters:{}\r\n", self.voters))
                            && info.contains("raft_learners:0\r\n"),
                    )
                });
                if settled == Some(true)
                    && followers_of.iter().all(|p| *p == port)
                    && followers_of.len() + 1 == self.children.len()
                {
                    return m;
                }
            }
            if Instant::now() >= until {
                for &id in self.children.keys() {
                    let log = std::fs::read_to_string(self.root.join(format!("node{id}.log")))
                        .unwrap_or_default();
                    let tail: Vec<_> = log.lines().rev().take(15).collect();
                    eprintln!(
                        "--- node {id}, last lines:\n{}",
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    );
                }
                panic!(
                    "no agreed leader: masters {masters:?}, followers of ports {followers_of:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// Waits (bounded by [`PATIENCE`]) until `done` holds; fails naming `what` otherwise.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the writers saw.
#[derive(Default)]
struct Seen {
    /// Per counter: the acknowledged INCRs — when sent, when answered, the reply.
    incr_acked: BTreeMap<String, Vec<(Instant, Instant, i64)>>,
    /// Per counter: INCRs sent (acknowledged or not).
    incr_attempted: BTreeMap<String, u64>,
    /// Acknowledged SETs: key → value.
    set_acked: BTreeMap<String, String>,
}

fn writer(
    group: Arc<Mutex<Vec<u16>>>,
    t: usize,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    acks: Arc<AtomicU64>,
) {
    let counter = format!("ctr{}", t % COUNTERS);
    let mut n = 0u64;
    let mut conn: Option<redis::Connection> = None;
    let mut attempt = t;
    while !stop.load(Ordering::Relaxed) {
        if conn.is_none() {
            attempt += 1;
            let ports = group.lock().unwrap().clone();
            let port = ports[attempt % ports.len()];
            conn = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
                .and_then(|c| c.get_connection_with_timeout(Duration::from_secs(2)))
                .ok();
            if let Some(c) = &mut conn {
                let _ = c.set_read_timeout(Some(Duration::from_secs(30)));
            }
            continue;
        }
        let c = conn.as_mut().unwrap();
        *seen
            .lock()
            .unwrap()
            .incr_attempted
            .entry(counter.clone())
            .or_default() += 1;
        let sent = Instant::now();
        match redis::cmd("INCR").arg(&counter).query::<i64>(c) {
            Ok(v) => {
                let answered = Instant::now();
                seen.lock()
                    .unwrap()
                    .incr_acked
                    .entry(counter.clone())
                    .or_default()
                    .push((sent, answered, v));
                acks.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() {
                    conn = None;
                }
                continue;
            }
        }
        n += 1;
        let key = format!("w{t}:{n}");
        let value = format!("v{n}");
        match redis::cmd("SET").arg(&key).arg(&value).query::<String>(c) {
            Ok(_) => {
                seen.lock().unwrap().set_acked.insert(key, value);
                acks.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                if e.is_io_error() || e.is_connection_dropped() {
                    conn = None;
                }
            }
        }
    }
}

/// A counter's acknowledged INCRs are linearizable: their replies are distinct, and one
/// answered before another was sent got the smaller reply (real-time order). INCRs whose
/// outcome is unknown may fill the gaps.
fn check_counter_history(key: &str, acked: &[(Instant, Instant, i64)]) {
    let distinct: BTreeSet<i64> = acked.iter().map(|a| a.2).collect();
    assert_eq!(distinct.len(), acked.len(), "{key}: an INCR reply repeated");
    let mut by_answer: Vec<_> = acked.to_vec();
    by_answer.sort_by_key(|a| a.1);
    let mut by_send: Vec<_> = acked.to_vec();
    by_send.sort_by_key(|a| a.0);
    // Sweep the INCRs in the order they were sent, keeping the highest reply among those
    // answered before the current one was sent.
    let mut answered = by_answer.iter().peekable();
    let mut highest: Option<(i64, Instant)> = None;
    for (sent, _, value) in by_send {
        while let Some(a) = answered.next_if(|a| a.1 < sent) {
            if highest.is_none_or(|(v, _)| a.2 > v) {
                highest = Some((a.2, a.1));
            }
        }
        if let Some((before, _)) = highest {
            assert!(
                before < value,
                "{key}: an INCR answered {before} before another was sent, which got {value}"
            );
        }
    }
}

fn wait_for_acks(acks: &AtomicU64, at_least: u64) {
    let until = Instant::now() + PATIENCE;
    while acks.load(Ordering::Relaxed) < at_least {
        assert!(
            Instant::now() < until,
            "writes stalled at {} acknowledgements",
            acks.load(Ordering::Relaxed)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn faults_in_turn_lose_no_acknowledged_write() {
    let rounds: usize = std::env::var("CASKDB_RAFT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let (mut group, first) = Group::running(dir.path());

    let ports = Arc::new(Mutex::new(
        group.ports.values().copied().collect::<Vec<_>>(),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let acks = Arc::new(AtomicU64::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (p, s, seen, a) = (ports.clone(), stop.clone(), seen.clone(), acks.clone());
            std::thread::spawn(move || writer(p, t, s, seen, a))
        })
        .collect();

    let mut leader = first;
    let mut faults: BTreeMap<&str, usize> = BTreeMap::new();
    for round in 0..rounds {
        wait_for_acks(&acks, acks.load(Ordering::Relaxed) + 200);
        let follower = *group.children.keys().find(|id| **id != leader).unwrap();
        let fault = match round % 5 {
            0 => {
                group.kill(leader);
                let next = group.leader();
                assert_ne!(next, leader);
                // The survivors go on acknowledging writes without the old leader.
                wait_for_acks(&acks, acks.load(Ordering::Relaxed) + 200);
                group.start(leader);
                "leader kill -9"
            }
            1 => {
                // Paused past the election timeout: when it resumes it must not acknowledge
                // anything as the leader it was.
                let pid = group.children[&leader].id() as i32;
                // SAFETY: signals to a child this test started.
                unsafe { libc::kill(pid, libc::SIGSTOP) };
                std::thread::sleep(Duration::from_secs(3));
                unsafe { libc::kill(pid, libc::SIGCONT) };
                "leader SIGSTOP 3 s"
            }
            2 => {
                group.kill(follower);
                wait_for_acks(&acks, acks.load(Ordering::Relaxed) + 200);
                group.start(follower);
                "follower kill -9"
            }
            3 => {
                // Its disk is lost: it comes back as a new incarnation and catches up.
                group.kill(follower);
                std::fs::remove_dir_all(group.root.join(format!("node{follower}"))).unwrap();
                group.start(follower);
                "follower disk wiped"
            }
            _ => {
                // A fourth node joins (learner, caught up, voter) while the writes go on, then
                // is removed again through RAFT.NODE REMOVE, sent to a follower (forwarded).
                let extra = NODES + 1 + round as u64;
                group.start_new(extra);
                group.wait_voters(NODES as usize + 1);
                wait_for_acks(&acks, acks.load(Ordering::Relaxed) + 200);
                let mut c = group.conn(follower).unwrap();
                let _: () = redis::cmd("RAFT.NODE")
                    .arg("REMOVE")
                    .arg(extra)
                    .query(&mut c)
                    .unwrap();
                group.voters -= 1;
                group.wait_voters(NODES as usize);
                group.kill(extra);
                "fourth node added, then removed"
            }
        };
        *faults.entry(fault).or_default() += 1;
        leader = group.leader();
        wait_for_acks(&acks, acks.load(Ordering::Relaxed) + 100);
    }
    wait_for_acks(&acks, acks.load(Ordering::Relaxed) + 100);
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }

    // A last write through the leader: once a node has it, it applied everything before.
    let mut c = group.conn(leader).unwrap();
    let _: () = redis::cmd("SET")
        .arg("fence")
        .arg("1")
        .query(&mut c)
        .unwrap();
    let seen = seen.lock().unwrap();
    let mut checked = 0;
    for id in 1..=NODES {
        let mut c = group.conn(id).unwrap();
        let _: () = redis::cmd("READONLY").query(&mut c).unwrap();
        let until = Instant::now() + PATIENCE;
        while redis::cmd("GET")
            .arg("fence")
            .query::<Option<String>>(&mut c)
            .unwrap()
            .is_none()
        {
            assert!(Instant::now() < until, "node {id} never applied the fence");
            std::thread::sleep(Duration::from_millis(20));
        }
        for (key, value) in &seen.set_acked {
            let got: Option<String> = redis::cmd("GET").arg(key).query(&mut c).unwrap();
            assert_eq!(got.as_deref(), Some(value.as_str()), "node {id}, key {key}");
            checked += 1;
        }
        for (key, acked) in &seen.incr_acked {
            let value: i64 = redis::cmd("GET")
                .arg(key)
                .query::<Option<i64>>(&mut c)
                .unwrap()
                .unwrap_or(0);
            let max = acked.iter().map(|a| a.2).max().unwrap();
            let attempted = seen.incr_attempted[key] as i64;
            assert!(
                max <= value && value <= attempted,
                "node {id}, {key}: value {value}, highest acknowledged {max}, attempted {attempted}"
            );
            check_counter_history(key, acked);
            checked += acked.len();
        }
    }
    // Nothing but the clients' keys in the keyspace (the group's own state is kept apart).
    for id in 1..=NODES {
        let mut c = group.conn(id).unwrap();
        let _: () = redis::cmd("READONLY").query(&mut c).unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut c).unwrap();
        for k in &keys {
            assert!(
                k == "fence" || k.starts_with("ctr") || k.starts_with('w'),
                "node {id}: unexpected key {k:?}"
            );
        }
    }
    // Exactly one leader, and the others follow it.
    group.leader();
    eprintln!(
        "faults {faults:?}; {} acknowledged writes checked on {NODES} nodes ({} SETs, {} INCRs)",
        checked,
        seen.set_acked.len(),
        seen.incr_acked.values().map(Vec::len).sum::<usize>()
    );
    assert_eq!(faults.values().sum::<usize>(), rounds);
}

/// Runs a client-library script of `crates/caskdb-server/tests/clients` with `--ports` of the
/// group; `false` (skipped, with a notice) if `program` is missing outside CI.
fn client_script(program: &str, script: &str, ports: &str, protocol: &str) -> bool {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../caskdb-server/tests/clients");
    let probe = match program {
        "python3" => Command::new("python3")
            .args(["-c", "import redis"])
            .status(),
        _ => Command::new("node")
            .arg("-e")
            .arg("require('ioredis')")
            .current_dir(&dir)
            .status(),
    };
    if !probe.is_ok_and(|s| s.success()) {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} with its Redis client is missing: CI must install it"
        );
        eprintln!("notice: {program} with its Redis client is missing; {script} skipped");
        return false;
    }
    let out = Command::new(program)
        .arg(dir.join(script))
        .args(["--ports", ports, "--protocol", protocol])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} --protocol {protocol} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

#[test]
fn sentinel_aware_clients_find_the_leader() {
    let dir = tempfile::tempdir().unwrap();
    let (group, _) = Group::running(dir.path());
    let ports = group
        .ports
        .values()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(",");
    for protocol in ["2", "3"] {
        client_script("python3", "sentinel_test.py", &ports, protocol);
    }
    client_script("node", "sentinel_test.js", &ports, "2");
}

/// Writes from many clients at once are pipelined (staged over each other, batched into
/// entries): they keep Redis's answers. Concurrent INCRs through every node get distinct
/// replies and sum up; of concurrent SETNX one wins; a WATCHed key written by another client
/// aborts the EXEC; a read after an acknowledged write sees it on the leader and, with
/// READONLY, once applied, on every node.
#[test]
fn concurrent_writes_keep_redis_answers() {
    const CLIENTS: u64 = 12;
    const EACH: i64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let (group, leader) = Group::running(dir.path());
    let group = &group;
    let (replies, setnx_wins) = std::thread::scope(|s| {
        // A BLPOP blocks while the writes fly (staged over them, it must not answer at once),
        // and gets what is pushed later.
        let blocked = s.spawn(move || {
            let mut c = group.conn(leader).unwrap();
            redis::cmd("BLPOP")
                .arg("queue")
                .arg(0)
                .query::<(String, String)>(&mut c)
                .unwrap()
        });
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                s.spawn(move || {
                    let mut c = group.conn(i % NODES + 1).unwrap();
                    let mut got = Vec::new();
                    for _ in 0..EACH {
                        got.push(redis::cmd("INCR").arg("hits").query::<i64>(&mut c).unwrap());
                    }
                    let won: i64 = redis::cmd("SETNX")
                        .arg("once")
                        .arg(i)
                        .query(&mut c)
                        .unwrap();
                    (got, won)
                })
            })
            .collect();
        let mut replies = Vec::new();
        let mut wins = 0;
        for h in handles {
            let (got, won) = h.join().unwrap();
            replies.extend(got);
            wins += won;
        }
        let mut c = group.conn(leader).unwrap();
        // (Pushed until the BLPOP has it: it may have been parked after the first push.)
        let until = Instant::now() + PATIENCE;
        while !blocked.is_finished() {
            redis::cmd("RPUSH")
                .arg("queue")
                .arg("job")
                .query::<i64>(&mut c)
                .unwrap();
            assert!(Instant::now() < until, "the BLPOP never got a job");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(
            blocked.join().unwrap(),
            ("queue".to_string(), "job".to_string())
        );
        (replies, wins)
    });
    let total = CLIENTS as i64 * EACH;
    let distinct: BTreeSet<i64> = replies.iter().copied().collect();
    assert_eq!(distinct.len(), replies.len(), "an INCR reply repeats");
    assert_eq!(distinct.last(), Some(&total));
    assert_eq!(setnx_wins, 1);
    let mut c = group.conn(leader).unwrap();
    assert_eq!(
        redis::cmd("GET").arg("hits").query::<i64>(&mut c).unwrap(),
        total
    );

    // WATCH: another client's write between WATCH and EXEC aborts it.
    let mut other = group.conn(leader % NODES + 1).unwrap();
    redis::cmd("WATCH").arg("hits").query::<()>(&mut c).unwrap();
    redis::cmd("INCR")
        .arg("hits")
        .query::<i64>(&mut other)
        .unwrap();
    redis::cmd("MULTI").query::<()>(&mut c).unwrap();
    redis::cmd("SET")
        .arg("hits")
        .arg(0)
        .query::<()>(&mut c)
        .unwrap();
    let exec: redis::Value = redis::cmd("EXEC").query(&mut c).unwrap();
    assert_eq!(
        exec,
        redis::Value::Nil,
        "EXEC ran over a changed WATCHed key"
    );

    // Every node applies all of it.
    for id in 1..=NODES {
        let mut r = group.conn(id).unwrap();
        redis::cmd("READONLY").query::<()>(&mut r).unwrap();
        let until = Instant::now() + PATIENCE;
        loop {
            let n: i64 = redis::cmd("GET").arg("hits").query(&mut r).unwrap();
            if n == total + 1 {
                break;
            }
            assert!(Instant::now() < until, "node {id} stays at {n}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// PUBLISH on one node reaches the subscribers of every node (channel and pattern), as over
/// Redis Cluster's bus; its reply counts this node's receivers.
#[test]
fn publish_reaches_subscribers_on_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let (group, _) = Group::running(dir.path());
    // (A PubSub unsubscribes when dropped: they live until the end.)
    let mut conns: Vec<redis::Connection> = (1..=NODES).map(|id| group.conn(id).unwrap()).collect();
    let mut subscribers: Vec<redis::PubSub<'_>> = conns
        .iter_mut()
        .map(|c| {
            let mut ps = c.as_pubsub();
            ps.subscribe("news").unwrap();
            ps.psubscribe("ne*").unwrap();
            ps.set_read_timeout(Some(PATIENCE)).unwrap();
            ps
        })
        .collect();
    let mut publisher = group.conn(NODES).unwrap();
    // Node 3's own subscriber gets it on the channel and on the pattern: 2.
    let receivers: i64 = redis::cmd("PUBLISH")
        .arg("news")
        .arg("hello")
        .query(&mut publisher)
        .unwrap();
    assert_eq!(receivers, 2);
    for (i, ps) in subscribers.iter_mut().enumerate() {
        let mut got = BTreeSet::new();
        for _ in 0..2 {
            let m = ps.get_message().unwrap();
            assert_eq!(m.get_channel_name(), "news");
            assert_eq!(m.get_payload::<String>().unwrap(), "hello");
            got.insert(m.from_pattern());
        }
        assert_eq!(got, [false, true].into(), "node {}'s subscriber", i + 1);
    }
    drop(subscribers);

    // Keyspace events of a write fire on every node, by each node's own settings; the leader
    // expires keys (its deletions replicate), and every node hears `expired`.
    let mut writer = group.conn(1).unwrap();
    let cases: [(&str, &str, &[&str]); 2] = [
        ("E$", "set", &["SET", "watched", "1"]),
        ("Ex", "expired", &["SET", "short", "1", "PX", "50"]),
    ];
    for (flags, event, write) in cases {
        for id in 1..=NODES {
            let mut c = group.conn(id).unwrap();
            redis::cmd("CONFIG")
                .arg("SET")
                .arg("notify-keyspace-events")
                .arg(flags)
                .query::<()>(&mut c)
                .unwrap();
        }
        let channel = format!("__keyevent@0__:{event}");
        let mut subscribers: Vec<redis::PubSub<'_>> = conns
            .iter_mut()
            .map(|c| {
                let mut ps = c.as_pubsub();
                ps.subscribe(&channel).unwrap();
                ps
            })
            .collect();
        redis::cmd(write[0])
            .arg(&write[1..])
            .query::<()>(&mut writer)
            .unwrap();
        for (i, ps) in subscribers.iter_mut().enumerate() {
            let m = ps.get_message().unwrap();
            assert_eq!(m.get_channel_name(), channel, "node {}", i + 1);
            assert_eq!(
                m.get_payload::<String>().unwrap(),
                write[1],
                "node {}",
                i + 1
            );
            // Each node fires the event as it applies the write: its own data has it.
            if event == "set" {
                let mut local = group.conn(i as u64 + 1).unwrap();
                redis::cmd("READONLY").query::<()>(&mut local).unwrap();
                let v: Option<String> = redis::cmd("GET").arg(write[1]).query(&mut local).unwrap();
                assert_eq!(
                    v.as_deref(),
                    Some("1"),
                    "node {}: event before its write",
                    i + 1
                );
            }
        }
    }
}

/// Through `c`: loads library `lib` (function `hello`, answering `hi`), sets `x` to 1 in
/// database 0, and swaps databases 0 and 1 (`x` is then in database 1).
fn load_library_and_swap(c: &mut redis::Connection) {
    let code = "#!lua name=lib\nredis.register_function('hello', function() return 'hi' end)";
    let name: String = redis::cmd("FUNCTION")
        .arg("LOAD")
        .arg(code)
        .query(c)
        .unwrap();
    assert_eq!(name, "lib");
    redis::cmd("SET").arg("x").arg("1").query::<()>(c).unwrap();
    redis::cmd("SWAPDB").arg(0).arg(1).query::<()>(c).unwrap();
}

/// FUNCTION's libraries and SWAPDB's database map, which every node also keeps in memory,
/// follow the group's writes: a library loaded through a follower is there on a new leader
/// after a failover, and a swap is seen by every node's local reads.
#[test]
fn functions_and_swapdb_reach_every_node() {
    let dir = tempfile::tempdir().unwrap();
    let (mut group, leader) = Group::running(dir.path());
    let follower = (1..=NODES).find(|id| *id != leader).unwrap();
    let mut c = group.conn(follower).unwrap();
    load_library_and_swap(&mut c);
    let hi: String = redis::cmd("FCALL")
        .arg("hello")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(hi, "hi");
    // Every node's own reads see the swap once it applied it.
    for id in 1..=NODES {
        let mut local = group.conn(id).unwrap();
        redis::cmd("READONLY").query::<()>(&mut local).unwrap();
        redis::cmd("SELECT").arg(1).query::<()>(&mut local).unwrap();
        eventually(&format!("node {id} never saw the swap"), || {
            let v: Option<String> = redis::cmd("GET").arg("x").query(&mut local).unwrap();
            v.as_deref() == Some("1")
        });
        redis::cmd("SELECT").arg(0).query::<()>(&mut local).unwrap();
        let v: Option<String> = redis::cmd("GET").arg("x").query(&mut local).unwrap();
        assert_eq!(v, None, "node {id}: database 0 after the swap");
    }
    // The leader goes: the new one has the library.
    group.kill(leader);
    let new_leader = group.leader();
    assert_ne!(new_leader, leader);
    let mut c = group.conn(new_leader).unwrap();
    let hi: String = redis::cmd("FCALL")
        .arg("hello")
        .arg(0)
        .query(&mut c)
        .unwrap();
    assert_eq!(hi, "hi");
    redis::cmd("FUNCTION")
        .arg("FLUSH")
        .query::<()>(&mut c)
        .unwrap();
    let other = (1..=NODES)
        .find(|id| *id != leader && *id != new_leader)
        .unwrap();
    let mut c = group.conn(other).unwrap();
    let gone = redis::cmd("FCALL")
        .arg("hello")
        .arg(0)
        .query::<String>(&mut c)
        .unwrap_err();
    assert!(gone.to_string().contains("Function not found"), "{gone}");
}

/// A node whose directory was wiped, behind a log purged past what it lacks, catches up from
/// a snapshot built in the server's layout (the Raft files inside the data directory), and
/// holds what the snapshot carries besides keys: the FUNCTION libraries, SWAPDB's map.
#[test]
fn a_wiped_node_catches_up_from_a_snapshot_with_the_libraries_and_the_swap() {
    let dir = tempfile::tempdir().unwrap();
    let mut group = Group::with_config(dir.path(), "cluster-snapshot-every = 20\n");
    group.start_all();
    let leader = group.leader();
    let mut c = group.conn(leader).unwrap();
    load_library_and_swap(&mut c);
    let wiped = (1..=NODES).find(|id| *id != leader).unwrap();
    group.kill(wiped);
    std::fs::remove_dir_all(group.root.join(format!("node{wiped}"))).unwrap();
    // Many snapshots later, the log no longer holds what it lacks.
    for i in 0..200 {
        redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query::<()>(&mut c)
            .unwrap();
    }
    group.start(wiped);
    group.leader();
    // (The node logs the install once it is done, which may be after the leader is known: a
    // CI run read the log while the snapshot was still being received.)
    let log_path = group.root.join(format!("node{wiped}.log"));
    eventually(&format!("node {wiped} never installed a snapshot"), || {
        std::fs::read_to_string(&log_path).is_ok_and(|log| log.contains("install"))
    });
    let mut local = group.conn(wiped).unwrap();
    redis::cmd("READONLY").query::<()>(&mut local).unwrap();
    eventually(&format!("node {wiped} never caught up"), || {
        let v: Option<String> = redis::cmd("GET").arg("k199").query(&mut local).unwrap();
        v.as_deref() == Some("199")
    });
    redis::cmd("SELECT").arg(1).query::<()>(&mut local).unwrap();
    let x: Option<String> = redis::cmd("GET").arg("x").query(&mut local).unwrap();
    assert_eq!(x.as_deref(), Some("1"), "node {wiped}: the swap");
    let libs: redis::Value = redis::cmd("FUNCTION")
        .arg("LIST")
        .query(&mut local)
        .unwrap();
    assert!(
        format!("{libs:?}").contains("lib"),
        "node {wiped}: {libs:?}"
    );
}

/// `tls-replication yes`: a group whose nodes talk TLS to each other (certificates made here,
/// for 127.0.0.1, signed by one CA) elects a leader and replicates through every node.
#[test]
fn a_group_over_a_tls_bus_replicates() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "group CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca = ca.self_signed(&ca_key).unwrap();
    let node_key = KeyPair::generate().unwrap();
    let node = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&node_key, &ca, &ca_key)
        .unwrap();
    let file = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let extra = format!(
        "tls-replication = \"yes\"\ntls-cert-file = \"{}\"\ntls-key-file = \"{}\"\ntls-ca-cert-file = \"{}\"\n",
        file("node.crt", node.pem()),
        file("node.key", node_key.serialize_pem()),
        file("ca.crt", ca.pem()),
    );
    let mut group = Group::with_config(dir.path(), &extra);
    group.start_all();
    group.leader();
    for id in 1..=NODES {
        let log = std::fs::read_to_string(dir.path().join(format!("node{id}.log"))).unwrap();
        assert!(
            log.contains("raft bus: TLS"),
            "node {id} runs a plain bus:\n{log}"
        );
    }
    for id in 1..=NODES {
        let mut c = group.conn(id).unwrap();
        redis::cmd("SET")
            .arg(format!("from{id}"))
            .arg(id)
            .query::<()>(&mut c)
            .unwrap();
    }
    for id in 1..=NODES {
        let mut c = group.conn(id).unwrap();
        redis::cmd("READONLY").query::<()>(&mut c).unwrap();
        eventually(&format!("node {id} never had every key"), || {
            let n: usize = redis::cmd("DBSIZE").query(&mut c).unwrap();
            n == NODES as usize
        });
    }
}
