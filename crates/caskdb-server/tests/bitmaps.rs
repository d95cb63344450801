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

#[test]
fn bitfield_cases_and_errors() {
    differential(|d| {
        d.script("bitfield");
        d.run(
            r"
            BITFIELD bf SET u8 0 255
            GET bf
            BITFIELD bf GET u8 0 GET i8 0 GET u4 4 GET i4 4 GET u1 7 GET i64 0 GET u63 1
            BITFIELD bf INCRBY u8 0 1 INCRBY i8 8 -1 GET u16 0
            BITFIELD bf OVERFLOW SAT INCRBY u8 0 1000 INCRBY i8 8 -1000 OVERFLOW FAIL INCRBY u8 0 1 OVERFLOW WRAP INCRBY u8 0 1
            BITFIELD bf SET i8 #2 -128 GET i8 #2 GET u8 #2 SET u8 #3 -1 GET u8 #3
            BITFIELD bf OVERFLOW FAIL SET u8 #4 256 SET i8 #4 128 SET i8 #4 -129 GET u8 #4
            BITFIELD bf OVERFLOW SAT SET u8 #5 300 SET i8 #6 -300 SET u8 #7 -5 GET u8 #5 GET i8 #6 GET u8 #7
            BITFIELD bf SET i64 100 -1 GET i64 100 INCRBY i64 100 1 INCRBY i64 100 9223372036854775807 INCRBY i64 100 1
            BITFIELD bf OVERFLOW SAT INCRBY i64 100 9223372036854775807 INCRBY i64 100 9223372036854775807
            BITFIELD bf OVERFLOW FAIL INCRBY i64 100 -9223372036854775808 INCRBY i64 100 -9223372036854775808
            BITFIELD bf SET u63 200 9223372036854775807 INCRBY u63 200 1 GET u63 200
            BITFIELD bf SET u3 5 7 INCRBY u3 5 1 SET i5 13 15 INCRBY i5 13 1 GET i5 13
            BITFIELD bf GET u8 100000
            STRLEN bf
            GET bf
            BITFIELD_RO bf GET u8 0 GET i16 3
            BITFIELD_RO bf SET u8 0 1
            BITFIELD_RO missing GET u8 0
            BITFIELD_RO bf
            BITFIELD bf
            BITFIELD missing GET u8 0
            EXISTS missing
            BITFIELD fresh OVERFLOW FAIL INCRBY u2 0 10
            EXISTS fresh
            GET fresh
            BITFIELD bf GET u64 0
            BITFIELD bf GET i65 0
            BITFIELD bf GET u0 0
            BITFIELD bf GET x8 0
            BITFIELD bf GET u8
            BITFIELD bf GET u8 -1
            BITFIELD bf GET u8 #-1
            BITFIELD bf GET u8 x
            BITFIELD bf GET u8 4294967296
            BITFIELD bf SET u8 0 x
            BITFIELD bf SET u8 0
            BITFIELD bf OVERFLOW nope GET u8 0
            BITFIELD bf OVERFLOW
            BITFIELD bf FOO u8 0
            BITFIELD bf GET u8 0 SET u8 0 x
            BITFIELD bf GET i8 0 GET u64 0
            LPUSH list a
            BITFIELD list GET u8 0
            BITFIELD list SET u8 0 1
            BITFIELD_RO list GET u8 0
            BITFIELD_RO list SET u8 0 1
            SET num 12345
            BITFIELD num GET u8 0 INCRBY u8 0 1
            GET num
            EXPIRE bf 1000
            BITFIELD bf SET u8 0 0
            TTL bf
            ",
        );
    });
}

#[test]
fn keyspace_events_of_bitfield() {
    differential(|d| {
        d.script("bitfield events");
        d.run(
            r"
            CONFIG SET notify-keyspace-events KEA
            @1 PSUBSCRIBE __key*__:*
            BITFIELD k SET u8 0 1
            @1 read: 4
            BITFIELD k SET u8 0 1
            BITFIELD k SET u8 0 2
            @1 read: 2
            BITFIELD k GET u8 0
            BITFIELD_RO k GET u8 0
            BITFIELD k INCRBY u8 0 1
            @1 read: 2
            BITFIELD fresh OVERFLOW FAIL INCRBY u2 0 10
            EXISTS fresh
            BITFIELD k SET u8 0 2
            @1 read: 2
            CONFIG SET notify-keyspace-events ''
            ",
        );
    });
}

#[test]
fn random_bitfield_operations_match_redis() {
    let seed = caskdb_testkit::rng::seed("CASKDB_BITFIELD_SEED");
    differential(|d| {
        let mut rng = Rng::new(seed);
        d.script(&format!(
            "random bitfield (seed {seed}, CASKDB_BITFIELD_SEED to replay)"
        ));
        for _ in 0..300 {
            let mut args: Vec<String> = vec!["BITFIELD".into(), "r".into()];
            for _ in 0..1 + rng.index(4) {
                if rng.chance(1, 5) {
                    args.push("OVERFLOW".into());
                    args.push((*rng.pick(&["WRAP", "SAT", "FAIL"])).into());
                }
                let signed = rng.chance(1, 2);
                let bits = 1 + rng.index(if signed { 64 } else { 63 });
                let ty = format!("{}{bits}", if signed { "i" } else { "u" });
                let offset = if rng.chance(1, 4) {
                    format!("#{}", rng.below(8))
                } else {
                    rng.below(200).to_string()
                };
                let value = match rng.below(4) {
                    0 => (rng.next_u64() as i64).to_string(),
                    1 => (rng.below(600) as i64 - 300).to_string(),
                    2 => i64::MAX.to_string(),
                    _ => i64::MIN.to_string(),
                };
                match rng.below(3) {
                    0 => args.extend(["GET".into(), ty, offset]),
                    1 => args.extend(["SET".into(), ty, offset, value]),
                    _ => args.extend(["INCRBY".into(), ty, offset, value]),
                }
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            d.eq(&refs);
        }
        d.eq(&["GET", "r"]);
    });
}
