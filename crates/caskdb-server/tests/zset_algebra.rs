#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
//! Sorted-set algebra (ZUNION, ZINTER, ZDIFF, their *STORE forms, ZINTERCARD), ZRANGESTORE,
//! ZRANDMEMBER, SINTERCARD, and the small server commands (TOUCH, WAIT, ROLE, LASTSAVE, SAVE,
//! BGSAVE): differential scripts against redis-server, each run in RESP2 and RESP3.
//!
//! Replies are compared exactly, except:
//! - ZRANDMEMBER (`random:`): its picks are random, so shapes and lengths are compared and each
//!   side's picks checked against its own sorted set (see `Diff::random`);
//! - WAIT asks for no replica, or for one with a short timeout: caskdb answers 0 at once where
//!   Redis answers 0 once the timeout is over (README's differences);
//! - LASTSAVE (`near 10:`): the Unix time of each server's start or last save; the two servers
//!   start, and save, a moment apart.

mod common;

use common::diff::{Diff, differential};

/// Sorted sets and sets the scripts combine.
const DATA: &str = r"
    ZADD a 1 x 2 y 3 z
    ZADD b 10 y 20 z 30 w
    SADD s x w q
    SET str v
    RPUSH list e
    ZADD inf 1 p inf q -inf r
    ZADD ninf -inf q inf r 5 p
    ZADD ties 1 m 1 c 1 a 0 k
    ZADD lex 0 a 0 b 0 c 0 d 0 e
    ZADD single 5 solo
";

/// Starts a script (`Diff::script` flushes both servers), then loads [`DATA`].
fn script(d: &mut Diff, name: &str) {
    d.script(name);
    d.run(DATA);
}

