"""Throughput of one server, one server with two workers, and two replicas behind nginx.

    PYTHONPATH=src python benchmarks/bench_replicas.py --clients 8 --duration 30

Starts redis-server, then each deployment on loopback in turn (the shipped models, no API key,
so ``/v1/liveness`` alone: the session API is off), drives it with ``benchmarks/bench_load.py
--url`` (8 closed-loop clients posting 640x480 JPEG frames) and prints one table row per
deployment: throughput, latency percentiles, errors. Deployments:

- ``1 process``: ``facelive serve`` (its pipeline processes: the usable cores);
- ``2 workers``: ``facelive serve --workers 2 --redis-url ...`` (each worker its own pipeline
  processes, half the cores each);
- ``2 replicas + nginx``: two ``facelive serve --redis-url ...`` (half the cores each) behind
  nginx with ``deploy/nginx/facelive.conf``.

On one machine the replicas share its cores, so the third row measures what nginx and the second
process cost, not what a second machine adds; the helpers (:func:`start_replica`,
:func:`nginx_config`, :func:`wait_ready`) are also used by ``tests/deploy/test_replicas.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
SITE = REPO / "deploy" / "nginx" / "facelive.conf"


@dataclass
class Server:
    """A server process started in its own process group (so it dies with its children)."""

    url: str
    proc: subprocess.Popen
    log: Path

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            self.proc.wait(20)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def environment() -> dict[str, str]:
    """This environment with ``src/`` first on ``PYTHONPATH`` (the working tree's facelive)."""
    path = [str(REPO / "src")] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path))


def nginx_executable() -> str | None:
    """nginx on ``PATH`` or Debian's ``/usr/sbin/nginx``; None when not installed."""
    return shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                     else None)


def start_server(folder: Path, name: str, *args: str) -> Server:
    """``facelive serve --host 127.0.0.1 --port FREE ARGS`` with its log in ``folder``."""
    port = free_port()
    log = folder / f"{name}.log"
    cmd = [sys.executable, "-m", "facelive", "serve", "--host", "127.0.0.1", "--port",
           str(port), *args]
    with log.open("w") as fh:
        proc = subprocess.Popen(cmd, env=environment(), cwd=REPO, stdout=fh,
                                stderr=subprocess.STDOUT, start_new_session=True)
    return Server(f"http://127.0.0.1:{port}", proc, log)


