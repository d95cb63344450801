#!/usr/bin/env python3
"""Streams, and long strings changed in place (a 16 MB bitmap, a dense HyperLogLog), against
redis-server, both with appendonly yes / appendfsync everysec, `redis-benchmark -c 50`, 3
alternating rounds, medians. Each round starts both servers on fresh directories and stops them
(by PID) before the next. Run from the repository:

    cargo build --release -p caskdb-cli && python3 scripts/bench-streams.py

`ONLY='SETBIT|PFADD'` (parts of lines' labels) runs only the matching lines.

The consumer-group lines read and acknowledge a stream filled beforehand with entries 1-0 …
200000-0: XREADGROUP … COUNT 1 > delivers the next entry to the group (adding it to the
pending list); XACK acknowledges a random one (the first time it is pending, later not).
"""
import os
import statistics
import subprocess

from benchlib import bench, server

CASKDB = os.environ.get("CASKDB", "target/release/caskdb")
N = 200_000


def fill(port):
    """Stream `g` with entries 1-0 … N-0 and group `grp` at 0; a 16 MB bitmap `big`; a dense
    HyperLogLog `hll` (20,000 elements)."""
    lines = "".join(f"XADD g {i}-0 f v\r\n" for i in range(1, N + 1))
    lines += "XGROUP CREATE g grp 0\r\nSETBIT big 134217727 1\r\n"
    lines += "".join(f"PFADD hll {i}\r\n" for i in range(20_000))
    subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=lines.encode(),
                   capture_output=True, check=True)


cases = [
    ("XADD s * (one stream)", ["-n", "200000", "-c", "50", "xadd", "s", "*", "f", "v"]),
    ("XADD s MAXLEN ~ 1000 *", ["-n", "200000", "-c", "50", "xadd", "t", "maxlen", "~", "1000", "*", "f", "v"]),
    ("XADD, -P 16", ["-n", "400000", "-c", "50", "-P", "16", "xadd", "u", "*", "f", "v"]),
    ("XREADGROUP GROUP grp c COUNT 1 STREAMS g >", ["-n", str(N), "-c", "50", "xreadgroup", "group", "grp", "c", "count", "1", "streams", "g", ">"]),
    ("XACK g grp <random id>", ["-n", str(N), "-c", "50", "-r", str(N), "xack", "g", "grp", "__rand_int__-0"]),
    ("XRANGE g - + COUNT 10", ["-n", "100000", "-c", "50", "xrange", "g", "-", "+", "count", "10"]),
    ("BITCOUNT of the 16 MB bitmap, bytes 0-1023", ["-n", "200000", "-c", "50", "bitcount", "big", "0", "1023"]),
    ("SETBIT in the 16 MB bitmap (bit 1000)", ["-n", "20000", "-c", "10", "setbit", "big", "1000", "1"]),
    # (redis-benchmark's random numbers are zero-padded, which no offset parses as: the
    # changing bytes are the value here.)
    ("SETRANGE of 12 random digits at byte 1000 of the 16 MB bitmap", ["-n", "200000", "-c", "50", "-r", "1000000", "setrange", "big", "1000", "__rand_int__"]),
    ("PFADD to the dense HyperLogLog", ["-n", "200000", "-c", "50", "-r", "100000000", "pfadd", "hll", "__rand_int__"]),
]
only = os.environ.get("ONLY")
if only:
    cases = [c for c in cases if any(o in c[0] for o in only.split("|"))]

res = {}
for r in range(3):
    for name, port in [("caskdb", 7421), ("redis", 7422)]:
        with server(CASKDB if name == "caskdb" else None, port):
            fill(port)
            for label, args in cases:
                res.setdefault((name, label), []).append(bench(port, args))
print("| command | caskdb | redis-server | ratio |\n|---|---:|---:|---:|")
for label, _ in cases:
    c = statistics.median(res[("caskdb", label)])
    rd = statistics.median(res[("redis", label)])
    print(f"| {label} | {c:,.0f} | {rd:,.0f} | {c / rd:.2f} |")
