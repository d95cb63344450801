#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! COMMAND against redis-server 7.0: every command caskdb has answers COMMAND INFO with
//! Redis's arity, key positions, flags and ACL categories; COMMAND GETKEYS and GETKEYSANDFLAGS
//! find the same keys (differential, RESP2 and RESP3); COMMAND COUNT/LIST agree with the table.

mod common;

use std::collections::BTreeMap;

use common::diff::{differential, start_redis};
use common::{Raw, Reply};

fn text(r: &Reply) -> String {
    match r {
        Reply::Bulk(b) => String::from_utf8(b.clone()).unwrap(),
        Reply::Simple(s) => s.clone(),
        other => panic!("{other:?}"),
    }
}

/// Drops the `notes` of key specs (prose caskdb does not copy).
fn without_notes(r: Reply) -> Reply {
    match r {
        Reply::Map(pairs) => Reply::Map(
            pairs
                .into_iter()
                .filter(|(k, _)| *k != Reply::bulk("notes"))
                .map(|(k, v)| (k, without_notes(v)))
                .collect(),
        ),
        Reply::Array(v) => {
            // RESP2 maps are flat arrays: drop a "notes" key with its value.
            let mut out = Vec::new();
            let mut it = v.into_iter().peekable();
            while let Some(x) = it.next() {
                if x == Reply::bulk("notes") && matches!(it.peek(), Some(Reply::Bulk(_))) {
                    it.next();
                    continue;
                }
                out.push(without_notes(x));
            }
            Reply::Array(out)
        }
        Reply::Set(v) => Reply::Set(v.into_iter().map(without_notes).collect()),
        other => other,
    }
}

/// COMMAND INFO of every command, by name, in RESP2 or RESP3.
fn infos(addr: std::net::SocketAddr, resp3: bool) -> BTreeMap<String, Reply> {
    let mut c = Raw::connect(addr);
    if resp3 {
        c.cmd(&["HELLO", "3"]);
    }
    let (Reply::Array(all) | Reply::Set(all)) = c.cmd(&["COMMAND", "INFO"]) else {
        panic!("COMMAND INFO")
    };
    all.into_iter()
        .map(|e| {
            let Reply::Array(mut f) = e else {
                panic!("{e:?}")
            };
            // Subcommands come in the order of Redis's hash table, seeded at random.
            if let Some(Reply::Array(subs)) = f.get_mut(9) {
                subs.sort_by_key(|s| format!("{s:?}"));
            }
            (text(&f[0]), without_notes(Reply::Array(f)))
        })
        .collect()
}

#[test]
fn command_info_matches_redis_for_every_command() {
    let Some(redis) = start_redis() else {
        return;
    };
    let cask = common::start_fresh();
    for resp3 in [false, true] {
        let theirs = infos(redis.addr, resp3);
        let ours = infos(cask.addr, resp3);
        let mut wrong = Vec::new();
        for (name, mine) in &ours {
            match theirs.get(name) {
                None => wrong.push(format!("{name}: not a Redis 7.0 command")),
                Some(t) if t != mine => wrong.push(format!(
                    "{name}:\n  redis:  {}\n  caskdb: {}",
                    common::diff::show(t),
                    common::diff::show(mine)
                )),
                Some(_) => {}
            }
        }
        assert!(
            wrong.is_empty(),
            "RESP{}: {} commands differ:\n{}",
            if resp3 { 3 } else { 2 },
            wrong.len(),
            wrong.join("\n")
        );
    }
}

