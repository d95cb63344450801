//! Administration commands: stats, merge, check.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// A progress bar on stderr; indicatif draws nothing when stderr is not a terminal.
fn bar(total: u64, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{what} {{bar:40}} {{binary_bytes}}/{{binary_total_bytes}} ({{eta}})"
        ))
        .expect("static template"),
    );
    bar
}

pub fn merge(db: &caskdb::Db, out: &mut impl Write) -> anyhow::Result<()> {
    let before = db.stats()?;
    let bar = bar(before.live_bytes, "merging");
    let m = db.merge_with_progress(|p| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
    });
    bar.finish_and_clear();
    let m = m?;
    let after = db.stats()?;
    writeln!(
        out,
        "merged {} files ({} bytes) into {} ({} bytes); {} records copied; {} bytes on disk, was {}",
        m.files_merged,
        m.bytes_before,
        m.files_written,
        m.bytes_after,
        m.records_copied,
        after.total_bytes,
        before.total_bytes
    )?;
    Ok(())
}

pub fn check(dir: &Path, repair: bool) -> anyhow::Result<ExitCode> {
    let bar = bar(0, if repair { "repairing" } else { "checking" });
    let report = caskdb::check(dir, repair, |p| {
        bar.set_length(p.bytes_total);
        bar.set_position(p.bytes_done);
    });
    bar.finish_and_clear();
    let report = report?;
    let mut out = std::io::stdout().lock();
    for p in &report.problems {
        writeln!(
            out,
            "{} at offset {}: {} ({} bytes){}",
            p.file.display(),
            p.offset,
            p.what,
            p.bytes,
            if p.repaired { " - repaired" } else { "" }
        )?;
    }
    let lost: u64 = report
        .problems
        .iter()
        .filter(|p| p.repaired)
        .map(|p| p.bytes)
        .sum();
    writeln!(
        out,
        "{} data files, {} records, {} bytes, {} hint files checked: {} problems{}",
        report.data_files,
        report.records,
        report.bytes,
        report.hint_files,
        report.problems.len(),
        if repair && !report.problems.is_empty() {
            format!(", repaired (dropped {lost} bytes)")
        } else {
            String::new()
        }
    )?;
    Ok(if report.is_clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::NOT_FOUND_OR_DIRTY)
    })
}

/// `keys`: the server's keys in each database (what a user counts); `s.keys` counts engine
/// records, members included.
pub fn print_stats(out: &mut impl Write, keys: &[u64], s: &caskdb::Stats) -> std::io::Result<()> {
    let pct = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    };
    let used = keys.iter().filter(|&&n| n > 0).count();
    writeln!(out, "keys          {}", keys.iter().sum::<u64>())?;
    writeln!(out, "databases     {used} of {} hold keys", keys.len())?;
    for (d, n) in keys.iter().enumerate().filter(|(_, n)| **n > 0) {
        writeln!(out, "  db{d:<9} {n}")?;
    }
    writeln!(out, "records       {}", s.keys)?;
    writeln!(out, "data files    {}", s.data_files)?;
    writeln!(out, "total bytes   {}", s.total_bytes)?;
    writeln!(out, "live bytes    {}", s.live_bytes)?;
    writeln!(
        out,
        "dead bytes    {} ({:.1}%)",
        s.dead_bytes,
        pct(s.dead_bytes, s.total_bytes)
    )?;
    writeln!(out)?;
    writeln!(
        out,
        "{:>10}  {:>14}  {:>14}  {:>6}",
        "file", "bytes", "dead", "dead%"
    )?;
    for f in &s.files {
        writeln!(
            out,
            "{:>10}  {:>14}  {:>14}  {:>5.1}%{}",
            f.id,
            f.total_bytes,
            f.dead_bytes,
            pct(f.dead_bytes, f.total_bytes),
            if f.active { "  (active)" } else { "" }
        )?;
    }
    Ok(())
}
