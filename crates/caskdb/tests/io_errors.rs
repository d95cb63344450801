//! An I/O error at every call. A small workload — rotations, a batch, deletes, a merge that
//! writes hint files, a close — runs once per N with the N-th file-system call failing with EIO
//! (N = 0, 1, … until a run completes without reaching N), on the in-memory [`SimVfs`]. Each
//! run checks that the failure surfaces as an error (no panic, no write acknowledged whose fsync
//! failed), that a failed fsync poisons the handle (every later write returns
//! [`Error::Poisoned`] saying why), and that reopening — after a restart, after a power loss
//! with only durable state, after a power loss with torn writes — shows every acknowledged
//! write, no deleted key, and nothing corrupt. A second test does the same to recovery itself.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use caskdb::testing::parse_data_file_name;
use caskdb::{Db, Error, ManualClock, OpenMode, Options, SyncPolicy, Vfs};
use caskdb_testkit::model::{Model, State, diff, key_name, read_state};
use caskdb_testkit::rng::Rng;
use caskdb_testkit::simfs::{Call, FailedCall, Fault, Lie, SimVfs, Tear};

const DIR: &str = "/sim/db";
/// Keys `key-000` … of the workload (all the reads check).
const KEYS: usize = 10;
const NOW: u64 = 1_000_000;

fn options(sim: &SimVfs) -> Options {
    sim.options(
        Options::default()
            // ~64-byte records: one per file, so every write rotates.
            .data_file_size(128)
            .sync(SyncPolicy::Always)
            .auto_merge(false)
            .clock(Arc::new(ManualClock::new(NOW))),
    )
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Open,
    Put(usize),
    /// Puts `key-004`, puts `key-005` with a TTL, deletes `key-001`.
    Batch,
    Delete(usize),
    Merge,
    Close,
}

const WORKLOAD: [Step; 12] = [
    Step::Open,
    Step::Put(0),
    Step::Put(1),
    Step::Put(2),
    Step::Put(3),
    Step::Batch,
    Step::Delete(2),
    Step::Put(0),
    Step::Merge,
    Step::Put(6),
    Step::Delete(3),
    Step::Close,
];

const TTL: Duration = Duration::from_secs(3600);

fn value(step: usize) -> Vec<u8> {
    format!("value written by step {step:02} ")
        .repeat(2)
        .into_bytes()
}

impl Step {
    /// Whether the step is a write that changes the contents.
    fn changes_contents(self) -> bool {
        matches!(self, Step::Put(_) | Step::Batch | Step::Delete(_))
    }

    fn apply_to(self, i: usize, model: &mut Model) {
        match self {
            Step::Put(k) => model.put(key_name(k), value(i), None),
            Step::Batch => {
                model.put(key_name(4), value(i), None);
                model.put(key_name(5), value(i), Some(TTL.as_millis() as u64));
                model.delete(&key_name(1));
            }
            Step::Delete(k) => {
                model.delete(&key_name(k));
            }
            Step::Open | Step::Merge | Step::Close => {}
        }
    }

