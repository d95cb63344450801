//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::slice::SliceIndex;

use caskdb::{Db, Options, SyncPolicy};
use tempfile::TempDir;

pub fn key(i: usize) -> Vec<u8> {
    format!("caskdb-key-{i:09}").into_bytes()
}

pub fn value(i: usize) -> Vec<u8> {
    format!("caskdb-value-value-value-value-value-value-value-{i:09}").into_bytes()
}

/// The default options, but never syncing: tests that do not crash need no fsync.
pub fn unsynced() -> Options {
    Options::default().sync(SyncPolicy::Never)
}

/// Never syncing, with data files of `bytes` bytes.
pub fn files_of(bytes: u64) -> Options {
    unsynced().data_file_size(bytes)
}

/// Small files so that a few hundred records rotate through several of them.
pub fn small_files() -> Options {
    files_of(4096)
}

/// Files of `bytes` bytes, never synced, merged only when the test calls `merge`.
pub fn manual_merge(bytes: u64) -> Options {
    files_of(bytes).auto_merge(false)
}

pub fn open_small(dir: &Path) -> Db {
    small_files().open(dir).expect("open")
}

/// A database opened with `opts` in a temporary directory of its own.
pub fn temp_db(opts: Options) -> (TempDir, Db) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let db = opts.open(dir.path()).expect("open");
    (dir, db)
}

/// [`temp_db`], holding `pairs`.
pub fn temp_db_with(opts: Options, pairs: &[(&str, &str)]) -> (TempDir, Db) {
    let (dir, db) = temp_db(opts);
    for (k, v) in pairs {
        db.put(k, v).expect("put");
    }
    (dir, db)
}

/// Drops `db` (this handle, not the clones) and opens its directory again with `opts`.
pub fn reopen(db: Db, opts: Options) -> Db {
    let dir = db.path().to_path_buf();
    drop(db);
    opts.open(dir).expect("reopen")
}

/// Puts `key(i)` = `value(i)` for every `i` of `ids`, in that order.
pub fn put_keys(db: &Db, ids: impl IntoIterator<Item = usize>) {
    for i in ids {
        db.put(key(i), value(i)).expect("put");
    }
}

/// Files of `dir` ending in `.{extension}`, sorted by name (= by id).
fn files_ending(dir: &Path, extension: &str) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .expect("read_dir")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == extension))
        .collect();
    v.sort();
    v
}

/// Data files of `dir`, sorted by name (= by id).
pub fn data_files(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, "data")
}

/// Hint files of `dir`, sorted by name (= by id).
pub fn hint_files(dir: &Path) -> Vec<PathBuf> {
    files_ending(dir, "hint")
}

/// A new temporary directory holding a copy of every file of `dir`.
pub fn copy_of(dir: &Path) -> TempDir {
    let to = tempfile::tempdir().expect("temporary directory");
    for e in fs::read_dir(dir).expect("read_dir") {
        let e = e.expect("directory entry");
        fs::copy(e.path(), to.path().join(e.file_name())).expect("copy");
    }
    to
}

/// Cuts `file` to `len` bytes, as a crash that lost its tail leaves it.
pub fn set_len(file: &Path, len: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(file)
        .expect("open for writing")
        .set_len(len)
        .expect("set_len");
}

/// Rewrites `file` with the bytes at `at` replaced by zeros, as a lost page reads back.
pub fn zero(file: &Path, at: impl SliceIndex<[u8], Output = [u8]>) {
    let mut bytes = fs::read(file).expect("read");
    bytes[at].fill(0);
    fs::write(file, bytes).expect("write");
}

/// Rewrites `file` with the byte at `offset` XORed with `mask`; returns the new contents.
pub fn xor_byte(file: &Path, offset: usize, mask: u8) -> Vec<u8> {
    let mut bytes = fs::read(file).expect("read");
    bytes[offset] ^= mask;
    fs::write(file, &bytes).expect("write");
    bytes
}

/// Puts `value` under each of `keys`, in `db` and in `model`.
pub fn put_both(
    db: &Db,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    keys: impl IntoIterator<Item = Vec<u8>>,
    value: &[u8],
) {
    for k in keys {
        db.put(&k, value).expect("put");
        model.insert(k, value.to_vec());
    }
}

/// Deletes each of `keys` from `db`, and from `model` where `db` had it; returns how many `db`
/// had.
pub fn delete_both(
    db: &Db,
    model: &mut BTreeMap<Vec<u8>, Vec<u8>>,
    keys: impl IntoIterator<Item = Vec<u8>>,
) -> usize {
    let mut deleted = 0;
    for k in keys {
        if db.delete(&k).expect("delete") {
            model.remove(&k);
            deleted += 1;
        }
    }
    deleted
}
