#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Long strings changed in place (SETBIT, SETRANGE, APPEND, BITFIELD, PFADD), which caskdb keeps
//! in 4 KiB chunks once they pass 8 KiB, against redis-server (RESP2 and RESP3): every command
//! on them, at chunk edges, after RENAME, COPY, MOVE, expiry changes, DUMP/RESTORE, WATCH, and a
//! random differential; and what a change costs on disk.

mod common;

use caskdb_testkit::rng::Rng;
use common::diff::differential;

/// Bit offset of byte `byte` (chunks are 4096 bytes: 32768 bits).
fn bit(byte: u64) -> u64 {
    byte * 8
}

#[test]
fn bitmaps_across_chunks() {
    differential(|d| {
        d.script("bitmap across chunks");
        let far = bit(200_000);
        d.run(&format!(
            "
            SETBIT b {far} 1
            STRLEN b
            OBJECT ENCODING b
            GETBIT b {far}
            GETBIT b 0
            SETBIT b 0 1
            SETBIT b {} 1
            SETBIT b {} 1
            SETBIT b {} 1
            SETBIT b {} 0
            GET b
            BITCOUNT b
            BITCOUNT b 4095 4096
            BITCOUNT b 4095 8192
            BITCOUNT b {} {} BIT
            BITCOUNT b -10 -1
            BITCOUNT b 0 -1 BIT
            BITPOS b 1
            BITPOS b 1 1
            BITPOS b 1 4096
            BITPOS b 1 {} -1 BIT
            BITPOS b 0
            BITPOS b 0 -5
            BITPOS b 0 -5 -1
            BITPOS b 1 300000
            GETRANGE b 4090 4100
            GETRANGE b -3 -1
            GETRANGE b 199990 300000
            SUBSTR b 0 3
            SETBIT b {far} 1
            SETBIT b {far} 0
            GETBIT b {far}
            STRLEN b
            ",
            bit(4095) + 7,
            bit(4096),
            bit(8191) + 3,
            bit(8192) + 1,
            bit(4095) + 4,
            bit(4096) + 2,
            bit(4095) + 7,
        ));
        // BITOP of long bitmaps, and SETBIT on its long result.
        d.run(&format!(
            "
            SETBIT c {} 1
            BITOP OR o b c
            BITOP AND a b c
            BITOP XOR x b c
            BITOP NOT n c
            STRLEN o
            BITCOUNT o
            SETBIT o 9 1
            GET o
            GET n
            BITCOUNT a
            GET x
            ",
            bit(120_000)
        ));
    });
}

#[test]
fn setrange_append_and_getrange_across_chunks() {
    differential(|d| {
        d.script("setrange and append across chunks");
        d.run(
            r#"
            SETRANGE s 8190 hello-world
            STRLEN s
            OBJECT ENCODING s
            GETRANGE s 8188 8205
            SETRANGE s 20000 tail
            GETRANGE s 8190 8200
            APPEND s -more
            APPEND s -and-more
            STRLEN s
            GETRANGE s -20 -1
            GETRANGE s 0 5
            GETRANGE s 19998 100000
            GETRANGE s 5 2
            GETRANGE s -1 -5
            SETRANGE s 4094 abcdef
            GETRANGE s 4090 4105
            SETRANGE s 0 ""
            SETRANGE s 100 ""
            GET s
            SETRANGE s -1 x
            SETRANGE s 536870912 x
            SETRANGE s 536870911 ""
            SETRANGE far 5000000 x
            STRLEN far
            GETRANGE far 4999990 -1
            BITCOUNT far
            BITPOS far 1
            GETRANGE far 100 110
            "#,
        );
        // A long string SET whole, then changed in place.
        let long: Vec<u8> = (0..30_000u32).map(|i| (i % 251) as u8).collect();
        d.eq_bytes(&[b"SET", b"w", &long]);
        d.run(
            r"
            OBJECT ENCODING w
            SETRANGE w 12287 XYZ
            GETRANGE w 12280 12295
            APPEND w !
            STRLEN w
            GET w
            SET w2 x
            SETBIT w 8 1
            SETBIT w 8 1
            OBJECT ENCODING w
            GET w
            ",
        );
        // SETBIT that changes nothing still makes a long SET string `raw`.
        let ones = vec![0xffu8; 10_000];
        d.eq_bytes(&[b"SET", b"f", &ones]);
        d.run(
            r"
            OBJECT ENCODING f
            SETBIT f 5 1
            OBJECT ENCODING f
            GETRANGE f 9995 -1
            STRLEN f
            INCR f
            ",
        );
    });
}

