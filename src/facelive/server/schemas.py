"""The API's documented shapes: error bodies, the OpenAPI ``responses`` tables, the request body.

The success body of ``POST /v1/liveness`` is not modelled here: the route declares
:class:`facelive.types.LivenessResult` (a dataclass) as its ``response_model``, so the OpenAPI
schema is generated from the one typed result the pipeline returns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

__all__ = ["ErrorDetail", "ErrorResponse", "IMAGE_FIELD", "LIVENESS_REQUEST_BODY",
           "LIVENESS_RESPONSES", "error_responses"]

IMAGE_FIELD = "image"
"""The multipart field / JSON key that carries the image."""


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    """Every error: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


def error_responses(*pairs: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """An OpenAPI ``responses`` table of :class:`ErrorResponse` bodies: (status, description)."""
    return {status: {"model": ErrorResponse, "description": desc} for status, desc in pairs}


LIVENESS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The liveness result (decision live, spoof or unknown; unknown with a "
                         "reason when no face was found)."},
    **error_responses(
        (400, "Malformed request: empty body (`empty_body`), empty image (`empty_image`), "
              "malformed or too deeply nested JSON (`invalid_json`), bad base64 "
              "(`invalid_base64`), malformed multipart (`invalid_multipart`), bad "
              "Content-Length (`invalid_content_length`), both Transfer-Encoding and "
              "Content-Length (`invalid_request`)."),
        (401, "API keys are configured and the request has no valid "
              "`Authorization: Bearer <key>` (`unauthorized`)."),
        (408, "The body did not arrive within the body timeout, or slower than the minimum "
              "rate (`body_timeout`)."),
        (413, "Request body over the size limit (`body_too_large`) or image over the pixel "
              "limit (`image_too_large`)."),
        (415, "Content type other than multipart/form-data, application/json, image/* or "
              "application/octet-stream (`unsupported_media_type`)."),
        (422, "No `image` field (`missing_field`), `image` not a base64 string "
              "(`invalid_field`), or not a usable image: `unsupported_image`, "
              "`truncated_image`, `image_too_small`, `image_aspect_ratio` (long side over "
              "`max_aspect_ratio` times the short side), `invalid_image`."),
        (429, "Rate limit of the client address or API key reached (`rate_limited`, with "
              "Retry-After)."),
        (500, "Unexpected server error (`internal_error`); the server keeps serving."),
        (503, "All processing slots busy (`overloaded`, with Retry-After), models not loaded "
              "(`not_ready`), or the image took longer than the job timeout (`timeout`) or "
              "more memory than the process limit (`memory_limit`): its processing was "
              "stopped."),
    ),
}

LIVENESS_REQUEST_BODY: dict[str, Any] = {
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
