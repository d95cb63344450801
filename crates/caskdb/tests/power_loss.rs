//! Power loss at random points, on the test kit's simulated file system (`SimVfs`, which knows
//! what a power loss keeps: bytes made durable by `LogFile::sync`, directory entries by
//! `Vfs::sync_dir`). Randomized workloads
//! under `SyncPolicy::Always` are cut off at a random point — between two operations or in the
//! middle of one — and the database reopened on the crashed state must hold every acknowledged
//! write, no deleted key, and exactly the state of some prefix of the operations (all the
//! acknowledged ones, at most the one in flight extra).
//!
//! The real file system cannot test this: its page cache survives a killed process, so only a
//! simulated power loss drops what was never made durable.
//!
//! Soak: `CASKDB_SOAK_POWER_LOSS=<rounds> cargo test -p caskdb --test power_loss`; replay one
//! round with `CASKDB_POWER_LOSS_SEED=<seed>`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use caskdb::{Clock, Db, ManualClock, Options, SyncPolicy};
use caskdb_testkit::model::{Model, State, diff, key_name, read_state, show};
use caskdb_testkit::rng::{Rng, env_u64};
use caskdb_testkit::simfs::{CrashStats, Fault, Lie, SimVfs, Tear};

#[derive(Clone, Debug)]
enum BatchOp {
    Put {
        key: usize,
        value: Vec<u8>,
        ttl_ms: Option<u64>,
    },
    Delete {
        key: usize,
    },
}

#[derive(Clone, Debug)]
enum Op {
    Put {
        key: usize,
        value: Vec<u8>,
    },
    PutTtl {
        key: usize,
        value: Vec<u8>,
        ttl_ms: u64,
    },
    Delete {
        key: usize,
    },
    Batch(Vec<BatchOp>),
    Merge,
    /// Moves the manual clock forward: TTL keys expire.
    Advance(u64),
    /// Close (or kill the process, `clean: false`) and open again: the newest file is then
    /// reopened for appending, its preallocated tail cut first.
    Reopen {
        clean: bool,
    },
}

impl Op {
    fn short(&self) -> String {
        match self {
            Op::Put { key, value } => format!("put key-{key:03} ({} bytes)", value.len()),
            Op::PutTtl { key, value, ttl_ms } => {
                format!("put key-{key:03} ({} bytes) ttl {ttl_ms} ms", value.len())
            }
            Op::Delete { key } => format!("delete key-{key:03}"),
            Op::Batch(ops) => format!(
                "batch of {} ({} bytes)",
                ops.len(),
                ops.iter()
                    .map(|o| match o {
                        BatchOp::Put { value, .. } => value.len() + 12,
                        BatchOp::Delete { .. } => 12,
                    })
                    .sum::<usize>()
            ),
            Op::Merge => "merge".into(),
            Op::Advance(ms) => format!("advance clock {ms} ms"),
            Op::Reopen { clean } => format!("reopen (clean: {clean})"),
        }
    }

    fn apply_to(&self, model: &mut Model) {
        match self {
            Op::Put { key, value } => model.put(key_name(*key), value.clone(), None),
            Op::PutTtl { key, value, ttl_ms } => {
                model.put(key_name(*key), value.clone(), Some(*ttl_ms))
            }
            Op::Delete { key } => {
                model.delete(&key_name(*key));
            }
            Op::Batch(ops) => {
                for o in ops {
                    match o {
                        BatchOp::Put { key, value, ttl_ms } => {
                            model.put(key_name(*key), value.clone(), *ttl_ms)
                        }
                        BatchOp::Delete { key } => {
                            model.delete(&key_name(*key));
                        }
                    }
                }
            }
            Op::Advance(ms) => model.set_now(model.now() + ms),
            Op::Merge | Op::Reopen { .. } => {}
        }
    }
}

/// A value unique to (operation, key), of about `len` bytes: a stale value coming back is
/// told apart from the right one.
fn value(op: usize, key: usize, len: usize) -> Vec<u8> {
    let mut v = format!("op{op}/key{key};").into_bytes();
    let mut x = (op as u8).wrapping_mul(31).wrapping_add(key as u8);
    while v.len() < len {
        v.push(b'a' + x % 26);
        x = x.wrapping_add(7);
    }
    v
}

fn value_len(rng: &mut Rng) -> usize {
    match rng.below(100) {
        0..=69 => rng.between(0, 40),
        70..=94 => rng.between(40, 400),
        // Several pages: a power loss can keep some of its pages and lose others.
        _ => rng.between(3000, 9000),
    }
}

/// One randomized workload.
struct Plan {
    data_file_size: u64,
    keyspace: usize,
    ops: Vec<Op>,
}

