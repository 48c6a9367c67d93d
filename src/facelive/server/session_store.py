"""Capture sessions, single-use nonces, frame hashes and rate counters: in memory or in Redis.

The challenge-session flow keeps a little state per session: who created it (the API key's id,
the *tenant*), the hash of the browser's client token, the issued challenge, when the challenge
was first fetched, whether frames were submitted (exactly once) and the signed result. One
process can keep it in memory (:class:`MemorySessionStore`); replicas behind a load balancer
share it in Redis (:class:`RedisSessionStore`, the ``redis`` package), where every
read-modify-write is one atomic server-side operation (``SET NX``, ``HSETNX`` or a Lua script), so
two replicas cannot both accept the same frames or nonce.

**No party can fill the store.** Everything a tenant makes the store keep is counted against that
tenant's quota, in both stores, atomically (a Lua script in Redis):

* sessions (``tenant_max_sessions``): live ones, plus expired ones kept ``retain_s`` to answer
  410 rather than 404. At its quota, a tenant's oldest *expired* session makes room; when all of
  them are live, :meth:`SessionStore.create` raises :class:`QuotaExceeded` (429) with the time
  until its first session expires, while every other tenant still creates sessions;
* nonces (``tenant_max_nonces``): a nonce is kept only as long as its session can still take an
  upload (the caller's ``ttl_s``, the session's remaining life plus a margin), so a tenant holds
  about one per session it holds (the service allows twice as many, for the sessions that made
  room within the margin); past the quota :class:`QuotaExceeded`;
* frame hashes (``tenant_max_frames``, and at most ``max_frames_per_session`` per session): the
  SHA-256 of accepted frames, remembered ``ttl_s`` to catch a clip re-sent into another session.
  The check is a tripwire (re-encoding one byte escapes it), so at its quota a tenant forgets its
  *own* oldest hashes first and its uploads keep working; no tenant can make the store forget
  another tenant's hashes.

The memory store also has global capacities (``max_sessions``, ``max_nonces``,
``max_frame_hashes``, ``max_counters``) that the quotas keep one tenant from reaching; expiry is
a heap of forget-at times (O(log n) per entry, amortised), never a scan of a table under the
lock. The Redis store's bound is Redis's ``maxmemory``, sized from the quotas with the
``noeviction`` policy (``docs/deployment.md``, "Redis"): then no key is ever evicted, so no
tenant can push out another's sessions or the rate counters.

The store knows nothing of HTTP; its exceptions map onto the API's refusals:
:class:`SessionNotFound` 404, :class:`SessionExpired` 410, :class:`SessionConflict` 409 (frames or
a nonce submitted twice), :class:`SessionAbandoned` 410 (cancelled by the user),
:class:`QuotaExceeded` 429, :class:`StoreFull` 503. Times are Unix
seconds from the store's ``clock`` (injectable for tests). An expired session is kept
``retain_s`` longer (default one hour) so that it answers 410 rather than 404, then dropped.

>>> store = open_store(None)                        # or open_store("redis://127.0.0.1:6379/0")
>>> token = new_token(); sid = new_session_id()
>>> store.create(sid, hash_token(token), "key-1", challenge.to_dict(), time.time() + 300)
>>> store.get(sid).token_matches(token)             # constant-time
>>> store.mark_challenge_fetched(sid)               # first fetch time (server clock)
>>> store.consume_nonce(challenge.nonce, 360, tenant="key-1")  # True once, then False
>>> store.mark_frames_submitted(sid)                # once; a second call raises SessionConflict
>>> store.mark_abandoned(sid)                       # the user cancelled (before any frames)
>>> store.record_frames(sid, [sha256_hex(f) for f in frames], ttl_s=3600)  # -> frames seen before
>>> store.store_result(sid, {"decision": ..., "token": ...})
>>> store.hit("key:key-1", window_s=60)             # -> Counter(count, reset_in_s)
"""

from __future__ import annotations

import abc
import heapq
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from facelive.encoding import sha256_hex

