"""What the comparison scripts share: a server started on a fresh directory and stopped by
PID whatever happens, and a redis-benchmark run read back from its CSV."""
import contextlib
import csv
import io
import shutil
import subprocess
import sys
import tempfile
import time


@contextlib.contextmanager
def server(binary, port):
    """redis-server (`binary` None; `appendonly yes`, no snapshots) or `binary serve` on
    `port`, on a directory of its own; stopped and its directory removed on leaving."""
    work = tempfile.mkdtemp(prefix="caskdb-bench-")
    if binary is None:
        cmd = ["redis-server", "--port", str(port), "--dir", work, "--appendonly", "yes", "--save", ""]
    else:
        cmd = [binary, "serve", "--dir", work, "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            ping = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True)
            if ping.stdout.strip() == b"PONG":
                break
            time.sleep(0.1)
        else:
            sys.exit(f"{binary or 'redis-server'} did not start on port {port}")
        yield proc
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work)


def bench_rows(port, args):
    """`redis-benchmark -p port --csv args`: requests per second by test name."""
    run = subprocess.run(["redis-benchmark", "-p", str(port), "--csv"] + args,
                         capture_output=True, text=True)
    rows = list(csv.reader(io.StringIO(run.stdout)))
    if len(rows) < 2:
        sys.exit(f"redis-benchmark {' '.join(args)} on port {port} gave no figure: "
                 f"{run.stdout} {run.stderr}")
    return {r[0]: float(r[1]) for r in rows[1:]}


def bench(port, args):
    """The requests per second of the one test `args` runs."""
    return next(iter(bench_rows(port, args).values()))
