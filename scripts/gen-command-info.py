#!/usr/bin/env python3
"""Writes crates/caskdb-server/src/command_info.tsv from a running redis-server 7.0.

    redis-server --port 7799 --save "" --daemonize no &
    python3 scripts/gen-command-info.py 7799

One line per command and subcommand (`config|get`), with what COMMAND INFO reports: arity,
flags, key positions, ACL categories, tips and key specs (without their notes). caskdb's
COMMAND INFO and GETKEYS read it; the differential test checks both against redis-server.

Key specs are written `FLAGS BEGIN FIND`, separated by ` ; `:
  FLAGS  the spec's flags joined by commas
  BEGIN  index:POS | keyword:WORD:STARTFROM | unknown
  FIND   range:LASTKEY:KEYSTEP:LIMIT | keynum:KEYNUMIDX:FIRSTKEY:KEYSTEP | unknown
"""
import json
import subprocess
import sys


def spec_text(s):
    flags = ",".join(s["flags"]) or "-"
    bs, fk = s["begin_search"], s["find_keys"]
    if bs["type"] == "index":
        begin = f"index:{bs['spec']['index']}"
    elif bs["type"] == "keyword":
        begin = f"keyword:{bs['spec']['keyword']}:{bs['spec']['startfrom']}"
    else:
        begin = "unknown"
    if fk["type"] == "range":
        p = fk["spec"]
        find = f"range:{p['lastkey']}:{p['keystep']}:{p['limit']}"
    elif fk["type"] == "keynum":
        p = fk["spec"]
        find = f"keynum:{p['keynumidx']}:{p['firstkey']}:{p['keystep']}"
    else:
        find = "unknown"
    return f"{flags} {begin} {find}"


def lines(entry):
    name, arity, flags, first, last, step, cats, tips, specs, subs = entry
    yield "\t".join(
        [
            name,
            str(arity),
            " ".join(flags) or "-",
            str(first),
            str(last),
            str(step),
            " ".join(cats) or "-",
            " ".join(tips) or "-",
            " ; ".join(spec_text(s) for s in specs) or "-",
        ]
    )
    # (In the order redis-server lists them: its COMMAND INFO gives them so.)
    for sub in subs:
        yield from lines(sub)


def main():
    port = sys.argv[1] if len(sys.argv) > 1 else "6379"
    out = subprocess.run(
        ["redis-cli", "-p", port, "--json", "COMMAND", "INFO"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    version = subprocess.run(
        ["redis-cli", "-p", port, "INFO", "server"], check=True, capture_output=True, text=True
    ).stdout
    ver = next(l.split(":")[1].strip() for l in version.splitlines() if l.startswith("redis_version"))
    rows = []
    for entry in sorted(json.loads(out), key=lambda e: e[0]):
        rows.extend(lines(entry))
    path = "crates/caskdb-server/src/command_info.tsv"
    with open(path, "w") as f:
        f.write(f"# COMMAND INFO of redis-server {ver}, by scripts/gen-command-info.py (see there)\n")
        f.write("# name\tarity\tflags\tfirst\tlast\tstep\tcategories\ttips\tkey specs\n")
        for r in rows:
            f.write(r + "\n")
    print(f"{len(rows)} commands and subcommands written to {path}")


main()
