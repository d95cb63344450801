#!/usr/bin/env python3
"""Replies holding large values, two caskdb builds and redis-server in one run, alternating:
`redis-benchmark -c 50` GET of 100 bytes and LRANGE_100, GET of one 40 KB value, MGET of it
four times. Values over 16 KiB are sent from their files as the client takes the reply; this
shows what that costs against the build before and against Redis. Medians of ROUNDS (3).

    git worktree add /tmp/base <commit> && (cd /tmp/base && cargo build --release -p caskdb-cli)
    cargo build --release -p caskdb-cli
    python3 scripts/bench-large-values.py /tmp/base/target/release/caskdb target/release/caskdb
"""
import os
import statistics
import subprocess
import sys

from benchlib import bench, bench_rows, server

ROUNDS = int(os.environ.get("ROUNDS", "3"))


def figures(port):
    f = bench_rows(port, ["-t", "get,lrange_100", "-n", "200000", "-c", "50", "-r", "1000000", "-d", "100"])
    subprocess.run(["redis-cli", "-p", str(port), "set", "big", "x" * 40000], capture_output=True)
    for name, args in [
        ("GET of 40 KB", ["-n", "50000", "-c", "50", "get", "big"]),
        ("MGET of 4 × 40 KB", ["-n", "20000", "-c", "50", "mget", "big", "big", "big", "big"]),
    ]:
        f[name] = bench(port, args)
    return f


def main():
    base, new = sys.argv[1], sys.argv[2]
    results = {}
    for _ in range(ROUNDS):
        for name, binary, port in [("base", base, 7401), ("new", new, 7402), ("redis", None, 7403)]:
            with server(binary, port):
                for k, v in figures(port).items():
                    results.setdefault((name, k), []).append(v)
    print("| figure, requests/s | base | new | redis-server | new/base | new/redis |")
    print("|---|---:|---:|---:|---:|---:|")
    for k in sorted({k for _, k in results}):
        b, n, r = (statistics.median(results[(who, k)]) for who in ("base", "new", "redis"))
        print(f"| {k} | {b:,.0f} | {n:,.0f} | {r:,.0f} | {n / b:.2f} | {n / r:.2f} |")


if __name__ == "__main__":
    main()
