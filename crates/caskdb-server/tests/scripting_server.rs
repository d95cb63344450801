#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Scripting beyond single replies: FUNCTION DUMP/RESTORE both ways with redis-server, libraries
//! surviving a restart and a kill -9, a script's writes all-or-nothing across kill -9, busy
//! scripts (BUSY, SCRIPT KILL, SHUTDOWN NOSAVE), and the sandbox's limits.

mod common;

use std::time::Duration;

use common::child::ServerProcess;
use common::diff::start_redis;
use common::{Raw, Reply, wait_for};

const LIB: &str = "#!lua name=shared\nredis.register_function('hello', function(keys, args) return 'hello ' .. args[1] end)\nredis.register_function{function_name='count', callback=function(keys) return redis.call('incr', keys[1]) end}";

fn bulk(r: Reply) -> Vec<u8> {
    match r {
        Reply::Bulk(b) => b,
        other => panic!("{other:?}"),
    }
}

#[test]
fn function_payloads_move_both_ways() {
    let Some(redis) = start_redis() else {
        return;
    };
    let cask = common::start_fresh();
    let mut r = Raw::connect(redis.addr);
    let mut c = Raw::connect(cask.addr);
    let ok = Reply::Simple("OK".into());
    assert_eq!(r.cmd(&["FUNCTION", "LOAD", LIB]), Reply::bulk("shared"));
    let payload = bulk(r.cmd(&["FUNCTION", "DUMP"]));
    c.send_bytes(&common::encode_bytes(&[b"FUNCTION", b"RESTORE", &payload]));
    assert_eq!(c.read(), ok);
    assert_eq!(
        c.cmd(&["FCALL", "hello", "0", "world"]),
        Reply::bulk("hello world")
    );
    assert_eq!(c.cmd(&["FCALL", "count", "1", "n"]), Reply::Int(1));
    // Again: APPEND refuses, REPLACE takes it, FLUSH too.
    c.send_bytes(&common::encode_bytes(&[b"FUNCTION", b"RESTORE", &payload]));
    assert_eq!(
        c.read(),
        Reply::Error("ERR Library shared already exists".into())
    );
    for policy in [&b"REPLACE"[..], b"FLUSH"] {
        c.send_bytes(&common::encode_bytes(&[
            b"FUNCTION",
            b"RESTORE",
            &payload,
            policy,
        ]));
        assert_eq!(c.read(), ok);
    }
    // And back: caskdb's payload loads in redis-server.
    c.cmd(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=second\nredis.register_function('two', function() return 2 end)",
    ]);
    let ours = bulk(c.cmd(&["FUNCTION", "DUMP"]));
    r.cmd(&["FUNCTION", "FLUSH"]);
    r.send_bytes(&common::encode_bytes(&[b"FUNCTION", b"RESTORE", &ours]));
    assert_eq!(r.read(), ok);
    assert_eq!(r.cmd(&["FCALL", "two", "0"]), Reply::Int(2));
    assert_eq!(r.cmd(&["FCALL", "hello", "0", "x"]), Reply::bulk("hello x"));
    // A payload with a bad checksum changes nothing.
    let mut bad = ours.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    c.send_bytes(&common::encode_bytes(&[
        b"FUNCTION",
        b"RESTORE",
        &bad,
        b"FLUSH",
    ]));
    assert_eq!(
        c.read(),
        Reply::Error("ERR DUMP payload version or checksum are wrong".into())
    );
    assert_eq!(c.cmd(&["FCALL", "two", "0"]), Reply::Int(2));
}

#[test]
#[ignore = "not a test on its own: the server process that the crash tests start and kill"]
fn scripting_child_server() {
    common::child::serve_always_in("CASKDB_SCRIPTING_CHILD_DIR");
}

const DEADLINE: Duration = Duration::from_secs(30);

