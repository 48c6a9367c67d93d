"""Operations: ``/healthz`` (liveness probe), ``/readyz`` (readiness probe), ``/v1/info`` and
``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

import facelive
from facelive.server.deps import AppSettings, State
from facelive.server.errors import ApiError
from facelive.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from facelive.server.schemas import error_responses

__all__ = ["router"]

router = APIRouter()


@router.get("/healthz", tags=["operations"], summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["operations"], summary="The models are loaded",
            responses=error_responses((503, "Models not loaded (`not_ready`), with the reason.")))
async def readyz(state: State) -> Response:
    try:
        pipeline = state.ready_pipeline("the models are not loaded yet")
    except ApiError as exc:
        return exc.response()
    return JSONResponse({"status": "ready", "load_ms": state.load_ms,
                         "tests": [t.get("name") for t in pipeline.info()["tests"]]})


@router.get("/v1/info", tags=["liveness"], summary="Tests, fusion, threshold and limits",
            responses=error_responses((503, "Models not loaded (`not_ready`).")))
async def info(state: State, settings: AppSettings) -> Response:
    try:
        pipeline = state.ready_pipeline("not ready")
    except ApiError as exc:
        return exc.response()
    return JSONResponse({
        "version": facelive.__version__,
        "pipeline": pipeline.info(),
        "limits": {"max_body_bytes": settings.max_body_bytes,
                   "max_pixels": settings.max_pixels,
                   "max_concurrency": settings.max_concurrency},
    })


@router.get("/metrics", tags=["operations"], summary="Prometheus metrics",
            response_class=Response)
async def metrics(state: State) -> Response:
    return Response(state.metrics.render(), media_type=METRICS_CONTENT_TYPE)
