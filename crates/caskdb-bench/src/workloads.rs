//! The workloads. Each runs one engine at a time in a fresh directory and returns result rows.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};

use crate::engines::{self, Durability, Kind};
use crate::measure::{ABSENT, Latencies, PRESENT, PeakMemory, Rng, Values, disk_bytes, key};
use crate::report::{Metric, Row};

/// Sizes of every workload (command-line flags).
#[derive(Clone, Debug)]
pub struct Sizes {
    pub keys: u64,
    pub value_len: usize,
    pub mixed_threads: usize,
    pub durable_ops: u64,
    pub large_bytes: u64,
    pub short_scans: u64,
    pub short_scan_len: usize,
    pub overwrite_keys: u64,
    pub overwrite_passes: u64,
    pub reopen_keys: u64,
    pub seed: u64,
}

/// A fresh, empty directory for one engine's run; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(base: &Path, kind: Kind, what: &str) -> Result<Scratch> {
        let dir = base.join(format!("{what}-{}", kind.name()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn row(workload: &str, kind: Kind, metric: Metric) -> Row {
    Row {
        workload: workload.to_string(),
        engine: kind,
        metric,
        p50_ns: None,
        p99_ns: None,
        disk: None,
        peak_mem: None,
        note: String::new(),
    }
}

fn with_latency(mut r: Row, lat: Latencies) -> Row {
    if let Some((p50, p99)) = lat.percentiles() {
        r.p50_ns = Some(p50);
        r.p99_ns = Some(p99);
    }
    r
}

fn ops_per_sec(ops: u64, secs: f64) -> Metric {
    Metric::OpsPerSec(ops as f64 / secs.max(1e-9))
}

/// Runs `work(t)` for t in 0..threads, each on its own thread, and merges their latencies.
fn on_threads(
    threads: usize,
    work: impl Fn(usize) -> Result<Latencies> + Sync,
) -> Result<Latencies> {
    let work = &work;
    let per_thread = std::thread::scope(|s| -> Result<Vec<Latencies>> {
        let handles: Vec<_> = (0..threads).map(|t| s.spawn(move || work(t))).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))?
            })
            .collect()
    })?;
    let mut all = Latencies::default();
    for l in per_thread {
        all.extend(l);
    }
    Ok(all)
}

/// fill, read (present and absent keys), scan (full and short) and mixed, on one store per
/// engine: the fill builds the data the others read.
pub fn fill_read_scan_mixed(
    base: &Path,
    kind: Kind,
    sizes: &Sizes,
    want: &dyn Fn(&str) -> bool,
) -> Result<Vec<Row>> {
    let scratch = Scratch::new(base, kind, "main")?;
    let values = Values::new(sizes.seed);
    let mut rows = Vec::new();
    let n = sizes.keys;

    // fill: n random puts, no sync per put, one sync at the end.
    let mem = PeakMemory::start();
    let store = engines::open(kind, &scratch.0, Durability::Buffered)?;
    let mut lat = Latencies::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let k = key(PRESENT, i);
        let v = values.get(i, sizes.value_len);
        lat.time(|| store.put(&k, v))?;
    }
    store.sync()?;
    let secs = start.elapsed().as_secs_f64();
    let mut r = with_latency(row("fill", kind, ops_per_sec(n, secs)), lat);
    r.disk = Some(disk_bytes(&scratch.0));
    r.peak_mem = mem.peak();
    if want("fill") {
        rows.push(r);
    }

    let mut rng = Rng::new(sizes.seed ^ 0x4EAD);
    for (name, set) in [("read", PRESENT), ("read-absent", ABSENT)] {
        if !want(name) {
            continue;
        }
        let mem = PeakMemory::start();
        let mut lat = Latencies::with_capacity(n as usize);
        let start = Instant::now();
        for _ in 0..n {
            let k = key(set, rng.below(n));
            let got = lat.time(|| store.get(&k))?;
            ensure!(
                got.is_some() == (set == PRESENT),
                "{}: wrong answer for a {} key",
                kind.name(),
                if set == PRESENT { "present" } else { "absent" }
            );
        }
        let secs = start.elapsed().as_secs_f64();
        let mut r = with_latency(row(name, kind, ops_per_sec(n, secs)), lat);
        r.peak_mem = mem.peak();
        rows.push(r);
    }

    if want("scan") {
        let mem = PeakMemory::start();
        let start = Instant::now();
        let count = store.scan_all()?;
        let secs = start.elapsed().as_secs_f64();
        ensure!(
            count == n,
            "{}: full scan saw {count} of {n} keys",
            kind.name()
        );
        let mut r = row("scan-full", kind, ops_per_sec(n, secs));
        r.note = "keys/s".into();
        r.peak_mem = mem.peak();
        rows.push(r);

        let scans = sizes.short_scans;
        let mut lat = Latencies::with_capacity(scans as usize);
        let start = Instant::now();
        let mut seen = 0;
        for _ in 0..scans {
            let k = key(PRESENT, rng.below(n));
            seen += lat.time(|| store.scan_from(&k, sizes.short_scan_len))?;
        }
        let secs = start.elapsed().as_secs_f64();
        ensure!(
            seen >= scans as usize,
            "{}: short scans found nothing",
            kind.name()
        );
        let mut r = with_latency(row("scan-short", kind, ops_per_sec(scans, secs)), lat);
        r.note = format!("scans of {} keys/s", sizes.short_scan_len);
        rows.push(r);
    }

    if want("mixed") {
        let mem = PeakMemory::start();
        let threads = sizes.mixed_threads.max(1);
        let per_thread = n / threads as u64;
        let start = Instant::now();
        let all = on_threads(threads, |t| {
            let mut rng = Rng::new(sizes.seed ^ (0x313 + t as u64));
            let mut lat = Latencies::with_capacity(per_thread as usize);
            for op in 0..per_thread {
                let k = key(PRESENT, rng.below(n));
                if rng.below(10) == 0 {
                    let v = values.get(op ^ (t as u64) << 40, sizes.value_len);
                    lat.time(|| store.put(&k, v))?;
                } else {
                    let got = lat.time(|| store.get(&k))?;
                    ensure!(got.is_some(), "mixed: a present key read as absent");
                }
            }
            Ok(lat)
        })?;
        let secs = start.elapsed().as_secs_f64();
        let name = format!("mixed-{threads}t");
        let mut r = with_latency(
            row(&name, kind, ops_per_sec(per_thread * threads as u64, secs)),
            all,
        );
        r.note = "90% get, 10% put".into();
        r.peak_mem = mem.peak();
        rows.push(r);
    }

    store.close()?;
    Ok(rows)
}

