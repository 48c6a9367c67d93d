"""The listener's limits against a real uvicorn server on 127.0.0.1: slow uploads, silent
sockets, the connection cap, keep-alive, request framing and forwarded addresses.

The server is a subprocess running the app with uvicorn and :func:`uvicorn_options` (the options
``facelive serve`` uses), with a stand-in pipeline so that it starts in about a second; the
pipeline processes themselves are tested in tests/server/test_worker_isolation.py and, with the
real models, by benchmarks/bench_hostile.py (tests/benchmarks/test_bench_hostile.py).
"""

from __future__ import annotations

import inspect
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from facelive.server.listener import uvicorn_options
from facelive.server.settings import Settings
from helpers import free_port, jpeg, subprocess_env

SERVER = """
import uvicorn
from facelive.server.app import create_app
from facelive.server.listener import uvicorn_options
from facelive.server.settings import Settings
from helpers import StubPipeline

s = Settings()
uvicorn.run(create_app(s, pipeline=StubPipeline(0.9, delay_s=0.02)), **uvicorn_options(s))
"""

LIMITS = {"FACELIVE_BODY_TIMEOUT_S": "4",
          "FACELIVE_BODY_MIN_RATE": "0", "FACELIVE_MAX_CONNECTIONS": "24",
          "FACELIVE_KEEP_ALIVE_S": "1", "FACELIVE_MAX_CONCURRENCY": "8",
          "FACELIVE_MAX_HEADER_BYTES": "8192", "FACELIVE_LOG_LEVEL": "info"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int, Path]]:
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "server.log"
    env = subprocess_env(FACELIVE_PORT=str(port), FACELIVE_HOST="127.0.0.1", **LIMITS)
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-c", SERVER], env=env, stdout=fh,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield base, port, log
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


