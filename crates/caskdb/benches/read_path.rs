//! How a sealed data file is read: the engine's guarded copy out of a memory mapping
//! (`StdVfs`, `vfs/guard.rs`) against `pread(2)` of the same bytes, for 100 B, 4 KiB and
//! 64 KiB reads at random offsets of a 256 MiB file in the page cache.
//!
//! Run: `cargo bench -p caskdb --bench read_path`. The choice it informs is in
//! docs/ARCHITECTURE.md ("Reading a sealed file").

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use caskdb::{OpenMode, StdVfs, Vfs};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const FILE_LEN: u64 = 256 << 20;

fn offsets(n: usize, len: usize) -> Vec<u64> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % (FILE_LEN - len as u64)
        })
        .collect()
}

fn read_path(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0000000001.data");
    {
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk: Vec<u8> = (0..1 << 20).map(|i| (i * 31 % 251) as u8).collect();
        for _ in 0..FILE_LEN >> 20 {
            f.write_all(&chunk).unwrap();
        }
    }
    let mapped = StdVfs.open(&path, OpenMode::ReadOnly).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let mut g = c.benchmark_group("read_path");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for len in [100usize, 4 << 10, 64 << 10] {
        let at = offsets(4096, len);
        let mut buf = vec![0u8; len];
        g.throughput(Throughput::Elements(1));
        let mut i = 0;
        g.bench_function(format!("mmap_guarded/{len}"), |b| {
            b.iter(|| {
                i = (i + 1) % at.len();
                mapped.read_at(at[i], &mut buf).unwrap();
            })
        });
        g.bench_function(format!("pread/{len}"), |b| {
            b.iter(|| {
                i = (i + 1) % at.len();
                file.read_exact_at(&mut buf, at[i]).unwrap();
            })
        });
    }
    g.finish();
}

criterion_group!(benches, read_path);
criterion_main!(benches);
