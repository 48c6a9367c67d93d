"""Reading a liveness request: the body (size-limited) and the image in it, all in memory.

The body is read here, never by Starlette's form parser, whose ``SpooledTemporaryFile`` spills
uploads over 1 MB to a temporary file on disk. Accepted: ``multipart/form-data`` (field
``image``), ``application/json`` (``{"image": "<base64 or data: URL>"}``) and the raw encoded
image (``image/*``, ``application/octet-stream``).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from fastapi import Request

from facelive.server.errors import ApiError
from facelive.server.schemas import IMAGE_FIELD

__all__ = ["read_body", "parse_multipart", "parse_json", "read_image_payload"]


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


async def read_image_payload(request: Request, max_body_bytes: int) -> bytes:
    """The encoded image bytes of a liveness request, whatever its accepted content type.

    Raises :class:`ApiError` (400, 413, 415 or 422) for a request that carries no usable image.
    """
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
    body = await read_body(request, max_body_bytes)
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
