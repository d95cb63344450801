//! Server commands: CONFIG, INFO, TIME, DBSIZE, FLUSHDB, FLUSHALL, BGREWRITEAOF, SAVE, BGSAVE,
//! LASTSAVE, ROLE, SHUTDOWN
//! (COMMAND, which reads the command table, is in `table.rs`).

use std::fmt::Write as _;
use std::ops::Bound;
use std::sync::atomic::Ordering;

use bytes::Bytes;

use super::args::is;
use super::ctx::{Ctx, Store};
use super::keys::STEP;
use super::reply::{CmdError, CmdResult, syntax_error, unknown_subcommand, wrong_arity};
use super::spec::flags::{ADMIN, CONTAINER, FAST, NO_MULTI, NO_QUEUE, READ_TX, WRITE};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::glob;
use crate::keyspace::{self, DATABASES};
use crate::parse::parse_i64;
use crate::state::{REDIS_VERSION, unix_secs};

/// The server commands (COMMAND itself is in `table.rs`).
pub(super) static COMMANDS: &[Spec] = commands! {
    group "server";
    /// A container for server configuration commands.
    "config", -2, ADMIN | CONTAINER, 0, 0, 0 => config;
    /// Returns information and statistics about the server.
    "info", -1, 0, 0, 0, 0 => info;
    /// Returns the server time.
    "time", 1, FAST, 0, 0, 0 => time;
    /// Returns the number of keys in the database.
    "dbsize", 1, READ_TX, 0, 0, 0 => dbsize;
    /// Removes all keys from the current database.
    "flushdb", -1, WRITE, 0, 0, 0 => flushdb;
    /// Swaps two Redis databases.
    "swapdb", 3, WRITE | FAST, 0, 0, 0 => swapdb;
    /// Removes all keys from all databases.
    "flushall", -1, WRITE, 0, 0, 0 => flushall;
    /// Reclaims the members of deleted collections, then merges the data files, in the background.
    "bgrewriteaof", 1, ADMIN, 0, 0, 0 => bgrewriteaof;
    /// Synchronously saves the database(s) to disk.
    "save", 1, ADMIN | NO_QUEUE | NO_MULTI, 0, 0, 0 => save;
    /// Asynchronously saves the database(s) to disk.
    "bgsave", -1, ADMIN, 0, 0, 0 => bgsave;
    /// Returns the Unix timestamp of the last successful save to disk.
    "lastsave", 1, FAST, 0, 0, 0 => lastsave;
    /// Returns the replication role.
    "role", 1, FAST, 0, 0, 0 => role;
    /// Synchronously saves the database(s) to disk and shuts down the Redis server.
    "shutdown", -1, ADMIN | NO_QUEUE, 0, 0, 0 => shutdown;
};

fn config(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "get") {
        if args.len() < 3 {
            return Ok(wrong_arity("config|get"));
        }
        let mut pairs = Vec::new();
        for (name, value) in ctx.shared.config.all() {
            if args[2..]
                .iter()
                .any(|p| glob::matches(&p.to_ascii_lowercase(), name.as_bytes()))
            {
                pairs.push((Frame::bulk(name), Frame::bulk(value)));
            }
        }
        return Ok(Frame::Map(pairs));
    }
    if is(sub, "set") {
        if args.len() < 4 || !args.len().is_multiple_of(2) {
            return Ok(wrong_arity("config|set"));
        }
        for pair in args[2..].chunks(2) {
            if let Err(msg) = ctx.shared.config.set(&pair[0], &pair[1]) {
                return Ok(Frame::err(msg));
            }
        }
        return Ok(Frame::OK);
    }
    if is(sub, "resetstat") {
        ctx.shared.stats.reset();
        ctx.shared.command_stats.reset();
        return Ok(Frame::OK);
    }
    if is(sub, "rewrite") {
        return Ok(Frame::err(
            "CONFIG REWRITE is not supported: edit the config file",
        ));
    }
    if is(sub, "help") {
        return Ok(Frame::Array(vec![
            Frame::Simple("CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"),
            Frame::Simple("GET <pattern>"),
            Frame::Simple("SET <directive> <value>"),
            Frame::Simple("RESETSTAT"),
        ]));
    }
    Ok(unknown_subcommand(sub, "config"))
}

