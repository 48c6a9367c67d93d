"""The challenge session API: ``POST /v1/sessions``, ``GET .../challenge``,
``POST .../frames``, ``POST .../cancel``, ``GET .../result`` and ``GET /.well-known/jwks.json``.

The backend endpoints (create, result) take the site's API key; the browser endpoints
(challenge, frames, cancel) take the session's client token, never an API key. The frames upload is
answered ``202 {"status": "received"}`` as soon as it is accepted (the browser never learns the
verdict); the clip is verified afterwards, off the event loop (:meth:`ServiceState.verify_clip`:
a verification process with a budget and a hard deadline), in a place of the verification queue
(:class:`~facelive.server.verification.VerifyQueue`, taken at upload: 503 ``verify_busy`` or 429
``too_many_verifications`` before the session is used), never in ``/v1/liveness``'s
``max_concurrency`` slots. Store calls run in worker threads (a Redis store does
network I/O). The logic is :class:`facelive.server.sessions.SessionService`. Refusals are
raised as :class:`~facelive.server.errors.ApiError`; the app's handler answers them and
:class:`~facelive.server.middleware.OutcomeMiddleware` counts them (``refused_<code>``) for the
routes declared with ``count_refusals``.
"""

from __future__ import annotations

import logging
from typing import Any

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from facelive.server.deps import (
    State,
    bearer_token,
    count_refusals,
    limit_rate,
    limit_sessions,
    session_key,
)
from facelive.server.errors import ApiError
from facelive.server.parsing import parse_frames_upload, parse_small_json, read_body
from facelive.server.schemas import (
    CANCEL_RESPONSES,
    CHALLENGE_RESPONSES,
    CREATE_SESSION_REQUEST_BODY,
    CREATE_SESSION_RESPONSES,
    FRAMES_REQUEST_BODY,
    FRAMES_RESPONSES,
    RESULT_RESPONSES,
    FramesReceived,
    SessionCancelled,
    SessionCreated,
    SessionResult,
    error_responses,
)
from facelive.server.sessions import MAX_CREATE_BODY, Accepted, SessionService
from facelive.server.state import ServiceState
from facelive.server.verification import Ticket
from facelive.server.workers import ChallengeJob

__all__ = ["router", "complete_in_background", "NO_STORE"]

log = logging.getLogger("facelive.server")
router = APIRouter(tags=["sessions"])

NO_STORE = {"Cache-Control": "no-store"}
COUNT_REFUSALS = [Depends(count_refusals)]


@router.post("/v1/sessions", status_code=201, response_model=SessionCreated,
             responses=CREATE_SESSION_RESPONSES, openapi_extra=CREATE_SESSION_REQUEST_BODY,
             summary="Create a challenge session (site backend, API key)",
             dependencies=COUNT_REFUSALS)
async def create_session(request: Request, state: State) -> Response:
    """Create a session; give `session_id` and `client_token` to the browser (the API key
    never leaves the backend); keep `session_id`, `aud` and `iss` to check the result token.
    Optional JSON body `{"mode": "flash" | "steady"}`."""
    service = state.require_sessions()
    await limit_rate(request, state)
    key_id = session_key(request, state)
    await limit_rate(request, state, key_id, address=False)
    s = state.settings
    body = await read_body(request, MAX_CREATE_BODY, s.body_timeout_s, s.body_min_rate,
                           state.uploads)
    mode = parse_small_json(body).get("mode", "flash")
    if not isinstance(mode, str):
        raise ApiError(422, "invalid_field", "mode must be a string")
    await limit_sessions(request, state, key_id)
    out = await anyio.to_thread.run_sync(service.create, key_id, mode)
    state.metrics.sessions.labels("created").inc()
    return JSONResponse(out, status_code=201, headers=NO_STORE)


@router.get("/v1/sessions/{session_id}/challenge", responses=CHALLENGE_RESPONSES,
            summary="The session's challenge (browser, client token)",
            dependencies=COUNT_REFUSALS)
async def get_challenge(session_id: str, request: Request, state: State) -> Response:
    """The nonce and the colour sequence to play (the first fetch starts the server's clock
    for the clip)."""
    service = state.require_sessions()
    await limit_rate(request, state)
    out = await anyio.to_thread.run_sync(service.fetch_challenge, session_id,
                                         bearer_token(request))
    return JSONResponse(out, headers=NO_STORE)


