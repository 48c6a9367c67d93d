"""API errors: :class:`ApiError`, the JSON error body, image error statuses, exception handlers.

Every error the service answers is ``{"error": {"code", "message"}}``
(:class:`facelive.server.schemas.ErrorResponse`) with an HTTP status. Routes *raise*
:class:`ApiError`; the handler that :func:`register_exception_handlers` installs answers it and
notes its code as the request's :class:`Outcome`, which
:class:`~facelive.server.middleware.OutcomeMiddleware` records in the metrics.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

__all__ = ["ApiError", "IMAGE_ERROR_STATUS", "Outcome", "error_response", "image_error",
           "internal_error", "outcome", "register_exception_handlers", "retry_after"]

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


def retry_after(seconds: float) -> dict[str, str]:
    """The ``Retry-After`` header for a wait of ``seconds``.

    Parameters
    ----------
    seconds : float
        How long the client should wait.

    Returns
    -------
    dict
        ``{"Retry-After": "<whole seconds>"}``: rounded up, at least 1.
    """
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error body ``{"error": {"code", "message"}}`` with an HTTP status.

    Parameters
    ----------
    status : int
        The HTTP status.
    code : str
        The machine-readable error code.
    message : str
        What went wrong, for a person.
    headers : dict or None
        Extra response headers (``Retry-After``, ``WWW-Authenticate``).

    Returns
    -------
    JSONResponse
        The response.
    """
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


def internal_error() -> JSONResponse:
    """The answer to an unexpected exception: 500 ``internal_error`` (no detail is given)."""
    return error_response(500, "internal_error", "unexpected server error")


@dataclass
class Outcome:
    """What one request came to, recorded by
    :class:`~facelive.server.middleware.OutcomeMiddleware` when it ends.

    ``counted`` says which metrics count it (set by a route dependency,
    :func:`facelive.server.deps.count_requests` or :func:`~facelive.server.deps.count_refusals`;
    None: none); ``value`` is the decision of an answered request or the error code of a refused
    one (``internal_error`` until something says otherwise); ``refused`` is True when an
    :class:`ApiError` answered it.
    """

    counted: Literal["requests", "sessions"] | None = None
    value: str = "internal_error"
    refused: bool = False


def outcome(request: Request) -> Outcome:
    """The :class:`Outcome` of a request, kept in ``request.state`` (created on first use).

    Parameters
    ----------
    request : Request
        The request being answered.

    Returns
    -------
    Outcome
        The request's record, shared with the middleware that created it.
    """
    if not hasattr(request.state, "outcome"):
        request.state.outcome = Outcome()
    return request.state.outcome


def image_error(code: str | None, message: str) -> ApiError:
    """The API error for an unusable image (422 unless :data:`IMAGE_ERROR_STATUS` says else)."""
    code = code or "invalid_image"
    return ApiError(IMAGE_ERROR_STATUS.get(code, 422), code, message)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    record = outcome(request)
    record.value, record.refused = exc.code, True
    return exc.response()


async def _client_disconnect(request: Request, exc: Exception) -> JSONResponse:
    outcome(request).value = "client_disconnected"
    return error_response(400, "client_disconnected", "the client went away")


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
    return internal_error()


def register_exception_handlers(app: FastAPI) -> None:
    """Answer every error, routed or not, with the JSON error body.

    :class:`ApiError` gets its own status and code, a client that went away 400
    ``client_disconnected``, an unknown route or method 404 / 405, invalid parameters 422
    ``invalid_request``; anything else 500 ``internal_error`` (answered by
    :class:`~facelive.server.middleware.OutcomeMiddleware` for the routes, by Starlette's
    outermost handler for the middleware).

    Parameters
    ----------
    app : FastAPI
        The app.
    """
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _server_error)
