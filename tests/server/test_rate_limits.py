"""Rate limits and quotas (:mod:`facelive.server.ratelimit`): one count per client and rule,
shared by every server process and replica through Redis, bounded in memory without it, and
failing closed (503 ``store_unavailable``, fast) when Redis is gone.

The multi-process tests run the real ``facelive serve`` command (``--workers 2``, and two
servers on one redis-server) with the stand-in pipeline (``tests/helpers/stub_serve.py``), on
127.0.0.1 and free ports; every request loop is bounded.
"""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from facelive.server.app import create_app
from facelive.server.ratelimit import (
    KEY_PREFIX,
    BoundedMemoryStorage,
    LimitStoreUnavailable,
    RateLimits,
    Rule,
    config_problems,
    rate_window,
)
from facelive.server.settings import Settings
from helpers import TESTS, FakeClock, StubPipeline, free_port, jpeg, subprocess_env
from helpers.server import error_code, post_image
from helpers.sessions import DIGESTS, KEY, KEY2, auth

STUB_SERVE = TESTS / "helpers" / "stub_serve.py"


@pytest.fixture
def redis_fresh(redis_url: str) -> str:
    """The session's Redis, emptied (counters would carry over between tests)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url


# -- the rules ---------------------------------------------------------------------------------

@pytest.mark.parametrize("rate,burst,expected", [
    (0.0, 20, (0, 1)), (2.0, 20, (20, 10)), (0.01, 2, (2, 200)), (3.0, 20, (20, 7)),
    (100.0, 5, (5, 1)),
])
def test_a_rate_and_burst_become_a_window(rate: float, burst: int,
                                          expected: tuple[int, int]) -> None:
    assert rate_window(rate, burst) == expected


def test_rules_from_settings() -> None:
    s = Settings(address_rate=0.5, address_burst=10, key_rate=2, key_burst=4,
                 sessions_per_key=7, sessions_per_address=3, session_window_s=30.5)
    limits = RateLimits.from_settings(s)
    assert limits.rule("address") == Rule("address", 10, 20)
    assert limits.rule("key") == Rule("key", 4, 2)
    assert limits.rule("sessions_per_key") == Rule("sessions_per_key", 7, 31)
    assert limits.rule("sessions_per_address") == Rule("sessions_per_address", 3, 31)
    assert not limits.shared and limits.enabled
    assert not RateLimits.from_settings(Settings(sessions_per_key=0,
                                                 sessions_per_address=0)).enabled


# -- in memory -----------------------------------------------------------------------------------

def test_memory_limits_count_per_client_and_rule_and_reset_with_the_window() -> None:
    clock = FakeClock(1000.0)
    limits = RateLimits({"key": Rule("key", 3, 10), "address": Rule("address", 2, 5)},
                        clock=clock)

    async def go() -> None:
        assert [await limits.hit("key", "k1") for _ in range(3)] == [0.0, 0.0, 0.0]
        assert await limits.hit("key", "k1") == pytest.approx(10.0)
        clock.t += 4
        assert await limits.hit("key", "k1") == pytest.approx(6.0)
        assert await limits.hit("key", "k2") == 0.0  # another client: its own count
        assert await limits.hit("address", "k1") == 0.0  # another rule: its own count
        assert await limits.hit("sessions_per_key", "k1") == 0.0  # no such rule: no limit
        clock.t += 6
        assert await limits.hit("key", "k1") == 0.0  # a new window

    asyncio.run(go())


def test_memory_storage_is_bounded_least_recently_used_first() -> None:
    clock = FakeClock(0.0)
    storage = BoundedMemoryStorage(max_keys=3, clock=clock)

    async def go() -> None:
        for key in ("a", "b", "c", "a"):
            await storage.incr(key, 60)
        await storage.incr("d", 60)  # "b" is the least recently used
        assert len(storage) == 3
        assert [await storage.get(k) for k in "abcd"] == [2, 0, 1, 1]
        assert await storage.get_expiry("a") == 60.0
        clock.t = 61
        assert await storage.get("a") == 0 and len(storage) == 2  # expired, dropped

    asyncio.run(go())
    for n in range(1000):  # many clients: the count stays at the bound
        asyncio.run(storage.incr(f"client-{n}", 60))
    assert len(storage) == 3


def test_address_churn_does_not_evict_the_key_counters() -> None:
    """Each rule has its own bounded storage: a client cycling through more addresses than the
    bound forgets address counters, never the API keys' counts."""
    limits = RateLimits({"key": Rule("key", 2, 60), "address": Rule("address", 1, 60)},
                        max_keys=10)

    async def go() -> None:
        assert [await limits.hit("key", "k1") for _ in range(2)] == [0.0, 0.0]
        for n in range(100):
            await limits.hit("address", f"192.0.2.{n}")
        assert await limits.hit("key", "k1") > 0

    asyncio.run(go())