#[test]
fn bitfield_across_chunks() {
    differential(|d| {
        d.script("bitfield across chunks");
        // Fields that straddle the edge between chunk 0 and 1 (bit 32768) and chunks 2 and 3.
        d.run(&format!(
            "
            BITFIELD bf SET u16 {a} 65535 GET u16 {a} GET i8 {b} GET i32 {c}
            STRLEN bf
            BITFIELD bf SET i64 {d} -12345 GET i64 {d} INCRBY i64 {d} 12346
            BITFIELD bf OVERFLOW SAT INCRBY u8 {b} 300 OVERFLOW WRAP INCRBY u8 {b} 1
            BITFIELD bf SET u8 #10000 200 GET u8 #10000 GET u8 #4095 GET u8 #4096
            BITFIELD bf SET u8 {a} 0
            BITFIELD_RO bf GET u16 {a} GET i64 {d} GET u32 {c}
            BITFIELD_RO bf GET u8 #1000000
            GETRANGE bf 4094 4097
            STRLEN bf
            BITCOUNT bf
            ",
            a = bit(4096) - 8,
            b = bit(4096) - 4,
            c = bit(4096) - 30,
            d = bit(3 * 4096) - 33,
        ));
    });
}

#[test]
fn generic_commands_on_long_strings() {
    differential(|d| {
        d.script("generic commands on long strings");
        d.run(&format!(
            "
            SETBIT k {} 1
            SETRANGE k 100 abc
            TYPE k
            EXISTS k
            RENAME k k2
            EXISTS k
            GETRANGE k2 98 104
            COPY k2 k3
            SETBIT k3 {} 1
            GETBIT k2 {}
            GETBIT k3 {}
            GET k2
            GET k3
            MOVE k3 2
            EXISTS k3
            SELECT 2
            GETRANGE k3 98 104
            STRLEN k3
            SELECT 0
            EXPIRE k2 1000
            TTL k2
            GETEX k2 PERSIST
            TTL k2
            GETEX k2 EX 500
            TTL k2
            OBJECT ENCODING k2
            SETBIT k2 7 1
            TTL k2
            APPEND k2 x
            TTL k2
            PERSIST k2
            TTL k2
            GETDEL k2
            EXISTS k2
            SETRANGE k4 9000 x
            SET k4 short
            GET k4
            SETRANGE k5 9000 x
            LPUSH k5 a
            DEL k5
            SETRANGE k5 9000 y
            SORT k5
            DEL k5
            SETRANGE k6 9000 y
            RENAME k6 k7
            SETRANGE k7 0 z
            GETRANGE k7 0 0
            ",
            bit(50_000),
            bit(50_001),
            bit(50_001),
            bit(50_001),
        ));
        // WATCH hears of a change to any chunk, and of none when SETBIT changes nothing.
        d.run(&format!("SETBIT w {} 1", bit(30_000)));
        d.watch_writes(
            "w",
            &[
                (&format!("SETBIT w {} 1", bit(5)), "GETBIT w 40"),
                (&format!("SETBIT w {} 1", bit(5)), "GETBIT w 40"),
                ("SETRANGE w 20000 abc", "STRLEN w"),
                ("APPEND w z", "STRLEN w"),
                ("BITFIELD w SET u8 #7 9", "GET w"),
                ("APPEND w \"\"", "STRLEN w"),
                ("SETRANGE w 3 \"\"", "STRLEN w"),
            ],
        );
        // Appending nothing still makes the string `raw`.
        d.run("SET i 123\nAPPEND i \"\"\nOBJECT ENCODING i\nGET i");
        // DUMP of each server restored on both, then changed in place.
        d.run(&format!(
            "SETRANGE dumped 10000 end\nSETBIT dumped {} 1",
            bit(3)
        ));
        let (from_redis, from_cask) = d.exchange(0, &[b"DUMP", b"dumped"]);
        let (common::Reply::Bulk(r), common::Reply::Bulk(c)) = (from_redis, from_cask) else {
            panic!("DUMP did not give two payloads");
        };
        for (name, payload) in [("r", &r), ("c", &c)] {
            let copy = format!("dumped:{name}");
            d.eq_bytes(&[b"RESTORE", copy.as_bytes(), b"0", payload]);
            d.run(&format!(
                "GET {copy}
                SETRANGE {copy} 9999 XY
                GETRANGE {copy} 9995 -1
                STRLEN {copy}"
            ));
        }
    });
}

