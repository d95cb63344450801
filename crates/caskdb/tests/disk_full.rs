//! Running out of space: the put that cannot get disk blocks fails with an error naming the
//! file, nothing acknowledged is lost, and the database reopens with every acknowledged write.
//!
//! The child process lowers its file-size limit (`RLIMIT_FSIZE`), so growing the active file
//! fails in `posix_fallocate` exactly where a full disk would make it fail.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use caskdb::{Db, Error, Options, SyncPolicy};
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
        let lim = libc::rlimit {
            rlim_cur: FILE_SIZE_LIMIT,
            rlim_max: FILE_SIZE_LIMIT,
        };
        assert_eq!(libc::setrlimit(libc::RLIMIT_FSIZE, &lim), 0);
    }
    let db = Options::default()
        .data_file_size(64 << 20)
        .sync(SyncPolicy::Never)
        .open(&dir)
        .unwrap();
    let mut out = std::io::stdout().lock();
    let mut i = 0;
    let err = loop {
        match db.put(key(i), value(i)) {
            Ok(()) => i += 1,
            Err(e) => break e,
        }
    };
    writeln!(out, "\nacked {i}").unwrap();
    writeln!(out, "error {err}").unwrap();
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
    db.close().unwrap();
    writeln!(out, "closed").unwrap();
}

#[test]
fn a_full_disk_is_a_clear_error_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let child = common::child_test("disk_full_child", DIR_VAR, dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    assert!(child.status.success(), "child failed: {child:?}");
    let (mut acked, mut error, mut closed) = (None, None, false);
    for line in BufReader::new(&child.stdout[..]).lines() {
        let line = line.unwrap();
        if let Some(n) = line.strip_prefix("acked ") {
            acked = Some(n.parse::<usize>().unwrap());
        } else if let Some(e) = line.strip_prefix("error ") {
            error = Some(e.to_string());
        } else if line == "closed" {
            closed = true;
        }
    }
    let acked = acked.expect("child reported its acknowledged puts");
    let error = error.unwrap();
    assert!(closed);
    // 4 MiB of 96-byte records got in before the second allocation failed
    assert!(acked > 30_000, "only {acked} puts before the failure");
    assert!(
        error.contains("0000000001.data"),
        "error names the file: {error}"
    );
    let db = Db::open(dir.path()).unwrap();
    assert_eq!(db.len(), acked);
    for i in 0..acked {
        assert_eq!(db.get(key(i)).unwrap().unwrap(), value(i), "key {i}");
    }
    db.put("after", "space came back").unwrap();
}