const CLOCK_START: u64 = 1_000_000;

fn plan(rng: &mut Rng) -> Plan {
    let keyspace = [4, 16, 48][rng.below(3) as usize];
    // Small files rotate every record or few; 16 KiB ones span pages.
    let data_file_size = [64, 200, 1024, 4096, 16384][rng.below(5) as usize];
    let n = rng.between(5, 90);
    let mut ops = Vec::with_capacity(n);
    for i in 0..n {
        let key = rng.below(keyspace as u64) as usize;
        let op = match rng.below(100) {
            0..=41 => Op::Put {
                key,
                value: value(i, key, value_len(rng)),
            },
            42..=49 => Op::PutTtl {
                key,
                value: value(i, key, value_len(rng)),
                ttl_ms: [0, 50, 1_000_000][rng.below(3) as usize],
            },
            50..=67 => Op::Delete { key },
            68..=81 => {
                let mut batch = Vec::new();
                for _ in 0..rng.between(2, 6) {
                    let key = rng.below(keyspace as u64) as usize;
                    batch.push(if rng.chance(1, 3) {
                        BatchOp::Delete { key }
                    } else {
                        BatchOp::Put {
                            key,
                            value: value(i, key, value_len(rng)),
                            ttl_ms: rng.chance(1, 6).then_some(40),
                        }
                    });
                }
                Op::Batch(batch)
            }
            82..=89 => Op::Merge,
            90..=94 => Op::Advance(30),
            _ => Op::Reopen {
                clean: rng.chance(1, 2),
            },
        };
        ops.push(op);
    }
    Plan {
        data_file_size,
        keyspace,
        ops,
    }
}

fn db_options(sim: &SimVfs, data_file_size: u64, clock: &Arc<ManualClock>) -> Options {
    sim.options(
        Options::default()
            .data_file_size(data_file_size)
            .sync(SyncPolicy::Always)
            .auto_merge(false)
            .clock(clock.clone()),
    )
}

/// Runs `op`; `Err` is the engine's error, as text. Checks what `delete` returns on the way.
fn run_op(
    db: &mut Option<Db>,
    op: &Op,
    model: &Model,
    clock: &ManualClock,
    reopen: &dyn Fn() -> caskdb::Result<Db>,
) -> Result<(), String> {
    let d = db.as_ref().expect("the database is open");
    let r = match op {
        Op::Put { key, value } => d.put(key_name(*key), value),
        Op::PutTtl { key, value, ttl_ms } => {
            d.put_with_ttl(key_name(*key), value, Duration::from_millis(*ttl_ms))
        }
        Op::Delete { key } => {
            let k = key_name(*key);
            match d.delete(&k) {
                Ok(existed) if existed != model.has(&k) => {
                    return Err(format!(
                        "delete {} returned {existed}, the model says {}",
                        show(&k),
                        model.has(&k)
                    ));
                }
                other => other.map(|_| ()),
            }
        }
        Op::Batch(ops) => {
            let mut b = d.batch();
            for o in ops {
                match o {
                    BatchOp::Put {
                        key,
                        value,
                        ttl_ms: None,
                    } => b.put(key_name(*key), value),
                    BatchOp::Put {
                        key,
                        value,
                        ttl_ms: Some(t),
                    } => b.put_with_ttl(key_name(*key), value, Duration::from_millis(*t)),
                    BatchOp::Delete { key } => b.delete(key_name(*key)),
                };
            }
            b.commit()
        }
        Op::Merge => d.merge().map(|_| ()),
        Op::Advance(ms) => {
            clock.advance(Duration::from_millis(*ms));
            Ok(())
        }
        Op::Reopen { clean } => {
            let old = db.take().expect("open");
            if *clean {
                old.close().map_err(|e| e.to_string())?;
            } else {
                old.crash();
            }
            *db = Some(reopen().map_err(|e| e.to_string())?);
            Ok(())
        }
    };
    r.map_err(|e| e.to_string())
}

/// What one round saw.
#[derive(Debug, Default)]
struct RoundReport {
    /// The power failed in the middle of an operation.
    mid_op: bool,
    /// Whether the operation in flight turned out applied after the crash (`None`: no
    /// operation in flight, or one that changes nothing).
    in_flight_survived: Option<bool>,
    stats: CrashStats,
    ops_done: usize,
}

