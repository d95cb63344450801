#!/usr/bin/env python3
"""redis-py (pinned 8.2.0) against a Redis-compatible server: pub/sub, blocking list and sorted
set commands, sorted set and hash reply shapes, pipelines and transactions, keyspace
notifications, its Lock and scripts, streams and consumer groups, each as redis-py's users meet
them.

    python3 redis_py_test.py [--host H] [--port P] [--protocol 2|3]

Host, port and protocol default to $CLIENT_TEST_HOST, $CLIENT_TEST_PORT and
$CLIENT_TEST_PROTOCOL, then 127.0.0.1, 6379 and 3 (redis-py 8's default). Every group of checks
runs even when an earlier one failed; the exit status is 0 only when all passed. Every wait has
a deadline and a watchdog ends the process, so the script always ends by itself. The expected
values are what redis-py returns from Redis 7.0 itself (tests/client_libraries.rs runs this
script against caskdb; run it against redis-server to see the reference pass). Keys and
channels carry a per-run prefix, but the keyspace group sets the server-wide
notify-keyspace-events (restoring it after): give each run a server of its own, or run them one
after another.
"""

import argparse
import os
import queue
import sys
import threading
import time
import traceback
import uuid

import redis

WANT_REDIS_PY = "8.2.0"
# The whole run ends by then, whatever hangs.
WATCHDOG_SECONDS = 100
# A command's reply (blocking commands here block at most 5 s).
SOCKET_TIMEOUT = 15


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default=os.environ.get("CLIENT_TEST_HOST", "127.0.0.1"))
    ap.add_argument("--port", type=int, default=int(os.environ.get("CLIENT_TEST_PORT", "6379")))
    ap.add_argument(
        "--protocol",
        type=int,
        choices=(2, 3),
        default=int(os.environ.get("CLIENT_TEST_PROTOCOL", "3")),
    )
    return ap.parse_args()


ARGS = parse_args()
PROTO = ARGS.protocol
# Keys and channels of this run: two runs on one server (RESP2, RESP3) do not meet.
RUN = f"rp{PROTO}-{uuid.uuid4().hex[:8]}"


def K(name):
    """A key or channel name of this run, as bytes."""
    return f"{RUN}:{name}".encode()


def client(**kw):
    return redis.Redis(
        host=ARGS.host,
        port=ARGS.port,
        protocol=PROTO,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=10,
        **kw,
    )


# ---------------------------------------------------------------------------------------------
# Checks.


class CheckFailed(AssertionError):
    pass


