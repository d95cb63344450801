#!/usr/bin/env python3
"""HyperLogLog and bit commands against redis-server (appendonly yes, appendfsync everysec for
both), `redis-benchmark -c 50`, 3 alternating rounds, medians. Run from the repository:

    cargo build --release -p caskdb-cli && python3 scripts/bench-types.py
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

CASKDB = os.environ.get("CASKDB", "target/release/caskdb")
def start(name, port):
    d=tempfile.mkdtemp()
    if name=="redis":
        cmd=["redis-server","--port",str(port),"--dir",d,"--appendonly","yes","--save",""]
    else:
        cmd=[CASKDB,"serve","--dir",d,"--port",str(port)]
    p=subprocess.Popen(cmd,stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)
    for _ in range(100):
        if subprocess.run(["redis-cli","-p",str(port),"ping"],capture_output=True).stdout.strip()==b"PONG": break
        time.sleep(0.1)
    return p,d
def bench(port, args):
    run = subprocess.run(["redis-benchmark", "-p", str(port), "--csv"] + args, capture_output=True, text=True)
    rows = list(csv.reader(io.StringIO(run.stdout)))
    if len(rows) < 2:
        sys.exit(f"redis-benchmark {' '.join(args)} on port {port} gave no figure: {run.stdout} {run.stderr}")
    return float(rows[1][1])
cases=[("PFADD (100,000 random keys and elements)",["-n","200000","-c","50","-r","100000","pfadd","hll:__rand_int__","__rand_int__"]),
       ("PFCOUNT (one key)",["-n","200000","-c","50","pfcount","hll:1"]),
       ("PFADD, -P 16",["-n","400000","-c","50","-P","16","-r","100000","pfadd","hll:__rand_int__","__rand_int__"]),
       ("BITFIELD INCRBY u8 #100",["-n","200000","-c","50","bitfield","bf","incrby","u8","#100","1"]),
       ("GEOADD (1,000 random members)",["-n","200000","-c","50","-r","1000","geoadd","geo","13.361389","38.115556","m:__rand_int__"]),
       ("GEOSEARCH BYRADIUS 100 km COUNT 10 (the 1,000 members, all at one point)",["-n","20000","-c","50","geosearch","geo","fromlonlat","13.36","38.11","byradius","100","km","count","10"]),
       ("SETBIT (bit 100000: a 12.5 KB string)",["-n","200000","-c","50","setbit","bm","100000","1"])]
res={}
for r in range(3):
    for name,port in [("caskdb",7411),("redis",7412)]:
        p,d=start(name,port)
        try:
            for label,args in cases:
                res.setdefault((name,label),[]).append(bench(port,args))
        finally:
            p.terminate(); p.wait(); shutil.rmtree(d)
print("| command | caskdb | redis-server | ratio |\n|---|---:|---:|---:|")
for label,_ in cases:
    c=statistics.median(res[("caskdb",label)]); rd=statistics.median(res[("redis",label)])
    print(f"| {label} | {c:,.0f} | {rd:,.0f} | {c/rd:.2f} |")
