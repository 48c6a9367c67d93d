"""API errors: :class:`ApiError`, the JSON error body, image error statuses, exception handlers.

Every error the service answers is ``{"error": {"code", "message"}}``
(:class:`facelive.server.schemas.ErrorResponse`) with an HTTP status.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

__all__ = ["ApiError", "IMAGE_ERROR_STATUS", "error_response", "image_error",
           "register_exception_handlers"]

log = logging.getLogger("facelive.server")

# HTTP status for each image error code of facelive.errors (a result's ``error_code``).
IMAGE_ERROR_STATUS = {
    "empty_image": 400,
    "image_too_large": 413,
    "unsupported_image": 422,
    "truncated_image": 422,
    "image_too_small": 422,
    "image_aspect_ratio": 422,
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


def image_error(code: str | None, message: str) -> ApiError:
    """The API error for an unusable image (422 unless :data:`IMAGE_ERROR_STATUS` says else)."""
    code = code or "invalid_image"
    return ApiError(IMAGE_ERROR_STATUS.get(code, 422), code, message)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed"}
    code = codes.get(exc.status_code, f"http_{exc.status_code}")
    return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return error_response(422, "invalid_request", "; ".join(
        f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg')}" for e in exc.errors()))


async def _server_error(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s: %s", request.url.path, type(exc).__name__, exc_info=exc)
    return error_response(500, "internal_error", "unexpected server error")


def register_exception_handlers(app: FastAPI) -> None:
    """Answer every error, routed or not, with the JSON error body."""
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