def recv_all(sock: socket.socket, timeout: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes (or ``timeout``), and when it closed."""
    sock.settimeout(timeout)
    t0, data = time.monotonic(), b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data, time.monotonic() - t0


def test_slow_uploads_do_not_starve_valid_requests(server: tuple[str, int, Path]) -> None:
    """8 connections trickling 10 bytes every 0.5 s (as many as there are slots) while valid
    requests come in: every valid request is answered at once, and the trickles get 408."""
    base, port, _ = server
    head = (b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 100000\r\n\r\n")
    answers: list[bytes] = []
    stop = threading.Event()

    def trickle() -> None:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(head)
            s.settimeout(0.5)
            data = b""
            while not stop.is_set():
                try:
                    s.sendall(b"\xff" * 10)
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                except TimeoutError:
                    continue
                except OSError:
                    break
            answers.append(data)

    threads = [threading.Thread(target=trickle) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(1.0)  # every trickle has sent its head and is inside its body
    body, statuses, latencies = jpeg(), [], []
    with httpx.Client(timeout=10) as c:
        for _ in range(20):
            t0 = time.monotonic()
            r = c.post(base + "/v1/liveness", content=body, headers={"content-type": "image/jpeg"})
            latencies.append(time.monotonic() - t0)
            statuses.append(r.status_code)
    for t in threads:
        t.join(10)
    stop.set()
    assert statuses == [200] * 20
    assert max(latencies) < 1.0, latencies
    assert len(answers) == 8
    for a in answers:  # cut off at the 4-s body timeout
        assert a.startswith(b"HTTP/1.1 408") and b"body_timeout" in a, a[:200]


def test_listener_uses_public_uvicorn_options_only() -> None:
    """Every option is a parameter of ``uvicorn.Config`` (no protocol subclass): the cap is
    uvicorn's ``limit_concurrency``, one above ``max_connections`` since uvicorn counts the
    connection a request arrives on."""
    opts = uvicorn_options(Settings(max_connections=24, keep_alive_s=3, max_header_bytes=9000))
    assert set(opts) <= set(inspect.signature(uvicorn.Config).parameters)
    assert opts["http"] == "h11" and opts["limit_concurrency"] == 25
    assert opts["timeout_keep_alive"] == 3 and opts["h11_max_incomplete_event_size"] == 9000
    assert opts["proxy_headers"] is False and opts["server_header"] is False


def test_silent_and_half_sent_heads_do_not_hold_up_valid_requests(
        server: tuple[str, int, Path]) -> None:
    """Sockets that send nothing, or half a request head, take no request slot: valid requests
    are answered at once while they stay open. uvicorn has no request-head timeout; closing such
    sockets is the reverse proxy's work (``client_header_timeout``, docs/deployment.md), and
    until then they count towards the connection cap (test_connection_cap)."""
    base, port, _ = server
    held: list[socket.socket] = []
    try:
        for first in (b"", b"GET /healthz HTTP/1.1\r\nHost: x\r\n") * 8:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(first)
            held.append(s)
        time.sleep(0.2)
        statuses, latencies = [], []
        with httpx.Client(timeout=10) as c:
            for _ in range(10):
                t0 = time.monotonic()
                statuses.append(c.get(base + "/healthz").status_code)
                latencies.append(time.monotonic() - t0)
        assert statuses == [200] * 10
        assert max(latencies) < 1.0, latencies
    finally:
        for s in held:
            s.close()


def test_keep_alive_connection_closed_when_idle(server: tuple[str, int, Path]) -> None:
    _, port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        data, took = recv_all(s, 10)
    assert data.startswith(b"HTTP/1.1 200") and took < 3.0, (data, took)


def test_connection_cap(server: tuple[str, int, Path]) -> None:
    """With max_connections (24) connections open, a request on one more is answered 503 at
    once and its connection closed (uvicorn's ``limit_concurrency``); the 24 are still served,
    and the service is back for everyone when the idle ones close."""
    base, port, _ = server
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(24)]
    try:
        time.sleep(0.2)
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            data, took = recv_all(s, 5)
        assert data.startswith(b"HTTP/1.1 503") and b"Service Unavailable" in data, data
        assert b"connection: close" in data.lower()
        assert took < 1.0
        time.sleep(0.1)
        idle[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data, _ = recv_all(idle[0], 5)
        assert data.startswith(b"HTTP/1.1 200"), data
    finally:
        for s in idle:
            s.close()
    time.sleep(0.3)
    assert httpx.get(base + "/healthz", timeout=5).status_code == 200


def test_chunked_with_content_length_is_refused(server: tuple[str, int, Path]) -> None:
    _, port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                  b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
                  b"0\r\n\r\n")
        data, _ = recv_all(s, 5)
    assert data.startswith(b"HTTP/1.1 400") and b"invalid_request" in data, data
    assert b"connection: close" in data.lower()


def test_oversized_head_is_refused(server: tuple[str, int, Path]) -> None:
    _, port, _ = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"a" * 20000 + b"\r\n\r\n")
        data, _ = recv_all(s, 5)
    assert data.startswith(b"HTTP/1.1 431") and b"header_too_large" in data, data[:100]
    with socket.create_connection(("127.0.0.1", port)) as s:  # sent slowly: h11's limit
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ")
        try:
            for _ in range(12):
                s.sendall(b"a" * 1000)
                time.sleep(0.01)
        except OSError:  # the server answered and closed while we were sending
            pass
        data, _ = recv_all(s, 5)
    assert data.startswith(b"HTTP/1.1 400"), data[:100]


def test_spoofed_forwarded_for_is_not_believed_or_logged(server: tuple[str, int, Path]) -> None:
    _, port, log = server
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET /healthz%0a%1b[31mFAKE HTTP/1.1\r\nHost: x\r\n"
                  b"X-Forwarded-For: 6.6.6.6\r\nX-Forwarded-For: \x1b[2Jspoof\r\n"
                  b"Connection: close\r\n\r\n")
        data, _ = recv_all(s, 5)
    assert data.startswith(b"HTTP/1.1 404")
    time.sleep(0.3)
    text = log.read_bytes()
    assert b"6.6.6.6" not in text and b"spoof" not in text and b"\x1b" not in text
    line = [ln for ln in text.splitlines() if b"FAKE" in ln][-1]
    assert line.startswith(b"INFO:") and b"127.0.0.1" in line and b"\\x0a\\x1b[31mFAKE" in line
    assert b'"GET /healthz' in line and b" 404 " in line
