//! Differential tests for the collection types (hashes, lists, sets, sorted sets) and for the
//! generic key commands applied to them: the same command scripts go to a real `redis-server`
//! and to caskdb, and every pair of replies must match.
//!
//! Needs `redis-server` on the PATH (Debian's Redis 7.0 is the reference). Without it the tests
//! are skipped, except under CI, where they fail.
//!
//! Replies are compared exactly, except where Redis leaves something unspecified:
//! - set-like replies (SMEMBERS, SINTER, SUNION, SDIFF, HKEYS, HVALS) are compared as sorted
//!   multisets, and HGETALL as a sorted multiset of (field, value) pairs, since Redis's order
//!   depends on its hash table layout;
//! - random commands (SPOP, SRANDMEMBER, HRANDFIELD) are compared by reply shape and length,
//!   each side's elements checked against that side's own collection (see `Diff::random`);
//! - HSCAN/SSCAN/ZSCAN are iterated to completion and the sets of elements compared, since
//!   cursors and batching differ by design;
//! - TTLs after relative expiries are compared within a tolerance, and HINCRBYFLOAT results as
//!   numbers (Redis computes them in `long double`).
//!
//! Scores are compared exactly: Redis 7.0 prints them with `%.17g`.
//!
//! Not compared at all: OBJECT ENCODING and anything else about Redis's internal encodings
//! (listpack, intset, quicklist...), which caskdb has no reason to imitate. Some scripts still
//! build collections large enough to make Redis switch encodings, so that both of Redis's
//! code paths are the reference.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::diff::{Diff, differential};

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Runs `script` once for each key of `keys`, every `$` replaced by the key.
fn against(d: &mut Diff, keys: &[&str], script: &str) {
    for key in keys {
        d.run(&script.replace('$', key));
    }
}

/// One key of every type: "str", "hash", "list", "set" and "zset".
const ALL_TYPES: &str = r"
    SET str text
    HSET hash f v
    RPUSH list a b
    SADD set m
    ZADD zset 1 m
";

/// String commands, all of which must fail with WRONGTYPE on a collection key `$` (SET
/// itself overwrites, MGET answers nil: those are checked separately).
const STRING_CMDS: &str = r"
    GET $
    INCR $
    DECR $
    INCRBY $ 2
    DECRBY $ 2
    INCRBYFLOAT $ 1.5
    APPEND $ x
    STRLEN $
    GETRANGE $ 0 -1
    SUBSTR $ 0 -1
    SETRANGE $ 0 x
    GETSET $ x
    GETDEL $
    GETEX $ PERSIST
    SET $ x GET
    SET $ x NX GET
";

/// The checks every HSCAN/SSCAN/ZSCAN (`cmd`) goes through, once the caller has put 250
/// elements named `{prefix}{i}` in `big` and a few in `small`: scans of `big` with each option
/// (then the `extra` script lines of the type's own), and argument errors on `small`.
fn scan_checks(d: &mut Diff, cmd: &str, ty: &str, prefix: &str, extra: &str) {
    d.run(&format!(
        r"
        scan: {cmd} big
        scan: {cmd} big COUNT 5
        scan: {cmd} big MATCH {prefix}1*
        scan: {cmd} big MATCH {prefix}1? COUNT 3
        scan: {cmd} big match *9 count 1000
        scan: {cmd} big MATCH nomatch
        scan: {cmd} big COUNT 1
        {extra}
        {cmd} small 0 COUNT 0
        {cmd} small 0 COUNT -1
        {cmd} small 0 COUNT x
        {cmd} small 0 MATCH
        {cmd} small 0 FOO bar
        // TYPE is an option of SCAN only.
        {cmd} small 0 TYPE {ty}
        {cmd} small x
        {cmd} small
        {cmd}
        "
    ));
}

/// A value type: its TYPE name, and script lines (at key `$`) that create a value, add to it,
/// and read it whole in the way suited to the type.
struct Kind {
    name: &'static str,
    create: &'static str,
    add: &'static str,
    view: &'static str,
}

const KINDS: &[Kind] = &[
    Kind {
        name: "string",
        create: "SET $ v",
        add: "APPEND $ w",
        view: "GET $",
    },
    Kind {
        name: "hash",
        create: "HSET $ f1 v1 f2 v2",
        add: "HSET $ f3 v3",
        view: "pairs: HGETALL $",
    },
    Kind {
        name: "list",
        create: "RPUSH $ a b c",
        add: "RPUSH $ d",
        view: "LRANGE $ 0 -1",
    },
    Kind {
        name: "set",
        create: "SADD $ a b c",
        add: "SADD $ d",
        view: "unordered: SMEMBERS $",
    },
    Kind {
        name: "zset",
        create: "ZADD $ 1 a 2 b",
        add: "ZADD $ 3 c",
        view: "ZRANGE $ 0 -1 WITHSCORES",
    },
];

/// Runs `script` with its lines `create KEY`, `add KEY` and `view KEY` standing for those of
/// `kind` at KEY, and `other-add KEY` and `other-view KEY` for those of `other`.
fn run_kind(d: &mut Diff, kind: &Kind, other: &Kind, script: &str) {
    let mut expanded = String::new();
    for line in script.lines().map(str::trim) {
        let (word, key) = line.split_once(' ').unwrap_or((line, ""));
        let template = match word {
            "create" => kind.create,
            "add" => kind.add,
            "view" => kind.view,
            "other-add" => other.add,
            "other-view" => other.view,
            _ => "",
        };
        if template.is_empty() {
            expanded.push_str(line);
        } else {
            expanded.push_str(&template.replace('$', key));
        }
        expanded.push('\n');
    }
    d.run(&expanded);
}

// ---------------------------------------------------------------------------------------------
// Hashes.

