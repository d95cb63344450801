//! Merge and restart figures at scale.
//!
//! Run: `cargo bench -p caskdb --bench merge -- [--keys N] [--dir DIR] [--setup-only]` (default
//! 10 million keys; needs about 2.5 × N × 117 bytes of disk; `--setup-only` stops after the
//! merge, leaving the directory for `--child-open DIR`). Prints:
//! - fill rate; merge time; disk bytes / live bytes after the merge;
//! - open time and keydir memory with hint files, and by scanning (hints removed), each
//!   measured in a fresh child process (memory = anonymous RSS after open minus before);
//! - put throughput alone and while a merge runs.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use caskdb::{Db, Options, SyncPolicy};

const VALUE: [u8; 100] = [7u8; 100];

fn key(i: u64) -> [u8; 16] {
    // a bijective mix, so keys are distinct and scattered
    let mut x = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    x ^= x >> 31;
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&x.to_be_bytes());
    k[8..].copy_from_slice(&i.to_le_bytes());
    k
}

fn opts() -> Options {
    Options::default().sync(SyncPolicy::Never).auto_merge(false)
}

/// (RssAnon, VmHWM) in bytes, from /proc/self/status.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024)
    };
    (field("RssAnon:"), field("VmHWM:"))
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Child mode: open, report time and memory, exit.
fn child_open(dir: &Path) {
    let (before, _) = memory();
    let t = Instant::now();
    let db = opts().open(dir).unwrap();
    let took = t.elapsed();
    let (after, peak) = memory();
    println!(
        "OPEN {} {} {} {}",
        took.as_secs_f64(),
        db.len(),
        after - before,
        peak
    );
    std::mem::forget(db); // exit without the close-time fsync: only the open is measured
}

fn measure_open(dir: &Path, label: &str, key_bytes: u64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--child-open", dir.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("OPEN "))
        .unwrap_or_else(|| panic!("child failed: {}", String::from_utf8_lossy(&out.stderr)));
    let f: Vec<f64> = line[5..].split(' ').map(|x| x.parse().unwrap()).collect();
    let (secs, keys, anon, peak) = (f[0], f[1], f[2], f[3]);
    println!(
        "open ({label}): {secs:.2} s for {keys} keys; keydir {:.1} bytes/key ({:.1} beyond the \
         {key_bytes}-byte key); peak RSS {:.0} MiB",
        anon / keys,
        anon / keys - key_bytes as f64,
        peak / 1048576.0
    );
}

fn put_rate(db: &Db, from: u64, n: u64) -> f64 {
    let t = Instant::now();
    for i in from..from + n {
        db.put(key(i), VALUE).unwrap();
    }
    n as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--child-open") {
        child_open(Path::new(&args[i + 1]));
        return;
    }
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let n: u64 = arg("--keys").map_or(10_000_000, |v| v.parse().unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = arg("--dir").map_or_else(|| tmp.path().join("db"), PathBuf::from);

    let db = opts().open(&dir).unwrap();
    let t = Instant::now();
    for i in 0..n {
        db.put(key(i), VALUE).unwrap();
    }
    let fill = t.elapsed();
    println!(
        "fill: {n} keys in {:.1} s ({:.0} puts/s)",
        fill.as_secs_f64(),
        n as f64 / fill.as_secs_f64()
    );
    // overwrite a tenth, so the merge has garbage to drop
    for i in (0..n).step_by(10) {
        db.put(key(i), VALUE).unwrap();
    }
    let before = db.stats().unwrap();
    let t = Instant::now();
    let m = db.merge().unwrap();
    let merge_took = t.elapsed();
    let after = db.stats().unwrap();
    println!(
        "merge: {} files ({} bytes, {:.1}% dead) into {} files in {:.1} s",
        m.files_merged,
        m.bytes_before,
        before.dead_bytes as f64 * 100.0 / before.total_bytes as f64,
        m.files_written,
        merge_took.as_secs_f64()
    );
    db.close().unwrap();
    let disk = dir_bytes(&dir);
    println!(
        "after merge: {disk} bytes in the directory (data + hints), live {} bytes: ratio {:.3}; \
         data files alone {:.3}",
        after.live_bytes,
        disk as f64 / after.live_bytes as f64,
        after.total_bytes as f64 / after.live_bytes as f64
    );

    if args.iter().any(|a| a == "--setup-only") {
        return;
    }
    measure_open(&dir, "hint files", 16);
    let mut hidden = Vec::new();
    for e in std::fs::read_dir(&dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "hint") {
            let to = p.with_extension("hint-hidden");
            std::fs::rename(&p, &to).unwrap();
            hidden.push((to, p));
        }
    }
    measure_open(&dir, "scan, hints removed", 16);
    for (from, to) in hidden {
        std::fs::rename(from, to).unwrap();
    }

    // put throughput with and without a merge running
    let db = opts().open(&dir).unwrap();
    for i in (0..n).step_by(4) {
        db.put(key(i), VALUE).unwrap(); // garbage for the merge to chew on
    }
    let sample = (n / 10).max(10_000);
    let alone = put_rate(&db, n, sample);
    let merging = std::thread::scope(|s| {
        let merger = s.spawn(|| {
            let t = Instant::now();
            db.merge().unwrap();
            t.elapsed()
        });
        // measure only while the merge runs
        let mut done = 0u64;
        let t = Instant::now();
        while !merger.is_finished() {
            put_rate(&db, 2 * n + done, 1000);
            done += 1000;
        }
        let rate = done as f64 / t.elapsed().as_secs_f64();
        let took: Duration = merger.join().unwrap();
        (rate, took, done)
    });
    println!(
        "puts: {alone:.0}/s alone; {:.0}/s during a {:.1} s merge ({} puts; ratio {:.2})",
        merging.0,
        merging.1.as_secs_f64(),
        merging.2,
        merging.0 / alone
    );
}
