"""What the comparison scripts share: a free port, a server started on a fresh directory and
stopped by PID whatever happens, and a redis-benchmark run read back from its CSV."""
import contextlib
import csv
import io
import shutil
import socket
import subprocess
import sys
import tempfile
import time


def free_port():
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port, proc):
    """Returns once the server `proc` on `port` answers PING; exits if it died or never does."""
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


@contextlib.contextmanager
def server(binary, port, env=None):
    """redis-server (`binary` None; `appendonly yes`, no snapshots) or `binary serve` on
    `port` (under environment `env` if given), on a directory of its own; stopped and its
    directory removed on leaving."""
    work = tempfile.mkdtemp(prefix="caskdb-bench-")
    if binary is None:
        cmd = ["redis-server", "--port", str(port), "--dir", work, "--appendonly", "yes", "--save", ""]
    else:
        cmd = [binary, "serve", "--dir", work, "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
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