#[test]
fn hashes() {
    differential(|d| {
        d.script("hset/hget/hmset/hmget/hlen/hexists/hstrlen");
        let long = "x".repeat(10_000);
        d.run(&format!(
            r#"
            HSET h f1 v1
            HSET h f1 v2 f2 v2
            HSET h f2 v2
            HSET h f3 a f3 b
            HGET h f3
            HGET h f1
            HGET h nofield
            HGET nokey f1
            HSET h "" ""
            HGET h ""
            HSET h long {long}
            HGET h long
            HSTRLEN h long
            HSET h f1
            HSET h
            HSET
            HSET h a 1 b
            HGET h
            HGET h a b
            hset h Case 1
            HGET h case
            hget h Case
            HMSET h m1 1 m2 2
            HMSET h m1
            HMSET h m1 1 m2
            HMSET h
            HMGET h m1 nofield "" m2 m1
            HMGET nokey a b
            HMGET h m1
            HMGET h
            HMGET
            HLEN h
            HLEN nokey
            HLEN
            HLEN h x
            HEXISTS h f1
            HEXISTS h nofield
            HEXISTS nokey f1
            HEXISTS h ""
            HEXISTS h
            HEXISTS h a b
            HSTRLEN h f1
            HSTRLEN h ""
            HSTRLEN h nofield
            HSTRLEN nokey f
            HSTRLEN h
            HSTRLEN h a b
            HSET h int -12345
            HSTRLEN h int
            HGET h int
            HSET h bigint 99999999999999999999
            HSTRLEN h bigint
            HSET h f1 overwritten
            HGET h f1
            HLEN h
            TYPE h
            "#
        ));

        d.script("hsetnx");
        d.run(
            r#"
            HSET h f1 v1 "" e
            HSETNX h f1 x
            HGET h f1
            HSETNX h new x
            HGET h new
            HSETNX h "" x
            HGET h ""
            HSETNX h2 f v
            EXISTS h2
            TYPE h2
            HGET h2 f
            HSETNX h f
            HSETNX h f v x
            HSETNX h
            HLEN h
            "#,
        );

        d.script("hgetall/hkeys/hvals");
        d.run(
            r#"
            HSET h a 1 b 2 c 1 "" "" d "long value"
            pairs: HGETALL h
            unordered: HKEYS h
            unordered: HVALS h
            HGETALL nokey
            HKEYS nokey
            HVALS nokey
            HGETALL
            HGETALL h x
            HKEYS
            HKEYS h x
            HVALS
            HVALS h x
            // A single field: deterministic order.
            HSET one f v
            HGETALL one
            HKEYS one
            HVALS one
            "#,
        );
        // Large enough for Redis to convert it to a hash table; one long value too.
        for i in 0..300 {
            let (f, v) = (format!("field:{i}"), format!("value:{}", i % 7));
            d.eq(&["HSET", "big", &f, &v]);
        }
        d.eq(&["HSET", "big", "longvalue", &"y".repeat(100)]);
        d.run(
            r"
            HLEN big
            HGET big field:123
            HMGET big field:0 field:299 field:300
            pairs: HGETALL big
            unordered: HKEYS big
            unordered: HVALS big
            ",
        );

        d.script("hdel, and a hash emptied by removal disappears");
        d.run(
            r"
            HSET h a 1 b 2 c 3
            HDEL h a nofield
            HDEL h a
            HDEL h b b
            HDEL nokey a
            HDEL h
            HDEL
            HLEN h
            HGETALL h
            HDEL h c
            EXISTS h
            TYPE h
            HLEN h
            HGETALL h
            HGET h c
            DBSIZE
            // Re-created: none of the old fields come back.
            HSET h z 1
            HGETALL h
            HDEL h z nofield
            EXISTS h
            HSET h a 1 b 2
            HDEL h a b c
            EXISTS h
            KEYS *
            ",
        );

        d.script("binary and empty fields and values");
        d.run(
            r#"
            HSET bin "\x00\r\n" "\xff\x00" "\xff" "" "" "\x00"
            HGET bin "\x00\r\n"
            HGET bin "\xff"
            HGET bin "\x00\r"
            HSTRLEN bin "\x00\r\n"
            HEXISTS bin "\xff"
            HMGET bin "\xff" "" "\xfe"
            HSETNX bin "\xff" x
            pairs: HGETALL bin
            HDEL bin "\xff" "\xfe"
            HSET "\xff\x00key" f v
            HGETALL "\xff\x00key"
            TYPE "\xff\x00key"
            HSET "" "" ""
            HGETALL ""
            TYPE ""
            HLEN bin
            "#,
        );

        d.script("hincrby");
        d.run(
            r#"
            HINCRBY h c 5
            HINCRBY h c -3
            HGET h c
            HINCRBY new c 1
            TYPE new
            HINCRBY h c 0
            HINCRBY h c abc
            HINCRBY h c 1.5
            HINCRBY h c ""
            HINCRBY h c " 1"
            HINCRBY h c +1
            HINCRBY h c -0
            HINCRBY h c 01
            HINCRBY h c 9223372036854775808
            HINCRBY h c -9223372036854775809
            HSET h str abc float 1.5 lead0 010 space " 1" e ""
            HINCRBY h str 1
            HINCRBY h float 1
            HINCRBY h lead0 1
            HINCRBY h space 1
            HINCRBY h e 1
            HSET h big 9223372036854775807 small -9223372036854775808
            HINCRBY h big 1
            HINCRBY h big 0
            HINCRBY h big -1
            HINCRBY h small -1
            HINCRBY h small 9223372036854775807
            HINCRBY h zero -9223372036854775808
            HINCRBY h zero -1
            HGET h zero
            HINCRBY h c
            HINCRBY h c 1 2
            HINCRBY h
            HINCRBY h "" 7
            HGET h ""
            "#,
        );

        d.script("hincrbyfloat");
        d.run(
            r#"
            float: HINCRBYFLOAT h f 1.5
            float: HINCRBYFLOAT h f 0.1
            float: HGET h f
            float: HINCRBYFLOAT h f -1.6
            float: HINCRBYFLOAT h n 10
            float: HINCRBYFLOAT h n 5e3
            float: HINCRBYFLOAT h n -5010
            float: HINCRBYFLOAT h n 1e-5
            float: HINCRBYFLOAT new f 3.0
            HGET h n
            TYPE new
            HSET h i 3 e 1.5e3 str abc sp " 1" empty ""
            HINCRBYFLOAT h i 2
            HINCRBYFLOAT h i 0.5
            HINCRBYFLOAT h e 0
            HINCRBYFLOAT h str 1
            HINCRBYFLOAT h sp 1
            HINCRBYFLOAT h empty 1
            HINCRBYFLOAT h i abc
            HINCRBYFLOAT h i ""
            HINCRBYFLOAT h i nan
            HINCRBYFLOAT h i inf
            HINCRBYFLOAT h i -inf
            HINCRBYFLOAT h i 1.5x
            HINCRBYFLOAT h i
            HINCRBYFLOAT h i 1 2
            HGET h i
            // HINCRBY on a float result.
            HINCRBY h i 1
            "#,
        );

        d.script("hrandfield");
        d.run(
            r#"
            HRANDFIELD nokey
            HRANDFIELD nokey 3
            HRANDFIELD nokey -3
            HRANDFIELD nokey 3 WITHVALUES
            HRANDFIELD nokey 0
            HSET h a 1 b 2 c 3 d 1 "" e
            "#,
        );
        d.run(
            r"
            random: HRANDFIELD h
            random: HRANDFIELD h 1
            random: HRANDFIELD h 2
            random: HRANDFIELD h 5
            random: HRANDFIELD h 10
            random: HRANDFIELD h -1
            random: HRANDFIELD h -3
            random: HRANDFIELD h -20
            random: HRANDFIELD h 2 WITHVALUES
            random: HRANDFIELD h 10 withvalues
            random: HRANDFIELD h -8 WITHVALUES
            random: HRANDFIELD h 0
            random: HRANDFIELD h 0 WITHVALUES
            ",
        );
        d.run(
            r"
            HRANDFIELD h x
            HRANDFIELD h 1.5
            HRANDFIELD h 1 FOO
            HRANDFIELD h 1 WITHVALUES x
            HRANDFIELD h -9223372036854775808
            HRANDFIELD h -9223372036854775808 WITHVALUES
            HRANDFIELD h 4611686018427387904 WITHVALUES
            HRANDFIELD h -4611686018427387904 WITHVALUES
            random: HRANDFIELD h 4611686018427387903 WITHVALUES
            HRANDFIELD
            HSET one f v
            HRANDFIELD one
            HRANDFIELD one 1 WITHVALUES
            HRANDFIELD one -2 WITHVALUES
            HLEN h
            ",
        );
        // A large hash (a hash table in Redis).
        for i in 0..200 {
            d.eq(&["HSET", "big", &format!("f{i}"), &format!("{i}")]);
        }
        d.run(
            r"
            random: HRANDFIELD big
            random: HRANDFIELD big 5
            random: HRANDFIELD big 150 WITHVALUES
            random: HRANDFIELD big 300
            random: HRANDFIELD big -300 WITHVALUES
            ",
        );

        d.script("hscan");
        d.run(
            r#"
            HSCAN nokey 0
            HSET small a 1 b 2 "" e
            scan: HSCAN small
            scan: HSCAN small MATCH a*
            scan: HSCAN nokey
            "#,
        );
        for i in 0..250 {
            d.eq(&["HSET", "big", &format!("f{i}"), &format!("v{i}")]);
        }
        scan_checks(d, "HSCAN", "hash", "f", "scan: HSCAN big MATCH v*");

        d.script("hash commands against other types");
        d.run(ALL_TYPES);
        against(
            d,
            &["str", "list", "set", "zset"],
            r"
            HSET $ f v
            HMSET $ f v
            HSETNX $ f v
            HGET $ f
            HMGET $ f g
            HDEL $ f
            HLEN $
            HEXISTS $ f
            HGETALL $
            HKEYS $
            HVALS $
            HINCRBY $ f 1
            HINCRBYFLOAT $ f 1
            HSTRLEN $ f
            HRANDFIELD $
            HRANDFIELD $ 2 WITHVALUES
            HSCAN $ 0
            // Arity errors come before type errors.
            HSET $ f
            HGET $
            // Argument errors come after type errors.
            HINCRBY $ f x
            ",
        );
        against(d, &["hash"], STRING_CMDS);
        d.run(
            r#"
            MGET hash str nokey
            SETNX hash x
            SET hash x NX
            MSETNX hash x new y
            EXISTS new
            HGETALL hash
            TYPE hash
            SET hash "now a string"
            TYPE hash
            GET hash
            HGET hash f
            HSET hash2 f v
            MSET hash2 s
            GET hash2
            HSET hash3 f v
            SET hash3 s XX GET
            GETDEL hash3
            "#,
        );

        d.script("hashes in transactions");
        d.run(ALL_TYPES);
        d.run(
            r"
            MULTI
            HSET t a 1 b 2
            HINCRBY t a 5
            HGET t a
            HLEN t
            HDEL t b
            HEXISTS t b
            HMGET t a b
            HGETALL t
            GET t
            HSET str f v
            HSETNX t a x
            HSTRLEN t a
            HDEL t a
            EXISTS t
            HSET t z 26
            HKEYS t
            EXEC
            HGETALL t
            // A queue-time error discards everything.
            MULTI
            HSET t q 1
            HSET t q
            EXEC
            HEXISTS t q
            ",
        );

        d.script("watch: hash writes");
        d.eq(&["HSET", "w", "a", "1"]);
        d.watch_writes(
            "w",
            &[
                ("HSET w b 2", "HGET w b"),
                // A write that changes nothing does not touch the key.
                ("HDEL w nofield", "HGET w a"),
                ("HSETNX w a x", "HGET w a"),
            ],
        );
        // Deleting the last field deletes the key, which touches it.
        d.eq(&["HSET", "w2", "f", "v"]);
        d.watch_writes("w2", &[("HDEL w2 f", "EXISTS w2")]);
    });
}

// ---------------------------------------------------------------------------------------------
// Lists.