def test_one_process_enforces_the_limits_of_liveness_and_sessions_alike(tmp_path: Path) -> None:
    """Memory storage in one process: the key's limit counts /v1/liveness and the session API
    together; the address's limit counts every request; another key has its own count."""
    settings = Settings(api_keys=DIGESTS, key_rate=0.01, key_burst=3,
                        signing_key=str(tmp_path / "k.pem"))
    with TestClient(create_app(settings, pipeline=StubPipeline())) as c:
        assert post_image(c, jpeg(), **auth(KEY)).status_code == 200
        assert c.post("/v1/sessions", headers=auth(KEY)).status_code == 201
        assert post_image(c, jpeg(), **auth(KEY)).status_code == 200
        for r in (post_image(c, jpeg(), **auth(KEY)), c.post("/v1/sessions", headers=auth(KEY))):
            assert r.status_code == 429 and error_code(r) == "rate_limited"
            assert 1 <= int(r.headers["retry-after"]) <= 300
        assert post_image(c, jpeg(), **auth(KEY2)).status_code == 200
    with TestClient(create_app(Settings(api_keys=DIGESTS, address_rate=0.01, address_burst=2,
                                        signing_key=str(tmp_path / "k.pem")),
                               pipeline=StubPipeline())) as c:
        assert post_image(c, jpeg(), **auth(KEY)).status_code == 200
        assert c.post("/v1/sessions", headers=auth(KEY2)).status_code == 201
        r = post_image(c, jpeg(), **auth(KEY2))
        assert r.status_code == 429 and "address" in r.json()["error"]["message"]


def test_several_workers_without_redis_are_refused() -> None:
    assert config_problems(Settings(workers=2, key_rate=1)) == [
        "--key-rate with --workers 2 need --redis-url: without it each server process counts "
        "on its own and every client would get 2 times its limit"]
    assert config_problems(Settings(workers=2, key_rate=1,
                                    redis_url="redis://127.0.0.1:1/0")) == []
    assert config_problems(Settings(workers=1, address_rate=1)) == []
    assert config_problems(Settings(workers=2)) == []  # no request rate limit
    with pytest.raises(RuntimeError, match="need --redis-url"):
        with TestClient(create_app(Settings(workers=2, address_rate=1, sessions=False),
                                   pipeline=StubPipeline())):
            pass


