//! OBJECT against a real redis-server, both protocols: the encodings Redis 7.0 reports for the
//! same commands (strings, lists, sets, hashes, sorted sets, across the size knobs and after
//! shrinking again), REFCOUNT, IDLETIME, FREQ and the errors.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::diff::differential;

#[test]
fn object_encoding_follows_redis() {
    differential(|d| {
        d.script("strings");
        d.each(
            "123\n -5\n 0\n -0\n 01\n +1\n 9223372036854775807\n 9223372036854775808\n -9223372036854775808\n 1.5\n abc",
            r"
            SET k $1
            OBJECT ENCODING k
            OBJECT REFCOUNT k
            ",
        );
        d.run(
            r#"
            SET k " 12"
            OBJECT ENCODING k
            SET k ""
            OBJECT ENCODING k
            SET s44 abcdefghijabcdefghijabcdefghijabcdefghijabcd
            OBJECT ENCODING s44
            SET s45 abcdefghijabcdefghijabcdefghijabcdefghijabcde
            OBJECT ENCODING s45
            SET a ab
            APPEND a c
            OBJECT ENCODING a
            APPEND fresh 123
            OBJECT ENCODING fresh
            SET n 12
            APPEND n 3
            OBJECT ENCODING n
            INCR n
            OBJECT ENCODING n
            SETRANGE r 0 xy
            OBJECT ENCODING r
            SET r2 xyz
            SETRANGE r2 1 q
            OBJECT ENCODING r2
            RENAME r2 r3
            OBJECT ENCODING r3
            INCRBYFLOAT f 1.5
            OBJECT ENCODING f
            GETSET g 77
            OBJECT ENCODING g
            SET big 10000
            OBJECT REFCOUNT big
            SET small 9999
            OBJECT REFCOUNT small
            "#,
        );

        d.script("collections");
        d.run(
            r#"
            RPUSH l a b c
            OBJECT ENCODING l
            SADD si 1 2 3
            OBJECT ENCODING si
            SADD si -7
            OBJECT ENCODING si
            SADD si 01
            OBJECT ENCODING si
            SREM si 01
            OBJECT ENCODING si
            SADD ss a
            OBJECT ENCODING ss
            HSET h f v
            OBJECT ENCODING h
            HSET h long 12345678901234567890123456789012345678901234567890123456789012345
            OBJECT ENCODING h
            HDEL h long
            OBJECT ENCODING h
            HSET h2 f 1234567890123456789012345678901234567890123456789012345678901234
            OBJECT ENCODING h2
            ZADD z 1 a
            OBJECT ENCODING z
            ZADD z 2 12345678901234567890123456789012345678901234567890123456789012345
            OBJECT ENCODING z
            ZADD z2 1 1234567890123456789012345678901234567890123456789012345678901234
            OBJECT ENCODING z2
            OBJECT REFCOUNT l
            shape: OBJECT IDLETIME l
            DEL h
            HSET h f v
            OBJECT ENCODING h
            "#,
        );

        d.script("the size knobs");
        d.run(
            r#"
            CONFIG SET hash-max-listpack-entries 2
            CONFIG SET zset-max-listpack-entries 2
            CONFIG SET set-max-intset-entries 2
            HSET h a 1 b 2
            OBJECT ENCODING h
            HSET h c 3
            OBJECT ENCODING h
            HDEL h c b
            OBJECT ENCODING h
            ZADD z 1 a 2 b
            OBJECT ENCODING z
            ZADD z 3 c
            OBJECT ENCODING z
            SADD s 1 2
            OBJECT ENCODING s
            SADD s 3
            OBJECT ENCODING s
            CONFIG SET hash-max-listpack-entries 128
            CONFIG SET zset-max-listpack-entries 128
            CONFIG SET set-max-intset-entries 512
            HSET h2 a 1
            OBJECT ENCODING h2
            "#,
        );

        d.script("errors");
        d.run(
            r#"
            OBJECT
            OBJECT ENCODING
            OBJECT ENCODING a b
            OBJECT ENCODING nokey
            OBJECT REFCOUNT nokey
            OBJECT IDLETIME nokey
            OBJECT FREQ nokey
            SET k v
            OBJECT FREQ k
            OBJECT NOSUCH k
            OBJECT HELP
            OBJECT HELP x
            "#,
        );
    });
}
