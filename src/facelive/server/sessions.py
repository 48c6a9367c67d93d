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

Client tokens are ``<session_id>.<256 random bits>``; the store keeps only their SHA-256
(:func:`~facelive.server.session_store.hash_token`), compared in constant time. The session id
prefix tells a token of *another* session (403 ``forbidden``, once that token is checked
against its own session) from a wrong one (401 ``unauthorized``).

Every refusal is an :class:`~facelive.server.errors.ApiError` with its code: 404
``session_not_found`` (unknown session), 410 ``session_expired``, 409 ``frames_submitted`` /
``nonce_used`` (frames or nonce twice), 401 ``unauthorized`` (missing or wrong key or token), 403
``forbidden`` (a client token used on another session), 429 ``too_many_sessions`` with
``Retry-After`` (too many sessions per key or client address); size limits (413) are the
parser's.

Frames re-sent from an earlier session: besides the colour check (an earlier clip follows
another sequence), the SHA-256 of every accepted frame is remembered in the store for
:data:`FRAME_MEMORY_S` (``consume_nonce("frame:<hash>")``: atomic across replicas); a frame seen
in another session makes the result ``spoof`` with the reason ``frames re-sent from an earlier
session`` and ``checks.fresh_frames`` false.

Nothing here runs on the event loop's behalf for long: the store calls are made in threads by the
routes (Redis is network I/O), the verification in a pipeline process or a bounded thread.
"""

from __future__ import annotations

import hmac
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from facelive.audit import ResultSigner, result_claims
from facelive.encoding import jsonable, sha256_hex
from facelive.server.errors import ApiError, retry_after
from facelive.server.session_store import (
    Session,
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

__all__ = ["SessionService", "Accepted", "DEMO_KEY_ID", "FRAME_MEMORY_S", "config_problems",
           "sessions_enabled", "open_signer", "open_session_store", "bearer_challenge"]

log = logging.getLogger("facelive.server")

DEMO_KEY_ID = "demo"
"""The owner of sessions created by the demo page (API key ids are 12 hex digits: no clash)."""
FRAME_MEMORY_S = 24 * 3600.0
"""How long the hashes of accepted frames are remembered to catch frames re-sent later."""
MAX_CREATE_BODY = 4096
"""Largest body of ``POST /v1/sessions`` (an optional ``{"mode": ...}``)."""
LOST_GRACE_S = 30.0
"""A clip still without a result this long after ``verify_timeout_s`` (+ the wait for a free
process) is reported lost (the process that verified it ended)."""
RESULT_RETRY_AFTER_S = 1

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
    generated in memory (with a warning) when no file is configured."""
    if not settings.signing_key:
        log.warning("no --signing-key configured: session results are signed with a key "
                    "generated in memory; their tokens cannot be verified after a restart "
                    "(set FACELIVE_SIGNING_KEY=/path/key.pem to keep one)")
        return ResultSigner.generate()
    from facelive.audit import AuditError

    try:
        return ResultSigner.load_or_create(settings.signing_key)
    except AuditError:
        # another server process may have created it between the check and the write
        return ResultSigner.load(settings.signing_key)


