"""Hostile-traffic benchmark of ``facelive serve``: bounded attacks beside valid clients, loopback.

    PYTHONPATH=src python benchmarks/bench_hostile.py                    # 30 s
    PYTHONPATH=src python benchmarks/bench_hostile.py --duration 300     # the 5-minute soak
    PYTHONPATH=src python benchmarks/bench_hostile.py --quick            # a few seconds (tests)
    PYTHONPATH=src python benchmarks/bench_hostile.py --worst-case       # cost of the largest image

Starts ``facelive serve`` on 127.0.0.1 (its own subprocess, real models unless ``--server-args``
says otherwise), waits for ``/readyz``, then for ``--duration`` seconds runs, all at once:

- ``valid``: clients posting a 640x480 camera frame (multipart), one request at a time;
- ``healthz``: a probe of ``/healthz`` every 0.25 s (is the event loop free?);
- ``thin image``: the 8000x32 PNG of issue 12 (2 KB; once 4 GB of working memory);
- ``largest image``: a 2000x2000 JPEG, the largest the default limits accept (4 MP);
- ``big JSON``: 9.5 MB JSON bodies (the frame in base64 plus padding; ``--big-json`` clients);
- ``nested JSON``: 100,000 open brackets;
- ``slow upload``: sockets sending a 100 kB body 10 bytes every 2 s (reconnecting when cut);
- ``silent socket``: sockets that connect and send nothing (reconnecting when closed);
- ``spoofed XFF``: requests with forged ``X-Forwarded-For`` and escape sequences in the path;
- ``fuzz``: a mix of hostile uploads (mutated, truncated and random bytes, decompression-bomb
  headers, wrong content types, bad base64, broken multipart, lying Content-Length, chunked
  plus Content-Length).

``--worst-case`` instead sends, one at a time to a server with one pipeline process, the
largest and thinnest images the limits accept (and two just past them), three times each, and
prints for each the answer, the slowest time and the pipeline process's peak resident memory
(VmHWM) and its growth over the process after a warm-up frame: the stated cost of the limits.

Every attacker is bounded (a fixed number of connections, one request at a time each). It prints
a table: per attacker the requests sent, the answers by status and the client-side errors; then
the valid requests answered, their latency percentiles, the slowest ``/healthz``, the server's
resident memory (the server process and its pipeline processes, from /proc) at the start, its
peak and the end, pipeline-process restarts, and whether the server log holds a traceback or a
forged address. Exit status 1 when a valid request or a health probe was not answered 200, or
the log holds a traceback or a forged address.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np

# benchmarks/ is on sys.path when run as a script
from bench_load import rss_mib, tree_pids, wait_ready

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELIVE_DATA", REPO.parent / "shared" / "data"))
FORGED = "6.6.6.6"


# -- bodies -------------------------------------------------------------------------------------

def frame_jpeg() -> bytes:
    """A 640x480 camera frame: the shared NUAA live frame, else a synthetic picture."""
    import cv2

    real = sorted((DATA / "nuaa" / "ClientRaw").rglob("*.jpg"))[:1]
    img = cv2.imread(str(real[0])) if real else None
    if img is None:
        yy, xx = np.mgrid[0:480, 0:640]
        img = np.dstack([xx % 256, yy % 256, (xx + yy) % 256]).astype(np.uint8)
    img = cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def png(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def largest_jpeg() -> bytes:
    """2000x2000 (4 MP, the default pixel limit): a smooth picture, so it stays small."""
    import cv2

    yy, xx = np.mgrid[0:2000, 0:2000]
    img = np.dstack([(xx // 16) % 256, (yy // 16) % 256, ((xx + yy) // 32) % 256])
    return cv2.imencode(".jpg", img.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def png_claiming(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def multipart(image: bytes, field_name: str = "image") -> tuple[bytes, str]:
    b = "hostileBenchBoundary0123456789"
    head = (f"--{b}\r\nContent-Disposition: form-data; name=\"{field_name}\"; "
            f"filename=\"f.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    return head + image + f"\r\n--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def fuzz_cases(frame: bytes, rng: random.Random) -> list[tuple[str, bytes, str]]:
    """(name, body, content type) hostile uploads; mutated ones differ on every call."""
    mutated = bytearray(frame)
    for _ in range(rng.randint(1, 30)):
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    return [
        ("mutated jpeg", bytes(mutated), "image/jpeg"),
        ("truncated jpeg", frame[: rng.randrange(10, len(frame))], "image/jpeg"),
        ("random bytes", os.urandom(rng.randrange(1, 50_000)), "image/jpeg"),
        ("bomb header", png_claiming(50_000, 50_000), "image/png"),
        ("6000x3000 header", png_claiming(6000, 3000), "image/png"),
        ("tiny", png(8, 8), "image/png"),
        ("text", b"hello" * 100, "text/plain"),
        ("empty", b"", "image/jpeg"),
        ("bad base64", b'{"image": "%%%not base64%%%"}', "application/json"),
        ("base64 of garbage", json.dumps({"image": base64.b64encode(os.urandom(3000))
                                          .decode()}).encode(), "application/json"),
        ("json list", b"[1, 2, 3]", "application/json"),
        ("broken multipart", b"--x\r\ngarbage" * 50, "multipart/form-data; boundary=x"),
        ("wrong field", *multipart(frame, "photo")),
        ("mutated multipart", *multipart(bytes(mutated))),
    ]


# -- bookkeeping --------------------------------------------------------------------------------

@dataclass
class Tally:
    sent: int = 0
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def answered(self, status: int | str, dt: float | None = None) -> None:
        self.statuses[status] += 1
        if dt is not None:
            self.latencies.append(dt)


# -- attackers ----------------------------------------------------------------------------------

class Bench:
    def __init__(self, base: str, port: int, until: float, quick: bool, big_json: int) -> None:
        self.base, self.port, self.until, self.quick = base, port, until, quick
        self.big_json = big_json
        self.tallies: dict[str, Tally] = {}
        self.rng = random.Random(12)

    def tally(self, name: str) -> Tally:
        return self.tallies.setdefault(name, Tally())

    def running(self) -> bool:
        return time.monotonic() < self.until

    async def post_loop(self, http: httpx.AsyncClient, name: str, make: object,
                        pause: float = 0.0, path: str = "/v1/liveness") -> None:
        t = self.tally(name)
        while self.running():
            body, ctype, headers = make()  # type: ignore[operator]
            t.sent += 1
            t0 = time.monotonic()
            try:
                r = await http.post(self.base + path, content=body,
                                    headers={"content-type": ctype, **headers})
                t.answered(r.status_code, time.monotonic() - t0)
            except httpx.HTTPError as exc:
                t.errors[type(exc).__name__] += 1
            if pause:
                await asyncio.sleep(pause)

    async def healthz(self, http: httpx.AsyncClient) -> None:
        t = self.tally("healthz")
        while self.running():
            t.sent += 1
            t0 = time.monotonic()
            try:
                r = await http.get(self.base + "/healthz")
                t.answered(r.status_code, time.monotonic() - t0)
            except httpx.HTTPError as exc:
                t.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.25)

    async def spoof(self, http: httpx.AsyncClient) -> None:
        t = self.tally("spoofed XFF")
        while self.running():
            t.sent += 1
            try:
                r = await http.get(self.base + "/healthz%0a%1b[31mINJECTED", headers={
                    "x-forwarded-for": f"{FORGED}, \x1b[2J{FORGED}",
                    "x-forwarded-proto": "javascript"})
                t.answered(r.status_code)
            except httpx.HTTPError as exc:
                t.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.2)

    async def raw(self, name: str, payload: bytes, trickle: bool) -> None:
        """A socket sending ``payload`` (head), then 10 bytes every 2 s (``trickle``) or
        nothing; reconnects when the server closes it. Counts the server's answers."""
        t = self.tally(name)
        while self.running():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError as exc:
                t.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.5)
                continue
            t.sent += 1
            t0 = time.monotonic()
            try:
                writer.write(payload)
                await writer.drain()
                data = b""
                while self.running():
                    try:
                        chunk = await asyncio.wait_for(reader.read(4096), 2.0)
                    except TimeoutError:
                        if trickle:
                            writer.write(b"\xff" * 10)
                            await writer.drain()
                        continue
                    if not chunk:
                        break
                    data += chunk
                if not self.running():
                    t.statuses["open at the end"] += 1
                elif data[:9] == b"HTTP/1.1 ":
                    t.answered(int(data[9:12]), time.monotonic() - t0)
                else:
                    t.answered("closed", time.monotonic() - t0)
            except OSError as exc:
                t.errors[type(exc).__name__] += 1
            finally:
                writer.close()

    async def smuggle(self) -> None:
        """Framing attacks on a raw socket (httpx will not send them): chunked plus
        Content-Length, and a Content-Length of 1 GB with a few bytes behind it."""
        t = self.tally("fuzz")
        head = b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
        requests = [head + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhello\r\n0\r\n\r\n",
                    head + b"Content-Length: 1000000000\r\n\r\n" + b"\xff" * 1000]
        n = 0
        while self.running():
            t.sent += 1
            n += 1
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(requests[n % 2])
                await writer.drain()
                data = await asyncio.wait_for(reader.read(4096), 10)
                writer.close()
                t.answered(int(data[9:12]) if data[:9] == b"HTTP/1.1 " else "closed")
            except (OSError, TimeoutError) as exc:
                t.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.5)

    async def run(self, frame: bytes) -> None:
        quick = self.quick
        thin, largest = png(8000, 32), largest_jpeg()
        body, ctype = multipart(frame)
        pad = "x" * (9_500_000 - len(frame) * 4 // 3)
        big = json.dumps({"image": base64.b64encode(frame).decode(), "pad": pad}).encode()
        nested = b"[" * 100_000
        head = (b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                b"Content-Length: 100000\r\n\r\n")

        def fuzz() -> tuple[bytes, str, dict[str, str]]:
            name, b, c = self.rng.choice(fuzz_cases(frame, self.rng))
            return b, c, {}

        limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
        async with httpx.AsyncClient(timeout=60, limits=limits) as http:
            jobs = [self.healthz(http), self.spoof(http), self.smuggle()]
            jobs += [self.post_loop(http, "valid", lambda: (body, ctype, {}))
                     for _ in range(2)]
            jobs += [self.post_loop(http, "thin image", lambda: (thin, "image/png", {}), 0.05)]
            jobs += [self.post_loop(http, "largest image",
                                    lambda: (largest, "image/jpeg", {}), 0.5)]
            jobs += [self.post_loop(http, "big JSON", lambda: (big, "application/json", {}))
                     for _ in range(self.big_json)]
            jobs += [self.post_loop(http, "nested JSON",
                                    lambda: (nested, "application/json", {}), 0.05)]
            jobs += [self.post_loop(http, "fuzz", fuzz, 0.02)]
            jobs += [self.raw("slow upload", head, True) for _ in range(4 if quick else 8)]
            jobs += [self.raw("silent socket", b"", False) for _ in range(4 if quick else 8)]
            await asyncio.gather(*jobs)


# -- main ---------------------------------------------------------------------------------------

def _gradient_jpeg(w: int, h: int) -> bytes:
    import cv2

    yy, xx = np.mgrid[0:h, 0:w]
    img = np.dstack([(xx // 16) % 256, (yy // 16) % 256, ((xx + yy) // 32) % 256])
    return cv2.imencode(".jpg", img.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def _hwm_mib(pid: int) -> float:
    """The largest VmHWM (peak resident memory) among ``pid``'s child processes."""
    best = 0.0
    for p in tree_pids(pid)[1:]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return best


def worst_case(base: str, server_pid: int, frame: bytes) -> int:
    """Send the largest accepted images (and two just past the limits) one at a time."""
    cases = [("640x480 camera frame", frame, "image/jpeg"),
             ("128x32 (thinnest 4:1 at the smallest side)", _gradient_jpeg(128, 32), "image/jpeg"),
             ("2000x2000 (4 MP)", _gradient_jpeg(2000, 2000), "image/jpeg"),
             ("4000x4000 (16 MP, 1:1)", _gradient_jpeg(4000, 4000), "image/jpeg"),
             ("8000x2000 (16 MP, 4:1)", _gradient_jpeg(8000, 2000), "image/jpeg"),
             ("2000x8000 (16 MP, 1:4)", _gradient_jpeg(2000, 8000), "image/jpeg"),
             ("8000x32 PNG of issue 12 (refused)", png(8000, 32), "image/png"),
             ("6000x3000 (18 MP, refused)", _gradient_jpeg(6000, 3000), "image/jpeg")]
    from rich.console import Console
    from rich.table import Table

    with httpx.Client(timeout=60) as http:
        http.post(base + "/v1/liveness", content=frame, headers={"content-type": "image/jpeg"})
        base_hwm = _hwm_mib(server_pid)
        table = Table("image", "bytes", "answer", "slowest of 3", "process peak RSS (growth)",
                      title="largest accepted images, one pipeline process")
        for name, body, ctype in cases:
            answers, times = Counter(), []
            for _ in range(3):
                t0 = time.monotonic()
                r = http.post(base + "/v1/liveness", content=body, headers={"content-type": ctype})
                times.append(time.monotonic() - t0)
                answers[r.json().get("decision") or r.json()["error"]["code"]] += 1
            hwm = _hwm_mib(server_pid)
            table.add_row(name, f"{len(body):,}",
                          ", ".join(f"{k} x{v}" for k, v in answers.items()),
                          f"{max(times) * 1e3:.0f} ms", f"{hwm:.0f} MiB (+{hwm - base_hwm:.0f})")
    Console(width=150).print(table)
    print(f"pipeline process peak RSS after one warm-up frame: {base_hwm:.0f} MiB")
    return 0


def percentiles(lat: list[float]) -> str:
    if not lat:
        return "-"
    ms = np.array(lat) * 1e3
    return " / ".join(f"{np.percentile(ms, q):.0f}" for q in (50, 90, 99, 100)) + " ms"


def metric(text: str, prefix: str) -> float:
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(prefix))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of attack (soak: 300)")
    ap.add_argument("--quick", action="store_true",
                    help="a few seconds, fewer sockets, short server timeouts (for the tests)")
    ap.add_argument("--big-json", type=int, default=None,
                    help="clients sending 9.5 MB JSON bodies (default 2; quick: 1)")
    ap.add_argument("--worst-case", action="store_true",
                    help="measure the largest accepted images instead (one pipeline process)")
    ap.add_argument("--server-args", default="",
                    help="extra `facelive serve` flags, e.g. '--tests quality,cnn'")
    args = ap.parse_args(argv)
    duration = min(args.duration, 6.0) if args.quick else args.duration
    extra = args.server_args.split()
    if args.quick:  # so that the cut-offs happen within the run
        extra = ["--header-timeout", "2", "--body-timeout", "3"] + extra
    if args.worst_case:
        extra = ["--pipeline-workers", "1"] + extra
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkdtemp(prefix="facelive-hostile-")) / "server.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO / "src")] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    cmd = [sys.executable, "-m", "facelive", "serve", "--host", "127.0.0.1", "--port",
           str(port), *extra]
    frame = frame_jpeg()
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    samples: list[tuple[float, float]] = []
    try:
        if not wait_ready(base, proc, log, 180, 0.3):
            return 2
        if args.worst_case:
            return worst_case(base, proc.pid, frame)
        info = httpx.get(base + "/v1/info", timeout=5).json()
        rss0 = rss_mib(proc.pid)
        t_start = time.monotonic()
        big_json = args.big_json if args.big_json is not None else (1 if args.quick else 2)
        bench = Bench(base, port, t_start + duration, args.quick, big_json)

        async def sampled() -> None:
            async def sample() -> None:
                while bench.running():
                    samples.append((time.monotonic() - t_start, rss_mib(proc.pid)))
                    await asyncio.sleep(0.5)

            await asyncio.gather(sample(), bench.run(frame))

        asyncio.run(sampled())
        elapsed = time.monotonic() - t_start
        time.sleep(0.5)
        rss1 = rss_mib(proc.pid)
        metrics = httpx.get(base + "/metrics", timeout=5).text
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
    text = log.read_bytes()
    restarts = metric(metrics, "facelive_pipeline_process_restarts_total")
    tracebacks = text.count(b"Traceback")
    forged = FORGED.encode() in text or b"\x1b" in text
    peak = max([m for _, m in samples] + [rss0, rss1])

    from rich.console import Console
    from rich.table import Table

    table = Table("attacker", "sent", "answers (status: count)", "client errors",
                  title=f"facelive serve under hostile traffic, {elapsed:.0f} s")
    for name, t in bench.tallies.items():
        table.add_row(name, str(t.sent),
                      ", ".join(f"{k}: {v}" for k, v in sorted(t.statuses.items(), key=str)),
                      ", ".join(f"{k}: {v}" for k, v in t.errors.items()) or "0")
    console = Console(width=150)
    console.print(table)
    valid, health = bench.tallies["valid"], bench.tallies["healthz"]
    ok = valid.statuses.get(200, 0)
    summary = Table("measure", "value")
    tests = ",".join(t.get("name", "?") for t in info["pipeline"]["tests"])
    summary.add_row("server", f"facelive serve {' '.join(extra)} (tests {tests}; "
                    f"{info['limits']['pipeline_processes']} pipeline processes)")
    summary.add_row("valid requests sent / answered 200", f"{valid.sent} / {ok}")
    summary.add_row("valid latency p50 / p90 / p99 / max", percentiles(valid.latencies))
    summary.add_row("/healthz probes / answered 200 / slowest",
                    f"{health.sent} / {health.statuses.get(200, 0)} / "
                    f"{max(health.latencies, default=0) * 1e3:.0f} ms")
    summary.add_row("server RSS start / peak / end", f"{rss0:.0f} / {peak:.0f} / {rss1:.0f} MiB")
    if samples:
        step = max(1, len(samples) // 10)
        summary.add_row("RSS samples", " ".join(f"{t:.0f}s:{m:.0f}" for t, m in samples[::step]))
    summary.add_row("pipeline process restarts", f"{restarts:.0f}")
    summary.add_row("server log: tracebacks / forged address or escape",
                    f"{tracebacks} / {'yes' if forged else 'no'}")
    console.print(summary)
    good = (valid.sent > 0 and ok == valid.sent and not valid.errors
            and health.statuses.get(200, 0) == health.sent and not tracebacks and not forged)
    print("result: " + ("every valid request and health probe answered 200" if good else
                        "FAILED: a valid request or probe was not answered, or the log is bad"))
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
