//! OBJECT: ENCODING answers what redis-server 7.0 would report for the same value and the same
//! size knobs (`hash-max-listpack-entries`…), REFCOUNT, IDLETIME, FREQ, HELP.

use bytes::Bytes;

use super::args::is;
use super::ctx::Ctx;
use super::reply::{CmdResult, help, unknown_subcommand, wrong_arity};
use super::spec::flags::{CONTAINER, READ_TX};
use super::spec::{Spec, commands};
use crate::config::is_canonical_int;
use crate::frame::Frame;
use crate::keyspace::{Entry, Meta, Type};

/// OBJECT.
pub(super) static COMMANDS: &[Spec] = commands! {
    group "generic";
    /// A container for object introspection commands.
    "object", -2, READ_TX | CONTAINER, 2, 2, 1 => object;
};

/// Redis 7.0's encoding of `e`: strings `int` (an integer as Redis prints one), `embstr` (up to
/// 44 bytes) or `raw` (longer, or last written by APPEND/SETRANGE); lists `quicklist`; sets
/// `intset` or `hashtable`; hashes and sorted sets `listpack` until they outgrew the knobs once,
/// then `hashtable` / `skiplist`.
pub(super) fn encoding(ctx: &Ctx<'_, '_>, e: &Entry) -> &'static str {
    if e.ty == Type::String {
        return if e.is_raw_string() {
            "raw"
        } else if is_canonical_int(&e.payload) {
            "int"
        } else if e.payload.len() <= 44 {
            "embstr"
        } else {
            "raw"
        };
    }
    let compact = Meta::decode(e)
        .is_some_and(|m| !m.converted && m.len <= ctx.shared.config.compact_max_len(m.ty));
    match (e.ty, compact) {
        (Type::List, _) => "quicklist",
        (Type::Stream, _) => "stream",
        (Type::Set, true) => "intset",
        (Type::Hash | Type::ZSet, true) => "listpack",
        (Type::ZSet, false) => "skiplist",
        _ => "hashtable",
    }
}

const HELP: &[&str] = &[
    "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "ENCODING <key>",
    "    Return the kind of internal representation used in order to store the value",
    "    associated with a <key>.",
    "FREQ <key>",
    "    Return the access frequency index of the <key>. The returned integer is",
    "    proportional to the logarithm of the recent access frequency of the key.",
    "IDLETIME <key>",
    "    Return the idle time of the <key>, that is the approximated number of",
    "    seconds elapsed since the last access to the key.",
    "REFCOUNT <key>",
    "    Return the number of references of the value associated with the specified",
    "    <key>.",
    "HELP",
    "    Prints this help.",
];

fn object(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let sub = &args[1];
    if is(sub, "help") {
        if args.len() != 2 {
            return Ok(wrong_arity("object|help"));
        }
        return Ok(help(HELP));
    }
    let name = ["encoding", "refcount", "idletime", "freq"]
        .into_iter()
        .find(|n| is(sub, n));
    let Some(name) = name else {
        return Ok(unknown_subcommand(sub, "object"));
    };
    if args.len() != 3 {
        return Ok(wrong_arity(&format!("object|{name}")));
    }
    // As stored: a string kept in chunks is `raw`, and its bytes need not be read.
    let Some(e) = ctx.lookup_stored(&args[2])? else {
        return Ok(Frame::Null);
    };
    Ok(match name {
        "encoding" => Frame::bulk(encoding(ctx, &e)),
        // Redis shares the integers 0 to 9999 (OBJ_SHARED_INTEGERS), reported as INT_MAX.
        "refcount" => Frame::Integer(
            if e.ty == Type::String
                && is_canonical_int(&e.payload)
                && !e.is_raw_string()
                && std::str::from_utf8(&e.payload)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .is_some_and(|n| (0..10_000).contains(&n))
            {
                i64::from(i32::MAX)
            } else {
                1
            },
        ),
        // Access times are not tracked.
        "idletime" => Frame::Integer(0),
        _ => Frame::err(
            "An LFU maxmemory policy is not selected, access frequency not tracked. Please note that when switching between policies at runtime LRU and LFU data will take some time to adjust.",
        ),
    })
}
