//! `caskdb`: the command line over a caskdb data directory.

/// mimalloc rather than glibc's malloc: the server's threads allocate and free small buffers
/// per request, and glibc's arenas make them wait on each other (futex wake-ups in a profile
/// of LRANGE).
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod admin;
mod cluster;
mod serve;
mod transfer;

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use caskdb_server::direct::{self, Value};
use clap::{Parser, Subcommand};

/// A Bitcask-style persistent key/value store.
#[derive(Parser, Debug)]
#[command(name = "caskdb", version, long_about = None)]
struct Cli {
    /// Database directory, created if missing [default: caskdb-data; for `serve`, the config
    /// file's `dir` if it has one].
    #[arg(long, global = true, env = "CASKDB_DIR")]
    dir: Option<PathBuf>,

    /// The server's database (SELECT's number) that set, get, remove, ttl and scan work on
    /// [default: 0]; export writes only this one (all of them without --db), import loads into
    /// it.
    #[arg(long, global = true, value_parser = clap::value_parser!(u8).range(0..16))]
    db: Option<u8>,

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
    /// Print the string stored under KEY, what it holds if it is a collection, or "Key not
    /// found".
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
    /// Print keys and values in key order, one "KEY<TAB>VALUE" line each; a collection's line
    /// shows its type and size (raw bytes: use `export` when keys or values may hold tabs or
    /// newlines).
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
    /// Print how many keys each database holds (and engine records), files, live and dead
    /// bytes.
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
    /// Write every key (of every database, or of --db N) to stdout as one JSON object per line:
    /// database, key, type, value (a collection's contents), ttl_ms.
    Export,
    /// Read JSON lines (as written by export, or by older versions) from stdin and store their
    /// keys, replacing keys of the same name.
    Import,
    /// Run a Redis-compatible server (RESP2/RESP3) over the database until SIGINT, SIGTERM or
    /// SHUTDOWN.
    Serve(serve::ServeArgs),
    /// The replicated group a server belongs to, as a table: each node's role, Raft term and
    /// applied index.
    Cluster {
        #[command(subcommand)]
        action: ClusterAction,
    },
    /// Print a shell completion script (e.g. `caskdb completions bash > ~/.local/share/bash-completion/completions/caskdb`).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// What `caskdb cluster` does.
#[derive(Subcommand, Debug)]
enum ClusterAction {
    /// Print every member of the group of the server at --host/--port.
    Status {
        /// A member's address.
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Its client port.
        #[arg(long, default_value_t = 6380)]
        port: u16,
        /// The group's password (requirepass), also read from CASKDB_REQUIREPASS.
        #[arg(long, env = "CASKDB_REQUIREPASS", hide_env_values = true)]
        password: Option<String>,
    },
}

/// Exit status when `remove` finds no such key, or `check` finds problems it did not fix.
const NOT_FOUND_OR_DIRTY: u8 = 1;
/// Exit status for errors (locked or corrupt directory, I/O failure, bad input).
const FAILURE: u8 = 1;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The server logs its start and stop, each line timed (a group's elections and failovers
    // are read from its nodes' logs side by side); one-shot commands only their problems.
    let serve = matches!(cli.command, Command::Serve(_));
    let logger = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(if serve { "info" } else { "warn" })
            }),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    if serve {
        logger.init();
    } else {
        logger.without_time().init();
    }
    match run(cli) {
        Ok(code) => code,
        // The reader of stdout went away (`caskdb scan | head`): it has what it wanted, as
        // with any Unix filter; nothing was wrong with the database.
        Err(err)
            if err.chain().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .and_then(std::io::Error::get_ref)
                    .is_some_and(|inner| inner.is::<StdoutClosed>())
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("caskdb: error: {err:#}");
            ExitCode::from(FAILURE)
        }
    }
}

/// Standard output, whose closing by its reader (a broken pipe) is told apart from other
/// broken pipes (a server's socket): see `main`.
struct Stdout<W>(W);

/// The error a write to a closed standard output carries.
#[derive(Debug)]
struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output closed")
    }
}

impl std::error::Error for StdoutClosed {}

impl<W: Write> Write for Stdout<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(closed)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(closed)
    }
}

fn closed(e: std::io::Error) -> std::io::Error {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, StdoutClosed)
    } else {
        e
    }
}