#[test]
fn dense_hyperloglogs() {
    differential(|d| {
        d.script("dense hyperloglogs");
        for round in 0..6 {
            let mut args = vec!["PFADD".to_string(), "h".to_string()];
            args.extend((0..1000).map(|i| format!("e{round}-{i}")));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            d.eq(&args);
            d.run("PFCOUNT h\nSTRLEN h");
        }
        d.run(
            r"
            GET h
            PFADD h e0-1
            PFADD h new-one
            GET h
            PFADD g a b c
            PFMERGE g h
            PFCOUNT g
            GET g
            PFMERGE h g
            PFCOUNT h g
            SETRANGE h 100 x
            PFCOUNT h
            ",
        );
    });
}

/// Random SETBIT, SETRANGE, APPEND, BITFIELD and reads near chunk edges over three keys, with
/// whole values compared along the way. Seed in `CASKDB_CHUNKED_SEED`.
#[test]
fn random_changes_in_place_match_redis() {
    let mut rng = Rng::new(caskdb_testkit::rng::seed("CASKDB_CHUNKED_SEED"));
    // A byte near a chunk edge, or anywhere in the first 12 chunks.
    let byte = |rng: &mut Rng| -> u64 {
        if rng.chance(2, 3) {
            (rng.below(12) * 4096 + rng.below(16)).saturating_sub(8)
        } else {
            rng.below(12 * 4096)
        }
    };
    let keys = ["x", "y", "z"];
    let mut lines = Vec::new();
    for _ in 0..600 {
        let k = keys[rng.index(keys.len())];
        let at = byte(&mut rng);
        let line = match rng.below(12) {
            0 | 1 => format!("SETBIT {k} {} {}", at * 8 + rng.below(8), rng.below(2)),
            2 => format!("GETBIT {k} {}", at * 8 + rng.below(8)),
            3 => format!(
                "SETRANGE {k} {at} {}",
                "abcdefghij".repeat(rng.between(1, 3))
            ),
            4 => format!("APPEND {k} {}", "0123456789".repeat(rng.between(1, 40))),
            5 => format!("GETRANGE {k} {at} {}", at + rng.below(40)),
            6 => {
                let other = byte(&mut rng);
                format!("BITCOUNT {k} {} {}", at.min(other), at.max(other))
            }
            7 => format!("BITPOS {k} {} {at}", rng.below(2)),
            8 => format!(
                "BITFIELD {k} SET u{} {} {} GET i16 {} INCRBY u8 {} {}",
                rng.between(1, 32),
                at * 8 + rng.below(8),
                rng.below(1 << 20),
                at * 8,
                (at + 1) * 8 + rng.below(8),
                rng.below(300)
            ),
            9 => format!("STRLEN {k}"),
            10 => match rng.below(4) {
                0 => format!("COPY {k} {} REPLACE", keys[rng.index(3)]),
                1 => format!("RENAME {k} {}", keys[rng.index(3)]),
                2 => format!("BITOP OR {k} {} {}", keys[rng.index(3)], keys[rng.index(3)]),
                _ => format!("DEL {k}"),
            },
            _ => format!("GET {k}"),
        };
        lines.push(line);
    }
    for k in keys {
        lines.push(format!("GET {k}"));
    }
    let script = lines.join("\n");
    differential(|d| {
        d.script("random changes in place");
        d.run(&script);
    });
}