/// One round: a workload from `seed`, a power loss at a random point, a reopen, the checks.
/// `Err` describes what went wrong, with what is needed to replay it.
fn round(seed: u64, lie: Lie) -> Result<RoundReport, String> {
    let mut rng = Rng::new(seed);
    let plan = plan(&mut rng);
    let clock = Arc::new(ManualClock::new(CLOCK_START));
    let sim = SimVfs::new();
    sim.set_lie(lie);
    let dir = Path::new("/sim/db");
    let opts = |s: &SimVfs| db_options(s, plan.data_file_size, &clock);
    let ctx = |what: String| {
        format!(
            "seed {seed} (data_file_size {}, {} ops): {what}",
            plan.data_file_size,
            plan.ops.len()
        )
    };
    let reopen_live = || opts(&sim).open(dir);
    let mut db = Some(reopen_live().map_err(|e| ctx(format!("first open: {e}")))?);

    // Where the power fails: before operation `stop`, or `after` mutating calls into it.
    let stop = rng.between(0, plan.ops.len());
    let mid_op = rng.chance(2, 3);
    let far = rng.chance(1, 4);
    let after = rng.below(if far { 60 } else { 10 });
    let mut model = Model::new(CLOCK_START);
    let mut done = 0;
    let mut in_flight = None;
    for (i, op) in plan.ops.iter().enumerate() {
        if i == stop {
            if !mid_op {
                break;
            }
            sim.set_fault(Fault::PowerCut(after));
        }
        let result = run_op(&mut db, op, &model, &clock, &reopen_live);
        if sim.is_down() {
            // Whatever the call returned: the process died with the power.
            in_flight = Some(i);
            break;
        }
        if let Err(e) = result {
            return Err(ctx(format!(
                "op {i} ({}) failed with no fault: {e}",
                op.short()
            )));
        }
        op.apply_to(&mut model);
        done = i + 1;
    }

    let tear = if rng.chance(3, 4) {
        Tear::Random
    } else {
        Tear::None
    };
    let (crashed, stats) = sim.crash(&mut rng, tear);
    if let Some(db) = db.take() {
        db.crash();
    }
    let where_ = match in_flight {
        Some(i) => format!(
            "power cut {after} mutating calls into op {i} ({})",
            plan.ops[i].short()
        ),
        None => format!("power cut after op {done}"),
    };
    let ctx = |what: String| ctx(format!("{where_}, crash {tear:?} {stats:?}: {what}"));

    let db = opts(&crashed)
        .open(dir)
        .map_err(|e| ctx(format!("open after the crash failed: {e}")))?;
    let got = read_state(&db, plan.keyspace).map_err(&ctx)?;
    let now = clock.now_ms();
    let acked = model.visible(now);
    let mut report = RoundReport {
        mid_op: in_flight.is_some(),
        stats,
        ops_done: done,
        ..RoundReport::default()
    };
    if got != acked {
        let with_in_flight = in_flight.map(|i| {
            let mut m = model.clone();
            plan.ops[i].apply_to(&mut m);
            m.visible(now)
        });
        match with_in_flight {
            Some(state) if state == got => report.in_flight_survived = Some(true),
            Some(state) => {
                return Err(ctx(format!(
                    "state is neither the acknowledged ops ({}) nor those plus the one in flight \
                     ({})",
                    diff(&got, &acked),
                    diff(&got, &state)
                )));
            }
            None => {
                return Err(ctx(format!(
                    "state differs from the acknowledged ops: {}",
                    diff(&got, &acked)
                )));
            }
        }
    } else if let Some(i) = in_flight {
        let mut m = model.clone();
        plan.ops[i].apply_to(&mut m);
        if m.visible(now) != acked {
            report.in_flight_survived = Some(false);
        }
    }

    // The recovered database goes on: a write, a clean close, and a reopen keep everything.
    db.put("after-crash", "x")
        .map_err(|e| ctx(format!("put after recovery: {e}")))?;
    db.close()
        .map_err(|e| ctx(format!("close after recovery: {e}")))?;
    let db = opts(&crashed)
        .open(dir)
        .map_err(|e| ctx(format!("second open after the crash failed: {e}")))?;
    let mut again = read_state(&db, plan.keyspace).map_err(&ctx)?;
    if again.remove(&b"after-crash"[..]).as_deref() != Some(&b"x"[..]) {
        return Err(ctx("the put after recovery was lost".into()));
    }
    if again != got {
        return Err(ctx(format!(
            "the second open changed the state: {}",
            diff(&again, &got)
        )));
    }
    db.close()
        .map_err(|e| ctx(format!("second close after recovery: {e}")))?;
    Ok(report)
}

/// Rounds of the default run; `CASKDB_SOAK_POWER_LOSS` overrides it.
const DEFAULT_ROUNDS: u64 = 1500;