#[test]
fn lists() {
    differential(|d| {
        d.script("push/pushx/llen");
        d.run(
            r#"
            LPUSH l a b c
            RPUSH l d e
            LRANGE l 0 -1
            LPUSH l a
            RPUSH l "" a
            LRANGE l 0 -1
            LPUSH l
            RPUSH l
            LPUSH
            LPUSHX nokey a
            RPUSHX nokey a b
            EXISTS nokey
            LPUSHX l x y
            RPUSHX l z
            LPUSHX l
            RPUSHX l
            LRANGE l 0 -1
            LLEN l
            LLEN nokey
            LLEN
            LLEN l x
            TYPE l
            lpush l2 x
            rpush l2 y
            LRANGE l2 0 -1
            "#,
        );

        d.script("lindex/lrange indexes");
        d.run("RPUSH l a b c d e f g h");
        d.run(
            r#"
            LINDEX l 0
            LINDEX l 1
            LINDEX l 7
            LINDEX l 8
            LINDEX l 100
            LINDEX l -1
            LINDEX l -8
            LINDEX l -9
            LINDEX l -100
            LINDEX l 9223372036854775807
            LINDEX l -9223372036854775808
            LINDEX l 9223372036854775808
            LINDEX l x
            LINDEX l 1.5
            LINDEX l ""
            LINDEX l " 1"
            LINDEX l +1
            LINDEX l -0
            LINDEX l 01
            "#,
        );
        d.run(
            r"
            LINDEX nokey 0
            LINDEX nokey x
            LINDEX l
            LINDEX l 0 1
            ",
        );
        d.run(
            r#"
            LRANGE l 0 0
            LRANGE l 0 -1
            LRANGE l -3 -1
            LRANGE l 2 1
            LRANGE l 1 1
            LRANGE l -100 100
            LRANGE l 5 100
            LRANGE l 7 7
            LRANGE l 8 8
            LRANGE l 100 200
            LRANGE l -100 -50
            LRANGE l -100 -8
            LRANGE l -100 -9
            LRANGE l 0 -100
            LRANGE l -1 0
            LRANGE l -1 -2
            LRANGE l 3 -3
            LRANGE l -9223372036854775808 9223372036854775807
            LRANGE l x 1
            LRANGE l 1 y
            LRANGE l 1.0 2
            LRANGE l "" 2
            "#,
        );
        d.run(
            r"
            LRANGE nokey 0 -1
            LRANGE nokey x y
            LRANGE l 0
            LRANGE l 0 1 2
            LRANGE
            ",
        );
        // A long list (a quicklist of several nodes in Redis).
        for i in 0..50 {
            let batch: Vec<String> = (0..20).map(|j| format!("item{}", i * 20 + j)).collect();
            let mut args = vec!["RPUSH", "long"];
            args.extend(batch.iter().map(String::as_str));
            d.eq(&args);
        }
        d.run(
            r"
            LLEN long
            LINDEX long 500
            LINDEX long -500
            LINDEX long 999
            LRANGE long 495 505
            LRANGE long -3 -1
            LSET long 600 changed
            LRANGE long 599 601
            LREM long 0 changed
            LTRIM long 100 -100
            LLEN long
            LRANGE long 0 2
            LINSERT long BEFORE item500 new
            LRANGE long 398 402
            LPOS long new
            ",
        );

        d.script("lset");
        let z = "z".repeat(5000);
        d.run(&format!(
            r#"
            RPUSH l a b c
            LSET l 0 first
            LSET l -1 last
            LSET l 1 ""
            LRANGE l 0 -1
            LSET l 3 x
            LSET l 100 x
            LSET l -4 x
            LSET l -100 x
            LSET nokey 0 x
            LSET nokey x x
            EXISTS nokey
            LSET l x v
            LSET l 1.0 v
            LSET l 0
            LSET l 0 a b
            LSET
            LSET l -3 {z}
            LINDEX l 0
            LRANGE l 1 -1
            "#
        ));

        d.script("lpop/rpop with and without count");
        d.run(
            r"
            RPUSH l a b c d e f g
            LPOP l
            RPOP l
            LPOP l 2
            RPOP l 1
            LRANGE l 0 -1
            LPOP l 0
            RPOP l 0
            LPOP l -1
            RPOP l -1
            LPOP l x
            LPOP l 1.5
            LPOP l 1 2
            RPOP
            LPOP nokey
            RPOP nokey
            LPOP nokey 2
            RPOP nokey 0
            LPOP nokey -1
            LLEN l
            RPOP l 100
            EXISTS l
            TYPE l
            LPOP l
            RPUSH l only
            LPOP l
            EXISTS l
            RPUSH l x y
            RPOP l 2
            EXISTS l
            RPUSH l 1 2 3
            LPOP l 9223372036854775807
            EXISTS l
            ",
        );

        d.script("lrem");
        d.run(
            r#"
            RPUSH l a b a c a b a
            LREM l 2 a
            LRANGE l 0 -1
            LREM l -1 b
            LRANGE l 0 -1
            LREM l 0 nomatch
            LREM l 0 a
            LRANGE l 0 -1
            LREM l 100 b
            LREM l -100 c
            EXISTS l
            LREM nokey 0 a
            RPUSH l x x "" x
            LREM l x a
            LREM l 1.5 a
            LREM l 0
            LREM l 0 a b
            LREM l 1 ""
            LREM l -2 x
            LRANGE l 0 -1
            LREM l 0 x
            EXISTS l
            TYPE l
            "#,
        );

        d.script("ltrim");
        d.run(
            r"
            RPUSH l 0 1 2 3 4 5 6 7 8 9
            LTRIM l 1 -2
            LRANGE l 0 -1
            LTRIM l -100 100
            LRANGE l 0 -1
            LTRIM l -3 -1
            LRANGE l 0 -1
            LTRIM l 0 0
            LRANGE l 0 -1
            LTRIM l 5 2
            EXISTS l
            TYPE l
            RPUSH l a b c
            LTRIM l 100 200
            EXISTS l
            RPUSH l a b c
            LTRIM l -100 -50
            EXISTS l
            RPUSH l a b c
            LTRIM l 0 -100
            EXISTS l
            LTRIM nokey 0 1
            EXISTS nokey
            RPUSH l a b c
            LTRIM l x 1
            LTRIM l 0 y
            LTRIM l 0
            LTRIM l 0 1 2
            LTRIM l 1 9223372036854775807
            LRANGE l 0 -1
            ",
        );

        d.script("linsert");
        d.run(
            r#"
            RPUSH l a b a c
            LINSERT l BEFORE a x
            LINSERT l AFTER a y
            LRANGE l 0 -1
            LINSERT l before c z
            LINSERT l after c end
            LINSERT l AFTER nopivot q
            LINSERT l BEFORE "" q
            LRANGE l 0 -1
            LINSERT nokey BEFORE a x
            EXISTS nokey
            LINSERT l MIDDLE a x
            LINSERT nokey MIDDLE a x
            LINSERT l BEFORE a
            LINSERT l BEFORE a x y
            LINSERT
            RPUSH l ""
            LINSERT l AFTER "" ""
            LRANGE l -3 -1
            LLEN l
            "#,
        );

        d.script("lpos");
        d.run(r#"RPUSH l a b c 1 2 3 c c """#);
        d.run(
            r"
            LPOS l c
            LPOS l c RANK 1
            LPOS l c RANK 2
            LPOS l c RANK 3
            LPOS l c RANK 4
            LPOS l c RANK -1
            LPOS l c RANK -2
            LPOS l c RANK -3
            LPOS l c RANK -4
            LPOS l c RANK 0
            LPOS l c RANK x
            LPOS l c RANK 9223372036854775807
            LPOS l c RANK -9223372036854775807
            LPOS l c COUNT 0
            LPOS l c COUNT 1
            LPOS l c COUNT 2
            LPOS l c COUNT 100
            LPOS l c COUNT -1
            LPOS l c COUNT x
            LPOS l c MAXLEN 0
            LPOS l c MAXLEN 2
            LPOS l c MAXLEN 3
            LPOS l c MAXLEN 7
            LPOS l c MAXLEN -1
            LPOS l c MAXLEN x
            LPOS l c COUNT 0 MAXLEN 3
            LPOS l c COUNT 0 MAXLEN 7
            LPOS l c COUNT 0 MAXLEN 2
            LPOS l c RANK -1 MAXLEN 2
            LPOS l c RANK -1 MAXLEN 3
            LPOS l c RANK -1 COUNT 0
            LPOS l c RANK -2 COUNT 0
            LPOS l c RANK 2 COUNT 5
            LPOS l c RANK 5 COUNT 0
            LPOS l c RANK 5
            LPOS l c rank 2 count 1 maxlen 8
            LPOS l c RANK 1 RANK 2
            LPOS l c COUNT 1 COUNT 0
            LPOS l c RANK
            LPOS l c COUNT
            LPOS l c MAXLEN
            LPOS l c FOO
            LPOS l c FOO 1
            LPOS l c RANK 1 FOO
            ",
        );
        d.run(
            r#"
            LPOS l a
            LPOS l ""
            LPOS l 3
            LPOS l nomatch
            LPOS l nomatch COUNT 0
            LPOS l nomatch RANK -1
            LPOS nokey a
            LPOS nokey a COUNT 0
            LPOS nokey a RANK 0
            LPOS nokey a FOO
            LPOS l
            LPOS
            "#,
        );

        d.script("lmove/rpoplpush");
        let rotations: &[(&str, &str)] = &[
            ("LEFT", "LEFT"),
            ("LEFT", "RIGHT"),
            ("RIGHT", "LEFT"),
            ("RIGHT", "RIGHT"),
        ];
        for (from, to) in rotations {
            d.run(&format!(
                r"
                DEL src dst
                RPUSH src a b c
                RPUSH dst x y
                LMOVE src dst {from} {to}
                LRANGE src 0 -1
                LRANGE dst 0 -1
                // The same list as source and destination.
                LMOVE src src {from} {to}
                LRANGE src 0 -1
                // A new destination.
                LMOVE src new {from} {to}
                LRANGE new 0 -1
                DEL new
                // The last element: the source disappears.
                LMOVE src dst {from} {to}
                LLEN src
                LMOVE src dst {from} {to}
                EXISTS src
                LRANGE dst 0 -1
                LMOVE src dst {from} {to}
                LRANGE dst 0 -1
                // One element, moved onto itself.
                RPUSH one only
                LMOVE one one {from} {to}
                LRANGE one 0 -1
                DEL one
                "
            ));
        }
        d.run(
            r"
            DEL src dst
            LMOVE nokey dst LEFT LEFT
            EXISTS dst
            LMOVE nokey nokey LEFT RIGHT
            EXISTS nokey
            RPUSH src a b
            lmove src dst left right
            LMOVE src dst UP LEFT
            LMOVE src dst LEFT DOWN
            LMOVE nokey dst UP LEFT
            LMOVE src dst LEFT
            LMOVE src dst LEFT LEFT LEFT
            LRANGE src 0 -1
            LRANGE dst 0 -1
            SET str x
            LMOVE src str LEFT LEFT
            LRANGE src 0 -1
            LMOVE str dst LEFT LEFT
            LMOVE nokey str LEFT LEFT
            GET str
            // RPOPLPUSH is LMOVE RIGHT LEFT.
            DEL src dst
            RPUSH src a b c
            RPOPLPUSH src dst
            RPOPLPUSH src dst
            LRANGE src 0 -1
            LRANGE dst 0 -1
            RPOPLPUSH dst dst
            LRANGE dst 0 -1
            RPOPLPUSH src src
            RPOPLPUSH src dst
            EXISTS src
            RPOPLPUSH src dst
            RPOPLPUSH nokey nokey
            RPOPLPUSH dst str
            RPOPLPUSH str dst
            RPOPLPUSH dst
            RPOPLPUSH a b c
            LRANGE dst 0 -1
            ",
        );

        d.script("binary and empty elements");
        d.run(
            r#"
            RPUSH bin "\x00" "\xff" "" "\r\n" "\xff"
            LRANGE bin 0 -1
            LPOS bin ""
            LPOS bin "\xff" RANK -1
            LPOS bin "\x00"
            LREM bin 0 "\xff"
            LINSERT bin BEFORE "" "\x00\x01"
            LSET bin 0 "\xfe"
            LRANGE bin 0 -1
            RPUSH "\xff\x00key" v
            LRANGE "\xff\x00key" 0 -1
            LMOVE "\xff\x00key" "" LEFT RIGHT
            LRANGE "" 0 -1
            TYPE ""
            "#,
        );

        d.script("list commands against other types");
        d.run(ALL_TYPES);
        against(
            d,
            &["str", "hash", "set", "zset"],
            r"
            LPUSH $ a
            RPUSH $ a
            LPUSHX $ a
            RPUSHX $ a
            LPOP $
            RPOP $ 2
            LLEN $
            LINDEX $ 0
            LRANGE $ 0 -1
            LSET $ 0 x
            LREM $ 0 a
            LTRIM $ 0 1
            LINSERT $ BEFORE a b
            LPOS $ a
            LMOVE $ list LEFT LEFT
            LMOVE list $ LEFT LEFT
            RPOPLPUSH $ list
            RPOPLPUSH list $
            LRANGE list 0 -1
            // Arity errors before type errors; argument errors after.
            LSET $ 0
            LINDEX $ x
            LPOP $ -1
            LPOS $ a RANK 0
            ",
        );
        against(d, &["list"], STRING_CMDS);
        d.run(
            r"
            MGET list str
            SETNX list x
            SET list x
            TYPE list
            LLEN list
            ",
        );

        d.script("lists in transactions");
        d.run(ALL_TYPES);
        d.run(
            r"
            MULTI
            RPUSH t a b c
            LRANGE t 0 -1
            LPOP t
            LLEN t
            LINDEX t 0
            LSET t 0 z
            LRANGE t 0 -1
            LSET t 9 z
            LMOVE t u LEFT RIGHT
            LRANGE u 0 -1
            RPOP t 5
            EXISTS t
            LPUSH str x
            GET u
            LPUSHX t x
            RPUSHX u y
            LRANGE u 0 -1
            EXEC
            LRANGE u 0 -1
            EXISTS t
            ",
        );

        d.script("watch: list writes");
        d.eq(&["RPUSH", "w", "a"]);
        d.watch_writes(
            "w",
            &[
                ("RPUSH w b", "LLEN w"),
                ("LREM w 0 nomatch", "LLEN w"),
                ("LINSERT w BEFORE nomatch x", "LLEN w"),
            ],
        );
        d.watch_writes("nokey", &[("LPUSHX nokey x", "LLEN nokey")]);
        d.watch_writes("w", &[("LSET w 0 a", "LLEN w"), ("LPOP w 2", "EXISTS w")]);
    });
}

// ---------------------------------------------------------------------------------------------
// Sets.

#[test]
fn sets() {
    differential(|d| {
        d.script("sadd/srem/sismember/smismember/scard");
        d.run(
            r#"
            SADD s a b c
            SADD s a d
            SADD s e e e
            SADD s ""
            SADD s
            SADD
            SCARD s
            SCARD nokey
            SCARD
            SCARD s x
            SISMEMBER s b
            SISMEMBER s nomember
            SISMEMBER s ""
            SISMEMBER nokey b
            SISMEMBER s
            SISMEMBER s a b
            SMISMEMBER s b nomember "" b
            SMISMEMBER s a
            SMISMEMBER nokey a b
            SMISMEMBER s
            SMISMEMBER
            SREM s a nomember
            SREM s a
            SREM s b b
            SREM nokey a
            SREM s
            SREM
            SCARD s
            TYPE s
            sadd s A
            SISMEMBER s a
            SISMEMBER s A
            unordered: SMEMBERS s
            SMEMBERS nokey
            SMEMBERS
            SMEMBERS s x
            SADD one x
            SMEMBERS one
            "#,
        );

        d.script("integer members");
        d.run(
            r#"
            SADD n 1 2 3 -1 0 10 9223372036854775807
            SADD n -9223372036854775808 01 1.0 +1 " 1" -0
            SCARD n
            SISMEMBER n 1
            SISMEMBER n 01
            SISMEMBER n 1.0
            SMISMEMBER n -0 0 +1 " 1"
            SREM n 01 1
            SISMEMBER n 1
            SISMEMBER n 01
            unordered: SMEMBERS n
            "#,
        );

        d.script("a set emptied by removal disappears");
        d.run(
            r"
            SADD s a b
            SREM s a b c
            EXISTS s
            TYPE s
            SCARD s
            SMEMBERS s
            SADD s z
            SMEMBERS s
            SREM s z
            EXISTS s
            DBSIZE
            ",
        );

        d.script("binary and empty members");
        d.run(
            r#"
            SADD bin "\x00" "\xff" "" "\r\n" "\xff"
            // Repeated members in one call, one kind at a time.
            SADD rep1 "\xff" "\xff"
            SADD rep2 "" ""
            SADD rep3 "\x00" "\x00"
            SADD rep4 x "" x
            SADD rep5 x y x z y
            SADD rep6 1 2 1
            SADD rep6 3 a 3
            SISMEMBER bin "\xff"
            SMISMEMBER bin "\x00" "\xfe" ""
            unordered: SMEMBERS bin
            SREM bin "\xff" "\xfe"
            unordered: SMEMBERS bin
            SADD "\xff\x00key" v
            SMEMBERS "\xff\x00key"
            SMOVE "\xff\x00key" "" v
            SMEMBERS ""
            TYPE ""
            "#,
        );

        d.script("spop");
        d.run(
            r#"
            SPOP nokey
            SPOP nokey 3
            SPOP nokey 0
            SPOP nokey -1
            SADD s a b c d e f g h i j ""
            "#,
        );
        d.run(
            r"
            random: SPOP s
            random: SPOP s 1
            random: SPOP s 3
            random: SPOP s 0
            ",
        );
        d.run(
            r"
            SPOP s -1
            SPOP s x
            SPOP s 1.5
            SPOP s 1 2
            SPOP
            SCARD s
            random: SPOP s 100
            EXISTS s
            TYPE s
            SPOP s
            SADD s only
            random: SPOP s
            EXISTS s
            // Integers, and a large set (different encodings in Redis).
            SADD ints 1 2 3 4 5 6 7 8
            random: SPOP ints 3
            random: SPOP ints
            ",
        );
        for i in 0..300 {
            d.eq(&["SADD", "big", &format!("m{i}")]);
        }
        d.run(
            r"
            random: SPOP big 10
            random: SPOP big 250
            random: SPOP big
            random: SPOP big 39
            EXISTS big
            ",
        );

        d.script("srandmember");
        d.run(
            r#"
            SRANDMEMBER nokey
            SRANDMEMBER nokey 3
            SRANDMEMBER nokey -3
            SRANDMEMBER nokey 0
            SADD s a b c d e ""
            "#,
        );
        d.run(
            r"
            random: SRANDMEMBER s
            random: SRANDMEMBER s 1
            random: SRANDMEMBER s 3
            random: SRANDMEMBER s 6
            random: SRANDMEMBER s 100
            random: SRANDMEMBER s -1
            random: SRANDMEMBER s -5
            random: SRANDMEMBER s -100
            random: SRANDMEMBER s 0
            ",
        );
        d.run(
            r"
            SRANDMEMBER s x
            SRANDMEMBER s 1 2
            SRANDMEMBER s -9223372036854775808
            SRANDMEMBER
            SCARD s
            SADD one x
            SRANDMEMBER one
            SRANDMEMBER one -3
            ",
        );
        for i in 0..300 {
            d.eq(&["SADD", "big", &i.to_string()]);
        }
        d.run(
            r"
            random: SRANDMEMBER big
            random: SRANDMEMBER big 20
            random: SRANDMEMBER big 280
            random: SRANDMEMBER big 500
            random: SRANDMEMBER big -500
            ",
        );

        d.script("sinter/sunion/sdiff");
        d.run(
            r"
            SADD s1 a b c d 1
            SADD s2 c d e 1
            SADD s3 a c e f 2
            SADD empty x
            SREM empty x
            ",
        );
        for cmd in ["SINTER", "SUNION", "SDIFF"] {
            d.run(&format!(
                r"
                unordered: {cmd} s1
                unordered: {cmd} s1 s2
                unordered: {cmd} s2 s1
                unordered: {cmd} s1 s2 s3
                unordered: {cmd} s3 s1 s2
                unordered: {cmd} s1 s1
                unordered: {cmd} s1 nokey
                unordered: {cmd} nokey s1
                unordered: {cmd} nokey
                unordered: {cmd} nokey nokey2
                unordered: {cmd} s1 nokey s2
                unordered: {cmd} empty s1
                {cmd}
                "
            ));
        }
        // Large sets (hash tables in Redis) mixed with small ones.
        for i in 0..200 {
            let n = i.to_string();
            d.eq(&["SADD", "big1", &n]);
            if i % 3 == 0 {
                d.eq(&["SADD", "big2", &n]);
            }
        }
        d.run(
            r"
            unordered: SINTER big1 big2
            unordered: SINTER big2 big1 s1
            unordered: SUNION big2 s1
            unordered: SDIFF big1 big2
            unordered: SDIFF big2 big1
            unordered: SDIFF s1 big1
            ",
        );

        d.script("sinterstore/sunionstore/sdiffstore");
        d.run(
            r"
            SADD s1 a b c d
            SADD s2 c d e
            SADD s3 a c e f
            SINTERSTORE dst s1 s2
            SCARD dst
            SUNIONSTORE dst s1 s2
            SCARD dst
            SDIFFSTORE dst s1 s2 s3
            SMEMBERS dst
            SINTERSTORE dst s1
            SCARD dst
            SUNIONSTORE u nokey
            EXISTS u
            SINTERSTORE dst
            SINTERSTORE
            SUNIONSTORE dst
            SDIFFSTORE dst
            unordered: SMEMBERS dst
            // The destination among the sources.
            SADD d1 a b x
            SINTERSTORE d1 d1 s1
            unordered: SMEMBERS d1
            SUNIONSTORE d1 s3 d1
            unordered: SMEMBERS d1
            SDIFFSTORE d1 d1 s2
            unordered: SMEMBERS d1
            SDIFFSTORE d1 s1 d1
            unordered: SMEMBERS d1
            // An empty result deletes the destination.
            SADD d2 old
            SINTERSTORE d2 s1 nokey
            EXISTS d2
            SADD d2 old
            SDIFFSTORE d2 s1 s1
            EXISTS d2
            SADD d2 old
            SUNIONSTORE d2 nokey
            EXISTS d2
            SADD d2 old
            SINTERSTORE d2 d2 s1
            EXISTS d2
            SADD d2 old
            SDIFFSTORE d2 d2 d2
            EXISTS d2
            SINTERSTORE nokey nokey2
            EXISTS nokey
            // A destination of another type is overwritten; its expiry is dropped.
            SET str x EX 100
            SUNIONSTORE str s1 s2
            TYPE str
            TTL str
            HSET h f v
            SINTERSTORE h s1 s3
            TYPE h
            RPUSH l x
            SDIFFSTORE l s1 s3
            TYPE l
            ZADD z 1 m
            SINTERSTORE z s1 nokey
            EXISTS z
            SADD e x
            EXPIRE e 100
            SUNIONSTORE e s1
            TTL e
            unordered: SMEMBERS str
            unordered: SMEMBERS h
            unordered: SMEMBERS l
            // A source of another type: WRONGTYPE, and the destination is untouched.
            SET str2 x
            SADD keep k
            SINTERSTORE keep s1 str2
            SUNIONSTORE keep str2 s1
            SDIFFSTORE keep s1 str2
            SDIFFSTORE keep nokey str2
            SINTERSTORE keep nokey str2
            SMEMBERS keep
            SINTER nokey str2
            SINTER s1 nokey str2
            SUNION s1 str2
            SDIFF nokey str2
            SDIFF s1 str2
            SDIFF str2 s1
            SINTERSTORE str2 s1 s2
            TYPE str2
            ",
        );

        d.script("smove");
        d.run(
            r#"
            SADD src a b c
            SADD dst c x
            SMOVE src dst a
            SMOVE src dst a
            SMOVE src dst nomember
            SMOVE src dst c
            SISMEMBER src c
            SISMEMBER dst c
            SCARD dst
            SMOVE nokey dst a
            EXISTS nokey
            SMOVE src new b
            EXISTS src
            SMEMBERS new
            SMOVE new new b
            SMOVE new new nomember
            SMEMBERS new
            SMOVE nokey nokey a
            SMOVE nokey nokey2 a
            EXISTS nokey2
            SET str x
            SMOVE dst str x
            SMOVE str dst x
            SMOVE nokey str x
            SMOVE dst str nomember
            SISMEMBER dst x
            SMOVE dst new
            SMOVE dst new x y
            SMOVE dst "" x
            SMEMBERS ""
            unordered: SMEMBERS dst
            "#,
        );

        d.script("sscan");
        d.run(
            r#"
            SSCAN nokey 0
            SADD small a b ""
            SADD ints 1 2 3 10 -5
            scan: SSCAN small
            scan: SSCAN ints
            scan: SSCAN ints MATCH 1*
            scan: SSCAN nokey
            "#,
        );
        for i in 0..250 {
            d.eq(&["SADD", "big", &format!("m{i}")]);
        }
        scan_checks(d, "SSCAN", "set", "m", "");

        d.script("set commands against other types");
        d.run(ALL_TYPES);
        against(
            d,
            &["str", "hash", "list", "zset"],
            r"
            SADD $ a
            SREM $ a
            SISMEMBER $ a
            SMISMEMBER $ a b
            SMEMBERS $
            SCARD $
            SPOP $
            SPOP $ 2
            SRANDMEMBER $
            SRANDMEMBER $ -2
            SINTER $
            SINTER set $
            SUNION $ set
            SDIFF $
            SINTERSTORE dst $
            SUNIONSTORE dst set $
            SDIFFSTORE dst $ set
            SMOVE $ set m
            SMOVE set $ m
            SSCAN $ 0
            SMEMBERS set
            EXISTS dst
            SADD $
            SPOP $ -1
            SRANDMEMBER $ x
            ",
        );
        against(d, &["set"], STRING_CMDS);
        d.run("MGET set\nSET set x\nTYPE set");

        d.script("sets in transactions");
        d.run(ALL_TYPES);
        d.run(
            r"
            MULTI
            SADD t a b
            SISMEMBER t a
            SCARD t
            SREM t a
            SMEMBERS t
            SMOVE t u b
            EXISTS t
            SMEMBERS u
            SUNIONSTORE v u set
            SINTER u v
            SADD str x
            SDIFFSTORE v v v
            EXISTS v
            EXEC
            SMEMBERS u
            ",
        );

        d.script("watch: set writes");
        d.eq(&["SADD", "w", "a"]);
        d.watch_writes(
            "w",
            &[
                ("SADD w b", "SCARD w"),
                ("SADD w a", "SCARD w"),
                ("SREM w nomember", "SCARD w"),
                ("SMOVE nokey w x", "SCARD w"),
            ],
        );
        d.eq(&["SADD", "src", "x"]);
        d.watch_writes(
            "w",
            &[
                ("SMOVE src w x", "SCARD w"),
                ("SINTERSTORE w w nokey", "EXISTS w"),
            ],
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Sorted sets.

#[test]
fn sorted_sets() {
    differential(|d| {
        d.script("zadd options");
        d.run(
            r"
            ZADD z 1 a 2 b 3 c
            ZADD z 1 a
            ZADD z NX 5 a 4 d
            ZSCORE z a
            ZSCORE z d
            ZADD z XX 5 a 9 e
            ZSCORE z a
            ZSCORE z e
            ZADD z CH 6 a 7 f 2 b
            ZADD z GT 4 a
            ZSCORE z a
            ZADD z GT CH 10 a
            ZADD z LT CH 20 a
            ZADD z LT CH 1 a
            ZSCORE z a
            ZADD z GT 1 g
            ZADD z LT 1 h
            ZADD z XX GT CH 100 a 100 nomember
            ZADD z XX LT CH 0 a
            ZADD z NX CH 50 a 50 i
            zadd z nx ch 1 j
            ZADD z CH CH 1 j
            ZADD z CH 1 j
            ZADD z NX XX 1 a
            ZADD z NX GT 1 a
            ZADD z NX LT 1 a
            ZADD z GT LT 1 a
            ZADD z XX NX GT 1 a
            ZADD z FOO 1 a
            ZADD z 1 a NX
            ZADD z 1
            ZADD z
            ZADD z 1 a 2
            ZADD z NX
            ZADD z NX 1
            ZRANGE z 0 -1 WITHSCORES
            ZCARD z
            TYPE z
            // XX on a missing key creates nothing.
            ZADD nokey XX 1 a
            EXISTS nokey
            ZADD nokey XX INCR 1 a
            EXISTS nokey
            ",
        );

        d.script("zadd incr");
        d.run(
            r"
            ZADD z INCR 2 a
            ZADD z INCR 1.5 a
            ZADD z INCR NX 1 a
            ZADD z INCR NX 1 b
            ZADD z INCR XX 1 nomember
            ZADD z INCR XX 1 b
            ZADD z INCR GT -5 a
            ZADD z INCR GT 5 a
            ZADD z INCR LT 5 a
            ZADD z INCR LT -5 a
            ZADD z INCR GT 1 new
            ZADD z CH INCR 1 a
            ZADD z INCR 1 a 2 b
            ZADD z INCR NX XX 1 a
            ZADD z INCR GT LT 1 a
            ZADD z INCR x a
            ZADD z INCR inf a
            ZADD z INCR -inf a
            ZSCORE z a
            ZADD z INCR 1 a
            ZADD z INCR +inf a
            ZADD z INCR inf c
            ZADD z INCR -inf c
            ZSCORE z c
            ZADD z incr 0.1 d
            ZADD z INCR 0.2 d
            ZRANGE z 0 -1 WITHSCORES
            ",
        );

        d.script("score formats and parsing");
        for score in [
            "1.1",
            "0.1",
            "1e20",
            "123456789012345678",
            "-0",
            "-0.0",
            "3.0",
            "1e-300",
            "2.5e-5",
            "0x10",
            "1E3",
            "+5",
            ".5",
            "5.",
            "-1.7976931348623157e308",
            "4.9e-324",
            "inf",
            "+inf",
            "-inf",
            "INF",
            "Infinity",
            "-infinity",
            "1e400",
            "1e-400",
            "nan",
            "NaN",
            "x",
            "",
            " 1",
            "1 ",
            "1x",
            "(1",
            "[1",
        ] {
            let member = format!("m{score}");
            d.eq(&["ZADD", "sc", score, &member]);
            d.eq(&["ZSCORE", "sc", &member]);
        }
        d.run(
            r"
            ZRANGE sc 0 -1 WITHSCORES
            ZINCRBY sc 0.2 m0.1
            ZINCRBY sc 1 m1e20
            ZINCRBY sc -1.1 m1.1
            ZSCORE sc m1.1
            ZMSCORE sc m0.1 m1.1 minf m-inf m-0
            ",
        );

        d.script("zrem/zscore/zmscore/zincrby/zcard");
        d.run(
            r#"
            ZADD z 1 a 2 b 3 c 0 ""
            ZREM z a nomember
            ZREM z a
            ZREM z b b
            ZREM nokey a
            ZREM z
            ZREM
            ZSCORE z c
            ZSCORE z ""
            ZSCORE z nomember
            ZSCORE nokey a
            ZSCORE z
            ZSCORE z a b
            ZMSCORE z c nomember "" c
            ZMSCORE nokey a b
            ZMSCORE z
            ZMSCORE
            ZINCRBY z 1.5 c
            ZINCRBY z -10 c
            ZINCRBY z 2 new
            ZINCRBY fresh 2.5 m
            TYPE fresh
            ZINCRBY z x c
            ZINCRBY z nan c
            ZINCRBY z "" c
            ZINCRBY z 1e400 c
            ZINCRBY z inf c
            ZINCRBY z -inf c
            ZINCRBY z 1 c
            ZINCRBY z 1
            ZINCRBY z 1 c d
            ZCARD z
            ZCARD nokey
            ZCARD
            ZCARD z x
            ZRANGE z 0 -1 WITHSCORES
            "#,
        );

        d.script("a sorted set emptied by removal disappears");
        d.run(
            r"
            ZADD z 1 a 2 b
            ZREM z a b c
            EXISTS z
            TYPE z
            ZCARD z
            ZRANGE z 0 -1
            ZADD z 5 z
            ZRANGE z 0 -1 WITHSCORES
            ZREM z z
            EXISTS z
            ZADD z 1 a 2 b 3 c
            ZREMRANGEBYRANK z 0 -1
            EXISTS z
            ZADD z 1 a 2 b 3 c
            ZREMRANGEBYSCORE z -inf +inf
            EXISTS z
            ZADD z 0 a 0 b
            ZREMRANGEBYLEX z - +
            EXISTS z
            ZADD z 1 a 2 b
            ZPOPMIN z 5
            EXISTS z
            ZADD z 1 a
            ZPOPMAX z
            EXISTS z
            DBSIZE
            ",
        );

        d.script("zcount/zrank/zrevrank");
        d.run("ZADD z 1 a 2 b 2 bb 2 ba 3 c -inf min inf max 0 zero");
        d.run(
            r#"
            ZCOUNT z -inf +inf
            ZCOUNT z -inf inf
            ZCOUNT z (1 3
            ZCOUNT z 1 (3
            ZCOUNT z (1 (3
            ZCOUNT z (1 (1
            ZCOUNT z (2 (3
            ZCOUNT z 2 2
            ZCOUNT z 3 1
            ZCOUNT z -inf -inf
            ZCOUNT z (-inf (+inf
            ZCOUNT z +inf +inf
            ZCOUNT z inf -inf
            ZCOUNT z 0 0
            ZCOUNT z -1 (0
            ZCOUNT z x 1
            ZCOUNT z 1 x
            ZCOUNT z ( 1
            ZCOUNT z [1 2
            ZCOUNT z ((1 2
            ZCOUNT z "" 1
            ZCOUNT z nan 1
            ZCOUNT z 1e400 2
            "#,
        );
        d.run(
            r"
            ZCOUNT nokey -inf +inf
            ZCOUNT nokey x y
            ZCOUNT z 1
            ZCOUNT z 1 2 3
            ",
        );
        d.each(
            r#"
            a
            b
            ba
            bb
            c
            min
            max
            zero
            nomember
            ""
            "#,
            r"
            ZRANK z $1
            ZREVRANK z $1
            ",
        );
        d.run(
            r"
            ZRANK nokey a
            ZREVRANK nokey a
            ZRANK z
            ZREVRANK z
            // WITHSCORE only exists from Redis 7.2.
            ZRANK z a WITHSCORE
            ZREVRANK z a WITHSCORE
            ",
        );

        d.script("zrange by index");
        d.run("ZADD z 1 a 2 b 3 c 4 d 5 e 3 cc");
        d.each(
            r"
            0 -1
            0 0
            -2 -1
            1 0
            2 4
            100 200
            -100 100
            -100 -7
            -100 -6
            5 100
            6 6
            0 -100
            -9223372036854775808 9223372036854775807
            x 1
            0 y
            1.5 2
            ",
            r"
            ZRANGE z $1 $2
            ZRANGE z $1 $2 WITHSCORES
            ZRANGE z $1 $2 REV
            ZREVRANGE z $1 $2
            ZREVRANGE z $1 $2 WITHSCORES
            ",
        );
        d.run(
            r"
            ZRANGE z 0 -1 REV WITHSCORES
            ZRANGE z 0 -1 withscores rev
            ZRANGE z 0 -1 LIMIT 0 1
            ZRANGE z 0 -1 REV REV
            ZRANGE z 0 -1 WITHSCORES WITHSCORES
            ZRANGE z 0 -1 FOO
            ZRANGE z 0 -1 BYSCORE BYLEX
            ZRANGE z 0
            ZRANGE z
            ZRANGE nokey 0 -1
            ZRANGE nokey x y
            ZREVRANGE nokey 0 -1
            ZREVRANGE z 0 -1 REV
            ZREVRANGE z 0
            ",
        );

        d.script("zrange by score");
        d.run("ZADD z 1 a 2 b 2 bb 3 c 4 d 5 e -inf min +inf max");
        d.each(
            r"
            -inf +inf
            (1 3
            1 (3
            (1 (3
            (2 (2
            2 2
            3 1
            (-inf (inf
            -inf -inf
            +inf +inf
            x 1
            1 (x
            ( 1
            [1 2
            ",
            r"
            ZRANGE z $1 $2 BYSCORE
            ZRANGE z $1 $2 BYSCORE WITHSCORES
            ZRANGE z $2 $1 BYSCORE REV
            ZRANGEBYSCORE z $1 $2
            ZRANGEBYSCORE z $1 $2 WITHSCORES
            ZREVRANGEBYSCORE z $2 $1
            ZREVRANGEBYSCORE z $2 $1 WITHSCORES
            ",
        );
        d.each(
            r"
            0 1
            1 2
            0 -1
            2 -1
            0 -5
            -1 2
            -1 -1
            1 0
            100 1
            0 100
            x 1
            0 y
            9223372036854775807 1
            ",
            r"
            ZRANGE z -inf +inf BYSCORE LIMIT $1 $2
            ZRANGE z +inf -inf BYSCORE REV LIMIT $1 $2 WITHSCORES
            ZRANGEBYSCORE z (1 5 LIMIT $1 $2
            ZRANGEBYSCORE z -inf +inf WITHSCORES LIMIT $1 $2
            ZREVRANGEBYSCORE z +inf -inf LIMIT $1 $2
            ",
        );
        d.run(
            r"
            ZRANGE z 1 3 BYSCORE LIMIT 0
            ZRANGE z 1 3 BYSCORE LIMIT
            ZRANGE z 1 3 BYSCORE LIMIT 0 1 LIMIT 1 1
            ZRANGE z 3 1 BYSCORE REV WITHSCORES LIMIT 1 1
            ZRANGEBYSCORE z 1 3 LIMIT 0
            ZRANGEBYSCORE z 1 3 REV
            ZRANGEBYSCORE z 1 3 BYSCORE
            ZRANGEBYSCORE z 1 3 FOO
            ZRANGEBYSCORE z 1
            ZREVRANGEBYSCORE z 3
            ZRANGEBYSCORE nokey -inf +inf
            ZRANGEBYSCORE nokey x y
            ZREVRANGEBYSCORE nokey +inf -inf WITHSCORES
            ZRANGE nokey -inf +inf BYSCORE
            zrange z (1 (4 byscore withscores limit 0 2
            ",
        );

        d.script("zrange by lex");
        d.run(r#"ZADD lex 0 a 0 b 0 c 0 d 0 e 0 "" 0 aa 0 ab 0 "b\x01""#);
        d.each(
            r#"
            - +
            [b (d
            (a [c
            [a [a
            (a (a
            [a (b
            (a +
            - (c
            [c [a
            + -
            - -
            + +
            [ +
            ( +
            - [
            - (
            [b "[b\x01"
            a c
            [a c
            "" +
            -a +
            +a +
            "#,
            r"
            ZRANGE lex $1 $2 BYLEX
            ZRANGE lex $2 $1 BYLEX REV
            ZRANGEBYLEX lex $1 $2
            ZREVRANGEBYLEX lex $2 $1
            ZLEXCOUNT lex $1 $2
            ",
        );
        d.each(
            r"
            0 1
            1 2
            0 -1
            3 -1
            -1 2
            1 0
            100 1
            x 1
            ",
            r"
            ZRANGE lex - + BYLEX LIMIT $1 $2
            ZRANGE lex + - BYLEX REV LIMIT $1 $2
            ZRANGEBYLEX lex [a + LIMIT $1 $2
            ZREVRANGEBYLEX lex + [a LIMIT $1 $2
            ",
        );
        d.run(
            r#"
            ZRANGE lex - + BYLEX WITHSCORES
            ZRANGEBYLEX lex - + WITHSCORES
            ZRANGEBYLEX lex - + LIMIT 0
            ZRANGEBYLEX lex - + FOO
            ZRANGEBYLEX lex -
            ZREVRANGEBYLEX lex +
            ZLEXCOUNT lex -
            ZLEXCOUNT nokey - +
            ZLEXCOUNT nokey a b
            ZRANGEBYLEX nokey - +
            ZRANGEBYLEX nokey a b
            ZREVRANGEBYLEX nokey + -
            ZRANGE nokey - + BYLEX
            // Binary members sort bytewise.
            ZADD bin 0 "\xff" 0 "\x00" 0 a 0 "\x7f"
            ZRANGE bin 0 -1
            ZRANGEBYLEX bin "(\x00" "[\xff"
            ZRANGEBYLEX bin "[\x7f" +
            ZLEXCOUNT bin "(\x00" "(\xff"
            ZSCORE bin "\xff"
            ZRANK bin "\xff"
            ZREM bin "\xff" "\x00"
            ZRANGE bin 0 -1 WITHSCORES
            ZADD "\xff\x00key" 1 ""
            ZRANGE "\xff\x00key" 0 -1 WITHSCORES

            // Lex ranges over members with different scores (unspecified in the docs, but small
            // sets answer deterministically): Redis first checks the ends of the whole set.
            ZADD mixed 1 b 2 a 3 d 4 c
            ZRANGEBYLEX mixed [b +
            ZRANGEBYLEX mixed - [a
            ZRANGEBYLEX mixed [a [c
            ZREVRANGEBYLEX mixed + [b
            ZREVRANGEBYLEX mixed [c -
            ZLEXCOUNT mixed [b +
            ZREMRANGEBYLEX mixed [d +
            ZADD mixed2 1 b 2 a
            ZRANGEBYLEX mixed2 [b +
            ZREVRANGEBYLEX mixed2 + [b
            ZREMRANGEBYLEX mixed2 [b +
            ZCARD mixed2
            ZRANGE mixed 0 -1 WITHSCORES
            // LIMIT 0 -1 means no limit, even for a rank range; any other LIMIT there is refused,
            // ZREVRANGE included.
            ZRANGE mixed 0 -1 LIMIT 0 -1
            ZRANGE mixed 0 -1 LIMIT 5 -1
            ZRANGE mixed 0 -1 LIMIT 0 1
            ZREVRANGE mixed 0 -1 LIMIT 0 1
            ZREVRANGE mixed 0 -1 LIMIT 0 -1 WITHSCORES
            "#,
        );

        d.script("zremrangebyrank/zremrangebyscore/zremrangebylex");
        let fill: &[&str] = &[
            "ZADD", "z", "1", "a", "2", "b", "3", "c", "4", "d", "5", "e", "6", "f",
        ];
        d.eq(fill);
        d.run(
            r"
            ZREMRANGEBYRANK z 0 1
            ZRANGE z 0 -1
            ZREMRANGEBYRANK z -1 -1
            ZREMRANGEBYRANK z 5 1
            ZREMRANGEBYRANK z 100 200
            ZREMRANGEBYRANK z -100 0
            ZRANGE z 0 -1
            ZREMRANGEBYRANK z x 1
            ZREMRANGEBYRANK z 0
            ZREMRANGEBYRANK nokey 0 -1
            ZREMRANGEBYRANK z -100 100
            EXISTS z
            ",
        );
        d.eq(fill);
        d.run(
            r"
            ZREMRANGEBYSCORE z -inf (2
            ZREMRANGEBYSCORE z (5 +inf
            ZRANGE z 0 -1
            ZREMRANGEBYSCORE z 4 3
            ZREMRANGEBYSCORE z (3 (4
            ZREMRANGEBYSCORE z 3 3
            ZRANGE z 0 -1
            ZREMRANGEBYSCORE z x 1
            ZREMRANGEBYSCORE z 1
            ZREMRANGEBYSCORE nokey -inf +inf
            ZREMRANGEBYSCORE z -inf +inf
            EXISTS z
            ZADD lex 0 a 0 b 0 c 0 d 0 e
            ZREMRANGEBYLEX lex [b (d
            ZRANGE lex 0 -1
            ZREMRANGEBYLEX lex (e +
            ZREMRANGEBYLEX lex [e [a
            ZREMRANGEBYLEX lex a c
            ZREMRANGEBYLEX lex -
            ZREMRANGEBYLEX nokey - +
            ZREMRANGEBYLEX lex - (d
            ZRANGE lex 0 -1
            ZREMRANGEBYLEX lex - +
            EXISTS lex
            ",
        );

        d.script("zpopmin/zpopmax");
        d.run(
            r"
            ZADD z 1 a 2 b 3 c 4 d 5 e 1 aa
            ZPOPMIN z
            ZPOPMAX z
            ZPOPMIN z 2
            ZPOPMAX z 1
            ZPOPMIN z 0
            ZPOPMAX z 0
            ZPOPMIN z -1
            ZPOPMAX z -1
            ZPOPMIN z x
            ZPOPMIN z 1 2
            ZPOPMIN
            ZPOPMIN nokey
            ZPOPMAX nokey
            ZPOPMIN nokey 3
            ZPOPMAX nokey -1
            ZPOPMAX nokey x
            ZRANGE z 0 -1 WITHSCORES
            ZPOPMAX z 100
            EXISTS z
            ZADD z 1.1 a -inf b inf c
            ZPOPMIN z
            ZPOPMAX z
            ZPOPMIN z 9223372036854775807
            EXISTS z
            ",
        );

        d.script("zscan");
        d.run(
            r#"
            ZSCAN nokey 0
            ZADD small 1.1 a 2 b -inf "" 1e300 big
            scan: ZSCAN small
            scan: ZSCAN small MATCH b*
            scan: ZSCAN nokey
            "#,
        );
        for i in 0..250 {
            d.eq(&["ZADD", "big", &format!("{}.5", i % 17), &format!("m{i}")]);
        }
        scan_checks(d, "ZSCAN", "zset", "m", "scan: ZSCAN big MATCH *.5");

        d.script("a large sorted set");
        for i in 0..300 {
            let score = format!("{}", (i * 37) % 101);
            d.eq(&["ZADD", "big", &score, &format!("m{i}")]);
        }
        d.run(
            r"
            ZCARD big
            ZRANGE big 0 9 WITHSCORES
            ZRANGE big -5 -1 WITHSCORES
            ZRANGE big (10 20 BYSCORE LIMIT 3 7
            ZRANGE big 50 (40 BYSCORE REV LIMIT 0 4 WITHSCORES
            ZRANK big m150
            ZREVRANK big m150
            ZCOUNT big 10 (20
            ZREMRANGEBYSCORE big (90 +inf
            ZREMRANGEBYRANK big 0 9
            ZPOPMIN big 3
            ZPOPMAX big 3
            ZCARD big
            ZRANGEBYSCORE big 40 41 WITHSCORES
            ",
        );

        d.script("sorted set commands against other types");
        d.run(ALL_TYPES);
        against(
            d,
            &["str", "hash", "list", "set"],
            r"
            ZADD $ 1 a
            ZADD $ XX 1 a
            ZADD $ INCR 1 a
            ZREM $ a
            ZSCORE $ a
            ZMSCORE $ a
            ZINCRBY $ 1 a
            ZCARD $
            ZCOUNT $ -inf +inf
            ZRANK $ a
            ZREVRANK $ a
            ZRANGE $ 0 -1
            ZRANGE $ -inf +inf BYSCORE
            ZRANGE $ - + BYLEX
            ZREVRANGE $ 0 -1
            ZRANGEBYSCORE $ -inf +inf
            ZREVRANGEBYSCORE $ +inf -inf
            ZRANGEBYLEX $ - +
            ZREVRANGEBYLEX $ + -
            ZLEXCOUNT $ - +
            ZREMRANGEBYRANK $ 0 -1
            ZREMRANGEBYSCORE $ -inf +inf
            ZREMRANGEBYLEX $ - +
            ZPOPMIN $
            ZPOPMAX $ 2
            ZSCAN $ 0
            // Argument errors versus type errors.
            ZADD $ x a
            ZADD $ NX XX 1 a
            ZINCRBY $ x a
            ZCOUNT $ x 1
            ZRANGE $ x 1
            ZRANGEBYLEX $ a b
            ZPOPMIN $ -1
            ZRANGE $ 0 -1 LIMIT 0 1
            ",
        );
        against(d, &["zset"], STRING_CMDS);
        d.run("MGET zset\nSET zset x\nTYPE zset");

        d.script("sorted sets in transactions");
        d.run(ALL_TYPES);
        d.run(
            r"
            MULTI
            ZADD t 1 a 2 b
            ZINCRBY t 2.5 a
            ZRANGE t 0 -1 WITHSCORES
            ZRANK t a
            ZADD t INCR 1 b
            ZPOPMIN t
            ZCARD t
            ZADD str 1 a
            ZREMRANGEBYSCORE t -inf +inf
            EXISTS t
            ZADD t NX XX 1 a
            ZADD t 1 z
            EXEC
            ZRANGE t 0 -1 WITHSCORES
            ",
        );

        d.script("watch: sorted set writes");
        d.eq(&["ZADD", "w", "1", "a"]);
        d.watch_writes(
            "w",
            &[
                ("ZINCRBY w 1 a", "ZSCORE w a"),
                ("ZADD w 2 a", "ZSCORE w a"),
                ("ZADD w NX 5 a", "ZSCORE w a"),
                ("ZADD w XX 5 nomember", "ZSCORE w a"),
                ("ZREM w nomember", "ZSCORE w a"),
                ("ZREMRANGEBYSCORE w 10 20", "ZSCORE w a"),
                ("ZPOPMIN w", "EXISTS w"),
            ],
        );
    });
}

// ---------------------------------------------------------------------------------------------
// Generic key commands on every type.

#[test]
fn keys_across_types() {
    differential(|d| {
        for kind in KINDS {
            let ty = kind.name;
            d.script(&format!("{ty}: type/exists/del"));
            run_kind(
                d,
                kind,
                kind,
                r"
                create k
                TYPE k
                EXISTS k
                EXISTS k k nokey
                DBSIZE
                KEYS *
                view k
                DEL k
                EXISTS k
                TYPE k
                DEL k
                view k
                // Re-created after DEL: nothing of the old value comes back.
                add k
                view k
                create k
                UNLINK k
                EXISTS k
                ",
            );

            d.script(&format!("{ty}: expire/ttl/persist"));
            run_kind(
                d,
                kind,
                kind,
                r"
                create k
                TTL k
                PTTL k
                EXPIRE k 100
                near 1: TTL k
                // Modifying the value keeps the expiry.
                add k
                near 1: TTL k
                view k
                PERSIST k
                TTL k
                PERSIST k
                EXPIRE k 100 XX
                EXPIRE k 50 GT
                EXPIRE k 50 LT
                near 1: TTL k
                // Expiries in the past delete, and the key comes back empty.
                EXPIRE k 0
                EXISTS k
                TTL k
                TYPE k
                view k
                add k
                view k
                TTL k
                PEXPIREAT k 1000
                EXISTS k
                DBSIZE
                create k
                SET k overwritten EX 100
                TYPE k
                near 1: TTL k
                GET k
                DEL k
                ",
            );

            d.script(&format!("{ty}: rename/renamenx"));
            run_kind(
                d,
                kind,
                kind,
                r"
                create k
                RENAME k k2
                EXISTS k
                TYPE k2
                view k2
                RENAME k2 k2
                TYPE k2
                view k2
                EXPIRE k2 100
                RENAME k2 k
                near 1: TTL k
                ",
            );
            for other in KINDS {
                // Over a key of every type (this one included), holding something unlike `k`:
                // the value is replaced whole.
                run_kind(
                    d,
                    kind,
                    other,
                    r"
                    other-add o
                    RENAMENX k o
                    TYPE o
                    other-view o
                    RENAME k o
                    TYPE o
                    EXISTS k
                    view o
                    near 1: TTL o
                    RENAMENX o k
                    EXISTS o
                    ",
                );
            }
            run_kind(
                d,
                kind,
                kind,
                r"
                RENAMENX k fresh
                TYPE fresh
                RENAME fresh k
                PERSIST k
                view k
                ",
            );

            d.script(&format!("{ty}: copy"));
            run_kind(
                d,
                kind,
                kind,
                r"
                create k
                COPY k c
                TYPE c
                view c
                // The copy is independent of the original, both ways.
                add c
                view c
                view k
                DEL c
                view k
                COPY k c
                DEL k
                view c
                RENAME c k
                EXPIRE k 100
                COPY k c
                near 1: TTL c
                ",
            );
            for other in KINDS {
                run_kind(
                    d,
                    kind,
                    other,
                    r"
                    DEL o
                    // Contents unlike those of `k`, so that a replacement shows.
                    other-add o
                    COPY k o
                    TYPE o
                    other-view o
                    COPY k o REPLACE
                    TYPE o
                    view o
                    near 1: TTL o
                    ",
                );
            }
            run_kind(
                d,
                kind,
                kind,
                r"
                COPY k k
                COPY k k REPLACE
                COPY k k DB 1
                COPY k k DB 1
                SELECT 1
                TYPE k
                view k
                near 1: TTL k
                // Changing the copy in database 1 leaves database 0 alone.
                add k
                view k
                SELECT 0
                view k
                FLUSHDB
                SELECT 1
                TYPE k
                FLUSHDB
                view k
                SELECT 0
                ",
            );

            d.script(&format!("{ty}: move"));
            run_kind(
                d,
                kind,
                kind,
                r"
                create k
                MOVE k 1
                EXISTS k
                TYPE k
                SELECT 1
                TYPE k
                view k
                SELECT 0
                MOVE nokey 1
                // The destination has the key already (of another type): nothing moves.
                SADD k x
                MOVE k 1
                TYPE k
                SELECT 1
                TYPE k
                view k
                EXPIRE k 100
                MOVE k 2
                SELECT 2
                TYPE k
                near 1: TTL k
                view k
                SELECT 0
                MOVE k 0
                ",
            );
        }

        d.script("scan/keys/dbsize/randomkey with every type");
        for i in 0..20 {
            for kind in KINDS {
                let key = format!("{}:{i}", kind.name);
                d.run(&kind.create.replace('$', &key));
            }
        }
        d.run(
            r"
            DBSIZE
            scan: SCAN
            scan: SCAN TYPE string
            scan: SCAN TYPE hash
            scan: SCAN TYPE list
            scan: SCAN TYPE set
            scan: SCAN TYPE zset
            scan: SCAN TYPE HASH
            scan: SCAN TYPE ZSet
            scan: SCAN TYPE stream
            scan: SCAN TYPE nosuchtype
            scan: SCAN TYPE hash MATCH *1*
            scan: SCAN MATCH list:1?
            scan: SCAN TYPE set COUNT 3
            scan: SCAN TYPE list TYPE set
            sorted: KEYS *
            sorted: KEYS zset:*
            sorted: KEYS *:1
            random: RANDOMKEY
            FLUSHDB
            DBSIZE
            KEYS *
            EXISTS hash:1
            scan: SCAN TYPE hash
            ",
        );

        d.script("overwriting collections with SET and MSET");
        for kind in KINDS {
            run_kind(
                d,
                kind,
                kind,
                r"
                DEL k m n e p y
                create k
                SET k x NX
                SETNX k x
                MSETNX k x y y
                TYPE k
                EXISTS y
                SET k x XX
                TYPE k
                GET k
                create m
                MSET m 1 n 2
                TYPE m
                GET m
                create e
                SETEX e 100 v
                TYPE e
                create p
                GETDEL p
                DEL p
                TYPE p
                DBSIZE
                view p
                ",
            );
        }

        d.script("multi/exec mixing types");
        d.run(
            r#"
            SET str text
            MULTI
            HSET h f v
            RPUSH l a b
            SADD s x
            ZADD z 1 m
            TYPE h
            TYPE l
            TYPE s
            TYPE z
            LRANGE l 0 -1
            HGET h f
            SISMEMBER s x
            ZSCORE z m
            DEL h l
            EXISTS h l s z
            RENAME s s2
            SCARD s2
            LPUSH h x
            TYPE h
            GET s2
            HSET z f v
            INCR str
            APPEND z x
            COPY z z2
            ZINCRBY z2 1 m
            ZSCORE z m
            MOVE s2 1
            EXISTS s2
            SET h "now a string"
            LLEN h
            EXPIRE z 100
            PERSIST z
            TTL z
            EXEC
            DBSIZE
            TYPE h
            ZRANGE z2 0 -1 WITHSCORES
            SELECT 1
            SMEMBERS s2
            SELECT 0
            // Queue-time errors abort everything, whatever the types.
            MULTI
            RPUSH q a
            HSET q2
            EXEC
            EXISTS q
            // A WRONGTYPE at run time does not stop the rest.
            MULTI
            RPUSH str a
            SADD q3 a
            EXEC
            SMEMBERS q3
            "#,
        );

        d.script("watch across types");
        d.run(
            r"
            SET w x
            WATCH w
            @1 DEL w
            @1 HSET w f v
            MULTI
            TYPE w
            EXEC
            WATCH w
            @1 RENAME w w2
            MULTI
            EXISTS w
            EXEC
            SADD w m
            WATCH w
            @1 EXPIRE w 100
            MULTI
            TYPE w
            EXEC
            // A failed type check does not modify.
            WATCH w
            @1 LPUSH w x
            @1 GET w
            MULTI
            TYPE w
            EXEC
            ",
        );
    });
}
