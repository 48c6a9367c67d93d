"""``POST /v1/liveness``: one image in, the typed :class:`~facelive.types.LivenessResult` out.

The route declares ``response_model=LivenessResult`` (the dataclass), so the OpenAPI schema is
generated from the one typed result; the body is its :meth:`~LivenessResult.to_dict`, the object
``facelive check --format json`` prints, sent as is. Decoding and the pipeline run in a worker
thread so that the event loop keeps answering health checks and refusals while frames are
processed. Nothing about an image except its outcome and timings is logged.
"""

from __future__ import annotations

import logging
import time

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.requests import ClientDisconnect

from facelive.errors import ImageError
from facelive.imageio import decode_image
from facelive.server.deps import State
from facelive.server.errors import ApiError, error_response, image_error
from facelive.server.parsing import read_image_payload
from facelive.server.schemas import LIVENESS_REQUEST_BODY, LIVENESS_RESPONSES
from facelive.server.state import LivenessPipeline
from facelive.types import LivenessResult

__all__ = ["router", "check_image"]

log = logging.getLogger("facelive.server")
router = APIRouter(tags=["liveness"])


def check_image(pipeline: LivenessPipeline, data: bytes, max_pixels: int) -> LivenessResult:
    """Decode (with the pixel limit) and run the pipeline; :class:`ApiError` for bad images."""
    try:
        image = decode_image(data, max_pixels=max_pixels)
    except ImageError as exc:
        raise image_error(exc.code, exc.message) from None
    del data
    result = pipeline.check(image)
    if result.error:
        raise image_error(result.error_code, result.error)
    return result


@router.post("/v1/liveness", response_model=LivenessResult, responses=LIVENESS_RESPONSES,
             openapi_extra=LIVENESS_REQUEST_BODY, summary="Liveness decision for one image")
async def liveness(request: Request, state: State) -> Response:
    """Decide live, spoof or unknown for one camera frame (see the request body)."""
    t0 = time.perf_counter()
    outcome = "internal_error"
    settings = state.settings
    try:
        pipeline = state.ready_pipeline(retry_after=True)
        with state.admit():
            data = await read_image_payload(request, settings.max_body_bytes)
            result = await anyio.to_thread.run_sync(
                check_image, pipeline, data, settings.max_pixels, limiter=state.limiter)
        state.metrics.observe_result(result)
        outcome = result.decision
        return JSONResponse(result.to_dict())
    except ApiError as exc:
        outcome = exc.code
        return exc.response()
    except ClientDisconnect:
        outcome = "client_disconnected"
        return error_response(400, "client_disconnected", "the client went away")
    except Exception as exc:
        log.error("unexpected error in /v1/liveness: %s", type(exc).__name__, exc_info=exc)
        return error_response(500, "internal_error", "unexpected server error")
    finally:
        state.metrics.observe_request(outcome, time.perf_counter() - t0)
