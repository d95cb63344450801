//! The command table: every group's rows, sorted by name, and the lookup by name (a hash map
//! built once). COMMAND, which describes the table, lives here: it reads the table, and the
//! table lists every group, so in a group's module it would make a cycle.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use super::args::is;
use super::ctx::Ctx;
use super::keyspec;
use super::reply::{CmdResult, help, syntax_error, unknown_subcommand, wrong_arity};
use super::spec::flags::CONTAINER;
use super::spec::{Spec, commands};
use super::{
    acl, bitfield, bits, blocking, client, connection, debug, dump, functions, geo, hashes,
    hyperloglog, info, keys, lists, memory, object, pubsub, scripting, server, sets, slowlog, sort,
    stream_groups, streams, strings, transactions, zset_algebra, zset_ranges, zsets,
};
use crate::command_info::{self, Begin, CommandInfo, Find, KeySpec};
use crate::frame::Frame;

/// COMMAND (of the server group).
static COMMANDS: &[Spec] = commands! {
    group "server";
    /// Returns detailed information about all commands.
    "command", -1, CONTAINER, 0, 0, 0 => command;
};

/// Every command, in alphabetical order.
pub(crate) fn table() -> &'static [&'static Spec] {
    static TABLE: OnceLock<Vec<&'static Spec>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let groups = [
            COMMANDS,
            acl::COMMANDS,
            connection::COMMANDS,
            client::COMMANDS,
            server::COMMANDS,
            info::COMMANDS,
            debug::COMMANDS,
            memory::COMMANDS,
            strings::COMMANDS,
            bits::COMMANDS,
            bitfield::COMMANDS,
            hyperloglog::COMMANDS,
            geo::COMMANDS,
            keys::COMMANDS,
            hashes::COMMANDS,
            sets::COMMANDS,
            lists::COMMANDS,
            zsets::COMMANDS,
            zset_ranges::COMMANDS,
            zset_algebra::COMMANDS,
            transactions::COMMANDS,
            pubsub::COMMANDS,
            blocking::COMMANDS,
            object::COMMANDS,
            slowlog::COMMANDS,
            sort::COMMANDS,
            dump::COMMANDS,
            scripting::COMMANDS,
            functions::COMMANDS,
            streams::COMMANDS,
            stream_groups::COMMANDS,
        ];
        let mut t: Vec<&'static Spec> = groups.into_iter().flatten().collect();
        t.sort_by_key(|s| s.name);
        t
    })
}

/// Finds a command by name, in any case.
pub(crate) fn lookup(name: &[u8]) -> Option<&'static Spec> {
    lookup_numbered(name).map(|(_, s)| s)
}

/// Finds a command by name, with its place in [`table`].
pub(crate) fn lookup_numbered(name: &[u8]) -> Option<(usize, &'static Spec)> {
    static INDEX: OnceLock<HashMap<&'static str, (usize, &'static Spec)>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        table()
            .iter()
            .enumerate()
            .map(|(i, &s)| (s.name, (i, s)))
            .collect()
    });
    if name.len() > 32 {
        return None;
    }
    let mut buf = [0u8; 32];
    let lower = &mut buf[..name.len()];
    lower.copy_from_slice(name);
    lower.make_ascii_lowercase();
    let name = std::str::from_utf8(lower).ok()?;
    index.get(name).copied()
}

/// One `COMMAND INFO` entry, in Redis 7's ten-field layout: the arity and key positions of
/// the table; flags, ACL categories, tips, key specs and subcommands as redis-server 7.0
/// reports them (`command_info.tsv`; key specs without their notes).
fn command_info(s: &Spec) -> Frame {
    let Some(info) = command_info::get(s.name) else {
        // (Every command of the table is a Redis command; kept for one that would not be.)
        return Frame::Array(vec![
            Frame::bulk(s.name),
            Frame::Integer(i64::from(s.arity)),
            Frame::Set(Vec::new()),
            Frame::Integer(i64::from(s.first_key)),
            Frame::Integer(i64::from(s.last_key)),
            Frame::Integer(i64::from(s.step)),
            Frame::Set(Vec::new()),
            Frame::Set(Vec::new()),
            Frame::Set(Vec::new()),
            Frame::Array(Vec::new()),
        ]);
    };
    info_frame(info)
}

