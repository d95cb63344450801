#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Streams against redis-server (RESP2 and RESP3): XADD's ids and options, ranges, XDEL,
//! trimming (exact, and approximate by whole nodes), XSETID, XREAD, consumer groups (XGROUP,
//! XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM, XINFO), errors, blocking reads, keyspace
//! events, and random operation sequences with many consumers, claims and trims. Clock readings
//! (idle and delivery times) are compared as zero (`timeless:`); ids are explicit wherever the
//! reply shows them.

mod common;

use caskdb_testkit::rng::{Rng, seed};
use common::diff::differential;

#[test]
fn xadd_ranges_deletes_and_errors() {
    differential(|d| {
        d.script("xadd");
        d.run(
            r"
            XADD s 1-1 a 1
            XADD s 1-* b 2
            XADD s 1-* b 3
            XADD s 5 c 3 d 4
            XADD s 5-* e 5
            XADD s 0-0 a 1
            XADD s 1-1 a 1
            XADD s 3 a 1
            XADD new 0-* a 1
            XADD new2 0-0 a 1
            EXISTS new2
            XADD s 9-0 a
            XADD s 9-0
            XADD s 9 a 1 b
            XADD s abc a 1
            XADD s 1-2-3 a 1
            XADD s -1 a 1
            XADD s 18446744073709551615-0 a 1
            XADD s 18446744073709551616-0 a 1
            XADD s + a 1
            XADD s - a 1
            XLEN s
            XLEN nokey
            XRANGE s - +
            XRANGE s 1 1
            XRANGE s 1-1 1-2
            XRANGE s (1-1 +
            XRANGE s - (5-0
            XRANGE s (18446744073709551615-18446744073709551615 +
            XRANGE s - (0-0
            XRANGE s - + COUNT 2
            XRANGE s - + COUNT 0
            XRANGE s - + COUNT -1
            XRANGE s - + COUNT
            XRANGE s - + LIMIT 1
            XRANGE s 5 3
            XRANGE s x +
            XRANGE s ( +
            XRANGE s (- +
            XRANGE nokey - +
            XREVRANGE s + -
            XREVRANGE s + - COUNT 1
            XREVRANGE s (5-1 1
            XDEL s 1-2 1-2 100-0
            XDEL s 1-1 x
            XDEL nokey 1-1
            XDEL s 5-1 5-0 1-1 1-3
            XLEN s
            XRANGE s - +
            EXISTS s
            TYPE s
            OBJECT ENCODING s
            XADD s 2-0 after delete
            XADD s 6-0 f v
            XRANGE s - +
            SET str x
            XADD str * a 1
            XLEN str
            XRANGE str - +
            XDEL str 1-1
            XADD s NOMKSTREAM 7-0 a 1
            XADD nostream NOMKSTREAM * a 1
            EXISTS nostream
            XADD z 5-18446744073709551615 a 1
            XADD z 5-* a 1
            XADD z 6-* a 1
            XADD s 18446744073709551615-18446744073709551615 last one
            shape: XADD s * a 1
            XADD s 18446744073709551615-* a 1
            XSETID s 1
            ",
        );
    });
}

#[test]
fn trimming_exact_and_by_whole_nodes() {
    differential(|d| {
        d.script("trim");
        for i in 1..=250 {
            d.eq(&["XADD", "s", &format!("{i}-0"), "f", "v"]);
        }
        d.run(
            r"
            XTRIM s MAXLEN ~ 200
            XLEN s
            XTRIM s MAXLEN ~ 120
            XLEN s
            XTRIM s MAXLEN = 130
            XTRIM s MAXLEN 120
            XRANGE s - + COUNT 1
            XTRIM s MINID ~ 150
            XLEN s
            XTRIM s MINID 150
            XRANGE s - + COUNT 1
            XTRIM s MINID ~ 201 LIMIT 10
            XTRIM s MINID ~ 201 LIMIT 100
            XLEN s
            XTRIM s MAXLEN 10 LIMIT 5
            XTRIM s LIMIT 5
            XTRIM s MAXLEN -1
            XTRIM s MAXLEN 1 MINID 5
            XTRIM s MAXLEN ~ 1 LIMIT -1
            XTRIM s
            XTRIM s FOO 1
            XTRIM s MAXLEN x
            XTRIM s MINID x
            XTRIM nokey MAXLEN 0
            XADD s MAXLEN 3 300-0 a 1
            XLEN s
            XADD s MAXLEN ~ 1 301-0 a 1
            XLEN s
            XADD s MINID 300 302-0 a 1
            XRANGE s - +
            XADD s MAXLEN 0 303-0 a 1
            XLEN s
            EXISTS s
            XINFO STREAM s
            XADD s 304-0 back again
            XRANGE s - +
            XADD s MAXLEN 1 MINID 1 400 a 1
            XADD s LIMIT 5 400 a 1
            XADD s MAXLEN 5 LIMIT 5 400 a 1
            ",
        );
        // XADD … MAXLEN ~ with deletions among the appends: the first node's size, which
        // caskdb keeps, follows them.
        let mut rng = Rng::new(seed("CASKDB_STREAM_SEED"));
        for i in 1..=600u64 {
            d.eq(&[
                "XADD",
                "u",
                "MAXLEN",
                "~",
                "150",
                &format!("{i}-0"),
                "f",
                "v",
            ]);
            if rng.chance(1, 3) {
                let victim = 1 + rng.below(i);
                d.eq(&["XDEL", "u", &format!("{victim}-0")]);
            }
            if i % 97 == 0 {
                d.eq(&["XTRIM", "u", "MAXLEN", "140"]);
            }
            if i % 50 == 0 {
                d.run("XLEN u\nXRANGE u - + COUNT 1");
            }
        }
        // Deleting entries makes Redis's nodes shorter; approximate trims then follow them.
        for i in 1..=230 {
            d.eq(&["XADD", "t", &format!("{i}-0"), "f", "v"]);
        }
        for i in (1..=100).step_by(3) {
            d.eq(&["XDEL", "t", &format!("{i}-0")]);
        }
        for i in 201..=230 {
            d.eq(&["XDEL", "t", &format!("{i}-0")]);
        }
        d.run(
            r"
            XLEN t
            XTRIM t MAXLEN ~ 100
            XLEN t
            XADD t 231-0 f v
            XTRIM t MAXLEN ~ 1
            XLEN t
            XINFO STREAM t
            ",
        );
    });
}

#[test]
fn xread_and_xsetid() {
    differential(|d| {
        d.script("xread");
        d.run(
            r"
            XADD a 1-0 f 1
            XADD a 2-0 f 2
            XADD b 3-0 g 3
            XREAD STREAMS a b 0 0
            XREAD COUNT 1 STREAMS a b 0 0
            XREAD STREAMS a b 1 3
            XREAD STREAMS a b $ $
            XREAD STREAMS a nokey 0 0
            XREAD STREAMS nokey 0
            XREAD STREAMS a 18446744073709551615-18446744073709551615
            XREAD STREAMS a
            XREAD STREAMS a b 0
            XREAD COUNT x STREAMS a 0
            XREAD COUNT -5 STREAMS a 0
            XREAD BLOCK -1 STREAMS a 0
            XREAD BLOCK x STREAMS a 0
            XREAD STREAMS a >
            XREAD STREAMS a +
            XREAD STREAMS a x
            XREAD GROUP g c STREAMS a 0
            XREAD NOACK STREAMS a 0
            XREAD FOO STREAMS a 0
            XREAD COUNT 1
            SET str x
            XREAD STREAMS str 0
            XREAD STREAMS a str 0 0
            XSETID a 5-0
            XADD a 5-0 x y
            XADD a 6-* x y
            XSETID a 1-0
            XSETID a 10-0 ENTRIESADDED 1
            XSETID a 10-0 ENTRIESADDED 5 MAXDELETEDID 11-0
            XSETID a 10-0 ENTRIESADDED -1
            XSETID a 10-0 ENTRIESADDED 5 MAXDELETEDID 3-0
            XINFO STREAM a
            XSETID a 10-0 FOO
            XSETID nokey 1-0
            XSETID str 1-0
            XSETID a x
            XSETID a +
            MULTI
            XADD m 1-0 a 1
            XREAD BLOCK 0 STREAMS m $
            XREAD STREAMS m 0
            EXEC
            ",
        );
    });
}

#[test]
fn consumer_groups() {
    differential(|d| {
        d.script("groups");
        d.run(
            r"
            XGROUP CREATE s g $
            XGROUP CREATE s g $ MKSTREAM
            XGROUP CREATE s g $ MKSTREAM
            XGROUP CREATE s g2 0 ENTRIESREAD 0
            XGROUP CREATE s g3 0 ENTRIESREAD -2
            XGROUP CREATE s g3 0 ENTRIESREAD x
            XGROUP CREATE s g3 0 FOO
            XGROUP CREATE s g3 x
            XGROUP CREATE s g3 -
            XADD s 1-0 a 1
            XADD s 2-0 b 2
            XADD s 3-0 c 3
            XADD s 4-0 d 4
            XINFO GROUPS s
            XREADGROUP GROUP g alice COUNT 2 STREAMS s >
            XREADGROUP GROUP g bob STREAMS s >
            XREADGROUP GROUP g bob STREAMS s >
            XREADGROUP GROUP g2 carol NOACK COUNT 1 STREAMS s >
            XREADGROUP GROUP g alice STREAMS s 0
            XREADGROUP GROUP g alice COUNT 1 STREAMS s 1-0
            XREADGROUP GROUP g alice STREAMS s 18446744073709551615-18446744073709551615
            XADD s 4-1 e 5
            XREADGROUP GROUP g dup STREAMS s s > >
            XREADGROUP GROUP g dup STREAMS s s 0 0
            XREADGROUP GROUP g nobody STREAMS s 0
            timeless: XPENDING s g
            timeless: XPENDING s g - + 10
            timeless: XPENDING s g - + 10 alice
            timeless: XPENDING s g - + 10 nobody
            timeless: XPENDING s g (1-0 + 1
            timeless: XPENDING s g IDLE 0 - + 10
            timeless: XPENDING s g2
            XPENDING s g - +
            XPENDING s g IDLE 5 - +
            XPENDING s g - + x
            XPENDING s g x + 10
            XPENDING s nogroup
            XPENDING nokey g
            XACK s g 1-0 9-0
            XACK s g 1-0
            XACK s g x
            XACK s nogroup x
            XACK nokey g 1-0
            timeless: XPENDING s g
            timeless: XINFO GROUPS s
            timeless: XINFO CONSUMERS s g
            XINFO CONSUMERS s nogroup
            XINFO CONSUMERS nokey g
            timeless: XINFO STREAM s
            timeless: XINFO STREAM s FULL
            timeless: XINFO STREAM s FULL COUNT 1
            timeless: XINFO STREAM s FULL COUNT 0
            XINFO STREAM s FULL COUNT
            XINFO STREAM s FOO
            XINFO STREAM nokey
            XINFO FOO s
            XINFO
            XINFO HELP
            XDEL s 3-0
            XREADGROUP GROUP g alice STREAMS s 0
            timeless: XCLAIM s g dave 0 2-0 3-0 4-0
            timeless: XPENDING s g - + 10
            XCLAIM s g dave 0 4-0 JUSTID
            XCLAIM s g erin 0 1-0 FORCE JUSTID
            XCLAIM s g erin 0 1-0 2-0 RETRYCOUNT 7 JUSTID
            timeless: XPENDING s g - + 10
            XCLAIM s g erin 3600000 2-0
            XCLAIM s g erin 0 2-0 IDLE 5000 JUSTID
            XCLAIM s g erin 4000 2-0 JUSTID
            XCLAIM s g erin 0 2-0 TIME 1 JUSTID
            XCLAIM s g erin 0 2-0 LASTID 9-0 JUSTID
            timeless: XINFO GROUPS s
            XCLAIM s g erin x 2-0
            XCLAIM s g erin 0 2-0 IDLE x
            XCLAIM s g erin 0 2-0 TIME x
            XCLAIM s g erin 0 2-0 RETRYCOUNT x
            XCLAIM s g erin 0 2-0 BOGUS
            XCLAIM s g erin 0 2-0 LASTID x
            XCLAIM s nogroup erin 0 2-0
            XCLAIM nokey g erin 0 2-0
            XAUTOCLAIM s g frank 0 0
            XAUTOCLAIM s g frank 0 0 COUNT 1
            XAUTOCLAIM s g frank 0 (1-0 COUNT 1 JUSTID
            XAUTOCLAIM s g frank 3600000 0
            XAUTOCLAIM s g frank 0 0 COUNT 0
            XAUTOCLAIM s g frank 0 0 COUNT x
            XAUTOCLAIM s g frank x 0
            XAUTOCLAIM s g frank 0 x
            XAUTOCLAIM s g frank 0 0 FOO
            XAUTOCLAIM s nogroup frank 0 0
            timeless: XINFO CONSUMERS s g
            XGROUP CREATECONSUMER s g zed
            XGROUP CREATECONSUMER s g zed
            XGROUP CREATECONSUMER s nogroup zed
            XGROUP DELCONSUMER s g frank
            XGROUP DELCONSUMER s g ghost
            timeless: XPENDING s g
            XGROUP SETID s g 0
            XREADGROUP GROUP g zed STREAMS s >
            timeless: XPENDING s g - + 10
            XGROUP SETID s g $
            XGROUP SETID s g - ENTRIESREAD 3
            XGROUP SETID s g + 
            XGROUP SETID s g 0 ENTRIESREAD
            XGROUP SETID s nogroup 0
            timeless: XINFO GROUPS s
            XGROUP DESTROY s g2
            XGROUP DESTROY s g2
            XGROUP DESTROY nokey g
            XGROUP CREATE nokey g $
            XGROUP SETID nokey g $
            XGROUP FOO s g
            XGROUP CREATE s
            XGROUP
            XGROUP HELP
            XREADGROUP GROUP nogroup c STREAMS s >
            XREADGROUP GROUP g c STREAMS nokey >
            XREADGROUP GROUP g c STREAMS s $
            XREADGROUP GROUP g c STREAMS s x
            XREADGROUP STREAMS s >
            XREADGROUP GROUP g c STREAMS s
            XREADGROUP GROUP g c BLOCK x STREAMS s >
            SET str x
            XREADGROUP GROUP g c STREAMS str >
            XGROUP CREATE str g $
            XINFO STREAM str
            XGROUP DESTROY s g
            timeless: XINFO STREAM s FULL
            DEL s
            XINFO GROUPS s
            ",
        );
    });
}

#[test]
fn blocked_reads_are_served_by_writes() {
    differential(|d| {
        d.script("blocking");
        d.run(
            r"
            XADD s 1-0 a 1
            XGROUP CREATE s g $
            @1 send: XREAD BLOCK 0 STREAMS s $
            blocked 1:
            @2 send: XREAD BLOCK 0 COUNT 1 STREAMS nokey s 0-0 1-0
            blocked 2:
            @3 send: XREADGROUP GROUP g c1 BLOCK 0 STREAMS s >
            blocked 3:
            @4 send: XREADGROUP GROUP g c2 BLOCK 0 STREAMS s >
            blocked 4:
            XADD s 2-0 b 2
            @1 read:
            @2 read:
            @3 read:
            blocked 1:
            XADD s 3-0 c 3
            @4 read:
            timeless: XPENDING s g - + 10
            @1 send: XREAD BLOCK 0 STREAMS s 5-0
            blocked 1:
            XADD s 4-0 d 4
            XADD s 6-0 e 5
            @1 read:
            XREADGROUP GROUP g c1 STREAMS s >
            @2 send: XREADGROUP GROUP g c1 BLOCK 0 NOACK STREAMS s >
            blocked 1:
            XGROUP DESTROY s g
            @2 read:
            // XSETID, XDEL and XTRIM add nothing: the reader waits for the next XADD.
            @1 send: XREAD BLOCK 0 STREAMS s $
            blocked 1:
            XSETID s 900-0
            XDEL s 1-0
            XTRIM s MAXLEN 3
            XADD s 901-0 after setid
            @1 read:
            // A consumer named like the keyword.
            XGROUP CREATE s g2 $
            @2 send: XREADGROUP GROUP g2 streams BLOCK 0 STREAMS s >
            blocked 1:
            XADD s 902-0 x y
            @2 read:
            @1 send: XREAD BLOCK 0 STREAMS other $
            blocked 1:
            MULTI
            XADD other 1-0 x y
            XDEL other 1-0
            EXEC
            XADD other 2-0 x y
            @1 read:
            ",
        );
    });
}

#[test]
fn stream_keyspace_events() {
    differential(|d| {
        d.script("events");
        d.run(
            r"
            CONFIG SET notify-keyspace-events KEA
            @1 PSUBSCRIBE __keyevent@0__:*
            XADD s 1-0 a 1
            @1 read:
            XGROUP CREATE s g 0
            @1 read:
            XREADGROUP GROUP g c STREAMS s >
            @1 read:
            XGROUP CREATECONSUMER s g d
            @1 read:
            XGROUP SETID s g 0
            @1 read:
            XDEL s 1-0
            @1 read:
            XADD s 2-0 a 1
            @1 read:
            XTRIM s MAXLEN 0
            @1 read:
            XSETID s 5-0
            @1 read:
            XGROUP DELCONSUMER s g d
            @1 read:
            XGROUP DESTROY s g
            @1 read:
            XADD s 6-0 a 1
            @1 read:
            XADD s MAXLEN 1 7-0 a 1
            @1 read:
            @1 read:
            XADD s MAXLEN 5 8-0 a 1
            @1 read:
            XADD s MAXLEN 0 9-0 a 1
            @1 read:
            @1 read:
            ",
        );
    });
}

/// Random streams of XADD, XDEL, XTRIM, XREADGROUP, XACK, XCLAIM, XAUTOCLAIM and XGROUP
/// commands over two keys and many consumers, with explicit ids, compared reply by reply;
/// then every stream's whole state.
#[test]
fn random_operations_match_redis() {
    let base = seed("CASKDB_STREAM_SEED");
    differential(|d| {
        let mut rng = Rng::new(base);
        d.script(&format!("random streams (CASKDB_STREAM_SEED={base})"));
        let keys = ["s1", "s2"];
        let groups = ["g1", "g2"];
        let consumers = ["c1", "c2", "c3", "c4", "c5"];
        let mut next_ms = [1u64; 2];
        for k in keys {
            for g in groups {
                d.eq(&["XGROUP", "CREATE", k, g, "0", "MKSTREAM"]);
            }
        }
        for _ in 0..1500 {
            let ki = rng.index(2);
            let key = keys[ki];
            let g = *rng.pick(&groups);
            let c = *rng.pick(&consumers);
            let old = || {};
            old();
            let some_id = |rng: &mut Rng, next: u64| {
                format!("{}-{}", 1 + rng.below(next.max(1)), rng.below(2))
            };
            match rng.below(20) {
                0..=6 => {
                    let ms = next_ms[ki];
                    next_ms[ki] += 1 + rng.below(3);
                    let id = if rng.chance(1, 4) {
                        format!("{ms}-*")
                    } else {
                        format!("{ms}-{}", rng.below(2))
                    };
                    let value = rng.below(1000).to_string();
                    let mut args = vec!["XADD", key];
                    let cap = rng.below(60).to_string();
                    if rng.chance(1, 10) {
                        args.extend(["MAXLEN", "~", &cap]);
                    } else if rng.chance(1, 10) {
                        args.extend(["MAXLEN", &cap]);
                    }
                    args.extend([id.as_str(), "f", value.as_str()]);
                    d.eq(&args);
                }
                7..=9 => {
                    let count = (1 + rng.below(4)).to_string();
                    d.eq(&[
                        "XREADGROUP",
                        "GROUP",
                        g,
                        c,
                        "COUNT",
                        &count,
                        "STREAMS",
                        key,
                        ">",
                    ]);
                }
                10 => {
                    let id = some_id(&mut rng, next_ms[ki]);
                    d.eq(&["XREADGROUP", "GROUP", g, c, "STREAMS", key, &id]);
                }
                11..=13 => {
                    let ids: Vec<String> = (0..1 + rng.below(3))
                        .map(|_| some_id(&mut rng, next_ms[ki]))
                        .collect();
                    let mut args = vec!["XACK", key, g];
                    args.extend(ids.iter().map(String::as_str));
                    d.eq(&args);
                }
                14 => {
                    let id = some_id(&mut rng, next_ms[ki]);
                    let mut args = vec!["XCLAIM", key, g, c, "0", id.as_str()];
                    if rng.chance(1, 3) {
                        args.push("FORCE");
                    }
                    args.push("JUSTID");
                    d.eq(&args);
                }
                15 => {
                    let count = (1 + rng.below(5)).to_string();
                    d.eq(&["XAUTOCLAIM", key, g, c, "0", "0", "COUNT", &count, "JUSTID"]);
                }
                16 => {
                    let id = some_id(&mut rng, next_ms[ki]);
                    d.eq(&["XDEL", key, &id]);
                }
                17 => {
                    let n = rng.below(40).to_string();
                    if rng.chance(1, 2) {
                        d.eq(&["XTRIM", key, "MAXLEN", &n]);
                    } else {
                        let id = some_id(&mut rng, next_ms[ki]);
                        d.eq(&["XTRIM", key, "MINID", &id]);
                    }
                }
                18 => {
                    d.compare(
                        0,
                        common::diff::Check::Timeless,
                        &[
                            b"XPENDING",
                            key.as_bytes(),
                            g.as_bytes(),
                            b"-",
                            b"+",
                            b"1000",
                        ],
                    );
                }
                _ => {
                    if rng.chance(1, 4) {
                        d.eq(&["XGROUP", "DELCONSUMER", key, g, c]);
                    } else {
                        d.eq(&["XLEN", key]);
                    }
                }
            }
        }
        for k in keys {
            d.eq(&["XRANGE", k, "-", "+"]);
            for g in groups {
                d.run(&format!(
                    "timeless: XPENDING {k} {g}\ntimeless: XINFO CONSUMERS {k} {g}"
                ));
            }
            d.run(&format!(
                "timeless: XINFO GROUPS {k}\ntimeless: XINFO STREAM {k} FULL COUNT 0"
            ));
        }
    });
}

/// The generic commands treat a stream like the other types; COPY copies its groups too.
#[test]
fn generic_commands_on_streams() {
    differential(|d| {
        d.script("generic");
        d.run(
            r"
            XADD s 1-0 a 1
            XADD s 2-0 b 2
            XGROUP CREATE s g 0
            XREADGROUP GROUP g c COUNT 1 STREAMS s >
            SET str x
            TYPE s
            OBJECT ENCODING s
            sorted: SCAN 0 TYPE stream
            sorted: KEYS *
            EXPIRE s 100
            TTL s
            PERSIST s
            TTL s
            COPY s s2
            XRANGE s2 - +
            timeless: XINFO GROUPS s2
            timeless: XPENDING s2 g - + 10
            XACK s2 g 1-0
            timeless: XPENDING s g - + 10
            XINFO STREAM s2
            RENAME s2 s3
            XLEN s3
            XINFO GROUPS s2
            timeless: XINFO GROUPS s3
            MOVE s3 1
            SELECT 1
            XRANGE s3 - +
            timeless: XINFO GROUPS s3
            SELECT 0
            DEL s
            XLEN s
            XINFO GROUPS s
            XADD s 1-0 fresh x
            XINFO GROUPS s
            XGROUP CREATE s g 0
            timeless: XINFO STREAM s FULL
            SET s x
            TYPE s
            ",
        );
    });
}

/// DUMP and RESTORE both ways: each server's payload of a stream with several nodes, deleted
/// entries, entries whose fields differ from their node's first, groups with consumers and
/// pending entries, is restored on both servers, and the restored streams compared whole
/// (their entries, state, groups, pending entries and delivery counts); appending to them and
/// trimming them by whole nodes gives the same results.
#[test]
fn dump_and_restore_both_ways() {
    differential(|d| {
        d.script("dump");
        for i in 1..=250 {
            let field = if i % 7 == 0 { "other" } else { "f" };
            d.eq(&[
                "XADD",
                "s",
                &format!("{i}-{}", i % 3),
                field,
                &i.to_string(),
            ]);
        }
        d.run(
            r"
            XDEL s 1-1 50-2 100-1 101-2 200-2 250-1
            XADD s 260-0 a 1 b 2
            XGROUP CREATE s g 0
            XGROUP CREATE s quiet $ ENTRIESREAD 3
            XREADGROUP GROUP g alice COUNT 5 STREAMS s >
            XREADGROUP GROUP g bob COUNT 3 STREAMS s >
            XREADGROUP GROUP g carol NOACK COUNT 2 STREAMS s >
            XACK s g 3-0
            XCLAIM s g bob 0 4-1 RETRYCOUNT 5 JUSTID
            XGROUP CREATECONSUMER s g idle
            XADD empty 1-0 a 1
            XDEL empty 1-0
            XGROUP CREATE empty g $
            ",
        );
        for key in ["s", "empty"] {
            let (from_redis, from_cask) = d.exchange(0, &[b"DUMP", key.as_bytes()]);
            let (common::Reply::Bulk(r), common::Reply::Bulk(c)) = (from_redis, from_cask) else {
                panic!("DUMP {key} did not give two payloads");
            };
            for (name, payload) in [("r", &r), ("c", &c)] {
                let copy = format!("{key}:{name}");
                d.eq_bytes(&[b"RESTORE", copy.as_bytes(), b"0", payload]);
                d.run(&format!(
                    "XRANGE {copy} - +
                    timeless: XINFO STREAM {copy} FULL COUNT 0
                    timeless: XINFO GROUPS {copy}
                    timeless: XINFO CONSUMERS {copy} g
                    timeless: XPENDING {copy} g - + 100
                    XADD {copy} 300-0 new entry
                    XTRIM {copy} MAXLEN ~ 100
                    XLEN {copy}
                    XREADGROUP GROUP g dave STREAMS {copy} >
                    XRANGE {copy} - + COUNT 3"
                ));
            }
        }
        // What the payload says is checked as Redis checks it.
        d.run(
            r"
            RESTORE bad 0 notapayload
            XADD s 261-0 a 1
            ",
        );
    });
}
