//! From a parsed request to its reply: the command lookup, the checks every command passes
//! (arity, authentication, RESP2 subscribe mode), MULTI's queue, and running the command:
//! against the store, in an engine transaction if it writes or reads several keys; or, for
//! EXEC, the queued commands in one transaction.
//!
//! Around each command's handler (`execute`):
//! - Blocking commands (BLPOP…) that find nothing return `CmdError::Block`; `park` registers
//!   the client (`blocking.rs`) inside the transaction, under the writer lock, and leaves a
//!   `Parked` in the session for the connection to wait on. Inside EXEC (and when serving) they
//!   answer as their non-blocking form.
//! - Writes note the keys blocked clients wait on (`Ctx::put_raw`); at the end of the
//!   transaction `serve_ready` runs those clients' commands in it, FIFO, and `deliver` sends
//!   their replies with the commit's sync token.
//! - The keys a command changed become keyspace events (`events.rs`), published once the
//!   transaction is committed; a failed command's events are dropped with its writes.
//! - Pub/sub commands change the session's subscriptions; the connection writes the messages.
//! - Scripts (EVAL, FCALL) will run as EXEC does: one `transaction_deferred`, each `redis.call`
//!   found with [`lookup`] and run with `execute` against the same transaction.

use bytes::Bytes;
use caskdb::SyncToken;

use super::ctx::{Ctx, Store, read_unlocked_tries};
use super::events;
use std::sync::Arc;

use super::reply::{
    BlockOn, CmdError, OOM, arity_message, engine_error, unknown_command, wrong_arity,
};
use super::scripting;
use super::spec::{Handler, Run, ScriptCall, Spec, flags};
use super::table::{lookup, lookup_numbered, table};
use crate::blocking::{Served, Waiter};
use crate::cluster::Staged;
use crate::frame::Frame;
use crate::keyspace::{Entry, Type};
use crate::session::{ConnState, Parked, Proposal};
use crate::state::Shared;

/// Until when CLIENT PAUSE holds this request back: any request under `CLIENT PAUSE ALL`;
/// under `WRITE`, those that may write (write commands, PUBLISH/SPUBLISH, scripts, PFCOUNT,
/// and EXEC of a queue holding one), as Redis 7.0 decides. Requests refused anyway (unknown,
/// wrong arity, not authenticated) are not held.
pub(crate) fn paused_until(
    shared: &Shared,
    conn: &ConnState,
    args: &[Bytes],
) -> Option<std::time::Instant> {
    // Another client's script runs: wait for it to end, or until `busy-reply-threshold`
    // (then dispatch answers BUSY, or runs the few commands allowed meanwhile), as Redis's
    // clients wait while it runs the script.
    // (Scripts wait for their turn at the scripts' gate instead, in the connection.)
    if let Some((started, _)) = shared.scripts.running_for_other(conn.id)
        && !is_script(args)
    {
        let until = started + shared.config.busy_threshold();
        if until > std::time::Instant::now() {
            return Some(until);
        }
    }
    // The common case first: no pause, no lookup.
    shared.pause.holds(true)?;
    let spec = lookup(args.first()?)?;
    if !spec.arity_ok(args.len()) || (!conn.authenticated && !spec.has(flags::NO_AUTH)) {
        return None;
    }
    let may_write = |s: &Spec| {
        s.has(flags::WRITE)
            || matches!(
                s.name,
                "publish" | "spublish" | "eval" | "evalsha" | "fcall" | "pfcount"
            )
    };
    let writes = may_write(spec)
        || (matches!(spec.run, Run::Exec)
            && conn.multi.as_ref().is_some_and(|m| {
                m.queue
                    .iter()
                    .any(|q| q.first().and_then(|n| lookup(n)).is_some_and(may_write))
            }));
    shared.pause.holds(writes)
}

/// Runs one request (`args`: the command name, then its arguments) from the connection whose
/// session is `conn`, and returns the reply. `token` is raised to cover the writes the request
/// made, so that the connection can wait for the disk under `appendfsync always`.
pub(crate) fn request(
    shared: &Shared,
    conn: &mut ConnState,
    args: Vec<Bytes>,
    token: &mut Option<SyncToken>,
) -> Frame {
    request_in(shared, conn, args, token, None)
}

/// Writes a client pipelined, run together in one engine transaction ([`request_group`]):
/// the transaction, and the blocked clients its commands served so far.
struct Group<'a, 'db> {
    tx: &'a mut caskdb::Transaction<'db>,
    served: Vec<(Arc<Waiter>, Frame)>,
}

/// The commands a connection runs together when a client pipelines them: writes of one key or
/// a few that never block, whose replies are short. (Others run alone, in order.)
const GROUPABLE: &[&str] = &[
    "set",
    "setnx",
    "setex",
    "psetex",
    "mset",
    "msetnx",
    "append",
    "setrange",
    "setbit",
    "incr",
    "decr",
    "incrby",
    "decrby",
    "incrbyfloat",
    "del",
    "unlink",
    "expire",
    "pexpire",
    "persist",
    "lpush",
    "rpush",
    "lpushx",
    "rpushx",
    "lpop",
    "rpop",
    "lset",
    "sadd",
    "srem",
    "hset",
    "hmset",
    "hsetnx",
    "hdel",
    "hincrby",
    "hincrbyfloat",
    "zadd",
    "zrem",
    "zincrby",
    "zpopmin",
    "zpopmax",
    "pfadd",
    "xadd",
    "xack",
];

/// The largest request that joins a group, and the most request bytes a group holds: a
/// group's staged writes stay far below the engine's batch limit (`max_batch_size`, 1 GiB),
/// which one transaction's writes share.
pub(crate) const GROUPABLE_BYTES: usize = 64 * 1024;
/// (See [`GROUPABLE_BYTES`].)
pub(crate) const GROUP_BYTES: usize = 4 << 20;