async def complete_in_background(state: ServiceState, service: SessionService,
                                 accepted: Accepted, ticket: Ticket) -> None:
    """Verify the accepted clip in ``ticket``'s place of the verification queue (given back as
    soon as the verification ends), then sign and store the result (retried while the store
    is down: :meth:`SessionService.complete`)."""
    queue = state.verifications
    assert queue is not None

    async def verify(job: ChallengeJob) -> dict[str, Any]:
        return await queue.run(ticket, lambda: state.verify_clip(job))

    try:
        claims: dict[str, Any] = await service.complete(accepted, verify, state.pipeline_info)
        state.metrics.sessions.labels(str(claims.get("decision"))).inc()
    except Exception as exc:  # complete() stores a result whatever happens; this is a bug
        log.error("session %s: %s", accepted.session.session_id, type(exc).__name__,
                  exc_info=exc)
    finally:
        queue.release(ticket)


@router.post("/v1/sessions/{session_id}/frames", status_code=202,
             response_model=FramesReceived, responses=FRAMES_RESPONSES,
             openapi_extra=FRAMES_REQUEST_BODY,
             summary="Upload the filmed frames (browser, client token)",
             dependencies=COUNT_REFUSALS)
async def post_frames(session_id: str, request: Request, state: State) -> Response:
    """Multipart: `frames` (JPEG files, capture order), `timestamps` (JSON list, ms since the
    challenge started), `nonce`. Answered 202 `{"status": "received"}` without the verdict."""
    service = state.require_sessions()
    state.ready_pipeline(retry_after=True)
    await limit_rate(request, state)
    session = await anyio.to_thread.run_sync(service.begin_upload, session_id,
                                             bearer_token(request))
    queue = state.verifications
    assert queue is not None
    queue.admit(session.api_key_id, take=False)  # a full queue refuses before the body is read
    s = state.settings
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type", "send the frames as "
                       "multipart/form-data (fields 'frames', 'timestamps', 'nonce')")
    body = await read_body(request, s.session_max_body_bytes, s.body_timeout_s,
                           s.body_min_rate, state.uploads)
    upload = await parse_frames_upload(body, content_type, s.session_max_frames)
    del body
    ticket = queue.admit(session.api_key_id)  # before the nonce is used: a refusal may be retried
    try:
        accepted = await anyio.to_thread.run_sync(service.accept, session, upload.frames,
                                                  upload.timestamps_ms, upload.nonce)
    except BaseException:  # refused, failed or cancelled: the place is given back, re-raised
        queue.release(ticket)
        raise
    state.spawn(complete_in_background(state, service, accepted, ticket))
    state.metrics.sessions.labels("uploaded").inc()
    return JSONResponse({"status": "received"}, status_code=202, headers=NO_STORE)


@router.post("/v1/sessions/{session_id}/cancel", response_model=SessionCancelled,
             responses=CANCEL_RESPONSES,
             summary="Cancel the check before uploading (browser, client token)",
             dependencies=COUNT_REFUSALS)
async def cancel_session(session_id: str, request: Request, state: State) -> Response:
    """The user stopped the check: the session becomes `abandoned`, its result answers 410
    `session_abandoned` at once and its challenge and upload are refused. Idempotent (200
    `{"session_id", "status": "abandoned"}` each time); 409 `frames_submitted` once frames were
    accepted."""
    service = state.require_sessions()
    await limit_rate(request, state)
    out = await anyio.to_thread.run_sync(service.cancel, session_id, bearer_token(request))
    state.metrics.sessions.labels("abandoned").inc()
    return JSONResponse(out, headers=NO_STORE)


@router.get("/v1/sessions/{session_id}/result", response_model=SessionResult,
            responses=RESULT_RESPONSES,
            summary="The session's decision and signed token (site backend, API key)",
            dependencies=COUNT_REFUSALS)
async def get_result(session_id: str, request: Request, state: State) -> Response:
    """200 `{"session_id", "decision", "token"}` once verified; 202 `{"status": "pending"}`
    (no upload yet) or `{"status": "verifying"}` with Retry-After before that."""
    service = state.require_sessions()
    await limit_rate(request, state)
    key_id = session_key(request, state)
    await limit_rate(request, state, key_id, address=False)
    status, body, headers = await anyio.to_thread.run_sync(service.result, session_id, key_id)
    return JSONResponse(body, status_code=status, headers={**headers, **NO_STORE})


@router.get("/.well-known/jwks.json", tags=["sessions"],
            summary="Public keys of the result tokens (JWK Set, RFC 7517)",
            responses=error_responses((503, "The session API is off (`sessions_disabled`).")))
async def jwks(state: State) -> Response:
    """The Ed25519 public key(s) that verify the result tokens, for any JOSE library."""
    service = state.require_sessions()
    return JSONResponse(service.signer.jwks(), headers={"Cache-Control": "public, max-age=300"})