#[test]
fn libraries_survive_kill_9_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("CASKDB_SCRIPTING_CHILD_DIR", dir.path().as_os_str())];
    let srv = ServerProcess::spawn("scripting_child_server", &env, DEADLINE);
    let mut c = srv.raw();
    assert_eq!(c.cmd(&["FUNCTION", "LOAD", LIB]), Reply::bulk("shared"));
    c.cmd(&[
        "FUNCTION",
        "LOAD",
        "#!lua name=gone\nredis.register_function('gone', function() return 1 end)",
    ]);
    assert_eq!(
        c.cmd(&["FUNCTION", "DELETE", "gone"]),
        Reply::Simple("OK".into())
    );
    srv.kill();
    let srv = ServerProcess::spawn("scripting_child_server", &env, DEADLINE);
    let mut c = srv.raw();
    assert_eq!(
        c.cmd(&["FCALL", "hello", "0", "again"]),
        Reply::bulk("hello again")
    );
    assert_eq!(
        c.cmd(&["FCALL", "gone", "0"]),
        Reply::Error("ERR Function not found".into())
    );
    // The libraries are not keys: no database shows them.
    assert_eq!(c.cmd(&["DBSIZE"]), Reply::Int(0));
    assert_eq!(c.cmd(&["FUNCTION", "FLUSH"]), Reply::Simple("OK".into()));
    srv.stop(DEADLINE);
    let srv = ServerProcess::spawn("scripting_child_server", &env, DEADLINE);
    let mut c = srv.raw();
    assert_eq!(c.cmd(&["FUNCTION", "LIST"]), Reply::Array(Vec::new()));
    srv.stop(DEADLINE);
}

/// A script that writes 1,000 keys, the server killed while scripts run: after a restart each
/// script's keys are all there or none is (one record per script).
#[test]
fn a_script_s_writes_survive_kill_9_whole_or_not_at_all() {
    const KEYS: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let env = [("CASKDB_SCRIPTING_CHILD_DIR", dir.path().as_os_str())];
    let script = "for i = 1, tonumber(ARGV[2]) do redis.call('set', ARGV[1] .. ':' .. i, i) end return 'done'";
    for round in 0..3 {
        let srv = ServerProcess::spawn("scripting_child_server", &env, DEADLINE);
        let mut c = srv.raw();
        // Acknowledged scripts, then scripts in flight when the process dies.
        let mut acked = Vec::new();
        for s in 0..3 {
            let tag = format!("r{round}s{s}");
            assert_eq!(
                c.cmd(&["EVAL", script, "0", &tag, &KEYS.to_string()]),
                Reply::bulk("done")
            );
            acked.push(tag);
        }
        let mut pipelined = Raw::connect(srv.addr);
        for s in 3..8 {
            pipelined.send(&[
                "EVAL",
                script,
                "0",
                &format!("r{round}s{s}"),
                &KEYS.to_string(),
            ]);
        }
        // The first pipelined script done: then kill, mid-way through the others.
        assert_eq!(pipelined.read(), Reply::bulk("done"));
        acked.push(format!("r{round}s3"));
        srv.kill();

        let srv = ServerProcess::spawn("scripting_child_server", &env, DEADLINE);
        let mut c = srv.raw();
        for s in 0..8 {
            let tag = format!("r{round}s{s}");
            let pattern = format!("{tag}:*");
            let n = match c.cmd(&["KEYS", &pattern]) {
                Reply::Array(v) => v.len(),
                other => panic!("{other:?}"),
            };
            if acked.contains(&tag) {
                assert_eq!(n, KEYS, "acknowledged script {tag} lost writes");
            } else {
                assert!(n == 0 || n == KEYS, "script {tag} left {n} of {KEYS} keys");
            }
        }
        srv.stop(DEADLINE);
    }
}

