"""The liveness web service: ``POST /v1/liveness``, health, readiness, metrics and the web client.

>>> app = create_app(Settings())                 # loads the default pipeline at start-up
>>> app = create_app(Settings(), pipeline=pipe)  # or serve an existing pipeline (tests, embedding)

The API is stateless: every request carries one image and gets the object that
``facelive check --format json`` prints. Requests are admitted by a non-blocking semaphore of
``max_concurrency`` slots; when every slot is taken the request is refused at once with 503 and
``Retry-After`` (no unbounded queue). Decoding and the pipeline run in a worker thread so that the
event loop keeps answering health checks and refusals while frames are processed.

Images are held in memory only: the request body is read by this module (never by Starlette's
form parser, whose ``SpooledTemporaryFile`` spills uploads over 1 MB to a temporary file on disk)
and nothing about an image except its outcome and timings is logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

import facelive
from facelive.errors import FaceliveError, ImageError
from facelive.imageio import decode_image
from facelive.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from facelive.server.metrics import Metrics
from facelive.server.settings import Settings

__all__ = ["create_app", "create_app_from_env", "load_pipeline", "ApiError", "STATIC_DIR"]

log = logging.getLogger("facelive.server")
STATIC_DIR = Path(__file__).resolve().parent / "static"
IMAGE_FIELD = "image"

# HTTP status for each image error code of facelive.errors (the pipeline's ``error_code``).
IMAGE_ERROR_STATUS = {
    "empty_image": 400,
    "image_too_large": 413,
    "unsupported_image": 422,
    "truncated_image": 422,
    "image_too_small": 422,
    "invalid_image": 422,
}


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.code, self.message, self.headers)


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


# -- OpenAPI models (documentation; responses are the pipeline's dicts, unchanged) -----------
class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail


class TestOutcome(BaseModel):
    score: float | None
    status: Literal["ok", "no_face", "error", "timeout"]
    ms: float
    error: str | None = None


class FaceBoxModel(BaseModel):
    x: int
    y: int
    w: int
    h: int
    confidence: float


class LivenessResult(BaseModel):
    """The object ``facelive check --format json`` prints (``path`` is null here)."""

    path: str | None
    decision: Literal["live", "spoof", "unknown"]
    score: float | None
    threshold: float | None
    tests: dict[str, TestOutcome]
    face: FaceBoxModel | None
    face_ms: float
    ms: float
    error: str | None
    reason: str | None


def _errors(*pairs: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorResponse, "description": desc} for status, desc in pairs}


LIVENESS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": LivenessResult, "description": "The liveness result (decision live, spoof "
          "or unknown; unknown with a reason when no face was found)."},
    **_errors(
        (400, "Malformed request: empty body (`empty_body`), empty image (`empty_image`), "
              "malformed JSON (`invalid_json`), bad base64 (`invalid_base64`), malformed "
              "multipart (`invalid_multipart`), bad Content-Length (`invalid_content_length`)."),
        (413, "Request body over the size limit (`body_too_large`) or image over the pixel "
              "limit (`image_too_large`)."),
        (415, "Content type other than multipart/form-data, application/json, image/* or "
              "application/octet-stream (`unsupported_media_type`)."),
        (422, "No `image` field (`missing_field`), `image` not a base64 string "
              "(`invalid_field`), or not a usable image: `unsupported_image`, "
              "`truncated_image`, `image_too_small`, `invalid_image`."),
        (500, "Unexpected server error (`internal_error`); the server keeps serving."),
        (503, "All processing slots busy (`overloaded`, with Retry-After) or models not "
              "loaded (`not_ready`)."),
    ),
}

LIVENESS_REQUEST_BODY = {
    "requestBody": {
        "required": True,
        "description": "One image: a multipart upload in the field `image`, a JSON object "
                       "`{\"image\": \"<base64>\"}` (a `data:` URL is accepted), or the raw "
                       "encoded image (JPEG, PNG, BMP, WebP or TIFF) as the body.",
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": [IMAGE_FIELD],
                "properties": {IMAGE_FIELD: {"type": "string", "format": "binary"}}}},
            "application/json": {"schema": {
                "type": "object", "required": [IMAGE_FIELD],
                "properties": {IMAGE_FIELD: {"type": "string", "format": "byte"}}}},
            "image/*": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


# -- state ---------------------------------------------------------------------------------
@dataclass
class ServiceState:
    settings: Settings
    pipeline: Any | None = None
    owns_pipeline: bool = False
    load_error: str | None = None
    load_ms: float | None = None
    in_flight: int = 0
    metrics: Metrics = field(default_factory=Metrics)
    limiter: anyio.CapacityLimiter | None = None


def load_pipeline(settings: Settings) -> Any:
    """Build the :class:`facelive.pipeline.Pipeline` the settings describe (loads the models).

    Raises :class:`FaceliveError` (code ``model_error``) with a clear message when it cannot.
    """
    from facelive.pipeline import Pipeline

    try:
        return Pipeline(list(settings.tests) if settings.tests else None,
                        fusion=None if settings.no_fusion else "default",
                        threshold=settings.threshold, missing=settings.missing,
                        budget_ms=settings.budget_ms)
    except FaceliveError as exc:
        raise FaceliveError(f"cannot load the models: {exc.message}", code="model_error") from None
    except (KeyError, TypeError, ImportError, OSError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise FaceliveError(f"cannot load the models: {msg}", code="model_error") from None


# -- request body --------------------------------------------------------------------------
async def read_body(request: Request, limit: int) -> bytes:
    """Read the body; 413 from Content-Length, or as soon as the stream passes ``limit``."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
            if n < 0:
                raise ValueError
        except ValueError:
            raise ApiError(400, "invalid_content_length",
                           f"Content-Length {declared[:40]!r} is not a byte count") from None
        if n > limit:
            raise ApiError(413, "body_too_large",
                           f"request body is {n} bytes; the limit is {limit} bytes")
    buf = bytearray()
    async for chunk in request.stream():
        buf += chunk
        if len(buf) > limit:
            raise ApiError(413, "body_too_large",
                           f"request body is over the limit of {limit} bytes")
    return bytes(buf)


