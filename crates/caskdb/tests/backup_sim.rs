//! `backup` and `check` on the test kit's simulated file system: a backup survives a power
//! loss right after it returns (whatever the database's own sync policy left unsynced), a
//! backup that fails part-way leaves no half-made copy and never touches a destination that
//! was there before, and `check_with` reads the copy through the same file layer.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;

use caskdb::{Db, Options, SyncPolicy, Vfs, check_with};
use caskdb_testkit::model::{State, key_name, read_state};
use caskdb_testkit::rng::Rng;
use caskdb_testkit::simfs::{Fault, SimVfs, Tear};

const KEYS: usize = 60;
const DB: &str = "/sim/db";
const COPY: &str = "/sim/copy";

fn options(sim: &SimVfs) -> Options {
    // Nothing synced but what rotation, merge and close sync: the backup must sync its copy.
    sim.options(
        Options::default()
            .data_file_size(1024)
            .sync(SyncPolicy::Never)
            .auto_merge(false),
    )
}

/// A database with sealed files, hint files (a merge) and an unsynced active file.
fn busy_db(sim: &SimVfs, seed: u64) -> (Db, State) {
    let db = options(sim).open(DB).unwrap();
    let mut rng = Rng::new(seed);
    for round in 0..3 {
        for _ in 0..80 {
            let k = key_name(rng.index(KEYS));
            if rng.chance(1, 5) {
                db.delete(&k).unwrap();
            } else {
                db.put(&k, vec![b'a' + round; rng.between(1, 120)]).unwrap();
            }
        }
        if round == 1 {
            db.merge().unwrap();
        }
    }
    let state = read_state(&db, KEYS).unwrap();
    (db, state)
}

#[test]
fn a_backup_survives_a_power_loss_right_after_it_returns() {
    for seed in 0..40 {
        let sim = SimVfs::new();
        let (db, want) = busy_db(&sim, seed);
        db.backup(COPY).unwrap();
        let (after, _) = sim.crash(&mut Rng::new(seed), Tear::Random);
        let copy = options(&after).open(COPY).unwrap();
        assert_eq!(read_state(&copy, KEYS).unwrap(), want, "seed {seed}");
        copy.close().unwrap();
        let report = check_with(&after, COPY, false, |_| {}).unwrap();
        assert!(
            report.problems.is_empty(),
            "seed {seed}: {:?}",
            report.problems
        );
        assert!(
            report.data_files > 1 && report.hint_files > 0,
            "seed {seed}: {report:?}"
        );
    }
}

#[test]
fn a_failed_backup_leaves_no_copy_and_spares_what_was_there() {
    let sim = SimVfs::new();
    let (db, want) = busy_db(&sim, 7);
    // A destination that is not empty is refused, and what it held stays.
    sim.put(Path::new("/sim/occupied/mine"), b"keep me".to_vec());
    assert!(db.backup("/sim/occupied").is_err());
    assert_eq!(
        sim.read(Path::new("/sim/occupied/mine")).unwrap(),
        b"keep me"
    );
    // A backup into its own database is refused, however the path is spelled.
    assert!(db.backup("/sim/db/./inner").is_err());
    assert!(db.backup("/sim/x/../db/inner").is_err());
    // Every call of a backup made to fail in turn: an error, no copy left, the database whole.
    let mut failures = 0;
    for n in 0.. {
        sim.set_fault(Fault::FailNonRead(n));
        let r = db.backup(COPY);
        let failed = sim.failed().is_some();
        sim.set_fault(Fault::None);
        if !failed {
            r.unwrap();
            break;
        }
        failures += 1;
        assert!(
            r.is_err(),
            "call {n} failed but the backup said it succeeded"
        );
        assert!(
            !sim.exists(Path::new(COPY)),
            "call {n}: a half-made copy was left"
        );
        assert_eq!(read_state(&db, KEYS).unwrap(), want, "call {n}");
    }
    assert!(failures > 5, "only {failures} calls in a backup");
    let copy = options(&sim).open(COPY).unwrap();
    assert_eq!(read_state(&copy, KEYS).unwrap(), want);
}
