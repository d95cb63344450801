// ioredis's `sentinels:` option against a caskdb group: every node answers SENTINEL, so the
// client finds the leader, writes and reads through it.
//
//     node sentinel_test.js --ports 7001,7002,7003 [--protocol 2|3]
"use strict";
const assert = require("assert");
const Redis = require("ioredis");

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : dflt;
};
const ports = arg("--ports").split(",").map(Number);

async function main() {
  const redis = new Redis({
    sentinels: ports.map((port) => ({ host: "127.0.0.1", port })),
    name: "caskdb",
    role: "master",
    maxRetriesPerRequest: 5,
  });
  try {
    assert.strictEqual(await redis.set("sentinel:js", "v"), "OK");
    assert.strictEqual(await redis.get("sentinel:js"), "v");
    const role = await redis.role();
    assert.strictEqual(role[0], "master");
    assert.ok(ports.includes(redis.stream.remotePort), `connected to ${redis.stream.remotePort}`);
    console.log("ok");
  } finally {
    redis.disconnect();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
