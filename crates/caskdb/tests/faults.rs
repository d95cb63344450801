//! Tests that break the file layer on purpose: failed fsyncs, failed rotations, and the
//! background syncer. They plug the test kit's fault-injecting `Vfs` in through `Options`.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use caskdb::{Db, Error, Options, SyncPolicy};
use caskdb_testkit::faulty::{Faults, faulty};
use common::{data_files, files_of};
use tempfile::TempDir;

fn data_file_count(dir: &Path) -> usize {
    data_files(dir).len()
}

#[test]
fn a_failed_fsync_stops_writes_until_reopen_and_close_reports_it() {
    let dir = tempfile::tempdir().unwrap();
    let (opts, faults) = faulty(Options::default().sync(SyncPolicy::Always));
    let db = opts.open(dir.path()).unwrap();
    db.put("acked", "1").unwrap();
    faults.fail_sync.store(true, Ordering::SeqCst);
    match db.put("unknown", "2") {
        Err(Error::Io(e)) => assert!(e.to_string().contains("sync"), "{e}"),
        other => panic!("expected the fsync error, got {other:?}"),
    }
    // From now on writes are refused, even if fsync would work again: retrying is unsafe.
    faults.fail_sync.store(false, Ordering::SeqCst);
    assert!(matches!(db.put("later", "3"), Err(Error::Poisoned { .. })));
    assert!(matches!(db.delete("acked"), Err(Error::Poisoned { .. })));
    assert!(matches!(db.sync(), Err(Error::Poisoned { .. })));
    assert_eq!(db.get("acked").unwrap().unwrap(), "1", "reads still work");
    match db.close() {
        Err(Error::Poisoned { reason }) => assert!(reason.contains("sync"), "{reason}"),
        other => panic!("close must report the earlier failure, got {other:?}"),
    }
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.get("acked").unwrap().unwrap(), "1");
    assert_eq!(db.get("later").unwrap(), None);
    db.put("later", "3").unwrap();
}

/// A 1 KiB-file database whose first file is full, so that the next put must rotate, and whose
/// next file creation fails; also the number of keys it holds.
fn rotation_about_to_fail() -> (TempDir, Db, Arc<Faults>, usize) {
    let dir = tempfile::tempdir().unwrap();
    let (opts, faults) = faulty(files_of(1024));
    let db = opts.open(dir.path()).unwrap();
    let mut i = 0;
    while db.stats().unwrap().total_bytes + 60 < 1024 {
        db.put(format!("key{i:04}"), [b'v'; 40]).unwrap();
        i += 1;
    }
    faults.fail_creates.store(1, Ordering::SeqCst);
    (dir, db, faults, i)
}

#[test]
fn a_failed_rotation_leaves_no_file_behind_and_is_retried() {
    let (dir, db, _faults, mut n) = rotation_about_to_fail();
    match db.put("big", [b'x'; 200]) {
        Err(Error::Io(e)) => {
            assert_eq!(e.kind(), io::ErrorKind::StorageFull, "{e}");
            assert!(e.to_string().contains("0000000002.data"), "{e}");
        }
        other => panic!("expected the rotation's error, got {other:?}"),
    }
    assert_eq!(
        data_file_count(dir.path()),
        1,
        "the half-made file was removed"
    );
    assert_eq!(db.get("big").unwrap(), None);
    // the next put retries the rotation and succeeds
    db.put("big", [b'x'; 200]).unwrap();
    assert_eq!(data_file_count(dir.path()), 2);
    n += 1;
    db.crash();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.len(), n);
    assert_eq!(db.get("big").unwrap().unwrap(), &[b'x'; 200][..]);
}

#[test]
fn a_failed_rotation_whose_cleanup_also_failed_survives_a_crash() {
    let (dir, db, faults, n) = rotation_about_to_fail();
    faults.fail_remove.store(true, Ordering::SeqCst);
    assert!(db.put("big", [b'x'; 200]).is_err());
    assert_eq!(
        data_file_count(dir.path()),
        2,
        "the empty file 2 could not be removed"
    );
    // a small put still fits in file 1, which grows a preallocated tail again
    db.put("small", "fits").unwrap();
    // crash with file 1 not trimmed and an empty file 2 after it
    db.crash();
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.len(), n + 1);
    assert_eq!(db.get("small").unwrap().unwrap(), "fits");
    assert_eq!(
        data_file_count(dir.path()),
        1,
        "recovery removed the blank file"
    );
    db.put("big", [b'x'; 200]).unwrap();
    assert_eq!(db.get("big").unwrap().unwrap(), &[b'x'; 200][..]);
}

#[test]
fn the_interval_policy_syncs_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let (opts, faults) =
        faulty(Options::default().sync(SyncPolicy::Interval(Duration::from_millis(5))));
    let db = opts.open(dir.path()).unwrap();
    let (tx, rx) = mpsc::channel();
    *faults.syncs.lock() = Some(tx);
    db.put("k", "v").unwrap();
    // Under Interval a put never syncs by itself, and nothing else runs: an fsync after the
    // put can only come from the background thread.
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the syncer fsynced the put");
    *faults.syncs.lock() = None;
    db.close().unwrap();
}

#[test]
fn a_merge_that_would_not_fit_on_the_disk_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (opts, faults) = faulty(Options::default().auto_merge(false).sync(SyncPolicy::Never));
    let db = opts.open(dir.path()).unwrap();
    for i in 0..1000 {
        db.put(format!("k{i}"), [7u8; 100]).unwrap();
    }
    let before = db.stats().unwrap();
    *faults.free_space.lock() = Some(50_000);
    match db.merge() {
        Err(Error::InsufficientSpace { needed, available }) => {
            assert_eq!(available, 50_000);
            assert!(needed > before.live_bytes, "{needed}");
            let msg = Error::InsufficientSpace { needed, available }.to_string();
            assert!(msg.contains("not enough free disk space"), "{msg}");
        }
        other => panic!("expected InsufficientSpace, got {other:?}"),
    }
    assert_eq!(db.stats().unwrap(), before, "nothing was sealed or written");
    assert_eq!(data_file_count(dir.path()), 1);
    *faults.free_space.lock() = None;
    db.merge().unwrap();
    assert_eq!(db.len(), 1000);
}
