//! Running out of space: the put that cannot get disk blocks fails with an error naming the
//! file, nothing acknowledged is lost, and the database reopens with every acknowledged write.
//!
//! The child process lowers its file-size limit (`RLIMIT_FSIZE`), so growing the active file
//! fails in `posix_fallocate` exactly where a full disk would make it fail; raising it again
//! is space coming back: `Db::reserve` succeeds and writes go on.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::process::Stdio;
use std::time::Duration;

use caskdb::{Db, Error, Options, SyncPolicy};
use caskdb_testkit::child::{self, ChildTest};
use common::{key, value};

const DIR_VAR: &str = "CASKDB_DISK_FULL_TEST_DIR";
/// The active file grows in 4 MiB steps: the first fits under the limit, the second does not.
const FILE_SIZE_LIMIT: u64 = 6 << 20;

#[test]
#[ignore = "child process of a_full_disk_is_a_clear_error_and_loses_nothing; runs only when spawned by it"]
fn disk_full_child() {
    let dir = std::env::var(DIR_VAR).expect("spawned by the parent test");
    // SAFETY: plain libc calls in a single-threaded child before any file is opened.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        // (Only the soft limit: the child raises it again later, as space coming back.)
        let lim = libc::rlimit {
            rlim_cur: FILE_SIZE_LIMIT,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let db = Options::default()
        .data_file_size(64 << 20)
        .sync(SyncPolicy::Never)
        .open(&dir)
        .unwrap();
    let mut i = 0;
    let err = loop {
        match db.put(key(i), value(i)) {
            Ok(()) => i += 1,
            Err(e) => break e,
        }
    };
    child::report("acked", i);
    child::report("error", &err);
    assert!(matches!(err, Error::Io(_)), "{err:?}");
    // everything acknowledged is still readable; a retry fails the same clean way
    for j in (0..i).step_by(97) {
        assert_eq!(db.get(key(j)).unwrap().unwrap(), value(j));
    }
    assert!(db.put(key(i), value(i)).is_err());
    assert_eq!(
        db.get(key(i)).unwrap(),
        None,
        "the failed put left nothing behind"
    );
    assert_eq!(db.len(), i);
    assert!(
        matches!(db.reserve(1 << 20), Err(Error::Io(_))),
        "no space yet"
    );
    // Space comes back: the same handle takes writes again, no reopen needed.
    // SAFETY: a plain libc call raising this process's own soft limit.
    unsafe {
        let lim = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    db.reserve(1 << 20).unwrap();
    db.put(key(i), value(i)).unwrap();
    db.close().unwrap();
    child::report("closed", true);
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = ChildTest::spawn(
        "disk_full_child",
        &[(DIR_VAR, dir.path().as_os_str())],
        Stdio::inherit(),
    );
    let wait = Duration::from_secs(120);
    let acked: usize = child.next("acked", wait).unwrap().parse().unwrap();
    let error = child.next("error", wait).unwrap();
    assert_eq!(child.next("closed", wait).as_deref(), Ok("true"));
    let status = child
        .exited_within(wait)
        .expect("the child exits after closing");
    assert!(status.success(), "child failed: {status:?}");
    // 4 MiB of 96-byte records got in before the second allocation failed
    assert!(acked > 30_000, "only {acked} puts before the failure");
    assert!(
        error.contains("0000000001.data"),
        "error names the file: {error}"
    );
    // Every acknowledged put, and the one made once space came back.
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.len(), acked + 1);
    for i in 0..=acked {
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i), "key {i}");
    }
    db.put("after", "space came back").unwrap();
}