/// Whether `args`, the next request of a pipeline on `conn` (of at most [`GROUPABLE_BYTES`]:
/// the caller, which counts a group's bytes, checks), may join a group of writes committed
/// together ([`request_group`]). Not in a replicated group, inside MULTI, while
/// subscribed, while keyspace notifications or client tracking are on (their messages follow
/// each command's reply), or while CLIENT PAUSE holds anything. (A pause that starts while a
/// pipeline is being read does not hold back the writes read before it, which run as a group
/// once the paused request is found.)
pub(crate) fn groupable(shared: &Shared, conn: &ConnState, args: &[Bytes]) -> bool {
    if shared.cluster.is_some()
        || shared.pause.holds(true).is_some()
        || conn.multi.is_some()
        || conn.subscribed()
        || shared.tracking.active()
        || shared.config.notify_flags() != 0
    {
        return false;
    }
    lookup(&args[0]).is_some_and(|spec| {
        matches!(spec.run, Run::Store(_))
            && spec.has(flags::WRITE)
            && spec.arity_ok(args.len())
            && GROUPABLE.contains(&spec.name)
    })
}

/// Runs `requests`, writes a client pipelined ([`groupable`]), as [`request`] runs each, but in
/// one engine transaction: one lock, one log record and (under `appendfsync always`) one wait
/// for the disk for all of them. Each keeps its own reply, errors and effects (a command that
/// fails changes nothing; blocked clients are served after the command that fed them, in the
/// same transaction). Replies are only for after the transaction is committed; if it cannot
/// be, every reply is the error.
pub(crate) fn request_group(
    shared: &Shared,
    conn: &mut ConnState,
    requests: Vec<Vec<Bytes>>,
    token: &mut Option<SyncToken>,
) -> Vec<Frame> {
    let mut replies = Vec::with_capacity(requests.len());
    let mut served = Vec::new();
    let result = shared.db.transaction_deferred(|tx| {
        let mut group = Group {
            tx,
            served: Vec::new(),
        };
        for args in requests {
            // A connection to close (its ACL user deleted, a CLIENT KILL) runs nothing more,
            // as alone.
            if conn.close_after_reply || conn.info.is_killed() {
                break;
            }
            replies.push(request_in(shared, conn, args, &mut None, Some(&mut group)));
        }
        served = group.served;
        Ok::<_, caskdb::Error>(())
    });
    match result {
        Ok(((), t)) => {
            *token = (*token).max(Some(t));
            deliver(served, Ok(t));
            publish_events(shared, conn);
            replies
        }
        Err(e) => {
            let error = failed(shared, conn, served, &e);
            replies.iter().map(|_| error.clone()).collect()
        }
    }
}

/// [`request`], in a group's transaction if `group` is given.
fn request_in(
    shared: &Shared,
    conn: &mut ConnState,
    args: Vec<Bytes>,
    token: &mut Option<SyncToken>,
    group: Option<&mut Group<'_, '_>>,
) -> Frame {
    let started = std::time::Instant::now();
    conn.executed = false;
    let mut found = None;
    let mut args = args;
    let reply = run_request(shared, conn, &mut args, token, &mut found, group);
    // Read after the command, so a CONFIG SET of the threshold applies to itself (as Redis).
    let (slow_threshold, slow_max) = shared.config.slowlog();
    // INFO commandstats and errorstats, as Redis counts them: a refused command (unknown,
    // arity, NOAUTH…) is "rejected", one that ran and answered with an error "failed".
    let failed = matches!(reply, Frame::Error(_));
    if let Frame::Error(text) = &reply {
        shared.command_stats.error(text);
    }
    if let Some((i, spec)) = found {
        let all = table();
        {
            let nanos = started.elapsed().as_nanos() as u64;
            let usec = nanos / 1000;
            // (A command queued by MULTI took its arguments: it is not logged, Redis logs
            // its EXEC.)
            if let Some(t) = slow_threshold
                && usec >= t
                && conn.executed
                && !args.is_empty()
            {
                let name = conn.info.name().unwrap_or_default();
                shared
                    .slowlog
                    .push(&args, usec, conn.info.addr.to_string(), name, slow_max);
            }
            let rejected = failed && !conn.executed;
            shared.command_stats.record(
                all.len(),
                i,
                spec.name,
                nanos,
                rejected,
                failed && conn.executed,
            );
        }
    }
    // CLIENT CACHING lasts one command (or a MULTI's), as in Redis.
    if conn.caching && conn.multi.is_none() && found.is_none_or(|(_, s)| s.name != "client") {
        conn.caching = false;
    }
    // CLIENT LIST's `multi=`: the commands queued, or -1.
    let queued = conn.multi.as_ref().map_or(-1, |m| m.queue.len() as i64);
    conn.info
        .multi
        .store(queued, std::sync::atomic::Ordering::Relaxed);
    reply
}