@pytest.mark.parametrize("args,expected", [
    (["--workers", "2", "--address-rate", "5"], "--address-rate with --workers 2 need --redis-url"),
    (["--key-rate", "5", "--redis-url", "redis://127.0.0.1:1/0"],
     "cannot reach the rate-limit store (Redis)"),
])
def test_serve_refuses_limits_that_cannot_hold(args: list[str], expected: str,
                                               tmp_path: Path) -> None:
    """Before any model loads: per-process counters with several server processes, or a
    Redis for the counters that does not answer, stop ``facelive serve`` with status 2."""
    out = subprocess.run([sys.executable, "-m", "facelive", "serve", "--no-sessions", *args],
                         env=subprocess_env(), capture_output=True, text=True, timeout=300,
                         cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert expected in out.stderr


# -- in Redis ------------------------------------------------------------------------------------

def test_redis_counters_are_shared_namespaced_and_expire(redis_fresh: str) -> None:
    import redis

    rules = {"key": Rule("key", 5, 30)}
    a, b = RateLimits(rules, redis_fresh), RateLimits(rules, redis_fresh)  # two processes

    async def go() -> list[float]:
        waits = [await (a if n % 2 else b).hit("key", "k1") for n in range(12)]
        await a.close()
        await b.close()
        return waits

    waits = asyncio.run(go())
    assert waits[:5] == [0.0] * 5 and all(0 < w <= 30 for w in waits[5:])
    client = redis.Redis.from_url(redis_fresh, decode_responses=True)
    try:
        keys = client.keys("*")
        assert keys == [f"{KEY_PREFIX}:key/k1/5/30/second"]
        assert 0 < client.ttl(keys[0]) <= 30 and client.get(keys[0]) == "12"
    finally:
        client.close()


def test_an_unreachable_redis_fails_closed_fast() -> None:
    limits = RateLimits({"key": Rule("key", 5, 30)}, f"redis://127.0.0.1:{free_port()}/0",
                        timeout_s=1.0)
    t0 = time.perf_counter()
    with pytest.raises(LimitStoreUnavailable):
        asyncio.run(limits.hit("key", "k1"))
    assert time.perf_counter() - t0 < 5.0  # refused at once; 5 s of margin for a busy machine
    with pytest.raises(LimitStoreUnavailable):
        asyncio.run(limits.check())


@contextmanager
def silent_server() -> Iterator[int]:
    """A loopback TCP port that accepts connections and never answers (a hung Redis)."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        for s in held:
            s.close()
        listener.close()


def test_a_hung_redis_is_given_up_after_the_timeout() -> None:
    with silent_server() as port:
        limits = RateLimits({"key": Rule("key", 5, 30)}, f"redis://127.0.0.1:{port}/0",
                            timeout_s=0.5)
        t0 = time.perf_counter()
        with pytest.raises(LimitStoreUnavailable):
            asyncio.run(limits.hit("key", "k1"))
        assert time.perf_counter() - t0 < 5.0  # 0.5 s, with margin for a busy machine
        settings = Settings(api_keys=DIGESTS, key_rate=1, sessions=False,
                            redis_url=f"redis://127.0.0.1:{port}/0", rate_limit_timeout_s=0.5)
        with pytest.raises(RuntimeError, match="cannot reach the rate-limit store"):
            with TestClient(create_app(settings, pipeline=StubPipeline())):
                pass


def start_redis(port: int, tmp: Path) -> subprocess.Popen[bytes]:
    """A private redis-server on ``port``, answering (the test stops it)."""
    import redis

    proc = subprocess.Popen([shutil.which("redis-server") or "redis-server", "--port",
                             str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", str(tmp)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    try:
        while True:
            try:
                client.ping()
                return proc
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    stop(proc)
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
    finally:
        client.close()


def stop(proc: subprocess.Popen[Any]) -> None:
    """Stop a process this module started (killed when it does not end in 20 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def test_losing_redis_is_503_with_retry_after_then_recovers(redis_url: str,
                                                            tmp_path: Path) -> None:
    """(``redis_url`` only makes sure that redis-server is installed: this test stops its own.)
    Redis gone: every limited request is answered 503 ``store_unavailable`` with Retry-After,
    at once, never 500 and never let through; Redis back on the same port: served again."""
    port = free_port()
    settings = Settings(api_keys=DIGESTS, key_rate=100, key_burst=100, sessions=False,
                        redis_url=f"redis://127.0.0.1:{port}/0", rate_limit_timeout_s=1.0)
    proc = start_redis(port, tmp_path)
    try:
        with TestClient(create_app(settings, pipeline=StubPipeline())) as c:
            assert post_image(c, jpeg(), **auth(KEY)).status_code == 200
            stop(proc)
            for _ in range(3):
                t0 = time.perf_counter()
                r = post_image(c, jpeg(), **auth(KEY))
                assert time.perf_counter() - t0 < 5.0  # refused at once; margin for load
                assert r.status_code == 503 and error_code(r) == "store_unavailable"
                assert r.headers["retry-after"] == "1"
            proc = start_redis(port, tmp_path)
            statuses = [post_image(c, jpeg(), **auth(KEY)).status_code for _ in range(3)]
            assert statuses == [200, 200, 200]
    finally:
        stop(proc)


# -- several processes: facelive serve ---------------------------------------------------------

@contextmanager
def serve(tmp: Path, *args: str) -> Iterator[tuple[str, int]]:
    """``facelive serve`` (stand-in pipeline) on 127.0.0.1 and a free port, with the session
    API on (API keys ``DIGESTS``, a signing key file): (host, port) once it answers."""
    port = free_port()
    log = tmp / f"serve-{port}.log"
    cmd = [sys.executable, str(STUB_SERVE), "serve", "--host", "127.0.0.1", "--port",
           str(port), "--pipeline-workers", "0", "--signing-key", str(tmp / "signing.pem"),
           "--log-level", "warning", *args]
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=subprocess_env(FACELIVE_API_KEYS=",".join(DIGESTS)),
                                cwd=tmp, stdout=fh, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 180  # imports on a busy 2-core machine
        while True:
            try:
                if request(("127.0.0.1", port), "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"facelive serve did not start: {log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield "127.0.0.1", port
    finally:
        stop(proc)


def request(server: tuple[str, int], method: str, path: str,
            key: str | None = None) -> tuple[int, str | None]:
    """One request on a fresh connection: (status, error code or None)."""
    conn = http.client.HTTPConnection(*server, timeout=60)
    try:
        headers = {"connection": "close", "content-type": "application/json"}
        if key:
            headers["authorization"] = f"Bearer {key}"
        conn.request(method, path, body=b"{}" if method == "POST" else None, headers=headers)
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    code = json.loads(body).get("error", {}).get("code") if r.status >= 400 else None
    return r.status, code


def create_sessions(servers: list[tuple[str, int]], n: int, threads: int = 5) -> Counter[Any]:
    """``n`` session creations with ``KEY``, spread over ``servers`` in turn, ``threads`` at
    a time, each on a fresh connection: how many got each (status, code)."""
    out: Counter[Any] = Counter()
    lock = threading.Lock()
    jobs = iter(range(n))

    def work() -> None:
        for i in jobs:  # the shared iterator hands each job to one thread
            got = request(servers[i % len(servers)], "POST", "/v1/sessions", KEY)
            with lock:
                out[got] += 1

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(300)
    return out


def limiter_pids(redis_url: str, counted: bool = True) -> set[str]:
    """The server processes with rate-limit connections (named ``facelive:rl:<pid>``) to
    ``redis_url``; with ``counted``, only those that have counted a request since start-up
    (a connection's last command is not the start-up PING)."""
    import redis

    client = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        return {c["name"].rsplit(":", 1)[1] for c in client.client_list()
                if c["name"].startswith(f"{KEY_PREFIX}:")
                and not (counted and c["cmd"] in ("ping", "NULL"))}
    finally:
        client.close()


def wait_for_processes(redis_url: str, n: int, timeout: float = 180.0) -> None:
    """Wait until ``n`` server processes have started (each pings Redis for its limits at
    start-up; uvicorn starts its workers one after the other)."""
    deadline = time.monotonic() + timeout
    while len(limiter_pids(redis_url, counted=False)) < n:
        assert time.monotonic() < deadline, "the server processes did not all start"
        time.sleep(0.2)


@pytest.mark.slow
def test_two_workers_give_one_key_its_limit_once(redis_fresh: str, tmp_path: Path) -> None:
    """``facelive serve --workers 2`` on Redis, 10 requests per key: of 30 or more session
    creations over fresh connections, served by both processes, exactly 10 pass."""
    with serve(tmp_path, "--workers", "2", "--redis-url", redis_fresh, "--key-rate", "0.001",
               "--key-burst", "10") as server:
        wait_for_processes(redis_fresh, 2)
        got = create_sessions([server], 30)
        for _ in range(6):  # until both processes have counted (the kernel picks who accepts)
            if len(limiter_pids(redis_fresh)) >= 2:
                break
            got += create_sessions([server], 10)
        assert len(limiter_pids(redis_fresh)) == 2, got
    assert got[(201, None)] == 10, got
    assert got[(429, "rate_limited")] == sum(got.values()) - 10, got


@pytest.mark.slow
def test_two_servers_on_one_redis_share_the_session_quota(redis_fresh: str,
                                                          tmp_path: Path) -> None:
    """Two ``facelive serve`` processes (replicas) on one redis-server, a quota of 10 sessions
    per key: of 30 creations alternating between them, exactly 10 pass, both serve some."""
    args = ("--redis-url", redis_fresh, "--sessions-per-key", "10")
    with serve(tmp_path, *args) as one, serve(tmp_path, *args) as two:
        got = create_sessions([one, two], 30, threads=2)
        assert len(limiter_pids(redis_fresh)) == 2
        assert request(one, "POST", "/v1/sessions", KEY2)[0] == 201  # another tenant's own
    assert got == Counter({(201, None): 10, (429, "too_many_sessions"): 20}), got
