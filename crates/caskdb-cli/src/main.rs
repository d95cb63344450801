//! `caskdb`: the command line over a caskdb data directory.

mod admin;
mod serve;
mod transfer;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};

/// A Bitcask-style persistent key/value store.
#[derive(Parser, Debug)]
#[command(name = "caskdb", version, long_about = None)]
struct Cli {
    /// Database directory, created if missing [default: caskdb-data; for `serve`, the config
    /// file's `dir` if it has one].
    #[arg(long, global = true, env = "CASKDB_DIR")]
    dir: Option<PathBuf>,

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
        /// Expire the key after this many seconds.
        #[arg(long, value_name = "SECONDS")]
        ttl: Option<u64>,
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
    /// Print the seconds left before KEY expires, "no expiry", or "Key not found".
    Ttl {
        /// The key.
        key: OsString,
    },
    /// Print keys and values in key order, one "KEY<TAB>VALUE" line each (raw bytes: use
    /// `export` when keys or values may hold tabs or newlines).
    Scan {
        /// Only keys starting with this.
        #[arg(long, conflicts_with_all = ["start", "end"])]
        prefix: Option<OsString>,
        /// Only keys from this one on (inclusive).
        #[arg(long)]
        start: Option<OsString>,
        /// Only keys before this one (exclusive).
        #[arg(long)]
        end: Option<OsString>,
        /// Descending key order.
        #[arg(long)]
        reverse: bool,
        /// Print at most this many.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
    },
    /// Print how many keys, files, live and dead bytes the database holds.
    Stats,
    /// Rewrite live data into compact files and delete the old ones (progress on stderr).
    Merge,
    /// Verify every record and hint file (progress on stderr); --repair fixes what it can.
    Check {
        /// Cut torn tails, drop corrupt regions (keeping the records after them), remove bad
        /// hint files; reports what was lost.
        #[arg(long)]
        repair: bool,
    },
    /// Copy the database into DEST (absent or empty) while it stays usable.
    Backup {
        /// The directory to create.
        dest: PathBuf,
    },
    /// Write every key as one JSON object per line to stdout.
    Export,
    /// Read JSON lines (as written by export) from stdin and store them.
    Import,
    /// Run a Redis-compatible server (RESP2/RESP3) over the database until SIGINT, SIGTERM or
    /// SHUTDOWN.
    Serve(serve::ServeArgs),
}

/// Exit status when `remove` finds no such key, or `check` finds problems it did not fix.
const NOT_FOUND_OR_DIRTY: u8 = 1;
/// Exit status for errors (locked or corrupt directory, I/O failure, bad input).
const FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs its start and stop; one-shot commands only their problems.
    let default_level = if matches!(cli.command, Command::Serve(_)) {
        "info"
    } else {
        "warn"
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level)),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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

/// The data directory when no flag, variable or config file names one.
const DEFAULT_DIR: &str = "caskdb-data";

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Serve(args) = cli.command {
        return serve::run(args, cli.dir);
    }
    let dir = cli.dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    if let Command::Check { repair } = cli.command {
        // check works on a closed database: it takes the lock itself
        return admin::check(&dir, repair);
    }
    // One command per process: an automatic merge started here would only be cut short by the
    // close at the end. `caskdb merge` merges on request.
    let db = caskdb::Options::default()
        .auto_merge(false)
        .open(&dir)
        .with_context(|| format!("cannot open database {}", dir.display()))?;
    let mut out = std::io::stdout().lock();
    let code = match cli.command {
        Command::Set { key, value, ttl } => {
            match ttl {
                None => db.put(bytes_of(&key)?, bytes_of(&value)?)?,
                Some(s) => {
                    db.put_with_ttl(bytes_of(&key)?, bytes_of(&value)?, Duration::from_secs(s))?
                }
            }
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
                ExitCode::from(NOT_FOUND_OR_DIRTY)
            }
        }
        Command::Ttl { key } => {
            let key = bytes_of(&key)?;
            match db.ttl(key)? {
                Some(left) => writeln!(out, "{}", left.as_millis().div_ceil(1000))?,
                None if db.contains_key(key)? => writeln!(out, "no expiry")?,
                None => writeln!(out, "Key not found")?,
            }
            ExitCode::SUCCESS
        }
        Command::Scan {
            prefix,
            start,
            end,
            reverse,
            limit,
        } => {
            let iter = match (&prefix, &start, &end) {
                (Some(p), _, _) => db.prefix(bytes_of(p)?),
                (None, Some(s), Some(e)) => db.range(bytes_of(s)?..bytes_of(e)?),
                (None, Some(s), None) => db.range(bytes_of(s)?..),
                (None, None, Some(e)) => db.range(..bytes_of(e)?),
                (None, None, None) => db.iter(),
            };
            let iter: Box<dyn Iterator<Item = caskdb::Result<_>>> = if reverse {
                Box::new(iter.rev())
            } else {
                Box::new(iter)
            };
            for item in iter.take(limit.unwrap_or(usize::MAX)) {
                let (k, v) = item?;
                out.write_all(&k)?;
                out.write_all(b"\t")?;
                out.write_all(&v)?;
                out.write_all(b"\n")?;
            }
            ExitCode::SUCCESS
        }
        Command::Stats => {
            admin::print_stats(&mut out, &db.stats()?)?;
            ExitCode::SUCCESS
        }
        Command::Merge => {
            admin::merge(&db, &mut out)?;
            ExitCode::SUCCESS
        }
        Command::Backup { dest } => {
            db.backup(&dest)
                .with_context(|| format!("cannot back up into {}", dest.display()))?;
            ExitCode::SUCCESS
        }
        Command::Export => {
            transfer::export(&db, &mut out)?;
            ExitCode::SUCCESS
        }
        Command::Import => {
            let n = transfer::import(&db, std::io::stdin().lock())?;
            writeln!(out, "imported {n} keys")?;
            ExitCode::SUCCESS
        }
        Command::Check { .. } | Command::Serve(_) => unreachable!("handled before opening"),
    };
    out.flush()?;
    // Close explicitly so that a failing final sync is reported, not just logged.
    db.close()?;
    Ok(code)
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
