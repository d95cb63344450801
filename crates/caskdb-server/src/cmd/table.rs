//! The command table: every group's rows, sorted by name, and the lookup by name (a hash map
//! built once). COMMAND, which describes the table, lives here: it reads the table, and the
//! table lists every group, so in a group's module it would make a cycle.

use std::collections::HashMap;
use std::sync::OnceLock;

use bytes::Bytes;

use super::args::is;
use super::ctx::Ctx;
use super::reply::{CmdResult, unknown_subcommand};
use super::spec::flags::{ADMIN, CONTAINER, FAST, NO_AUTH, NO_MULTI, READONLY, WRITE};
use super::spec::{Spec, commands};
use super::{
    blocking, connection, dump, hashes, keys, lists, object, pubsub, server, sets, slowlog,
    strings, transactions, zset_algebra, zset_ranges, zsets,
};
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
            connection::COMMANDS,
            server::COMMANDS,
            strings::COMMANDS,
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
            dump::COMMANDS,
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

fn flag_names(s: &Spec) -> Vec<Frame> {
    let mut v = Vec::new();
    for (flag, name) in [
        (WRITE, "write"),
        (READONLY, "readonly"),
        (ADMIN, "admin"),
        (FAST, "fast"),
        (NO_AUTH, "no_auth"),
        (NO_MULTI, "no_multi"),
    ] {
        if s.has(flag) {
            v.push(Frame::Simple(name));
        }
    }
    v
}

/// One `COMMAND INFO` entry, in Redis 7's ten-field layout.
fn command_info(s: &Spec) -> Frame {
    Frame::Array(vec![
        Frame::bulk(s.name),
        Frame::Integer(i64::from(s.arity)),
        Frame::Array(flag_names(s)),
        Frame::Integer(i64::from(s.first_key)),
        Frame::Integer(i64::from(s.last_key)),
        Frame::Integer(i64::from(s.step)),
        Frame::Array(vec![Frame::bulk(format!("@{}", s.group))]),
        Frame::Array(Vec::new()),
        Frame::Array(Vec::new()),
        Frame::Array(Vec::new()),
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

fn command(_ctx: &mut Ctx<'_, '_>, args: &[Bytes]) -> CmdResult {
    let Some(sub) = args.get(1) else {
        return Ok(Frame::Array(
            table().iter().map(|s| command_info(s)).collect(),
        ));
    };
    if is(sub, "count") {
        return Ok(Frame::Integer(table().len() as i64));
    }
    if is(sub, "info") {
        if args.len() == 2 {
            return Ok(Frame::Array(
                table().iter().map(|s| command_info(s)).collect(),
            ));
        }
        return Ok(Frame::Array(
            args[2..]
                .iter()
                .map(|n| lookup(n).map_or(Frame::Null, command_info))
                .collect(),
        ));
    }
    if is(sub, "docs") {
        let docs = if args.len() == 2 {
            table().iter().map(|s| command_docs(s)).collect()
        } else {
            args[2..]
                .iter()
                .filter_map(|n| lookup(n))
                .map(command_docs)
                .collect()
        };
        return Ok(Frame::Map(docs));
    }
    if is(sub, "list") {
        return Ok(Frame::Array(
            table().iter().map(|s| Frame::bulk(s.name)).collect(),
        ));
    }
    Ok(unknown_subcommand(sub, "command"))
}
