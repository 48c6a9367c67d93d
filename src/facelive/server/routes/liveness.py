"""``POST /v1/liveness``: one image in, the typed :class:`~facelive.types.LivenessResult` out.

The route declares ``response_model=LivenessResult`` (the dataclass), so the OpenAPI schema is
generated from the one typed result; the body is its :meth:`~LivenessResult.to_dict`, the object
``facelive check --format json`` prints (``schema_version`` included), sent as is: no ``path``
(an upload has none), ``reason_code`` beside ``reason``, each test's verdict and threshold. The
endpoint's OpenAPI description (:data:`~facelive.server.schemas.LIVENESS_DESCRIPTION`) says that
one image does not prove presence and points to the screen-flash challenge. Nothing about an
image except its outcome and timings is logged.

Order of work, cheapest refusal first: readiness, the address's rate limit, the API key (when
keys are configured), the key's rate limit, the content type; then the body is read (with its
size, time and rate limits) *before* the request takes one of the ``max_concurrency``
processing slots, so slow uploads hold a connection but never a slot; then it is parsed (in a
thread when large) and the image is decoded and checked in a pipeline process (or, for a
pipeline object given to the app, a worker thread), so the event loop keeps answering health
checks and refusals while frames are processed.

Every refusal is raised as an :class:`~facelive.server.errors.ApiError` and answered by the app's
handler; the outcome (the decision, or the error code) and the latency are recorded by
:class:`~facelive.server.middleware.OutcomeMiddleware` (``dependencies=[count_requests]``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from facelive.server.deps import State, authorize, count_requests, limit_rate
from facelive.server.errors import outcome
from facelive.server.parsing import parse_payload, payload_kind, read_body
from facelive.server.schemas import (
    LIVENESS_DESCRIPTION,
    LIVENESS_REQUEST_BODY,
    LIVENESS_RESPONSE_MODEL,
    LIVENESS_RESPONSES,
)
from facelive.server.state import ServiceState

__all__ = ["router"]

router = APIRouter(tags=["liveness"])


@router.post("/v1/liveness", response_model=LIVENESS_RESPONSE_MODEL,
             responses=LIVENESS_RESPONSES, openapi_extra=LIVENESS_REQUEST_BODY,
             summary="Liveness decision for one image", description=LIVENESS_DESCRIPTION,
             dependencies=[Depends(count_requests)])
async def liveness(request: Request, state: State) -> Response:
    """Decide live, spoof or unknown for one camera frame (see the request body)."""
    state.ready_pipeline(retry_after=True)
    await limit_rate(request, state)
    key_id = authorize(request, state)
    await limit_rate(request, state, key_id, address=False)
    return await check_upload(request, state)


async def check_upload(request: Request, state: ServiceState) -> Response:
    """The image of an admitted request (its limits and key already checked) read within the
    body limits, parsed and checked in a slot; the result as JSON."""
    settings = state.settings
    kind = payload_kind(request)
    body = await read_body(request, settings.max_body_bytes, settings.body_timeout_s,
                           settings.body_min_rate, state.uploads)
    with state.admit():
        data = await parse_payload(kind, body, request.headers.get("content-type", ""))
        del body
        result = await state.check(data)
    state.metrics.observe_result(result)
    outcome(request).value = result.decision
    return JSONResponse(result.to_dict())
