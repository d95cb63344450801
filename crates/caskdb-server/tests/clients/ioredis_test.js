#!/usr/bin/env node
// ioredis (pinned in package.json) against a Redis-compatible server: pub/sub, blocking list
// and sorted set commands, sorted set and hash reply shapes, pipelines and transactions,
// keyspace notifications, scripts, and streams with consumer groups, each as ioredis's users
// meet them.
//
//   node ioredis_test.js [--host H] [--port P] [--protocol 2|3|3r]
//
// --protocol 2: RESP2; 3: RESP3 with ioredis's default "legacy" reply mapping (the same values
// as RESP2); 3r: RESP3 with replyMapping "resp3" (scores as numbers, maps as objects, pairs
// nested). Host, port and protocol default to $CLIENT_TEST_HOST, $CLIENT_TEST_PORT and
// $CLIENT_TEST_PROTOCOL, then 127.0.0.1, 6379 and 3 (ioredis 6's default). Every group of
// checks runs even when an earlier one failed; the exit status is 0 only when all passed. Every
// wait has a deadline, every connection is closed at the end and a watchdog ends the process,
// so the script always ends by itself. The expected values are what ioredis returns from Redis
// 7.0 itself (tests/client_libraries.rs runs this against caskdb). Keys and channels carry a
// per-run prefix, but the keyspace group sets the server-wide notify-keyspace-events (restoring
// it after): give each run a server of its own, or run them one after another.

"use strict";

const path = require("node:path");
const crypto = require("node:crypto");
const Redis = require(path.join(__dirname, "node_modules", "ioredis"));
const { version: IOREDIS_VERSION } = require(path.join(__dirname, "node_modules", "ioredis", "package.json"));
const WANT_IOREDIS = require(path.join(__dirname, "package.json")).dependencies.ioredis;

const WATCHDOG_MS = 100_000;

function parseArgs() {
  const out = {
    host: process.env.CLIENT_TEST_HOST || "127.0.0.1",
    port: Number(process.env.CLIENT_TEST_PORT || 6379),
    protocol: process.env.CLIENT_TEST_PROTOCOL || "3",
  };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    if (flag === "--host") out.host = value;
    else if (flag === "--port") out.port = Number(value);
    else if (flag === "--protocol") out.protocol = value;
    else throw new Error(`unknown argument ${flag}`);
  }
  if (!["2", "3", "3r"].includes(out.protocol)) throw new Error(`--protocol must be 2, 3 or 3r`);
  if (!Number.isInteger(out.port)) throw new Error(`bad port`);
  return out;
}

const ARGS = parseArgs();
// RESP3 reply mapping: scores as numbers, pairs nested, maps as objects.
const R3 = ARGS.protocol === "3r";
const RUN = `io${ARGS.protocol}-${crypto.randomBytes(4).toString("hex")}`;
const K = (name) => `${RUN}:${name}`;

const clients = [];
function client(extra = {}) {
  const c = new Redis({
    host: ARGS.host,
    port: ARGS.port,
    protocol: ARGS.protocol === "2" ? 2 : 3,
    ...(R3 ? { replyMapping: "resp3" } : {}),
    connectTimeout: 10_000,
    commandTimeout: 15_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null, // a dropped connection is a failure, not something to wait out
    ...extra,
  });
  c.on("error", () => {}); // errors surface through the commands' promises
  clients.push(c);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Checks.

class CheckFailed extends Error {}

const show = (v) => {
  const s = JSON.stringify(v, (_k, x) =>
    x && x.type === "Buffer" && Array.isArray(x.data) ? `<Buffer ${Buffer.from(x.data).toString("hex")}>` : x,
  );
  return s === undefined ? String(v) : s.length > 1500 ? `${s.slice(0, 1500)}…` : s;
};

function same(a, b) {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => same(x, b[i]));
  }
  if (a !== null && b !== null && typeof a === "object" && typeof b === "object") {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    return same(ka, kb) && ka.every((k) => same(a[k], b[k]));
  }
  return a === b;
}

function eq(actual, expected, what) {
  if (!same(actual, expected)) throw new CheckFailed(`${what}: expected ${show(expected)}, got ${show(actual)}`);
}

function ok(cond, what) {
  if (!cond) throw new CheckFailed(what);
}

