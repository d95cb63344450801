#!/usr/bin/env python3
"""HyperLogLog and bit commands against redis-server (appendonly yes, appendfsync everysec for
both), `redis-benchmark -c 50`, 3 alternating rounds, medians. Run from the repository:

    cargo build --release -p caskdb-cli && python3 scripts/bench-types.py
"""
import os
import statistics

from benchlib import bench, server

CASKDB = os.environ.get("CASKDB", "target/release/caskdb")
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
        with server(CASKDB if name=="caskdb" else None,port):
            for label,args in cases:
                res.setdefault((name,label),[]).append(bench(port,args))
print("| command | caskdb | redis-server | ratio |\n|---|---:|---:|---:|")
for label,_ in cases:
    c=statistics.median(res[("caskdb",label)]); rd=statistics.median(res[("redis",label)])
    print(f"| {label} | {c:,.0f} | {rd:,.0f} | {c/rd:.2f} |")
