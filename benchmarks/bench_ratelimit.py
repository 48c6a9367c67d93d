"""Benchmark: what one rate-limit check costs, by storage and by the number of clients counted.

    python benchmarks/bench_ratelimit.py [--clients 100,10000,50000] [--hits 500] [--no-redis]

For each number of clients, the counters of that many clients are created first, then
``--hits`` checks cycle through them on one event loop, as the server's routes make them, with
an ``await asyncio.sleep(0)`` between checks (the event loop runs whatever the storage
scheduled). Printed: microseconds of wall time per check (median of 3 runs) for

- ``limits`` 5's own ``MemoryStorage`` (``FixedWindowRateLimiter``), which after each hit
  schedules a scan of every counter for expiry, and is unbounded;
- :class:`facelive.server.ratelimit.BoundedMemoryStorage`, the in-process storage the service
  uses (O(1) per hit, at most ``max_tracked_clients`` counters);
- Redis through :class:`facelive.server.ratelimit.RateLimits` (``redis-server`` on a free
  loopback port, started and stopped here; skipped with ``--no-redis`` or when absent): one
  round trip per allowed check.

Wall time on a shared machine includes other processes' load: compare rows of one run.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable


async def _per_hit_us(hit: Callable[[str], Awaitable[object]], clients: int, hits: int) -> float:
    for n in range(clients):
        await hit(f"198.51.{n // 256 % 256}.{n % 256}/{n}")
    runs = []
    for _ in range(3):
        t0 = time.perf_counter()
        for i in range(hits):
            n = i * 7919 % clients
            await hit(f"198.51.{n // 256 % 256}.{n % 256}/{n}")
            await asyncio.sleep(0)
        runs.append((time.perf_counter() - t0) / hits * 1e6)
    return statistics.median(runs)


def limits_memory(clients: int, hits: int) -> float:
    from limits import RateLimitItemPerMinute
    from limits.aio.storage import MemoryStorage
    from limits.aio.strategies import FixedWindowRateLimiter

    async def go() -> float:
        limiter = FixedWindowRateLimiter(MemoryStorage())
        item = RateLimitItemPerMinute(1000, namespace="address")
        return await _per_hit_us(lambda who: limiter.hit(item, who), clients, hits)

    return asyncio.run(go())


def bounded_memory(clients: int, hits: int) -> float:
    from facelive.server.ratelimit import RateLimits, Rule

    async def go() -> float:
        limits = RateLimits({"address": Rule("address", 1000, 60)}, max_keys=max(clients, 1))
        return await _per_hit_us(lambda who: limits.hit("address", who), clients, hits)

    return asyncio.run(go())


def redis_limits(url: str, clients: int, hits: int) -> float:
    from facelive.server.ratelimit import RateLimits, Rule

    async def go() -> float:
        limits = RateLimits({"address": Rule("address", 1000, 60)}, url)
        try:
            return await _per_hit_us(lambda who: limits.hit("address", who), clients, hits)
        finally:
            await limits.close()

    return asyncio.run(go())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", default="100,10000,50000",
                    help="numbers of clients counted, comma-separated")
    ap.add_argument("--hits", type=int, default=500, help="timed checks per run")
    ap.add_argument("--no-redis", action="store_true", help="skip the Redis column")
    args = ap.parse_args(argv)
    sizes = [int(n) for n in args.clients.split(",")]
    exe = None if args.no_redis else shutil.which("redis-server")
    proc = url = None
    tmp = tempfile.TemporaryDirectory()
    if exe:
        port = _free_port()
        proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no", "--dir", tmp.name],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.5)
    try:
        print("| clients counted | limits MemoryStorage | BoundedMemoryStorage | Redis |")
        print("|---|---|---|---|")
        for n in sizes:
            row = [f"{limits_memory(n, args.hits):,.0f} us",
                   f"{bounded_memory(n, args.hits):,.0f} us",
                   f"{redis_limits(url, n, args.hits):,.0f} us" if url else "-"]
            print(f"| {n:,} | " + " | ".join(row) + " |")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(10)
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