/// Resident memory of this process in bytes (0 if unknown).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn info(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let wanted: Vec<String> = args[1..]
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_lowercase())
        .collect();
    let default = wanted.is_empty() || wanted.iter().any(|w| w == "default");
    let all = wanted.iter().any(|w| w == "all" || w == "everything");
    // commandstats only when asked for, as in Redis.
    let want = |s: &str| all || (default && s != "commandstats") || wanted.iter().any(|w| w == s);
    let sh = ctx.shared;
    let mut out = String::new();
    if want("server") {
        let up = sh.started.elapsed().as_secs();
        let _ = write!(
            out,
            "# Server\r\nredis_version:{REDIS_VERSION}\r\ncaskdb_version:{}\r\nredis_mode:standalone\r\nos:{}\r\narch_bits:64\r\nprocess_id:{}\r\nrun_id:{}\r\ntcp_port:{}\r\nuptime_in_seconds:{up}\r\nuptime_in_days:{}\r\nexecutable:{}\r\nconfig_file:{}\r\n\r\n",
            env!("CARGO_PKG_VERSION"),
            std::env::consts::OS,
            std::process::id(),
            sh.run_id,
            sh.config.port(),
            up / 86400,
            std::env::current_exe()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            sh.config
                .config_file()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        );
    }
    if want("clients") {
        let (subscribed, blocked) = sh.clients.counts();
        let _ = write!(
            out,
            "# Clients\r\nconnected_clients:{}\r\nmaxclients:{}\r\nblocked_clients:{}\r\npubsub_clients:{}\r\n\r\n",
            sh.clients.len(),
            sh.config.maxclients(),
            blocked,
            subscribed,
        );
    }
    if want("memory") {
        let rss = rss_bytes();
        let _ = write!(
            out,
            "# Memory\r\nused_memory:{rss}\r\nused_memory_human:{:.2}M\r\nused_memory_rss:{rss}\r\nmaxmemory:0\r\nmaxmemory_policy:noeviction\r\n\r\n",
            rss as f64 / (1024.0 * 1024.0),
        );
    }
    if want("persistence") {
        let stats = sh.db.stats()?;
        let _ = write!(
            out,
            "# Persistence\r\nloading:0\r\naof_enabled:1\r\naof_rewrite_in_progress:{}\r\ncaskdb_rewrites:{}\r\ncaskdb_members_reclaimed:{}\r\nappendfsync:{}\r\nrdb_changes_since_last_save:0\r\ncaskdb_data_files:{}\r\ncaskdb_disk_bytes:{}\r\ncaskdb_live_bytes:{}\r\ncaskdb_dead_bytes:{}\r\ncaskdb_dir:{}\r\n\r\n",
            i32::from(sh.collections.rewrite_in_progress()),
            sh.collections
                .rewrites
                .load(std::sync::atomic::Ordering::Relaxed),
            sh.collections
                .reclaimed
                .load(std::sync::atomic::Ordering::Relaxed),
            sh.config.appendfsync().name(),
            stats.data_files,
            stats.total_bytes,
            stats.total_bytes.saturating_sub(stats.dead_bytes),
            stats.dead_bytes,
            sh.config.dir().display(),
        );
    }
    if want("stats") {
        let s = &sh.stats;
        let _ = write!(
            out,
            "# Stats\r\ntotal_connections_received:{}\r\ntotal_commands_processed:{}\r\nrejected_connections:{}\r\nkeyspace_hits:{}\r\nkeyspace_misses:{}\r\npubsub_channels:{}\r\npubsub_patterns:{}\r\npubsubshard_channels:{}\r\nclient_output_buffer_limit_disconnections:{}\r\ntotal_error_replies:{}\r\n\r\n",
            s.connections.get(),
            s.commands.get(),
            s.rejected.get(),
            s.hits.get(),
            s.misses.get(),
            sh.pubsub.len(crate::pubsub::Kind::Channel),
            sh.pubsub.len(crate::pubsub::Kind::Pattern),
            sh.pubsub.len(crate::pubsub::Kind::Shard),
            s.output_limit_closes.get(),
            sh.command_stats.total_errors.get(),
        );
    }
    if want("commandstats") {
        out.push_str("# Commandstats\r\n");
        for (name, [calls, usec, rejected, failed]) in sh.command_stats.all() {
            let _ = write!(
                out,
                "cmdstat_{name}:calls={calls},usec={usec},usec_per_call={:.2},rejected_calls={rejected},failed_calls={failed}\r\n",
                usec as f64 / calls.max(1) as f64
            );
        }
        out.push_str("\r\n");
    }
    if want("errorstats") {
        out.push_str("# Errorstats\r\n");
        for (code, count) in sh.command_stats.errors() {
            let _ = write!(out, "errorstat_{code}:count={count}\r\n");
        }
        out.push_str("\r\n");
    }
    if want("keyspace") {
        out.push_str("# Keyspace\r\n");
        for db in 0..DATABASES {
            let (keys, expires) = count_keys(ctx, db)?;
            if keys > 0 {
                let _ = write!(out, "db{db}:keys={keys},expires={expires},avg_ttl=0\r\n");
            }
        }
        out.push_str("\r\n");
    }
    // Redis ends the text with the last section's blank line trimmed.
    while out.ends_with("\r\n\r\n") {
        out.truncate(out.len() - 2);
    }
    Ok(Frame::Verbatim(out))
}

