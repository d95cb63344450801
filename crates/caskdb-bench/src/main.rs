//! `caskdb-bench`: the same workloads on caskdb, redb, fjall, sled and RocksDB, engine after
//! engine in one process, printed as a table and drawn as one SVG chart per workload.
//!
//! ```sh
//! cargo run --release -p caskdb-bench --features rocksdb -- --out docs/bench
//! ```

mod chart;
mod engines;
mod measure;
mod report;
mod workloads;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};

use engines::Kind;
use report::Row;
use workloads::Sizes;

/// Side-by-side benchmarks of caskdb against redb, fjall, sled and RocksDB.
///
/// Runs each selected workload on every selected engine, one engine after the other, in a
/// fresh directory each; prints one table (ops/s, p50/p99 latency, bytes on disk, peak memory,
/// ratio to caskdb) and, with --out, writes it as results.md plus one SVG chart per workload.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Workloads to run (all when none is given).
    #[arg(value_enum)]
    workloads: Vec<Workload>,
    /// Engines to run, comma-separated (all compiled in when not given; RocksDB needs
    /// `--features rocksdb`).
    #[arg(long, value_enum, value_delimiter = ',')]
    engines: Vec<Kind>,
    /// Keys written by fill, read by read/scan/mixed.
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Value size in bytes (keys are 16 bytes).
    #[arg(long, default_value_t = 100)]
    value_len: usize,
    /// Threads of the mixed workload (90% get, 10% put).
    #[arg(long, default_value_t = 4)]
    mixed_threads: usize,
    /// Durable puts by one thread; the 8-thread run does 4× as many in all.
    #[arg(long, default_value_t = 5_000)]
    durable_ops: u64,
    /// Bytes written by each large-value run (4 KiB and 64 KiB values).
    #[arg(long, default_value_t = 256 << 20)]
    large_bytes: u64,
    /// Number of short range scans.
    #[arg(long, default_value_t = 10_000)]
    short_scans: u64,
    /// Keys read by each short range scan.
    #[arg(long, default_value_t = 50)]
    short_scan_len: usize,
    /// Keys of the overwrite workload.
    #[arg(long, default_value_t = 200_000)]
    overwrite_keys: u64,
    /// How many times the overwrite workload rewrites every key.
    #[arg(long, default_value_t = 10)]
    overwrite_passes: u64,
    /// Keys in the store timed by reopen.
    #[arg(long, default_value_t = 10_000_000)]
    reopen_keys: u64,
    /// Engines that run reopen, of those selected. sled is left out by default: loading 10M
    /// keys took it past the 24 GiB of the test machine (the kernel killed the run at 24.4 GB
    /// RSS, 2026-11-21); name it here to try anyway.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "caskdb,redb,fjall,rocksdb"
    )]
    reopen_engines: Vec<Kind>,
    /// Directory for the stores (each engine's is removed after its run).
    #[arg(long, default_value = "caskdb-bench-data")]
    dir: PathBuf,
    /// Where to write results.md and the SVG charts (nothing is written when not given).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed of the key order and values.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Workload {
    /// Random puts, no sync per put, one sync at the end.
    Fill,
    /// Random gets of present keys, then of absent keys.
    Read,
    /// A full ordered scan, then short range scans.
    Scan,
    /// Threads doing 90% gets and 10% puts.
    Mixed,
    /// Puts on disk before they return, 1 thread and 8 threads.
    Durable,
    /// Puts then gets of 4 KiB and 64 KiB values.
    Large,
    /// Every key rewritten N times; disk bytes before and after compaction.
    Overwrite,
    /// Time to open a store of `--reopen-keys` keys.
    Reopen,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let all = [
        Workload::Fill,
        Workload::Read,
        Workload::Scan,
        Workload::Mixed,
        Workload::Durable,
        Workload::Large,
        Workload::Overwrite,
        Workload::Reopen,
    ];
    let selected: Vec<Workload> = if args.workloads.is_empty() {
        all.to_vec()
    } else {
        args.workloads.clone()
    };
    let mut engines = if args.engines.is_empty() {
        Kind::available()
    } else {
        args.engines.clone()
    };
    engines.sort();
    engines.dedup();
    let sizes = Sizes {
        keys: args.keys.max(1),
        value_len: args.value_len,
        mixed_threads: args.mixed_threads,
        durable_ops: args.durable_ops.max(8),
        large_bytes: args.large_bytes,
        short_scans: args.short_scans,
        short_scan_len: args.short_scan_len.max(1),
        overwrite_keys: args.overwrite_keys.max(1),
        overwrite_passes: args.overwrite_passes,
        reopen_keys: args.reopen_keys.max(1),
        seed: args.seed,
    };
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let base = args.dir.canonicalize()?;
    let on = |w: Workload| selected.contains(&w);
    let mut rows: Vec<Row> = Vec::new();
    let mut run = |what: &str, kind: Kind, f: &mut dyn FnMut() -> Result<Vec<Row>>| -> Result<()> {
        eprint!("{what:>10} {:<8} … ", kind.name());
        let got = f().with_context(|| format!("{what} on {}", kind.name()))?;
        let summary: Vec<String> = got
            .iter()
            .map(|r| format!("{} {:.0}", r.workload, r.metric.value()))
            .collect();
        eprintln!("{}", summary.join(", "));
        rows.extend(got);
        Ok(())
    };

    if on(Workload::Fill) || on(Workload::Read) || on(Workload::Scan) || on(Workload::Mixed) {
        let want = |name: &str| {
            let w = if name.starts_with("read") {
                Workload::Read
            } else {
                match name {
                    "fill" => Workload::Fill,
                    "scan" => Workload::Scan,
                    _ => Workload::Mixed,
                }
            };
            on(w)
        };
        for &kind in &engines {
            run("fill…", kind, &mut || {
                workloads::fill_read_scan_mixed(&base, kind, &sizes, &want)
            })?;
        }
    }
    if on(Workload::Durable) {
        for threads in [1, 8] {
            for &kind in &engines {
                run("durable", kind, &mut || {
                    Ok(vec![workloads::durable(&base, kind, &sizes, threads)?])
                })?;
            }
        }
    }
    if on(Workload::Large) {
        for len in [4 << 10, 64 << 10] {
            for &kind in &engines {
                run("large", kind, &mut || {
                    workloads::large(&base, kind, &sizes, len)
                })?;
            }
        }
    }
    if on(Workload::Overwrite) {
        for &kind in &engines {
            run("overwrite", kind, &mut || {
                workloads::overwrite(&base, kind, &sizes)
            })?;
        }
    }
    if on(Workload::Reopen) {
        for &kind in engines.iter().filter(|k| args.reopen_engines.contains(k)) {
            run("reopen", kind, &mut || {
                Ok(vec![workloads::reopen(&base, kind, &sizes)?])
            })?;
        }
    }
    let _ = std::fs::remove_dir(&base);

    let table = report::markdown(&rows);
    println!("{table}");
    if let Some(out) = &args.out {
        write_out(out, &sizes, &engines, &rows, &table)?;
    }
    Ok(())
}

