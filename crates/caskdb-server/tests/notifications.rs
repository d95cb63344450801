//! Keyspace notifications against a real redis-server, in both protocols: the same commands
//! with `notify-keyspace-events` set, and every `__keyevent@…` / `__keyspace@…` message a
//! subscriber gets compared, in order.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::diff::differential;

#[test]
fn config_of_notify_keyspace_events() {
    differential(|d| {
        d.script("flags");
        d.each(
            "KEA\n Kgn\n KEA$lmn\n E$\n Elshzxetd\n gK\n n\n \"\"\n KEm\n A\n AKEn",
            r"
            CONFIG SET notify-keyspace-events $1
            CONFIG GET notify-keyspace-events
            ",
        );
        d.run(
            r#"
            CONFIG SET notify-keyspace-events Q
            CONFIG SET notify-keyspace-events "K E"
            CONFIG GET notify-keyspace-events
            CONFIG SET notify-keyspace-events ""
            CONFIG GET client-output-buffer-limit
            CONFIG SET client-output-buffer-limit "pubsub 1mb 512kb 10"
            CONFIG GET client-output-buffer-limit
            CONFIG SET client-output-buffer-limit "normal 1 2 3 replica 4gb 5k 6"
            CONFIG GET client-output-buffer-limit
            CONFIG SET client-output-buffer-limit "bad 1 2 3"
            CONFIG SET client-output-buffer-limit "pubsub 1 2"
            CONFIG SET client-output-buffer-limit "pubsub x 2 3"
            CONFIG GET client-output-buffer-limit
            "#,
        );
    });
}

#[test]
fn events_of_each_command() {
    differential(|d| {
        d.script("key events");
        d.run(
            r#"
            CONFIG SET notify-keyspace-events EA
            @1 replies 1: PSUBSCRIBE __keyevent@0__:*
            SET s v
            @1 read:
            SET s v EX 100
            @1 replies 2: read:
            SETEX s2 100 v
            @1 replies 2: read:
            SETNX s v
            SETNX s3 v
            @1 read:
            MSET a 1 b 2
            @1 replies 2: read:
            APPEND s x
            @1 read:
            SETRANGE s 1 y
            @1 read:
            INCR n
            @1 read:
            INCRBYFLOAT n 1.5
            @1 read:
            DECRBY n2 1
            @1 read:
            GETSET s w
            @1 read:
            GETDEL s
            @1 read:
            GETDEL s
            EXPIRE a 100
            @1 read:
            PERSIST a
            @1 read:
            PERSIST a
            GETEX a EX 100
            @1 read:
            GETEX a PERSIST
            @1 read:
            EXPIRE a -1
            @1 read:
            RENAME b c
            @1 replies 2: read:
            SET d x
            @1 read:
            RENAME c d
            @1 replies 2: read:
            DEL d nokey s2 s3
            @1 replies 3: read:
            DEL nokey
            SET m x
            @1 read:
            MOVE m 1
            @1 read:
            SET src x
            @1 read:
            COPY src dst
            @1 read:
            COPY src dst REPLACE
            @1 read:
            "#,
        );

        d.script("collection events");
        d.run(
            r#"
            CONFIG SET notify-keyspace-events EA
            @1 replies 1: PSUBSCRIBE __keyevent@0__:*
            RPUSH l a b c d e
            @1 read:
            LPUSH l z
            @1 read:
            LPUSHX nol x
            LPOP l
            @1 read:
            RPOP l 2
            @1 read:
            LSET l 0 q
            @1 read:
            LINSERT l BEFORE q p
            @1 read:
            LREM l 0 p
            @1 read:
            LTRIM l 0 0
            @1 read:
            LMOVE l l2 LEFT RIGHT
            @1 replies 3: read:
            RPOPLPUSH l2 l2
            @1 replies 2: read:
            LMPOP 1 l2 RIGHT
            @1 replies 2: read:
            RPUSH left a b
            @1 read:
            LMPOP 2 left other RIGHT
            @1 read:
            ZADD min 1 incr 2 b
            @1 read:
            ZMPOP 1 min MAX
            @1 read:
            HSET h f v g w
            @1 read:
            HSET h f v
            @1 read:
            HSETNX h f v
            HINCRBY h n 1
            @1 read:
            HINCRBYFLOAT h n 1.5
            @1 read:
            HDEL h f g n
            @1 replies 2: read:
            SADD s a b c
            @1 read:
            SADD s a
            SREM s a
            @1 read:
            SMOVE s s2 b
            @1 replies 2: read:
            SPOP s
            @1 replies 2: read:
            SADD x 1 2
            @1 read:
            SINTERSTORE dst x s2
            SUNIONSTORE dst x s2
            @1 read:
            SDIFFSTORE dst x x
            @1 read:
            ZADD z 1 a 2 b 3 c 4 d
            @1 read:
            ZADD z INCR 1 a
            @1 read:
            ZINCRBY z 1 a
            @1 read:
            ZREM z a
            @1 read:
            ZREMRANGEBYSCORE z 2 2
            @1 read:
            ZREMRANGEBYRANK z 0 0
            @1 read:
            ZPOPMIN z
            @1 replies 2: read:
            ZADD z 1 a 2 b
            @1 read:
            ZPOPMAX z
            @1 read:
            ZMPOP 1 z MIN
            @1 replies 2: read:
            ZADD z 1 a
            @1 read:
            ZREMRANGEBYLEX z - +
            @1 replies 2: read:
            "#,
        );

        d.script("keyspace channel, classes, new keys, other databases");
        d.run(
            r#"
            CONFIG SET notify-keyspace-events Kl
            @1 replies 1: PSUBSCRIBE __key*
            SET s v
            RPUSH l a
            @1 read:
            CONFIG SET notify-keyspace-events KEn$
            SET s w
            @1 replies 2: read:
            SET fresh v
            @1 replies 4: read:
            SELECT 3
            SET k v
            @1 replies 4: read:
            CONFIG SET notify-keyspace-events ""
            SET k w
            CONFIG SET notify-keyspace-events Eg
            MULTI
            DEL k
            SET k x
            DEL k
            EXEC
            @1 replies 2: read:
            @1 replies 1: PUNSUBSCRIBE
            "#,
        );

        d.script("expired keys are announced");
        d.run(
            r#"
            CONFIG SET notify-keyspace-events Ex
            @1 replies 1: SUBSCRIBE __keyevent@0__:expired
            SET k v PX 20
            @1 read:
            RPUSH l a b
            PEXPIRE l 20
            HSET h f v
            @1 read:
            EXISTS k l h
            @1 replies 1: SUBSCRIBE __keyevent@5__:expired
            SELECT 5
            SET k5 v PX 1
            @1 read:
            "#,
        );
    });
}