/// The data directory when no flag, variable or config file names one.
const DEFAULT_DIR: &str = "caskdb-data";

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Serve(args) = cli.command {
        return serve::run(args, cli.dir);
    }
    if let Command::Cluster {
        action:
            ClusterAction::Status {
                host,
                port,
                password,
            },
    } = &cli.command
    {
        cluster::status(
            &format!("{host}:{port}"),
            password.as_deref(),
            &mut Stdout(std::io::stdout().lock()),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        clap_complete::generate(shell, &mut Cli::command(), "caskdb", &mut std::io::stdout());
        return Ok(ExitCode::SUCCESS);
    }
    let dir = cli.dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    if let Command::Check { repair } = cli.command {
        // check works on a closed database: it takes the lock itself
        return admin::check(&dir, repair);
    }
    // One command per process: an automatic merge started here would only be cut short by the
    // close at the end. `caskdb merge` merges on request.
    // The server's limits (key, value and transaction sizes), so that import can write any key
    // a server holds.
    let db = match direct::options().auto_merge(false).open(&dir) {
        Ok(db) => db,
        Err(caskdb::Error::Locked { .. }) => anyhow::bail!(
            "{} is locked by another process, likely a running `caskdb serve`: stop it, or send \
             the command to it (`redis-cli -p PORT GET key`)",
            dir.display()
        ),
        Err(e) => {
            return Err(anyhow::Error::new(e))
                .with_context(|| format!("cannot open database {}", dir.display()));
        }
    };
    // Keys written by versions of this tool before it shared the server's keyspace.
    let (moved, kept) = caskdb_server::direct::migrate_raw_keys(&db)?;
    if moved > 0 {
        tracing::warn!(
            "moved {moved} keys of the old command-line encoding into database 0 of the server's keyspace"
        );
    }
    if kept > 0 {
        tracing::warn!(
            "{kept} keys of the old command-line encoding have the name of a key in database 0 and were left unmigrated"
        );
    }
    let n = cli.db.unwrap_or(0);
    let mut out = Stdout(std::io::stdout().lock());
    let code = match cli.command {
        Command::Set { key, value, ttl } => {
            let ttl = ttl.map(Duration::from_secs);
            direct::set(&db, n, bytes_of(&key)?, bytes_of(&value)?, ttl)?;
            ExitCode::SUCCESS
        }
        Command::Get { key } => {
            match direct::get(&db, n, bytes_of(&key)?)? {
                Some(Value::String(value)) => {
                    out.write_all(&value)?;
                    out.write_all(b"\n")?;
                }
                Some(other) => writeln!(out, "{}", describe(&other))?,
                None => writeln!(out, "Key not found")?,
            }
            ExitCode::SUCCESS
        }
        Command::Remove { key } => {
            if direct::remove(&db, n, bytes_of(&key)?)? {
                ExitCode::SUCCESS
            } else {
                writeln!(out, "Key not found")?;
                ExitCode::from(NOT_FOUND_OR_DIRTY)
            }
        }
        Command::Ttl { key } => {
            match direct::ttl(&db, n, bytes_of(&key)?)? {
                Some(Some(left)) => writeln!(out, "{}", left.as_millis().div_ceil(1000))?,
                Some(None) => writeln!(out, "no expiry")?,
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
            let (start, end) = match &prefix {
                Some(p) => {
                    let p = bytes_of(p)?.to_vec();
                    let end = prefix_end(&p);
                    (Some(p), end)
                }
                None => (
                    start
                        .as_ref()
                        .map(bytes_of)
                        .transpose()?
                        .map(<[u8]>::to_vec),
                    end.as_ref().map(bytes_of).transpose()?.map(<[u8]>::to_vec),
                ),
            };
            let iter = direct::scan(&db, n, start.as_deref(), end.as_deref(), reverse)?;
            for item in iter.take(limit.unwrap_or(usize::MAX)) {
                let (k, v) = item?;
                out.write_all(&k)?;
                out.write_all(b"\t")?;
                match v {
                    Value::String(v) => out.write_all(&v)?,
                    other => write!(out, "{}", describe(&other))?,
                }
                out.write_all(b"\n")?;
            }
            ExitCode::SUCCESS
        }
        Command::Stats => {
            let keys = direct::key_counts(&db)?;
            admin::print_stats(&mut out, &keys, &db.stats()?)?;
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
            transfer::export(&db, cli.db, &mut out)?;
            ExitCode::SUCCESS
        }
        Command::Import => {
            let n = transfer::import(&db, std::io::stdin().lock(), cli.db)?;
            writeln!(out, "imported {}", transfer::keys(n))?;
            ExitCode::SUCCESS
        }
        Command::Check { .. }
        | Command::Serve(_)
        | Command::Completions { .. }
        | Command::Cluster { .. } => {
            unreachable!("handled before opening")
        }
    };
    out.flush()?;
    // Close explicitly so that a failing final sync is reported, not just logged.
    db.close()?;
    Ok(code)
}

/// What `get` and `scan` print for a value that is not a string.
fn describe(v: &Value) -> String {
    match v {
        Value::Collection { ty, len } => format!("({ty} of {len}: read it with redis-cli)"),
        _ => "(a value of a type this version does not know)".to_string(),
    }
}

/// The first key after every key starting with `prefix` (`None`: no such key).
fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < u8::MAX {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
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
