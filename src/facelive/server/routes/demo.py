"""The challenge demo's endpoints, served only with ``--demo`` (never in production).

``POST /demo/sessions`` creates a session server-side under the key id ``demo`` (no API key is
involved, so none can leak to the page), rate-limited per client address like any session;
``GET /demo/sessions/{id}/result`` gives the page its own demo session's decision and token
(client token; demo sessions only). That second endpoint is an oracle, which is exactly what the
real API never offers a browser: it exists so that the demo can show something.
"""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from facelive.server.deps import (
    State,
    address_bucket,
    bearer_token,
    count_refusals,
    limit_rate,
)
from facelive.server.routes.sessions import NO_STORE
from facelive.server.sessions import DEMO_KEY_ID

__all__ = ["router"]

# Refusals (raised ApiError) are counted like the session API's (OutcomeMiddleware).
router = APIRouter(tags=["demo"], include_in_schema=False,
                   dependencies=[Depends(count_refusals)])


@router.post("/demo/sessions")
async def create_demo_session(request: Request, state: State) -> Response:
    service = state.require_sessions()
    limit_rate(request, state)
    out = await anyio.to_thread.run_sync(service.create, DEMO_KEY_ID, address_bucket(request),
                                         "flash")
    state.metrics.sessions.labels("created").inc()
    return JSONResponse(out, status_code=201, headers=NO_STORE)


@router.get("/demo/sessions/{session_id}/result")
async def demo_result(session_id: str, request: Request, state: State) -> Response:
    service = state.require_sessions()
    limit_rate(request, state)
    status, body, headers = await anyio.to_thread.run_sync(
        service.client_result, session_id, bearer_token(request))
    return JSONResponse(body, status_code=status, headers={**headers, **NO_STORE})
