#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! INFO against redis-server 7.0: the same sections for the same arguments, every field Redis
//! reports present in the same order (caskdb adds a few of its own), and the values caskdb
//! measures (hits, misses, network bytes, changes since the last save, latencies, expired keys)
//! moving as they should.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::diff::start_redis;
use common::{Raw, Reply, wait_for};

fn text(r: Reply) -> String {
    match r {
        Reply::Bulk(b) => String::from_utf8(b).unwrap(),
        Reply::Verbatim(s) => s,
        other => panic!("INFO: {other:?}"),
    }
}

fn info(c: &mut Raw, args: &[&str]) -> String {
    let mut cmd = vec!["INFO"];
    cmd.extend_from_slice(args);
    text(c.cmd(&cmd))
}

/// Section titles, in order.
fn titles(info: &str) -> Vec<String> {
    info.lines()
        .filter(|l| l.starts_with("# "))
        .map(str::to_string)
        .collect()
}

/// Field names per section, in order, without the per-command, per-error and per-database ones.
fn fields(info: &str) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for line in info.lines() {
        if let Some(t) = line.strip_prefix("# ") {
            out.push((t.to_string(), Vec::new()));
        } else if let Some((name, _)) = line.split_once(':') {
            let dynamic = ["cmdstat_", "errorstat_", "latency_percentiles_usec_", "db"]
                .iter()
                .any(|p| name.starts_with(p))
                && name != "dump_payload_sanitizations";
            if !dynamic {
                out.last_mut().unwrap().1.push(name.to_string());
            }
        }
    }
    out
}

