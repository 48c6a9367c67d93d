"""The demo page's endpoints, served only with ``--demo`` (never in production).

None of them takes an API key, so none can leak to the page, and each is rate-limited per client
address like the API:

- ``POST /demo/sessions`` creates a challenge session server-side under the key id ``demo``;
- ``GET /demo/sessions/{id}/result`` gives the page its own demo session's decision and token
  (client token; demo sessions only). It is an oracle, which is exactly what the real API never
  offers a browser: it exists so that the demo can show something;
- ``POST /demo/liveness`` is ``POST /v1/liveness`` without the API key, for the page's
  single-image loop, so that ``--demo`` works when API keys are configured too;
- ``GET /demo/jwks.json`` publishes the demo tokens' key. Demo tokens (``aud: "demo"``) are
  signed with the demo's own key (:attr:`SessionService.demo_signer`, derived from the signing
  key), never in ``/.well-known/jwks.json``: a production verifier refuses them whatever their
  claims say.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from facelive.server.deps import (
    State,
    bearer_token,
    count_refusals,
    count_requests,
    limit_rate,
    limit_sessions,
)
from facelive.server.routes.liveness import check_upload
from facelive.server.routes.sessions import NO_STORE
from facelive.server.sessions import DEMO_KEY_ID

__all__ = ["router"]

router = APIRouter(tags=["demo"], include_in_schema=False)
# Refusals (raised ApiError) are counted like the session API's (OutcomeMiddleware).
COUNT_REFUSALS = [Depends(count_refusals)]


@router.post("/demo/sessions", dependencies=COUNT_REFUSALS)
async def create_demo_session(request: Request, state: State) -> Response:
    service = state.require_sessions()
    await limit_rate(request, state)
    await limit_sessions(request, state, DEMO_KEY_ID, address=True)
    out = await anyio.to_thread.run_sync(service.create, DEMO_KEY_ID, "flash")
    state.metrics.sessions.labels("created").inc()
    return JSONResponse(out, status_code=201, headers=NO_STORE)


@router.get("/demo/sessions/{session_id}/result", dependencies=COUNT_REFUSALS)
async def demo_result(session_id: str, request: Request, state: State) -> Response:
    service = state.require_sessions()
    await limit_rate(request, state)
    status, body, headers = await anyio.to_thread.run_sync(
        service.client_result, session_id, bearer_token(request))
    return JSONResponse(body, status_code=status, headers={**headers, **NO_STORE})


@router.get("/demo/jwks.json")
async def demo_jwks(state: State) -> Response:
    """The public key of the demo tokens (not a production key)."""
    service = state.require_sessions()
    return JSONResponse(service.demo_signer.jwks(), headers=NO_STORE)


@router.post("/demo/liveness", dependencies=[Depends(count_requests)])
async def demo_liveness(request: Request, state: State) -> Response:
    """One image, as ``POST /v1/liveness`` checks it (same limits, slots and result), without
    the API key: readiness, the address's rate limit, the body, a slot, the check."""
    state.ready_pipeline(retry_after=True)
    await limit_rate(request, state)
    return await check_upload(request, state)
