"""Operations: ``/healthz`` (liveness probe), ``/readyz`` (readiness probe), ``/v1/info`` and
``/metrics``.

``/v1/info`` (thresholds, limits) and ``/metrics`` (every tenant's traffic added up) need an
operator key, never a tenant's API key (:func:`~facelive.server.deps.require_operator`;
Prometheus sends it with ``authorization: {credentials_file: ...}``): a tenant key is 403, no or
a wrong key 401. With no operator key configured they are open while no API key is configured
either, and closed (403) otherwise. The two probes stay open (they tell nothing but up/ready
and the test names).
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

import facelive
from facelive.server.deps import AppSettings, OperatorKey, State
from facelive.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from facelive.server.schemas import error_responses

__all__ = ["router"]

router = APIRouter()

OPERATOR_ERRORS = (
    (401, "Operator keys are configured and the request has none, or a wrong one "
          "(`unauthorized`)."),
    (403, "A tenant's API key instead of an operator key, or no operator key is configured "
          "while API keys are (`forbidden`)."),
)


@router.get("/healthz", tags=["operations"], summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], summary="The models are loaded",
            responses=error_responses((503, "Models not loaded (`not_ready`), with the reason.")))
async def readyz(state: State) -> Response:
    pipeline = state.ready_pipeline("the models are not loaded yet")
    return JSONResponse({"status": "ready", "load_ms": state.load_ms,
                         "tests": [t.get("name") for t in pipeline.info()["tests"]]})


@router.get("/v1/info", tags=["operations"], summary="Tests, fusion, threshold and limits",
            responses=error_responses(*OPERATOR_ERRORS, (503, "Models not loaded (`not_ready`).")))
async def info(state: State, settings: AppSettings, key: OperatorKey) -> Response:
    pipeline = state.ready_pipeline("not ready")
    return JSONResponse({
        "version": facelive.__version__,
        "pipeline": pipeline.info(),
        "limits": {"max_body_bytes": settings.max_body_bytes,
                   "max_pixels": settings.max_pixels,
                   "max_aspect_ratio": settings.max_aspect_ratio,
                   "max_concurrency": settings.max_concurrency,
                   "job_timeout_s": settings.job_timeout_s,
                   "pipeline_processes": state.pool.size if state.pool is not None else 0},
    })


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics",
            response_class=Response,
            responses={200: {"description": "Prometheus text exposition format.",
                             "content": {METRICS_CONTENT_TYPE.split(";")[0]: {
                                 "schema": {"type": "string"}}}},
                       **error_responses(*OPERATOR_ERRORS)})
async def metrics(state: State, key: OperatorKey) -> Response:
    return Response(state.metrics.render(), media_type=METRICS_CONTENT_TYPE)