/// Puts that are each on disk before they return, from `threads` threads.
pub fn durable(base: &Path, kind: Kind, sizes: &Sizes, threads: usize) -> Result<Row> {
    let scratch = Scratch::new(base, kind, "durable")?;
    let store = engines::open(kind, &scratch.0, Durability::Durable)?;
    let values = Values::new(sizes.seed);
    // One thread does `durable_ops` puts; more threads do 4× as many in all, so that every
    // engine runs long enough for its group commit (if any) to show.
    let total = if threads == 1 {
        sizes.durable_ops
    } else {
        sizes.durable_ops * 4
    };
    let per_thread = total / threads as u64;
    let mem = PeakMemory::start();
    let start = Instant::now();
    let all = on_threads(threads, |t| {
        let mut lat = Latencies::with_capacity(per_thread as usize);
        for op in 0..per_thread {
            let i = op * threads as u64 + t as u64;
            let k = key(PRESENT, i);
            lat.time(|| store.put(&k, values.get(i, sizes.value_len)))?;
        }
        Ok(lat)
    })?;
    let secs = start.elapsed().as_secs_f64();
    let mut r = with_latency(
        row(
            &format!("durable-{threads}t"),
            kind,
            ops_per_sec(per_thread * threads as u64, secs),
        ),
        all,
    );
    r.peak_mem = mem.peak();
    r.disk = Some(disk_bytes(&scratch.0));
    store.close()?;
    Ok(r)
}

/// Puts of `value_len`-byte values (`large_bytes` in all, one sync at the end), then as many
/// random gets.
pub fn large(base: &Path, kind: Kind, sizes: &Sizes, value_len: usize) -> Result<Vec<Row>> {
    let scratch = Scratch::new(base, kind, "large")?;
    let store = engines::open(kind, &scratch.0, Durability::Buffered)?;
    let values = Values::new(sizes.seed);
    let n = (sizes.large_bytes / value_len as u64).max(1);
    let label = format!("{}KiB", value_len / 1024);

    let mem = PeakMemory::start();
    let mut lat = Latencies::with_capacity(n as usize);
    let start = Instant::now();
    for i in 0..n {
        let k = key(PRESENT, i);
        lat.time(|| store.put(&k, values.get(i, value_len)))?;
    }
    store.sync()?;
    let secs = start.elapsed().as_secs_f64();
    let mut put = with_latency(
        row(&format!("put-{label}"), kind, ops_per_sec(n, secs)),
        lat,
    );
    put.disk = Some(disk_bytes(&scratch.0));
    put.peak_mem = mem.peak();
    put.note = format!("{:.0} MB/s", n as f64 * value_len as f64 / secs / 1e6);

    let mut rng = Rng::new(sizes.seed ^ 0x1A46E);
    let mut lat = Latencies::with_capacity(n as usize);
    let start = Instant::now();
    for _ in 0..n {
        let k = key(PRESENT, rng.below(n));
        let got = lat.time(|| store.get(&k))?;
        ensure!(got == Some(value_len), "{}: wrong large value", kind.name());
    }
    let secs = start.elapsed().as_secs_f64();
    let get = with_latency(
        row(&format!("get-{label}"), kind, ops_per_sec(n, secs)),
        lat,
    );
    store.close()?;
    Ok(vec![put, get])
}

