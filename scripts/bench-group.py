#!/usr/bin/env python3
"""A replicated group against a single node, and failover time, on this machine.

    cargo build --release -p caskdb-cli
    python3 scripts/bench-group.py                     # both parts
    PART=throughput N=200000 python3 scripts/bench-group.py
    PART=failover KILLS=20 python3 scripts/bench-group.py

throughput: `redis-benchmark -t set,get,incr -c 50 -n N -d 100 [-P 16]` against one `caskdb
serve` alone and against the leader of a three-node group (all on this machine), under
`appendfsync always` and `everysec`; prints requests/s and replicated / single.

failover: a three-node group with the default election timeout; KILLS times, once the group
is quiet (every node follows one leader and has applied all it has), the leader is SIGKILLed
while a client writes through a surviving node, and the time from the kill to the
first acknowledged write after it is measured (then the node is restarted); prints the median
and the maximum.
"""
import csv
import io
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASKDB = os.path.join(ROOT, "target", "release", "caskdb")
N = int(os.environ.get("N", "200000"))
KILLS = int(os.environ.get("KILLS", "20"))
# ELECTION=ms: cluster-election-timeout for the failover part (default: the server's own).
ELECTION = os.environ.get("ELECTION")
PART = os.environ.get("PART", "throughput failover").split()
MODES = os.environ.get("MODES", "always everysec").split()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def read_reply(f):
    """One RESP2 reply from file `f`: str for status/error/integer lines, bytes or None for
    bulks, lists for arrays."""
    line = f.readline().decode().rstrip("\r\n")
    kind, rest = line[:1], line[1:]
    if kind == "$":
        n = int(rest)
        return None if n < 0 else f.read(n + 2)[:-2]
    if kind == "*":
        n = int(rest)
        return None if n < 0 else [read_reply(f) for _ in range(n)]
    return line


