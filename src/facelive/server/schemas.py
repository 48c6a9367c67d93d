"""The API's documented shapes: error bodies, the OpenAPI ``responses`` tables, the request body.

The success body of ``POST /v1/liveness`` is not modelled twice: the route declares
:class:`facelive.types.LivenessResult` (a dataclass, :data:`LIVENESS_RESPONSE_MODEL`) as its
``response_model``, so the OpenAPI schema (its keys, their descriptions, the reason codes and
``schema_version``) is generated from the one typed result the pipeline returns; this module only
adds the endpoint's description (:data:`LIVENESS_DESCRIPTION`) and its error table.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from facelive.types import REASON_CODES, SCHEMA_VERSION, LivenessResult

__all__ = ["ErrorDetail", "ErrorResponse", "IMAGE_FIELD", "LIVENESS_DESCRIPTION",
           "LIVENESS_REQUEST_BODY", "LIVENESS_RESPONSE_MODEL", "LIVENESS_RESPONSES",
           "error_responses", "FRAMES_FIELD", "TIMESTAMPS_FIELD",
           "NONCE_FIELD", "SessionCreated", "SessionResult", "SessionPending", "FramesReceived",
           "SessionCancelled", "CANCEL_RESPONSES",
           "CREATE_SESSION_RESPONSES", "CHALLENGE_RESPONSES", "FRAMES_RESPONSES",
           "RESULT_RESPONSES", "FRAMES_REQUEST_BODY", "CREATE_SESSION_REQUEST_BODY"]

IMAGE_FIELD = "image"
"""The multipart field / JSON key that carries the image."""
FRAMES_FIELD = "frames"
"""Multipart field of a session's frames upload: one JPEG per part, in capture order."""
TIMESTAMPS_FIELD = "timestamps"
"""Multipart field: a JSON list, one number per frame, ms since the challenge started."""
NONCE_FIELD = "nonce"
"""Multipart field: the challenge's nonce."""


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    """Every error: ``{"error": {"code", "message"}}``."""

    error: ErrorDetail


def error_responses(*pairs: tuple[int, str]) -> dict[int | str, dict[str, Any]]:
    """An OpenAPI ``responses`` table of :class:`ErrorResponse` bodies: (status, description)."""
    return {status: {"model": ErrorResponse, "description": desc} for status, desc in pairs}


LIVENESS_RESPONSE_MODEL = LivenessResult
"""The 200 body of ``POST /v1/liveness``: the typed result, whose schema OpenAPI shows."""

LIVENESS_DESCRIPTION = (
    "Decide live, spoof or unknown for one camera frame. The answer is the object "
    "`facelive check --format json` prints (`schema_version` \"" + SCHEMA_VERSION + "\"): "
    "`decision`, the final `score` and `threshold`, each test's own `verdict`, `score` and "
    "`threshold`, the face box and `face_count`, timings. `decision: \"unknown\"` is not an "
    "error: `reason_code` (" + ", ".join(f"`{c}`" for c in REASON_CODES) + ") says why, and "
    "`reason` in words; several faces always give `multiple_faces` (one person per check).\n\n"
    "**One image does not prove presence.** The answer says whether this picture looks like a "
    "live face rather than a print or a replayed screen, not that anyone is in front of a "
    "camera now: a tampered browser or a virtual camera can send any picture. When the answer "
    "decides who gets in, use the screen-flash challenge (`POST /v1/sessions`; see "
    "docs/integration-web.md and docs/challenge.md)."
)
"""The OpenAPI description of ``POST /v1/liveness``."""

LIVENESS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The liveness result: `decision` live, spoof or unknown; unknown with "
                         "`reason_code` and `reason`."},
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
        (413, "Request body over the size limit (`body_too_large`), image over the pixel "
              "limit (`image_too_large`), or a multipart body of more than 8 parts "
              "(`too_many_parts`) or with a part's headers over 4 KiB or 8 headers "
              "(`part_headers_too_large`), refused while it is parsed."),
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
              "stopped; or the rate-limit counters (Redis) are unreachable "
              "(`store_unavailable`, with Retry-After)."),
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


# -- challenge sessions ----------------------------------------------------------------------

class SessionCreated(BaseModel):
    """``POST /v1/sessions``: give ``session_id`` and ``client_token`` to the browser; keep
    ``session_id``, ``aud`` and ``iss`` to check the result token."""

    session_id: str
    client_token: str
    expires_at: float
    """Unix time (s) after which the session answers 410."""
    aud: str = Field(description="The `aud` claim of this session's result token: the API key "
                     "id (first 12 hex digits of the key's SHA-256), the same for every session "
                     "of this key. Check it when verifying the token.")
    iss: str = Field(description="The `iss` claim of the result token (the server's `--issuer` "
                     "URL). Check it when verifying the token.")


class SessionCancelled(BaseModel):
    """``POST /v1/sessions/{id}/cancel``: the session is abandoned (its result answers 410
    ``session_abandoned``)."""

    session_id: str
    status: str = "abandoned"


class FramesReceived(BaseModel):
    """``POST /v1/sessions/{id}/frames``: the upload was accepted (never the verdict)."""

    status: str = "received"


class SessionPending(BaseModel):
    """``GET /v1/sessions/{id}/result`` before the result exists (202, with Retry-After)."""

    status: str
    """``pending`` (no frames yet) or ``verifying``."""


class SessionResult(BaseModel):
    """``GET /v1/sessions/{id}/result``: the decision and its signed record."""

    session_id: str
    decision: str
    """``live``, ``spoof`` or ``unknown``."""
    token: str
    """Compact JWS (EdDSA / Ed25519) of the result; verify it with ``/.well-known/jwks.json``."""


