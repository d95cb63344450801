//! A sealed data file cut short underneath an open database (by another process, or a disk
//! that no longer returns its pages): reading the records that are gone must be an error naming
//! the file and the offset — never a dead process (SIGBUS) and never wrong data — and the rest
//! of the database goes on working.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use caskdb::Error;
use common::{files_of, key};

/// Values of 50 B to 9 KB, in no order: records that lie across one page boundary or several.
fn value(i: usize) -> Vec<u8> {
    vec![b'a' + (i % 26) as u8; 50 + (i * 2711) % 9000]
}

#[test]
fn a_sealed_file_truncated_underneath_gives_errors_naming_it_not_sigbus() {
    let dir = tempfile::tempdir().unwrap();
    let db = files_of(64 << 10)
        .auto_merge(false)
        .open(dir.path())
        .unwrap();
    let n = 600;
    for i in 0..n {
        db.put(key(i), value(i)).unwrap();
    }
    let first = dir.path().join("0000000001.data");
    let full = std::fs::metadata(&first).unwrap().len();
    assert!(full > 32 << 10, "file 1 is sealed and full: {full} bytes");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap()
        .set_len(8192)
        .unwrap();

    let mut lost = Vec::new();
    for round in 0..2 {
        for i in 0..n {
            match db.get(key(i)) {
                Ok(v) => assert_eq!(v.as_deref(), Some(&value(i)[..]), "key {i}"),
                Err(Error::Io(e)) => {
                    let text = e.to_string();
                    assert!(text.contains("0000000001.data"), "names the file: {text}");
                    assert!(text.contains("at offset"), "names the offset: {text}");
                    if round == 0 {
                        lost.push(i);
                    }
                }
                Err(e) => panic!("key {i}: not an I/O error: {e:?}"),
            }
        }
    }
    assert!(!lost.is_empty(), "some records were past the cut");
    // The second round failed on the same keys: a page once unreadable stays an error.
    for &i in &lost {
        assert!(matches!(db.get(key(i)), Err(Error::Io(_))), "key {i}");
    }
    // Iteration reports the error too.
    assert!(db.iter().any(|item| item.is_err()));
    // Writes and the other files are unaffected.
    db.put("after", "the cut").unwrap();
    assert_eq!(db.get("after").unwrap().as_deref(), Some(&b"the cut"[..]));
    assert_eq!(
        db.get(key(n - 1)).unwrap().as_deref(),
        Some(&value(n - 1)[..])
    );
}

const DIR_VAR: &str = "CASKDB_SIGBUS_TEST_DIR";

#[test]
#[ignore = "child process of a_fault_outside_the_engines_reads_still_kills_the_process; runs only when spawned by it"]
fn unguarded_fault_child() {
    let dir = std::path::PathBuf::from(std::env::var(DIR_VAR).expect("spawned by the parent"));
    // The engine's reads install its SIGBUS handler.
    let db = files_of(64 << 10).open(dir.join("db")).unwrap();
    db.put("k", "v").unwrap();
    assert_eq!(db.get("k").unwrap().as_deref(), Some(&b"v"[..]));
    // A mapping of our own, past the end of its (empty) file: touching it is a SIGBUS that no
    // engine read is guarding.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("empty"))
        .unwrap();
    // SAFETY: a plain mmap of a file we own; the read below is meant to fault.
    unsafe {
        use std::os::fd::AsRawFd;
        let p = libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        caskdb_testkit::child::report("touching", true);
        let byte = std::ptr::read_volatile(p as *const u8);
        caskdb_testkit::child::report("survived", byte);
    }
}

#[test]
fn a_fault_outside_the_engines_reads_still_kills_the_process() {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = caskdb_testkit::child::ChildTest::spawn(
        "unguarded_fault_child",
        &[(DIR_VAR, dir.path().as_os_str())],
        std::process::Stdio::null(),
    );
    let wait = std::time::Duration::from_secs(60);
    assert_eq!(child.next("touching", wait).as_deref(), Ok("true"));
    let status = child
        .exited_within(wait)
        .expect("the fault ends the process (it must not loop on it)");
    assert_eq!(status.signal(), Some(libc::SIGBUS), "{status:?}");
}

#[test]
fn an_active_file_truncated_underneath_gives_errors_and_writes_move_to_a_new_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = files_of(1 << 20)
        .auto_merge(false)
        .open(dir.path())
        .unwrap();
    let n = 100;
    for i in 0..n {
        db.put(key(i), value(i)).unwrap();
    }
    let active = dir.path().join("0000000001.data");
    std::fs::OpenOptions::new()
        .write(true)
        .open(&active)
        .unwrap()
        .set_len(4096)
        .unwrap();
    let lost = (0..n)
        .filter(|&i| match db.get(key(i)) {
            Ok(v) => {
                assert_eq!(v.as_deref(), Some(&value(i)[..]), "key {i}");
                false
            }
            Err(Error::Io(e)) => {
                assert!(e.to_string().contains("0000000001.data"), "{e}");
                true
            }
            Err(e) => panic!("key {i}: not an I/O error: {e:?}"),
        })
        .count();
    assert!(lost > 0);
    // The damaged file takes no more records; the next write starts a new file.
    db.put("after", "the cut").unwrap();
    assert_eq!(db.get("after").unwrap().as_deref(), Some(&b"the cut"[..]));
    assert!(dir.path().join("0000000002.data").exists());
}