/// `field:value` pairs of an INFO text.
fn values(info: &str) -> HashMap<String, String> {
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn sections_and_fields_are_redis_s() {
    let Some(redis) = start_redis() else {
        return;
    };
    let cask = common::start_fresh();
    let mut r = Raw::connect(redis.addr);
    let mut c = Raw::connect(cask.addr);
    for client in [&mut r, &mut c] {
        client.cmd(&["SET", "k", "v"]);
        client.cmd(&["EXPIRE", "k", "100"]);
        client.cmd(&["GET", "nosuch"]);
        client.cmd(&["NOSUCHCOMMAND"]);
    }
    for args in [
        &[][..],
        &["default"],
        &["all"],
        &["everything"],
        &["server", "clients"],
        &["CPU", "keyspace"],
        &["commandstats"],
        &["latencystats"],
        &["nosuchsection"],
        &["default", "commandstats"],
    ] {
        assert_eq!(
            titles(&info(&mut c, args)),
            titles(&info(&mut r, args)),
            "sections of INFO {args:?}"
        );
    }
    assert_eq!(info(&mut c, &["nosuchsection"]), "");
    let theirs = fields(&info(&mut r, &["everything"]));
    let ours = fields(&info(&mut c, &["everything"]));
    assert_eq!(
        ours.iter().map(|(t, _)| t).collect::<Vec<_>>(),
        theirs.iter().map(|(t, _)| t).collect::<Vec<_>>()
    );
    for ((title, redis_fields), (_, our_fields)) in theirs.iter().zip(&ours) {
        // Redis's fields, in Redis's order (caskdb's own may come between or after).
        let ours_in_theirs: Vec<&String> = our_fields
            .iter()
            .filter(|f| redis_fields.contains(f))
            .collect();
        assert_eq!(
            ours_in_theirs,
            redis_fields.iter().collect::<Vec<_>>(),
            "fields of section {title}"
        );
    }
    let v = values(&info(&mut c, &["everything"]));
    assert!(
        v["db0"].starts_with("keys=1,expires=1,avg_ttl=9"),
        "{}",
        v["db0"]
    );
    assert_eq!(v["run_id"].len(), 40);
    assert!(v.contains_key("latency_percentiles_usec_set"));
    assert!(v["errorstat_ERR"].starts_with("count=1"));
}

#[test]
fn script_and_function_counts_are_redis_s() {
    let Some(redis) = start_redis() else {
        return;
    };
    let cask = common::start_fresh();
    let mut r = Raw::connect(redis.addr);
    let mut c = Raw::connect(cask.addr);
    let counts = |c: &mut Raw| {
        let v = values(&info(c, &["memory"]));
        [
            "number_of_cached_scripts",
            "number_of_functions",
            "number_of_libraries",
        ]
        .map(|k| v[k].clone())
    };
    let lib = "#!lua name=mylib\nredis.register_function('f1', function() return 1 end)\nredis.register_function('f2', function() return 2 end)";
    let steps: &[&[&str]] = &[
        &["EVAL", "return 1", "0"],
        &["EVAL", "return 1", "0"],
        &["EVAL", "return 2", "0"],
        &["SCRIPT", "LOAD", "return 3"],
        &["EVAL", "return +", "0"],
        &["FUNCTION", "LOAD", lib],
        &[
            "FUNCTION",
            "LOAD",
            "#!lua name=other\nredis.register_function('g', function() return 3 end)",
        ],
        &["FUNCTION", "DELETE", "other"],
        &["SCRIPT", "FLUSH"],
        &["FUNCTION", "FLUSH"],
    ];
    assert_eq!(counts(&mut r), counts(&mut c), "at the start");
    for step in steps {
        let (a, b) = (r.cmd(step), c.cmd(step));
        assert_eq!(
            std::mem::discriminant(&a),
            std::mem::discriminant(&b),
            "{step:?}: {a:?} / {b:?}"
        );
        assert_eq!(counts(&mut r), counts(&mut c), "after {step:?}");
    }
}

#[test]
fn counters_move() {
    let srv = common::start_fresh();
    let mut c = Raw::connect(srv.addr);
    let v = |c: &mut Raw| values(&info(c, &["everything"]));
    let before = v(&mut c);
    assert_eq!(before["rdb_changes_since_last_save"], "0");
    c.cmd(&["SET", "a", "1"]);
    c.cmd(&["RPUSH", "l", "x"]);
    c.cmd(&["GET", "a"]);
    c.cmd(&["GET", "missing"]);
    let after = v(&mut c);
    let n = |m: &HashMap<String, String>, k: &str| m[k].parse::<u64>().unwrap();
    assert_eq!(n(&after, "rdb_changes_since_last_save"), 2);
    assert_eq!(n(&after, "keyspace_hits") - n(&before, "keyspace_hits"), 1);
    assert_eq!(
        n(&after, "keyspace_misses") - n(&before, "keyspace_misses"),
        1
    );
    assert!(n(&after, "total_net_input_bytes") > n(&before, "total_net_input_bytes"));
    assert!(n(&after, "total_net_output_bytes") > n(&before, "total_net_output_bytes"));
    assert!(n(&after, "total_reads_processed") > n(&before, "total_reads_processed"));
    let p = &after["latency_percentiles_usec_set"];
    assert!(
        p.starts_with("p50=") && p.contains(",p99=") && p.contains(",p99.9="),
        "{p}"
    );
    c.cmd(&["SAVE"]);
    let saved = v(&mut c);
    assert_eq!(saved["rdb_changes_since_last_save"], "0");
    assert_eq!(saved["rdb_saves"], "1");
    // The rate sampler sees the commands sent meanwhile.
    wait_for(
        "instantaneous_ops_per_sec above 0",
        Duration::from_secs(10),
        || {
            c.cmd(&["PING"]);
            (v(&mut c)["instantaneous_ops_per_sec"] != "0").then_some(())
        },
    );
    // Expired keys are counted once the expiry task deletes them (it runs while `expired`
    // events are on).
    c.cmd(&["CONFIG", "SET", "notify-keyspace-events", "Ex"]);
    c.cmd(&["SET", "gone", "v", "PX", "1"]);
    wait_for(
        "expired_keys counts the key",
        Duration::from_secs(10),
        || (v(&mut c)["expired_keys"] == "1").then_some(()),
    );
    assert_eq!(c.cmd(&["CONFIG", "RESETSTAT"]), Reply::Simple("OK".into()));
    let reset = v(&mut c);
    assert_eq!(reset["keyspace_hits"], "0");
    assert_eq!(reset["expired_keys"], "0");
    assert!(!reset.contains_key("latency_percentiles_usec_set"));
}