/// Seeds that found a bug (a lost first page of a batch taken for corruption, fixed in
/// `recovery::classify`), replayed on their own as a regression test.
const KNOWN_BUG_SEEDS: [u64; 2] = [
    870,  // a batch at offset 3266 of a 16 KiB file: its page lost, page 2 kept
    5324, // a batch larger than the 4 KiB files, alone in its file: page 0 lost, page 1 kept
];

#[test]
fn power_loss_at_random_points_keeps_every_acknowledged_write() {
    let seeds: Vec<u64> = match env_u64("CASKDB_POWER_LOSS_SEED") {
        Some(seed) => vec![seed],
        None => (0..env_u64("CASKDB_SOAK_POWER_LOSS").unwrap_or(DEFAULT_ROUNDS)).collect(),
    };
    let mut total = CrashStats::default();
    let (mut mid_op, mut survived, mut lost, mut ops) = (0, 0, 0, 0);
    let mut failures = Vec::new();
    for &seed in &seeds {
        match round(seed, Lie::None) {
            Ok(r) => {
                total.add(&r.stats);
                mid_op += u64::from(r.mid_op);
                survived += u64::from(r.in_flight_survived == Some(true));
                lost += u64::from(r.in_flight_survived == Some(false));
                ops += r.ops_done;
            }
            Err(e) => failures.push(e),
        }
    }
    eprintln!(
        "power loss: {} rounds ({} crashed mid-operation), {ops} acknowledged ops, in-flight op \
         kept {survived} / lost {lost} times; crashes dropped {} bytes and {} directory \
         changes, tore {} files",
        seeds.len(),
        mid_op,
        total.bytes_lost,
        total.entries_lost,
        total.files_torn
    );
    assert!(
        failures.is_empty(),
        "{} of {} rounds failed:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
    if seeds.len() >= 100 {
        // The simulation bites: if it kept unsynced data, none of these would happen, and the
        // rounds above would pass whatever the engine did about durability.
        assert!(total.bytes_lost > 0 && total.files_torn > 0, "{total:?}");
        assert!(
            total.entries_lost > 0 && total.entries_kept > 0,
            "{total:?}"
        );
        assert!(
            survived > 0 && lost > 0,
            "in-flight kept {survived}, lost {lost}"
        );
    }
}

#[test]
fn power_loss_rounds_of_known_bug_seeds() {
    for seed in KNOWN_BUG_SEEDS {
        round(seed, Lie::None).unwrap();
    }
}

/// The checks catch an engine that relies on a sync that does nothing: `round` must fail.
fn caught(lie: Lie) -> usize {
    (0..40).filter(|&seed| round(seed, lie).is_err()).count()
}

#[test]
fn power_loss_checks_catch_a_lying_fsync() {
    assert!(caught(Lie::Fsync) > 10);
}

#[test]
fn power_loss_checks_catch_a_lying_directory_sync() {
    assert!(caught(Lie::SyncDir) > 10);
}

/// Writes a record that ends just before the first page boundary, then — as one batch of two
/// puts, or as one large put — about 6 KB more, and cuts the power during that write's fsync
/// with every page of it on disk but the first. The write was not acknowledged, so the reopened
/// database must be as before it.
fn first_page_of_a_write_lost(batch: bool) -> Result<(), String> {
    let sim = SimVfs::new();
    let clock = Arc::new(ManualClock::new(CLOCK_START));
    let dir = Path::new("/sim/db");
    let db = db_options(&sim, 16384, &clock).open(dir).unwrap();
    db.put(key_name(0), value(0, 0, 4000)).unwrap();
    // The append is mutating call 0; the power fails before call 1, the fsync.
    sim.set_fault(Fault::PowerCut(1));
    let result = if batch {
        let mut b = db.batch();
        b.put(key_name(1), value(1, 1, 3000))
            .put(key_name(2), value(1, 2, 3000));
        b.commit()
    } else {
        db.put(key_name(1), value(1, 1, 6000))
    };
    assert!(result.is_err() && sim.is_down(), "{result:?}");
    let (crashed, stats) = sim.crash(&mut Rng::new(0), Tear::LoseFirstDirtyPage);
    assert!(stats.bytes_lost > 0);
    db.crash();
    let db = db_options(&crashed, 16384, &clock)
        .open(dir)
        .map_err(|e| format!("open failed: {e}"))?;
    let got = read_state(&db, 3)?;
    let want = State::from([(key_name(0), value(0, 0, 4000))]);
    if got != want {
        return Err(diff(&got, &want));
    }
    Ok(())
}

#[test]
fn power_loss_losing_the_first_page_of_a_large_put_is_crash_damage() {
    first_page_of_a_write_lost(false).unwrap();
}

#[test]
fn power_loss_losing_the_first_page_of_a_large_batch_is_crash_damage() {
    first_page_of_a_write_lost(true).unwrap();
}
