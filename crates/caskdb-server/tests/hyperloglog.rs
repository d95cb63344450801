#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! PFADD, PFCOUNT and PFMERGE against redis-server (RESP2 and RESP3): the counts must be equal,
//! not merely close, and the values' bytes too (GET after every step: the sparse runs split and
//! merged as Redis does, the switch to dense at `hll-sparse-max-bytes`, the cached count);
//! errors for other types, strings that are not HyperLogLogs and corrupted ones; expiries kept.

mod common;

use caskdb_testkit::rng::{Rng, seed};
use common::diff::differential;

#[test]
fn small_cases_and_errors() {
    differential(|d| {
        d.script("pf basics");
        d.run(
            r"
            PFADD h a b c
            GET h
            PFADD h a
            PFCOUNT h
            GET h
            PFCOUNT h
            PFADD empty
            GET empty
            PFCOUNT empty
            PFADD empty
            PFCOUNT nokey
            PFCOUNT nokey h
            PFADD h2 c d e f
            PFCOUNT h h2
            PFMERGE m h h2 nokey
            GET m
            PFCOUNT m
            PFMERGE m
            PFMERGE fresh
            GET fresh
            EXPIRE h 1000
            PFADD h zz
            TTL h
            SET s notanhll
            PFADD s a
            PFCOUNT s
            PFCOUNT h s
            PFMERGE s h
            PFMERGE h s
            LPUSH l a
            PFADD l a
            PFCOUNT l
            PFCOUNT h l
            PFMERGE l h
            PFADD
            PFCOUNT
            PFMERGE
            OBJECT ENCODING h
            TYPE h
            STRLEN empty
            ",
        );
        // A sparse value whose runs do not add up to 16384 registers.
        let mut bad = b"HYLL\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80".to_vec();
        bad.extend_from_slice(&[0x7f, 0x00]);
        d.eq_bytes(&[b"SET", b"bad", &bad]);
        d.eq(&["PFCOUNT", "bad"]);
        d.eq(&["PFCOUNT", "bad", "h"]);
        d.eq(&["PFMERGE", "out", "bad"]);
        // A dense one of the wrong size.
        let mut short = b"HYLL\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x80".to_vec();
        short.extend_from_slice(&[0u8; 100]);
        d.eq_bytes(&[b"SET", b"short", &short]);
        d.eq(&["PFADD", "short", "x"]);
        d.eq(&["PFCOUNT", "short"]);
    });
}

/// Random elements added in batches, with GET and PFCOUNT after each: from a few registers to
/// past the switch to dense, with `hll-sparse-max-bytes` at its default and lowered.
#[test]
fn random_additions_give_the_same_counts_and_bytes() {
    let seed = seed("CASKDB_HLL_SEED");
    differential(|d| {
        d.script(&format!(
            "random pfadd (seed {seed}, CASKDB_HLL_SEED to replay)"
        ));
        let mut rng = Rng::new(seed);
        for (key, max_bytes, batches) in [("a", "3000", 60), ("b", "300", 40), ("c", "3000", 8)] {
            d.eq(&["CONFIG", "SET", "hll-sparse-max-bytes", max_bytes]);
            for batch in 0..batches {
                let n = if key == "c" {
                    1500
                } else {
                    1 + rng.index(40 + batch * 10)
                };
                let elems: Vec<String> =
                    (0..n).map(|_| format!("e{}", rng.below(50_000))).collect();
                let mut args = vec!["PFADD", key];
                args.extend(elems.iter().map(String::as_str));
                d.eq(&args);
                d.eq(&["GET", key]);
                d.eq(&["PFCOUNT", key]);
                d.eq(&["GET", key]);
            }
        }
        d.eq(&["CONFIG", "SET", "hll-sparse-max-bytes", "3000"]);
        d.eq(&["PFCOUNT", "a", "b", "c"]);
        d.eq(&["PFMERGE", "ab", "a", "b"]);
        d.eq(&["GET", "ab"]);
        d.eq(&["PFCOUNT", "ab"]);
        d.eq(&["PFMERGE", "abc", "a", "b", "c"]);
        d.eq(&["GET", "abc"]);
        d.eq(&["PFCOUNT", "abc"]);
        // Into an existing sparse destination.
        d.eq(&["PFADD", "small", "x", "y"]);
        d.eq(&["PFMERGE", "small", "a"]);
        d.eq(&["GET", "small"]);
        d.eq(&["PFCOUNT", "small"]);
    });
}

#[test]
fn keyspace_events_and_watch() {
    differential(|d| {
        d.script("pf events");
        d.run(
            r"
            CONFIG SET notify-keyspace-events KEA
            @1 PSUBSCRIBE __key*__:*
            PFADD h a
            @1 read: 4
            PFADD h a
            PFADD h b
            @1 read: 2
            PFCOUNT h
            PFMERGE m h
            @1 read: 4
            PFADD h c
            @1 read: 2
            CONFIG SET notify-keyspace-events ''
            ",
        );
        // PFCOUNT writes the cached count: a WATCH on the key sees it, as in Redis.
        d.run(
            r"
            PFADD w a b
            @2 WATCH w
            PFCOUNT w
            @2 MULTI
            @2 PING
            @2 EXEC
            @2 WATCH w
            PFCOUNT w
            @2 MULTI
            @2 PING
            @2 EXEC
            ",
        );
    });
}