_AUTH = (401, "Missing or wrong `Authorization: Bearer` credential (`unauthorized`).")
_CLIENT_AUTH = (401, "Missing or wrong client token (`unauthorized`).")
_RATE = (429, "Request rate limit of the client address or API key (`rate_limited`, with "
              "Retry-After).")
_DISABLED = (503, "No API key is configured (`sessions_disabled`), the session store is full "
                  "or unreachable (`sessions_full`, `store_unavailable`), or every processing "
                  "slot is busy (`overloaded`); with Retry-After where retrying helps.")

CREATE_SESSION_RESPONSES: dict[int | str, dict[str, Any]] = error_responses(
    (400, "Malformed JSON body (`invalid_json`)."),
    _AUTH,
    (408, "The body did not arrive in time (`body_timeout`)."),
    (413, "Body over 4 KiB (`body_too_large`)."),
    (422, "Unknown `mode` (`invalid_field`)."),
    (429, "Too many sessions for this API key or client address in the window "
          "(`too_many_sessions`), or a request rate limit (`rate_limited`); with Retry-After."),
    _DISABLED,
)
CHALLENGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The challenge: `nonce`, `mode`, `steps` (each `colour` sRGB, "
                         "`start_ms`, `duration_ms`, `name`), `total_ms`, `capture_ms`, "
                         "`tail_ms`, `lead_ms`, `created_at`, and `session_id`, `expires_at`, "
                         "`upload` (`max_frames`, `max_bytes`)."},
    **error_responses(
        _CLIENT_AUTH,
        (403, "A valid client token of another session (`forbidden`)."),
        (404, "Unknown session (`session_not_found`)."),
        (410, "The session has expired (`session_expired`) or was cancelled "
              "(`session_abandoned`)."),
        _RATE,
        _DISABLED,
    ),
}
FRAMES_RESPONSES: dict[int | str, dict[str, Any]] = error_responses(
    (400, "Malformed multipart (`invalid_multipart`), empty body (`empty_body`)."),
    _CLIENT_AUTH,
    (403, "A valid client token of another session (`forbidden`)."),
    (404, "Unknown session (`session_not_found`)."),
    (408, "The body did not arrive in time (`body_timeout`)."),
    (409, "Frames already submitted (`frames_submitted`), nonce already used (`nonce_used`), "
          "or the challenge was never fetched (`challenge_not_fetched`)."),
    (410, "The session has expired (`session_expired`) or was cancelled (`session_abandoned`)."),
    (413, "Body over the limit (`body_too_large`), more frames than allowed "
          "(`too_many_frames`), more than 8 other parts (`too_many_parts`), a part's headers "
          "over 4 KiB or 8 headers (`part_headers_too_large`), `timestamps` over 64 KiB or "
          "`nonce` over 1 KiB (`field_too_large`); refused while parsing, before any frame is "
          "decoded."),
    (415, "Not multipart/form-data (`unsupported_media_type`)."),
    (422, "A field missing (`missing_field`) or malformed (`invalid_field`: `timestamps` "
          "not a JSON list of numbers, one per frame, strictly increasing, 0 to 3,600,000 ms; "
          "`nonce` not 1 to 256 printable ASCII characters; an empty frame), or a nonce that "
          "is not this session's (`invalid_nonce`)."),
    (429, "Request rate limit (`rate_limited`), or this API key already has `verify_per_key` "
          "clips waiting or being verified (`too_many_verifications`); with Retry-After."),
    (503, "No API key is configured (`sessions_disabled`), the session store is unreachable "
          "(`store_unavailable`), the pipeline is not ready (`not_ready`), or every "
          "verification slot and queue place is taken (`verify_busy`: the session is not "
          "used, send the same frames again); with Retry-After where retrying helps."),
)
CANCEL_RESPONSES: dict[int | str, dict[str, Any]] = error_responses(
    _CLIENT_AUTH,
    (403, "A valid client token of another session (`forbidden`)."),
    (404, "Unknown session (`session_not_found`)."),
    (409, "Frames were already submitted (`frames_submitted`): the verification goes on."),
    (410, "The session has expired (`session_expired`)."),
    (429, "Request rate limit (`rate_limited`)."),
    _DISABLED,
)
RESULT_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": SessionPending, "description": "No result yet: `pending` (the browser has "
                                                   "not uploaded) or `verifying`; poll again "
                                                   "after Retry-After."},
    **error_responses(
        _AUTH,
        (403, "The session was created with another API key (`forbidden`)."),
        (404, "Unknown session (`session_not_found`)."),
        (410, "The session expired without a result (`session_expired`), or the user "
              "cancelled it in the browser (`session_abandoned`)."),
        _RATE,
        (500, "The verification was lost (`verification_lost`: the server process ended "
              "while verifying)."),
        _DISABLED,
    ),
}

_FRAMES_SCHEMA = {
    "type": "object", "required": [FRAMES_FIELD, TIMESTAMPS_FIELD, NONCE_FIELD],
    "properties": {
        FRAMES_FIELD: {"type": "array", "items": {"type": "string", "format": "binary"},
                       "description": "JPEG frames in capture order (one part each)."},
        TIMESTAMPS_FIELD: {"type": "string", "description": "JSON list of numbers: each "
                                                            "frame's ms since the challenge "
                                                            "started."},
        NONCE_FIELD: {"type": "string", "description": "The challenge's nonce."},
    },
}
FRAMES_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {"required": True,
                    "content": {"multipart/form-data": {"schema": _FRAMES_SCHEMA}}}}
CREATE_SESSION_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"mode": {
            "type": "string", "enum": ["flash", "steady"], "default": "flash",
            "description": "`steady`: the non-flash mode, one colour, no change; much weaker "
                           "(a replayed video is not caught by the colour check). Opt in "
                           "only for users who cannot see flashing colours."}}}}}}}