/// Every key written once, then rewritten `overwrite_passes` times (random order each pass);
/// disk bytes after a clean close, then after the engine's compaction and a clean close.
pub fn overwrite(base: &Path, kind: Kind, sizes: &Sizes) -> Result<Vec<Row>> {
    let scratch = Scratch::new(base, kind, "overwrite")?;
    let values = Values::new(sizes.seed);
    let n = sizes.overwrite_keys;
    let live = n * (16 + sizes.value_len as u64);

    let store = engines::open(kind, &scratch.0, Durability::Buffered)?;
    for i in 0..n {
        store.put(&key(PRESENT, i), values.get(i, sizes.value_len))?;
    }
    let mem = PeakMemory::start();
    let mut rng = Rng::new(sizes.seed ^ 0x0E7);
    let rewrites = n * sizes.overwrite_passes;
    let mut lat = Latencies::with_capacity(rewrites as usize);
    let start = Instant::now();
    for op in 0..rewrites {
        let k = key(PRESENT, rng.below(n));
        lat.time(|| store.put(&k, values.get(op ^ 0x55, sizes.value_len)))?;
    }
    store.sync()?;
    let secs = start.elapsed().as_secs_f64();
    let mut put = with_latency(row("overwrite", kind, ops_per_sec(rewrites, secs)), lat);
    put.peak_mem = mem.peak();
    store.close()?;
    let before = disk_bytes(&scratch.0);
    put.disk = Some(before);

    let mut store = engines::open(kind, &scratch.0, Durability::Buffered)?;
    let start = Instant::now();
    let compacted = store.compact()?;
    let compact_secs = start.elapsed().as_secs_f64();
    // Everything must still be there.
    let mut check = Rng::new(sizes.seed ^ 0xC4EC);
    for _ in 0..1000.min(n) {
        ensure!(
            store.get(&key(PRESENT, check.below(n)))?.is_some(),
            "{}: a key is missing after compaction",
            kind.name()
        );
    }
    store.close()?;
    let after = disk_bytes(&scratch.0);
    let mut disk = row(
        "disk-after-compaction",
        kind,
        Metric::Ratio(after as f64 / live as f64),
    );
    disk.disk = Some(after);
    disk.note = if compacted {
        format!(
            "before {:.1} MB, after {:.1} MB, live {:.1} MB, compaction {compact_secs:.2} s",
            before as f64 / 1e6,
            after as f64 / 1e6,
            live as f64 / 1e6
        )
    } else {
        format!(
            "no compaction call; before {:.1} MB, after close {:.1} MB, live {:.1} MB",
            before as f64 / 1e6,
            after as f64 / 1e6,
            live as f64 / 1e6
        )
    };
    Ok(vec![put, disk])
}

/// Loads `reopen_keys` keys in batches, closes the store cleanly, and times opening it again
/// until a first read of a present key is answered.
pub fn reopen(base: &Path, kind: Kind, sizes: &Sizes) -> Result<Row> {
    let scratch = Scratch::new(base, kind, "reopen")?;
    let values = Values::new(sizes.seed);
    let n = sizes.reopen_keys;
    let store = engines::open(kind, &scratch.0, Durability::Buffered)?;
    const CHUNK: u64 = 50_000;
    let mut i = 0;
    while i < n {
        let end = (i + CHUNK).min(n);
        let mut pairs = (i..end).map(|j| {
            (
                key(PRESENT, j).to_vec(),
                values.get(j, sizes.value_len).to_vec(),
            )
        });
        store.put_many(&mut pairs)?;
        i = end;
    }
    store.close()?;
    let disk = disk_bytes(&scratch.0);

    let mem = PeakMemory::start();
    let start = Instant::now();
    let store = engines::open(kind, &scratch.0, Durability::Buffered)?;
    let probe = key(PRESENT, n / 2);
    ensure!(
        store.get(&probe)?.is_some(),
        "{}: a key is missing after reopen",
        kind.name()
    );
    let secs = start.elapsed().as_secs_f64();
    let mut r = row("reopen", kind, Metric::Seconds(secs));
    r.peak_mem = mem.peak();
    r.disk = Some(disk);
    r.note = format!("{n} keys");
    store.close()?;
    Ok(r)
}
