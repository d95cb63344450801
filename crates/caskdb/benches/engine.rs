//! Put and get throughput, 16-byte keys and 100-byte values.
//!
//! Run: `cargo bench -p caskdb --bench engine`. Results and how to read them: docs/BENCHMARKS.md.
//!
//! Besides caskdb itself, the run measures two references on the same machine, so the numbers
//! can be read as ratios even when the machine is noisy:
//! - `std_btreemap`: an in-memory `BTreeMap` behind a mutex (what an index alone costs);
//! - `raw_fdatasync`: append 117 bytes to a file and `fdatasync` it, one stream (what one durable
//!   write costs on this disk; group commit is how caskdb beats it with several writers).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::time::{Duration, Instant};

use caskdb::{Db, Options, SyncPolicy};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use parking_lot::Mutex;

const KEY_LEN: usize = 16;
const VALUE_LEN: usize = 100;
const KEYS: usize = 1 << 20;

/// Deterministic pseudo-random 16-byte keys.
fn keys(n: usize) -> Vec<[u8; KEY_LEN]> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..n)
        .map(|_| {
            let mut k = [0u8; KEY_LEN];
            k[..8].copy_from_slice(&next().to_le_bytes());
            k[8..].copy_from_slice(&next().to_le_bytes());
            k
        })
        .collect()
}

/// Automatic merging is off: these benchmarks measure the read and write paths alone (the
/// merge benchmark measures puts while a merge runs).
fn open(dir: &std::path::Path, sync: SyncPolicy) -> Db {
    Options::default()
        .sync(sync)
        .auto_merge(false)
        .open(dir)
        .unwrap()
}

/// Runs `iters` operations split over `threads` threads and returns the wall time.
fn parallel(threads: usize, iters: u64, op: impl Fn(usize, u64) + Sync) -> Duration {
    let per = iters.div_ceil(threads as u64);
    let start = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let op = &op;
            s.spawn(move || {
                for i in 0..per {
                    op(t, i);
                }
            });
        }
    });
    start.elapsed()
}

/// Benchmarks `op(n)` on `threads` threads as `{name}/{threads}t`; `n` goes on counting across
/// iterations, each thread from its own offset (`t * stride`), so that no two threads and no
/// two iterations touch the same keys in step.
fn on_threads(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    threads: usize,
    stride: usize,
    op: impl Fn(usize) + Sync,
) {
    let mut n = 0usize;
    g.bench_function(format!("{name}/{threads}t"), |b| {
        b.iter_custom(|iters| {
            let base = n;
            n += iters as usize;
            parallel(threads, iters, |t, i| op(base + t * stride + i as usize))
        })
    });
}

/// Puts from 1 and from 8 threads, each on a fresh database under `policy`, as
/// `{name}/{threads}t`.
fn threaded_puts(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    keys: &[[u8; KEY_LEN]],
    policy: SyncPolicy,
) {
    let value = [7u8; VALUE_LEN];
    for threads in [1, 8] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), policy);
        on_threads(g, name, threads, 1_000_003, |n| {
            db.put(keys[n % KEYS], value).unwrap();
        });
    }
}

fn bench_put(c: &mut Criterion) {
    let keys = keys(KEYS);
    let value = [7u8; VALUE_LEN];
    let mut g = c.benchmark_group("put");
    g.throughput(Throughput::Elements(1));
    threaded_puts(&mut g, "caskdb_never", &keys, SyncPolicy::Never);
    let map = Mutex::new(BTreeMap::new());
    let mut n = 0usize;
    g.bench_function("std_btreemap/1t", |b| {
        b.iter(|| {
            let k = keys[n % KEYS];
            n += 1;
            map.lock().insert(k, value.to_vec());
        })
    });
    g.finish();
}

/// A database (in the returned directory) holding every key, with the same 100-byte value.
fn filled(keys: &[[u8; KEY_LEN]]) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path(), SyncPolicy::Never);
    for k in keys {
        db.put(k, [7u8; VALUE_LEN]).unwrap();
    }
    (dir, db)
}

