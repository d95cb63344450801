//! MEMORY USAGE, STATS, DOCTOR, MALLOC-STATS, PURGE, HELP. Sizes are estimates from what caskdb
//! stores (a key, its value, its members sampled as Redis samples them) plus per-entry
//! overheads; the process figures are those of INFO memory.

use bytes::Bytes;

use super::args::is;
use super::ctx::Ctx;
use super::info::{memory_figures, total_keys};
use super::reply::{CmdError, CmdResult, help, syntax_error, unknown_subcommand, wrong_arity};
use super::spec::flags::{CONTAINER, READ_TX};
use super::spec::{Spec, commands};
use crate::frame::Frame;
use crate::keyspace::{Meta, kind};
use crate::parse::parse_i64;
use crate::string_chunks::Chunked;

/// MEMORY.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "server";
    /// A container for memory diagnostics commands.
    "memory", -2, READ_TX | CONTAINER, 0, 0, 0 => memory;
};

/// Members a MEMORY USAGE samples by default (Redis's `OBJ_COMPUTE_SIZE_DEF_SAMPLES`).
const DEFAULT_SAMPLES: u64 = 5;
/// What each stored entry costs beyond its bytes (the engine's index entry, Redis's dict entry
/// and object header are of this order).
const ENTRY_OVERHEAD: u64 = 48;

fn memory(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    let fixed = |n: usize| -> Result<(), CmdError> {
        if args.len() != n {
            let name = format!("memory|{}", String::from_utf8_lossy(sub).to_lowercase());
            return Err(wrong_arity(&name).into());
        }
        Ok(())
    };
    if is(sub, "usage") {
        if args.len() < 3 {
            return Ok(wrong_arity("memory|usage"));
        }
        return usage(ctx, args);
    }
    if is(sub, "stats") {
        fixed(2)?;
        return stats(ctx);
    }
    if is(sub, "doctor") {
        fixed(2)?;
        let (used, ..) = memory_figures(ctx.shared);
        let text = if used < 5 << 20 {
            "Hi Sam, this instance is empty or is using very little memory, my issues detector can't be used in these conditions. Please, leave for your mission on Earth and fill it with some data. The new Sam and I will be back to our programming as soon as I finished rebooting.\n"
        } else {
            "Hi Sam, I can't find any memory issue in your instance. I can only account for what occurs on this base.\n"
        };
        return Ok(Frame::Verbatim(text.into()));
    }
    if is(sub, "malloc-stats") {
        fixed(2)?;
        return Ok(Frame::bulk("Stats not supported for the current allocator"));
    }
    if is(sub, "purge") {
        fixed(2)?;
        return Ok(Frame::OK);
    }
    if is(sub, "help") {
        fixed(2)?;
        return Ok(help(HELP));
    }
    Ok(unknown_subcommand(sub, "memory"))
}

/// MEMORY USAGE key [SAMPLES count].
fn usage(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let mut samples = DEFAULT_SAMPLES;
    let mut i = 3;
    while i < args.len() {
        if is(&args[i], "samples") && i + 1 < args.len() {
            let n = parse_i64(&args[i + 1])
                .ok_or_else(|| Frame::err("value is not an integer or out of range"))?;
            samples = match u64::try_from(n) {
                Err(_) => return Err(syntax_error()),
                Ok(0) => u64::MAX,
                Ok(n) => n,
            };
            i += 2;
        } else {
            return Err(syntax_error());
        }
    }
    let key = &args[2];
    let Some(e) = ctx.lookup_stored(key)? else {
        return Ok(Frame::Null);
    };
    let base = key.len() as u64 + ENTRY_OVERHEAD;
    if let Some(c) = Chunked::of(&e) {
        let total = base + c.len + c.chunks() * ENTRY_OVERHEAD;
        return Ok(Frame::Integer(i64::try_from(total).unwrap_or(i64::MAX)));
    }
    let Some(m) = Meta::decode(&e) else {
        return Ok(Frame::Integer((base + e.payload.len() as u64) as i64));
    };
    // As Redis: the mean size of the first `samples` members, times the number of members.
    let limit = usize::try_from(samples.min(m.len)).unwrap_or(usize::MAX);
    let sampled = ctx.members(
        &m,
        kind::MEMBER,
        std::ops::Bound::Unbounded,
        std::ops::Bound::Unbounded,
        limit,
        false,
    )?;
    let bytes: u64 = sampled
        .iter()
        .map(|(k, v)| (k.len() + v.len()) as u64 + ENTRY_OVERHEAD)
        .sum();
    let each = bytes / (sampled.len().max(1) as u64);
    let total = base + e.payload.len() as u64 + each.saturating_mul(m.len);
    Ok(Frame::Integer(i64::try_from(total).unwrap_or(i64::MAX)))
}