def call(port, *args, timeout=2.0):
    """One command over a fresh connection; its reply (see `read_reply`)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        req = f"*{len(args)}\r\n" + "".join(f"${len(str(a))}\r\n{a}\r\n" for a in args)
        s.sendall(req.encode())
        return read_reply(s.makefile("rb"))


class Group:
    def __init__(self, root, mode="always", nodes=3, election=None):
        self.root = root
        self.extra = []
        if election:
            conf = os.path.join(root, "group.toml")
            with open(conf, "w") as f:
                f.write(f"cluster-election-timeout = {election}\n")
            self.extra = ["--config", conf]
        self.mode = mode
        self.ports = {i: free_port() for i in range(1, nodes + 1)}
        self.spec = ",".join(f"{i}=127.0.0.1:{p}@{free_port()}" for i, p in self.ports.items())
        self.procs = {}

    def spawn(self, i):
        log = open(os.path.join(self.root, f"node{i}.log"), "ab")
        self.procs[i] = subprocess.Popen(
            [CASKDB, "--dir", os.path.join(self.root, f"node{i}"), "serve",
             "--port", str(self.ports[i]), "--node-id", str(i), "--cluster", self.spec,
             "--appendfsync", self.mode, *self.extra],
            stdout=subprocess.DEVNULL, stderr=log)

    def wait_ready(self, i):
        for _ in range(3000):
            try:
                if call(self.ports[i], "PING") == "+PONG":
                    return
            except OSError:
                time.sleep(0.01)
        sys.exit(f"node {i} never answered")

    def start_all(self):
        for i in self.ports:
            self.spawn(i)
        for i in self.ports:
            self.wait_ready(i)

    def leader(self):
        """The leader, once every member is a voter (a late node joins as a learner first)."""
        for _ in range(3000):
            for i in self.procs:
                try:
                    if call(self.ports[i], "ROLE")[0] == b"master":
                        info = call(self.ports[i], "INFO", "replication").decode()
                        if (f"raft_voters:{len(self.ports)}\r\n" in info
                                and "raft_learners:0\r\n" in info):
                            return i
                except (OSError, IndexError, TypeError, AttributeError):
                    pass
            time.sleep(0.01)
        sys.exit("no leader")

    def settled(self):
        """The leader, once every node follows it at the same term and has applied as far as
        it has (a restarted node has caught up): the group is quiet."""
        for _ in range(3000):
            lead = self.leader()
            seen = set()
            for i in self.procs:
                try:
                    info = call(self.ports[i], "INFO", "replication").decode()
                except (OSError, AttributeError):
                    break
                fields = dict(line.split(":", 1) for line in info.split("\r\n") if ":" in line)
                seen.add(tuple(fields.get(k) for k in
                               ("raft_leader_id", "raft_term", "raft_applied_index")))
            else:
                if len(seen) == 1:
                    return lead
            time.sleep(0.01)
        sys.exit("the group never settled")

    def stop(self):
        for p in self.procs.values():
            p.kill()
            p.wait()


def bench(port, pipeline):
    args = ["redis-benchmark", "-p", str(port), "-t", "set,get,incr", "-n", str(N),
            "-c", "50", "-d", "100", "-r", "1000000", "--csv"]
    if pipeline > 1:
        args += ["-P", str(pipeline)]
    run = subprocess.run(args, capture_output=True, text=True)
    if run.returncode != 0:
        print(f"redis-benchmark failed ({run.returncode}): {run.stderr.strip()[-300:]}", flush=True)
    return {r[0]: float(r[1]) for r in list(csv.reader(io.StringIO(run.stdout)))[1:] if len(r) > 1}


def throughput():
    print(f"redis-benchmark -t set,get,incr -c 50 -n {N} -d 100 -r 1000000 [-P 16]: "
          "one node alone, and the leader of a three-node group (all on this machine)")
    print(f"{'mode':9} {'pipeline':8} {'test':6} {'single rps':>11} {'group rps':>11} {'ratio':>6}")
    for mode in MODES:
        tmp = tempfile.mkdtemp(prefix="caskdb-group-")
        try:
            port = free_port()
            single = subprocess.Popen(
                [CASKDB, "--dir", os.path.join(tmp, "single"), "serve", "--port", str(port),
                 "--appendfsync", mode], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            group = Group(tmp, mode)
            group.start_all()
            lead = group.leader()
            for _ in range(300):
                try:
                    call(port, "PING")
                    break
                except OSError:
                    time.sleep(0.01)
            term = lambda: call(group.ports[lead], "INFO", "replication").decode().split(
                "raft_term:")[1].split("\r\n")[0]
            try:
                before = term()
                for pipeline in (1, 16):
                    a = bench(port, pipeline)
                    b = bench(group.ports[lead], pipeline)
                    for test in a:
                        print(f"{mode:9} {pipeline:<8} {test:6} {a[test]:11.0f} "
                              f"{b.get(test, 0):11.0f} {b.get(test, 0) / a[test]:6.2f}", flush=True)
                    if not a:
                        print(f"{mode:9} {pipeline:<8} (the single node's run failed)", flush=True)
                # An election under load would show here (and cost the group its throughput).
                print(f"{mode}: Raft term {before} before, {term()} after", flush=True)
            finally:
                single.kill()
                single.wait()
                group.stop()
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def failover():
    tmp = tempfile.mkdtemp(prefix="caskdb-failover-")
    group = Group(tmp, "everysec", election=ELECTION)
    times = []
    try:
        group.start_all()
        for k in range(KILLS):
            lead = group.settled()
            other = next(i for i in group.procs if i != lead)
            group.procs[lead].send_signal(signal.SIGKILL)
            killed = time.monotonic()
            at = time.strftime("%H:%M:%S", time.gmtime()) + f".{int(time.time() * 1000) % 1000:03d}"
            group.procs[lead].wait()
            del group.procs[lead]
            while True:
                try:
                    if call(group.ports[other], "SET", "failover", str(k), timeout=5) == "+OK":
                        break
                except OSError:
                    pass
            times.append(time.monotonic() - killed)
            group.spawn(lead)
            group.wait_ready(lead)
            print(f"kill {k + 1} at {at}: node {lead}, first write acknowledged after "
                  f"{times[-1] * 1000:.0f} ms", flush=True)
        print(f"{KILLS} leader kills: median {statistics.median(times) * 1000:.0f} ms, "
              f"max {max(times) * 1000:.0f} ms (cluster-election-timeout "
              f"{ELECTION or 'default'})")
    finally:
        group.stop()
        if os.environ.get("KEEP"):
            print(f"logs kept in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if not os.path.exists(CASKDB):
        sys.exit("build first: cargo build --release -p caskdb-cli")
    if "throughput" in PART:
        throughput()
    if "failover" in PART:
        failover()