/// Writes results.md and the charts into `out`.
fn write_out(out: &Path, sizes: &Sizes, engines: &[Kind], rows: &[Row], table: &str) -> Result<()> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mixed = format!("mixed-{}t", sizes.mixed_threads.max(1));
    let groups: [(&str, &str, Vec<&str>); 8] = [
        (
            "fill",
            "fill: random puts, one sync at the end",
            vec!["fill"],
        ),
        ("read", "read: random gets", vec!["read", "read-absent"]),
        (
            "scan",
            "scan: ordered iteration",
            vec!["scan-full", "scan-short"],
        ),
        ("mixed", "mixed: 90% get / 10% put", vec![mixed.as_str()]),
        (
            "durable",
            "durable puts (each synced)",
            vec!["durable-1t", "durable-8t"],
        ),
        (
            "large",
            "large values",
            vec!["put-4KiB", "get-4KiB", "put-64KiB", "get-64KiB"],
        ),
        (
            "overwrite",
            "overwrite: rewrites and disk after compaction",
            vec!["overwrite", "disk-after-compaction"],
        ),
        ("reopen", "reopen: time to open", vec!["reopen"]),
    ];
    let mut charts = Vec::new();
    for (file, title, group) in &groups {
        if rows.iter().any(|r| group.contains(&r.workload.as_str())) {
            let path = out.join(format!("{file}.svg"));
            chart::draw(&path, title, group, rows, engines)?;
            charts.push(path);
        }
    }
    let command: Vec<String> = std::env::args().collect();
    let md = format!(
        "<!-- written by caskdb-bench; do not edit -->\n\
         Command: `{}`\n\nMachine: {}\n\nSizes: {:?}\n\n{table}",
        command.join(" "),
        machine(),
        sizes
    );
    let results = out.join("results.md");
    std::fs::write(&results, md).with_context(|| format!("writing {}", results.display()))?;
    eprintln!(
        "wrote {} and {} charts into {}",
        results.display(),
        charts.len(),
        out.display()
    );
    Ok(())
}

/// CPU model, core count, memory and kernel, read from /proc.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_string(), |s| s.trim().to_string());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kib: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{model}, {cores} cores, {:.0} GiB, Linux {}",
        mem_kib as f64 / (1 << 20) as f64,
        kernel.trim()
    )
}
