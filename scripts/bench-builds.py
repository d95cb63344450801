#!/usr/bin/env python3
"""Compares builds of caskdb (or one build under different environments) against one
redis-server, in one run: every build is started once, then each round runs the same
redis-benchmark against Redis and then against each build, and prints the median of each
build's per-round ratio to Redis. For a before/after of a change on a shared, noisy machine,
where a ratio from one run means little next to one from another.

    cargo build --release -p caskdb-cli && cp target/release/caskdb /tmp/caskdb-after
    python3 scripts/bench-builds.py 7 before=/tmp/caskdb-before after=/tmp/caskdb-after
    python3 scripts/bench-builds.py 5 one=target/release/caskdb:TOKIO_WORKER_THREADS=1
    BENCH='-r|1000000|-t|zadd,zpopmin' python3 scripts/bench-builds.py 5 now=target/release/caskdb

BENCH: redis-benchmark's arguments after `-n N -c 50 -P P`, `|`-separated (default: EVAL of
an INCR script); the last test it reports is the one compared. N requests per test (default
150000), P the pipeline depth (default 1). Redis runs with `appendonly yes`; both with
appendfsync everysec (their defaults).
"""
import contextlib
import os
import statistics
import sys

from benchlib import bench_rows, free_port, server


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    command = os.environ.get("BENCH", "eval|return redis.call('incr',KEYS[1])|1|k").split("|")
    args = ["-n", os.environ.get("N", "150000"), "-c", "50", "-P", os.environ.get("P", "1"), *command]
    with contextlib.ExitStack() as stack:
        redis_port = free_port()
        stack.enter_context(server(None, redis_port))
        builds = []
        for spec in sys.argv[2:]:
            label, rest = spec.split("=", 1)
            binary, *envs = rest.split(":")
            env = dict(os.environ)
            env.update(kv.split("=", 1) for kv in envs)
            port = free_port()
            stack.enter_context(server(binary, port, env))
            builds.append((label, port))

        def last(port):
            return list(bench_rows(port, args).values())[-1]

        redis_rates = []
        ratios = {label: [] for label, _ in builds}
        for _ in range(rounds):
            redis_rates.append(last(redis_port))
            for label, port in builds:
                ratios[label].append(last(port) / redis_rates[-1])
    print(f"redis-benchmark {' '.join(args)}, {rounds} round(s)")
    print(f"redis median {statistics.median(redis_rates):,.0f} req/s")
    for label, r in ratios.items():
        each = " ".join(f"{x:.2f}" for x in r)
        print(f"{label:12} median ratio {statistics.median(r):.3f}   rounds: {each}")


if __name__ == "__main__":
    main()