    fn run(self, i: usize, db: &mut Option<Db>, sim: &SimVfs) -> Outcome {
        let r = match (self, db.as_ref()) {
            (Step::Open, _) => options(sim).open(DIR).map(|d| {
                *db = Some(d);
            }),
            (_, None) => return Outcome::NotRun,
            (Step::Put(k), Some(d)) => d.put(key_name(k), value(i)),
            (Step::Batch, Some(d)) => {
                let mut b = d.batch();
                b.put(key_name(4), value(i))
                    .put_with_ttl(key_name(5), value(i), TTL)
                    .delete(key_name(1));
                b.commit()
            }
            (Step::Delete(k), Some(d)) => d.delete(key_name(k)).map(|_| ()),
            (Step::Merge, Some(d)) => d.merge().map(|_| ()),
            (Step::Close, Some(_)) => db.take().expect("open").close(),
        };
        match r {
            Ok(()) => Outcome::Ok,
            Err(Error::Poisoned { reason }) => Outcome::Poisoned(reason),
            Err(e) => Outcome::Failed(e.to_string()),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    Poisoned(String),
    Failed(String),
    /// Not run: the database did not open.
    NotRun,
}

/// The contents every step that may have happened can give: the acknowledged steps always,
/// each failed write either applied or not.
fn possible_states(outcomes: &[Outcome]) -> Result<Vec<State>, String> {
    let uncertain: Vec<usize> = (0..WORKLOAD.len())
        .filter(|&i| WORKLOAD[i].changes_contents() && matches!(outcomes[i], Outcome::Failed(_)))
        .collect();
    if uncertain.len() > 3 {
        return Err(format!("{} writes failed from one fault", uncertain.len()));
    }
    let mut states = Vec::new();
    for mask in 0..1u32 << uncertain.len() {
        let mut model = Model::new(NOW);
        for (i, step) in WORKLOAD.iter().enumerate() {
            let applied = match uncertain.iter().position(|&u| u == i) {
                Some(bit) => mask & (1 << bit) != 0,
                None => outcomes[i] == Outcome::Ok,
            };
            if applied {
                step.apply_to(i, &mut model);
            }
        }
        states.push(model.visible(NOW));
    }
    Ok(states)
}

/// Opens the database on `vfs` and checks its contents are one of `states`.
fn reopen_and_check(what: &str, vfs: &SimVfs, states: &[State], problems: &mut Vec<String>) {
    let db = match options(vfs).open(DIR) {
        Ok(db) => db,
        Err(e) => {
            problems.push(format!("{what}: reopening failed: {e}"));
            return;
        }
    };
    match read_state(&db, KEYS) {
        Ok(got) if states.contains(&got) => {}
        Ok(got) => problems.push(format!(
            "{what}: contents match no outcome of the acknowledged writes: {}",
            diff(&got, &states[0])
        )),
        Err(e) => problems.push(format!("{what}: {e}")),
    }
    if let Err(e) = db.close() {
        problems.push(format!("{what}: close failed: {e}"));
    }
}

/// Failures the engine handles by design without reporting them.
fn tolerated(f: &FailedCall, during: Step) -> bool {
    let name = f.file_name();
    // Hint files only speed up opening: a failure to write, read or remove one is logged.
    name.contains(".hint")
        // After sealing a file, reopening it read-only only saves a descriptor: on failure the
        // writable handle is kept (logged).
        || (f.call == Call::Open
            && f.mode == Some(OpenMode::ReadOnly)
            && parse_data_file_name(&name).is_some()
            && !matches!(during, Step::Open))
}

/// Whether the failed call is an fsync of data already in the log (the active file, or the file
/// being sealed): what makes acknowledged writes durable. After it fails, what is on disk is
/// unknown, so the handle must refuse writes. (A new file's first fsync, of its header, is not:
/// the half-made file is removed.)
fn must_poison(f: &FailedCall, during: Step) -> bool {
    f.call == Call::Sync
        && parse_data_file_name(&f.file_name()).is_some()
        && f.durable_len.unwrap_or(0) > 0
        && !matches!(during, Step::Open | Step::Close)
}

/// What the run with fault point `n` found.
#[derive(Default)]
struct Point {
    failed: Option<FailedCall>,
    poisoned: bool,
    tolerated: bool,
    problems: Vec<String>,
    calls: u64,
}

/// Runs the workload with call `n` failing, then the checks.
fn fault_point(n: u64, lie: Lie) -> Point {
    let sim = SimVfs::new();
    sim.set_lie(lie);
    sim.set_fault(Fault::FailCall(n));
    let mut db = None;
    let mut starts = Vec::new();
    let mut outcomes = Vec::new();
    for (i, step) in WORKLOAD.iter().enumerate() {
        starts.push(sim.calls().0);
        outcomes.push(step.run(i, &mut db, &sim));
    }
    drop(db);
    let mut point = Point {
        failed: sim.failed(),
        calls: sim.calls().0,
        ..Point::default()
    };
    let problems = &mut point.problems;
    let Some(f) = point.failed.clone() else {
        // The workload finished before call `n`: it must have succeeded throughout.
        if outcomes.iter().any(|o| *o != Outcome::Ok) {
            problems.push(format!("no fault, yet {outcomes:?}"));
        }
        let states = possible_states(&outcomes).unwrap_or_default();
        sim.set_fault(Fault::None);
        reopen_and_check("no fault", &sim, &states, problems);
        return point;
    };
    let at = (0..WORKLOAD.len())
        .rfind(|&i| starts[i] <= f.number && outcomes[i] != Outcome::NotRun)
        .expect("the failed call belongs to a step");
    let step = WORKLOAD[at];
    let call = format!(
        "call {n} ({:?} {}) failed during step {at} ({step:?})",
        f.call,
        f.file_name()
    );
    point.tolerated = tolerated(&f, step);
    point.poisoned = must_poison(&f, step);
    for (i, o) in outcomes.iter().enumerate().take(at) {
        if *o != Outcome::Ok {
            problems.push(format!("{call}: step {i} before it returned {o:?}"));
        }
    }
    match &outcomes[at] {
        Outcome::Ok if !point.tolerated => problems.push(format!(
            "{call}, which returned Ok: the error was swallowed"
        )),
        Outcome::Poisoned(r) => problems.push(format!("{call}, which returned Poisoned ({r})")),
        Outcome::Failed(msg) if point.poisoned && !msg.contains("sync") => problems.push(format!(
            "{call}: its error does not say it was a sync: {msg}"
        )),
        _ => {}
    }
    for (i, o) in outcomes.iter().enumerate().skip(at + 1) {
        match o {
            Outcome::Poisoned(reason) if point.poisoned => {
                // The refusal says why: the fsync that failed, and of which file.
                if !reason.contains("sync") || !reason.contains(&f.file_name()) {
                    problems.push(format!(
                        "{call}: step {i} refused with a vague reason: {reason}"
                    ));
                }
            }
            o if point.poisoned => problems.push(format!(
                "{call}: step {i} ({:?}) after the failed fsync returned {o:?}, not Poisoned",
                WORKLOAD[i]
            )),
            Outcome::Ok | Outcome::NotRun => {}
            o => problems.push(format!(
                "{call}: step {i} ({:?}) returned {o:?}: one failed call that does not poison \
                 should leave the handle usable",
                WORKLOAD[i]
            )),
        }
    }
    let states = match possible_states(&outcomes) {
        Ok(states) => states,
        Err(e) => {
            problems.push(format!("{call}: {e}"));
            return point;
        }
    };
    // Power losses right after the workload, taken before any reopen changes the storage.
    let (durable, _) = sim.crash(&mut Rng::new(n), Tear::None);
    let (torn, _) = sim.crash(&mut Rng::new(n), Tear::Random);
    sim.set_fault(Fault::None);
    sim.set_lie(Lie::None);
    reopen_and_check(&format!("{call}; restart"), &sim, &states, problems);
    reopen_and_check(&format!("{call}; power loss"), &durable, &states, problems);
    reopen_and_check(
        &format!("{call}; torn power loss"),
        &torn,
        &states,
        problems,
    );
    point
}

/// Runs every fault point, until one is past the end of the workload.
fn every_fault_point(lie: Lie) -> Vec<Point> {
    let mut points = Vec::new();
    for n in 0.. {
        assert!(n < 10_000, "the workload never ends");
        let point = fault_point(n, lie);
        let reached = point.failed.is_some();
        points.push(point);
        if !reached {
            break;
        }
    }
    points
}

#[test]
fn io_error_at_every_call_of_a_workload_is_reported_and_loses_nothing_acknowledged() {
    let points = every_fault_point(Lie::None);
    let covered = points.len() - 1;
    let count = |f: fn(&Point) -> bool| points.iter().filter(|p| f(p)).count();
    eprintln!(
        "io error: {covered} fault points covered (a clean run makes {} calls); {} fsync \
         failures poisoned the handle, {} failures tolerated by design (hint files, read-only \
         reopen)",
        points.last().map_or(0, |p| p.calls),
        count(|p| p.poisoned),
        count(|p| p.tolerated),
    );
    let problems: Vec<&String> = points.iter().flat_map(|p| &p.problems).collect();
    assert_no_problems(&problems);
    // The workload reaches what it is meant to cover.
    let failed = |c: Call, name: &str| {
        points.iter().any(|p| {
            p.failed
                .as_ref()
                .is_some_and(|f| f.call == c && f.file_name().contains(name))
        })
    };
    assert!(count(|p| p.poisoned) >= 5, "fsyncs of the active file");
    assert!(
        failed(Call::Rename, ".hint.merging"),
        "a merge writing hints"
    );
    assert!(failed(Call::Remove, ".data"), "a merge deleting old files");
    assert!(failed(Call::Create, ".data"), "rotations");
    assert!(failed(Call::Read, ".data"), "a merge reading records");
}

#[test]
fn io_error_checks_catch_a_swallowed_fsync_error() {
    // An engine that ignored a failed fsync would see what this lie shows it: success, with the
    // dirty pages gone. Every such point must be reported (a hint's fsync excepted: hints are
    // checked when read, and a bad one is only skipped).
    let points = every_fault_point(Lie::FsyncErrorHidden);
    let hidden: Vec<&Point> = points
        .iter()
        .filter(|p| {
            p.failed
                .as_ref()
                .is_some_and(|f| f.call == Call::Sync && !f.file_name().contains(".hint"))
        })
        .collect();
    assert!(hidden.len() >= 5, "{}", hidden.len());
    for p in hidden {
        assert!(!p.problems.is_empty(), "{:?} went unnoticed", p.failed);
    }
}

/// Builds a database that needs all of recovery: sealed files with hints (from a merge), files
/// written after the merge, a preallocated tail to cut (the process was killed), a merge's
/// temporary file and a hint whose data file is gone. Returns its storage and contents.
fn storage_for_recovery() -> (SimVfs, State) {
    let sim = SimVfs::new();
    let db = options(&sim).open(DIR).unwrap();
    let mut model = Model::new(NOW);
    let mut i = 0;
    let mut put = |db: &Db, model: &mut Model, k: usize| {
        i += 1;
        db.put(key_name(k), value(i)).unwrap();
        model.put(key_name(k), value(i), None);
    };
    for k in [0, 1, 2, 3, 1, 4] {
        put(&db, &mut model, k);
    }
    db.delete(key_name(2)).unwrap();
    model.delete(&key_name(2));
    let mut b = db.batch();
    b.put(key_name(5), value(50)).delete(key_name(0));
    b.commit().unwrap();
    model.put(key_name(5), value(50), None);
    model.delete(&key_name(0));
    db.merge().unwrap();
    for k in [6, 7, 1] {
        put(&db, &mut model, k);
    }
    db.delete(key_name(3)).unwrap();
    model.delete(&key_name(3));
    db.crash();
    let dir = Path::new(DIR);
    for name in ["0000000999.data.merging", "0000000998.hint"] {
        let f = sim.create(&dir.join(name), 64).unwrap();
        f.append(&[b"leftover"]).unwrap();
        f.sync(true).unwrap();
    }
    sim.sync_dir(dir).unwrap();
    (sim, model.visible(NOW))
}

/// Fails, listing them, if there are any problems.
fn assert_no_problems(problems: &[impl AsRef<str>]) {
    let lines: Vec<&str> = problems.iter().map(AsRef::as_ref).collect();
    assert!(
        lines.is_empty(),
        "{} problems:\n{}",
        lines.len(),
        lines.join("\n")
    );
}

/// Opens `base` once per fault point `n` with `fault(n)`: the open must fail with an I/O error,
/// or succeed (only when a hint could not be read) with every write; either way, a reopen
/// without the fault — after a restart or a power loss — must show every write. Returns the
/// number of fault points and the problems found.
fn recovery_under_faults(
    base: &SimVfs,
    contents: &State,
    fault: fn(u64) -> Fault,
) -> (u64, Vec<String>) {
    let states = std::slice::from_ref(contents);
    let mut problems = Vec::new();
    for n in 0.. {
        assert!(n < 10_000, "recovery never ends");
        let sim = base.fork();
        sim.set_fault(fault(n));
        let opened = options(&sim).open(DIR);
        let Some(f) = sim.failed() else {
            sim.set_fault(Fault::None);
            match opened {
                Ok(db) => {
                    db.crash();
                    reopen_and_check("no fault", &sim, states, &mut problems);
                }
                Err(e) => problems.push(format!("no fault, yet the open failed: {e}")),
            }
            return (n, problems);
        };
        let call = format!(
            "recovery: {:?} failing ({:?} {})",
            fault(n),
            f.call,
            f.file_name()
        );
        match opened {
            // Only a hint may fail unnoticed: the data file is scanned instead.
            Ok(db) => {
                if !f.file_name().contains(".hint") {
                    problems.push(format!("{call}, yet the open succeeded"));
                }
                match read_state(&db, KEYS) {
                    Ok(got) if got == *contents => {}
                    Ok(got) => problems.push(format!("{call}: {}", diff(&got, contents))),
                    Err(e) => problems.push(format!("{call}: {e}")),
                }
                db.crash();
            }
            Err(Error::Io(_)) => {}
            Err(e) => problems.push(format!(
                "{call}: the open failed with {e}, not an I/O error"
            )),
        }
        let (durable, _) = sim.crash(&mut Rng::new(n), Tear::None);
        sim.set_fault(Fault::None);
        reopen_and_check(&format!("{call}; restart"), &sim, states, &mut problems);
        reopen_and_check(
            &format!("{call}; power loss"),
            &durable,
            states,
            &mut problems,
        );
    }
    unreachable!()
}

#[test]
fn io_error_at_every_call_of_recovery_fails_the_open_or_is_harmless() {
    let (base, contents) = storage_for_recovery();
    let (covered, problems) = recovery_under_faults(&base, &contents, Fault::FailNonRead);
    eprintln!("io error: {covered} fault points covered in recovery (reads excepted)");
    assert!(covered >= 15, "recovery made only {covered} calls");
    assert_no_problems(&problems);
}

#[test]
fn io_error_at_every_read_of_recovery_is_an_io_error() {
    let (base, contents) = storage_for_recovery();
    let (covered, problems) = recovery_under_faults(&base, &contents, Fault::FailRead);
    eprintln!("io error: {covered} read fault points covered in recovery");
    assert_no_problems(&problems);
}

/// The smallest case of the bug above, and the worst outcome: one acknowledged put, in the only
/// data file; a read of that file fails once while the database opens.
#[test]
fn io_error_reading_the_newest_file_at_open_keeps_its_acknowledged_write() {
    let sim = SimVfs::new();
    let db = options(&sim).open(DIR).unwrap();
    db.put(key_name(0), value(0)).unwrap();
    db.close().unwrap();
    let contents = State::from([(key_name(0), value(0))]);
    let (_, problems) = recovery_under_faults(&sim, &contents, Fault::FailRead);
    assert_no_problems(&problems);
}