fn bench_get(c: &mut Criterion) {
    let keys = keys(KEYS);
    let (_dir, db) = filled(&keys);
    let map = Mutex::new(
        keys.iter()
            .map(|k| (*k, vec![7u8; VALUE_LEN]))
            .collect::<BTreeMap<_, _>>(),
    );
    let mut g = c.benchmark_group("get");
    g.throughput(Throughput::Elements(1));
    for threads in [1, 8] {
        // a stride that is coprime with KEYS visits keys in scattered order
        on_threads(&mut g, "caskdb", threads, 999_983, |n| {
            let at = n.wrapping_mul(40_503) % KEYS;
            assert!(db.get(keys[at]).unwrap().is_some());
        });
    }
    let mut n = 0usize;
    g.bench_function("std_btreemap/1t", |b| {
        b.iter(|| {
            let at = n.wrapping_mul(40_503) % KEYS;
            n += 1;
            assert!(map.lock().get(&keys[at]).is_some());
        })
    });
    let mut n = 0usize;
    g.bench_function("caskdb_absent/1t", |b| {
        b.iter(|| {
            n += 1;
            assert!(db.get(n.to_le_bytes()).unwrap().is_none());
        })
    });
    g.finish();
}

fn bench_durable(c: &mut Criterion) {
    let keys = keys(KEYS);
    let mut g = c.benchmark_group("put_durable");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(8));
    threaded_puts(&mut g, "caskdb_always", &keys, SyncPolicy::Always);
    let dir = tempfile::tempdir().unwrap();
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path().join("raw.log"))
        .unwrap();
    let record = [1u8; KEY_LEN + VALUE_LEN + 1];
    g.bench_function("raw_fdatasync/1t", |b| {
        b.iter(|| {
            file.write_all(&record).unwrap();
            file.sync_data().unwrap();
        })
    });
    g.finish();
}

fn bench_iter_and_batch(c: &mut Criterion) {
    let keys = keys(KEYS);
    let value = [7u8; VALUE_LEN];
    let (_dir, db) = filled(&keys);
    let mut g = c.benchmark_group("iterate");
    g.throughput(Throughput::Elements(KEYS as u64));
    g.sample_size(10);
    g.bench_function("caskdb_forward_1M", |b| {
        b.iter(|| assert_eq!(db.iter().count(), KEYS))
    });
    g.bench_function("caskdb_reverse_1M", |b| {
        b.iter(|| assert_eq!(db.iter().rev().count(), KEYS))
    });
    g.bench_function("caskdb_keys_only_1M", |b| {
        b.iter(|| assert_eq!(db.keys().count(), KEYS))
    });
    let map: BTreeMap<[u8; KEY_LEN], Vec<u8>> = keys.iter().map(|k| (*k, value.to_vec())).collect();
    g.bench_function("std_btreemap_forward_1M", |b| {
        b.iter(|| {
            // the same work per entry as the iterator's items: owned copies of key and value
            let mut n = 0;
            for (k, v) in &map {
                std::hint::black_box((
                    bytes::Bytes::copy_from_slice(k),
                    bytes::Bytes::copy_from_slice(v),
                ));
                n += 1;
            }
            assert_eq!(n, KEYS)
        })
    });
    g.finish();

    let mut g = c.benchmark_group("batch");
    for (size, sync) in [(100usize, SyncPolicy::Never), (100, SyncPolicy::Always)] {
        let dir = tempfile::tempdir().unwrap();
        let db = open(dir.path(), sync);
        g.throughput(Throughput::Elements(size as u64));
        let mut n = 0usize;
        let name = if sync == SyncPolicy::Always {
            "always"
        } else {
            "never"
        };
        g.bench_function(format!("caskdb_commit_{size}_puts_{name}"), |b| {
            b.iter(|| {
                let mut batch = db.batch();
                for _ in 0..size {
                    batch.put(keys[n % KEYS], value);
                    n += 1;
                }
                batch.commit().unwrap();
            })
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = bench_put, bench_get, bench_durable, bench_iter_and_batch
}
criterion_main!(benches);
