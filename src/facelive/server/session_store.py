"""Capture sessions, single-use nonces and rate counters: in memory or in Redis.

The challenge-session flow keeps a little state per session: who created it (the API key's id),
the hash of the browser's client token, the issued challenge, when the challenge was first
fetched, whether frames were submitted (exactly once) and the signed result. One process can keep
it in memory (:class:`MemorySessionStore`, bounded and expiring); replicas behind a load balancer
share it in Redis (:class:`RedisSessionStore`, the ``redis`` package), where every
read-modify-write is one atomic server-side operation (``SET NX``, ``HSETNX`` or a Lua script), so
two replicas cannot both accept the same frames or nonce.

The store knows nothing of HTTP; its exceptions map onto the API's refusals:
:class:`SessionNotFound` 404, :class:`SessionExpired` 410, :class:`SessionConflict` 409 (frames or
a nonce submitted twice), :class:`StoreFull` 503. Times are Unix seconds from the store's
``clock`` (injectable for tests). An expired session is kept ``retain_s`` longer (default one
hour) so that it answers 410 rather than 404, then dropped.

>>> store = open_store(None)                        # or open_store("redis://127.0.0.1:6379/0")
>>> token = new_token(); sid = new_session_id()
>>> store.create(sid, hash_token(token), "key-1", challenge.to_dict(), time.time() + 300)
>>> store.get(sid).token_matches(token)             # constant-time
>>> store.mark_challenge_fetched(sid)               # first fetch time (server clock)
>>> store.consume_nonce(challenge.nonce)            # True once, then False (any replica)
>>> store.mark_frames_submitted(sid)                # once; a second call raises SessionConflict
>>> store.store_result(sid, {"decision": ..., "token": ...})
>>> store.hit("key:key-1", window_s=60)             # -> Counter(count, reset_in_s)
"""

from __future__ import annotations

import abc
import hmac
import json
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from facelive.encoding import sha256_hex

__all__ = [
    "Session", "Counter", "SessionStore", "MemorySessionStore", "RedisSessionStore",
    "SessionStoreError", "SessionNotFound", "SessionExpired", "SessionConflict", "StoreFull",
    "open_store", "hash_token", "new_token", "new_session_id",
]

Clock = Callable[[], float]


class SessionStoreError(Exception):
    """Base of the store's refusals; ``status`` is the HTTP status the API answers with."""

    status = 500


class SessionNotFound(SessionStoreError):
    status = 404


class SessionExpired(SessionStoreError):
    status = 410


class SessionConflict(SessionStoreError):
    """Frames (or a nonce) submitted twice, or a session id that already exists."""

    status = 409


class StoreFull(SessionStoreError):
    status = 503


def new_session_id() -> str:
    return secrets.token_urlsafe(16)


