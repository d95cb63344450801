#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! SETBIT, GETBIT, BITCOUNT, BITPOS and BITOP against redis-server (RESP2 and RESP3): errors in
//! Redis's order, ranges in bytes and bits with negative and out-of-range ends, strings made by
//! other commands, keyspace events, and a random differential of bit operations.

mod common;

use caskdb_testkit::rng::Rng;
use common::diff::differential;

#[test]
fn setbit_and_getbit() {
    differential(|d| {
        d.script("setbit/getbit");
        d.run(
            r"
            SETBIT b 7 1
            GET b
            SETBIT b 7 1
            SETBIT b 0 1
            GET b
            SETBIT b 100 0
            STRLEN b
            GETBIT b 0
            GETBIT b 7
            GETBIT b 6
            GETBIT b 100000
            GETBIT missing 3
            SETBIT b -1 1
            SETBIT b x 1
            SETBIT b 4294967296 1
            SETBIT b 1 2
            SETBIT b 1 -1
            SETBIT b 1 x
            SETBIT b x 2
            GETBIT b -1
            GETBIT b 4294967296
            GETBIT b 1.5
            SETBIT b
            GETBIT b
            SET s abc
            SETBIT s 3 1
            GET s
            SET n 12
            GETBIT n 2
            SETBIT n 7 1
            GET n
            OBJECT ENCODING n
            RPUSH l a
            SETBIT l 0 1
            GETBIT l 0
            SET t x EX 100
            SETBIT t 1 1
            TTL t
            ",
        );
    });
}

#[test]
fn bitcount_and_bitpos() {
    differential(|d| {
        d.script("bitcount/bitpos");
        d.run(
            r#"
            SET s "\xff\xf0\x00\x0f\x81"
            BITCOUNT s
            BITCOUNT s 0 0
            BITCOUNT s 1 -1
            BITCOUNT s -2 -1
            BITCOUNT s -1 -2
            BITCOUNT s -1 -2 FOO
            BITCOUNT s 0 100
            BITCOUNT s 5 2
            BITCOUNT s 3 12 BIT
            BITCOUNT s 0 -1 BIT
            BITCOUNT s -5 -1 BIT
            BITCOUNT s 9 9 BIT
            BITCOUNT s 0 0 BYTE
            BITCOUNT s 0 0 FOO
            BITCOUNT s 0
            BITCOUNT s x 1
            BITCOUNT s 0 1 BIT extra
            BITCOUNT missing
            BITCOUNT missing 1
            BITCOUNT missing x y
            BITPOS s 1
            BITPOS s 0
            BITPOS s 0 2
            BITPOS s 1 2
            BITPOS s 1 2 3
            BITPOS s 0 2 2
            BITPOS s 1 -1
            BITPOS s 0 0 0
            BITPOS s 0 0 -1
            BITPOS s 1 5 60 BIT
            BITPOS s 0 5 60 BIT
            BITPOS s 0 3 3 BIT
            BITPOS s 1 20 27 BIT
            BITPOS s 0 12 15 BIT
            BITPOS s 1 100
            BITPOS s 0 100
            BITPOS s 2
            BITPOS s x
            BITPOS s 1 x
            BITPOS s 1 0 x
            BITPOS s 1 0 1 FOO
            BITPOS s 1 0 1 BIT extra
            BITPOS missing 1
            BITPOS missing 0
            BITPOS missing 2
            SET ones "\xff\xff"
            BITPOS ones 0
            BITPOS ones 0 0
            BITPOS ones 0 0 -1
            BITPOS ones 0 3 BIT
            BITPOS ones 0 3 15 BIT
            SET empty ""
            BITPOS empty 0
            BITPOS empty 1
            BITCOUNT empty
            RPUSH l a
            BITCOUNT l
            BITPOS l 1
            "#,
        );
    });
}

#[test]
fn bitop() {
    differential(|d| {
        d.script("bitop");
        d.run(
            r#"
            SET a "\xff\x0f\xaa"
            SET b "\x0f"
            BITOP AND dest a b
            GET dest
            BITOP OR dest a b
            GET dest
            BITOP XOR dest a b missing
            GET dest
            BITOP NOT dest a
            GET dest
            BITOP NOT dest a b
            BITOP NOT dest
            BITOP FOO dest a
            BITOP AND dest missing other
            EXISTS dest
            BITOP AND dest a missing
            GET dest
            SET dest x EX 100
            BITOP OR dest a
            TTL dest
            RPUSH l x
            BITOP OR dest a l
            HSET h f v
            BITOP OR h a
            TYPE h
            GET h
            OBJECT ENCODING h
            "#,
        );
    });
}

#[test]
fn keyspace_events_of_bit_commands() {
    differential(|d| {
        d.script("bit events");
        d.run(
            r"
            CONFIG SET notify-keyspace-events KEA
            @1 PSUBSCRIBE __key*__:*
            SETBIT k 3 1
            @1 read: 4
            SETBIT k 3 1
            SETBIT k 3 0
            @1 read: 2
            BITOP NOT d k
            @1 read: 2
            BITOP AND d missing
            @1 read: 2
            CONFIG SET notify-keyspace-events ''
            ",
        );
    });
}

#[test]
fn random_bit_operations_match_redis() {
    let mut rng = Rng::new(caskdb_testkit::rng::seed("CASKDB_BITS_SEED"));
    let mut lines = Vec::new();
    let keys = ["x", "y", "z"];
    for _ in 0..300 {
        let k = keys[rng.index(keys.len())];
        let line = match rng.below(6) {
            0 => format!("SETBIT {k} {} {}", rng.below(200), rng.below(2)),
            1 => format!("GETBIT {k} {}", rng.below(220)),
            2 => format!(
                "BITCOUNT {k} {} {} {}",
                rng.below(40) as i64 - 20,
                rng.below(40) as i64 - 20,
                ["BYTE", "BIT"][rng.index(2)]
            ),
            3 => format!(
                "BITPOS {k} {} {} {} {}",
                rng.below(2),
                rng.below(60) as i64 - 30,
                rng.below(260) as i64 - 30,
                ["BYTE", "BIT"][rng.index(2)]
            ),
            4 => format!("BITPOS {k} {} {}", rng.below(2), rng.below(40) as i64 - 20),
            _ => format!(
                "BITOP {} {k} {} {}",
                ["AND", "OR", "XOR"][rng.index(3)],
                keys[rng.index(3)],
                keys[rng.index(3)]
            ),
        };
        lines.push(line);
    }
    lines.push("GET x".into());
    lines.push("GET y".into());
    lines.push("GET z".into());
    let script = lines.join("\n");
    differential(|d| {
        d.script("random bit operations");
        d.run(&script);
    });
}
