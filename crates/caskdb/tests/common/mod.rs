//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::Path;

use caskdb::{Db, Options, SyncPolicy};

pub fn key(i: usize) -> Vec<u8> {
    format!("caskdb-key-{i:09}").into_bytes()
}

pub fn value(i: usize) -> Vec<u8> {
    format!("caskdb-value-value-value-value-value-value-value-{i:09}").into_bytes()
}

/// Small files so that a few hundred records rotate through several of them.
pub fn small_files() -> Options {
    Options::default()
        .data_file_size(4096)
        .sync(SyncPolicy::Never)
}

pub fn open_small(dir: &Path) -> Db {
    small_files().open(dir).expect("open")
}

/// Data files of `dir`, sorted by name (= by id).
pub fn data_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "data"))
        .collect();
    v.sort();
    v
}