fn info_frame(info: &CommandInfo) -> Frame {
    let names = |v: &[&'static str]| Frame::Set(v.iter().map(|&n| Frame::Simple(n)).collect());
    let bulks = |v: &[&'static str]| Frame::Set(v.iter().map(|&n| Frame::bulk(n)).collect());
    // (Categories come as status strings, tips as bulk strings, as Redis sends them.)
    Frame::Array(vec![
        Frame::bulk(info.name),
        Frame::Integer(info.arity),
        names(&info.flags),
        Frame::Integer(info.first),
        Frame::Integer(info.last),
        Frame::Integer(info.step),
        names(&info.categories),
        bulks(&info.tips),
        Frame::Set(info.specs.iter().map(key_spec_frame).collect()),
        // (An empty set without subcommands, as Redis sends it.)
        match command_info::subcommands(info.name) {
            subs if subs.is_empty() => Frame::Set(Vec::new()),
            subs => Frame::Array(subs.into_iter().map(info_frame).collect()),
        },
    ])
}

fn key_spec_frame(k: &KeySpec) -> Frame {
    let int = |n: i64| Frame::Integer(n);
    let map = |pairs: Vec<(&'static str, Frame)>| {
        Frame::Map(
            pairs
                .into_iter()
                .map(|(k, v)| (Frame::bulk(k), v))
                .collect(),
        )
    };
    let (bs_type, bs_spec) = match &k.begin {
        Begin::Index(i) => ("index", map(vec![("index", int(*i))])),
        Begin::Keyword(w, from) => (
            "keyword",
            map(vec![("keyword", Frame::bulk(w)), ("startfrom", int(*from))]),
        ),
        Begin::Unknown => ("unknown", map(Vec::new())),
    };
    let (fk_type, fk_spec) = match k.find {
        Find::Range {
            lastkey,
            keystep,
            limit,
        } => (
            "range",
            map(vec![
                ("lastkey", int(lastkey)),
                ("keystep", int(keystep)),
                ("limit", int(limit)),
            ]),
        ),
        Find::Keynum {
            keynumidx,
            firstkey,
            keystep,
        } => (
            "keynum",
            map(vec![
                ("keynumidx", int(keynumidx)),
                ("firstkey", int(firstkey)),
                ("keystep", int(keystep)),
            ]),
        ),
        Find::Unknown => ("unknown", map(Vec::new())),
    };
    map(vec![
        (
            "flags",
            Frame::Set(k.flags.iter().map(|&f| Frame::Simple(f)).collect()),
        ),
        (
            "begin_search",
            map(vec![("type", Frame::bulk(bs_type)), ("spec", bs_spec)]),
        ),
        (
            "find_keys",
            map(vec![("type", Frame::bulk(fk_type)), ("spec", fk_spec)]),
        ),
    ])
}

fn command_docs(s: &Spec) -> (Frame, Frame) {
    (
        Frame::bulk(s.name),
        Frame::Map(vec![
            (Frame::bulk("summary"), Frame::bulk(s.summary)),
            (Frame::bulk("since"), Frame::bulk("1.0.0")),
            (Frame::bulk("group"), Frame::bulk(s.group)),
        ]),
    )
}

/// COMMAND GETKEYS / GETKEYSANDFLAGS: the keys of a full request, found with its key specs,
/// or for the commands whose specs cannot say (SORT's STORE, SET's flags with GET, scripts'
/// optional keys) as Redis's own key finders do.
fn getkeys(args: &[Bytes], with_flags: bool) -> Frame {
    let Some(info) = keyspec::full_info(args) else {
        return Frame::err("Invalid command specified");
    };
    if !keyspec::has_keys(info) {
        return Frame::err("The command has no key arguments");
    }
    let argc = args.len() as i64;
    if (info.arity > 0 && info.arity != argc) || argc < -info.arity {
        return Frame::err("Invalid number of arguments specified for command");
    }
    let keys = keyspec::keys_of(info, args);
    if keys.is_empty() {
        return if info.flags.contains(&"no_mandatory_keys") {
            Frame::Array(Vec::new())
        } else {
            Frame::err("Invalid arguments specified for command")
        };
    }
    Frame::Array(
        keys.into_iter()
            .map(|(at, flags)| {
                let key = Frame::Bulk(args[at].clone());
                if with_flags {
                    Frame::Array(vec![
                        key,
                        Frame::Set(flags.into_iter().map(Frame::Simple).collect()),
                    ])
                } else {
                    key
                }
            })
            .collect(),
    )
}

/// COMMAND LIST's filters: the commands (and subcommands) an ACL category or a pattern
/// selects; no module has commands.
fn list(args: &[Bytes]) -> CmdResult {
    let mut names: Vec<&'static str> = Vec::new();
    for s in table() {
        names.push(s.name);
        names.extend(command_info::subcommands(s.name).iter().map(|c| c.name));
    }
    match args.len() {
        2 => {}
        5 if is(&args[2], "filterby") => {
            let arg = &args[4];
            if is(&args[3], "module") {
                names.clear();
            } else if is(&args[3], "aclcat") {
                let cat = format!("@{}", String::from_utf8_lossy(arg).to_lowercase());
                names.retain(|n| {
                    command_info::get(n).is_some_and(|i| i.categories.contains(&cat.as_str()))
                });
            } else if is(&args[3], "pattern") {
                let pattern = arg.to_ascii_lowercase();
                names.retain(|n| crate::glob::matches(&pattern, n.as_bytes()));
            } else {
                return Err(syntax_error());
            }
        }
        _ => return Err(syntax_error()),
    }
    Ok(Frame::Array(names.into_iter().map(Frame::bulk).collect()))
}

fn command(_ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(sub) = args.get(1) else {
        return Ok(Frame::Array(
            table().iter().map(|s| command_info(s)).collect(),
        ));
    };
    let subcommand = String::from_utf8_lossy(sub).to_lowercase();
    let Some(info) = command_info::get(&format!("command|{subcommand}")) else {
        return Ok(unknown_subcommand(sub, "command"));
    };
    let argc = args.len() as i64;
    if (info.arity > 0 && info.arity != argc) || argc < -info.arity {
        return Ok(wrong_arity(info.name));
    }
    match subcommand.as_str() {
        "count" => Ok(Frame::Integer(table().len() as i64)),
        "info" if args.len() == 2 => Ok(Frame::Array(
            table().iter().map(|s| command_info(s)).collect(),
        )),
        "info" => Ok(Frame::Array(
            args[2..]
                .iter()
                .map(|n| {
                    let name = String::from_utf8_lossy(n).to_lowercase();
                    match name.split_once('|') {
                        // A subcommand of one of ours.
                        Some((parent, _)) if lookup(parent.as_bytes()).is_some() => {
                            command_info::get(&name).map_or(Frame::Null, info_frame)
                        }
                        Some(_) => Frame::Null,
                        None => lookup(n).map_or(Frame::Null, command_info),
                    }
                })
                .collect(),
        )),
        "docs" => {
            let docs = if args.len() == 2 {
                table().iter().map(|s| command_docs(s)).collect()
            } else {
                args[2..]
                    .iter()
                    .filter_map(|n| lookup(n))
                    .map(command_docs)
                    .collect()
            };
            Ok(Frame::Map(docs))
        }
        "list" => list(args),
        "getkeys" => Ok(getkeys(&args[2..], false)),
        "getkeysandflags" => Ok(getkeys(&args[2..], true)),
        "help" => Ok(help(HELP)),
        _ => Ok(unknown_subcommand(sub, "command")),
    }
}

/// Redis 7.0's COMMAND HELP text.
const HELP: &[&str] = &[
    "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "(no subcommand)",
    "    Return details about all Redis commands.",
    "COUNT",
    "    Return the total number of commands in this Redis server.",
    "LIST",
    "    Return a list of all commands in this Redis server.",
    "INFO [<command-name> ...]",
    "    Return details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "DOCS [<command-name> ...]",
    "    Return documentation details about multiple Redis commands.",
    "    If no command names are given, documentation details for all",
    "    commands are returned.",
    "GETKEYS <full-command>",
    "    Return the keys from a full Redis command.",
    "GETKEYSANDFLAGS <full-command>",
    "    Return the keys and the access flags from a full Redis command.",
    "HELP",
    "    Prints this help.",
];
