//! `caskdb`: the command line over a caskdb data directory.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// A Bitcask-style persistent key/value store.
#[derive(Parser, Debug)]
#[command(name = "caskdb", version, long_about = None)]
struct Cli {
    /// Database directory (created if missing).
    #[arg(long, global = true, env = "CASKDB_DIR", default_value = "caskdb-data")]
    dir: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Store VALUE under KEY (prints nothing).
    Set {
        /// The key (any bytes but empty).
        key: OsString,
        /// The value (may be empty).
        value: OsString,
    },
    /// Print the value stored under KEY, or "Key not found".
    Get {
        /// The key.
        key: OsString,
    },
    /// Remove KEY; prints "Key not found" and exits 1 if it does not exist.
    #[command(visible_alias = "rm")]
    Remove {
        /// The key.
        key: OsString,
    },
    /// Print how many keys, files, live and dead bytes the database holds.
    Stats,
    /// Rewrite live data into compact files and delete the old ones (progress on stderr).
    Merge,
}

/// Exit status when `remove` finds no such key.
const KEY_NOT_FOUND: u8 = 1;
/// Exit status for errors (locked or corrupt directory, I/O failure, bad input).
const FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .without_time()
        .with_target(false)
        .init();
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("caskdb: error: {err:#}");
            ExitCode::from(FAILURE)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // One command per process: an automatic merge started here would only be cut short by the
    // close at the end. `caskdb merge` merges on request.
    let db = caskdb::Options::default()
        .auto_merge(false)
        .open(&cli.dir)
        .with_context(|| format!("cannot open database {}", cli.dir.display()))?;
    let mut out = std::io::stdout().lock();
    let code = match cli.command {
        Command::Set { key, value } => {
            db.put(bytes_of(&key)?, bytes_of(&value)?)?;
            ExitCode::SUCCESS
        }
        Command::Get { key } => {
            match db.get(bytes_of(&key)?)? {
                Some(value) => {
                    out.write_all(&value)?;
                    out.write_all(b"\n")?;
                }
                None => writeln!(out, "Key not found")?,
            }
            ExitCode::SUCCESS
        }
        Command::Remove { key } => {
            if db.delete(bytes_of(&key)?)? {
                ExitCode::SUCCESS
            } else {
                writeln!(out, "Key not found")?;
                ExitCode::from(KEY_NOT_FOUND)
            }
        }
        Command::Stats => {
            print_stats(&mut out, &db.stats()?)?;
            ExitCode::SUCCESS
        }
        Command::Merge => {
            let before = db.stats()?;
            // indicatif draws nothing when stderr is not a terminal.
            let bar = indicatif::ProgressBar::new(before.live_bytes);
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "merging {bar:40} {binary_bytes}/{binary_total_bytes} ({eta})",
                )
                .expect("static template"),
            );
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
            ExitCode::SUCCESS
        }
    };
    out.flush()?;
    // Close explicitly so that a failing final sync is reported, not just logged.
    db.close()?;
    Ok(code)
}

fn print_stats(out: &mut impl Write, s: &caskdb::Stats) -> std::io::Result<()> {
    let pct = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 * 100.0 / whole as f64
        }
    };
    writeln!(out, "keys          {}", s.keys)?;
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

/// The raw bytes of an argument: on Unix keys and values need not be UTF-8.
#[cfg(unix)]
fn bytes_of(s: &OsString) -> anyhow::Result<&[u8]> {
    use std::os::unix::ffi::OsStrExt;
    Ok(s.as_bytes())
}

/// Elsewhere arguments must be Unicode (there is no lossless byte view of them).
#[cfg(not(unix))]
fn bytes_of(s: &OsString) -> anyhow::Result<&[u8]> {
    s.to_str()
        .map(str::as_bytes)
        .ok_or_else(|| anyhow::anyhow!("argument {s:?} is not valid Unicode"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
