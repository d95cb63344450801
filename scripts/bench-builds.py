#!/usr/bin/env python3
"""Compares builds of caskdb (or one build under different environments) against one
redis-server, in one run: every build is started once, then each round runs the same
redis-benchmark against Redis and then against each build, and prints the median of each
build's per-round ratio to Redis. For a before/after of a change on a shared, noisy machine,
where a ratio from one run means little next to one from another.

    cargo build --release -p caskdb-cli && cp target/release/caskdb /tmp/caskdb-after
    python3 scripts/bench-builds.py 7 before=/tmp/caskdb-before after=/tmp/caskdb-after
    python3 scripts/bench-builds.py 5 one=target/release/caskdb:TOKIO_WORKER_THREADS=1
    BENCH='incr|k' P=16 python3 scripts/bench-builds.py 5 now=target/release/caskdb

BENCH: the benchmarked command, `|`-separated (default: EVAL of an INCR script); N requests
per line (default 150000), P the pipeline depth (default 1), -c 50. Redis runs with
`appendonly yes`, both with appendfsync everysec.
"""
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc):
    for _ in range(500):
        if proc.poll() is not None:
            sys.exit(f"server on {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return
        except OSError:
            time.sleep(0.02)
    sys.exit(f"server on {port} never answered")


def bench(port, command, n, pipeline):
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-n", n, "-c", "50", "-P", pipeline, "-q", *command],
        capture_output=True, text=True, check=True).stdout
    rates = re.findall(r"([0-9.]+) requests per second", out.replace("\r", "\n"))
    return float(rates[-1])


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    rounds = int(sys.argv[1])
    command = os.environ.get("BENCH", "eval|return redis.call('incr',KEYS[1])|1|k").split("|")
    n = os.environ.get("N", "150000")
    pipeline = os.environ.get("P", "1")
    tmp = tempfile.mkdtemp(prefix="caskdb-builds-")
    procs = []
    try:
        port = free_port()
        redis = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", tmp, "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(redis)
        wait_ready(port, redis)
        builds = []
        for i, spec in enumerate(sys.argv[2:]):
            label, rest = spec.split("=", 1)
            binary, *envs = rest.split(":")
            env = dict(os.environ)
            for kv in envs:
                k, v = kv.split("=", 1)
                env[k] = v
            p = free_port()
            proc = subprocess.Popen(
                [binary, "serve", "--dir", os.path.join(tmp, f"b{i}"), "--port", str(p),
                 "--appendfsync", "everysec"],
                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(proc)
            wait_ready(p, proc)
            builds.append((label, p))
        redis_rates = []
        ratios = {label: [] for label, _ in builds}
        for _ in range(rounds):
            redis_rates.append(bench(port, command, n, pipeline))
            for label, p in builds:
                ratios[label].append(bench(p, command, n, pipeline) / redis_rates[-1])
        print(f"{' '.join(command)} -n {n} -c 50 -P {pipeline}, {rounds} round(s)")
        print(f"redis median {statistics.median(redis_rates):,.0f} req/s")
        for label, r in ratios.items():
            each = " ".join(f"{x:.2f}" for x in r)
            print(f"{label:12} median ratio {statistics.median(r):.3f}   rounds: {each}")
    finally:
        for p in procs:
            p.terminate()
            p.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