#[test]
fn union_inter_diff() {
    differential(|d| {
        script(d, "plain");
        d.run(
            r"
            ZUNION 2 a b
            ZUNION 2 a b WITHSCORES
            ZINTER 2 a b WITHSCORES
            ZDIFF 2 a b WITHSCORES
            ZDIFF 2 b a
            ZUNION 1 a
            ZINTER 1 a WITHSCORES
            ZDIFF 1 a withscores
            ZUNION 3 a b ties WITHSCORES
            ZINTER 2 ties ties WITHSCORES
            ZUNION 2 a b WITHSCORES WITHSCORES
            ",
        );

        script(d, "sets as sources score 1");
        d.run(
            r"
            ZUNION 2 a s WITHSCORES
            ZINTER 2 s a WITHSCORES
            ZDIFF 2 a s WITHSCORES
            ZDIFF 2 s a WITHSCORES
            ZUNION 1 s WITHSCORES
            ZUNION 2 s s WEIGHTS 2 3 WITHSCORES
            ZINTER 2 s b AGGREGATE MAX WITHSCORES
            ",
        );

        script(d, "missing keys and duplicates");
        d.run(
            r"
            ZUNION 2 nokey a WITHSCORES
            ZINTER 2 nokey a
            ZINTER 2 a nokey WITHSCORES
            ZDIFF 2 nokey a
            ZDIFF 2 a nokey WITHSCORES
            ZUNION 2 nokey nokey2
            ZINTER 2 a a WITHSCORES
            ZUNION 3 a a a WEIGHTS 1 2 3 WITHSCORES
            ZDIFF 2 a a
            ZDIFF 3 a b b WITHSCORES
            ",
        );

        script(d, "weights and aggregate");
        d.run(
            r"
            ZUNION 2 a b WEIGHTS 2 0.5 WITHSCORES
            ZUNION 2 a b AGGREGATE MIN WITHSCORES
            ZUNION 2 a b AGGREGATE max WITHSCORES
            ZUNION 2 a b aggregate SUM WITHSCORES
            ZUNION 2 a b AGGREGATE MAX WEIGHTS 2 0.5 WithScores
            ZUNION 2 a b WEIGHTS 1 2 WEIGHTS 3 4 WITHSCORES
            ZUNION 2 a b WEIGHTS 0x10 1 WITHSCORES
            ZUNION 2 a b WEIGHTS -1 1e-3 WITHSCORES
            ZINTER 2 a b WEIGHTS 0.1 0.2 WITHSCORES
            ZUNION 2 a b WEIGHTS 1 inf WITHSCORES
            ZUNION 2 a b WEIGHTS 1 -inf AGGREGATE MIN WITHSCORES
            ZUNION 1 a WEIGHTS -0 WITHSCORES
            ZUNION 2 a b WEIGHTS 1 -0 WITHSCORES
            ",
        );

        // Redis turns inf + -inf (and inf * 0 as a weighted score) into 0; a NaN never wins
        // MIN or MAX. `inf` and `ninf` have the same size, so they are taken in this order.
        script(d, "infinities and NaN");
        d.run(
            r"
            ZUNION 2 inf ninf WITHSCORES
            ZUNION 2 inf ninf AGGREGATE MIN WITHSCORES
            ZUNION 2 inf ninf AGGREGATE MAX WITHSCORES
            ZINTER 2 inf ninf WITHSCORES
            ZINTER 2 inf ninf WEIGHTS 0 1 WITHSCORES
            ZINTER 2 inf ninf WEIGHTS 1 0 WITHSCORES
            ZINTER 2 inf ninf WEIGHTS 1 0 AGGREGATE MIN WITHSCORES
            ZINTER 2 inf ninf WEIGHTS 1 0 AGGREGATE MAX WITHSCORES
            ZINTER 2 inf ninf WEIGHTS 0 1 AGGREGATE MAX WITHSCORES
            ZUNION 2 inf ninf WEIGHTS 0 0 WITHSCORES
            ZINTER 2 ninf inf WEIGHTS 0 1 WITHSCORES
            ZUNION 2 inf inf WITHSCORES
            ZUNION 2 inf inf WEIGHTS 1 -1 WITHSCORES
            ZUNIONSTORE dst 2 inf ninf
            ZRANGE dst 0 -1 WITHSCORES
            ",
        );

        // Smallest source first: with 1e16, 1 and 1 the order of the additions shows.
        script(d, "sources are added smallest first");
        d.run(
            r"
            ZADD big 1e16 m 0 f1 0 f2
            ZADD one 1 m
            ZADD one2 1 m 0 g
            ZUNION 3 big one one2 WITHSCORES
            ZUNION 3 one big one2 WITHSCORES
            ZINTER 3 big one2 one WITHSCORES
            ZINTER 3 one2 big one WITHSCORES
            ",
        );

        script(d, "errors");
        d.run(
            r#"
            ZUNION 0 a
            ZUNION -1 a
            ZINTER 0 a
            ZDIFF -9223372036854775808 a
            ZUNION 3 a b
            ZUNION 9223372036854775807 a
            ZUNION 9223372036854775808 a
            ZUNION abc a
            ZUNION 1.5 a
            ZUNION 2 a str
            ZUNION 2 str nokey
            ZUNION 2 nokey list
            ZINTER 2 nokey str
            ZDIFF 2 nokey str
            ZUNION 2 str a WEIGHTS x
            ZUNION 2 a str foo
            ZUNION 2 nokey a foo
            ZUNION 2 a b WEIGHTS 1
            ZUNION 2 a b WEIGHTS 1 x
            ZUNION 2 a b WEIGHTS 1 2 3
            ZUNION 2 a b WEIGHTS nan 1
            ZUNION 2 a b WEIGHTS 1e400 1
            ZUNION 2 a b WEIGHTS 1e-400 1
            ZUNION 2 a b WEIGHTS " 1" 1
            ZUNION 2 a b WEIGHTS "" 1
            ZUNION 2 a b AGGREGATE
            ZUNION 2 a b AGGREGATE foo
            ZUNION 2 a b AGGREGATE MIN AGGREGATE
            ZDIFF 2 a b WEIGHTS 1 1
            ZDIFF 2 a b AGGREGATE SUM
            ZINTER 2 a b LIMIT 1
            ZUNION 1
            ZDIFF
            "#,
        );
    });
}