#[test]
fn a_busy_script_gets_busy_replies_script_kill_and_shutdown_nosave() {
    let srv = common::start_fresh();
    let mut admin = Raw::connect(srv.addr);
    admin.cmd(&["CONFIG", "SET", "busy-reply-threshold", "50"]);
    assert_eq!(
        admin.cmd(&["CONFIG", "GET", "lua-time-limit"]),
        Reply::Array(vec![Reply::bulk("lua-time-limit"), Reply::bulk("50")])
    );
    let mut looping = Raw::connect(srv.addr);
    looping.send(&["EVAL", "while true do end", "0"]);
    // Others wait, then get BUSY (past the threshold).
    let mut other = Raw::connect(srv.addr);
    wait_for("a BUSY reply", Duration::from_secs(10), || {
        match other.cmd(&["GET", "x"]) {
            Reply::Error(e) if e.starts_with("BUSY ") => Some(()),
            _ => None,
        }
    });
    assert_eq!(
        other.cmd(&["FUNCTION", "KILL"]),
        Reply::Error(
            "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
                .into()
        )
    );
    assert_eq!(admin.cmd(&["SCRIPT", "KILL"]), Reply::Simple("OK".into()));
    match looping.read() {
        Reply::Error(e) => assert!(
            e.starts_with("ERR Script killed by user with SCRIPT KILL..."),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(other.cmd(&["SET", "x", "1"]), Reply::Simple("OK".into()));
    assert_eq!(
        admin.cmd(&["SCRIPT", "KILL"]),
        Reply::Error("NOTBUSY No scripts in execution right now.".into())
    );
    // A script that wrote cannot be killed: SHUTDOWN NOSAVE stops the server, dropping it.
    let mut writer = Raw::connect(srv.addr);
    writer.send(&[
        "EVAL",
        "redis.call('set', 'partial', 1) while true do end",
        "0",
    ]);
    wait_for("a BUSY reply", Duration::from_secs(10), || {
        match other.cmd(&["PING"]) {
            Reply::Error(e) if e.starts_with("BUSY ") => Some(()),
            _ => None,
        }
    });
    match admin.cmd(&["SCRIPT", "KILL"]) {
        Reply::Error(e) => assert!(e.starts_with("UNKILLABLE "), "{e}"),
        other => panic!("{other:?}"),
    }
    match admin.cmd(&["SHUTDOWN"]) {
        Reply::Error(e) => assert!(e.starts_with("BUSY "), "{e}"),
        other => panic!("{other:?}"),
    }
    admin.send(&["SHUTDOWN", "NOSAVE"]);
    assert!(admin.read_to_end().is_empty());
    // The looping script's connection is closed without a reply.
    let _ = writer.read_to_end();
    std::mem::forget(srv); // already stopped
}

#[test]
fn the_sandbox_refuses_the_system_and_bounds_memory() {
    let srv = common::start_fresh();
    let mut c = Raw::connect(srv.addr);
    let err = |c: &mut Raw, script: &str| match c.cmd(&["EVAL", script, "0"]) {
        Reply::Error(e) => e,
        other => panic!("{script}: {other:?}"),
    };
    for (script, expect) in [
        (
            "return os.execute('true')",
            "nonexistent global variable 'os'",
        ),
        (
            "return io.open('/etc/passwd')",
            "nonexistent global variable 'io'",
        ),
        (
            "return require('os')",
            "nonexistent global variable 'require'",
        ),
        (
            "return dofile('/etc/passwd')",
            "nonexistent global variable 'dofile'",
        ),
        (
            "return debug.getinfo(1)",
            "nonexistent global variable 'debug'",
        ),
        (
            "setmetatable(_G, nil)",
            "Attempt to modify a readonly table",
        ),
        (
            "rawset(string, 'x', 1)",
            "Attempt to modify a readonly table",
        ),
        (
            "getmetatable('').__index.upper = nil",
            "Attempt to modify a readonly table",
        ),
        ("x = 1", "Attempt to modify a readonly table"),
        (
            "local function f() return 1 + f() end return f()",
            "stack overflow",
        ),
        ("return string.rep('x', 2^30)", "not enough memory"),
        (
            "local t = {} for i = 1, 1e9 do t[i] = i end",
            "not enough memory",
        ),
    ] {
        let e = err(&mut c, script);
        assert!(e.contains(expect), "{script}: {e}");
    }
    // Bytecode does not load.
    assert_eq!(
        c.cmd(&[
            "EVAL",
            "return loadstring(string.dump(function() return 1 end))",
            "0"
        ]),
        Reply::Nil
    );
    // The server is unaffected: scripts still run, string methods still work.
    assert_eq!(
        c.cmd(&["EVAL", "return ('abc'):upper()", "0"]),
        Reply::bulk("ABC")
    );
    assert_eq!(c.cmd(&["PING"]), Reply::Simple("PONG".into()));
}

/// A script stopped by the memory cap leaves its garbage behind; the VM collects it before the
/// next run, whose cap counts from what the VM holds (it used to climb with the garbage, run
/// after run, a cap's worth each time).
#[test]
fn scripts_stopped_by_the_memory_cap_leave_no_memory_behind() {
    let srv = common::start_fresh();
    let mut c = Raw::connect(srv.addr);
    let lua = |c: &mut Raw| common::info_field(c, "memory", "used_memory_lua");
    assert_eq!(c.cmd(&["EVAL", "return 1", "0"]), Reply::Int(1));
    let start = lua(&mut c);
    assert!(start > 0, "used_memory_lua is the VM's memory");
    let fill = "local t = {} for j = 1, 1e8 do t[j] = string.rep(j, 100) end";
    for run in 0..2 {
        match c.cmd(&["EVAL", fill, "0"]) {
            Reply::Error(e) => assert!(e.contains("not enough memory"), "run {run}: {e}"),
            other => panic!("run {run}: {other:?}"),
        }
        let after = lua(&mut c);
        assert!(
            after < start + (64 << 20),
            "run {run}: the VM holds {after} bytes, {start} at the start"
        );
    }
    assert_eq!(c.cmd(&["EVAL", "return 2", "0"]), Reply::Int(2));
}