__all__ = [
    "Session", "Counter", "SessionStore", "MemorySessionStore", "RedisSessionStore",
    "SessionStoreError", "SessionNotFound", "SessionExpired", "SessionConflict", "StoreFull",
    "SessionAbandoned",
    "QuotaExceeded", "open_store", "hash_token", "new_token", "new_session_id",
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


class SessionAbandoned(SessionStoreError):
    """Frames sent to a session the user cancelled (:meth:`SessionStore.mark_abandoned`)."""

    status = 410


class StoreFull(SessionStoreError):
    """The memory store's global capacity is reached (the quotas keep one tenant from it)."""

    status = 503


class QuotaExceeded(SessionStoreError):
    """A tenant holds as many live sessions (or nonces) as its quota allows.

    Parameters
    ----------
    what : str
        ``"sessions"`` or ``"nonces"``.
    limit : int
        The tenant's quota.
    retry_after_s : float
        Seconds until the tenant's first entry expires and makes room.
    """

    status = 429

    def __init__(self, what: str, limit: int, retry_after_s: float) -> None:
        super().__init__(f"the tenant holds {limit} live {what}, its quota")
        self.what = what
        self.limit = int(limit)
        self.retry_after_s = max(0.0, float(retry_after_s))


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
    abandoned_at: float | None = None

    def expired(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) >= self.expires_at

    @property
    def status(self) -> str:
        """``pending`` (no frames yet), ``abandoned`` (cancelled before any frames),
        ``submitted`` (frames in, no result) or ``done``."""
        if self.result is not None:
            return "done"
        if self.abandoned_at is not None:
            return "abandoned"
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
            "meta": self.meta, "abandoned_at": self.abandoned_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Session:
        return cls(**{k: d.get(k) for k in (
            "session_id", "client_token_hash", "api_key_id", "challenge", "created_at",
            "expires_at", "challenge_fetched_at", "frames_submitted_at", "result",
            "abandoned_at")}, meta=d.get("meta") or {})


@dataclass(frozen=True)
class Counter:
    """A fixed-window counter after one hit: the count in the window and seconds to its reset
    (the ``Retry-After`` of a 429)."""

    count: int
    reset_in_s: float


class SessionStore(abc.ABC):
    """The interface; see the module docstring. Implementations are thread-safe and take these
    limits as keyword arguments.

    Attributes
    ----------
    tenant_max_sessions : int
        Sessions one tenant may hold (live, plus expired ones retained for 410).
    tenant_max_nonces : int
        Unexpired nonces one tenant may hold.
    tenant_max_frames : int
        Frame hashes one tenant may hold (past it, its oldest are forgotten).
    max_frames_per_session : int
        Frame hashes recorded per session (the upload's frame limit).
    retain_s : float
        How long an expired session is kept to answer 410.
    """

    retain_s: float = 3600.0

    @abc.abstractmethod
    def create(self, session_id: str, client_token_hash: str, api_key_id: str,
               challenge: dict[str, Any], expires_at: float,
               meta: dict[str, Any] | None = None) -> Session:
        """Store a new session owned by tenant ``api_key_id``; :class:`SessionConflict` when the
        id exists, :class:`QuotaExceeded` when the tenant holds ``tenant_max_sessions`` live
        ones (an expired one of its own makes room first)."""

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
        any replica) raises :class:`SessionConflict`; after :meth:`mark_abandoned`,
        :class:`SessionAbandoned`. Also :class:`SessionNotFound` / :class:`SessionExpired`.
        Returns the session as marked."""

    @abc.abstractmethod
    def mark_abandoned(self, session_id: str) -> Session:
        """Atomically mark the session abandoned (the user cancelled) unless frames were
        submitted (then :class:`SessionConflict`); a second call changes nothing. Also
        :class:`SessionNotFound` / :class:`SessionExpired`. Returns the session as marked."""

    @abc.abstractmethod
    def store_result(self, session_id: str, result: dict[str, Any]) -> None:
        """Attach the (JSON-able) result; :class:`SessionConflict` if one is stored already."""

    @abc.abstractmethod
    def consume_nonce(self, nonce: str, ttl_s: float = 3600.0, tenant: str | None = None
                      ) -> bool:
        """``True`` the first time ``nonce`` is seen (within ``ttl_s``), ``False`` after: atomic
        across threads, processes and replicas sharing the store. With ``tenant``, the nonce
        counts against that tenant's ``tenant_max_nonces`` until it is forgotten
        (:class:`QuotaExceeded` past it); give a ``ttl_s`` no longer than its session can take
        an upload."""

    @abc.abstractmethod
    def record_frames(self, session_id: str, hashes: Iterable[str], ttl_s: float) -> int:
        """Remember the frame hashes of session ``session_id``'s upload for ``ttl_s`` and return
        how many of them were already remembered from *another* session (atomic across
        replicas). At most ``max_frames_per_session`` hashes are recorded per session, counted
        against the session's tenant (at ``tenant_max_frames`` its oldest are forgotten); for a
        session the store does not hold, the hashes are only looked up."""

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

class _Ledger:
    """Entries with an owner (a tenant) and a time to forget them.

    :meth:`expire` pops a heap of forget-at times, :meth:`oldest` a heap per owner; an entry
    removed some other way leaves a stale heap item that is skipped when it surfaces, and a heap
    is rebuilt once it holds twice as many items as live entries (plus a slack), so every
    operation is O(log n) amortised and none scans the table.
    """

    _SLACK = 1024

    def __init__(self) -> None:
        self.entries: dict[str, tuple[float, str, Any]] = {}  # key -> (forget_at, owner, value)
        self._heap: list[tuple[float, str]] = []
        self._owned: dict[str, list[tuple[float, str]]] = {}
        self._keys_of: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> tuple[float, str, Any] | None:
        return self.entries.get(key)

    def count(self, owner: str) -> int:
        keys = self._keys_of.get(owner)
        return len(keys) if keys else 0

    def largest_owner(self) -> str | None:
        """The owner holding most entries (O(owners): the API keys)."""
        return max(self._keys_of, key=lambda o: len(self._keys_of[o]), default=None)

    def add(self, key: str, forget_at: float, owner: str, value: Any = None) -> None:
        if key in self.entries:
            self.remove(key)
        self.entries[key] = (forget_at, owner, value)
        self._keys_of.setdefault(owner, set()).add(key)
        heapq.heappush(self._heap, (forget_at, key))
        heapq.heappush(self._owned.setdefault(owner, []), (forget_at, key))
        if len(self._heap) > 2 * len(self.entries) + self._SLACK:
            self._heap = [(t, k) for k, (t, _, _) in self.entries.items()]
            heapq.heapify(self._heap)

    def remove(self, key: str) -> tuple[float, str, Any] | None:
        entry = self.entries.pop(key, None)
        if entry is None:
            return None
        owner = entry[1]
        keys = self._keys_of[owner]
        keys.discard(key)
        heap = self._owned[owner]
        if not keys:
            del self._keys_of[owner], self._owned[owner]
        elif len(heap) > 2 * len(keys) + self._SLACK:
            self._owned[owner] = [(self.entries[k][0], k) for k in keys]
            heapq.heapify(self._owned[owner])
        else:
            while heap and not self._valid(heap[0], owner):  # an oldest-first removal
                heapq.heappop(heap)
        while self._heap and not self._valid(self._heap[0]):
            heapq.heappop(self._heap)
        return entry

    def _valid(self, item: tuple[float, str], owner: str | None = None) -> bool:
        entry = self.entries.get(item[1])
        return (entry is not None and entry[0] == item[0]
                and (owner is None or entry[1] == owner))

    def expire(self, now: float) -> list[str]:
        """Remove the entries whose forget-at time has come; their keys."""
        gone: list[str] = []
        heap = self._heap
        while heap and heap[0][0] <= now:
            item = heapq.heappop(heap)
            if self._valid(item):
                self.remove(item[1])
                gone.append(item[1])
        return gone

    def oldest(self, owner: str | None = None) -> tuple[float, str] | None:
        """``(forget_at, key)`` of the entry forgotten first (of ``owner``, or of all)."""
        heap = self._heap if owner is None else self._owned.get(owner)
        while heap and not self._valid(heap[0], owner):
            heapq.heappop(heap)
        return heap[0] if heap else None


class MemorySessionStore(SessionStore):
    """One process's store: bounded per tenant (the quotas) and in all (``max_sessions``,
    ``max_nonces``, ``max_frame_hashes``, ``max_counters``), expiring in O(log n). A live
    session is never dropped to make room: a tenant at its quota gets :class:`QuotaExceeded`,
    and the store at ``max_sessions`` (several tenants at their quotas) :class:`StoreFull`.
    At ``max_frame_hashes`` the tenant holding the most hashes forgets its oldest."""

    def __init__(self, *, max_sessions: int = 10_000, max_nonces: int = 20_000,
                 max_frame_hashes: int = 1_000_000, max_counters: int = 100_000,
                 tenant_max_sessions: int = 1_000, tenant_max_nonces: int = 2_000,
                 tenant_max_frames: int = 150_000, max_frames_per_session: int = 150,
                 retain_s: float = 3600.0, clock: Clock = time.time) -> None:
        self.max_sessions = int(max_sessions)
        self.max_nonces = int(max_nonces)
        self.max_frame_hashes = int(max_frame_hashes)
        self.max_counters = int(max_counters)
        self.tenant_max_sessions = int(tenant_max_sessions)
        self.tenant_max_nonces = int(tenant_max_nonces)
        self.tenant_max_frames = int(tenant_max_frames)
        self.max_frames_per_session = int(max_frames_per_session)
        self.retain_s = float(retain_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, Session] = {}
        self._session_ledger = _Ledger()  # sid, forgotten retain_s after it expires
        self._recorded: dict[str, int] = {}  # sid -> frame hashes recorded for it
        self._nonces = _Ledger()
        self._frames = _Ledger()  # hash -> (forget_at, tenant, session id)
        self._counters: dict[str, tuple[int, float]] = {}  # name -> (count, window end)
        self._counter_heap: list[tuple[float, str]] = []

    def _expire(self, now: float) -> None:
        for sid in self._session_ledger.expire(now):
            del self._sessions[sid]
            self._recorded.pop(sid, None)
        self._nonces.expire(now)
        self._frames.expire(now)
        heap = self._counter_heap
        while heap and heap[0][0] <= now:
            end, name = heapq.heappop(heap)
            if self._counters.get(name, (0, None))[1] == end:
                del self._counters[name]

    def _drop_session(self, sid: str) -> None:
        self._session_ledger.remove(sid)
        self._sessions.pop(sid, None)
        self._recorded.pop(sid, None)

    def _live(self, session_id: str, now: float) -> Session:
        s = self._sessions.get(session_id)
        if s is None or now >= s.expires_at + self.retain_s:
            raise SessionNotFound(session_id)
        if now >= s.expires_at:
            raise SessionExpired(session_id)
        return s

    def _make_room(self, owner: str | None, limit: int, now: float) -> bool:
        """Drop the oldest session (of ``owner``, or of all) while at ``limit`` and it is
        expired (merely retained); whether there is room now."""
        ledger = self._session_ledger
        while (ledger.count(owner) if owner is not None else len(ledger)) >= limit:
            oldest = ledger.oldest(owner)
            if oldest is None or oldest[0] - self.retain_s > now:
                return False
            self._drop_session(oldest[1])
        return True

    def create(self, session_id, client_token_hash, api_key_id, challenge, expires_at,
               meta=None):
        now = self._clock()
        with self._lock:
            self._expire(now)
            if session_id in self._sessions:
                raise SessionConflict(f"session {session_id} exists")
            if not self._make_room(api_key_id, self.tenant_max_sessions, now):
                first = self._session_ledger.oldest(api_key_id)
                raise QuotaExceeded("sessions", self.tenant_max_sessions,
                                    first[0] - self.retain_s - now if first else 1.0)
            if not self._make_room(None, self.max_sessions, now):
                raise StoreFull(f"{self.max_sessions} live sessions")
            s = Session(session_id, client_token_hash, api_key_id,
                        json.loads(json.dumps(challenge)), now, float(expires_at),
                        meta=dict(meta or {}))
            self._sessions[session_id] = s
            self._session_ledger.add(session_id, s.expires_at + self.retain_s, api_key_id)
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
            if s.abandoned_at is not None:
                raise SessionAbandoned(session_id)
            if s.frames_submitted_at is not None:
                raise SessionConflict(f"frames already submitted for {session_id}")
            s.frames_submitted_at = now
            return Session.from_dict(s.to_dict())

    def mark_abandoned(self, session_id):
        now = self._clock()
        with self._lock:
            s = self._live(session_id, now)
            if s.frames_submitted_at is not None:
                raise SessionConflict(f"frames already submitted for {session_id}")
            if s.abandoned_at is None:
                s.abandoned_at = now
            return Session.from_dict(s.to_dict())

    def store_result(self, session_id, result):
        with self._lock:
            s = self._sessions.get(session_id)
            if s is None:
                raise SessionNotFound(session_id)
            if s.result is not None:
                raise SessionConflict(f"result already stored for {session_id}")
            s.result = json.loads(json.dumps(result))

    def consume_nonce(self, nonce, ttl_s=3600.0, tenant=None):
        now = self._clock()
        with self._lock:
            self._expire(now)
            if self._nonces.get(nonce) is not None:
                return False
            owner = "" if tenant is None else str(tenant)
            if tenant is not None and self._nonces.count(owner) >= self.tenant_max_nonces:
                first = self._nonces.oldest(owner)
                raise QuotaExceeded("nonces", self.tenant_max_nonces,
                                    first[0] - now if first else 1.0)
            if len(self._nonces) >= self.max_nonces:
                raise StoreFull(f"{self.max_nonces} unexpired nonces")
            self._nonces.add(nonce, now + float(ttl_s), owner)
            return True

    def record_frames(self, session_id, hashes, ttl_s):
        now = self._clock()
        with self._lock:
            self._expire(now)
            s = self._sessions.get(session_id)
            room = (self.max_frames_per_session - self._recorded.get(session_id, 0)
                    if s is not None else 0)
            frames, reused, recorded = self._frames, 0, 0
            for h in dict.fromkeys(hashes):
                seen = frames.get(h)
                if seen is not None:
                    reused += seen[2] != session_id
                    continue
                if recorded >= room:
                    continue
                assert s is not None
                tenant = s.api_key_id
                while frames.count(tenant) >= self.tenant_max_frames:
                    frames.remove(frames.oldest(tenant)[1])  # type: ignore[index]
                while len(frames) >= self.max_frame_hashes:
                    frames.remove(frames.oldest(frames.largest_owner())[1])  # type: ignore[index]
                frames.add(h, now + float(ttl_s), tenant, session_id)
                recorded += 1
            if recorded:
                self._recorded[session_id] = self._recorded.get(session_id, 0) + recorded
            return reused

    def hit(self, name, window_s):
        now = self._clock()
        with self._lock:
            count, end = self._counters.get(name, (0, 0.0))
            if now >= end:
                count, end = 0, now + float(window_s)
                self._expire(now)
                if name not in self._counters and len(self._counters) >= self.max_counters:
                    return Counter(1, float(window_s))  # not remembered: the table is full
                heapq.heappush(self._counter_heap, (end, name))
            count += 1
            self._counters[name] = (count, end)
            return Counter(count, max(0.0, end - now))

    def delete(self, session_id):
        with self._lock:
            self._drop_session(session_id)

    def tenant_usage(self, tenant: str) -> dict[str, int]:
        """What ``tenant`` holds: ``{"sessions", "nonces", "frames"}`` (for tests and metrics)."""
        with self._lock:
            self._expire(self._clock())
            return {"sessions": self._session_ledger.count(tenant),
                    "nonces": self._nonces.count(tenant), "frames": self._frames.count(tenant)}


# -- Redis -------------------------------------------------------------------------------------

# KEYS[1] session hash, KEYS[2] the tenant's session index (sorted set: id -> expires_at).
# ARGV[1] TTL in ms, ARGV[2] now, ARGV[3] expires_at, ARGV[4] quota, ARGV[5] retain_s,
# ARGV[6] session key prefix, ARGV[7] session id, ARGV[8..] field, value pairs.
# {1} created, {0} exists, {-1, ms until the tenant's first live session expires} quota.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - tonumber(ARGV[5]))
while redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) do
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local exp = tonumber(first[2])
  if exp > now then return {-1, math.ceil((exp - now) * 1000)} end
  redis.call('DEL', ARGV[6] .. first[1])
  redis.call('ZREM', KEYS[2], first[1])
end
redis.call('HSET', KEYS[1], unpack(ARGV, 8))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[7])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return {1}
"""
# KEYS[1] session hash; ARGV[1] now. -1 unknown, -2 expired, -3 abandoned, 0 already submitted,
# 1 marked.
_MARK_SUBMITTED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local exp = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if exp == nil or tonumber(ARGV[1]) >= exp then return -2 end
if redis.call('HEXISTS', KEYS[1], 'abandoned_at') == 1 then return -3 end
if redis.call('HSETNX', KEYS[1], 'frames_submitted_at', ARGV[1]) == 0 then return 0 end
return 1
"""
# KEYS[1] session hash; ARGV[1] now. -1 unknown, -2 expired, 0 frames submitted, 1 abandoned.
_MARK_ABANDONED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local exp = tonumber(redis.call('HGET', KEYS[1], 'expires_at'))
if exp == nil or tonumber(ARGV[1]) >= exp then return -2 end
if redis.call('HEXISTS', KEYS[1], 'frames_submitted_at') == 1 then return 0 end
redis.call('HSETNX', KEYS[1], 'abandoned_at', ARGV[1])
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
# KEYS[1] nonce key, KEYS[2] the tenant's nonce index (sorted set: key -> forget-at).
# ARGV[1] TTL in ms, ARGV[2] now, ARGV[3] quota. {1} new, {0} seen, {-1, ms to room} quota.
_NONCE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[3]) then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {-1, math.ceil((tonumber(first[2]) - now) * 1000)}
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]) / 1000, KEYS[1])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[1]) then
  redis.call('PEXPIRE', KEYS[2], ARGV[1])
end
return {1}
"""
# KEYS[1] session hash. ARGV[1] now, ARGV[2] TTL in ms, ARGV[3] tenant quota, ARGV[4] most per
# session, ARGV[5] session id, ARGV[6] frame key prefix, ARGV[7] tenant index prefix,
# ARGV[8..] distinct hashes. The session's tenant's frame index (sorted set: hash -> forget-at)
# is <ARGV[7]><tenant>:frames. Returns how many hashes were recorded by another session.
_FRAMES = """
local now, ttl = tonumber(ARGV[1]), tonumber(ARGV[2])
local room, index = 0, nil
local tenant = redis.call('HGET', KEYS[1], 'api_key_id')
if tenant then
  index = ARGV[7] .. tenant .. ':frames'
  room = tonumber(ARGV[4]) - tonumber(redis.call('HGET', KEYS[1], 'frames_recorded') or '0')
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
end
local reused, recorded = 0, 0
for i = 8, #ARGV do
  local key = ARGV[6] .. ARGV[i]
  local owner = redis.call('GET', key)
  if owner then
    if owner ~= ARGV[5] then reused = reused + 1 end
  elseif recorded < room then
    while redis.call('ZCARD', index) >= tonumber(ARGV[3]) do
      local old = redis.call('ZPOPMIN', index)
      redis.call('DEL', ARGV[6] .. old[1])
    end
    redis.call('SET', key, ARGV[5], 'PX', ttl)
    redis.call('ZADD', index, now + ttl / 1000, ARGV[i])
    recorded = recorded + 1
  end
end
if recorded > 0 then
  redis.call('HINCRBY', KEYS[1], 'frames_recorded', recorded)
  if redis.call('PTTL', index) < ttl then redis.call('PEXPIRE', index, ttl) end
end
return reused
"""
# KEYS[1] session hash; ARGV[1] tenant index prefix, ARGV[2] session id. Deletes the session
# and its entry in its tenant's session index.
_DELETE = """
local tenant = redis.call('HGET', KEYS[1], 'api_key_id')
if tenant then redis.call('ZREM', ARGV[1] .. tenant .. ':sessions', ARGV[2]) end
return redis.call('DEL', KEYS[1])
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
    """Sessions in Redis hashes (``<prefix>session:<id>``), nonces as keys
    (``<prefix>nonce:<sha256>``), frame hashes as keys holding the session id
    (``<prefix>frame:<sha256>``), counters as ``INCR`` keys (``<prefix>count:<name>``), and per
    tenant a sorted set of what it holds by expiry time (``<prefix>tenant:<id>:sessions`` /
    ``:nonces`` / ``:frames``), which the Lua scripts trim and count to enforce the quotas
    atomically. Every key has a TTL (sessions ``retain_s`` after ``expires_at``, an index as
    long as its latest entry), so Redis needs no clean-up job. Scripts build key names from the
    prefix: one Redis server (or a primary with replicas), not a Redis Cluster.

    Run Redis with ``maxmemory-policy noeviction`` and a ``maxmemory`` sized from the quotas
    (``docs/deployment.md``): an evicting policy would let one tenant's writes push out other
    tenants' sessions, nonces or the rate counters."""

    def __init__(self, url: str | None = None, *, client: Any | None = None,
                 prefix: str = "facelive:", retain_s: float = 3600.0,
                 tenant_max_sessions: int = 1_000, tenant_max_nonces: int = 2_000,
                 tenant_max_frames: int = 150_000, max_frames_per_session: int = 150,
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
        self.tenant_max_sessions = int(tenant_max_sessions)
        self.tenant_max_nonces = int(tenant_max_nonces)
        self.tenant_max_frames = int(tenant_max_frames)
        self.max_frames_per_session = int(max_frames_per_session)
        self._clock = clock
        self._create = self._r.register_script(_CREATE)
        self._mark_submitted = self._r.register_script(_MARK_SUBMITTED)
        self._mark_abandoned = self._r.register_script(_MARK_ABANDONED)
        self._mark_fetched = self._r.register_script(_MARK_FETCHED)
        self._store_result = self._r.register_script(_STORE_RESULT)
        self._nonce = self._r.register_script(_NONCE)
        self._frames = self._r.register_script(_FRAMES)
        self._hit = self._r.register_script(_HIT)
        self._delete = self._r.register_script(_DELETE)

    def _key(self, session_id: str) -> str:
        return f"{self.prefix}session:{session_id}"

    def _index(self, tenant: str, what: str) -> str:
        return f"{self.prefix}tenant:{tenant}:{what}"

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
        args: list[Any] = [ttl_ms, repr(float(now)), repr(float(expires_at)),
                           self.tenant_max_sessions, repr(self.retain_s),
                           f"{self.prefix}session:", session_id]
        for k, v in fields.items():
            args += [k, v]
        r = self._create(keys=[key, self._index(api_key_id, "sessions")], args=args)
        if int(r[0]) == 0:  # atomic: never overwrites
            raise SessionConflict(f"session {session_id} exists")
        if int(r[0]) == -1:
            raise QuotaExceeded("sessions", self.tenant_max_sessions, int(r[1]) / 1000.0)
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
            abandoned_at=num("abandoned_at"),
        )

    def mark_challenge_fetched(self, session_id):
        r = self._mark_fetched(keys=[self._key(session_id)], args=[repr(float(self._clock()))])
        if r == -1:
            raise SessionNotFound(session_id)
        if r == -2:
            raise SessionExpired(session_id)
        return float(r)

    def mark_frames_submitted(self, session_id):
        return self._marked(session_id, int(self._mark_submitted(
            keys=[self._key(session_id)], args=[repr(float(self._clock()))])))

    def mark_abandoned(self, session_id):
        return self._marked(session_id, int(self._mark_abandoned(
            keys=[self._key(session_id)], args=[repr(float(self._clock()))])))

    def _marked(self, session_id, r):
        """The session after a marking script answered ``r`` (1 marked; -1 not found, -2
        expired, -3 abandoned, 0 frames already submitted: the matching error)."""
        if r == -1:
            raise SessionNotFound(session_id)
        if r == -2:
            raise SessionExpired(session_id)
        if r == -3:
            raise SessionAbandoned(session_id)
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

    def consume_nonce(self, nonce, ttl_s=3600.0, tenant=None):
        key = f"{self.prefix}nonce:{sha256_hex(nonce)}"
        ttl_ms = max(1, int(float(ttl_s) * 1000))
        if tenant is None:
            return bool(self._r.set(key, "1", nx=True, px=ttl_ms))
        r = self._nonce(keys=[key, self._index(str(tenant), "nonces")],
                        args=[ttl_ms, repr(float(self._clock())), self.tenant_max_nonces])
        if int(r[0]) == -1:
            raise QuotaExceeded("nonces", self.tenant_max_nonces, int(r[1]) / 1000.0)
        return int(r[0]) == 1

    def record_frames(self, session_id, hashes, ttl_s):
        hashes = list(dict.fromkeys(hashes))
        if not hashes:
            return 0
        return int(self._frames(
            keys=[self._key(session_id)],
            args=[repr(float(self._clock())), max(1, int(float(ttl_s) * 1000)),
                  self.tenant_max_frames, self.max_frames_per_session, session_id,
                  f"{self.prefix}frame:", f"{self.prefix}tenant:", *hashes]))

    def hit(self, name, window_s):
        n, pttl = self._hit(keys=[f"{self.prefix}count:{name}"],
                            args=[max(1, int(float(window_s) * 1000))])
        return Counter(int(n), max(0.0, int(pttl) / 1000.0))

    def delete(self, session_id):
        self._delete(keys=[self._key(session_id)], args=[f"{self.prefix}tenant:", session_id])

    def tenant_usage(self, tenant: str) -> dict[str, int]:
        """What ``tenant`` holds: ``{"sessions", "nonces", "frames"}`` (entries in its indexes,
        including ones past their time that a later write trims)."""
        return {what: int(self._r.zcard(self._index(tenant, what)))
                for what in ("sessions", "nonces", "frames")}

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