#[test]
fn store_forms() {
    differential(|d| {
        script(d, "store and read back");
        d.run(
            r"
            ZUNIONSTORE d 2 a b
            ZRANGE d 0 -1 WITHSCORES
            TYPE d
            ZINTERSTORE d 2 a b WEIGHTS 2 3
            ZRANGE d 0 -1 WITHSCORES
            ZDIFFSTORE d 2 a b
            ZRANGE d 0 -1 WITHSCORES
            ZSCORE d x
            ZUNIONSTORE d 2 a s AGGREGATE MAX
            ZRANGE d 0 -1 WITHSCORES
            ZCARD d
            ",
        );

        script(d, "an empty result deletes the destination");
        d.run(
            r"
            ZINTERSTORE d 2 a nokey
            EXISTS d
            ZINTERSTORE d 2 a nokey
            ZDIFFSTORE d 2 a a
            ZUNIONSTORE d 2 nokey nokey2
            EXISTS d
            ",
        );

        script(d, "the destination may be a source, or of any type");
        d.run(
            r"
            ZADD self 1 x 2 y
            ZUNIONSTORE self 2 self a
            ZRANGE self 0 -1 WITHSCORES
            ZINTERSTORE self 2 self self WEIGHTS 2 0.5
            ZRANGE self 0 -1 WITHSCORES
            ZDIFFSTORE self 2 self a
            EXISTS self
            SADD sset x y
            ZUNIONSTORE sset 2 sset a
            TYPE sset
            ZRANGE sset 0 -1 WITHSCORES
            ZUNIONSTORE str 1 a
            TYPE str
            SET withttl v EX 1000
            ZUNIONSTORE withttl 1 a
            TTL withttl
            ZUNIONSTORE list 1 nokey
            EXISTS list
            ",
        );

        // -0 from a weight: ZUNION replies -0, a stored (small) result reads back 0.
        script(d, "negative zero");
        d.run(
            r"
            ZUNIONSTORE nz 1 a WEIGHTS -0
            ZSCORE nz x
            ZRANGE nz 0 -1 WITHSCORES
            ZADD nz 0 a
            ZRANGE nz 0 -1 WITHSCORES
            ",
        );

        script(d, "store errors change nothing");
        d.run(
            r"
            ZADD keep 1 k
            ZUNIONSTORE keep 0 a
            ZUNIONSTORE keep -5 a
            ZINTERSTORE keep 0 a
            ZDIFFSTORE keep 0 a
            ZUNIONSTORE keep 2 a str
            ZUNIONSTORE keep 2 a b WITHSCORES
            ZUNIONSTORE keep 2 a b WEIGHTS 1 nan
            ZDIFFSTORE keep 2 a b AGGREGATE MIN
            ZUNIONSTORE keep 3 a b
            ZUNIONSTORE keep 1
            ZRANGE keep 0 -1 WITHSCORES
            ",
        );

        script(d, "inside MULTI");
        d.run(
            r"
            MULTI
            ZUNIONSTORE m 2 a b
            ZINTER 2 m a WITHSCORES
            ZUNIONSTORE m 2 a str
            ZRANGE m 0 -1
            EXEC
            ",
        );

        script(d, "WATCH");
        d.watch_writes(
            "w",
            &[
                ("ZUNIONSTORE w 1 a", "ZCARD w"),
                // An empty result on a missing destination touches nothing.
                ("ZINTERSTORE w2 2 a nokey", "ZCARD w"),
                ("ZRANGESTORE w a 0 0", "ZCARD w"),
                ("ZDIFFSTORE w 2 a a", "EXISTS w"),
            ],
        );
        d.watch_writes("w3", &[("ZINTERSTORE w3 2 a nokey", "EXISTS w3")]);
    });
}

#[test]
fn zintercard_and_sintercard() {
    differential(|d| {
        script(d, "ZINTERCARD");
        d.run(
            r"
            ZINTERCARD 2 a b
            ZINTERCARD 1 a
            ZINTERCARD 2 a s
            ZINTERCARD 2 a nokey
            ZINTERCARD 2 a a
            ZINTERCARD 2 a b LIMIT 1
            ZINTERCARD 2 a b LIMIT 0
            ZINTERCARD 2 a b LIMIT 9223372036854775807
            ZINTERCARD 2 a b LIMIT 1 LIMIT 0
            ZINTERCARD 2 a b LIMIT -1
            ZINTERCARD 2 a b LIMIT x
            ZINTERCARD 2 a b LIMIT
            ZINTERCARD 0 a
            ZINTERCARD -1 a
            ZINTERCARD 3 a b
            ZINTERCARD x a
            ZINTERCARD 2 a str
            ZINTERCARD 2 nokey str LIMIT 1
            ZINTERCARD 2 a b WITHSCORES
            ZINTERCARD 2 a b WEIGHTS 1 1
            ZINTERCARD 2 a b AGGREGATE SUM
            ZINTERCARD 1
            ",
        );

        script(d, "SINTERCARD");
        d.run(
            r"
            SADD s2 x q r
            SINTERCARD 2 s s2
            SINTERCARD 1 s
            SINTERCARD 2 s s
            SINTERCARD 2 s nokey
            SINTERCARD 1 s LIMIT 1
            SINTERCARD 1 s LIMIT 0
            SINTERCARD 1 s LIMIT 9223372036854775807
            SINTERCARD 1 s LIMIT 1 LIMIT 2
            SINTERCARD 1 s LIMIT -1
            SINTERCARD 1 s LIMIT x
            SINTERCARD 1 s LIMIT
            SINTERCARD 1 s foo
            SINTERCARD 0 s
            SINTERCARD -1 s
            SINTERCARD x s
            SINTERCARD 3 s
            SINTERCARD 9223372036854775807 s
            SINTERCARD 2 s str
            SINTERCARD 2 nokey str
            SINTERCARD 2 s a
            SINTERCARD 2 str s foo
            SINTERCARD 1
            SMISMEMBER s x nope q
            SMISMEMBER nokey x
            SMISMEMBER str x
            ",
        );
    });
}