/// Keys in `db`, and how many of them expire. Walks the database.
fn count_keys(ctx: &mut Ctx<'_, '_>, db: u8) -> Result<(u64, u64), CmdError> {
    let (mut keys, mut expires) = (0, 0);
    let stored = ctx.stored(db);
    ctx.walk_keys(db, Bound::Unbounded, STEP, |ctx, batch| {
        keys += batch.len() as u64;
        if let Store::Read(d) = &ctx.store {
            for k in &batch {
                if d.ttl(keyspace::engine_key(stored, k))?.is_some() {
                    expires += 1;
                }
            }
        }
        Ok(true)
    })?;
    Ok((keys, expires))
}

fn time(_ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Frame::Array(vec![
        Frame::bulk(now.as_secs().to_string()),
        Frame::bulk(now.subsec_micros().to_string()),
    ]))
}

fn dbsize(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    let mut n = 0;
    ctx.walk_keys(ctx.conn.db, Bound::Unbounded, 4096, |_, batch| {
        n += batch.len() as i64;
        Ok(true)
    })?;
    Ok(Frame::Integer(n))
}

fn flush_option(args: &[Bytes]) -> Result<(), CmdError> {
    match args {
        [_] => Ok(()),
        [_, mode] if is(mode, "sync") || is(mode, "async") => Ok(()),
        _ => Err(syntax_error()),
    }
}

/// Deletes every key of `db`, inside the command's transaction.
fn flush(ctx: &mut Ctx<'_, '_>, db: u8) -> Result<(), CmdError> {
    ctx.walk_keys(db, Bound::Unbounded, STEP, |ctx, batch| {
        for k in batch {
            ctx.remove_in(db, &k)?;
        }
        Ok(true)
    })?;
    ctx.shared.watches.touch_db(Some(db));
    // Collections among the deleted keys leave members behind: sweep soon.
    ctx.shared.collections.orphaned(1);
    Ok(())
}

fn flushdb(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    flush_option(args)?;
    flush(ctx, ctx.conn.db)?;
    Ok(Frame::OK)
}

