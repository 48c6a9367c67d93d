"""Rate limits and quotas shared by every server process and replica (the ``limits`` library).

One mechanism counts every limit of the service, by rule (:data:`RULES`):

``address``
    every API request per client address (IPv4 address, IPv6 /64), checked before the API key
    so that guessing keys is limited too: ``address_rate`` / ``address_burst``;
``key``
    every request per API key (tenant): ``key_rate`` / ``key_burst``;
``sessions_per_key``
    challenge sessions created per API key (the tenant's quota; a site's backend creates them,
    and all its users share that backend's address): ``sessions_per_key`` per
    ``session_window_s``;
``sessions_per_address``
    sessions created per client address where the browser creates them itself (the ``--demo``
    endpoint): ``sessions_per_address`` per ``session_window_s``.

A rate and burst become a window: ``burst`` requests per ``ceil(burst / rate)`` seconds, so the
long-run rate is at most ``rate`` and at most ``burst`` requests pass at once. Windows are whole
seconds (at least one), as Redis key TTLs are.

Storage. With ``redis_url`` (the Redis that the session store uses) the counters live in Redis,
so every server process (``--workers N``) and every replica counts against the same limit: one
key per rule and client, ``facelive:rl:<rule>/<client>/<amount>/<window>/second``, created with
a TTL of its window by one atomic script (``INCRBY`` then ``EXPIRE`` on the first hit), so the
keys expire on their own. Without Redis they live in this process
(:class:`BoundedMemoryStorage`, one per rule): then each server process has its own counters,
which is why :func:`config_problems` refuses ``--workers`` > 1 with a request rate limit and no
Redis (N processes would give every client N times its limit, silently).

Strategy: the fixed window (:class:`limits.aio.strategies.FixedWindowRateLimiter`), anchored at
the first request of the window. It keeps one counter per client and rule (O(1) memory: a moving
window keeps one entry per request, 600 for a 600-per-minute quota, in a Redis whose
``maxmemory`` is sized from the quotas), costs one round trip per check, counts exactly (one key
gets its limit once across processes, which the tests assert) and gives an exact
``Retry-After`` (the counter's remaining TTL). Its cost: up to twice the limit can pass in a
short span across the end of one window and the start of the next, comparable to the
``burst + rate * t`` of a token bucket.

Failure. When the Redis counters cannot be reached within ``rate_limit_timeout_s`` (connection
refused, a hung server, no free connection), :meth:`RateLimits.hit` raises
:class:`LimitStoreUnavailable`: the routes answer 503 ``store_unavailable`` with ``Retry-After``
(fail closed: a request is never let through uncounted, and never waits longer than that).
Refused connections are retried once, at once, so a Redis restart costs at most one refusal per
pooled connection. Each process names its connections ``facelive:rl:<pid>`` (``CLIENT LIST``).

>>> limits = RateLimits.from_settings(Settings(address_rate=1, address_burst=5))
>>> await limits.hit("address", "192.0.2.7")   # 0.0: allowed; else the seconds to wait
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError

from facelive.server.settings import Settings

__all__ = ["Rule", "RULES", "RateLimits", "BoundedMemoryStorage", "LimitStoreUnavailable",
           "KEY_PREFIX", "config_problems", "rate_window"]

KEY_PREFIX = "facelive:rl"
"""The prefix of every rate-limit key in Redis (``facelive:rl:<rule>/<client>/...``)."""
RULES = ("address", "key", "sessions_per_key", "sessions_per_address")
"""The rules, in the order the routes check them."""
_MAX_CONNECTIONS = 64
"""Redis connections per server process for the counters (a check waits for a free one at most
``rate_limit_timeout_s``)."""


class LimitStoreUnavailable(Exception):
    """The Redis that holds the counters failed or did not answer in time."""


def rate_window(rate: float, burst: int) -> tuple[int, int]:
    """``(amount, window_s)`` of a rate and a burst: ``burst`` per ``ceil(burst / rate)`` s.

    Parameters
    ----------
    rate : float
        Requests per second (0: no limit, ``(0, 1)``).
    burst : int
        The most requests at once.

    Returns
    -------
    tuple of int
        The count allowed per window and the window in whole seconds (at least 1).
    """
    if rate <= 0:
        return 0, 1
    return int(burst), max(1, math.ceil(burst / rate - 1e-9))


@dataclass(frozen=True)
class Rule:
    """One limit: at most ``amount`` hits per ``window_s`` seconds per client (``amount`` 0:
    off)."""

    name: str
    amount: int
    window_s: int

    @property
    def enabled(self) -> bool:
        return self.amount > 0

    @property
    def item(self) -> RateLimitItem:
        """The ``limits`` item (its namespace is the rule's name, so rules never share a
        counter)."""
        return RateLimitItemPerSecond(self.amount, self.window_s, namespace=self.name)

    @classmethod
    def from_settings(cls, name: str, s: Settings) -> Rule:
        """The rule ``name`` (one of :data:`RULES`) as ``s`` configures it."""
        if name == "address":
            return cls(name, *rate_window(s.address_rate, s.address_burst))
        if name == "key":
            return cls(name, *rate_window(s.key_rate, s.key_burst))
        window = max(1, math.ceil(s.session_window_s - 1e-9))
        if name == "sessions_per_key":
            return cls(name, s.sessions_per_key, window)
        if name == "sessions_per_address":
            return cls(name, s.sessions_per_address, window)
        raise ValueError(f"unknown rate-limit rule {name!r}")


def config_problems(settings: Settings) -> list[str]:
    """Limit settings that cannot hold: request rate limits with several server processes and
    no Redis (each process would count on its own, multiplying every limit by ``workers``).
    ``facelive serve`` exits with status 2 on them and an app refuses to start."""
    if settings.workers <= 1 or settings.redis_url:
        return []
    on = [f"--{name}-rate" for name in ("address", "key")
          if Rule.from_settings(name, settings).enabled]
    if not on:
        return []
    return [f"{' and '.join(on)} with --workers {settings.workers} need --redis-url: without "
            "it each server process counts on its own and every client would get "
            f"{settings.workers} times its limit"]


class BoundedMemoryStorage(Storage):
    """Fixed-window counters in this process: at most ``max_keys`` of them, O(1) per hit.

    A counter is ``[count, expires_at]`` in an :class:`~collections.OrderedDict` kept in order
    of last use; a hit on an expired counter starts a new window, and a new counter beyond
    ``max_keys`` forgets the least recently used one (which only ever makes a limit more lenient,
    for a client not seen for the longest time). The service keeps one storage per rule, so
    clients churning through addresses cannot push out the API keys' counters.

    ``limits``' own ``MemoryStorage`` is not used: it has no bound, and it scans every counter
    for expiry after each hit, on the event loop (``python benchmarks/bench_ratelimit.py --hits
    1000``, ``limits`` 5.8, on the shared 2-core VM at load average 9-10: 4.0 ms per check with
    10,000 counters and 28 ms with 50,000, against 33 and 55 us here). Only the fixed-window
    operations are implemented; everything runs on the event loop without awaiting, so no lock
    is needed.

    Parameters
    ----------
    max_keys : int
        The most counters kept.
    clock : callable
        Unix seconds (injectable in tests).
    """

    STORAGE_SCHEME = None

    def __init__(self, max_keys: int = 10000, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.max_keys = max(1, int(max_keys))
        self.clock = clock
        self._counters: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counters)

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return ()

    def _live(self, key: str) -> list[float] | None:
        entry = self._counters.get(key)
        if entry is not None and entry[1] <= self.clock():
            del self._counters[key]
            return None
        return entry

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        entry = self._live(key)
        if entry is None:
            while len(self._counters) >= self.max_keys:
                self._counters.popitem(last=False)
            entry = self._counters[key] = [0, self.clock() + expiry]
        else:
            self._counters.move_to_end(key)
        entry[0] += amount
        return int(entry[0])

    async def get(self, key: str) -> int:
        entry = self._live(key)
        return int(entry[0]) if entry is not None else 0

    async def get_expiry(self, key: str) -> float:
        entry = self._live(key)
        return entry[1] if entry is not None else self.clock()

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        n = len(self._counters)
        self._counters.clear()
        return n

    async def clear(self, key: str) -> None:
        self._counters.pop(key, None)


class RateLimits:
    """The service's limits: :meth:`hit` counts one request of a client against a rule.

    Parameters
    ----------
    rules : mapping
        Rule name -> :class:`Rule` (a missing or disabled rule never limits).
    redis_url : str or None
        Count in this Redis (``redis://``, ``rediss://``, ``unix://``), shared by every process
        and replica; None: in this process (:class:`BoundedMemoryStorage`, ``max_keys``
        counters per rule).
    max_keys : int
        The bound of each in-process storage.
    timeout_s : float
        The longest a check waits for Redis (then :class:`LimitStoreUnavailable`).
    clock : callable
        Unix seconds of the in-process storages (tests).
    """

    def __init__(self, rules: Mapping[str, Rule], redis_url: str | None = None, *,
                 max_keys: int = 10000, timeout_s: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.rules = dict(rules)
        self.redis_url = redis_url
        self.timeout_s = float(timeout_s)
        self.clock = clock
        self._memory = {name: FixedWindowRateLimiter(BoundedMemoryStorage(max_keys, clock))
                        for name in self.rules} if redis_url is None else {}
        self._redis: FixedWindowRateLimiter | None = None
        self._pool: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> RateLimits:
        """The limits of ``settings`` (Redis when ``redis_url``)."""
        rules = {name: Rule.from_settings(name, settings) for name in RULES}
        return cls(rules, settings.redis_url, max_keys=settings.max_tracked_clients,
                   timeout_s=settings.rate_limit_timeout_s, **kwargs)

    @property
    def shared(self) -> bool:
        """Whether the counters are shared by every process (Redis)."""
        return self.redis_url is not None

    @property
    def enabled(self) -> bool:
        return any(rule.enabled for rule in self.rules.values())

    def rule(self, name: str) -> Rule:
        return self.rules.get(name) or Rule(name, 0, 1)

    def _limiter(self, name: str) -> FixedWindowRateLimiter:
        if self.redis_url is None:
            return self._memory[name]
        loop = asyncio.get_running_loop()
        if self._redis is None or self._loop is not loop:  # a pool serves one event loop
            import redis.asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            self._pool = redis.asyncio.BlockingConnectionPool.from_url(
                self.redis_url, max_connections=_MAX_CONNECTIONS, timeout=self.timeout_s,
                socket_timeout=self.timeout_s, socket_connect_timeout=self.timeout_s,
                retry=Retry(NoBackoff(), 1), client_name=f"{KEY_PREFIX}:{os.getpid()}")
            uri = self.redis_url.replace("unix://", "redis+unix://", 1)
            storage = RedisStorage(f"async+{uri}", wrap_exceptions=True,
                                   implementation="redispy", key_prefix=KEY_PREFIX,
                                   connection_pool=self._pool)
            self._redis, self._loop = FixedWindowRateLimiter(storage), loop
        return self._redis

    async def hit(self, name: str, who: str) -> float:
        """Count one request of client ``who`` against rule ``name``.

        Returns
        -------
        float
            0.0 when the request is within the limit, else the seconds until the window ends
            (for ``Retry-After``; at least 0.001).

        Raises
        ------
        LimitStoreUnavailable
            Redis failed or did not answer within ``timeout_s``.
        """
        rule = self.rules.get(name)
        if rule is None or not rule.enabled:
            return 0.0
        limiter = self._limiter(name)
        item = rule.item
        try:
            async with asyncio.timeout(self.timeout_s):
                if await limiter.hit(item, who):
                    return 0.0
                stats = await limiter.get_window_stats(item, who)
        except (StorageError, TimeoutError, OSError) as exc:
            raise LimitStoreUnavailable(f"{type(exc).__name__}: {exc}") from None
        now = self.clock() if self.redis_url is None else time.time()
        return max(stats.reset_time - now, 0.001)

    async def check(self) -> None:
        """Ping Redis (nothing to do in memory); :class:`LimitStoreUnavailable` when it does
        not answer."""
        if self.redis_url is None or not self.enabled:
            return
        limiter = self._limiter(RULES[0])
        try:
            async with asyncio.timeout(self.timeout_s):
                if await limiter.storage.check():
                    return
        except (StorageError, TimeoutError, OSError) as exc:
            raise LimitStoreUnavailable(f"{type(exc).__name__}: {exc}") from None
        raise LimitStoreUnavailable("no answer to PING")

    async def close(self) -> None:
        """Close the Redis connections (the limits stay usable: a later hit reconnects)."""
        pool, loop = self._pool, self._loop
        self._pool, self._redis, self._loop = None, None, None
        if pool is not None and loop is asyncio.get_running_loop():  # else its loop is gone
            await pool.aclose()