def replica_args(redis_url: str, signing_key: Path, *extra: str) -> list[str]:
    """The flags of one replica: the shared Redis and signing key, nginx as trusted proxy."""
    return ["--redis-url", redis_url, "--signing-key", str(signing_key), "--trusted-proxies",
            "127.0.0.1", *extra]


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180.0) -> None:
    """Until ``url`` answers 200; RuntimeError with the log's tail when the process exits or
    the time is up."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: the process exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in {timeout:.0f} s: {log.read_text()[-3000:]}")


def nginx_config(folder: Path, port: int, upstreams: list[str]) -> Path:
    """``deploy/nginx/facelive.conf`` with its replicas replaced by ``upstreams`` (base URLs)
    and its listener by ``127.0.0.1:port``, included by a main configuration that keeps every
    file in ``folder`` (runs unprivileged; logs ``$upstream_addr``). Returns the main file."""
    site = SITE.read_text()
    servers = re.findall(r"server 127\.0\.0\.1:\d+", site)
    if len(servers) != len(upstreams):
        raise ValueError(f"{SITE} lists {len(servers)} replicas, not {len(upstreams)}")
    for old, new in zip(servers, upstreams, strict=True):
        site = site.replace(old, "server " + new.removeprefix("http://"), 1)
    site = site.replace("listen 127.0.0.1:8080", f"listen 127.0.0.1:{port}")
    (folder / "facelive.conf").write_text(site)
    user = "user root;\n" if os.geteuid() == 0 else ""
    temp = "".join(f"  {k}_temp_path {folder}/{k};\n"
                   for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = folder / "nginx.conf"
    main.write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\n"
        f"error_log {folder}/error.log warn;\nevents {{ worker_connections 1024; }}\n"
        "http {\n  log_format upstreams '$status $request_uri $upstream_addr';\n"
        f"  access_log {folder}/access.log upstreams;\n{temp}"
        f"  include {folder}/facelive.conf;\n}}\n")
    return main


def start_nginx(folder: Path, upstreams: list[str]) -> Server:
    """nginx in front of ``upstreams``, checked with ``nginx -t`` first."""
    exe = nginx_executable()
    if exe is None:
        raise RuntimeError("nginx not installed (apt-get install -y nginx)")
    port = free_port()
    conf = nginx_config(folder, port, upstreams)
    check = subprocess.run([exe, "-t", "-c", str(conf)], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(check.stderr)
    log = folder / "error.log"
    proc = subprocess.Popen([exe, "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    return Server(f"http://127.0.0.1:{port}", proc, log)


def start_redis(folder: Path) -> Server:
    exe = shutil.which("redis-server")
    if exe is None:
        raise RuntimeError("redis-server not installed (apt-get install -y redis-server)")
    port = free_port()
    log = folder / "redis.log"
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(folder)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    time.sleep(0.5)
    return Server(f"redis://127.0.0.1:{port}/0", proc, log)


def measure(url: str, clients: int, duration: float) -> dict[str, str]:
    """Run ``bench_load.py --url`` against ``url``; the rows of its table by name."""
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_load.py"), "--url", url,
           "--clients", str(clients), "--duration", str(duration)]
    out = subprocess.run(cmd, env=environment(), cwd=REPO, capture_output=True, text=True)
    rows = {}
    for line in out.stdout.splitlines():
        cells = [c.strip() for c in line.split("\u2502") if c.strip()]
        if len(cells) == 2:
            rows[cells[0]] = cells[1]
    if "throughput" not in rows:
        raise RuntimeError(f"bench_load.py printed no table: {out.stdout}\n{out.stderr}")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=30.0)
    args = ap.parse_args()
    from facelive.server.workers import usable_cores

    half = str(max(1, usable_cores() // 2))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp:
        folder = Path(tmp)
        redis = start_redis(folder)
        # /v1/liveness only (no API keys, so no session API); the replicas share Redis as
        # they would for the sessions and the rate limits
        shared = ["--no-sessions", "--redis-url", redis.url, "--trusted-proxies", "127.0.0.1"]
        plans = {
            "1 process": [["--no-sessions"]],
            "2 workers": [["--workers", "2", *shared]],
            "2 replicas + nginx": [[*shared, "--pipeline-workers", half]] * 2,
        }
        try:
            for name, servers in plans.items():
                started = [start_server(folder, f"{name}-{i}".replace(" ", "_"), *a)
                           for i, a in enumerate(servers)]
                front = None
                try:
                    for s in started:
                        wait_ready(s.url + "/readyz", s.proc, s.log)
                    url = started[0].url
                    if len(started) > 1:
                        front = start_nginx(folder, [s.url for s in started])
                        wait_ready(front.url + "/healthz", front.proc, front.log)
                        url = front.url
                    print(f"{name}: {url}", file=sys.stderr, flush=True)
                    rows.append((name, measure(url, args.clients, args.duration)))
                finally:
                    for s in [*started, *([front] if front else [])]:
                        s.kill(signal.SIGTERM)
        finally:
            redis.kill(signal.SIGTERM)
    cols = ["throughput", "latency p50 / p90 / p99 / max", "errors", "answered (200)"]
    print(f"\n{args.clients} clients, {args.duration:.0f} s each, {usable_cores()} usable cores,"
          " shipped models\n")
    print("| deployment | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for name, cells in rows:
        print(f"| {name} | " + " | ".join(cells.get(c, "?") for c in cols) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