/// SWAPDB: the two databases trade contents at once (one record, the database map); clients
/// selected on either see the other's keys. Watched keys that exist in either are touched, and
/// clients blocked on a key that now holds a value are served, as Redis does.
fn swapdb(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let index = |arg: &[u8], which: &str| {
        // An int, as Redis reads it (a larger number is not an index at all).
        parse_i64(arg)
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| Frame::err(format!("invalid {which} DB index")))
    };
    let (a, b) = (index(&args[1], "first")?, index(&args[2], "second")?);
    let range = 0..i64::from(DATABASES);
    if !range.contains(&a) || !range.contains(&b) {
        return Ok(Frame::err("DB index is out of range"));
    }
    let (a, b) = (a as u8, b as u8);
    if a == b {
        return Ok(Frame::OK);
    }
    ctx.shared.dbs.swap(a as usize, b as usize);
    let map = ctx.shared.dbs.encode();
    ctx.tx()?.put(keyspace::DB_MAP_KEY, map)?;
    for db in [a, b] {
        for key in ctx.shared.watches.keys_in_db(db) {
            if ctx.exists_in(a, &key)? || ctx.exists_in(b, &key)? {
                ctx.shared.watches.touch(db, &key);
            }
        }
        for ek in ctx.shared.blocking.keys_in_db(db) {
            if ctx.exists_in(db, &ek[2..])? && !ctx.conn.ready.contains(&ek) {
                ctx.conn.ready.push(ek);
            }
        }
    }
    Ok(Frame::OK)
}

fn flushall(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    flush_option(args)?;
    for db in 0..DATABASES {
        flush(ctx, db)?;
    }
    Ok(Frame::OK)
}

fn bgrewriteaof(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    if ctx.shared.collections.request_rewrite() {
        Ok(Frame::Simple(
            "Background append only file rewriting started",
        ))
    } else {
        Ok(Frame::Simple(
            "Background append only file rewriting scheduled",
        ))
    }
}

/// SAVE: every write is already in the log, so saving is a sync of it. Refused inside MULTI,
/// which it makes fail, as in Redis.
fn save(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    if let Some(m) = &mut ctx.conn.multi {
        m.failed = true;
        return Err(Frame::err("Command not allowed inside a transaction").into());
    }
    ctx.shared.db.sync()?;
    ctx.shared.last_save.store(unix_secs(), Ordering::Relaxed);
    Ok(Frame::OK)
}

/// BGSAVE [SCHEDULE]: SAVE's sync, on a thread of its own. Inside EXEC (which holds the
/// writer lock the sync waits for) Redis answers that the save is scheduled.
fn bgsave(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    match args {
        [_] => {}
        [_, w] if is(w, "schedule") => {}
        _ => return Err(syntax_error()),
    }
    let db = ctx.shared.db.clone();
    let last_save = ctx.shared.last_save.clone();
    let spawned = std::thread::Builder::new()
        .name("caskdb-bgsave".into())
        .spawn(move || match db.sync() {
            Ok(()) => last_save.store(unix_secs(), Ordering::Relaxed),
            Err(e) => tracing::warn!("BGSAVE: sync failed: {e}"),
        });
    if let Err(e) = spawned {
        return Err(Frame::err(format!("cannot start the background save: {e}")).into());
    }
    Ok(Frame::Simple(if matches!(ctx.store, Store::Write(_)) {
        "Background saving scheduled"
    } else {
        "Background saving started"
    }))
}

fn lastsave(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    let t = ctx.shared.last_save.load(Ordering::Relaxed);
    Ok(Frame::Integer(t.min(i64::MAX as u64) as i64))
}

/// ROLE: a master without replicas (role, replication offset, replicas).
fn role(_ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    Ok(Frame::Array(vec![
        Frame::bulk("master"),
        Frame::Integer(0),
        Frame::Array(Vec::new()),
    ]))
}

fn shutdown(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    // NOSAVE/SAVE/NOW/FORCE change nothing here: every write is already in the log.
    for a in &args[1..] {
        if !["nosave", "save", "now", "force"].iter().any(|w| is(a, w)) {
            return Err(syntax_error());
        }
    }
    tracing::info!("SHUTDOWN requested by client {}", ctx.conn.id);
    ctx.shared.shutdown.trigger();
    ctx.conn.close_after_reply = true;
    ctx.conn.suppress_reply = true;
    Ok(Frame::OK)
}
