#!/usr/bin/env python3
"""Runs the same redis-benchmark against redis-server and `caskdb serve`, alternating, in one
run, and prints requests/s for both and caskdb's ratio to Redis.

    cargo build --release -p caskdb-cli
    python3 scripts/bench-server.py                 # everysec and always, 1M requests per line
    N=200000 python3 scripts/bench-server.py        # shorter
    MODES=everysec python3 scripts/bench-server.py  # one durability mode
    SCRIPTS=1 N=100000 python3 scripts/bench-server.py  # EVAL and EVALSHA of an INCR script
    TLS=1 TESTS=set,get python3 scripts/bench-server.py # over TLS (certificates made by openssl)

Both servers log to disk the same way: Redis with `appendonly yes` and the same `appendfsync`,
caskdb with the same `appendfsync`; each gets a fresh temporary directory per mode.
"""
import csv
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, wait_ready

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASKDB = os.path.join(ROOT, "target", "release", "caskdb")
N = int(os.environ.get("N", "1000000"))
MODES = os.environ.get("MODES", "everysec always").split()
TESTS = os.environ.get("TESTS", "set,get,incr,mset")
ROUNDS = int(os.environ.get("ROUNDS", "1"))
SCRIPTS = os.environ.get("SCRIPTS") == "1"
# TLS=1: both servers also listen with TLS (no client certificates), and the benchmark uses it.
TLS = os.environ.get("TLS") == "1"
CERTS = None
SCRIPT = "return redis.call('incr',KEYS[1])"


def make_certs(d):
    """A CA and a server certificate for 127.0.0.1, by openssl, in directory d."""
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=bench CA",
        "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.crt")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
        "-keyout", f"{d}/server.key", "-out", f"{d}/server.csr")
    with open(f"{d}/ext.cnf", "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", f"{d}/server.csr", "-CA", f"{d}/ca.crt", "-CAkey", f"{d}/ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", f"{d}/ext.cnf", "-out", f"{d}/server.crt")
    return d


def start_redis(mode, workdir):
    port = free_port()
    args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", workdir,
            "--save", "", "--appendonly", "yes", "--appendfsync", mode, "--daemonize", "no"]
    tls_port = None
    if TLS:
        tls_port = free_port()
        args += ["--tls-port", str(tls_port), "--tls-cert-file", f"{CERTS}/server.crt",
                 "--tls-key-file", f"{CERTS}/server.key", "--tls-ca-cert-file", f"{CERTS}/ca.crt",
                 "--tls-auth-clients", "no"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, proc)
    return proc, tls_port or port


def start_caskdb(mode, workdir):
    port = free_port()
    args = [CASKDB, "--dir", workdir, "serve", "--port", str(port), "--appendfsync", mode]
    tls_port = None
    if TLS:
        tls_port = free_port()
        conf = os.path.join(os.path.dirname(workdir), "caskdb-tls.toml")
        with open(conf, "w") as f:
            f.write(f'tls-port = {tls_port}\ntls-cert-file = "{CERTS}/server.crt"\n'
                    f'tls-key-file = "{CERTS}/server.key"\ntls-auth-clients = "no"\n')
        args += ["--config", conf]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_ready(port, proc)
    return proc, tls_port or port


def run_csv(args):
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    rows = list(csv.reader(io.StringIO(out)))
    return {r[0]: float(r[1]) for r in rows[1:] if len(r) > 1}


def bench(port, pipeline):
    if SCRIPTS:
        return bench_scripts(port, pipeline)
    args = ["redis-benchmark", "-p", str(port), "-t", TESTS, "-n", str(N), "-r", "1000000",
            "-c", "50", "-d", "100", "--csv"]
    if TLS:
        args += ["--tls", "--cacert", f"{CERTS}/ca.crt"]
    if pipeline > 1:
        args += ["-P", str(pipeline)]
    return run_csv(args)


def bench_scripts(port, pipeline):
    """`redis-benchmark -n N -c 50 eval SCRIPT 1 k`, then the same by EVALSHA."""
    sha = subprocess.run(["redis-cli", "-p", str(port), "SCRIPT", "LOAD", SCRIPT], check=True,
                         capture_output=True, text=True).stdout.strip()
    out = {}
    for name, cmd in (("EVAL", ["eval", SCRIPT]), ("EVALSHA", ["evalsha", sha])):
        args = ["redis-benchmark", "-p", str(port), "-n", str(N), "-c", "50", "--csv"]
        if pipeline > 1:
            args += ["-P", str(pipeline)]
        for rps in run_csv(args + cmd + ["1", "k"]).values():
            out[name] = rps
    return out


def main():
    global CERTS
    if not os.path.exists(CASKDB):
        sys.exit("build first: cargo build --release -p caskdb-cli")
    what = f"eval/evalsha of {SCRIPT!r} 1 k" if SCRIPTS else f"-t {TESTS} -r 1000000 -d 100"
    if TLS:
        CERTS = make_certs(tempfile.mkdtemp(prefix="caskdb-bench-certs-"))
        what += " over TLS"
    print(f"redis-benchmark {what} -n {N} -c 50 [-P 16], "
          f"{ROUNDS} round(s), alternating servers")
    print(f"{'mode':9} {'pipeline':8} {'test':16} {'redis rps':>12} {'caskdb rps':>12} {'ratio':>7}")
    for mode in MODES:
        tmp = tempfile.mkdtemp(prefix="caskdb-bench-")
        try:
            os.makedirs(os.path.join(tmp, "redis"))
            redis, rport = start_redis(mode, os.path.join(tmp, "redis"))
            cask, cport = start_caskdb(mode, os.path.join(tmp, "caskdb"))
            try:
                for pipeline in (1, 16):
                    totals = {"redis": {}, "caskdb": {}}
                    for _ in range(ROUNDS):
                        for name, port in (("redis", rport), ("caskdb", cport)):
                            for test, rps in bench(port, pipeline).items():
                                totals[name].setdefault(test, []).append(rps)
                    for test in totals["redis"]:
                        r = statistics.median(totals["redis"][test])
                        c = statistics.median(totals["caskdb"].get(test, [0]))
                        print(f"{mode:9} {pipeline:<8} {test:16} {r:12.0f} {c:12.0f} {c / r:7.2f}",
                              flush=True)
            finally:
                for p in (redis, cask):
                    p.terminate()
                    p.wait(timeout=60)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
