"""Challenge sessions over HTTP: create, hand out the challenge, accept the frames, verify, sign,
answer the result.

The flow (``docs/challenge.md``, README "Screen-flash challenge"): the site's backend creates a
session with its API key (:meth:`SessionService.create`); the browser, holding only the session's
client token, fetches the challenge (:meth:`SessionService.fetch_challenge`), plays it while
filming, and uploads the frames (:meth:`SessionService.begin_upload`, then
:meth:`SessionService.accept`); the clip is verified off the event loop, in a pipeline process
(:meth:`SessionService.complete`, given the app's runner), and the outcome is signed
(:class:`facelive.audit.ResultSigner`) and stored; the backend fetches it with its API key
(:meth:`SessionService.result`). The browser is only ever told ``{"status": "received"}``.
The browser may cancel before uploading (:meth:`SessionService.cancel`): the session is then
``abandoned`` and every later call on it answers 410 ``session_abandoned``.

Tokens carry ``iss`` (``settings.issuer``) and ``aud`` (the creating API key's id, which
:meth:`SessionService.create` returns); demo sessions' tokens are signed with a key derived
from the signing key (:meth:`ResultSigner.derive`, ``"demo"``), never in the production JWK Set.

Client tokens are ``<session_id>.<256 random bits>``; the store keeps only their SHA-256
(:func:`~facelive.server.session_store.hash_token`), compared in constant time. The session id
prefix tells a token of *another* session (403 ``forbidden``, once that token is checked
against its own session) from a wrong one (401 ``unauthorized``).

Every refusal is an :class:`~facelive.server.errors.ApiError` with its code: 404
``session_not_found`` (unknown session), 410 ``session_expired``, 409 ``frames_submitted`` /
``nonce_used`` (frames or nonce twice), 401 ``unauthorized`` (missing or wrong key or token), 403
``forbidden`` (a client token used on another session), 410 ``session_abandoned`` (cancelled),
size limits (413) are the parser's. The session quota (429 ``too_many_sessions``) is counted
by the route with the rate limits (:func:`facelive.server.deps.limit_sessions`).

Frames re-sent from an earlier session: besides the colour check (an earlier clip follows
another sequence), the SHA-256 of every accepted frame is remembered in the store for
``result_ttl_s`` (:meth:`SessionStore.record_frames`: atomic across replicas); a frame seen
in another session makes the result ``spoof`` with the reason ``frames re-sent from an earlier
session`` and ``checks.fresh_frames`` false. That memory is as long as the result the frames
earned stays valid, so one clip cannot hold two valid results at once; longer would buy nothing
(re-encoding a clip changes every hash) and give one party more store to fill.

What a tenant (API key) holds in the store is bounded by its quotas (``key_max_sessions``
sessions and as many nonces, ``key_max_frame_hashes`` frame hashes, at most
``session_max_frames`` per session): a key at its session or nonce quota gets 429
``quota_exceeded`` with ``Retry-After`` while the other keys go on.

A signed result is never dropped silently: while the store fails its write, the process that
signed it holds it (and answers it at ``GET .../result``), retrying with backoff for as long as
the token is valid and putting back a session the store lost; the other processes answer 503
``store_unavailable`` with ``Retry-After`` while the store is down
(:meth:`SessionService.complete`).

Nothing here runs on the event loop's behalf for long: the store calls are made in threads by the
routes (Redis is network I/O), the verification in a pipeline process or a bounded thread.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from facelive.audit import DEFAULT_ISSUER, AuditError, ResultSigner, result_claims
from facelive.encoding import jsonable, sha256_hex
from facelive.server.errors import ApiError, retry_after
from facelive.server.session_store import (
    QuotaExceeded,
    Session,
    SessionAbandoned,
    SessionConflict,
    SessionExpired,
    SessionNotFound,
    SessionStore,
    SessionStoreError,
    StoreFull,
    hash_token,
    new_session_id,
    new_token,
    open_store,
)
from facelive.server.settings import Settings
from facelive.server.workers import ChallengeJob

__all__ = ["SessionService", "Accepted", "DEMO_KEY_ID", "NONCE_MARGIN_S", "config_problems",
           "sessions_enabled", "open_signer", "open_session_store", "bearer_challenge"]

log = logging.getLogger("facelive.server")

DEMO_KEY_ID = "demo"
"""The owner of sessions created by the demo page (API key ids are 12 hex digits: no clash)."""
NONCE_MARGIN_S = 60.0
"""A used nonce is kept this long past its session's expiry (then the session refuses any upload
with 410 itself); the margin covers clock differences between replicas."""
MAX_CREATE_BODY = 4096
"""Largest body of ``POST /v1/sessions`` (an optional ``{"mode": ...}``)."""
LOST_GRACE_S = 30.0
"""A clip still without a result this long after the longest its verification can take
(:meth:`SessionService.lost_after_s`) is reported lost (the process that verified it ended)."""
RESULT_RETRY_AFTER_S = 1
RESULT_RETRY_FIRST_S = 0.25
"""First wait before writing a result again when the store failed (then doubled)."""
RESULT_RETRY_MAX_S = 10.0
"""Longest wait between two tries to write a result."""
MAX_HELD_RESULTS = 10_000
"""Results one process holds at most while the store is down (about 2 kB each)."""
ABANDONED_MESSAGE = "the check was cancelled in the browser; create a new session"

bearer_challenge = {"WWW-Authenticate": 'Bearer realm="facelive"'}


# -- configuration -----------------------------------------------------------------------------

def sessions_enabled(settings: Settings, keys_enabled: bool) -> bool:
    """Whether the session API works: ``sessions`` on and API keys configured (or ``demo``)."""
    return bool(settings.sessions and (keys_enabled or settings.demo))


def config_problems(settings: Settings, keys_enabled: bool) -> list[str]:
    """Settings that cannot work together (``facelive serve`` exits with status 2 on them, and
    an app refuses to start): session options without API keys, or several processes or
    replicas without a shared store and a shared signing key."""
    problems: list[str] = []
    if not settings.sessions:
        return problems
    if not sessions_enabled(settings, keys_enabled):
        given = [flag for flag, v in (("--redis-url", settings.redis_url),
                                      ("--signing-key", settings.signing_key)) if v]
        if given:
            problems.append(f"{' and '.join(given)} configure the challenge sessions, which "
                            "need API keys (FACELIVE_API_KEYS or --api-keys-file) or --demo")
        return problems
    if settings.workers > 1 and not settings.redis_url:
        problems.append(f"the challenge sessions with --workers {settings.workers} need "
                        "--redis-url (each server process would keep its own sessions), or "
                        "--no-sessions")
    if (settings.workers > 1 or settings.redis_url) and not settings.signing_key:
        problems.append("the challenge sessions with --workers > 1 or --redis-url need "
                        "--signing-key FILE: every process and replica must sign with the same "
                        "key (a key generated in memory differs per process)")
    return problems


def open_signer(settings: Settings) -> ResultSigner:
    """The result signer: ``signing_key`` loaded, or created with mode 0600 when absent; a key
    generated in memory (with a warning) when no file is configured. A key file that can be
    neither loaded nor created (a missing folder, a key others can read...) raises
    :class:`RuntimeError` with the reason (start-up fails)."""
    if not settings.signing_key:
        log.warning("no --signing-key configured: session results are signed with a key "
                    "generated in memory; their tokens cannot be verified after a restart "
                    "(set FACELIVE_SIGNING_KEY=/path/key.pem to keep one)")
        return ResultSigner.generate()
    from pathlib import Path

    try:
        return ResultSigner.load_or_create(settings.signing_key)
    except AuditError as exc:
        error = exc
    if Path(settings.signing_key).is_file():
        # another server process may have created it between the check and the write
        try:
            return ResultSigner.load(settings.signing_key)
        except AuditError as exc:
            error = exc
    raise RuntimeError(f"--signing-key: {error.message}")


def open_session_store(settings: Settings, clock: Callable[[], float]) -> SessionStore:
    """The session store of the settings (Redis when ``redis_url``, else in memory), checked:
    an unreachable Redis raises :class:`RuntimeError` with the reason (start-up fails)."""
    store = open_store(settings.redis_url, clock=clock,
                       tenant_max_sessions=settings.key_max_sessions,
                       tenant_max_nonces=2 * settings.key_max_sessions,
                       tenant_max_frames=settings.key_max_frame_hashes,
                       max_frames_per_session=settings.session_max_frames)
    ping = getattr(store, "ping", None)
    if ping is not None:
        try:
            ping()
        except store_failures() as exc:
            store.close()
            raise RuntimeError(f"cannot reach the session store (Redis): "
                               f"{type(exc).__name__}: {exc}") from None
    return store


# -- the service -------------------------------------------------------------------------------

@dataclass
class Accepted:
    """An upload accepted for verification."""

    session: Session
    job: ChallengeJob
    frames_sha256: list[str]
    reused_frames: int


def store_failures() -> tuple[type[Exception], ...]:
    """The exceptions of an unreachable or failing session store: any
    :class:`redis.exceptions.RedisError` (connection, timeout, response errors) and the socket
    errors under it (:class:`ConnectionError`, :class:`TimeoutError`). ``redis`` is imported
    here, when an exception is being matched, as the session store imports it only for a Redis
    store."""
    from redis.exceptions import RedisError

    return (RedisError, ConnectionError, TimeoutError)


class SessionService:
    """The session API's logic over a :class:`SessionStore` and a :class:`ResultSigner`.

    The methods other than :meth:`complete` are blocking (a Redis store does network I/O): the
    routes call them in a worker thread. ``clock`` gives Unix seconds (the store's clock).
    """

    def __init__(self, settings: Settings, store: SessionStore, signer: ResultSigner,
                 clock: Callable[[], float] = time.time, keys_enabled: bool = True) -> None:
        self.settings = settings
        self.store = store
        self.signer = signer
        self.clock = clock
        self.keys_enabled = keys_enabled
        self.issuer = settings.issuer or DEFAULT_ISSUER
        self.demo_signer = signer.derive(DEMO_KEY_ID)
        """Signs the demo sessions' results; its key is published at ``/demo/jwks.json`` only."""
        self._held: OrderedDict[str, Session] = OrderedDict()
        self._held_lock = threading.Lock()

    def lost_after_s(self) -> float:
        """Seconds after an upload past which a clip still without a result is lost: a full
        verification queue ahead of it, each clip at its hard deadline plus the wait for a free
        process, then :data:`LOST_GRACE_S`."""
        s = self.settings
        turns = 1 + -(-s.verify_queue // s.verify_slots)
        return turns * (s.verify_timeout_s + s.job_timeout_s) + LOST_GRACE_S

    def signer_for(self, api_key_id: str) -> ResultSigner:
        """The key that signs the results of sessions created by ``api_key_id``: the demo's
        own key for demo sessions, else the production key."""
        return self.demo_signer if api_key_id == DEMO_KEY_ID else self.signer

    def close(self) -> None:
        self.store.close()

    @contextmanager
    def _store(self) -> Iterator[None]:
        """Store exceptions as API errors."""
        try:
            yield
        except SessionNotFound:
            raise ApiError(404, "session_not_found", "no such session") from None
        except SessionExpired:
            raise ApiError(410, "session_expired", "the session has expired") from None
        except SessionAbandoned:
            raise ApiError(410, "session_abandoned", ABANDONED_MESSAGE) from None
        except SessionConflict:
            raise ApiError(409, "frames_submitted",
                           "frames were already submitted for this session") from None
        except StoreFull:
            raise ApiError(503, "sessions_full", "too many open sessions; retry later",
                           retry_after(self.settings.retry_after_s)) from None
        except QuotaExceeded as exc:
            raise ApiError(429, "quota_exceeded", f"this API key holds {exc.limit} live "
                           f"{exc.what}, its quota; retry later (Retry-After)",
                           retry_after(exc.retry_after_s)) from None
        except SessionStoreError as exc:
            raise ApiError(exc.status, "session_error", str(exc)) from None
        except store_failures() as exc:
            log.error("session store unavailable: %s: %s", type(exc).__name__, exc)
            raise ApiError(503, "store_unavailable", "the session store is unavailable",
                           retry_after(self.settings.retry_after_s)) from None

    # -- backend: create ---------------------------------------------------------------------
    def create(self, key_id: str, mode: str = "flash") -> dict[str, Any]:
        """A new session for API key ``key_id`` (its session quota was counted by the route:
        :func:`facelive.server.deps.limit_sessions`): ``{"session_id", "client_token",
        "expires_at", "aud", "iss"}`` (``aud`` and ``iss``: the claims its result token will
        carry, for the backend to check)."""
        from facelive.challenge.sequence import new_challenge

        s = self.settings
        if mode not in ("flash", "steady"):
            raise ApiError(422, "invalid_field", "mode must be 'flash' or 'steady' (the weaker "
                           "non-flash mode, which a site must opt into)")
        with self._store():
            now = self.clock()
            challenge = new_challenge(mode=mode, now=now)  # type: ignore[arg-type]
            sid = new_session_id()
            token = f"{sid}.{new_token()}"
            expires_at = now + s.session_ttl_s
            self.store.create(sid, hash_token(token), key_id, challenge.to_dict(), expires_at,
                              meta={"mode": mode})
        return {"session_id": sid, "client_token": token, "expires_at": round(expires_at, 3),
                "aud": key_id, "iss": self.issuer}

    # -- browser: challenge and frames ---------------------------------------------------------
    def client_session(self, session_id: str, token: str | None) -> Session:
        """The session the client token opens: 401 without a token or with a wrong one, 403
        with a valid token of another session, 404 unknown, 410 expired."""
        if not token:
            raise ApiError(401, "unauthorized", "a client token is required "
                           "(Authorization: Bearer <client_token>)", bearer_challenge)
        with self._store():
            session = self.store.get(session_id)
            if session is None:
                raise ApiError(404, "session_not_found", "no such session")
            if not session.token_matches(token):
                owner = token.split(".", 1)[0] if "." in token else ""
                if owner and owner != session_id:
                    other = self.store.get(owner)
                    if other is not None and other.token_matches(token):
                        raise ApiError(403, "forbidden",
                                       "this client token belongs to another session")
                raise ApiError(401, "unauthorized", "invalid client token", bearer_challenge)
        if session.expired(self.clock()):
            raise ApiError(410, "session_expired", "the session has expired")
        return session

    def fetch_challenge(self, session_id: str, token: str | None) -> dict[str, Any]:
        """The challenge for the browser (the whole issued challenge is meant for it), and the
        session's upload limits; the first fetch starts the server's clip clock. 410
        ``session_abandoned`` once cancelled."""
        session = self.client_session(session_id, token)
        if session.abandoned_at is not None:
            raise ApiError(410, "session_abandoned", ABANDONED_MESSAGE)
        with self._store():
            self.store.mark_challenge_fetched(session_id)
        s = self.settings
        return {**session.challenge, "session_id": session_id,
                "expires_at": session.expires_at,
                "upload": {"max_frames": s.session_max_frames,
                           "max_bytes": s.session_max_body_bytes,
                           "max_frame_pixels": s.session_frame_max_pixels}}

    def begin_upload(self, session_id: str, token: str | None) -> Session:
        """The checks made before a frames upload's body is read: the client token, 410 when
        the session was cancelled, then 409 when frames were already submitted or the
        challenge was never fetched. (The store refuses frames after a cancel atomically too.)"""
        session = self.client_session(session_id, token)
        if session.abandoned_at is not None:
            raise ApiError(410, "session_abandoned", ABANDONED_MESSAGE)
        if session.frames_submitted_at is not None:
            raise ApiError(409, "frames_submitted",
                           "frames were already submitted for this session")
        if session.challenge_fetched_at is None:
            raise ApiError(409, "challenge_not_fetched",
                           "fetch the challenge before uploading frames")
        return session

    def cancel(self, session_id: str, token: str | None) -> dict[str, Any]:
        """The user stopped the check before uploading: mark the session ``abandoned`` (the
        result endpoint then answers 410 ``session_abandoned`` at once). Idempotent: a second
        cancel answers the same. 409 ``frames_submitted`` once frames were accepted (the
        verification goes on); 401/403/404/410 as :meth:`client_session`."""
        self.client_session(session_id, token)
        with self._store():
            self.store.mark_abandoned(session_id)
        return {"session_id": session_id, "status": "abandoned"}

    def accept(self, session: Session, frames: list[bytes], timestamps_ms: list[float],
               nonce: str) -> Accepted:
        """Take a parsed upload: the nonce must be this session's (422 ``invalid_nonce``) and
        unused (409 ``nonce_used``, atomic across replicas); the frames are marked submitted
        (409 ``frames_submitted`` the second time); every frame's hash is recorded."""
        expected = str(session.challenge.get("nonce", ""))
        if not hmac.compare_digest(nonce.encode(), expected.encode()):
            raise ApiError(422, "invalid_nonce", "the nonce is not this session's challenge's")
        hashes = [sha256_hex(f) for f in frames]
        with self._store():
            ttl = max(0.0, session.expires_at - self.clock()) + NONCE_MARGIN_S
            if not self.store.consume_nonce(nonce, ttl, tenant=session.api_key_id):
                raise ApiError(409, "nonce_used", "this challenge's nonce was already used")
            marked = self.store.mark_frames_submitted(session.session_id)
            reused = self.store.record_frames(session.session_id, hashes,
                                              ttl_s=self.settings.result_ttl_s)
        fetched = marked.challenge_fetched_at or session.challenge_fetched_at
        submitted = marked.frames_submitted_at or self.clock()
        elapsed_ms = max(0.0, (submitted - (fetched or submitted)) * 1000.0)
        job = ChallengeJob(frames=frames, timestamps_ms=list(timestamps_ms),
                           challenge=session.challenge, elapsed_ms=elapsed_ms)
        return Accepted(session=marked, job=job, frames_sha256=hashes, reused_frames=reused)

    # -- verification and the signed result --------------------------------------------------
    async def complete(self, accepted: Accepted,
                       verify: Callable[[ChallengeJob], Awaitable[dict[str, Any]]],
                       models: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Verify the clip with ``verify`` (the app's runner: a pipeline process or a bounded
        thread, with a deadline), sign the outcome and store ``{"decision", "token"}``. Any
        failure still stores a signed ``unknown`` with the reason; frames re-sent from an
        earlier session give ``spoof`` without a verification. The result is never dropped
        while the store is down: :meth:`_save_result`. Returns the claims."""
        t0 = time.perf_counter()
        session = accepted.session
        try:
            if accepted.reused_frames:  # decisive before any pixel: the result is spoof
                outcome = self._failed("", models, decision="spoof")
            else:
                outcome = await verify(accepted.job)
        except ApiError as exc:
            reason = ("verification timed out" if exc.code == "timeout"
                      else f"verification failed ({exc.code})")
            outcome = self._failed(reason, models)
        except Exception as exc:  # any failure still gives the client a signed result
            log.error("session %s: verification failed: %s", session.session_id,
                      type(exc).__name__, exc_info=exc)
            outcome = self._failed("verification failed (internal_error)", models)
        claims = self._claims(accepted, outcome)
        token = self.signer_for(session.api_key_id).sign_result(
            claims, ttl_s=self.settings.result_ttl_s)
        await self._save_result(session, {"decision": claims["decision"], "token": token})
        log.info("session %s (key %s): %s%s; %d frames, %.0f ms", session.session_id,
                 session.api_key_id, claims["decision"],
                 f" ({'; '.join(claims['reasons'])})" if claims["reasons"] else "",
                 len(accepted.frames_sha256), (time.perf_counter() - t0) * 1e3)
        return claims

    async def _save_result(self, session: Session, result: dict[str, Any]) -> bool:
        """Store ``result`` (:meth:`_write_result`). While the store fails, the result is held
        in this process (:meth:`result` answers it from here) and the write retried, waiting
        :data:`RESULT_RETRY_FIRST_S` doubling up to :data:`RESULT_RETRY_MAX_S` between tries,
        for as long as the token is valid (``result_ttl_s``); every failure and the outcome are
        logged. Returns whether it was stored."""
        import anyio

        sid = session.session_id
        give_up = time.monotonic() + self.settings.result_ttl_s
        delay, attempts = RESULT_RETRY_FIRST_S, 0
        while True:
            attempts += 1
            try:
                await anyio.to_thread.run_sync(self._write_result, session, result)
            except Exception as exc:  # the store's failure, whatever it is: hold and retry
                if attempts == 1:
                    self._hold(session, result)
                    log.error("session %s: cannot store the result (%s: %s); holding it in "
                              "this process and retrying", sid, type(exc).__name__, exc)
                if time.monotonic() + delay > give_up:
                    self._unhold(sid)
                    log.error("session %s: result dropped: the store failed for %d tries over "
                              "the token's %d s lifetime", sid, attempts,
                              self.settings.result_ttl_s)
                    return False
                try:
                    await anyio.sleep(delay)
                except anyio.get_cancelled_exc_class():
                    log.error("session %s: result not stored: the server is shutting down "
                              "with the store unavailable", sid)
                    raise
                delay = min(delay * 2, RESULT_RETRY_MAX_S)
                continue
            if attempts > 1:
                self._unhold(sid)
                log.warning("session %s: result stored after %d tries", sid, attempts)
            return True

    def _write_result(self, session: Session, result: dict[str, Any]) -> None:
        """Store ``result`` once: a result already there (an earlier try whose answer was lost)
        counts as stored; a session the store lost (restarted empty, evicted) is put back,
        marked submitted, with its result."""
        sid = session.session_id
        try:
            self.store.store_result(sid, result)
            return
        except SessionConflict:
            return
        except SessionNotFound:
            pass
        try:
            self.store.create(sid, session.client_token_hash, session.api_key_id,
                              session.challenge, session.expires_at, meta=session.meta)
        except SessionConflict:  # put back meanwhile (another try or replica)
            pass
        try:
            self.store.mark_frames_submitted(sid)
        except SessionStoreError:  # already marked, or expired: the result decides anyway
            pass
        try:
            self.store.store_result(sid, result)
        except SessionConflict:
            return

    def _hold(self, session: Session, result: dict[str, Any]) -> None:
        """Keep ``result`` in this process until it is stored (at most
        :data:`MAX_HELD_RESULTS`: past it the oldest is dropped, logged)."""
        with self._held_lock:
            self._held[session.session_id] = replace(session, result=result)
            while len(self._held) > MAX_HELD_RESULTS:
                old, _ = self._held.popitem(last=False)
                log.error("session %s: held result dropped (more than %d results wait for the "
                          "store)", old, MAX_HELD_RESULTS)

    def _unhold(self, session_id: str) -> None:
        with self._held_lock:
            self._held.pop(session_id, None)

    def held_count(self) -> int:
        """Results this process holds for the store."""
        with self._held_lock:
            return len(self._held)

    def held(self, session_id: str) -> Session | None:
        """The session with its result when this process holds a result the store has not
        taken yet, else ``None``."""
        with self._held_lock:
            return self._held.get(session_id)

    @staticmethod
    def _failed(reason: str, models: Callable[[], dict[str, Any]], decision: str = "unknown"
                ) -> dict[str, Any]:
        try:
            info = models()
        except Exception:  # already failing: the result is stored even without the versions
            info = {}
        return {"decision": decision, "reasons": [reason] if reason else [], "scores": {},
                "checks": {}, "threshold": info.get("threshold"), "models": info}

    def _claims(self, accepted: Accepted, outcome: dict[str, Any]) -> dict[str, Any]:
        session = accepted.session
        decision = str(outcome.get("decision", "unknown"))
        reasons = [str(r) for r in outcome.get("reasons") or []]
        checks = dict(outcome.get("checks") or {})
        checks["fresh_frames"] = accepted.reused_frames == 0
        if accepted.reused_frames:
            reasons.append("frames re-sent from an earlier session")
            decision = "spoof"
        if decision not in ("live", "spoof", "unknown"):
            decision = "unknown"
        return jsonable(result_claims(
            session_id=session.session_id, nonce=str(session.challenge.get("nonce", "")),
            challenge=session.challenge, frames_sha256=accepted.frames_sha256,
            scores=dict(outcome.get("scores") or {}), models=outcome.get("models") or {},
            threshold=outcome.get("threshold"), decision=decision, reasons=reasons,
            checks=checks, issuer=self.issuer, audience=session.api_key_id,
            extra={"mode": session.challenge.get("mode"),
                   "elapsed_ms": round(accepted.job.elapsed_ms, 1),
                   "latency_ms": outcome.get("latency_ms")}))

    # -- backend: the result -------------------------------------------------------------------
    def result(self, session_id: str, key_id: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, body, headers) for the backend: 200 ``{"session_id", "decision",
        "token"}``; 202 ``{"status": "pending" | "verifying"}`` with Retry-After; 403 for
        another key's session, 404, 410 ``session_abandoned`` (cancelled in the browser) or
        ``session_expired`` (expired without a result), 500 ``verification_lost``; 503
        ``store_unavailable`` with Retry-After while the store is down (a result this process
        holds is answered from here)."""
        session = self.held(session_id)
        if session is None:
            with self._store():
                session = self.store.get(session_id)
        if session is None:
            raise ApiError(404, "session_not_found", "no such session")
        if not hmac.compare_digest(session.api_key_id.encode(), key_id.encode()):
            raise ApiError(403, "forbidden", "this session was created with another API key")
        return self._result_of(session)

    def client_result(self, session_id: str, token: str | None
                      ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The demo page's own result (``--demo`` only; demo sessions only): an oracle, which
        is why a real site never gets one."""
        if not token:
            raise ApiError(401, "unauthorized", "a client token is required", bearer_challenge)
        session = self.held(session_id)
        if session is None:
            with self._store():
                session = self.store.get(session_id)
        if session is None:
            raise ApiError(404, "session_not_found", "no such session")
        if not session.token_matches(token):
            raise ApiError(401, "unauthorized", "invalid client token", bearer_challenge)
        if session.api_key_id != DEMO_KEY_ID:
            raise ApiError(403, "forbidden", "only demo sessions have a demo result")
        return self._result_of(session)

    def _result_of(self, session: Session) -> tuple[int, dict[str, Any], dict[str, str]]:
        now = self.clock()
        if session.result is not None:
            return 200, {"session_id": session.session_id,
                         "decision": session.result.get("decision"),
                         "token": session.result.get("token")}, {}
        if session.abandoned_at is not None:
            raise ApiError(410, "session_abandoned", ABANDONED_MESSAGE)
        pending = retry_after(RESULT_RETRY_AFTER_S)
        if session.frames_submitted_at is not None:
            if now - session.frames_submitted_at > self.lost_after_s():
                raise ApiError(500, "verification_lost",
                               "the clip's verification did not finish (the server process "
                               "verifying it ended); create a new session")
            return 202, {"status": "verifying"}, pending
        if session.expired(now):
            raise ApiError(410, "session_expired", "the session expired without an upload")
        return 202, {"status": "pending"}, pending