// A score as ioredis gives it: a string ("2.5", "inf") in RESP2 and legacy RESP3, a number
// in RESP3 with replyMapping "resp3".
const sc = (x) => (R3 ? x : x === Infinity ? "inf" : x === -Infinity ? "-inf" : String(x));
// A ZRANGE ... WITHSCORES reply from [member, score] pairs: flat, or nested under "resp3".
const withScores = (pairs) => (R3 ? pairs.map(([m, s]) => [m, sc(s)]) : pairs.flatMap(([m, s]) => [m, sc(s)]));

const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
// A timer for Promise.race that does not keep the process alive once everything else is done.
const expire = (ms) => new Promise((res) => setTimeout(res, ms).unref());

async function waitUntil(pred, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() >= end) throw new CheckFailed(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

// Collects a subscriber's events; next() waits (with a deadline) for one that pred accepts.
class Inbox {
  constructor(sub, { buffers = false } = {}) {
    this.items = [];
    this.waiters = [];
    const push = (item) => {
      this.items.push(item);
      this.wake();
    };
    if (buffers) {
      sub.on("messageBuffer", (channel, data) => push({ type: "message", channel, data }));
      sub.on("pmessageBuffer", (pattern, channel, data) => push({ type: "pmessage", pattern, channel, data }));
    } else {
      sub.on("message", (channel, data) => push({ type: "message", channel, data }));
      sub.on("pmessage", (pattern, channel, data) => push({ type: "pmessage", pattern, channel, data }));
    }
  }
  wake() {
    const ws = this.waiters;
    this.waiters = [];
    ws.forEach((w) => w());
  }
  async next(what, { ms = 5000, accept = () => true } = {}) {
    const end = Date.now() + ms;
    const skipped = [];
    for (;;) {
      while (this.items.length) {
        const m = this.items.shift();
        if (accept(m)) return m;
        skipped.push(m);
      }
      const left = end - Date.now();
      if (left <= 0) throw new CheckFailed(`no ${what} within ${ms} ms (other messages: ${show(skipped)})`);
      await new Promise((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }
}

const message = (channel, data) => ({ type: "message", channel, data });
const pmessage = (pattern, channel, data) => ({ type: "pmessage", pattern, channel, data });

// ---------------------------------------------------------------------------------------------
// (a) Pub/sub.

async function testPubsubChannels() {
  const r = client();
  const sub = client();
  const inbox = new Inbox(sub);
  const [ch1, ch2, nobody] = [K("news"), K("sport"), K("nobody")];
  eq(await sub.subscribe(ch1, ch2), 2, "SUBSCRIBE resolves to the subscription count");
  eq(await r.publish(ch1, "hello"), 1, "PUBLISH to one subscriber: receivers");
  eq(await r.publish(ch2, "world"), 1, "PUBLISH: receivers");
  eq(await r.publish(nobody, "x"), 0, "PUBLISH to no subscriber: receivers");
  eq(await inbox.next("message on news"), message(ch1, "hello"), "message 1");
  eq(await inbox.next("message on sport"), message(ch2, "world"), "message 2");

  // 200 messages keep their order through on('message').
  const n = 200;
  for (let i = 0; i < n; i++) r.publish(ch1, `m${i}`);
  const got = [];
  for (let i = 0; i < n; i++) got.push((await inbox.next(`message ${i}`)).data);
  eq(got, Array.from({ length: n }, (_, i) => `m${i}`), "200 messages in publishing order");

  eq(await r.pubsub("NUMSUB", ch1, ch2, nobody), [ch1, 1, ch2, 1, nobody, 0], "PUBSUB NUMSUB");
  eq((await r.pubsub("CHANNELS", `${RUN}:*`)).sort(), [ch1, ch2].sort(), "PUBSUB CHANNELS pattern");
  ok((await r.pubsub("CHANNELS")).includes(ch1), "PUBSUB CHANNELS without a pattern lists the channel");

  eq(await sub.unsubscribe(ch1), 1, "UNSUBSCRIBE one: the count left");
  eq(await r.publish(ch1, "gone"), 0, "PUBLISH after UNSUBSCRIBE: receivers");
  eq(await r.pubsub("NUMSUB", ch1), [ch1, 0], "NUMSUB after UNSUBSCRIBE");
  eq(await r.pubsub("CHANNELS", `${RUN}:*`), [ch2], "CHANNELS after UNSUBSCRIBE");
  eq(await sub.unsubscribe(), 0, "UNSUBSCRIBE all: the count left");
  eq(await r.pubsub("CHANNELS", `${RUN}:*`), [], "CHANNELS after UNSUBSCRIBE all");
  // Out of subscriber mode, the connection takes ordinary commands again (RESP2's rule).
  eq(await sub.ping(), "PONG", "PING after leaving subscriber mode");
}

async function testPubsubPatterns() {
  const r = client();
  const sub = client();
  const inbox = new Inbox(sub);
  const pat = `${RUN}:news.*`;
  eq(await sub.psubscribe(pat), 1, "PSUBSCRIBE resolves to the count");
  ok((await r.pubsub("NUMPAT")) >= 1, "PUBSUB NUMPAT counts the pattern");
  eq(await r.publish(K("news.tech"), "rust"), 1, "PUBLISH matching a pattern: receivers");
  eq(await r.publish(K("weather"), "rain"), 0, "PUBLISH matching nothing: receivers");
  eq(await inbox.next("pmessage"), pmessage(pat, K("news.tech"), "rust"), "pmessage(pattern, channel, data)");

  // A channel and a matching pattern on one connection: the message arrives twice.
  eq(await sub.subscribe(K("news.art")), 2, "SUBSCRIBE next to a pattern: count");
  eq(await r.publish(K("news.art"), "both"), 2, "PUBLISH to channel + pattern: receivers");
  const two = [await inbox.next("message or pmessage"), await inbox.next("message or pmessage")];
  two.sort((a, b) => a.type.localeCompare(b.type));
  eq(two, [message(K("news.art"), "both"), pmessage(pat, K("news.art"), "both")], "message and pmessage");
  eq(await r.pubsub("CHANNELS", `${RUN}:*`), [K("news.art")], "CHANNELS leaves patterns out");

  eq(await sub.punsubscribe(pat), 1, "PUNSUBSCRIBE: the count left");
  eq(await r.publish(K("news.tech"), "x"), 0, "PUBLISH after PUNSUBSCRIBE: receivers");
}

async function testPubsubBinary() {
  const r = client();
  const sub = client();
  const inbox = new Inbox(sub, { buffers: true });
  const ch = Buffer.concat([Buffer.from(K("bin")), Buffer.from([0, 0xff, 13, 10, 0x2a, 0x24, 0x80])]);
  const pat = Buffer.concat([Buffer.from(K("bin")), Buffer.from([0, 0x2a])]);
  const data = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
  await sub.subscribe(ch);
  await sub.psubscribe(pat);
  eq(await r.callBuffer("PUBSUB", "NUMSUB", ch), [ch, 1], "NUMSUB of a binary channel");
  eq(
    await r.callBuffer("PUBSUB", "CHANNELS", Buffer.concat([Buffer.from(K("bin")), Buffer.from("*")])),
    [ch],
    "CHANNELS returns the binary name unchanged",
  );
  eq(await r.publish(ch, data), 2, "PUBLISH binary: receivers (channel + pattern)");
  const two = [await inbox.next("binary message"), await inbox.next("binary pmessage")];
  two.sort((a, b) => a.type.localeCompare(b.type));
  // ioredis hands pmessageBuffer's pattern over as a string (the pattern it subscribed with).
  eq(two, [message(ch, data), pmessage(pat.toString(), ch, data)], "binary channel and payload round-trip");
}

// ---------------------------------------------------------------------------------------------
// (b) Blocking commands.

async function testBlpopWorkers() {
  const keys = [K("jobs:a"), K("jobs:b")];
  const producer = client();
  await producer.del(...keys);
  const workers = 4;
  const perKey = 100;
  const popped = Array.from({ length: workers }, () => []);
  const errors = [];
  const worker = async (i) => {
    const c = client();
    for (;;) {
      const got = await c.blpop(...keys, 5);
      if (got === null) {
        errors.push(`worker ${i}: BLPOP timed out before its STOP`);
        return;
      }
      const [key, value] = got;
      if (value === "STOP") return;
      popped[i].push([key, value]);
    }
  };
  const running = Array.from({ length: workers }, (_, i) =>
    worker(i).catch((e) => errors.push(`worker ${i}: ${e && e.message}`)),
  );
  for (let n = 0; n < perKey; n++) {
    for (const k of keys) await producer.rpush(k, String(n).padStart(4, "0"));
  }
  // The STOPs go last, on the last key: BLPOP takes the first non-empty key, so a worker can
  // only pop a STOP once every earlier item is gone.
  for (let i = 0; i < workers; i++) await producer.rpush(keys[keys.length - 1], "STOP");
  await Promise.race([
    Promise.all(running),
    expire(30_000).then(() => errors.push("the workers did not all end within 30 s")),
  ]);
  ok(errors.length === 0, `worker errors: ${errors.join("; ")}`);
  const every = popped.flat().map(([k, v]) => `${k}/${v}`).sort();
  const want = keys.flatMap((k) => Array.from({ length: perKey }, (_, n) => `${k}/${String(n).padStart(4, "0")}`)).sort();
  eq(every, want, "every item consumed exactly once");
  popped.forEach((w, i) => {
    for (const k of keys) {
      const mine = w.filter(([key]) => key === k).map(([, v]) => v);
      eq(mine, [...mine].sort(), `worker ${i} got ${k}'s items in FIFO order`);
    }
  });
  eq(await producer.exists(...keys), 0, "the lists are gone once emptied");
}

// Waits (at most 2 s) until INFO says a client is blocked, so that the next write most likely
// wakes a blocked client. Only a likelihood: the checks after it hold either way.
async function likelyBlocked(r) {
  const end = Date.now() + 2000;
  while (Date.now() < end) {
    try {
      const m = /blocked_clients:(\d+)/.exec(await r.info("clients"));
      if (m && Number(m[1]) >= 1) return;
    } catch (_e) {
      // a server without INFO clients: just wait out the 2 s
    }
    await sleep(20);
  }
}

async function testBlockingBasics() {
  const r = client();
  const [l, l2, z, none, wl, wz] = [K("bl"), K("bl2"), K("bz"), K("empty"), K("wake:l"), K("wake:z")];
  await r.del(l, l2, z, none, wl, wz);

  await r.rpush(l, "a", "b", "c");
  eq(await r.blpop(none, l, 1), [l, "a"], "BLPOP skips an empty key");
  eq(await r.brpop(l, 1), [l, "c"], "BRPOP");
  eq(await r.blmove(l, l2, "LEFT", "RIGHT", 1), "b", "BLMOVE LEFT RIGHT");
  eq(await r.lrange(l2, 0, -1), ["b"], "BLMOVE destination");
  eq(await r.exists(l), 0, "BLMOVE emptied the source");
  eq(await r.blmove(none, l2, "LEFT", "LEFT", 0.2), null, "BLMOVE timeout");
  eq(await r.blpop(none, 0.2), null, "BLPOP timeout");
  eq(await r.brpop(none, 0.2), null, "BRPOP timeout");
  eq(await r.bzpopmin(none, 0.2), null, "BZPOPMIN timeout");

  await r.zadd(z, 1, "one", 2, "two", 0.5, "half");
  eq(await r.bzpopmin(z, 1), [z, "half", sc(0.5)], "BZPOPMIN");
  eq(await r.bzpopmax(none, z, 1), [z, "two", sc(2)], "BZPOPMAX");
  eq(await r.zrange(z, 0, -1), ["one"], "left after BZPOPMIN/BZPOPMAX");

  // A blocked client is woken by another client's write.
  const b1 = client();
  const pending = b1.blpop(wl, 5);
  await likelyBlocked(r);
  eq(await r.rpush(wl, "x"), 1, "RPUSH for the blocked client");
  eq(await pending, [wl, "x"], "BLPOP woken by RPUSH");
  eq(await r.exists(wl), 0, "the woken BLPOP took the only item");
  const b2 = client();
  const pendingZ = b2.bzpopmin(wz, 5);
  await likelyBlocked(r);
  eq(await r.zadd(wz, 7, "m"), 1, "ZADD for the blocked client");
  eq(await pendingZ, [wz, "m", sc(7)], "BZPOPMIN woken by ZADD");
  await r.del(l2, z, wz);
}

// ---------------------------------------------------------------------------------------------
// (c) Sorted sets, hashes, sets: reply shapes.

async function testShapes() {
  const r = client();
  const [z, h, s] = [K("z"), K("h"), K("s")];
  await r.del(z, h, s);
  eq(await r.zadd(z, 1, "a", 2.5, "b", -3, "c", 10, "d"), 4, "ZADD");
  eq(
    await r.zrange(z, 0, -1, "WITHSCORES"),
    withScores([["c", -3], ["a", 1], ["b", 2.5], ["d", 10]]),
    "ZRANGE WITHSCORES",
  );
  eq(await r.zrange(z, 0, 1), ["c", "a"], "ZRANGE without scores");
  eq(await r.zrevrange(z, 0, 1, "WITHSCORES"), withScores([["d", 10], ["b", 2.5]]), "ZREVRANGE WITHSCORES");
  eq(await r.zrangebyscore(z, 0, 5, "WITHSCORES"), withScores([["a", 1], ["b", 2.5]]), "ZRANGEBYSCORE WITHSCORES");
  eq(
    await r.zrevrangebyscore(z, "+inf", 2, "WITHSCORES"),
    withScores([["d", 10], ["b", 2.5]]),
    "ZREVRANGEBYSCORE WITHSCORES",
  );
  eq(await r.zscore(z, "b"), sc(2.5), "ZSCORE");
  eq(await r.zscore(z, "nope"), null, "ZSCORE of a missing member");
  eq(await r.zincrby(z, 0.25, "b"), sc(2.75), "ZINCRBY");
  eq(await r.zmscore(z, "a", "nope", "b"), [sc(1), null, sc(2.75)], "ZMSCORE");
  eq(await r.zadd(z, "inf", "inf"), 1, "ZADD inf");
  eq(await r.zscore(z, "inf"), sc(Infinity), "ZSCORE inf");
  eq(await r.zpopmin(z), ["c", sc(-3)], "ZPOPMIN");
  eq(await r.zpopmin(z, 2), withScores([["a", 1], ["b", 2.75]]), "ZPOPMIN with a count");
  eq(await r.zpopmax(z), ["inf", sc(Infinity)], "ZPOPMAX");
  eq(await r.zcard(z), 1, "ZCARD after the pops");

  const fields = { f1: "v1", f2: "v2", f3: "v3" };
  eq(await r.hset(h, fields), 3, "HSET object");
  eq(await r.hgetall(h), fields, "HGETALL is an object");
  eq(await r.hgetall(K("nohash")), {}, "HGETALL of a missing key is an empty object");
  const rnd = await r.hrandfield(h, 2, "WITHVALUES");
  const pairs = R3 ? rnd : [[rnd[0], rnd[1]], [rnd[2], rnd[3]]];
  ok(Array.isArray(rnd) && rnd.length === (R3 ? 2 : 4), `HRANDFIELD 2 WITHVALUES shape: ${show(rnd)}`);
  ok(new Set(pairs.map(([f]) => f)).size === 2, `HRANDFIELD 2 gives distinct fields: ${show(rnd)}`);
  for (const [f, v] of pairs) eq(fields[f], v, `HRANDFIELD pair ${f}`);
  ok(Object.hasOwn(fields, await r.hrandfield(h)), "HRANDFIELD without count is a field");

  eq(await r.sadd(s, "x", "y", "z"), 3, "SADD");
  eq((await r.smembers(s)).sort(), ["x", "y", "z"], "SMEMBERS");
  eq(await r.smembers(K("noset")), [], "SMEMBERS of a missing key");
  await r.del(z, h, s);
}

// ---------------------------------------------------------------------------------------------
// (d) Pipelines and transactions.

async function testPipelinesAndTransactions() {
  const r = client();
  const [a, z, h, n] = [K("pa"), K("pz"), K("ph"), K("pn")];
  await r.del(a, z, h, n);
  const res = await r
    .pipeline()
    .set(a, "1")
    .get(a)
    .zadd(z, 1.5, "m", 0, "k")
    .zrange(z, 0, -1, "WITHSCORES")
    .hset(h, { x: "1" })
    .hgetall(h)
    .incr(n)
    .smembers(K("pnone"))
    .zscore(z, "m")
    .exec();
  eq(
    res,
    [
      [null, "OK"],
      [null, "1"],
      [null, 2],
      [null, withScores([["k", 0], ["m", 1.5]])],
      [null, 1],
      [null, { x: "1" }],
      [null, 1],
      [null, []],
      [null, sc(1.5)],
    ],
    "pipeline() results",
  );

  // An error inside a pipeline stays in its slot.
  const withErr = await r.pipeline().set(a, "text").incr(a).get(a).exec();
  eq(withErr[0], [null, "OK"], "pipeline: SET before the error");
  ok(withErr[1][0] instanceof Error && /not an integer/.test(withErr[1][0].message), `pipeline: INCR error: ${withErr[1][0]}`);
  eq(withErr[2], [null, "text"], "pipeline: GET after the error");

  // multi().
  eq(
    await r.multi().set(a, "5").incrby(a, 3).get(a).zrange(z, 0, 0, "WITHSCORES").exec(),
    [[null, "OK"], [null, 8], [null, "8"], [null, withScores([["k", 0]])]],
    "multi() results",
  );

  // WATCH: the first attempt is spoiled by another client, EXEC gives null, the retry commits.
  const w = client();
  const other = client();
  await r.set(n, "10");
  let attempts = 0;
  let committed = null;
  while (committed === null && attempts < 5) {
    attempts++;
    await w.watch(n);
    const cur = Number(await w.get(n));
    if (attempts === 1) await other.incr(n); // changes the watched key between WATCH and EXEC
    committed = await w.multi().set(n, String(cur * 2)).get(n).exec();
  }
  eq(attempts, 2, "one aborted EXEC (null) before the transaction committed");
  eq(committed, [[null, "OK"], [null, "22"]], "the retried transaction saw the other client's INCR");
  eq(await r.get(n), "22", "value after the transaction");
  // An unspoiled WATCH commits at once; UNWATCH forgets.
  await w.watch(n);
  eq(await w.unwatch(), "OK", "UNWATCH");
  await other.set(n, "changed");
  eq(await w.multi().set(n, "mine").exec(), [[null, "OK"]], "EXEC after UNWATCH commits");
  await r.del(a, z, h, n);
}

// ---------------------------------------------------------------------------------------------
// (e) Keyspace notifications.

async function testKeyspaceNotifications() {
  const r = client();
  const cfg = await r.config("GET", "notify-keyspace-events");
  const old = Array.isArray(cfg) ? cfg[1] : cfg["notify-keyspace-events"];
  eq(await r.config("SET", "notify-keyspace-events", "KEA"), "OK", "CONFIG SET notify-keyspace-events KEA");
  try {
    const sub = client();
    const inbox = new Inbox(sub);
    const space = `__keyspace@0__:${RUN}:*`;
    // Each resolves once the server confirmed the subscription.
    await sub.psubscribe(space);
    await sub.subscribe("__keyevent@0__:set", "__keyevent@0__:expired");
    const spaceMsg = (key, event) => pmessage(space, `__keyspace@0__:${key}`, event);
    const waitFor = async (want, what, ms = 5000) =>
      eq(await inbox.next(what, { ms, accept: (m) => same(m, want) }), want, what);

    const [k, l, e] = [K("ks"), K("kl"), K("ke")];
    await r.set(k, "v");
    await waitFor(spaceMsg(k, "set"), "keyspace set");
    await waitFor(message("__keyevent@0__:set", k), "keyevent set");
    await r.del(k);
    await waitFor(spaceMsg(k, "del"), "keyspace del");
    await r.lpush(l, "a");
    await waitFor(spaceMsg(l, "lpush"), "keyspace lpush");
    await r.expire(l, 100);
    await waitFor(spaceMsg(l, "expire"), "keyspace expire");
    await r.del(l);
    await waitFor(spaceMsg(l, "del"), "keyspace del of the list");
    // A key with a 50 ms TTL: the server expires it by itself (nobody touches it) and says so.
    await r.set(e, "v", "PX", 50);
    await waitFor(spaceMsg(e, "set"), "keyspace set of the expiring key");
    await waitFor(spaceMsg(e, "expired"), "keyspace expired (active expiry)", 10_000);
    await waitFor(message("__keyevent@0__:expired", e), "keyevent expired");
    eq(await r.exists(e), 0, "the expired key is gone");
  } finally {
    await r.config("SET", "notify-keyspace-events", old ?? "").catch((e) =>
      console.log(`note: could not restore notify-keyspace-events: ${e.message}`),
    );
  }
}

// ---------------------------------------------------------------------------------------------
// (g) Streams: XADD, XRANGE, consumer groups with XREADGROUP and XACK.

async function testStreams() {
  const r = client();
  const [s, none] = [K("stream"), K("nostream")];
  await r.del(s, none);
  // An XREAD/XREADGROUP reply on one stream: [[key, entries]], or {key: entries} under "resp3".
  const readReply = (key, entries) => (R3 ? { [key]: entries } : [[key, entries]]);
  const e1 = ["1-1", ["f", "1"]];
  const e2 = ["2-0", ["f", "2", "g", "x"]];

  eq(await r.xadd(s, "1-1", "f", "1"), "1-1", "XADD with an explicit id");
  eq(await r.xadd(s, "2-*", "f", "2", "g", "x"), "2-0", "XADD with an explicit time");
  const auto = await r.xadd(s, "*", "f", "3");
  const m = /^(\d+)-(\d+)$/.exec(auto);
  ok(m && Number(m[1]) > 2, `XADD *: a generated id after 2-0: ${show(auto)}`);
  const e3 = [auto, ["f", "3"]];
  let threw = null;
  await r.xadd(s, "2-0", "f", "old").catch((e) => (threw = e));
  ok(threw && /equal or smaller than the target stream top item/.test(threw.message), `XADD error: ${threw && threw.message}`);
  eq(await r.xlen(s), 3, "XLEN");
  eq(await r.xrange(s, "-", "+"), [e1, e2, e3], "XRANGE - +");
  eq(await r.xrange(s, "(1-1", "+", "COUNT", 1), [e2], "XRANGE exclusive start, COUNT 1");
  eq(await r.xrevrange(s, "+", "-", "COUNT", 1), [e3], "XREVRANGE COUNT 1");
  eq(await r.xrange(none, "-", "+"), [], "XRANGE of a missing key");

  eq(await r.xgroup("CREATE", s, "g", "0"), "OK", "XGROUP CREATE");
  eq(
    await r.xreadgroup("GROUP", "g", "c1", "COUNT", 2, "STREAMS", s, ">"),
    readReply(s, [e1, e2]),
    "XREADGROUP > COUNT 2",
  );
  eq(await r.xreadgroup("GROUP", "g", "c2", "STREAMS", s, ">"), readReply(s, [e3]), "XREADGROUP > by another consumer");
  eq(await r.xreadgroup("GROUP", "g", "c2", "STREAMS", s, ">"), null, "XREADGROUP > with nothing new");
  eq(await r.xack(s, "g", "1-1", "1-1", "9-9"), 1, "XACK: one entry was pending");
  eq(await r.xack(s, "g", "1-1"), 0, "XACK of an entry acknowledged already");
  eq(await r.xreadgroup("GROUP", "g", "c1", "STREAMS", s, "0"), readReply(s, [e2]), "XREADGROUP 0: c1's pending");
  eq(await r.xpending(s, "g"), [2, "2-0", auto, [["c1", "1"], ["c2", "1"]]], "XPENDING summary");
  const range = await r.xpending(s, "g", "-", "+", 10);
  eq(
    range.map(([id, consumer, , count]) => [id, consumer, count]),
    [["2-0", "c1", 2], [auto, "c2", 1]],
    "XPENDING - + 10: ids, consumers, delivery counts",
  );
  ok(range.every(([, , idle]) => Number.isInteger(idle) && idle >= 0), `XPENDING idle times: ${show(range)}`);
  eq(await r.xack(s, "g", "2-0", auto), 2, "XACK of both pending entries");
  eq(await r.xpending(s, "g"), [0, null, null, null], "XPENDING summary with nothing pending");

  // Another stream: XADDs in a pipeline, then a blocked XREADGROUP woken by another client's XADD.
  const t = K("stream2");
  await r.del(t);
  eq(await r.xgroup("CREATE", t, "g", "$", "MKSTREAM"), "OK", "XGROUP CREATE MKSTREAM");
  const added = await r.pipeline().xadd(t, "10-1", "n", "a").xadd(t, "10-2", "n", "b").xlen(t).exec();
  eq(added, [[null, "10-1"], [null, "10-2"], [null, 2]], "XADD in a pipeline");
  eq(
    await r.xreadgroup("GROUP", "g", "c1", "COUNT", 10, "STREAMS", t, ">"),
    readReply(t, [["10-1", ["n", "a"]], ["10-2", ["n", "b"]]]),
    "XREADGROUP > after the pipeline",
  );
  eq(await r.xack(t, "g", "10-1", "10-2"), 2, "XACK of the pipeline's entries");
  eq(await r.xreadgroup("GROUP", "g", "c1", "BLOCK", 100, "STREAMS", t, ">"), null, "XREADGROUP BLOCK 100 times out");
  const b = client();
  const pending = b.xreadgroup("GROUP", "g", "c2", "BLOCK", 5000, "STREAMS", t, ">");
  await likelyBlocked(r);
  eq(await r.xadd(t, "11-0", "n", "c"), "11-0", "XADD for the blocked client");
  eq(await pending, readReply(t, [["11-0", ["n", "c"]]]), "XREADGROUP BLOCK woken by XADD");
  eq(await r.xack(t, "g", "11-0"), 1, "XACK of the woken read's entry");
  const group = { name: "g", consumers: 2, pending: 0, "last-delivered-id": "11-0", "entries-read": 3, lag: 0 };
  eq(await r.xinfo("GROUPS", t), R3 ? [group] : [Object.entries(group).flat()], "XINFO GROUPS");
  eq(await r.xrange(t, "-", "+"), [["10-1", ["n", "a"]], ["10-2", ["n", "b"]], ["11-0", ["n", "c"]]], "XRANGE");
  await r.del(s, t);
}

// ---------------------------------------------------------------------------------------------

const TESTS = [
  testPubsubChannels,
  testPubsubPatterns,
  testPubsubBinary,
  testBlpopWorkers,
  testBlockingBasics,
  testShapes,
  testPipelinesAndTransactions,
  testKeyspaceNotifications,
  testScripts,
  testStreams,
];

// (f) Scripts: defineCommand (EVALSHA, falling back to EVAL on NOSCRIPT), eval, errors.
async function testScripts() {
  const r = client();
  r.defineCommand("incrByTwice", {
    numberOfKeys: 1,
    lua: "redis.call('incrby', KEYS[1], ARGV[1]); return redis.call('incrby', KEYS[1], ARGV[1])",
  });
  const key = K("scripted");
  eq(await r.incrByTwice(key, 3), 6, "defineCommand: first call");
  eq(await r.incrByTwice(key, 1), 8, "defineCommand: again (EVALSHA)");
  await r.script("FLUSH");
  eq(await r.incrByTwice(key, 1), 10, "defineCommand: after SCRIPT FLUSH (NOSCRIPT, then EVAL)");
  const p = r.pipeline();
  p.incrByTwice(key, 5);
  p.get(key);
  const res = await p.exec();
  eq(res.map((x) => x[1]), [20, "20"], "defineCommand in a pipeline");
  eq(await r.eval("return {1, 'two', {ok='x'}}", 0), [1, "two", "x"], "eval: shapes");
  let threw = null;
  try {
    await r.eval("return redis.call('incr', KEYS[1])", 1, K("notint"));
    await r.set(K("notint"), "x");
    await r.eval("return redis.call('incr', KEYS[1])", 1, K("notint"));
  } catch (e) {
    threw = e;
  }
  ok(threw && /not an integer/.test(threw.message), `eval error: ${threw && threw.message}`);
}

async function closeAll() {
  const open = clients.splice(0);
  await Promise.all(
    open.map((c) =>
      Promise.race([c.quit().catch(() => {}), expire(2000)]).then(() => c.disconnect()),
    ),
  );
}

async function main() {
  const label = `ioredis ${IOREDIS_VERSION} protocol=${ARGS.protocol} against ${ARGS.host}:${ARGS.port}`;
  if (IOREDIS_VERSION !== WANT_IOREDIS) {
    console.log(`FAIL: ioredis ${WANT_IOREDIS} wanted (package.json), ${IOREDIS_VERSION} installed: run npm ci`);
    return 1;
  }
  setTimeout(() => {
    console.log(`FAIL: ${label}: still running after ${WATCHDOG_MS / 1000} s: aborted`);
    process.exit(3);
  }, WATCHDOG_MS).unref();

  console.log(`${label} (keys ${RUN}:*)`);
  try {
    await client().ping();
  } catch (e) {
    console.log(`FAIL: cannot reach the server: ${e && e.message}`);
    await closeAll();
    return 1;
  }
  const failed = [];
  for (const t of TESTS) {
    try {
      await t();
      console.log(`ok   ${t.name}`);
    } catch (e) {
      failed.push(t.name);
      let detail = e instanceof CheckFailed ? e.message : `${e && e.name}: ${e && e.message}`;
      const here = String((e && e.stack) || "")
        .split("\n")
        .filter((l) => l.includes(path.basename(__filename)));
      if (!(e instanceof CheckFailed) && here.length) detail += ` (${here[0].trim()})`;
      console.log(`FAIL ${t.name}: ${detail}`);
    }
    // Each group's connections end with it (a subscriber or a blocked one must not leak).
    await closeAll();
  }
  console.log(`ioredis protocol ${ARGS.protocol}: ${TESTS.length - failed.length} passed, ${failed.length} failed`);
  if (failed.length) console.log(`FAILED: ${failed.join(", ")}`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
    // Should a handle linger after every connection closed, leave anyway.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (e) => {
    console.log(`FAIL: ${e && e.stack}`);
    process.exit(1);
  },
);
