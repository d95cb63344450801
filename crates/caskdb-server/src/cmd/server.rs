//! Server commands: CONFIG, INFO, TIME, DBSIZE, FLUSHDB, FLUSHALL, BGREWRITEAOF, SAVE, BGSAVE,
//! LASTSAVE, ROLE, SHUTDOWN
//! (COMMAND, which reads the command table, is in `table.rs`).

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
use crate::state::unix_secs;

/// The server commands (COMMAND itself is in `table.rs`).
pub(super) static COMMANDS: &[Spec] = commands! {
    group "server";
    /// A container for server configuration commands.
    "config", -2, ADMIN | CONTAINER, 0, 0, 0 => config;
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

/// The parameters the TLS port's acceptor is made from: CONFIG SET of any of them makes a new
/// one (reading the files again, even if the names did not change: how certificates are
/// renewed), used by the connections accepted after it.
const TLS_RELOADED: [&str; 5] = [
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "tls-protocols",
];

/// Makes the TLS port's acceptor again from the parameters' current values (nothing to do
/// without a TLS port). Returns why it cannot, the acceptor then unchanged.
fn reload_tls(shared: &crate::state::Shared) -> Result<(), String> {
    let Some(current) = &shared.tls else {
        return Ok(());
    };
    let settings = crate::tls::TlsSettings::from_params(|name| shared.config.knob(name));
    let acceptor = settings.acceptor()?;
    *current.write() = acceptor;
    tracing::info!("TLS configuration reloaded (CONFIG SET)");
    Ok(())
}

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
        // The TLS parameters set, with their values before, in case the new ones do not make
        // a working TLS configuration.
        let mut tls_before = Vec::new();
        for pair in args[2..].chunks(2) {
            let name = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
            if TLS_RELOADED.contains(&name.as_str()) && !tls_before.iter().any(|(n, _)| *n == name)
            {
                let old = ctx.shared.config.knob(&name).unwrap_or_default();
                tls_before.push((name, old));
            }
            if let Err(msg) = ctx.shared.config.set(&pair[0], &pair[1]) {
                return Ok(Frame::err(msg));
            }
            // `requirepass` is the default user's password, as in Redis.
            if pair[0].eq_ignore_ascii_case(b"requirepass") {
                let pass = ctx.shared.config.requirepass();
                ctx.shared.acl.set_default_password(pass.as_deref());
            }
        }
        if let Some((first, _)) = tls_before.first()
            && let Err(why) = reload_tls(ctx.shared)
        {
            tracing::warn!("CONFIG SET {first}: the TLS configuration is kept as it was: {why}");
            for (name, old) in &tls_before {
                let _ = ctx.shared.config.set(name.as_bytes(), old.as_bytes());
            }
            return Ok(Frame::err(format!(
                "CONFIG SET failed (possibly related to argument '{first}') - Unable to update TLS configuration. Check server logs."
            )));
        }
        return Ok(Frame::OK);
    }
    if is(sub, "resetstat") {
        ctx.shared.stats.reset();
        ctx.shared.command_stats.reset();
        return Ok(Frame::OK);
    }
    if is(sub, "rewrite") {
        if args.len() != 2 {
            return Ok(wrong_arity("config|rewrite"));
        }
        return Ok(match ctx.shared.config.rewrite() {
            Ok(()) => Frame::OK,
            Err(e) => {
                tracing::warn!("CONFIG REWRITE failed: {e}");
                Frame::err(e)
            }
        });
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
    // Tracking clients learn it once, as "every key" (as in Redis).
    ctx.conn.invalidated_all = true;
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
    // (In a group, every node reloads its map once it applies the write.)
    ctx.conn.db_map_changed = true;
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
    ctx.conn.invalidated_all = true;
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
    ctx.shared.stats.dirty.reset();
    ctx.shared.stats.saves.add(1);
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
    // (Writes after this point are counted again; the sync covers those before it.)
    ctx.shared.stats.dirty.reset();
    ctx.shared.stats.saves.add(1);
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

/// ROLE: a master without replicas (role, replication offset, replicas); in a replicated
/// group, the leader as `master` with its followers (their applied index as offset), and a
/// follower as `slave` of the leader.
fn role(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) -> CmdResult {
    let Some(cluster) = &ctx.shared.cluster else {
        return Ok(Frame::Array(vec![
            Frame::bulk("master"),
            Frame::Integer(0),
            Frame::Array(Vec::new()),
        ]));
    };
    let m = cluster.metrics();
    let applied = m.last_applied.map_or(0, |l| l.index) as i64;
    let split = |addr: &str| -> (String, i64) {
        match addr.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p.parse().unwrap_or(0)),
            None => (addr.to_string(), 0),
        }
    };
    match cluster.role() {
        crate::cluster::Role::Leader => {
            let followers = cluster
                .followers()
                .into_iter()
                .filter_map(|(id, matched)| {
                    let addr = cluster.client_addr(id)?;
                    let (host, port) = split(&addr);
                    Some(Frame::Array(vec![
                        Frame::Bulk(host.into()),
                        Frame::Bulk(port.to_string().into()),
                        Frame::Bulk(matched.unwrap_or(0).to_string().into()),
                    ]))
                })
                .collect();
            Ok(Frame::Array(vec![
                Frame::bulk("master"),
                Frame::Integer(applied),
                Frame::Array(followers),
            ]))
        }
        role => {
            let (host, port, state) = match role {
                crate::cluster::Role::Follower(l) => {
                    let (h, p) = split(&cluster.client_addr(l).unwrap_or_default());
                    (h, p, "connected")
                }
                _ => (String::new(), -1, "connect"),
            };
            Ok(Frame::Array(vec![
                Frame::bulk("slave"),
                Frame::Bulk(host.into()),
                Frame::Integer(port),
                Frame::bulk(state),
                Frame::Integer(applied),
            ]))
        }
    }
}

fn shutdown(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    // NOSAVE/SAVE/NOW/FORCE change nothing here: every write is already in the log.
    for a in &args[1..] {
        if !["nosave", "save", "now", "force"].iter().any(|w| is(a, w)) {
            return Err(syntax_error());
        }
    }
    if let Some((_, eval)) = ctx.shared.scripts.running_for_other(ctx.conn.id) {
        // A script runs: only SHUTDOWN NOSAVE stops the server, dropping the script's writes.
        if !args[1..].iter().any(|a| is(a, "nosave")) {
            return Ok(super::scripting::busy_error(eval));
        }
        ctx.shared.scripts.abort();
    }
    tracing::info!("SHUTDOWN requested by client {}", ctx.conn.id);
    ctx.shared.shutdown.trigger();
    ctx.conn.close_after_reply = true;
    ctx.conn.suppress_reply = true;
    Ok(Frame::OK)
}