#[test]
fn getkeys_like_redis() {
    differential(|d| {
        d.script("command getkeys");
        d.run(
            r"
            COMMAND GETKEYS GET k
            COMMAND GETKEYS SET k v
            COMMAND GETKEYSANDFLAGS SET k v
            COMMAND GETKEYSANDFLAGS SET k v GET
            COMMAND GETKEYSANDFLAGS SET k v get EX 10
            COMMAND GETKEYS MSET a 1 b 2 c 3
            COMMAND GETKEYSANDFLAGS MSET a 1 b 2
            COMMAND GETKEYS MGET a b c
            COMMAND GETKEYS DEL a b c
            COMMAND GETKEYSANDFLAGS DEL a b
            COMMAND GETKEYS RENAME a b
            COMMAND GETKEYSANDFLAGS RENAME a b
            COMMAND GETKEYSANDFLAGS LMOVE a b LEFT RIGHT
            COMMAND GETKEYS BLPOP a b c 0
            COMMAND GETKEYS BLMPOP 0 2 a b LEFT
            COMMAND GETKEYS LMPOP 2 a b LEFT COUNT 3
            COMMAND GETKEYS LMPOP 0 a
            COMMAND GETKEYS LMPOP x a
            COMMAND GETKEYS LMPOP 5 a
            COMMAND GETKEYS ZUNIONSTORE d 2 a b WEIGHTS 1 2
            COMMAND GETKEYSANDFLAGS ZUNIONSTORE d 2 a b
            COMMAND GETKEYS ZUNION 2 a b
            COMMAND GETKEYS ZINTERCARD 3 a b c LIMIT 1
            COMMAND GETKEYS SINTERCARD 2 a b
            COMMAND GETKEYS ZMPOP 1 a MIN
            COMMAND GETKEYS BZMPOP 0 1 a MIN
            COMMAND GETKEYS SORT k
            COMMAND GETKEYSANDFLAGS SORT k BY w_* GET # LIMIT 0 1 STORE d
            COMMAND GETKEYS SORT k STORE d1 STORE d2
            COMMAND GETKEYS SORT k GET store STORE d
            COMMAND GETKEYSANDFLAGS SORT_RO k BY w_*
            COMMAND GETKEYS OBJECT ENCODING k
            COMMAND GETKEYS MEMORY USAGE k
            COMMAND GETKEYS EXISTS a b
            COMMAND GETKEYS COPY a b DB 1
            COMMAND GETKEYS SMOVE a b m
            COMMAND GETKEYS LCS a b
            COMMAND GETKEYS WATCH a b
            COMMAND GETKEYS TOUCH a b
            COMMAND GETKEYS PING
            COMMAND GETKEYS NOSUCH a
            COMMAND GETKEYS GET
            COMMAND GETKEYS GET a b
            COMMAND GETKEYS OBJECT NOSUCH k
            COMMAND GETKEYS
            COMMAND GETKEYSANDFLAGS
            COMMAND GETKEYS SUBSCRIBE ch
            COMMAND GETKEYS PUBLISH ch m
            COMMAND GETKEYS CLIENT LIST
            COMMAND GETKEYS CONFIG GET x
            ",
        );
        d.script("command list and errors");
        d.run(
            r"
            COMMAND LIST FILTERBY MODULE nosuch
            COMMAND LIST FILTERBY ACLCAT nosuchcategory
            COMMAND LIST FILTERBY NOSUCH x
            COMMAND LIST FILTERBY
            COMMAND LIST x
            COMMAND INFO nosuch
            COMMAND INFO get nosuch
            COMMAND INFO config|get
            COMMAND INFO GET
            COMMAND NOSUCH
            COMMAND COUNT x
            COMMAND HELP
            COMMAND HELP x
            ",
        );
    });
}

#[test]
fn command_list_filters_name_our_commands_as_redis_does() {
    let Some(redis) = start_redis() else {
        return;
    };
    let cask = common::start_fresh();
    let list = |addr, args: &[&str]| -> Vec<String> {
        let mut c = Raw::connect(addr);
        let mut cmd = vec!["COMMAND", "LIST"];
        cmd.extend_from_slice(args);
        match c.cmd(&cmd) {
            Reply::Array(v) => {
                let mut v: Vec<String> = v.iter().map(text).collect();
                v.sort();
                v
            }
            other => panic!("{other:?}"),
        }
    };
    let ours = list(cask.addr, &[]);
    let theirs = list(redis.addr, &[]);
    // Each of ours is Redis's; and its subcommands come with it.
    for name in &ours {
        assert!(theirs.contains(name), "{name}");
    }
    assert!(ours.contains(&"config|get".to_string()));
    for filter in [
        ["FILTERBY", "ACLCAT", "string"],
        ["FILTERBY", "ACLCAT", "keyspace"],
        ["FILTERBY", "PATTERN", "z*store"],
        ["FILTERBY", "PATTERN", "CLIENT|*"],
    ] {
        let ours = list(cask.addr, &filter);
        let theirs: Vec<String> = list(redis.addr, &filter)
            .into_iter()
            .filter(|n| list(cask.addr, &[]).contains(n))
            .collect();
        assert_eq!(ours, theirs, "COMMAND LIST {filter:?}");
    }
    let mut c = Raw::connect(cask.addr);
    assert_eq!(
        c.cmd(&["COMMAND", "COUNT"]),
        Reply::Int(ours.iter().filter(|n| !n.contains('|')).count() as i64)
    );
}
