"""The load benchmark's helpers (benchmarks/bench_load.py): wrk body, CPU accounting, profile."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from facelive.server.parsing import parse_multipart

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_load.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_load", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_wrk_body_is_accepted_by_the_server_parser(bench) -> None:
    image = bytes(range(256)) * 40 + b"\r\n--not-the-boundary\r\n"
    body = bench.multipart_body(image)
    ctype = f"multipart/form-data; boundary={bench.BOUNDARY}"
    assert parse_multipart(body, ctype) == image
    assert bench.BOUNDARY in bench.WRK_LUA % (bench.BOUNDARY, "/x", "/y")


def test_cpu_meter_counts_this_process_and_children(bench) -> None:
    meter = bench.CpuMeter(os.getpid())
    t0 = time.process_time()
    while time.process_time() - t0 < 0.2:  # burn ~0.2 s of CPU here
        sum(i * i for i in range(1000))
    subprocess.run([sys.executable, "-c", "import time\nt=time.process_time()\n"
                    "while time.process_time()-t<0.2: pass"], check=True)
    cpu = meter.stop()
    # /proc ticks are 10 ms; the waited-for child is in RUSAGE_CHILDREN, not in /proc of us
    assert cpu["server"] >= 0.15
    assert cpu["client"] >= 0.3
    assert cpu["machine"] >= 0.3 and cpu["wall"] >= 0.3


def test_profile_summary_from_folded_stacks(bench, tmp_path: Path) -> None:
    out = tmp_path / "profile.txt"
    out.write_text(
        "process 1:\"python\";run (main.py:1);check (pipeline.py:10);quality (test.py:5) 30\n"
        "process 1:\"python\";run (main.py:1);check (pipeline.py:10);cnn (cnn.py:7) 10\n"
        "garbage line\n")
    done = subprocess.Popen([sys.executable, "-c", "pass"])
    text = bench.finish_profiler((done, out))
    assert "40 active samples" in text
    assert "100.0%  check (pipeline.py:10)" in text
    assert " 75.0%  quality (test.py:5)" in text


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_counts_decisions_and_statuses(bench, tmp_path: Path) -> None:
    """wrk against a tiny server answering 200 live / 503 in turn: the Lua report is read."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        n = 0

        def do_POST(self) -> None:  # noqa: N802 (http.server API)
            self.rfile.read(int(self.headers["Content-Length"]))
            Handler.n += 1
            ok = Handler.n % 2 == 1
            body = b'{"path":null,"decision":"live"}' if ok else b'{"error":{}}'
            self.send_response(200 if ok else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        rep = bench.drive_wrk(base, b"\xff\xd8x", 1, 1, None, [], tmp_path)
    finally:
        server.shutdown()
        server.server_close()
    out = rep["outcomes"]
    assert out["live"] > 0 and out["HTTP 503"] > 0
    assert abs(out["live"] - out["HTTP 503"]) <= 1
    assert rep["duration_us"] > 0 and rep["p99_us"] >= rep["p50_us"] > 0


def test_peak_rss_is_reported_per_process(bench) -> None:
    """The per-worker memory target reads each process's own peak (VmHWM), children included."""
    import os
    import subprocess
    import sys

    code = "import sys, time; b = bytearray(60 * 2**20); b[::4096] = b'x' * len(b[::4096]); " \
           "print('ready', flush=True); time.sleep(30)"
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        peaks = bench.peak_rss_mib(os.getpid())
        assert set(peaks) >= {os.getpid(), child.pid}
        assert peaks[child.pid] >= 60  # the child's bytearray, not the parent's memory
    finally:
        child.kill()
        child.wait()
