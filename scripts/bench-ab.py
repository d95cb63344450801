#!/usr/bin/env python3
"""Before/after: two builds of caskdb measured in one run, alternating, with a peer in every
round (redb for the engine, redis-server for the server), so a refactoring's cost can be told
from the machine's noise. Prints the median of each figure per build and the new/base ratio.

    git worktree add /tmp/base <commit>            # the build to compare against
    (cd /tmp/base && cargo build --release -p caskdb-bench -p caskdb-cli)
    cargo build --release -p caskdb-bench -p caskdb-cli
    python3 scripts/bench-ab.py /tmp/base/target/release target/release

Engine: `caskdb-bench fill read durable --engines caskdb,redb` (1M keys of 16 bytes, 100-byte
values; durable puts from 1 and 8 threads). Server: `redis-benchmark -t set,get -n 200000
-c 50 -r 1000000 -d 100`, unpipelined, `appendfsync everysec` (Redis with `appendonly yes`).
ROUNDS (default 3), KEYS and N change the sizes.
"""
import csv
import importlib
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

# The server half starts servers the way bench-server.py does.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
server_bench = importlib.import_module("bench-server")

ROUNDS = int(os.environ.get("ROUNDS", "3"))
KEYS = os.environ.get("KEYS", "1000000")
N = os.environ.get("N", "200000")


def engine(bindir):
    """Figures of one caskdb-bench run: {(engine, workload): ops/s}."""
    work = tempfile.mkdtemp(prefix="caskdb-ab-")
    try:
        out = subprocess.run(
            [os.path.join(bindir, "caskdb-bench"), "fill", "read", "durable",
             "--engines", "caskdb,redb", "--keys", KEYS, "--dir", work],
            check=True, capture_output=True, text=True).stderr
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {}
    # progress lines: "     fill… caskdb   … fill 812345, read 1234567, …"
    for line in out.splitlines():
        m = re.match(r"\s*\S+\s+(\w+)\s+…\s+(.*)", line)
        if m:
            for item in m.group(2).split(", "):
                name, value = item.rsplit(" ", 1)
                figures[(m.group(1), name)] = float(value)
    return figures


def server(start):
    """redis-benchmark's requests/s per test against a fresh server from `start`."""
    work = tempfile.mkdtemp(prefix="caskdb-ab-")
    proc, port = start("everysec", work)
    try:
        out = subprocess.run(
            ["redis-benchmark", "-p", str(port), "-t", "set,get", "-n", N, "-r", "1000000",
             "-c", "50", "-d", "100", "--csv"],
            check=True, capture_output=True, text=True).stdout
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    rows = list(csv.reader(io.StringIO(out)))
    return {("server", r[0]): float(r[1]) for r in rows[1:] if len(r) > 1}


def caskdb_server(bindir):
    def start(mode, work):
        server_bench.CASKDB = os.path.join(bindir, "caskdb")
        return server_bench.start_caskdb(mode, work)
    return start


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    base, new = sys.argv[1], sys.argv[2]
    runs = {"base": [], "new": [], "redis": []}
    for r in range(ROUNDS):
        order = [("base", base), ("new", new)] if r % 2 == 0 else [("new", new), ("base", base)]
        for name, bindir in order:
            figures = engine(bindir)
            figures.update(server(caskdb_server(bindir)))
            runs[name].append(figures)
            print(f"round {r + 1}: {name} done", file=sys.stderr, flush=True)
        runs["redis"].append(server(server_bench.start_redis))
    median = {k: {key: statistics.median(f[key] for f in v if key in f) for key in v[0]}
              for k, v in runs.items() if v}
    print(f"{ROUNDS} alternating rounds, medians (ops/s or requests/s)")
    print(f"{'figure':32} {'base':>12} {'new':>12} {'new/base':>9} {'peer':>12} "
          f"{'base/peer':>9} {'new/peer':>9}")
    for key in sorted(k for k in median["new"] if k[0] == "caskdb" or k[0] == "server"):
        b, n = median["base"].get(key), median["new"][key]
        peer = median["new"].get(("redb", key[1])) if key[0] == "caskdb" else \
            median["redis"].get(key)
        peer_b = median["base"].get(("redb", key[1])) if key[0] == "caskdb" else peer
        name = f"{key[0]} {key[1]}"
        cols = [f"{b:12.0f}" if b else f"{'':12}", f"{n:12.0f}",
                f"{n / b:9.2f}" if b else f"{'':9}",
                f"{peer:12.0f}" if peer else f"{'':12}",
                f"{b / peer_b:9.2f}" if b and peer_b else f"{'':9}",
                f"{n / peer:9.2f}" if peer else f"{'':9}"]
        print(f"{name:32} " + " ".join(cols))


if __name__ == "__main__":
    main()