def parse_multipart(body: bytes, content_type: str) -> bytes:
    """The bytes of the ``image`` part of a multipart/form-data body (parsed in memory)."""
    from python_multipart.exceptions import MultipartParseError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "invalid_multipart", "multipart/form-data without a boundary")
    header_field, header_value = bytearray(), bytearray()
    headers: dict[bytes, bytes] = {}
    current: dict[str, Any] = {"data": None}
    found: list[bytes] = []

    def on_part_begin() -> None:
        headers.clear()
        current["data"] = None

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_field).strip().lower()] = bytes(header_value).strip()
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, disp = parse_options_header(headers.get(b"content-disposition", b""))
        if disp.get(b"name") == IMAGE_FIELD.encode() and not found:
            current["data"] = bytearray()  # only the image part is kept; others are skipped

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if current["data"] is not None:
            current["data"].extend(data[start:end])

    def on_part_end() -> None:
        if current["data"] is not None:
            found.append(bytes(current["data"]))
            current["data"] = None

    parser = MultipartParser(boundary, {
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
        "on_part_end": on_part_end,
    })
    try:
        parser.write(body)
        parser.finalize()
    except (MultipartParseError, ValueError) as exc:
        raise ApiError(400, "invalid_multipart", f"malformed multipart body ({exc})") from None
    if not found:
        raise ApiError(422, "missing_field",
                       f"multipart body has no complete '{IMAGE_FIELD}' field")
    return found[0]


def parse_json(body: bytes) -> bytes:
    """The decoded bytes of ``{"image": "<base64 or data: URL>"}``."""
    try:
        obj = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"malformed JSON ({exc})") from None
    if not isinstance(obj, dict) or IMAGE_FIELD not in obj:
        raise ApiError(422, "missing_field",
                       f'expected a JSON object {{"{IMAGE_FIELD}": "<base64>"}}')
    value = obj[IMAGE_FIELD]
    if not isinstance(value, str):
        raise ApiError(422, "invalid_field",
                       f"'{IMAGE_FIELD}' must be a base64 string, not {type(value).__name__}")
    if value.startswith("data:"):
        head, sep, value = value.partition(",")
        if not sep or ";base64" not in head:
            raise ApiError(400, "invalid_base64", "data: URL is not base64-encoded")
    try:
        data = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(400, "invalid_base64", f"'{IMAGE_FIELD}' is not valid base64 ({exc})") \
            from None
    return data


async def read_image_payload(request: Request, settings: Settings) -> bytes:
    """The encoded image bytes of a liveness request, whatever its accepted content type."""
    ctype = request.headers.get("content-type", "")
    media = ctype.split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        kind = "multipart"
    elif media == "application/json" or media.endswith("+json"):
        kind = "json"
    elif media.startswith("image/") or media == "application/octet-stream":
        kind = "raw"
    else:
        shown = media or "none"
        raise ApiError(415, "unsupported_media_type",
                       f"content type {shown[:60]!r} is not accepted; send multipart/form-data "
                       f"(field '{IMAGE_FIELD}'), application/json or the image itself")
    body = await read_body(request, settings.max_body_bytes)
    if not body:
        raise ApiError(400, "empty_body", "the request body is empty")
    if kind == "multipart":
        data = parse_multipart(body, ctype)
    elif kind == "json":
        data = parse_json(body)
    else:
        data = body
    if not data:
        raise ApiError(400, "empty_image", "the image is empty")
    return data


def _process(pipeline: Any, data: bytes, settings: Settings) -> dict[str, Any]:
    """Decode (with the pixel limit) and run the pipeline; raises ApiError for bad images."""
    try:
        image = decode_image(data, max_pixels=settings.max_pixels)
    except ImageError as exc:
        raise ApiError(IMAGE_ERROR_STATUS.get(exc.code, 422), exc.code, exc.message) from None
    del data
    result = pipeline.check(image)
    if result.get("error"):
        code = str(result.get("error_code") or "invalid_image")
        raise ApiError(IMAGE_ERROR_STATUS.get(code, 422), code, str(result["error"]))
    return result


