//! Result rows, the printed table and the Markdown written beside the charts.

use std::fmt::Write as _;

use crate::engines::Kind;

/// A row's main figure.
#[derive(Clone, Copy, Debug)]
pub enum Metric {
    /// Operations per second: higher is better.
    OpsPerSec(f64),
    /// Seconds: lower is better.
    Seconds(f64),
    /// Bytes on disk over live bytes: lower is better.
    Ratio(f64),
}

impl Metric {
    pub fn value(self) -> f64 {
        match self {
            Metric::OpsPerSec(v) | Metric::Seconds(v) | Metric::Ratio(v) => v,
        }
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::OpsPerSec(_))
    }

    fn show(self) -> String {
        match self {
            Metric::OpsPerSec(v) => format!("{} ops/s", si(v)),
            Metric::Seconds(v) => format!("{v:.2} s"),
            Metric::Ratio(v) => format!("{v:.3}× live"),
        }
    }
}

/// One engine's result on one workload.
#[derive(Clone, Debug)]
pub struct Row {
    pub workload: String,
    pub engine: Kind,
    pub metric: Metric,
    pub p50_ns: Option<u32>,
    pub p99_ns: Option<u32>,
    pub disk: Option<u64>,
    pub peak_mem: Option<u64>,
    pub note: String,
}

/// How `row` compares with caskdb's row of the same workload, oriented so that above 1 means
/// better than caskdb (caskdb itself is 1).
pub fn relative_to_caskdb(rows: &[Row], row: &Row) -> Option<f64> {
    let cask = rows
        .iter()
        .find(|r| r.workload == row.workload && r.engine == Kind::Caskdb)?;
    let (a, b) = (row.metric.value(), cask.metric.value());
    if a <= 0.0 || b <= 0.0 {
        return None;
    }
    Some(if row.metric.higher_is_better() {
        a / b
    } else {
        b / a
    })
}

/// caskdb's advantage over the best other engine on `workload` (above 1: caskdb is ahead).
pub fn caskdb_lead(rows: &[Row], workload: &str) -> Option<(f64, Kind)> {
    let best = rows
        .iter()
        .filter(|r| r.workload == workload && r.engine != Kind::Caskdb)
        .filter_map(|r| relative_to_caskdb(rows, r).map(|rel| (rel, r.engine)))
        .max_by(|a, b| a.0.total_cmp(&b.0))?;
    Some((1.0 / best.0, best.1))
}

/// Workload names in the order they were first run.
pub fn workloads(rows: &[Row]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for r in rows {
        if !seen.contains(&r.workload) {
            seen.push(r.workload.clone());
        }
    }
    seen
}

/// The whole result as Markdown: one table, then caskdb's lead per workload.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| workload | engine | result | p50 | p99 | disk | peak memory | vs caskdb | note |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for w in workloads(rows) {
        for r in rows.iter().filter(|r| r.workload == w) {
            let rel = relative_to_caskdb(rows, r).map_or("–".into(), |x| format!("{x:.2}"));
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.workload,
                r.engine.name(),
                r.metric.show(),
                r.p50_ns.map_or("–".into(), duration),
                r.p99_ns.map_or("–".into(), duration),
                r.disk.map_or("–".into(), bytes),
                r.peak_mem.map_or("–".into(), bytes),
                rel,
                r.note
            );
        }
    }
    out.push_str("\n| workload | caskdb / best other | best other |\n|---|---:|---|\n");
    for w in workloads(rows) {
        if let Some((lead, other)) = caskdb_lead(rows, &w) {
            let _ = writeln!(out, "| {w} | {lead:.2}× | {} |", other.name());
        }
    }
    out
}

/// `v` in the first of `units` (size, suffix, decimals) it is at least one of, else in the
/// last.
fn scaled(v: f64, units: &[(f64, &str, usize)]) -> String {
    let (div, unit, decimals) = units
        .iter()
        .find(|(at, _, _)| v >= *at)
        .or(units.last())
        .copied()
        .unwrap_or((1.0, "", 0));
    format!("{:.*}{unit}", decimals, v / div)
}

fn si(v: f64) -> String {
    scaled(v, &[(1e6, " M", 2), (1e3, " k", 1), (1.0, "", 0)])
}

fn duration(ns: u32) -> String {
    scaled(
        f64::from(ns),
        &[(1e6, " ms", 2), (1e3, " µs", 1), (1.0, " ns", 0)],
    )
}

fn bytes(b: u64) -> String {
    scaled(b as f64, &[(1e9, " GB", 2), (1e6, " MB", 1)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_shown_in_the_largest_unit_they_reach() {
        assert_eq!(si(1_234_567.0), "1.23 M");
        assert_eq!(si(1_500.0), "1.5 k");
        assert_eq!(si(12.0), "12");
        assert_eq!(si(0.4), "0");
        assert_eq!(duration(3_000_000), "3.00 ms");
        assert_eq!(duration(1_500), "1.5 µs");
        assert_eq!(duration(999), "999 ns");
        assert_eq!(bytes(2_000_000_000), "2.00 GB");
        assert_eq!(bytes(5_000_000), "5.0 MB");
        assert_eq!(bytes(300_000), "0.3 MB");
    }
}