def open_session_store(settings: Settings, clock: Callable[[], float]) -> SessionStore:
    """The session store of the settings (Redis when ``redis_url``, else in memory), checked:
    an unreachable Redis raises :class:`RuntimeError` with the reason (start-up fails)."""
    store = open_store(settings.redis_url, clock=clock)
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
        except SessionConflict:
            raise ApiError(409, "frames_submitted",
                           "frames were already submitted for this session") from None
        except StoreFull:
            raise ApiError(503, "sessions_full", "too many open sessions; retry later",
                           retry_after(self.settings.retry_after_s)) from None
        except SessionStoreError as exc:
            raise ApiError(exc.status, "session_error", str(exc)) from None
        except store_failures() as exc:
            log.error("session store unavailable: %s: %s", type(exc).__name__, exc)
            raise ApiError(503, "store_unavailable", "the session store is unavailable",
                           retry_after(self.settings.retry_after_s)) from None

    # -- backend: create ---------------------------------------------------------------------
    def create(self, key_id: str, address: str, mode: str = "flash") -> dict[str, Any]:
        """A new session for API key ``key_id``, asked from client address ``address`` (its
        rate-limit bucket): ``{"session_id", "client_token", "expires_at"}``."""
        from facelive.challenge.sequence import new_challenge

        s = self.settings
        if mode not in ("flash", "steady"):
            raise ApiError(422, "invalid_field", "mode must be 'flash' or 'steady' (the weaker "
                           "non-flash mode, which a site must opt into)")
        with self._store():
            for name, limit, what in ((f"addr:{address}", s.sessions_per_address,
                                       "client address"),
                                      (f"key:{key_id}", s.sessions_per_key, "API key")):
                if limit <= 0:
                    continue
                counter = self.store.hit(name, s.session_window_s)
                if counter.count > limit:
                    raise ApiError(429, "too_many_sessions",
                                   f"more than {limit} sessions from this {what} in "
                                   f"{s.session_window_s:g} s; retry after "
                                   f"{math.ceil(counter.reset_in_s)} s",
                                   retry_after(counter.reset_in_s))
            now = self.clock()
            challenge = new_challenge(mode=mode, now=now)  # type: ignore[arg-type]
            sid = new_session_id()
            token = f"{sid}.{new_token()}"
            expires_at = now + s.session_ttl_s
            self.store.create(sid, hash_token(token), key_id, challenge.to_dict(), expires_at,
                              meta={"mode": mode})
        return {"session_id": sid, "client_token": token, "expires_at": round(expires_at, 3)}

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
        session's upload limits; the first fetch starts the server's clip clock."""
        session = self.client_session(session_id, token)
        with self._store():
            self.store.mark_challenge_fetched(session_id)
        s = self.settings
        return {**session.challenge, "session_id": session_id,
                "expires_at": session.expires_at,
                "upload": {"max_frames": s.session_max_frames,
                           "max_bytes": s.session_max_body_bytes,
                           "max_frame_pixels": s.session_frame_max_pixels}}

    def begin_upload(self, session_id: str, token: str | None) -> Session:
        """The checks made before a frames upload's body is read: the client token, then 409
        when frames were already submitted or the challenge was never fetched."""
        session = self.client_session(session_id, token)
        if session.frames_submitted_at is not None:
            raise ApiError(409, "frames_submitted",
                           "frames were already submitted for this session")
        if session.challenge_fetched_at is None:
            raise ApiError(409, "challenge_not_fetched",
                           "fetch the challenge before uploading frames")
        return session

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
            ttl = session.expires_at - self.clock() + self.store.retain_s
            if not self.store.consume_nonce(nonce, max(ttl, 60.0)):
                raise ApiError(409, "nonce_used", "this challenge's nonce was already used")
            marked = self.store.mark_frames_submitted(session.session_id)
            reused = sum(1 for h in dict.fromkeys(hashes)
                         if not self.store.consume_nonce(f"frame:{h}", FRAME_MEMORY_S))
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
        failure still stores a signed ``unknown`` with the reason. Returns the claims."""
        import anyio

        t0 = time.perf_counter()
        session = accepted.session
        try:
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
        token = self.signer.sign_result(claims, ttl_s=self.settings.result_ttl_s)
        try:
            await anyio.to_thread.run_sync(self._store_result, session.session_id,
                                           {"decision": claims["decision"], "token": token})
        except ApiError as exc:
            log.error("session %s: cannot store the result: %s", session.session_id,
                      exc.message)
        log.info("session %s (key %s): %s%s; %d frames, %.0f ms", session.session_id,
                 session.api_key_id, claims["decision"],
                 f" ({'; '.join(claims['reasons'])})" if claims["reasons"] else "",
                 len(accepted.frames_sha256), (time.perf_counter() - t0) * 1e3)
        return claims

    def _store_result(self, session_id: str, result: dict[str, Any]) -> None:
        with self._store():
            self.store.store_result(session_id, result)

    @staticmethod
    def _failed(reason: str, models: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            info = models()
        except Exception:  # already failing: the result is stored even without the versions
            info = {}
        return {"decision": "unknown", "reasons": [reason], "scores": {}, "checks": {},
                "threshold": info.get("threshold"), "models": info}

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
            checks=checks,
            extra={"aud": session.api_key_id, "mode": session.challenge.get("mode"),
                   "elapsed_ms": round(accepted.job.elapsed_ms, 1),
                   "latency_ms": outcome.get("latency_ms")}))

    # -- backend: the result -------------------------------------------------------------------
    def result(self, session_id: str, key_id: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, body, headers) for the backend: 200 ``{"session_id", "decision",
        "token"}``; 202 ``{"status": "pending" | "verifying"}`` with Retry-After; 403 for
        another key's session, 404, 410 expired without a result, 500 ``verification_lost``."""
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
        pending = retry_after(RESULT_RETRY_AFTER_S)
        if session.frames_submitted_at is not None:
            s = self.settings
            if now - session.frames_submitted_at > (s.verify_timeout_s + s.job_timeout_s
                                                    + LOST_GRACE_S):
                raise ApiError(500, "verification_lost",
                               "the clip's verification did not finish (the server process "
                               "verifying it ended); create a new session")
            return 202, {"status": "verifying"}, pending
        if session.expired(now):
            raise ApiError(410, "session_expired", "the session expired without an upload")
        return 202, {"status": "pending"}, pending