def new_token() -> str:
    """A client token (given to the browser once; only its hash is stored)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """Hex SHA-256 of a token (tokens are 256-bit random, so no salt or slow hash is needed)."""
    return sha256_hex(token)


@dataclass
class Session:
    """One capture session as stored."""

    session_id: str
    client_token_hash: str
    api_key_id: str
    challenge: dict[str, Any]
    created_at: float
    expires_at: float
    challenge_fetched_at: float | None = None
    frames_submitted_at: float | None = None
    result: dict[str, Any] | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at

    @property
    def status(self) -> str:
        """``pending`` (no frames yet), ``submitted`` (frames in, no result) or ``done``."""
        if self.result is not None:
            return "done"
        return "submitted" if self.frames_submitted_at is not None else "pending"

    def token_matches(self, token: str) -> bool:
        """Whether ``token`` is this session's client token (constant-time comparison)."""
        return hmac.compare_digest(hash_token(token), self.client_token_hash)

    def to_dict(self) -> dict[str, Any]:
        return {
            "session_id": self.session_id, "client_token_hash": self.client_token_hash,
            "api_key_id": self.api_key_id, "challenge": self.challenge,
            "created_at": self.created_at, "expires_at": self.expires_at,
            "challenge_fetched_at": self.challenge_fetched_at,
            "frames_submitted_at": self.frames_submitted_at, "result": self.result,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Session:
        return cls(**{k: d.get(k) for k in (
            "session_id", "client_token_hash", "api_key_id", "challenge", "created_at",
            "expires_at", "challenge_fetched_at", "frames_submitted_at", "result")},
            meta=d.get("meta") or {})


@dataclass(frozen=True)
class Counter:
    """A fixed-window counter after one hit: the count in the window and seconds to its reset
    (the ``Retry-After`` of a 429)."""

    count: int
    reset_in_s: float


class SessionStore(abc.ABC):
    """The interface; see the module docstring. Implementations are thread-safe."""

    retain_s: float = 3600.0

    @abc.abstractmethod
    def create(self, session_id: str, client_token_hash: str, api_key_id: str,
               challenge: dict[str, Any], expires_at: float,
               meta: dict[str, Any] | None = None) -> Session:
        """Store a new session; :class:`SessionConflict` when the id exists."""

    @abc.abstractmethod
    def get(self, session_id: str) -> Session | None:
        """The session (expired ones too, for ``retain_s``), or ``None``."""

    @abc.abstractmethod
    def mark_challenge_fetched(self, session_id: str) -> float:
        """Record the first fetch of the challenge; returns that first time (later calls return
        the same). Raises :class:`SessionNotFound` / :class:`SessionExpired`."""

    @abc.abstractmethod
    def mark_frames_submitted(self, session_id: str) -> Session:
        """Atomically mark the frames as submitted: succeeds once per session; a second call (on
        any replica) raises :class:`SessionConflict`. Also :class:`SessionNotFound` /
        :class:`SessionExpired`. Returns the session as marked."""

    @abc.abstractmethod
    def store_result(self, session_id: str, result: dict[str, Any]) -> None:
        """Attach the (JSON-able) result; :class:`SessionConflict` if one is stored already."""

    @abc.abstractmethod
    def consume_nonce(self, nonce: str, ttl_s: float = 3600.0) -> bool:
        """``True`` the first time ``nonce`` is seen (within ``ttl_s``), ``False`` after: atomic
        across threads, processes and replicas sharing the store."""

    @abc.abstractmethod
    def hit(self, name: str, window_s: float) -> Counter:
        """Count one event on counter ``name`` (e.g. ``"key:<id>"``, ``"addr:<ip>"``) in a fixed
        window of ``window_s`` seconds that starts at its first hit."""

    @abc.abstractmethod
    def delete(self, session_id: str) -> None:
        """Forget a session (no error when absent)."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""


# -- in memory ---------------------------------------------------------------------------------

class MemorySessionStore(SessionStore):
    """One process's store: bounded (``max_sessions``, ``max_nonces``, ``max_counters``) and
    expiring. When full of live sessions, :meth:`create` raises :class:`StoreFull` rather than
    dropping a session a user is in the middle of."""

    def __init__(self, *, max_sessions: int = 10_000, max_nonces: int = 100_000,
                 max_counters: int = 100_000, retain_s: float = 3600.0,
                 clock: Clock = time.time) -> None:
        self.max_sessions = int(max_sessions)
        self.max_nonces = int(max_nonces)
        self.max_counters = int(max_counters)
        self.retain_s = float(retain_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._nonces: OrderedDict[str, float] = OrderedDict()  # nonce -> forget-at
        self._counters: dict[str, tuple[int, float]] = {}  # name -> (count, window end)

    def _purge(self, now: float) -> None:
        for sid in [s for s, v in self._sessions.items() if now >= v.expires_at + self.retain_s]:
            del self._sessions[sid]
        for n in [n for n, t in self._nonces.items() if now >= t]:
            del self._nonces[n]
        for c in [c for c, (_, end) in self._counters.items() if now >= end]:
            del self._counters[c]

    def _live(self, session_id: str, now: float) -> Session:
        s = self._sessions.get(session_id)
        if s is None or now >= s.expires_at + self.retain_s:
            raise SessionNotFound(session_id)
        if now >= s.expires_at:
            raise SessionExpired(session_id)
        return s

    def create(self, session_id, client_token_hash, api_key_id, challenge, expires_at,
               meta=None):
        now = self._clock()
        with self._lock:
            if session_id in self._sessions:
                raise SessionConflict(f"session {session_id} exists")
            if len(self._sessions) >= self.max_sessions:
                self._purge(now)
                if len(self._sessions) >= self.max_sessions:
                    # drop sessions that are merely retained (expired) before refusing
                    for sid in [s for s, v in self._sessions.items() if v.expired(now)]:
                        del self._sessions[sid]
                if len(self._sessions) >= self.max_sessions:
                    raise StoreFull(f"{self.max_sessions} live sessions")
            s = Session(session_id, client_token_hash, api_key_id,
                        json.loads(json.dumps(challenge)), now, float(expires_at),
                        meta=dict(meta or {}))
            self._sessions[session_id] = s
            return Session.from_dict(s.to_dict())

    def get(self, session_id):
        now = self._clock()
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None or now >= s.expires_at + self.retain_s:
                return None
            return Session.from_dict(json.loads(json.dumps(s.to_dict())))

    def mark_challenge_fetched(self, session_id):
        now = self._clock()
        with self._lock:
            s = self._live(session_id, now)
            if s.challenge_fetched_at is None:
                s.challenge_fetched_at = now
            return s.challenge_fetched_at

    def mark_frames_submitted(self, session_id):
        now = self._clock()
        with self._lock:
            s = self._live(session_id, now)
            if s.frames_submitted_at is not None:
                raise SessionConflict(f"frames already submitted for {session_id}")
            s.frames_submitted_at = now
            return Session.from_dict(s.to_dict())

    def store_result(self, session_id, result):
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None:
                raise SessionNotFound(session_id)
            if s.result is not None:
                raise SessionConflict(f"result already stored for {session_id}")
            s.result = json.loads(json.dumps(result))

    def consume_nonce(self, nonce, ttl_s=3600.0):
        now = self._clock()
        with self._lock:
            t = self._nonces.get(nonce)
            if t is not None and now < t:
                return False
            if len(self._nonces) >= self.max_nonces:
                self._purge(now)
                while len(self._nonces) >= self.max_nonces:
                    # the oldest nonces go first; their sessions have long expired
                    self._nonces.popitem(last=False)
            self._nonces[nonce] = now + float(ttl_s)
            return True

    def hit(self, name, window_s):
        now = self._clock()
        with self._lock:
            count, end = self._counters.get(name, (0, 0.0))
            if now >= end:
                count, end = 0, now + float(window_s)
                if len(self._counters) >= self.max_counters:
                    self._purge(now)
            count += 1
            if len(self._counters) < self.max_counters or name in self._counters:
                self._counters[name] = (count, end)
            return Counter(count, max(0.0, end - now))

    def delete(self, session_id):
        with self._lock:
            self._sessions.pop(session_id, None)


# -- Redis -------------------------------------------------------------------------------------

# KEYS[1] session hash; ARGV[1] TTL in ms, ARGV[2..] field, value pairs. 0 exists, 1 created.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
# KEYS[1] session hash; ARGV[1] now. -1 unknown, -2 expired, 0 already submitted, 1 marked.
_MARK_SUBMITTED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local exp = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if exp == nil or tonumber(ARGV[1]) >= exp then return -2 end
if redis.call('HSETNX', KEYS[1], 'frames_submitted_at', ARGV[1]) == 0 then return 0 end
return 1
"""
# KEYS[1] session hash; ARGV[1] now. -1 unknown, -2 expired, else the first fetch time.
_MARK_FETCHED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local exp = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if exp == nil or tonumber(ARGV[1]) >= exp then return -2 end
redis.call('HSETNX', KEYS[1], 'challenge_fetched_at', ARGV[1])
return redis.call('HGET', KEYS[1], 'challenge_fetched_at')
"""
# KEYS[1] session hash; ARGV[1] result JSON. -1 unknown, 0 already stored, 1 stored.
_STORE_RESULT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
if redis.call('HSETNX', KEYS[1], 'result', ARGV[1]) == 0 then return 0 end
return 1
"""
# KEYS[1] counter; ARGV[1] window in ms. Returns {count, ms to reset}.
_HIT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 or redis.call('PTTL', KEYS[1]) < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return {n, redis.call('PTTL', KEYS[1])}
"""


class RedisSessionStore(SessionStore):
    """Sessions in Redis hashes (``<prefix>session:<id>``), nonces as ``SET NX EX`` keys
    (``<prefix>nonce:<nonce>``), counters as ``INCR`` keys with a TTL (``<prefix>count:<name>``).
    Every key expires on its own (sessions ``retain_s`` after ``expires_at``), so Redis needs no
    clean-up job; give it a ``maxmemory`` with an eviction policy of ``volatile-ttl`` or
    ``noeviction``."""

    def __init__(self, url: str | None = None, *, client: Any | None = None,
                 prefix: str = "facelive:", retain_s: float = 3600.0,
                 clock: Clock = time.time, socket_timeout_s: float = 5.0) -> None:
        if client is None:
            import redis

            if url is None:
                raise ValueError("RedisSessionStore needs a url or a client")
            client = redis.Redis.from_url(url, socket_timeout=socket_timeout_s,
                                          socket_connect_timeout=socket_timeout_s,
                                          decode_responses=True)
        self._r = client
        self.prefix = prefix
        self.retain_s = float(retain_s)
        self._clock = clock
        self._create = self._r.register_script(_CREATE)
        self._mark_submitted = self._r.register_script(_MARK_SUBMITTED)
        self._mark_fetched = self._r.register_script(_MARK_FETCHED)
        self._store_result = self._r.register_script(_STORE_RESULT)
        self._hit = self._r.register_script(_HIT)

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def ping(self) -> bool:
        return bool(self._r.ping())

    def create(self, session_id, client_token_hash, api_key_id, challenge, expires_at,
               meta=None):
        now = self._clock()
        key = self._key(session_id)
        fields = {
            "session_id": session_id, "client_token_hash": client_token_hash,
            "api_key_id": api_key_id, "challenge": json.dumps(challenge),
            "created_at": repr(float(now)), "expires_at": repr(float(expires_at)),
            "meta": json.dumps(meta or {}),
        }
        ttl_ms = max(1, int((float(expires_at) + self.retain_s - now) * 1000))
        args: list[Any] = [ttl_ms]
        for k, v in fields.items():
            args += [k, v]
        if int(self._create(keys=[key], args=args)) == 0:  # atomic: never overwrites
            raise SessionConflict(f"session {session_id} exists")
        return Session(session_id, client_token_hash, api_key_id,
                       json.loads(fields["challenge"]), float(now), float(expires_at),
                       meta=dict(meta or {}))

    def get(self, session_id):
        d = self._r.hgetall(self._key(session_id))
        if not d:
            return None

        def num(k: str) -> float | None:
            return float(d[k]) if d.get(k) not in (None, "") else None

        return Session(
            session_id=d["session_id"], client_token_hash=d["client_token_hash"],
            api_key_id=d["api_key_id"], challenge=json.loads(d["challenge"]),
            created_at=float(d["created_at"]), expires_at=float(d["expires_at"]),
            challenge_fetched_at=num("challenge_fetched_at"),
            frames_submitted_at=num("frames_submitted_at"),
            result=json.loads(d["result"]) if d.get("result") else None,
            meta=json.loads(d.get("meta") or "{}"),
        )

    def mark_challenge_fetched(self, session_id):
        r = self._mark_fetched(keys=[self._key(session_id)], args=[repr(float(self._clock()))])
        if r == -1:
            raise SessionNotFound(session_id)
        if r == -2:
            raise SessionExpired(session_id)
        return float(r)

    def mark_frames_submitted(self, session_id):
        r = int(self._mark_submitted(keys=[self._key(session_id)],
                                     args=[repr(float(self._clock()))]))
        if r == -1:
            raise SessionNotFound(session_id)
        if r == -2:
            raise SessionExpired(session_id)
        if r == 0:
            raise SessionConflict(f"frames already submitted for {session_id}")
        s = self.get(session_id)
        if s is None:  # expired between the two calls
            raise SessionNotFound(session_id)
        return s

    def store_result(self, session_id, result):
        r = int(self._store_result(keys=[self._key(session_id)], args=[json.dumps(result)]))
        if r == -1:
            raise SessionNotFound(session_id)
        if r == 0:
            raise SessionConflict(f"result already stored for {session_id}")

    def consume_nonce(self, nonce, ttl_s=3600.0):
        key = f"{self.prefix}nonce:{sha256_hex(nonce)}"
        return bool(self._r.set(key, "1", nx=True, px=max(1, int(float(ttl_s) * 1000))))

    def hit(self, name, window_s):
        n, pttl = self._hit(keys=[f"{self.prefix}count:{name}"],
                            args=[max(1, int(float(window_s) * 1000))])
        return Counter(int(n), max(0.0, int(pttl) / 1000.0))

    def delete(self, session_id):
        self._r.delete(self._key(session_id))

    def close(self) -> None:
        try:
            self._r.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass


def open_store(url: str | None = None, **kwargs: Any) -> SessionStore:
    """A :class:`RedisSessionStore` for a ``redis://`` / ``rediss://`` / ``unix://`` URL, else
    (``None``) a :class:`MemorySessionStore`."""
    if url:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"not a Redis URL: {url!r}")
        return RedisSessionStore(url, **kwargs)
    return MemorySessionStore(**kwargs)
