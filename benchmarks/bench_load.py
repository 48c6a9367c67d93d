"""Load benchmark of ``facelive serve``: N concurrent clients on loopback for a bounded time.

    PYTHONPATH=src python benchmarks/bench_load.py --clients 8 --duration 60
    PYTHONPATH=src python benchmarks/bench_load.py --clients 8 --duration 300   # memory growth
    PYTHONPATH=src python benchmarks/bench_load.py --url http://127.0.0.1:8000  # a running server

Starts the server as a subprocess (unless ``--url``), waits for ``/readyz``, warms up, then each
client posts 640x480 JPEG frames (multipart, one request at a time) until the time is up. Prints
throughput, latency percentiles, errors and the server's resident memory (VmRSS of the server and
its worker processes, from /proc) at the start and the end. ``--stand-in`` serves the real
pipeline with a constant-score test instead of the shipped models (measures the service overhead
plus face detection only; labelled as such). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELIVE_DATA", REPO.parent / "shared" / "data"))
TARGETS = {"throughput": 25.0, "p99_ms": 250.0, "errors": 0, "growth_pct": 10.0}

STAND_IN = """
import sys, uvicorn
from facelive.liveness import LivenessTest
from facelive.pipeline import Pipeline
from facelive.server.app import create_app
from facelive.server.settings import Settings

class Constant(LivenessTest):
    name, needs_face, threshold = "constant", True, 0.5
    def score_frame(self, frame):
        return 0.75

s = Settings.from_env()
uvicorn.run(create_app(s, Pipeline([Constant()])), host="127.0.0.1", port=s.port,
            log_level="warning", access_log=False)
"""


def frame_jpeg(path: str | None) -> tuple[bytes, str]:
    """640x480 JPEG bytes and where they came from."""
    import cv2

    if path:
        img, src = cv2.imread(path), path
    else:
        real = sorted((DATA / "nuaa" / "ClientRaw").rglob("*.jpg"))[:1]
        if real:
            img, src = cv2.imread(str(real[0])), "shared NUAA live frame"
        else:
            yy, xx = np.mgrid[0:480, 0:640]
            img = np.dstack([xx % 256, yy % 256, (xx + yy) % 256]).astype(np.uint8)
            src = "synthetic (no face)"
    if img is None:
        sys.exit(f"cannot read {path}")
    img = cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])
    return io.BytesIO(buf.tobytes()).getvalue(), src


def tree_pids(pid: int) -> list[int]:
    """``pid`` and its descendants (uvicorn workers), from /proc/*/task/*/children."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo.extend(int(c) for c in (task / "children").read_text().split())
            except OSError:
                pass
    return out


def rss_mib(pid: int) -> float:
    total = 0
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


async def client(http: httpx.AsyncClient, url: str, body: bytes, until: float,
                 lat: list[float], outcomes: Counter) -> None:
    while time.perf_counter() < until:
        t0 = time.perf_counter()
        try:
            r = await http.post(url, files={"image": ("frame.jpg", body, "image/jpeg")})
            dt = time.perf_counter() - t0
            if r.status_code == 200:
                lat.append(dt)
                outcomes[r.json()["decision"]] += 1
            else:
                outcomes[f"HTTP {r.status_code}"] += 1
        except httpx.HTTPError as exc:
            outcomes[type(exc).__name__] += 1


async def drive(base: str, body: bytes, clients: int, seconds: float, pid: int | None,
                samples: list[tuple[float, float]]) -> tuple[list[float], Counter, float]:
    lat: list[float] = []
    outcomes: Counter = Counter()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=30, limits=limits) as http:
        t0 = time.perf_counter()
        until = t0 + seconds

        async def sample() -> None:
            while pid is not None and time.perf_counter() < until:
                samples.append((time.perf_counter() - t0, rss_mib(pid)))
                await asyncio.sleep(min(10.0, max(1.0, seconds / 10)))

        await asyncio.gather(sample(), *(client(http, base + "/v1/liveness", body, until, lat,
                                                outcomes) for _ in range(clients)))
        elapsed = time.perf_counter() - t0
    return lat, outcomes, elapsed


