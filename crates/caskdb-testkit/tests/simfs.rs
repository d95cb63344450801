//! The simulated file system itself: it keeps only what was synced, tears only what was not,
//! loses a failed fsync's pages for good, and keeps the `Vfs` contracts the engine relies on.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io;
use std::path::Path;

use caskdb::{OpenMode, Vfs};
use caskdb_testkit::rng::Rng;
use caskdb_testkit::simfs::{Call, Fault, SimVfs, Tear};

fn read_all(vfs: &SimVfs, path: &Path) -> Vec<u8> {
    vfs.read(path).unwrap()
}

/// The directory every test works in.
const DIR: &str = "/d";

/// A simulated file system holding the (empty) directory [`DIR`].
fn sim_with_dir() -> (SimVfs, &'static Path) {
    let sim = SimVfs::new();
    let dir = Path::new(DIR);
    sim.create_dir_all(dir).unwrap();
    (sim, dir)
}

#[test]
fn power_loss_sim_keeps_only_what_was_synced() {
    let (sim, dir) = sim_with_dir();
    let a = sim.create(&dir.join("a"), 64).unwrap();
    a.append(&[b"synced"]).unwrap();
    a.sync(false).unwrap();
    sim.sync_dir(dir).unwrap();
    a.append(&[b"+unsynced"]).unwrap();
    let b = sim.create(&dir.join("b"), 64).unwrap();
    b.append(&[b"b"]).unwrap();
    b.sync(true).unwrap(); // its bytes are durable, its name is not
    let c = sim.create(&dir.join("c"), 64).unwrap();
    c.append(&[b"c"]).unwrap();
    c.sync(true).unwrap();
    sim.rename(&dir.join("c"), &dir.join("c2")).unwrap();
    assert_eq!(sim.names(dir), ["a", "b", "c2"]);

    let (after, stats) = sim.crash(&mut Rng::new(1), Tear::None);
    assert_eq!(
        after.names(dir),
        ["a"],
        "unsynced creates and renames are gone"
    );
    let bytes = read_all(&after, &dir.join("a"));
    assert_eq!(&bytes[..6], b"synced");
    assert!(bytes[6..].iter().all(|&b| b == 0), "{bytes:?}");
    assert!(stats.bytes_lost > 0 && stats.entries_lost == 3, "{stats:?}");

    sim.sync_dir(dir).unwrap();
    sim.remove_file(&dir.join("b")).unwrap();
    let (after, _) = sim.crash(&mut Rng::new(1), Tear::None);
    assert_eq!(
        after.names(dir),
        ["a", "b", "c2"],
        "an unsynced remove is undone"
    );
    assert_eq!(&read_all(&after, &dir.join("c2"))[..1], b"c");
    assert!(sim.open(&dir.join("b"), OpenMode::ReadOnly).is_err());
}

#[test]
fn power_loss_sim_loses_the_pages_of_a_failed_fsync_for_good() {
    let (sim, dir) = sim_with_dir();
    let f = sim.create(&dir.join("f"), 64).unwrap();
    sim.sync_dir(dir).unwrap();
    f.append(&[b"one"]).unwrap();
    f.sync(false).unwrap();
    f.append(&[b"two"]).unwrap();
    sim.set_fault(Fault::FailCall(0));
    assert_eq!(f.sync(false).unwrap_err().raw_os_error(), Some(libc::EIO));
    let failed = sim.failed().unwrap();
    assert_eq!((failed.call, failed.durable_len), (Call::Sync, Some(64)));
    f.append(&[b"three"]).unwrap();
    f.sync(false).unwrap();
    let mut buf = [0; 11];
    f.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"onetwothree", "reads still see the dropped pages");
    let (after, _) = sim.crash(&mut Rng::new(1), Tear::Random);
    let bytes = read_all(&after, &dir.join("f"));
    assert_eq!(
        &bytes[..11],
        b"one\0\0\0three",
        "later syncs do not write them"
    );
}

#[test]
fn power_loss_sim_keeps_the_vfs_contracts() {
    let (sim, dir) = sim_with_dir();
    let missing = sim.open(&dir.join("x"), OpenMode::ReadOnly).err().unwrap();
    assert_eq!(missing.kind(), io::ErrorKind::NotFound);
    let f = sim.create(&dir.join("f"), 10).unwrap();
    let again = sim.create(&dir.join("f"), 10).err().unwrap();
    assert_eq!(again.kind(), io::ErrorKind::AlreadyExists);
    f.append(&[b"hello", b" "]).unwrap();
    assert_eq!((f.len(), f.room()), (6, 4));
    assert!(f.append(&[b"world"]).is_err(), "past the capacity");
    assert_eq!(f.len(), 6, "a failed append shows nothing");
    let mut buf = [0; 5];
    let eof = f.read_at(2, &mut buf).unwrap_err();
    assert_eq!(eof.kind(), io::ErrorKind::UnexpectedEof);
    f.truncate(6).unwrap();
    let r = sim.open(&dir.join("f"), OpenMode::ReadOnly).unwrap();
    assert_eq!(r.len(), 6);
    assert!(r.append(&[b"x"]).is_err(), "read-only");
    let lock = dir.join("LOCK");
    let first = sim.try_lock(&lock).unwrap();
    assert!(first.is_some());
    assert!(sim.try_lock(&lock).unwrap().is_none());
    drop(first);
    assert!(sim.try_lock(&lock).unwrap().is_some());
}