/// MEMORY STATS: Redis's fields, with the process's figures.
fn stats(ctx: &mut Ctx<'_, '_>) -> CmdResult {
    let (used, peak, startup) = memory_figures(ctx.shared);
    let keys = total_keys(ctx)?;
    let mut m: Vec<(Frame, Frame)> = Vec::new();
    let mut put = |k: &str, v: Frame| m.push((Frame::bulk(k), v));
    let int = |n: u64| Frame::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    put("peak.allocated", int(peak));
    put("total.allocated", int(used));
    put("startup.allocated", int(startup));
    for k in [
        "replication.backlog",
        "clients.slaves",
        "clients.normal",
        "cluster.links",
        "aof.buffer",
        "lua.caches",
        "functions.caches",
    ] {
        put(k, Frame::Integer(0));
    }
    for (db, n) in keys.iter().enumerate() {
        if *n > 0 {
            put(
                &format!("db.{db}"),
                Frame::Map(vec![
                    (
                        Frame::bulk("overhead.hashtable.main"),
                        int(n * ENTRY_OVERHEAD),
                    ),
                    (Frame::bulk("overhead.hashtable.expires"), Frame::Integer(0)),
                    (
                        Frame::bulk("overhead.hashtable.slot-to-keys"),
                        Frame::Integer(0),
                    ),
                ]),
            );
        }
    }
    let total_keys: u64 = keys.iter().sum();
    let dataset = used.saturating_sub(startup);
    put("overhead.total", int(startup));
    put("keys.count", int(total_keys));
    put("keys.bytes-per-key", int(dataset / total_keys.max(1)));
    put("dataset.bytes", int(dataset));
    put(
        "dataset.percentage",
        Frame::Double(dataset as f64 * 100.0 / used.max(1) as f64),
    );
    put(
        "peak.percentage",
        Frame::Double(used as f64 * 100.0 / peak.max(1) as f64),
    );
    put("allocator.allocated", int(used));
    put("allocator.active", int(used));
    put("allocator.resident", int(used));
    put("allocator-fragmentation.ratio", Frame::Double(1.0));
    put("allocator-fragmentation.bytes", Frame::Integer(0));
    put("allocator-rss.ratio", Frame::Double(1.0));
    put("allocator-rss.bytes", Frame::Integer(0));
    put("rss-overhead.ratio", Frame::Double(1.0));
    put("rss-overhead.bytes", Frame::Integer(0));
    put("fragmentation", Frame::Double(1.0));
    put("fragmentation.bytes", Frame::Integer(0));
    Ok(Frame::Map(m))
}

/// Redis 7.0's MEMORY HELP text.
const HELP: &[&str] = &[
    "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "DOCTOR",
    "    Return memory problems reports.",
    "MALLOC-STATS",
    "    Return internal statistics report from the memory allocator.",
    "PURGE",
    "    Attempt to purge dirty pages for reclamation by the allocator.",
    "STATS",
    "    Return information about the memory usage of the server.",
    "USAGE <key> [SAMPLES <count>]",
    "    Return memory in bytes used by <key> and its value. Nested values are",
    "    sampled up to <count> times (default: 5, 0 means sample all).",
    "HELP",
    "    Prints this help.",
];