fn run_request(
    shared: &Shared,
    conn: &mut ConnState,
    args: &mut Vec<Bytes>,
    token: &mut Option<SyncToken>,
    found: &mut Option<(usize, &'static Spec)>,
    group: Option<&mut Group<'_, '_>>,
) -> Frame {
    shared.stats.commands.add(1);
    let Some((i, spec)) = lookup_numbered(&args[0]) else {
        flag_multi_failed(conn);
        return unknown_command(args);
    };
    *found = Some((i, spec));
    conn.info.record(
        spec.name,
        args.get(1)
            .filter(|_| spec.has(flags::CONTAINER))
            .map(|b| &b[..]),
    );
    if !spec.arity_ok(args.len()) {
        if let Run::Exec = spec.run {
            // Redis discards the transaction (if any) and says why.
            return exec_abort(shared, conn, &arity_message(spec.name));
        }
        flag_multi_failed(conn);
        return wrong_arity(spec.name);
    }
    if !conn.authenticated && !spec.has(flags::NO_AUTH) {
        flag_multi_failed(conn);
        return Frame::Error("NOAUTH Authentication required.".into());
    }
    if let Some(text) = acl_refusal(shared, conn, spec, args) {
        if let Run::Exec = spec.run {
            return exec_abort(shared, conn, &text);
        }
        flag_multi_failed(conn);
        return Frame::Error(text);
    }
    // maxmemory (noeviction): commands that may grow the data are refused while over it;
    // EXEC of a queue holding one is aborted, as Redis does.
    if shared.over_maxmemory() {
        if let Run::Exec = spec.run {
            if queued_any(conn, denies_oom) {
                return exec_abort(shared, conn, OOM);
            }
        } else if denies_oom(spec, args)
            // Queuing takes memory too: inside MULTI every command is refused but those that
            // end it.
            || (conn.multi.is_some() && !matches!(spec.name, "discard" | "quit" | "reset"))
        {
            flag_multi_failed(conn);
            return Frame::Error(OOM.into());
        }
    }
    // A write failed on the disk (MISCONF, `disk.rs`): write commands and PING are refused,
    // as Redis refuses them after a failed AOF write; EXEC of a queue holding a write is
    // aborted.
    if let Some(refusal) = shared.disk.refusal() {
        if let Run::Exec = spec.run {
            if queued_any(conn, is_write)
                && let Frame::Error(text) = refusal
            {
                return exec_abort(shared, conn, &text);
            }
        } else if is_write(spec, args) || spec.name == "ping" {
            flag_multi_failed(conn);
            return refusal;
        }
    }
    // (A request that arrives while the script is young waits in the connection,
    // `paused_until`; one that slipped past that runs, as the script's lock allows.)
    if let Some((started, eval)) = shared.scripts.running_for_other(conn.id)
        && started.elapsed() >= shared.config.busy_threshold()
        && !allowed_while_busy(spec, args)
    {
        flag_multi_failed(conn);
        return scripting::busy_error(eval);
    }
    if !conn.resp3 && !spec.has(flags::SUBSCRIBED_OK) && conn.subscribed() {
        flag_multi_failed(conn);
        return Frame::err(format!(
            "Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
            spec.name
        ));
    }
    if shared.cluster.is_some() && unsupported_in_group(spec, args) {
        flag_multi_failed(conn);
        return Frame::err(format!(
            "{} is not supported in a replicated group yet",
            String::from_utf8_lossy(&args[0]).to_uppercase()
        ));
    }
    if let Some(m) = &mut conn.multi
        && !spec.has(flags::NO_QUEUE)
    {
        m.queue.push(std::mem::take(args));
        return Frame::Simple("QUEUED");
    }
    conn.executed = true;
    match (spec.run, group) {
        (Run::Store(handler), Some(group)) => run_grouped(shared, conn, spec, handler, args, group),
        (Run::Store(handler), None) => run_one(shared, conn, spec, handler, args, token),
        (Run::Exec, None) => exec(shared, conn, token),
        (Run::Script(call), None) => run_script(shared, conn, args, call, token),
        // (`groupable` admits neither: their transaction would wait for the group's lock.)
        (Run::Exec | Run::Script(_), Some(_)) => {
            Frame::err("internal error: EXEC or a script in a group of writes")
        }
    }
}

/// Runs one command of a group of pipelined writes in the group's transaction, then serves
/// the clients blocked on the keys it made ready, as [`run_one`] does alone.
fn run_grouped(
    shared: &Shared,
    conn: &mut ConnState,
    spec: &Spec,
    handler: Handler,
    args: &[Bytes],
    group: &mut Group<'_, '_>,
) -> Frame {
    let frame = execute(
        shared,
        conn,
        Store::Write(&mut *group.tx),
        spec,
        handler,
        args,
        false,
    );
    serve_ready(shared, group.tx, conn, &mut group.served);
    if !matches!(frame, Frame::Error(_)) {
        shared.stats.dirty.add(1);
    }
    frame
}

/// The NOPERM error if the connection's ACL user may not run `args` (`acl.rs`), logged.
fn acl_refusal(
    shared: &Shared,
    conn: &mut ConnState,
    spec: &Spec,
    args: &[Bytes],
) -> Option<String> {
    // A change to the users since this connection last looked: take its user's new rules.
    let generation = shared.acl.generation();
    if generation != conn.acl_generation {
        conn.acl_generation = generation;
        match shared.acl.get(&conn.user.name) {
            Some(user) => conn.user = user,
            // Deleted (DELUSER, ACL LOAD) while this request came: as Redis, the user's
            // connections close.
            None => {
                conn.close_after_reply = true;
                return Some("NOPERM this user no longer exists".into());
            }
        }
    }
    let context = if conn.multi.is_some() {
        "multi"
    } else {
        "toplevel"
    };
    let (denied, name) = acl_denial(shared, conn, spec, args, context)?;
    Some(denied.reply(name))
}

/// Whether the connection's user is refused `args` (and the command's full name), logged in
/// the ACL LOG with `context`.
fn acl_denial(
    shared: &Shared,
    conn: &ConnState,
    spec: &Spec,
    args: &[Bytes],
    context: &'static str,
) -> Option<(crate::acl::Denied, &'static str)> {
    if conn.user.unrestricted() {
        return None;
    }
    let info = super::keyspec::full_info(args);
    // A container's unknown subcommand is answered as such, as Redis's lookup fails first.
    if info.is_none() && spec.has(flags::CONTAINER) {
        return None;
    }
    let name = info.map_or(spec.name, |i| i.name);
    let denied = conn
        .user
        .check(name, spec.has(flags::NO_AUTH), args, || {
            info.map_or_else(Vec::new, |i| super::keyspec::keys_of(i, args))
        })
        .err()?;
    shared.acl.log(crate::acl::denial_entry(
        denied,
        name,
        args,
        context,
        conn.user.name.clone(),
        conn.info.describe(),
    ));
    Some((denied, name))
}

/// The error for queued command `args` if the connection's user may no longer run it (at
/// EXEC), logged.
fn queued_acl_refusal(shared: &Shared, conn: &ConnState, args: &[Bytes]) -> Option<Frame> {
    let spec = lookup(&args[0])?;
    let (denied, _) = acl_denial(shared, conn, spec, args, "multi")?;
    let reason = match denied {
        crate::acl::Denied::Command => "no permission to execute the command or subcommand",
        crate::acl::Denied::Key(_) => "no permission to touch the specified keys",
        crate::acl::Denied::Channel(_) => {
            "no permission to access one of the channels used as arguments"
        }
    };
    Some(Frame::Error(format!(
        "NOPERM ACLs rules changed between the moment the transaction was accumulated and the EXEC call. This command is no longer allowed for the following reason: {reason}"
    )))
}

/// What a replicated group's node needs to know of a request to route it
/// (`connection/route.rs`).
pub(crate) struct Class {
    /// The connection's own business, or this node's: answered here, never forwarded.
    pub local: bool,
    /// May write (a write command, EXEC, a script): through the leader's gate and Raft.
    pub writes: bool,
    /// Reads the data.
    pub reads: bool,
    /// Runs at once inside MULTI (MULTI, EXEC, DISCARD, WATCH…).
    pub no_queue: bool,
    /// May block (its forwarding waits as long as it takes).
    pub blocking: bool,
}

/// The commands a node of a group answers itself: the connection's state, this node's own
/// state and administration, pub/sub (per node, as in Redis Cluster).
const LOCAL_IN_GROUP: &[&str] = &[
    "ping",
    "echo",
    "quit",
    "reset",
    "hello",
    "auth",
    "select",
    "readonly",
    "readwrite",
    "client",
    "role",
    "info",
    "command",
    "config",
    "debug",
    "shutdown",
    "monitor",
    "subscribe",
    "unsubscribe",
    "psubscribe",
    "punsubscribe",
    "ssubscribe",
    "sunsubscribe",
    "publish",
    "spublish",
    "pubsub",
    "time",
    "lastsave",
    "save",
    "bgsave",
    "bgrewriteaof",
    "slowlog",
    "latency",
    "memory",
    "wait",
    "lolwut",
    // ACL users are per node (and refused in a group: requirepass serves there).
    "acl",
];

/// How a group's node routes `args`; `None` for an unknown command (answered here).
pub(crate) fn classify(args: &[Bytes]) -> Option<Class> {
    let spec = lookup(args.first()?)?;
    Some(Class {
        // (Refused in a group: answered here.)
        local: LOCAL_IN_GROUP.contains(&spec.name)
            || local_subcommand(spec, args)
            || unsupported_in_group(spec, args),
        writes: is_write(spec, args) || matches!(spec.run, Run::Exec | Run::Script(_)),
        reads: spec.has(flags::READONLY),
        no_queue: spec.has(flags::NO_QUEUE),
        blocking: matches!(
            spec.name,
            "blpop"
                | "brpop"
                | "brpoplpush"
                | "blmove"
                | "blmpop"
                | "bzpopmin"
                | "bzpopmax"
                | "bzmpop"
                | "xread"
                | "xreadgroup"
        ),
    })
}

/// Whether a node of a group answers `args` itself although its command is not always local:
/// FUNCTION LIST, STATS and DUMP describe this node's own libraries.
fn local_subcommand(spec: &Spec, args: &[Bytes]) -> bool {
    spec.name == "function"
        && args.get(1).is_some_and(|s| {
            ["list", "stats", "dump", "help"]
                .iter()
                .any(|w| s.eq_ignore_ascii_case(w.as_bytes()))
        })
}

/// The commands whose writes bypass the engine transactions a group replicates: DEBUG's.
fn unsupported_in_group(spec: &Spec, _args: &[Bytes]) -> bool {
    spec.name == "debug"
}

/// Whether a request runs a script (EVAL, EVALSHA, their `_RO` forms, EXEC of a queue holding
/// one): it may run long, so the connection lets its thread block.
pub(crate) fn is_script(args: &[Bytes]) -> bool {
    args.first()
        .and_then(|n| lookup(n))
        .is_some_and(|s| matches!(s.run, Run::Script(_) | Run::Exec))
}

/// Whether Redis flags the command (or subcommand) `denyoom`: it may grow the data.
pub(crate) fn denies_oom(spec: &Spec, args: &[Bytes]) -> bool {
    command_flag(spec, args, "denyoom")
}

/// Whether a command queued since MULTI (one whose name is known) satisfies `pred`.
fn queued_any(conn: &ConnState, pred: impl Fn(&Spec, &[Bytes]) -> bool) -> bool {
    conn.multi.as_ref().is_some_and(|m| {
        m.queue.iter().any(|q| {
            q.first()
                .and_then(|n| lookup(n))
                .is_some_and(|s| pred(s, q))
        })
    })
}

/// EXEC refused for `why`: the transaction is discarded, as Redis's EXECABORT says.
fn exec_abort(shared: &Shared, conn: &mut ConnState, why: &str) -> Frame {
    conn.multi = None;
    conn.watch.clear(&shared.watches);
    Frame::Error(format!("EXECABORT Transaction discarded because of: {why}"))
}

/// Whether the command (its subcommand, for a container: FUNCTION LOAD, XGROUP CREATE…) is a
/// write.
fn is_write(spec: &Spec, args: &[Bytes]) -> bool {
    spec.has(flags::WRITE) || command_flag(spec, args, "write")
}

/// Whether Redis's command table gives the command (its subcommand, for a container) `flag`.
fn command_flag(spec: &Spec, args: &[Bytes], flag: &str) -> bool {
    let name = match args.get(1).filter(|_| spec.has(flags::CONTAINER)) {
        Some(sub) => format!(
            "{}|{}",
            spec.name,
            String::from_utf8_lossy(sub).to_ascii_lowercase()
        ),
        None => spec.name.to_string(),
    };
    crate::command_info::get(&name).is_some_and(|i| i.flags.contains(&flag))
}

/// Whether a command may run while another client's script is past `busy-reply-threshold`:
/// those Redis flags `allow_busy` (SCRIPT KILL, FUNCTION KILL, SHUTDOWN, AUTH, HELLO…).
fn allowed_while_busy(spec: &Spec, args: &[Bytes]) -> bool {
    command_flag(spec, args, "allow_busy")
}

/// Why a script's transaction is not committed.
enum ScriptTxError {
    Engine(caskdb::Error),
    /// A shutdown stopped the script: its writes are dropped.
    Aborted,
}

impl From<caskdb::Error> for ScriptTxError {
    fn from(e: caskdb::Error) -> Self {
        ScriptTxError::Engine(e)
    }
}

/// EVAL and its kin: the script, in one engine transaction of its own (its writes land as one
/// record, and no other write comes between its commands).
fn run_script(
    shared: &Shared,
    conn: &mut ConnState,
    args: &[Bytes],
    call: ScriptCall,
    token: &mut Option<SyncToken>,
) -> Frame {
    let prepared = match scripting::prepare(shared, args, call) {
        Ok(p) => p,
        Err(e) => return e,
    };
    let mut served = Vec::new();
    let result = commit(shared, conn.write_routed, |tx| {
        let reply = script_in_tx(shared, conn, tx, &prepared, args)?;
        serve_ready(shared, tx, conn, &mut served);
        Ok::<_, ScriptTxError>(reply)
    });
    match result {
        Ok((frame, Landed::Proposed(seq, effects))) => {
            conn.proposal = Some(Proposal {
                seq,
                effects,
                served,
            });
            frame
        }
        Ok((frame, Landed::Now(t))) => {
            *token = (*token).max(Some(t));
            if !prepared.read_only {
                shared.stats.dirty.add(1);
            }
            deliver(served, Ok(t));
            publish_events(shared, conn);
            frame
        }
        Err(ScriptTxError::Engine(e)) => failed(shared, conn, served, &e),
        Err(ScriptTxError::Aborted) => {
            drop_events(shared, conn);
            conn.ready.clear();
            Frame::err("Script aborted: the server is shutting down")
        }
    }
}

/// Runs a prepared script in transaction `tx` (EVAL's own, or EXEC's): its commands go through
/// the table as a client of their own (database and protocol of the script's), checked as
/// Redis checks a script's calls.
fn script_in_tx(
    shared: &Shared,
    conn: &mut ConnState,
    tx: &mut caskdb::Transaction<'_>,
    prepared: &scripting::Prepared,
    command: &[Bytes],
) -> Result<Frame, ScriptTxError> {
    // (Its calls are checked against the caller's ACL user.)
    let mut sconn = ConnState::new(conn.info.clone(), true, conn.user.clone());
    sconn.in_script = true;
    sconn.db = conn.db;
    // Its reads are the caller's, for CLIENT TRACKING.
    sconn.caching = conn.caching;
    let mut dirty = false;
    let mut run_command = |argv: Vec<Bytes>, resp3: bool| -> Result<Frame, String> {
        let Some(spec) = lookup(&argv[0]) else {
            return Err("Unknown Redis command called from script".into());
        };
        if !spec.arity_ok(argv.len()) {
            return Err("Wrong number of args calling Redis command from script".into());
        }
        let info = match argv.get(1).filter(|_| spec.has(flags::CONTAINER)) {
            Some(sub) => crate::command_info::get(&format!(
                "{}|{}",
                spec.name,
                String::from_utf8_lossy(sub).to_ascii_lowercase()
            ))
            .or_else(|| crate::command_info::get(spec.name)),
            None => crate::command_info::get(spec.name),
        };
        let flagged = |f: &str| info.is_some_and(|i| i.flags.contains(&f));
        let Run::Store(handler) = spec.run else {
            return Err("This Redis command is not allowed from script".into());
        };
        if flagged("noscript") {
            return Err("This Redis command is not allowed from script".into());
        }
        // The caller's ACL user must be allowed the call (as Redis's scriptVerifyACL).
        if let Some((denied, _)) = acl_denial(shared, &sconn, spec, &argv, "lua") {
            return Err(denied.script_reply());
        }
        let writes = spec.has(flags::WRITE) || flagged("write");
        if writes && prepared.read_only {
            return Err("Write commands are not allowed from read-only scripts.".into());
        }

        // Over maxmemory when the script started, and nothing written yet: as Redis.
        if prepared.oom_at_start && !dirty && flagged("denyoom") {
            return Ok(Frame::Error(OOM.into()));
        }
        // (Not once the script wrote: as Redis, it finishes rather than commit half.)
        if writes
            && !dirty
            && let Some(refusal) = shared.disk.refusal()
        {
            return Ok(refusal);
        }
        sconn.resp3 = resp3;
        let frame = execute(
            shared,
            &mut sconn,
            Store::Write(&mut *tx),
            spec,
            handler,
            &argv,
            false,
        );
        if writes && !dirty && !matches!(frame, Frame::Error(_)) {
            shared.scripts.note_write();
            dirty = true;
        }
        Ok(frame)
    };
    let ran = match &prepared.target {
        scripting::Target::Eval(sha) => shared.scripts.run_eval(
            sha,
            &prepared.keys,
            &prepared.args,
            conn.id,
            command,
            &mut run_command,
        ),
        scripting::Target::Function(name) => shared.scripts.run_function(
            name,
            &prepared.keys,
            &prepared.args,
            conn.id,
            command,
            &mut run_command,
        ),
    };
    conn.events.append(&mut sconn.events);
    conn.invalidated.append(&mut sconn.invalidated);
    conn.invalidated_all |= sconn.invalidated_all;
    for k in sconn.ready.drain(..) {
        if !conn.ready.contains(&k) {
            conn.ready.push(k);
        }
    }
    if ran.aborted {
        return Err(ScriptTxError::Aborted);
    }
    Ok(ran.reply)
}

/// A command refused while queuing makes EXEC abort, as in Redis.
fn flag_multi_failed(conn: &mut ConnState) {
    if let Some(m) = &mut conn.multi {
        m.failed = true;
    }
}

/// Runs one command outside MULTI: lock-free if it only reads one key, else in an engine
/// transaction of its own.
fn run_one(
    shared: &Shared,
    conn: &mut ConnState,
    spec: &Spec,
    handler: Handler,
    args: &[Bytes],
    token: &mut Option<SyncToken>,
) -> Frame {
    // (In a group, FUNCTION's writes go through the transaction like any write: it is what
    // the group replicates. Alone, they write in a transaction of their own, so that KILL and
    // STATS need none.)
    let replicated_function_write =
        shared.cluster.is_some() && spec.name == "function" && is_write(spec, args);
    if !spec.needs_tx() && !replicated_function_write {
        return execute(
            shared,
            conn,
            Store::Read(&shared.db),
            spec,
            handler,
            args,
            false,
        );
    }
    // (Not XREAD: one that blocks must register under the lock, or an XADD could slip in
    // between its read and its registration.)
    if shared.cluster.is_none() && !spec.has(flags::WRITE) && spec.name != "xread" {
        // A read of several records (a collection's members…): first without the writer
        // lock, kept if no write landed while it ran; twice, then in a transaction.
        let ran = read_unlocked_tries(&shared.db, |tx| {
            // (SWAPDB changes which stored database a number means outside the index: the
            // read is kept only if the map did not change either.)
            let map = shared.dbs.generation();
            let frame = execute(shared, conn, Store::Write(tx), spec, handler, args, true);
            (shared.dbs.generation() == map).then_some(frame)
        });
        if let Some(frame) = ran {
            return frame;
        }
    }
    let mut served = Vec::new();
    let result = commit(shared, conn.write_routed, |tx| {
        let frame = execute(
            shared,
            conn,
            Store::Write(&mut *tx),
            spec,
            handler,
            args,
            true,
        );
        serve_ready(shared, tx, conn, &mut served);
        Ok::<_, caskdb::Error>(frame)
    });
    match result {
        Ok((frame, Landed::Proposed(seq, effects))) => {
            shared.stats.dirty.add(1);
            conn.proposal = Some(Proposal {
                seq,
                effects,
                served,
            });
            frame
        }
        Ok((frame, Landed::Now(t))) => {
            if spec.has(flags::WRITE) {
                *token = (*token).max(Some(t));
                if !matches!(frame, Frame::Error(_)) {
                    shared.stats.dirty.add(1);
                }
            }
            deliver(served, Ok(t));
            publish_events(shared, conn);
            frame
        }
        Err(e) => failed(shared, conn, served, &e),
    }
}

/// Where a command's writes went.
enum Landed {
    /// Committed to the store (the token covers them).
    Now(SyncToken),
    /// Staged for the group: the connection proposes them (proposal `seq`) before replying;
    /// with no writes, it waits for proposals up to `seq`, whose writes it read.
    Proposed(u64, caskdb_raft::Effects),
}

/// Commits a command's engine transaction; in a replicated group, stages it instead: its
/// writes become the connection's proposal, made by every node once the group agrees. A
/// leader's write (`routed`) is staged over the writes in flight; anything else reads the
/// applied state only.
fn commit<T, E: From<caskdb::Error>>(
    shared: &Shared,
    routed: bool,
    f: impl FnOnce(&mut caskdb::Transaction<'_>) -> Result<T, E>,
) -> Result<(T, Landed), E> {
    let Some(cluster) = &shared.cluster else {
        return shared
            .db
            .transaction_deferred(f)
            .map(|(out, t)| (out, Landed::Now(t)));
    };
    if routed {
        let (out, staged) = cluster.stage(&shared.db, f)?;
        let landed = match staged {
            Staged::Nothing => Landed::Now(SyncToken::default()),
            Staged::After(seq) => Landed::Proposed(seq, caskdb_raft::Effects::default()),
            Staged::Proposal(seq, effects) => Landed::Proposed(seq, effects),
        };
        return Ok((out, landed));
    }
    let (out, staged) = shared.db.stage(f)?;
    if staged.is_empty() {
        return Ok((out, Landed::Now(SyncToken::default())));
    }
    // (Refused by the connection: a write must go through `route.rs`.)
    Ok((
        out,
        Landed::Proposed(0, caskdb_raft::Effects::from_staged(staged)),
    ))
}

/// A proposal's end: on success the served clients get their replies and the request's
/// events and invalidations go out; otherwise the served clients get `error` (their pops may
/// not have happened) and the events are dropped.
pub(crate) fn proposal_done(
    shared: &Shared,
    conn: &mut ConnState,
    served: Vec<(Arc<Waiter>, Frame)>,
    error: Option<&str>,
) {
    match error {
        None => {
            deliver(served, Ok(SyncToken::default()));
            // Its keyspace events went in the entry: every node, this one too, published
            // them as it applied it (`relay::applied`), and reloaded what it changed.
            conn.events.clear();
            publish_events(shared, conn);
        }
        Some(text) => {
            for (w, _) in served {
                w.send(Served {
                    frame: Frame::Error(text.to_string()),
                    token: None,
                });
            }
            drop_events(shared, conn);
        }
    }
}

/// Publishes the request's keyspace events, now that its writes are committed.
/// And the invalidations for the clients tracking the keys it changed.
fn publish_events(shared: &Shared, conn: &mut ConnState) {
    conn.libraries_changed = false;
    conn.db_map_changed = false;
    if !conn.events.is_empty() {
        let flags = shared.config.notify_flags();
        let limit = shared.config.pubsub_limit();
        shared.pubsub.publish_events(flags, &conn.events, limit);
        conn.events.clear();
    }
    if std::mem::take(&mut conn.invalidated_all) {
        conn.invalidated.clear();
        shared.all_keys_changed();
    }
    if !conn.invalidated.is_empty() {
        shared.keys_changed(&conn.invalidated, Some(conn.id));
        conn.invalidated.clear();
    }
}

/// Drops the request's keyspace events and invalidations: its transaction failed. What it
/// changed in memory before (the libraries, the database map) goes back to the store's.
fn drop_events(shared: &Shared, conn: &mut ConnState) {
    conn.events.clear();
    conn.invalidated.clear();
    conn.invalidated_all = false;
    shared.reload(
        std::mem::take(&mut conn.libraries_changed),
        std::mem::take(&mut conn.db_map_changed),
    );
}

/// A tracking client (CLIENT TRACKING, default mode) is about to read the keys of `args`:
/// it will be told when they change. Noted before the read, so that a change committed after
/// it is always reported.
fn track_reads(shared: &Shared, conn: &ConnState, args: &[Bytes]) {
    let Some(mode) = shared.tracking.mode(conn.id) else {
        return;
    };
    if mode.bcast || (mode.optin && !conn.caching) || (mode.optout && conn.caching) {
        return;
    }
    let keys = super::keyspec::request_keys(args);
    if !keys.is_empty() {
        shared.keys_read(conn.id, keys);
    }
}

/// Serves the clients blocked on the keys this transaction's writes made ready, in the order
/// they blocked, each with its command run in this transaction (so the pop is in the same
/// atomic record as the write that fed it); their replies go to `served`, to be sent once the
/// transaction is committed. A served command's own writes (BLMOVE's push) may make more keys
/// ready: those are served too.
fn serve_ready(
    shared: &Shared,
    tx: &mut caskdb::Transaction<'_>,
    conn: &mut ConnState,
    served: &mut Vec<(Arc<Waiter>, Frame)>,
) {
    let mut i = 0;
    while i < conn.ready.len() {
        let ek = conn.ready[i].clone();
        i += 1;
        // The first client waiting for what the key now holds (a list, a sorted set); clients
        // waiting for the other type stay where they are.
        // (`ready` holds keys as the registry does, by logical database.)
        let stored = shared.dbs.to_physical(&ek);
        if key_type(tx, &stored) == Some(Type::Stream) {
            serve_stream_readers(shared, tx, conn, &ek, served);
            continue;
        }
        while let Some(w) = key_type(tx, &stored).and_then(|ty| shared.blocking.first_of(&ek, ty)) {
            if !shared.blocking.remove(&w) {
                continue; // timed out meanwhile: the next one
            }
            let (frame, mut wconn) = run_for_waiter(shared, tx, &w, &ek);
            conn.events.append(&mut wconn.events);
            conn.invalidated.append(&mut wconn.invalidated);
            // Keys the served command filled (BLMOVE's destination) join the queue, also one
            // served earlier in this loop.
            for k in wconn.ready.drain(..) {
                if !conn.ready[i..].contains(&k) {
                    conn.ready.push(k);
                }
            }
            served.push((w, frame));
        }
    }
    conn.ready.clear();
}

/// Serves the clients blocked reading stream `ek` (XREAD, XREADGROUP), in arrival order: each
/// whose read now finds entries gets them; the others keep waiting, as in Redis.
fn serve_stream_readers(
    shared: &Shared,
    tx: &mut caskdb::Transaction<'_>,
    conn: &mut ConnState,
    ek: &[u8],
    served: &mut Vec<(Arc<Waiter>, Frame)>,
) {
    for w in shared.blocking.all_of(ek, Type::Stream) {
        let sp = tx.savepoint();
        let (frame, mut wconn) = run_for_waiter(shared, tx, &w, ek);
        if frame == Frame::NullArray || !shared.blocking.remove(&w) {
            // Nothing for it yet (or it timed out meanwhile): as if it had not run.
            tx.rollback_to(sp);
            continue;
        }
        conn.events.append(&mut wconn.events);
        conn.invalidated.append(&mut wconn.invalidated);
        served.push((w, frame));
    }
}

/// Runs blocked client `w`'s command again, served from key `ek` only (as Redis serves it,
/// whatever its other keys hold), in `tx`: its reply, and the state it ran in (its events,
/// the keys it filled).
fn run_for_waiter(
    shared: &Shared,
    tx: &mut caskdb::Transaction<'_>,
    w: &Waiter,
    ek: &[u8],
) -> (Frame, ConnState) {
    let mut wconn = ConnState::new(w.info.clone(), true, crate::acl::unrestricted());
    wconn.db = w.db;
    wconn.resp3 = w.resp3;
    wconn.serving_blocked = true;
    let args = single_key_args(&w.args, &ek[2..]);
    let frame = match lookup(&args[0]) {
        Some(
            spec @ Spec {
                run: Run::Store(h), ..
            },
        ) => execute(shared, &mut wconn, Store::Write(tx), spec, *h, &args, false),
        _ => unknown_command(&args),
    };
    (frame, wconn)
}

/// The type of the value under engine key `ek`, if any (a list or sorted set that exists is not
/// empty).
fn key_type(tx: &caskdb::Transaction<'_>, ek: &[u8]) -> Option<Type> {
    match tx.get_with_expiry(ek) {
        Ok(Some((v, exp))) => Entry::decode(v, exp).map(|e| e.ty),
        _ => None,
    }
}

/// A blocked command rewritten to pop from `key` only: `BLPOP a b c 0` served by `b` runs as
/// `BLPOP b 0`, `BLMPOP 0 2 a b LEFT` as `BLMPOP 0 1 b LEFT`. BLMOVE and BRPOPLPUSH have one
/// source already.
fn single_key_args(args: &[Bytes], key: &[u8]) -> Vec<Bytes> {
    let key = Bytes::copy_from_slice(key);
    let name = args[0].to_ascii_lowercase();
    match name.as_slice() {
        b"blpop" | b"brpop" | b"bzpopmin" | b"bzpopmax" => {
            vec![args[0].clone(), key, args[args.len() - 1].clone()]
        }
        // XREAD and XREADGROUP as blocked (the arguments their handlers wrote):
        // `XREAD COUNT n STREAMS key… id…`, `XREADGROUP GROUP g c COUNT n [NOACK] STREAMS …`.
        b"xread" | b"xreadgroup" => {
            let at = match name.as_slice() {
                b"xread" => 3,
                _ if args
                    .get(6)
                    .is_some_and(|a| a.eq_ignore_ascii_case(b"noack")) =>
                {
                    7
                }
                _ => 6,
            };
            let Some(keys) = args.get(at + 1..) else {
                return args.to_vec();
            };
            let n = keys.len() / 2;
            let Some(i) = keys[..n].iter().position(|k| k[..] == key[..]) else {
                return args.to_vec();
            };
            let mut out = args[..=at].to_vec();
            out.push(key);
            out.push(keys[n + i].clone());
            out
        }
        b"blmpop" | b"bzmpop" => {
            let numkeys = crate::parse::parse_i64(&args[2])
                .and_then(|n| usize::try_from(n).ok())
                .unwrap_or(0);
            let mut out = vec![
                args[0].clone(),
                args[1].clone(),
                Bytes::from_static(b"1"),
                key,
            ];
            out.extend(args.iter().skip(3 + numkeys).cloned());
            out
        }
        _ => args.to_vec(),
    }
}

/// A command's transaction failed with `e`: the clients it served get the error (their pops
/// did not happen), its events are dropped, and it replies the error — MISCONF if the disk
/// failed (writes are refused from then on, `disk.rs`).
fn failed(
    shared: &Shared,
    conn: &mut ConnState,
    served: Vec<(Arc<Waiter>, Frame)>,
    e: &caskdb::Error,
) -> Frame {
    deliver(served, Err(e));
    drop_events(shared, conn);
    shared.disk.note(e).unwrap_or_else(|| engine_error(e))
}

/// Sends the served clients their replies, with the commit's sync token; if the transaction
/// failed, the error instead (their pops did not happen).
fn deliver(served: Vec<(Arc<Waiter>, Frame)>, result: Result<SyncToken, &caskdb::Error>) {
    for (w, frame) in served {
        w.send(match result {
            Ok(t) => Served {
                frame,
                token: Some(t),
            },
            Err(e) => Served {
                frame: engine_error(e),
                token: None,
            },
        });
    }
}

/// Registers the connection as blocked on `on`'s keys (called inside the command's
/// transaction, so no write comes between its look and this).
fn park(shared: &Shared, conn: &mut ConnState, args: &[Bytes], on: BlockOn) {
    let (waiter, rx) = Waiter::new(
        conn.info.clone(),
        conn.db,
        conn.resp3,
        on.args.unwrap_or_else(|| args.to_vec()),
        on.keys,
        on.ty,
        on.timeout_reply,
    );
    shared.blocking.add(&waiter);
    conn.parked = Some(Parked {
        waiter,
        rx,
        deadline: on.timeout.map(|d| std::time::Instant::now() + d),
    });
}

/// EXEC's reply when no MULTI is open.
fn exec_without_multi() -> Frame {
    Frame::err("EXEC without MULTI")
}

/// EXEC: runs the queued commands inside one engine transaction, so no other write interleaves
/// and their writes land on disk as one atomic record; runs none if a watched key changed.
fn exec(shared: &Shared, conn: &mut ConnState, token: &mut Option<SyncToken>) -> Frame {
    let Some(multi) = conn.multi.take() else {
        return exec_without_multi();
    };
    if multi.failed {
        conn.watch.clear(&shared.watches);
        return Frame::Error("EXECABORT Transaction discarded because of previous errors.".into());
    }
    let mut served = Vec::new();
    let result = commit(shared, conn.write_routed, |tx| {
        // Checked under the writer lock: no write can come between this and ours.
        if conn.watch.is_dirty() {
            return Ok::<_, caskdb::Error>(None);
        }
        let mut replies = Vec::with_capacity(multi.queue.len());
        for args in &multi.queue {
            // The rules may have changed since it was queued (or an AUTH queued before it
            // changed the user): checked again, as Redis does.
            if let Some(refusal) = queued_acl_refusal(shared, conn, args) {
                replies.push(refusal);
                continue;
            }
            let reply = match lookup(&args[0]) {
                Some(
                    spec @ Spec {
                        run: Run::Store(handler),
                        ..
                    },
                ) => execute(
                    shared,
                    conn,
                    Store::Write(&mut *tx),
                    spec,
                    *handler,
                    args,
                    false,
                ),
                Some(Spec {
                    run: Run::Script(call),
                    ..
                }) => match scripting::prepare(shared, args, *call) {
                    Err(e) => e,
                    Ok(p) => match script_in_tx(shared, conn, tx, &p, args) {
                        Ok(f) => f,
                        // A shutdown stops it: EXEC's other writes stay (its reply is lost).
                        Err(_) => Frame::err("Script aborted: the server is shutting down"),
                    },
                },
                // Never queued (NO_QUEUE); and the MULTI is over by now.
                Some(_) => exec_without_multi(),
                None => unknown_command(args),
            };
            replies.push(reply);
        }
        // Blocked clients are served once, after the whole transaction (Redis's ready keys).
        serve_ready(shared, tx, conn, &mut served);
        Ok(Some(replies))
    });
    conn.watch.clear(&shared.watches);
    match result {
        Ok((None, _)) => Frame::NullArray,
        Ok((Some(replies), Landed::Proposed(seq, effects))) => {
            conn.proposal = Some(Proposal {
                seq,
                effects,
                served,
            });
            Frame::Array(replies)
        }
        Ok((Some(replies), Landed::Now(t))) => {
            *token = (*token).max(Some(t));
            deliver(served, Ok(t));
            publish_events(shared, conn);
            Frame::Array(replies)
        }
        Err(e) => failed(shared, conn, served, &e),
    }
}

/// Runs one command's handler against `store` and returns its reply.
fn execute(
    shared: &Shared,
    conn: &mut ConnState,
    store: Store<'_, '_>,
    spec: &Spec,
    handler: Handler,
    args: &[Bytes],
    may_block: bool,
) -> Frame {
    let events_before = conn.events.len();
    let invalidated_before = conn.invalidated.len();
    if spec.has(flags::READONLY) && shared.tracking.active() {
        track_reads(shared, conn, args);
    }
    let mut ctx = Ctx {
        shared,
        conn,
        store,
        member_writes: 0,
        breaks_compact: false,
        may_block,
        counts_lookups: spec.has(flags::READONLY),
    };
    // A command that fails has no effect, even if it had staged writes before failing (a
    // member too large, a storage error…): its writes are rolled back, the transaction's
    // earlier ones (EXEC) are kept.
    let savepoint = match &mut ctx.store {
        Store::Write(tx) => Some(tx.savepoint()),
        Store::Read(_) => None,
    };
    let result = handler(&mut ctx, args);
    let touched = std::mem::take(&mut ctx.conn.touched);
    let mut late = std::mem::take(&mut ctx.conn.late_events);
    match result {
        Ok(f) => {
            if !touched.is_empty() {
                events::derive(spec.name, args, &touched, &mut ctx.conn.events);
            }
            ctx.conn.events.append(&mut late);
            f
        }
        Err(CmdError::Block(on)) => {
            park(shared, ctx.conn, args, *on);
            // Not sent: the connection waits for the real reply.
            Frame::Null
        }
        Err(e) => {
            ctx.conn.events.truncate(events_before);
            ctx.conn.invalidated.truncate(invalidated_before);
            if let (Some(sp), Store::Write(tx)) = (savepoint, &mut ctx.store) {
                tx.rollback_to(sp);
            }
            e.into_frame()
        }
    }
}