def same(a, b):
    """Equal, with the same types all the way down (1 == 1.0 and (1,) == [1] are not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


def eq(actual, expected, what):
    if not same(actual, expected):
        raise CheckFailed(f"{what}: expected {expected!r}, got {actual!r}")


def ok(cond, what):
    if not cond:
        raise CheckFailed(what)


def pair(*items):
    """A (member, score)-like pair as redis-py gives it: a tuple in RESP2, a list in RESP3."""
    return tuple(items) if PROTO == 2 else list(items)


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def left(self):
        return max(0.0, self.end - time.monotonic())

    def passed(self):
        return time.monotonic() >= self.end


def wait_until(pred, seconds, what):
    """Polls `pred` (every 20 ms) until it holds; fails after `seconds`. Returns its last value."""
    d = Deadline(seconds)
    while True:
        v = pred()
        if v:
            return v
        if d.passed():
            raise CheckFailed(f"timed out after {seconds} s waiting for {what}")
        time.sleep(0.02)


def next_message(p, seconds, what, accept=lambda m: True):
    """The next pub/sub message that `accept` takes, read with get_message(timeout=...) until a
    deadline; the messages passed over are named in the failure."""
    d = Deadline(seconds)
    skipped = []
    while not d.passed():
        m = p.get_message(timeout=min(0.5, d.left()))
        if m is None:
            continue
        if accept(m):
            return m
        skipped.append(m)
    raise CheckFailed(f"no {what} within {seconds} s (other messages: {skipped!r})")


def msg(kind, channel, data, pattern=None):
    return {"type": kind, "pattern": pattern, "channel": channel, "data": data}


# ---------------------------------------------------------------------------------------------
# (a) Pub/sub.


def test_pubsub_subscribe_get_message():
    r = client()
    p = r.pubsub()
    ch1, ch2 = K("news"), K("sport")
    p.subscribe(ch1, ch2)
    eq(p.get_message(timeout=5), msg("subscribe", ch1, 1), "first subscribe confirmation")
    eq(p.get_message(timeout=5), msg("subscribe", ch2, 2), "second subscribe confirmation")
    ok(p.subscribed, "pubsub.subscribed after SUBSCRIBE")

    eq(r.publish(ch1, b"hello"), 1, "PUBLISH to one subscriber: receivers")
    eq(r.publish(ch2, "world"), 1, "PUBLISH of a str: receivers")
    eq(r.publish(K("nobody"), b"x"), 0, "PUBLISH to no subscriber: receivers")
    eq(next_message(p, 5, "message on news"), msg("message", ch1, b"hello"), "message 1")
    eq(next_message(p, 5, "message on sport"), msg("message", ch2, b"world"), "message 2")

    # Many messages keep their order.
    for i in range(50):
        r.publish(ch1, str(i))
    got = [next_message(p, 5, f"message {i}")["data"] for i in range(50)]
    eq(got, [str(i).encode() for i in range(50)], "50 messages in publishing order")

    # PUBSUB NUMSUB / CHANNELS / NUMPAT.
    eq(r.pubsub_numsub(ch1, ch2, K("nobody")), [(ch1, 1), (ch2, 1), (K("nobody"), 0)], "NUMSUB")
    eq(sorted(r.pubsub_channels(f"{RUN}:*")), sorted([ch1, ch2]), "PUBSUB CHANNELS pattern")
    ok(ch1 in r.pubsub_channels(), f"PUBSUB CHANNELS without pattern lists {ch1!r}")

    # UNSUBSCRIBE one channel, then all.
    p.unsubscribe(ch1)
    eq(next_message(p, 5, "unsubscribe confirmation"), msg("unsubscribe", ch1, 1), "UNSUBSCRIBE")
    eq(r.publish(ch1, b"gone"), 0, "PUBLISH after UNSUBSCRIBE: receivers")
    eq(r.pubsub_numsub(ch1), [(ch1, 0)], "NUMSUB after UNSUBSCRIBE")
    eq(r.pubsub_channels(f"{RUN}:*"), [ch2], "CHANNELS after UNSUBSCRIBE")
    p.unsubscribe()
    eq(next_message(p, 5, "unsubscribe-all confirmation"), msg("unsubscribe", ch2, 0), "UNSUBSCRIBE all")
    ok(not p.subscribed, "pubsub.subscribed after unsubscribing from everything")
    eq(r.pubsub_channels(f"{RUN}:*"), [], "CHANNELS after UNSUBSCRIBE all")
    p.close()
    r.close()


def test_pubsub_patterns():
    r = client()
    p = r.pubsub()
    pat = f"{RUN}:news.*".encode()
    p.psubscribe(pat)
    eq(p.get_message(timeout=5), msg("psubscribe", pat, 1), "psubscribe confirmation")
    eq(r.pubsub_numpat() >= 1, True, "NUMPAT counts the pattern")
    eq(r.publish(K("news.tech"), b"rust"), 1, "PUBLISH matching a pattern: receivers")
    eq(r.publish(K("weather"), b"rain"), 0, "PUBLISH matching nothing: receivers")
    eq(
        next_message(p, 5, "pmessage"),
        msg("pmessage", K("news.tech"), b"rust", pattern=pat),
        "pmessage carries pattern, channel and data",
    )

    # A channel and a matching pattern on one connection: the message arrives twice.
    p.subscribe(K("news.art"))
    eq(next_message(p, 5, "subscribe confirmation"), msg("subscribe", K("news.art"), 2), "subscribe")
    eq(r.publish(K("news.art"), b"both"), 2, "PUBLISH to channel + pattern: receivers")
    got = [next_message(p, 5, "message or pmessage") for _ in range(2)]
    want = [msg("message", K("news.art"), b"both"), msg("pmessage", K("news.art"), b"both", pattern=pat)]
    eq(sorted(got, key=lambda m: m["type"]), want, "message and pmessage for one PUBLISH")

    # PUBSUB CHANNELS lists channels only, never patterns.
    eq(r.pubsub_channels(f"{RUN}:*"), [K("news.art")], "CHANNELS leaves patterns out")

    p.punsubscribe(pat)
    eq(next_message(p, 5, "punsubscribe confirmation"), msg("punsubscribe", pat, 1), "PUNSUBSCRIBE")
    eq(r.publish(K("news.tech"), b"x"), 0, "PUBLISH after PUNSUBSCRIBE: receivers")
    p.close()
    r.close()


def test_pubsub_binary_channels():
    r = client()
    p = r.pubsub(ignore_subscribe_messages=True)
    ch = K("bin") + b"\x00\xff\r\n*$\x80"
    data = bytes(range(256))
    p.subscribe(ch)
    p.psubscribe(K("bin") + b"\x00*")
    # Confirmations are swallowed (ignore_subscribe_messages) but still read: wait for NUMSUB.
    wait_until(lambda: r.pubsub_numsub(ch) == [(ch, 1)], 5, "NUMSUB of a binary channel to be 1")
    eq(r.pubsub_channels(K("bin") + b"*"), [ch], "CHANNELS returns the binary name unchanged")
    eq(r.publish(ch, data), 2, "PUBLISH binary: receivers (channel + pattern)")
    got = [next_message(p, 5, "binary message"), next_message(p, 5, "binary pmessage")]
    want = [
        msg("message", ch, data),
        msg("pmessage", ch, data, pattern=K("bin") + b"\x00*"),
    ]
    eq(sorted(got, key=lambda m: m["type"]), want, "binary channel and payload round-trip")
    p.close()
    r.close()


def test_pubsub_listen_thread():
    r = client()
    p = r.pubsub()
    ch = K("listen")
    p.subscribe(ch)
    received = queue.Queue()

    def listener():
        try:
            for m in p.listen():
                received.put(m)
                if m["type"] == "message" and m["data"] == b"STOP":
                    return
        except Exception as e:  # noqa: BLE001 - reported through the queue
            received.put(e)

    t = threading.Thread(target=listener, daemon=True)
    t.start()
    # The confirmation comes first through listen(); after it the subscription is live.
    first = received.get(timeout=5)
    if isinstance(first, Exception):
        raise CheckFailed(f"listen() raised {type(first).__name__}: {first}")
    eq(first, msg("subscribe", ch, 1), "listen() yields the subscribe confirmation first")
    n = 200
    for i in range(n):
        eq(r.publish(ch, f"m{i}"), 1, f"PUBLISH {i}: receivers")
    r.publish(ch, "STOP")
    t.join(timeout=20)
    ok(not t.is_alive(), "listen() thread ended after STOP within 20 s")
    got = []
    while not received.empty():
        m = received.get()
        if isinstance(m, Exception):
            raise CheckFailed(f"listen() raised {type(m).__name__}: {m}")
        got.append(m)
    eq(
        got,
        [msg("message", ch, f"m{i}".encode()) for i in range(n)] + [msg("message", ch, b"STOP")],
        "every message through listen(), in order",
    )
    p.close()
    r.close()


# ---------------------------------------------------------------------------------------------
# (b) Blocking commands.


def test_blpop_workers():
    r = client()
    keys = [K("jobs:a"), K("jobs:b")]
    r.delete(*keys)
    workers, per_key = 4, 100
    popped = [[] for _ in range(workers)]
    errors = []

    def worker(i):
        c = client()
        try:
            while True:
                got = c.blpop(keys, timeout=5)
                if got is None:
                    errors.append(f"worker {i}: BLPOP timed out before its STOP")
                    return
                key, value = got
                if value == b"STOP":
                    return
                popped[i].append((key, value))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(f"worker {i}: {type(e).__name__}: {e}")
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    producer = client()
    for n in range(per_key):
        for k in keys:
            producer.rpush(k, f"{n:04}")
    # The STOPs go last, on the last key: BLPOP takes the first non-empty key, so a worker can
    # only pop a STOP once every earlier item is gone.
    for _ in range(workers):
        producer.rpush(keys[-1], "STOP")
    for t in threads:
        t.join(timeout=30)
    ok(not any(t.is_alive() for t in threads), "every BLPOP worker ended within 30 s")
    ok(not errors, f"worker errors: {errors}")

    every = sorted(item for w in popped for item in w)
    want = sorted((k, f"{n:04}".encode()) for k in keys for n in range(per_key))
    eq(every, want, "every item consumed exactly once")
    for i, w in enumerate(popped):
        for k in keys:
            mine = [v for key, v in w if key == k]
            eq(mine, sorted(mine), f"worker {i} got key {k!r}'s items in FIFO order")
    eq(r.exists(*keys), 0, "the lists are gone once emptied")
    producer.close()
    r.close()


def likely_blocked(r, seconds=2):
    """Waits (at most `seconds`) until INFO says a client is blocked, so that the next write
    most likely wakes a blocked client rather than meeting one that has yet to block. Only a
    likelihood: the checks after it hold either way, and a server without the field just waits."""
    d = Deadline(seconds)
    while not d.passed():
        try:
            if int(r.info("clients").get("blocked_clients", 0)) >= 1:
                return
        except redis.RedisError:
            pass
        time.sleep(0.02)


def test_blocking_basics():
    r = client()
    l, l2, z, none = K("bl"), K("bl2"), K("bz"), K("empty")
    r.delete(l, l2, z, none)

    # BLPOP / BRPOP with data present: no blocking.
    r.rpush(l, "a", "b", "c")
    eq(r.blpop([none, l], timeout=1), pair(l, b"a"), "BLPOP skips an empty key")
    eq(r.brpop(l, timeout=1), pair(l, b"c"), "BRPOP")
    # BLMOVE.
    eq(r.blmove(l, l2, 1, "LEFT", "RIGHT"), b"b", "BLMOVE LEFT RIGHT")
    eq(r.lrange(l2, 0, -1), [b"b"], "BLMOVE destination")
    eq(r.exists(l), 0, "BLMOVE emptied the source")
    eq(r.blmove(none, l2, 0.2, "LEFT", "LEFT"), None, "BLMOVE timeout")
    # Timeouts give None.
    eq(r.blpop(none, timeout=0.2), None, "BLPOP timeout")
    eq(r.brpop([none], timeout=0.2), None, "BRPOP timeout")
    eq(r.bzpopmin(none, timeout=0.2), None, "BZPOPMIN timeout")

    # BZPOPMIN / BZPOPMAX.
    r.zadd(z, {"one": 1, "two": 2, "half": 0.5})
    eq(r.bzpopmin(z, timeout=1), pair(z, b"half", 0.5), "BZPOPMIN")
    eq(r.bzpopmax([none, z], timeout=1), pair(z, b"two", 2.0), "BZPOPMAX")
    eq(r.zrange(z, 0, -1), [b"one"], "left after BZPOPMIN/BZPOPMAX")

    # A blocked client is woken by a push from another client (and by ZADD for BZPOPMIN).
    results = queue.Queue()

    def blocked(fn):
        c = client()
        try:
            results.put(fn(c))
        except Exception as e:  # noqa: BLE001 - reported through the queue
            results.put(f"{type(e).__name__}: {e}")
        finally:
            c.close()

    wl, wz = K("wake:l"), K("wake:z")
    r.delete(wl, wz)
    tl = threading.Thread(target=blocked, args=(lambda c: c.blpop(wl, timeout=5),), daemon=True)
    tl.start()
    likely_blocked(r)
    eq(r.rpush(wl, "x"), 1, "RPUSH for the blocked client")
    tl.join(timeout=10)
    ok(not tl.is_alive(), "the blocked BLPOP returned within 10 s of the RPUSH")
    eq(results.get(timeout=1), pair(wl, b"x"), "BLPOP woken by RPUSH")
    eq(r.exists(wl), 0, "the woken BLPOP took the only item")
    tz = threading.Thread(target=blocked, args=(lambda c: c.bzpopmin(wz, timeout=5),), daemon=True)
    tz.start()
    likely_blocked(r)
    eq(r.zadd(wz, {"m": 7}), 1, "ZADD for the blocked client")
    tz.join(timeout=10)
    ok(not tz.is_alive(), "the blocked BZPOPMIN returned within 10 s of the ZADD")
    eq(results.get(timeout=1), pair(wz, b"m", 7.0), "BZPOPMIN woken by ZADD")
    r.delete(l2, z, wz)
    r.close()


# ---------------------------------------------------------------------------------------------
# (c) Sorted sets, hashes, sets: reply shapes.


def test_sorted_sets_and_shapes():
    r = client()
    z, h, s = K("z"), K("h"), K("s")
    r.delete(z, h, s)
    eq(r.zadd(z, {"a": 1, "b": 2.5, "c": -3, "d": 10}), 4, "ZADD")
    eq(
        r.zrange(z, 0, -1, withscores=True),
        [pair(b"c", -3.0), pair(b"a", 1.0), pair(b"b", 2.5), pair(b"d", 10.0)],
        "ZRANGE WITHSCORES: (bytes, float) pairs",
    )
    eq(r.zrange(z, 0, 1), [b"c", b"a"], "ZRANGE without scores")
    eq(
        r.zrevrange(z, 0, 1, withscores=True),
        [pair(b"d", 10.0), pair(b"b", 2.5)],
        "ZREVRANGE WITHSCORES",
    )
    eq(
        r.zrangebyscore(z, 0, 5, withscores=True),
        [pair(b"a", 1.0), pair(b"b", 2.5)],
        "ZRANGEBYSCORE WITHSCORES",
    )
    eq(
        r.zrevrangebyscore(z, "+inf", 2, withscores=True),
        [pair(b"d", 10.0), pair(b"b", 2.5)],
        "ZREVRANGEBYSCORE WITHSCORES",
    )
    eq(
        r.zrange(z, 0, -1, withscores=True, score_cast_func=int),
        [pair(b"c", -3), pair(b"a", 1), pair(b"b", 2), pair(b"d", 10)],
        "ZRANGE WITHSCORES with score_cast_func=int",
    )
    eq(r.zscore(z, "b"), 2.5, "ZSCORE is a float")
    eq(r.zscore(z, "nope"), None, "ZSCORE of a missing member")
    eq(r.zincrby(z, 0.25, "b"), 2.75, "ZINCRBY returns a float")
    eq(r.zincrby(z, 1, "new"), 1.0, "ZINCRBY of a new member")
    eq(r.zmscore(z, ["a", "nope", "b"]), [1.0, None, 2.75], "ZMSCORE: floats and None")
    eq(r.zadd(z, {"inf": float("inf")}), 1, "ZADD inf")
    eq(r.zscore(z, "inf"), float("inf"), "ZSCORE inf")
    # Without a count, RESP2 gives a list of one pair and RESP3 one flat [member, score].
    one_pop = (lambda m, sc: [(m, sc)]) if PROTO == 2 else (lambda m, sc: [m, sc])
    eq(r.zpopmin(z), one_pop(b"c", -3.0), "ZPOPMIN")
    eq(r.zpopmin(z), one_pop(b"a", 1.0), "ZPOPMIN again")
    eq(r.zpopmin(z, 2), [pair(b"new", 1.0), pair(b"b", 2.75)], "ZPOPMIN with a count")
    eq(r.zpopmax(z), one_pop(b"inf", float("inf")), "ZPOPMAX")
    eq(r.zcard(z), 1, "ZCARD after the pops")

    # Hashes.
    fields = {b"f1": b"v1", b"f2": b"v2", b"f3": b"v3"}
    eq(r.hset(h, mapping=fields), 3, "HSET mapping")
    eq(r.hgetall(h), fields, "HGETALL is a dict")
    eq(r.hgetall(K("nohash")), {}, "HGETALL of a missing key is an empty dict")
    got = r.hrandfield(h, 2, withvalues=True)
    if PROTO == 2:
        ok(isinstance(got, list) and len(got) == 4, f"HRANDFIELD 2 WITHVALUES (RESP2 flat): {got!r}")
        pairs = list(zip(got[0::2], got[1::2]))
    else:
        ok(
            isinstance(got, list) and len(got) == 2 and all(isinstance(p, list) and len(p) == 2 for p in got),
            f"HRANDFIELD 2 WITHVALUES (RESP3 pairs): {got!r}",
        )
        pairs = [tuple(p) for p in got]
    ok(len({f for f, _ in pairs}) == 2, f"HRANDFIELD 2 gives distinct fields: {got!r}")
    for f, v in pairs:
        eq(fields.get(f), v, f"HRANDFIELD pair {f!r}")
    one = r.hrandfield(h)
    ok(one in fields, f"HRANDFIELD without count is a field: {one!r}")

    # Sets.
    eq(r.sadd(s, "x", "y", "z"), 3, "SADD")
    eq(r.smembers(s), {b"x", b"y", b"z"}, "SMEMBERS is a set")
    eq(r.smembers(K("noset")), set(), "SMEMBERS of a missing key is an empty set")
    r.delete(z, h, s)
    r.close()


# ---------------------------------------------------------------------------------------------
# (d) Pipelines and transactions.


def test_pipelines_and_transactions():
    r = client()
    a, z, h, n = K("pa"), K("pz"), K("ph"), K("pn")
    r.delete(a, z, h, n)
    p = r.pipeline(transaction=False)
    p.set(a, "1")
    p.get(a)
    p.zadd(z, {"m": 1.5, "k": 0})
    p.zrange(z, 0, -1, withscores=True)
    p.hset(h, mapping={"x": "1"})
    p.hgetall(h)
    p.incr(n)
    p.smembers(K("pnone"))
    p.zscore(z, "m")
    got = p.execute()
    eq(
        got,
        [True, b"1", 2, [pair(b"k", 0.0), pair(b"m", 1.5)], 1, {b"x": b"1"}, 1, set(), 1.5],
        "non-transactional pipeline results",
    )

    # An error in a pipeline: raised, or returned in place with raise_on_error=False.
    p = r.pipeline(transaction=False)
    p.set(a, "text")
    p.incr(a)
    p.get(a)
    got = p.execute(raise_on_error=False)
    eq(got[0], True, "pipeline: SET before the error")
    ok(isinstance(got[1], redis.ResponseError), f"pipeline: INCR of text is an error: {got[1]!r}")
    eq(got[2], b"text", "pipeline: GET after the error")

    # MULTI/EXEC pipeline.
    p = r.pipeline(transaction=True)
    p.set(a, "5").incrby(a, 3).get(a).zrange(z, 0, 0, withscores=True)
    eq(p.execute(), [True, 8, b"8", [pair(b"k", 0.0)]], "MULTI/EXEC pipeline results")

    # WATCH: the first attempt is spoiled by another client and raises WatchError inside
    # transaction(), which retries.
    other = client()
    r.set(n, 10)
    attempts = []

    def bump(pipe):
        attempts.append(1)
        cur = int(pipe.get(n))
        if len(attempts) == 1:
            other.incr(n)  # changes the watched key between WATCH and EXEC
        pipe.multi()
        pipe.set(n, cur * 2)
        pipe.get(n)

    res = r.transaction(bump, n)
    eq(len(attempts), 2, "transaction() retried once after a WatchError")
    eq(res, [True, b"22"], "the retried transaction saw the other client's INCR")
    eq(r.get(n), b"22", "value after the transaction")

    # A WatchError seen directly.
    with r.pipeline() as pipe:
        pipe.watch(n)
        other.set(n, "changed")
        pipe.multi()
        pipe.set(n, "mine")
        try:
            pipe.execute()
            raise CheckFailed("EXEC after the watched key changed did not raise WatchError")
        except redis.WatchError:
            pass
    eq(r.get(n), b"changed", "the aborted transaction wrote nothing")
    other.close()
    r.delete(a, z, h, n)
    r.close()


# ---------------------------------------------------------------------------------------------
# (e) Keyspace notifications.


def test_keyspace_notifications():
    r = client()
    old = r.config_get("notify-keyspace-events").get("notify-keyspace-events", "")
    eq(r.config_set("notify-keyspace-events", "KEA"), True, "CONFIG SET notify-keyspace-events KEA")
    try:
        flags = r.config_get("notify-keyspace-events")["notify-keyspace-events"]
        flags = flags.decode() if isinstance(flags, bytes) else flags
        # Redis normalises "KEA" to "AKE".
        eq("".join(sorted(flags)), "AEK", "CONFIG GET notify-keyspace-events after setting KEA")
        p = r.pubsub()
        space = f"__keyspace@0__:{RUN}:*".encode()
        p.psubscribe(space)
        p.subscribe(b"__keyevent@0__:set", b"__keyevent@0__:expired")
        # Confirmations come once the server registered the subscriptions.
        eq(next_message(p, 5, "psubscribe confirmation")["type"], "psubscribe", "keyspace psubscribe")
        eq(next_message(p, 5, "subscribe confirmation")["type"], "subscribe", "keyevent subscribe")
        eq(next_message(p, 5, "subscribe confirmation")["type"], "subscribe", "keyevent subscribe")

        def space_msg(key, event):
            return msg("pmessage", b"__keyspace@0__:" + key, event, pattern=space)

        def wait_for(want, what, seconds=5):
            got = next_message(p, seconds, what, accept=lambda m: m == want)
            eq(got, want, what)

        k, l, e = K("ks"), K("kl"), K("ke")
        r.set(k, "v")
        wait_for(space_msg(k, b"set"), "keyspace set")
        wait_for(msg("message", b"__keyevent@0__:set", k), "keyevent set")
        r.delete(k)
        wait_for(space_msg(k, b"del"), "keyspace del")
        r.lpush(l, "a")
        wait_for(space_msg(l, b"lpush"), "keyspace lpush")
        r.expire(l, 100)
        wait_for(space_msg(l, b"expire"), "keyspace expire")
        r.delete(l)
        wait_for(space_msg(l, b"del"), "keyspace del of the list")
        # A key with a 50 ms TTL: the server expires it by itself (nobody touches it) and says so.
        r.set(e, "v", px=50)
        wait_for(space_msg(e, b"set"), "keyspace set of the expiring key")
        wait_for(space_msg(e, b"expired"), "keyspace expired (active expiry)", seconds=10)
        wait_for(msg("message", b"__keyevent@0__:expired", e), "keyevent expired", seconds=5)
        eq(r.exists(e), 0, "the expired key is gone")
        p.close()
    finally:
        try:
            r.config_set("notify-keyspace-events", old)
        except redis.RedisError as e:
            print(f"note: could not restore notify-keyspace-events: {e}", flush=True)
        r.close()


# ---------------------------------------------------------------------------------------------
# (f) Scripts: redis-py's Lock (its release, extend and reacquire are Lua scripts, run with
# EVALSHA after SCRIPT LOAD), register_script, and functions.


def test_lock():
    from redis.exceptions import LockError, LockNotOwnedError

    r = client()
    name = K("lock")
    try:
        lock = r.lock(name, timeout=10)
        ok(lock.acquire(blocking=False), "lock: acquired")
        ok(lock.locked() and lock.owned(), "lock: locked and owned")
        ok(0 < r.pttl(name) <= 10000, f"lock: pttl {r.pttl(name)}")
        other = r.lock(name, timeout=10)
        ok(not other.acquire(blocking=False), "lock: a second token does not get it")
        ok(lock.extend(20), "lock: extend")
        ok(10000 < r.pttl(name) <= 30000, f"lock: extended pttl {r.pttl(name)}")
        ok(lock.reacquire(), "lock: reacquire")
        ok(9000 < r.pttl(name) <= 10000, f"lock: reacquired pttl {r.pttl(name)}")
        try:
            other.release()
            raise CheckFailed("lock: another token's release must fail")
        except (LockNotOwnedError, LockError):
            pass
        ok(r.exists(name) == 1, "lock: still held after the other token's release")
        lock.release()
        ok(r.exists(name) == 0, "lock: released")
        try:
            lock.release()
            raise CheckFailed("lock: releasing twice must fail")
        except LockError:
            pass
        # A lock taken without a timeout has no TTL; extend refuses it, as redis-py says.
        forever = r.lock(name)
        ok(forever.acquire(blocking=False), "lock without timeout: acquired")
        eq(r.ttl(name), -1, "lock without timeout: ttl")
        forever.release()
        ok(r.exists(name) == 0, "lock without timeout: released")
        # Blocking acquire, as an application waits for a lock another client holds.
        holder = r.lock(name, timeout=0.5)
        ok(holder.acquire(blocking=False), "holder: acquired")
        waiter = r.lock(name, timeout=5, blocking_timeout=5, sleep=0.05)
        ok(waiter.acquire(), "waiter: acquired once the holder's lock expired")
        waiter.release()
    finally:
        r.close()


def test_scripts_and_functions():
    r = client()
    lib = f"lib_{RUN.replace('-', '_')}"
    try:
        incr_by = r.register_script("return redis.call('incrby', KEYS[1], ARGV[1])")
        eq(incr_by(keys=[K("counter")], args=[5]), 5, "register_script: first call")
        eq(incr_by(keys=[K("counter")], args=[2]), 7, "register_script: EVALSHA")
        r.script_flush()
        eq(incr_by(keys=[K("counter")], args=[1]), 8, "register_script: reloaded after SCRIPT FLUSH")
        eq(r.eval("return {1, 'two', {ok='x'}}", 0), [1, b"two", b"x"], "eval: shapes")
        try:
            r.eval("return redis.call('nosuch')", 0)
            raise CheckFailed("eval: error expected")
        except redis.ResponseError as e:
            ok("Unknown Redis command called from script" in str(e), f"eval error: {e}")
        code = (
            f"#!lua name={lib}\n"
            f"redis.register_function('{lib}_get', function(keys) return redis.call('get', keys[1]) end)\n"
            f"redis.register_function{{function_name='{lib}_ro', callback=function(keys) return redis.call('get', keys[1]) end, flags={{'no-writes'}}}}"
        )
        eq(r.function_load(code), lib.encode(), "function_load")
        r.set(K("f"), "value")
        eq(r.fcall(f"{lib}_get", 1, K("f")), b"value", "fcall")
        eq(r.fcall_ro(f"{lib}_ro", 1, K("f")), b"value", "fcall_ro of a no-writes function")
        try:
            r.fcall_ro(f"{lib}_get", 1, K("f"))
            raise CheckFailed("fcall_ro of a function that may write: error expected")
        except redis.ResponseError as e:
            ok("write flag" in str(e), f"fcall_ro error: {e}")
    finally:
        try:
            r.function_delete(lib)
        except Exception:  # noqa: BLE001
            pass
        r.close()


def test_geo_hyperloglog_bitfield():
    r = client()
    try:
        g = K("sicily")
        eq(r.geoadd(g, [13.361389, 38.115556, "Palermo", 15.087269, 37.502669, "Catania"]), 2, "geoadd")
        pos = r.geopos(g, "Palermo", "nowhere")
        ok(abs(pos[0][0] - 13.361389) < 1e-5 and abs(pos[0][1] - 38.115556) < 1e-5, f"geopos: {pos}")
        eq(pos[1], None, "geopos of a missing member")
        eq(r.geodist(g, "Palermo", "Catania", unit="km"), 166.2742, "geodist km")
        # (redis-py decodes it under RESP2 only, whatever the server.)
        hashes = [h.decode() if isinstance(h, bytes) else h for h in r.geohash(g, "Palermo")]
        eq(hashes, ["sqc8b49rny0"], "geohash")
        found = r.geosearch(g, longitude=15, latitude=37, radius=200, unit="km", withdist=True, sort="ASC")
        eq(found, [[b"Catania", 56.4413], [b"Palermo", 190.4424]], "geosearch withdist")
        box = r.geosearch(g, member="Palermo", width=400, height=400, unit="km", sort="DESC")
        eq(box, [b"Catania", b"Palermo"], "geosearch bybox")
        eq(r.geosearchstore(K("near"), g, longitude=15, latitude=37, radius=100, unit="km"), 1, "geosearchstore")
        eq(r.zrange(K("near"), 0, -1), [b"Catania"], "stored")

        h = K("visitors")
        eq(r.pfadd(h, *[f"user{i}" for i in range(1000)]), 1, "pfadd")
        eq(r.pfadd(h, "user1"), 0, "pfadd of a known element")
        n = r.pfcount(h)
        ok(abs(n - 1000) < 20, f"pfcount: {n}")
        r.pfadd(K("more"), *[f"user{i}" for i in range(500, 1500)])
        eq(r.pfmerge(K("all"), h, K("more")), True, "pfmerge")
        n = r.pfcount(K("all"))
        ok(abs(n - 1500) < 30, f"pfcount after pfmerge: {n}")
        eq(r.pfcount(h, K("more")), n, "pfcount of several keys")

        bf = r.bitfield(K("bf"))
        eq(bf.set("u8", 0, 255).incrby("u8", 0, 1).get("u8", 0).execute(), [0, 0, 0], "bitfield wraps")
        sat = r.bitfield(K("bf"), default_overflow="SAT")
        eq(sat.incrby("i8", 8, 200).incrby("i8", 8, -300).execute(), [127, -128], "bitfield saturates")
        eq(r.bitfield_ro(K("bf"), "u8", 0, items=[("i8", 8)]), [0, -128], "bitfield_ro")
    finally:
        r.close()


# ---------------------------------------------------------------------------------------------
# (g) Streams: entries, consumer groups, pending entries and claims, XINFO, blocking reads.


def test_streams():
    r = client()
    s, m, none = K("stream"), K("mkstream"), K("nostream")
    r.delete(s, m, none)

    def read_reply(key, entries):
        """An XREAD/XREADGROUP reply on one stream: [[key, entries]] in RESP2, {key: [entries]}
        in RESP3."""
        return [[key, entries]] if PROTO == 2 else {key: [entries]}

    nothing = [] if PROTO == 2 else {}
    e1, e2 = (b"1-1", {b"f": b"1"}), (b"2-0", {b"f": b"2", b"g": b"x"})

    # XADD, XLEN, XRANGE, XREVRANGE.
    eq(r.xadd(s, {"f": "1"}, id="1-1"), b"1-1", "XADD with an explicit id")
    eq(r.xadd(s, {"f": "2", "g": "x"}, id="2-*"), b"2-0", "XADD with an explicit time")
    auto = r.xadd(s, {"f": "3"})
    ms, _, seq = auto.partition(b"-")
    ok(ms.isdigit() and seq.isdigit() and int(ms) > 2, f"XADD *: a generated id after 2-0: {auto!r}")
    e3 = (auto, {b"f": b"3"})
    try:
        r.xadd(s, {"f": "old"}, id="2-0")
        raise CheckFailed("XADD of an id not above the top one: error expected")
    except redis.ResponseError as e:
        ok("equal or smaller than the target stream top item" in str(e), f"XADD error: {e}")
    eq(r.xlen(s), 3, "XLEN")
    eq(r.xlen(none), 0, "XLEN of a missing key")
    eq(r.xrange(s), [e1, e2, e3], "XRANGE - +: (id, fields dict) tuples")
    eq(r.xrange(s, min="2", max="+", count=1), [e2], "XRANGE from a time, COUNT 1")
    eq(r.xrange(s, min="(1-1", max="2-0"), [e2], "XRANGE with an exclusive start")
    eq(r.xrevrange(s, count=2), [e3, e2], "XREVRANGE COUNT 2")
    eq(r.xrange(none), [], "XRANGE of a missing key")
    eq(r.xread({s: "1-1"}, count=1), read_reply(s, [e2]), "XREAD after an id, COUNT 1")

    # Groups: XGROUP CREATE, XREADGROUP, XACK.
    eq(r.xgroup_create(s, "g", id="0"), True, "XGROUP CREATE")
    try:
        r.xgroup_create(s, "g", id="0")
        raise CheckFailed("XGROUP CREATE of an existing group: error expected")
    except redis.ResponseError as e:
        ok(str(e).startswith("BUSYGROUP"), f"XGROUP CREATE twice: {e}")
    eq(r.xgroup_create(m, "g", id="$", mkstream=True), True, "XGROUP CREATE MKSTREAM")
    eq(r.xlen(m), 0, "MKSTREAM made an empty stream")
    eq(r.xreadgroup("g", "c1", {s: ">"}, count=2), read_reply(s, [e1, e2]), "XREADGROUP > COUNT 2")
    eq(r.xreadgroup("g", "c2", {s: ">"}), read_reply(s, [e3]), "XREADGROUP > by another consumer")
    eq(r.xreadgroup("g", "c2", {s: ">"}), nothing, "XREADGROUP > with nothing new")
    eq(r.xreadgroup("g", "c1", {s: "0"}), read_reply(s, [e1, e2]), "XREADGROUP 0: c1's pending entries")
    eq(r.xack(s, "g", "1-1", "1-1", "9-9"), 1, "XACK: one entry was pending")
    eq(r.xack(s, "g", "1-1"), 0, "XACK of an entry acknowledged already")
    eq(r.xreadgroup("g", "c1", {s: "0"}), read_reply(s, [e2]), "XREADGROUP 0 after the XACK")

    # XPENDING, summary and range.
    eq(
        r.xpending(s, "g"),
        {
            "pending": 2,
            "min": b"2-0",
            "max": auto,
            "consumers": [{"name": b"c1", "pending": 1}, {"name": b"c2", "pending": 1}],
        },
        "XPENDING summary",
    )

    def pending(**kw):
        got = r.xpending_range(s, "g", "-", "+", 10, **kw)
        for p in got:
            ok(isinstance(p["time_since_delivered"], int) and p["time_since_delivered"] >= 0, f"idle time: {p!r}")
        return [(p["message_id"], p["consumer"], p["times_delivered"]) for p in got]

    # XREADGROUP 0 delivered c1's entry again: its count went up.
    eq(pending(), [(b"2-0", b"c1", 3), (auto, b"c2", 1)], "XPENDING - + 10")
    eq(pending(consumername="c2"), [(auto, b"c2", 1)], "XPENDING of one consumer")
    eq(r.xpending_range(s, "g", "-", "+", 0), [], "XPENDING COUNT 0")
    try:
        r.xpending(s, "nogroup")
        raise CheckFailed("XPENDING of a missing group: error expected")
    except redis.ResponseError as e:
        ok(str(e).startswith("NOGROUP"), f"XPENDING of a missing group: {e}")

    # XCLAIM and XAUTOCLAIM.
    eq(r.xclaim(s, "g", "c3", 0, ["2-0", "9-9"]), [e2], "XCLAIM: the entries claimed")
    eq(r.xclaim(s, "g", "c3", 3_600_000, [auto]), [], "XCLAIM of an entry not idle long enough")
    eq(r.xclaim(s, "g", "c3", 0, [auto], justid=True), [auto], "XCLAIM JUSTID")
    eq(pending(), [(b"2-0", b"c3", 4), (auto, b"c3", 1)], "XPENDING after XCLAIM (JUSTID counts nothing)")
    eq(r.xautoclaim(s, "g", "c1", 0, "0-0", count=1), [auto, [e2], []], "XAUTOCLAIM COUNT 1: cursor, entries, deleted")
    eq(r.xautoclaim(s, "g", "c1", 0, auto, justid=True), [auto], "XAUTOCLAIM JUSTID from the cursor")
    eq(r.xdel(s, "2-0"), 1, "XDEL of a pending entry")
    eq(r.xautoclaim(s, "g", "c2", 0, "0-0"), [b"0-0", [e3], [b"2-0"]], "XAUTOCLAIM reports the deleted entry")
    eq(pending(), [(auto, b"c2", 2)], "XPENDING after XAUTOCLAIM dropped the deleted entry")

    # XINFO.
    eq(
        r.xinfo_stream(s),
        {
            "length": 2,
            "radix-tree-keys": 1,
            "radix-tree-nodes": 2,
            "last-generated-id": auto,
            "max-deleted-entry-id": b"2-0",
            "entries-added": 3,
            "recorded-first-entry-id": b"1-1",
            "groups": 1,
            "first-entry": e1,
            "last-entry": e3,
        },
        "XINFO STREAM",
    )
    eq(
        r.xinfo_groups(s),
        [{"name": b"g", "consumers": 3, "pending": 1, "last-delivered-id": auto, "entries-read": 3, "lag": 0}],
        "XINFO GROUPS",
    )
    consumers = r.xinfo_consumers(s, "g")
    eq(
        [(c["name"], c["pending"]) for c in consumers],
        [(b"c1", 0), (b"c2", 1), (b"c3", 0)],
        "XINFO CONSUMERS: names and pending counts",
    )
    eq(
        r.xinfo_groups(m),
        [{"name": b"g", "consumers": 0, "pending": 0, "last-delivered-id": b"0-0", "entries-read": None, "lag": 0}],
        "XINFO GROUPS of the empty stream",
    )

    # Blocking reads that time out give nothing, after about the timeout.
    for what, read in [
        ("XREAD BLOCK 100 $", lambda: r.xread({s: "$"}, block=100)),
        ("XREADGROUP BLOCK 100 >", lambda: r.xreadgroup("g", "c1", {s: ">"}, block=100)),
    ]:
        start = time.monotonic()
        eq(read(), nothing, f"{what} with nothing new")
        took = time.monotonic() - start
        ok(0.09 <= took < 5, f"{what} took {took:.3f} s")

    # A blocked XREAD is woken by another client's XADD.
    results = queue.Queue()

    def blocked():
        c = client()
        try:
            results.put(c.xread({m: "$"}, block=5000))
        except Exception as e:  # noqa: BLE001 - reported through the queue
            results.put(f"{type(e).__name__}: {e}")
        finally:
            c.close()

    t = threading.Thread(target=blocked, daemon=True)
    t.start()
    likely_blocked(r)
    eq(r.xadd(m, {"k": "v"}, id="5-5"), b"5-5", "XADD for the blocked client")
    t.join(timeout=10)
    ok(not t.is_alive(), "the blocked XREAD returned within 10 s of the XADD")
    eq(results.get(timeout=1), read_reply(m, [(b"5-5", {b"k": b"v"})]), "XREAD BLOCK woken by XADD")
    r.delete(s, m)
    r.close()


# ---------------------------------------------------------------------------------------------

TESTS = [
    test_pubsub_subscribe_get_message,
    test_pubsub_patterns,
    test_pubsub_binary_channels,
    test_pubsub_listen_thread,
    test_blpop_workers,
    test_blocking_basics,
    test_sorted_sets_and_shapes,
    test_pipelines_and_transactions,
    test_keyspace_notifications,
    test_lock,
    test_scripts_and_functions,
    test_geo_hyperloglog_bitfield,
    test_streams,
]


def main():
    label = f"redis-py {redis.__version__} protocol={PROTO} against {ARGS.host}:{ARGS.port}"
    if redis.__version__ != WANT_REDIS_PY:
        print(f"FAIL: redis-py {WANT_REDIS_PY} wanted, {redis.__version__} installed", flush=True)
        return 1

    def watchdog():
        print(f"FAIL: {label}: still running after {WATCHDOG_SECONDS} s: aborted", flush=True)
        os._exit(3)

    timer = threading.Timer(WATCHDOG_SECONDS, watchdog)
    timer.daemon = True
    timer.start()

    print(f"{label} (keys {RUN}:*)", flush=True)
    try:
        client().ping()
    except Exception as e:  # noqa: BLE001
        print(f"FAIL: cannot reach the server: {e!r}", flush=True)
        return 1
    failed = []
    for t in TESTS:
        try:
            t()
            print(f"ok   {t.__name__}", flush=True)
        except CheckFailed as e:
            failed.append(t.__name__)
            print(f"FAIL {t.__name__}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - a client error is a failed check too
            failed.append(t.__name__)
            where = traceback.extract_tb(e.__traceback__)
            line = next((f"line {f.lineno}: {f.line}" for f in reversed(where) if f.filename == __file__), "")
            print(f"FAIL {t.__name__}: {type(e).__name__}: {e} ({line})", flush=True)
    timer.cancel()
    print(f"redis-py protocol {PROTO}: {len(TESTS) - len(failed)} passed, {len(failed)} failed", flush=True)
    if failed:
        print(f"FAILED: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