#[test]
fn zrangestore() {
    differential(|d| {
        script(d, "every ZRANGE option");
        for range in [
            "0 -1",
            "1 1",
            "-2 -1",
            "5 10",
            "0 -1 REV",
            "(1 3 BYSCORE",
            "-inf +inf BYSCORE LIMIT 1 1",
            "+inf -inf BYSCORE REV",
            "3 (1 BYSCORE REV LIMIT 0 1",
            "0 +inf BYSCORE LIMIT 0 9223372036854775807",
            "0 +inf BYSCORE LIMIT 0 -1",
            "0 +inf BYSCORE LIMIT 5 1",
            "0 -1 LIMIT 1 -1",
        ] {
            d.run(&format!(
                "ZRANGESTORE dst a {range}\nZRANGE dst 0 -1 WITHSCORES\nEXISTS dst"
            ));
        }
        d.run(
            r"
            ZRANGESTORE dst lex [b (e BYLEX
            ZRANGE dst 0 -1
            ZRANGESTORE dst lex + - BYLEX REV LIMIT 1 2
            ZRANGE dst 0 -1
            ZRANGESTORE dst lex - + BYLEX
            ZRANGESTORE dst lex [x + BYLEX
            EXISTS dst
            ",
        );

        script(d, "destination and errors");
        d.run(
            r"
            ZRANGESTORE dst nokey 0 -1
            ZRANGESTORE a a 0 1
            ZRANGE a 0 -1 WITHSCORES
            ZRANGESTORE str b 0 0
            TYPE str
            ZRANGESTORE dst list 0 -1
            ZRANGESTORE dst b 0 -1 WITHSCORES
            ZRANGESTORE dst b 0 -1 LIMIT 0 1
            ZRANGESTORE dst lex - + BYLEX WITHSCORES
            ZRANGESTORE dst b x 1
            ZRANGESTORE dst b 0 1 BYSCORE BYLEX
            ZRANGESTORE dst b a b BYSCORE
            ZRANGESTORE dst b a b BYLEX
            ZRANGESTORE dst b 0 1 LIMIT 0
            ZRANGESTORE dst b 0
            ZRANGE dst 0 -1 WITHSCORES
            ",
        );
    });
}

#[test]
fn zrandmember() {
    differential(|d| {
        script(d, "random picks");
        // Random replies: see `Diff::random` (shapes, lengths, membership, distinctness).
        d.run(
            r"
            random: ZRANDMEMBER a
            random: ZRANDMEMBER single
            random: ZRANDMEMBER a 2
            random: ZRANDMEMBER a 3
            random: ZRANDMEMBER a 10
            random: ZRANDMEMBER a 9223372036854775807
            random: ZRANDMEMBER a 2 WITHSCORES
            random: ZRANDMEMBER a 10 withscores
            random: ZRANDMEMBER inf 3 WITHSCORES
            random: ZRANDMEMBER a -5
            random: ZRANDMEMBER a -5 WITHSCORES
            random: ZRANDMEMBER single -3 WITHSCORES
            random: ZRANDMEMBER a 4611686018427387903 WITHSCORES
            ",
        );
        script(d, "exact cases");
        d.run(
            r"
            ZRANDMEMBER nokey
            ZRANDMEMBER nokey 5
            ZRANDMEMBER nokey 5 WITHSCORES
            ZRANDMEMBER nokey -5
            ZRANDMEMBER a 0
            ZRANDMEMBER a 0 WITHSCORES
            ZRANDMEMBER single 1 WITHSCORES
            ZRANDMEMBER single -2
            ZRANDMEMBER a x
            ZRANDMEMBER a -9223372036854775808
            ZRANDMEMBER a -9223372036854775807 WITHSCORES
            ZRANDMEMBER a 4611686018427387904 WITHSCORES
            ZRANDMEMBER a 5 WITHSCORES foo
            ZRANDMEMBER a 5 foo
            ZRANDMEMBER str
            ZRANDMEMBER str 1
            ZRANDMEMBER s 1
            ZRANDMEMBER str x
            ZRANDMEMBER nokey x
            ZRANDMEMBER nokey 1 WITHSCORES x
            ZRANDMEMBER
            ",
        );
    });
}

#[test]
fn keyspace_events() {
    differential(|d| {
        d.script("events of the store commands");
        d.run(
            r"
            CONFIG SET notify-keyspace-events EAn
            @1 replies 1: PSUBSCRIBE __keyevent@0__:*
            ZADD a 1 x 2 y
            @1 replies 2: read:
            SADD s x z
            @1 replies 2: read:
            ZUNIONSTORE d 2 a s
            @1 replies 2: read:
            ZUNIONSTORE d 2 a s WEIGHTS 2 1
            @1 read:
            ZINTERSTORE d 2 a s
            @1 read:
            ZDIFFSTORE d 2 a s
            @1 read:
            ZDIFFSTORE d 2 a a
            @1 read:
            ZDIFFSTORE d 2 a a
            ZINTERSTORE d 2 a nokey
            ZRANGESTORE d a 0 0
            @1 replies 2: read:
            ZRANGESTORE d a 5 6
            @1 read:
            ZUNIONSTORE a 1 a WEIGHTS 2
            @1 read:
            SET str v
            @1 replies 2: read:
            ZUNIONSTORE str 1 a
            @1 read:
            ZRANGESTORE str nokey 0 -1
            @1 read:
            SINTERSTORE ds s
            @1 replies 2: read:
            SINTERSTORE ds s
            @1 read:
            ZUNION 2 a s
            ZINTERCARD 1 a
            random: ZRANDMEMBER a
            TOUCH a s
            SET end v
            @1 replies 2: read:
            ",
        );
        d.script("keyspace channel");
        d.run(
            r"
            CONFIG SET notify-keyspace-events Kz
            @2 replies 1: SUBSCRIBE __keyspace@0__:dst
            ZADD src 1 m
            ZINTERSTORE dst 1 src
            @2 read:
            ZRANGESTORE dst src 0 0
            @2 read:
            DEL dst
            CONFIG SET notify-keyspace-events Kg
            ZRANGESTORE dst src 0 -1
            ZDIFFSTORE dst 2 src src
            @2 read:
            ",
        );
    });
}

#[test]
fn blocked_clients_served_by_stores() {
    differential(|d| {
        d.script("BZPOPMIN served by ZUNIONSTORE");
        d.run(
            r"
            ZADD a 1 x 2 y
            SADD s q
            @1 send: BZPOPMIN d 0
            blocked 1:
            ZUNIONSTORE d 2 a s
            @1 read:
            ZRANGE d 0 -1 WITHSCORES
            ",
        );
        d.script("an empty result serves no one");
        d.run(
            r"
            @1 send: BZPOPMAX e 0.2
            blocked 1:
            ZINTERSTORE e 2 a nokey
            @1 read:
            EXISTS e
            ",
        );
        d.script("ZRANGESTORE, ZDIFFSTORE and ZINTERSTORE serve in order");
        d.run(
            r"
            ZADD a 1 x 2 y
            SADD s q
            @1 send: BZPOPMAX r 0
            blocked 1:
            @2 send: BZMPOP 0 2 nokey r MIN COUNT 5
            blocked 2:
            ZRANGESTORE r a 0 -1
            @1 read:
            @2 read:
            EXISTS r
            @1 send: BZPOPMIN i 0
            blocked 1:
            MULTI
            ZINTERSTORE i 2 a a
            ZDIFFSTORE i 2 s a
            EXEC
            @1 read:
            ZRANGE i 0 -1 WITHSCORES
            ",
        );
    });
}

#[test]
fn server_commands() {
    differential(|d| {
        d.script("TOUCH");
        d.run(
            r"
            SET k v
            RPUSH l a
            TOUCH k
            TOUCH k l nokey k
            TOUCH nokey
            TOUCH
            ",
        );
        d.script("WAIT");
        d.run(
            r"
            WAIT 0 0
            WAIT -1 0
            WAIT 1 10
            WAIT 0 9223372036854775807
            WAIT x 0
            WAIT 0 x
            WAIT 1 -1
            WAIT 0 1.5
            WAIT 0
            MULTI
            WAIT 5 0
            EXEC
            ",
        );
        d.script("ROLE, LASTSAVE, SAVE, BGSAVE");
        d.run(
            r"
            ROLE
            ROLE x
            near 10: LASTSAVE
            LASTSAVE x
            SAVE
            near 10: LASTSAVE
            SAVE x
            MULTI
            SAVE
            PING
            EXEC
            BGSAVE foo
            BGSAVE SCHEDULE x
            BGSAVE
            ",
        );
    });
}

#[test]
fn bgsave_inside_multi() {
    differential(|d| {
        // A BGSAVE in a transaction is scheduled (Redis's reply inside EXEC).
        d.run(
            r"
            MULTI
            BGSAVE
            ROLE
            EXEC
            ",
        );
    });
}