def start_server(args: argparse.Namespace, port: int, log: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO / "src")] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.update(FACELIVE_PORT=str(port), FACELIVE_MAX_CONCURRENCY=str(args.max_concurrency),
               FACELIVE_WORKERS=str(args.workers), FACELIVE_LOG_LEVEL="warning")
    cmd = ([sys.executable, "-c", STAND_IN] if args.stand_in
           else [sys.executable, "-m", "facelive", "serve", "--host", "127.0.0.1"])
    with log.open("w") as fh:
        return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of measured load")
    ap.add_argument("--warmup", type=float, default=5.0, help="seconds of unmeasured load first")
    ap.add_argument("--workers", type=int, default=1, help="server worker processes")
    ap.add_argument("--max-concurrency", type=int, default=None,
                    help="server slots per worker (default: --clients)")
    ap.add_argument("--image", default=None, help="image to send (default: a shared 640x480 frame)")
    ap.add_argument("--url", default=None, help="benchmark a running server instead")
    ap.add_argument("--stand-in", action="store_true",
                    help="constant-score test instead of the shipped models (overhead only)")
    args = ap.parse_args()
    args.max_concurrency = args.max_concurrency or args.clients
    body, source = frame_jpeg(args.image)

    proc = None
    log = Path(tempfile.mkdtemp(prefix="facelive-bench-")) / "server.log"
    if args.url:
        base = args.url.rstrip("/")
    else:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        base = f"http://127.0.0.1:{port}"
        proc = start_server(args, port, log)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc is not None and proc.poll() is not None:
                print(f"the server exited ({proc.returncode}):\n{log.read_text()[-3000:]}",
                      file=sys.stderr)
                return 2
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                print("the server did not become ready in 120 s", file=sys.stderr)
                return 2
            time.sleep(0.5)
        info = httpx.get(base + "/v1/info", timeout=5).json()
        pid = proc.pid if proc is not None else None
        if args.warmup > 0:
            asyncio.run(drive(base, body, args.clients, args.warmup, None, []))
        samples: list[tuple[float, float]] = []
        rss0 = rss_mib(pid) if pid else float("nan")
        lat, outcomes, elapsed = asyncio.run(drive(base, body, args.clients, args.duration,
                                                   pid, samples))
        rss1 = rss_mib(pid) if pid else float("nan")
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()

    ok = len(lat)
    errors = sum(n for k, n in outcomes.items() if k not in ("live", "spoof", "unknown"))
    ms = np.array(lat) * 1e3 if lat else np.array([np.nan])
    thr = ok / elapsed
    growth = (rss1 - rss0) / rss0 * 100 if rss0 == rss0 and rss0 > 0 else float("nan")
    tests = ",".join(t["name"] for t in info["pipeline"]["tests"])
    rows = [
        ("tests", tests + (" (stand-in)" if args.stand_in else "")),
        ("image", f"640x480 JPEG, {len(body) / 1024:.0f} KiB, {source}"),
        ("clients / workers / slots", f"{args.clients} / {args.workers} / {args.max_concurrency}"),
        ("duration", f"{elapsed:.1f} s (after {args.warmup:.0f} s warm-up)"),
        ("answered (200)", f"{ok}  " + ", ".join(f"{k}={v}" for k, v in sorted(outcomes.items()))),
        ("throughput", f"{thr:.1f} img/s"),
        ("latency p50 / p90 / p99 / max", " / ".join(
            f"{np.percentile(ms, q):.0f}" for q in (50, 90, 99, 100)) + " ms"),
        ("errors", str(errors)),
        ("server RSS start / end", f"{rss0:.0f} / {rss1:.0f} MiB ({growth:+.1f}%)"),
    ]
    if samples:
        rows.append(("RSS samples", " ".join(f"{t:.0f}s:{m:.0f}" for t, m in samples)))
    from rich.console import Console
    from rich.table import Table

    table = Table("measure", "value", title="facelive serve load benchmark")
    for r in rows:
        table.add_row(*r)
    Console(width=140).print(table)
    p99 = float(np.percentile(ms, 99))
    checks = {
        f">= {TARGETS['throughput']:.0f} img/s": thr >= TARGETS["throughput"],
        f"p99 <= {TARGETS['p99_ms']:.0f} ms": p99 <= TARGETS["p99_ms"],
        "zero errors": errors == 0,
        f"RSS growth < {TARGETS['growth_pct']:.0f}%": not growth >= TARGETS["growth_pct"],
    }
    print("targets: " + ", ".join(f"{k}: {'met' if v else 'MISSED'}" for k, v in checks.items()))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
