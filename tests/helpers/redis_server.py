"""A ``redis-server`` of a test's own, with its own configuration (e.g. a small ``maxmemory``).

The session-wide ``redis_url`` fixture (``tests/conftest.py``) serves most Redis tests; the
memory-pressure tests need a server whose ``maxmemory`` and policy they set, so they start one
with :func:`redis_server` (skipped, with the reason, where ``redis-server`` is not installed).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from helpers import free_port


@contextmanager
def redis_server(folder: Path, *config: str) -> Iterator[tuple[str, Any]]:
    """Start ``redis-server`` on a free loopback port with ``config`` (``"--maxmemory",
    "12mb"``...), no persistence; yields ``(url, client)`` (a ``redis.Redis`` decoding
    responses) and stops the server after."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server not installed (apt-get install -y redis-server)")
    redis = pytest.importorskip("redis")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder), "--protected-mode", "yes", *config],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        deadline = time.time() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail("redis-server did not start")
                time.sleep(0.05)
        yield url, client
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