# -- the app -------------------------------------------------------------------------------
def create_app(settings: Settings | None = None, pipeline: Any | None = None) -> FastAPI:
    """Build the service.

    ``pipeline``: an object with ``check(image) -> dict`` and ``info() -> dict`` (a
    :class:`facelive.pipeline.Pipeline`, or a light stand-in in tests); the caller keeps
    ownership. Without it, the app loads :func:`load_pipeline` at start-up and closes it at
    shutdown; when that fails, start-up fails with the reason, unless
    ``settings.allow_missing_models``, in which case ``/readyz`` and ``/v1/liveness`` answer
    503 ``not_ready`` with the reason.
    """
    settings = settings or Settings()
    state = ServiceState(settings=settings, pipeline=pipeline)
    if pipeline is not None:
        state.load_ms = getattr(pipeline, "load_ms", None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.limiter = anyio.CapacityLimiter(settings.max_concurrency)
        if state.pipeline is None:
            t0 = time.perf_counter()
            try:
                state.pipeline = await anyio.to_thread.run_sync(load_pipeline, settings)
                state.owns_pipeline = True
                state.load_ms = (time.perf_counter() - t0) * 1e3
            except FaceliveError as exc:
                if not settings.allow_missing_models:
                    log.error("%s", exc.message)
                    raise RuntimeError(exc.message) from None
                state.load_error = exc.message
                log.warning("%s; serving with /readyz = 503 (--allow-missing-models)",
                            exc.message)
        state.metrics.ready.set(1 if state.pipeline is not None else 0)
        if state.load_ms is not None:
            state.metrics.model_load.set(state.load_ms / 1e3)
        try:
            yield
        finally:
            if state.owns_pipeline and state.pipeline is not None:
                state.pipeline.close()
                state.pipeline = None

    app = FastAPI(
        title="facelive",
        version=facelive.__version__,
        description="Face liveness (presentation-attack detection) for web cameras. "
                    "Every error answers `{\"error\": {\"code\", \"message\"}}`.",
        lifespan=lifespan,
    )
    app.state.facelive = state
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"],
                           expose_headers=["Retry-After"])

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        code = codes.get(exc.status_code, f"http_{exc.status_code}")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", "; ".join(
            f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()))

    @app.exception_handler(Exception)
    async def _server_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s: %s", request.url.path, type(exc).__name__,
                  exc_info=exc)
        return error_response(500, "internal_error", "unexpected server error")

    @app.post("/v1/liveness", responses=LIVENESS_RESPONSES, response_model=None,
              openapi_extra=LIVENESS_REQUEST_BODY, summary="Liveness decision for one image",
              tags=["liveness"])
    async def liveness(request: Request) -> Response:
        """Decide live, spoof or unknown for one camera frame (see the request body)."""
        t0 = time.perf_counter()
        outcome = "internal_error"
        try:
            if state.pipeline is None:
                raise ApiError(503, "not_ready", state.load_error or "the models are not loaded",
                               {"Retry-After": str(max(settings.retry_after_s, 1))})
            # Non-blocking semaphore: the check and the increment happen without an await in
            # between, so on the single event loop no two requests can take the last slot.
            if state.in_flight >= settings.max_concurrency:
                raise ApiError(503, "overloaded",
                               f"all {settings.max_concurrency} processing slots are busy; "
                               "retry later", {"Retry-After": str(settings.retry_after_s)})
            state.in_flight += 1
            state.metrics.in_flight.inc()
            try:
                data = await read_image_payload(request, settings)
                result = await anyio.to_thread.run_sync(
                    _process, state.pipeline, data, settings, limiter=state.limiter)
            finally:
                state.in_flight -= 1
                state.metrics.in_flight.dec()
            state.metrics.observe_result(result)
            outcome = str(result.get("decision", "unknown"))
            return JSONResponse(result)
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

    @app.get("/healthz", tags=["operations"], summary="The process is alive")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The models are loaded",
             responses=_errors((503, "Models not loaded (`not_ready`), with the reason.")))
    async def readyz() -> Response:
        if state.pipeline is None:
            return error_response(503, "not_ready",
                                  state.load_error or "the models are not loaded yet")
        return JSONResponse({"status": "ready", "load_ms": state.load_ms,
                             "tests": [t.get("name") for t in state.pipeline.info()["tests"]]})

    @app.get("/v1/info", tags=["liveness"], summary="Tests, fusion, threshold and limits",
             responses=_errors((503, "Models not loaded (`not_ready`).")))
    async def info() -> Response:
        if state.pipeline is None:
            return error_response(503, "not_ready", state.load_error or "not ready")
        return JSONResponse({
            "version": facelive.__version__,
            "pipeline": state.pipeline.info(),
            "limits": {"max_body_bytes": settings.max_body_bytes,
                       "max_pixels": settings.max_pixels,
                       "max_concurrency": settings.max_concurrency},
        })

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics",
             response_class=Response)
    async def metrics() -> Response:
        return Response(state.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob: mediastream:; connect-src 'self'; frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(self)",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` / several workers: settings from ``FACELIVE_*``."""
    return create_app(Settings.from_env())
