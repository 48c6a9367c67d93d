"""Reading a liveness request: the body (size- and time-limited) and the image in it, in memory.

The body is read here, never by Starlette's form parser, whose ``SpooledTemporaryFile`` spills
uploads over 1 MB to a temporary file on disk. Accepted: ``multipart/form-data`` (field
``image``), ``application/json`` (``{"image": "<base64 or data: URL>"}``) and the raw encoded
image (``image/*``, ``application/octet-stream``).

The body is read on the event loop, with a total deadline and a minimum average rate (408
``body_timeout``), before the request takes a processing slot; it is parsed (multipart, JSON,
base64) in a worker thread when it is larger than :data:`THREAD_PARSE_BYTES`, so that large
bodies do not hold up the event loop. JSON nested deeper than Python's parser allows is 400
``invalid_json``, never a 500.

Every multipart body is walked by :func:`_walk_multipart` within :class:`MultipartLimits`
(parts, bytes and count of each part's headers, the size of each kept field), enforced while
it is parsed: 413 ``too_many_parts``, ``part_headers_too_large``, ``field_too_large``. The
frames upload's fields are validated before any arithmetic (:func:`parse_timestamps`,
:func:`parse_nonce`): 422 ``invalid_field``, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import Request

from facelive.server.errors import ApiError, retry_after
from facelive.server.schemas import (
    FRAMES_FIELD,
    IMAGE_FIELD,
    NONCE_FIELD,
    TIMESTAMPS_FIELD,
)

__all__ = ["read_body", "parse_multipart", "parse_json", "payload_kind",
           "parse_payload", "UploadBudget", "THREAD_PARSE_BYTES", "MIN_RATE_GRACE_S",
           "FramesUpload", "parse_frames_upload", "parse_small_json", "MultipartLimits",
           "LIVENESS_MULTIPART", "frames_multipart_limits", "parse_timestamps", "parse_nonce",
           "MAX_TIMESTAMP_MS"]

THREAD_PARSE_BYTES = 256 * 1024
"""Bodies larger than this are parsed in a worker thread rather than on the event loop."""
MIN_RATE_GRACE_S = 5.0
"""The minimum upload rate is enforced from this many seconds after the headers."""


class UploadBudget:
    """The bytes of request bodies being received at once, across requests (bodies are read
    before a request takes a processing slot, so this bounds their memory instead).

    :meth:`take` counts bytes as they arrive and raises 503 ``overloaded`` when the total would
    pass ``limit``; :meth:`give` returns them when the body is complete (or abandoned). Only
    bytes actually received count, so slow uploads hold next to nothing.
    """

    def __init__(self, limit: int, retry_after_s: int = 1) -> None:
        self.limit, self.used, self.retry_after_s = limit, 0, retry_after_s

    def take(self, n: int) -> None:
        if self.used + n > self.limit:
            raise ApiError(503, "overloaded", "too many uploads in progress; retry later",
                           {**retry_after(self.retry_after_s), "Connection": "close"})
        self.used += n

    def give(self, n: int) -> None:
        self.used -= n


def _timeout(limit_s: float) -> ApiError:
    return ApiError(408, "body_timeout", f"the request body did not arrive within {limit_s:g} s",
                    {"Connection": "close"})


def _too_slow(rate: int) -> ApiError:
    return ApiError(408, "body_timeout",
                    f"the request body arrived slower than {rate} bytes per second",
                    {"Connection": "close"})


async def read_body(request: Request, limit: int, timeout_s: float | None = None,
                    min_rate: int = 0, budget: UploadBudget | None = None) -> bytes:
    """Read the body; 413 from Content-Length, or as soon as the stream passes ``limit``.

    ``timeout_s``: the whole body must arrive within that many seconds of the call; ``min_rate``
    (bytes/s, 0 = off): after :data:`MIN_RATE_GRACE_S`, the average rate since the call may not
    fall below it. Either failure is 408 ``body_timeout`` (the connection is then closed).
    ``budget``: bytes received are counted there while the body is read (503 when full).
    """
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
    try:
        await _read_into(buf, request, limit, timeout_s, min_rate, budget)
    finally:
        if budget is not None:
            budget.give(len(buf))
    return bytes(buf)


async def _read_into(buf: bytearray, request: Request, limit: int, timeout_s: float | None,
                     min_rate: int, budget: UploadBudget | None) -> None:
    t0 = time.monotonic()
    stream = request.stream().__aiter__()
    while True:
        elapsed = time.monotonic() - t0
        wait = None if timeout_s is None else timeout_s - elapsed
        if min_rate > 0:
            # the latest time at which the bytes so far still meet the rate
            due = max(MIN_RATE_GRACE_S, len(buf) / min_rate) - elapsed
            wait = due if wait is None else min(wait, due)
        if wait is not None and wait <= 0:
            raise (_timeout(timeout_s) if timeout_s is not None and elapsed >= timeout_s
                   else _too_slow(min_rate))
        try:
            with anyio.fail_after(wait):
                chunk = await stream.__anext__()
        except StopAsyncIteration:
            return
        except TimeoutError:
            elapsed = time.monotonic() - t0
            raise (_timeout(timeout_s) if timeout_s is not None and elapsed >= timeout_s
                   else _too_slow(min_rate)) from None
        if len(buf) + len(chunk) > limit:
            raise ApiError(413, "body_too_large",
                           f"request body is over the limit of {limit} bytes")
        if budget is not None:
            budget.take(len(chunk))
        buf += chunk


@dataclass(frozen=True)
class MultipartLimits:
    """What one multipart/form-data body may hold, enforced while it is parsed.

    A body over one of them is refused as soon as the parser reaches the offending part, so a
    body of many tiny parts costs a few parts of parsing, not the whole body's.

    Attributes
    ----------
    max_parts : int
        Parts in the body; one more is 413 ``too_many_parts``.
    max_part_header_bytes : int
        Bytes of one part's header names and values together; more is 413
        ``part_headers_too_large``.
    max_part_headers : int
        Headers of one part; one more is 413 ``part_headers_too_large``.
    """

    max_parts: int
    max_part_header_bytes: int = 4096
    max_part_headers: int = 8


LIVENESS_MULTIPART = MultipartLimits(max_parts=8)
"""``POST /v1/liveness``: the ``image`` part and a few others (which are skipped)."""
MULTIPART_CHUNK_BYTES = 64 * 1024
"""The body is fed to the parser in chunks of this size, so that a part header over its limit
is refused within one chunk of where it starts."""


def _walk_multipart(body: bytes, content_type: str,
                    on_part: Callable[[str], tuple[list[bytes], int | None] | None],
                    limits: MultipartLimits) -> None:
    """Walk a multipart/form-data body (in memory) within ``limits``. Once a part's headers are
    in, ``on_part(name)`` (its content-disposition name, ``""`` when none) returns ``None`` to
    skip the part or ``(dest, limit)``: the part's bytes are appended to ``dest`` at its end,
    and one over ``limit`` bytes (when not ``None``) is 413 ``field_too_large`` while it is
    read. ``on_part`` may raise :class:`ApiError` to stop the walk. A malformed body (or a
    boundary over 256 characters) is 400 ``invalid_multipart``."""
    from python_multipart.exceptions import FormParserError
    from python_multipart.multipart import MultipartParser, parse_options_header

    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise ApiError(400, "invalid_multipart", "multipart/form-data without a boundary")
    header_field, header_value = bytearray(), bytearray()
    headers: dict[bytes, bytes] = {}
    state: dict[str, Any] = {"data": None, "name": None, "dest": None, "limit": None,
                             "parts": 0, "header_bytes": 0, "headers": 0}

    def headers_too_large() -> ApiError:
        return ApiError(413, "part_headers_too_large",
                        f"a part's headers are over {limits.max_part_header_bytes} bytes or "
                        f"{limits.max_part_headers} headers")

    def on_part_begin() -> None:
        state["parts"] += 1
        if state["parts"] > limits.max_parts:
            raise ApiError(413, "too_many_parts",
                           f"more than {limits.max_parts} parts in the body")
        headers.clear()
        state["data"], state["header_bytes"], state["headers"] = None, 0, 0

    def count_header_bytes(n: int) -> None:
        state["header_bytes"] += n
        if state["header_bytes"] > limits.max_part_header_bytes:
            raise headers_too_large()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        count_header_bytes(end - start)
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        count_header_bytes(end - start)
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        headers[bytes(header_field).strip().lower()] = bytes(header_value).strip()
        header_field.clear()
        header_value.clear()
        state["headers"] += 1
        if state["headers"] > limits.max_part_headers:
            raise headers_too_large()

    def on_headers_finished() -> None:
        _, disp = parse_options_header(headers.get(b"content-disposition", b""))
        name = (disp.get(b"name") or b"").decode("latin-1")
        keep = on_part(name)
        if keep is not None:
            state["data"], state["name"] = bytearray(), name
            state["dest"], state["limit"] = keep

    def on_part_data(data: bytes, start: int, end: int) -> None:
        buf = state["data"]
        if buf is None:
            return
        buf.extend(data[start:end])
        limit = state["limit"]
        if limit is not None and len(buf) > limit:
            raise ApiError(413, "field_too_large", f"'{state['name']}' is over {limit} bytes")

    def on_part_end() -> None:
        if state["data"] is not None:
            state["dest"].append(bytes(state["data"]))
            state["data"] = None

    try:
        # the parser's own per-line header limits sit above ours, which answer first
        parser = MultipartParser(boundary, {
            "on_part_begin": on_part_begin, "on_header_field": on_header_field,
            "on_header_value": on_header_value, "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished, "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        }, max_header_count=limits.max_part_headers + 1,
            max_header_size=limits.max_part_header_bytes + MULTIPART_CHUNK_BYTES)
        view = memoryview(body)
        for i in range(0, len(body), MULTIPART_CHUNK_BYTES):
            parser.write(bytes(view[i:i + MULTIPART_CHUNK_BYTES]))
        parser.finalize()
    except (FormParserError, ValueError) as exc:
        raise ApiError(400, "invalid_multipart", f"malformed multipart body ({exc})") from None


def parse_multipart(body: bytes, content_type: str) -> bytes:
    """The bytes of the ``image`` part of a multipart/form-data body (parsed in memory)."""
    found: list[bytes] = []

    def on_part(name: str) -> tuple[list[bytes], None] | None:
        # only the first image part is kept; others are skipped
        return (found, None) if name == IMAGE_FIELD and not found else None

    _walk_multipart(body, content_type, on_part, LIVENESS_MULTIPART)
    if not found:
        raise ApiError(422, "missing_field",
                       f"multipart body has no complete '{IMAGE_FIELD}' field")
    return found[0]


def _load_json(body: bytes) -> Any:
    """``json.loads(body)``; malformed or too deeply nested JSON is 400 ``invalid_json``."""
    try:
        return json.loads(body)
    except RecursionError:
        raise ApiError(400, "invalid_json", "malformed JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"malformed JSON ({str(exc)[:200]})") from None


def parse_json(body: bytes) -> bytes:
    """The decoded bytes of ``{"image": "<base64 or data: URL>"}``."""
    obj = _load_json(body)
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


def payload_kind(request: Request) -> str:
    """``multipart``, ``json`` or ``raw`` from the Content-Type, else 415."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media == "multipart/form-data":
        return "multipart"
    if media == "application/json" or media.endswith("+json"):
        return "json"
    if media.startswith("image/") or media == "application/octet-stream":
        return "raw"
    shown = media or "none"
    raise ApiError(415, "unsupported_media_type",
                   f"content type {shown[:60]!r} is not accepted; send multipart/form-data "
                   f"(field '{IMAGE_FIELD}'), application/json or the image itself")


def _parse(kind: str, body: bytes, content_type: str) -> bytes:
    if kind == "multipart":
        data = parse_multipart(body, content_type)
    elif kind == "json":
        data = parse_json(body)
    else:
        data = body
    if not data:
        raise ApiError(400, "empty_image", "the image is empty")
    return data


async def parse_payload(kind: str, body: bytes, content_type: str) -> bytes:
    """The image bytes of a body already read (parsed in a thread when large)."""
    if not body:
        raise ApiError(400, "empty_body", "the request body is empty")
    if kind == "raw":
        return body
    if len(body) > THREAD_PARSE_BYTES:
        return await anyio.to_thread.run_sync(_parse, kind, body, content_type)
    return _parse(kind, body, content_type)


# -- challenge sessions: the frames upload --------------------------------------------------------

MAX_TIMESTAMPS_BYTES = 64 * 1024
"""Largest ``timestamps`` part of a frames upload (else 413 ``field_too_large``)."""
MAX_NONCE_BYTES = 1024
"""Largest ``nonce`` part of a frames upload (else 413 ``field_too_large``)."""
MAX_NONCE_CHARS = 256
"""Longest accepted nonce (the server's are 24 characters)."""
MAX_OTHER_PARTS = 8
"""Parts other than frames (``timestamps``, ``nonce``, and a few ignored) a frames upload may
carry (else 413 ``too_many_parts``)."""
MAX_TIMESTAMP_MS = 3_600_000
"""Largest accepted timestamp (ms since the challenge started): an hour, far past any
session's life; larger numbers are refused before any arithmetic."""


def frames_multipart_limits(max_frames: int) -> MultipartLimits:
    """The multipart limits of a frames upload of at most ``max_frames`` frames."""
    return MultipartLimits(max_parts=max_frames + MAX_OTHER_PARTS)


@dataclass
class FramesUpload:
    """A parsed ``POST /v1/sessions/{id}/frames`` body: the encoded frames in upload order,
    their timestamps (ms since the challenge started) and the nonce."""

    frames: list[bytes]
    timestamps_ms: list[float]
    nonce: str


def _multipart_fields(body: bytes, content_type: str, max_frames: int) -> dict[str, list[bytes]]:
    """The parts of a multipart body by field name: every ``frames`` part (at most
    ``max_frames``: one more is 413 ``too_many_frames`` while parsing, before anything is
    decoded), the first ``timestamps`` and ``nonce`` parts (at most
    :data:`MAX_TIMESTAMPS_BYTES` and :data:`MAX_NONCE_BYTES`); other parts are skipped but
    counted (:func:`frames_multipart_limits`)."""
    found: dict[str, list[bytes]] = {FRAMES_FIELD: [], TIMESTAMPS_FIELD: [], NONCE_FIELD: []}
    text_limits = {TIMESTAMPS_FIELD: MAX_TIMESTAMPS_BYTES, NONCE_FIELD: MAX_NONCE_BYTES}
    other = [0]

    def on_part(name: str) -> tuple[list[bytes], int | None] | None:
        if name == FRAMES_FIELD:
            if len(found[FRAMES_FIELD]) >= max_frames:
                raise ApiError(413, "too_many_frames",
                               f"more than {max_frames} frames in one upload")
            return found[name], None
        if name in text_limits and not found[name]:
            return found[name], text_limits[name]
        other[0] += 1
        if other[0] > MAX_OTHER_PARTS:
            raise ApiError(413, "too_many_parts", "too many parts in the upload")
        return None

    _walk_multipart(body, content_type, on_part, frames_multipart_limits(max_frames))
    return found


def _bad_timestamps(why: str) -> ApiError:
    return ApiError(422, "invalid_field", f"'{TIMESTAMPS_FIELD}' {why} (a JSON list of numbers, "
                    f"one per frame, strictly increasing, 0 to {MAX_TIMESTAMP_MS} ms since the "
                    "challenge started)")


def _no_constant(name: str) -> Any:
    raise _bad_timestamps(f"holds {name}")


def parse_timestamps(raw: bytes, frames: int) -> list[float]:
    """The timestamps of a frames upload, validated before any arithmetic.

    Parameters
    ----------
    raw : bytes
        The ``timestamps`` part: a JSON list of numbers.
    frames : int
        How many frames the upload holds (one timestamp each).

    Returns
    -------
    list of float
        The timestamps, ms since the challenge started.

    Raises
    ------
    ApiError
        422 ``invalid_field`` when the part is not UTF-8 JSON, not a list, holds anything but
        numbers (booleans, strings, ``NaN``, ``Infinity`` and floats that overflow to infinity
        included), a number outside 0 to :data:`MAX_TIMESTAMP_MS` (integers are compared as
        integers, never converted first, so ``1`` followed by 400 zeros is refused and not an
        ``OverflowError``), numbers that do not strictly increase, or not one per frame.
    """
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except RecursionError:
        raise _bad_timestamps("is nested too deeply") from None
    except (ValueError, UnicodeDecodeError):  # an integer over Python's digit limit included
        raise _bad_timestamps("is not JSON") from None
    if not isinstance(value, list):
        raise _bad_timestamps("is not a list")
    out: list[float] = []
    for t in value:
        if isinstance(t, bool) or not isinstance(t, (int, float)):
            raise _bad_timestamps(f"holds a {type(t).__name__}")
        if not 0 <= t <= MAX_TIMESTAMP_MS:  # int or finite float; inf and nan fail too
            raise _bad_timestamps("holds a number out of range")
        ms = float(t)
        if out and ms <= out[-1]:
            raise _bad_timestamps("does not strictly increase")
        out.append(ms)
    if len(out) != frames:
        raise ApiError(422, "invalid_field", f"{frames} frames but {len(out)} timestamps")
    return out


def parse_nonce(raw: bytes) -> str:
    """The ``nonce`` part of a frames upload: 1 to :data:`MAX_NONCE_CHARS` printable ASCII
    characters (surrounding white space dropped), else 422 ``invalid_field``."""
    try:
        nonce = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ApiError(422, "invalid_field", f"'{NONCE_FIELD}' must be ASCII") from None
    if not nonce or len(nonce) > MAX_NONCE_CHARS or not nonce.isprintable():
        raise ApiError(422, "invalid_field", f"'{NONCE_FIELD}' must be 1 to {MAX_NONCE_CHARS} "
                       "printable ASCII characters")
    return nonce


def _frames_upload(body: bytes, content_type: str, max_frames: int) -> FramesUpload:
    parts = _multipart_fields(body, content_type, max_frames)
    frames = parts[FRAMES_FIELD]
    for name in (FRAMES_FIELD, TIMESTAMPS_FIELD, NONCE_FIELD):
        if not parts[name]:
            raise ApiError(422, "missing_field", f"the upload has no '{name}' field")
    if any(not f for f in frames):
        raise ApiError(422, "invalid_field", f"an empty '{FRAMES_FIELD}' part")
    timestamps = parse_timestamps(parts[TIMESTAMPS_FIELD][0], len(frames))
    nonce = parse_nonce(parts[NONCE_FIELD][0])
    return FramesUpload(frames=frames, timestamps_ms=timestamps, nonce=nonce)


async def parse_frames_upload(body: bytes, content_type: str, max_frames: int) -> FramesUpload:
    """The frames, timestamps and nonce of a ``multipart/form-data`` frames upload (parsed in
    a worker thread when large). 400 ``invalid_multipart``; 413 ``too_many_frames`` (counted
    while parsing, before any frame is decoded), ``too_many_parts``,
    ``part_headers_too_large``, ``field_too_large``; 422 ``missing_field`` or ``invalid_field``
    (:func:`parse_timestamps`, :func:`parse_nonce`)."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type",
                       f"send the frames as multipart/form-data (fields '{FRAMES_FIELD}', "
                       f"'{TIMESTAMPS_FIELD}', '{NONCE_FIELD}')")
    if not body:
        raise ApiError(400, "empty_body", "the request body is empty")
    if len(body) > THREAD_PARSE_BYTES:
        return await anyio.to_thread.run_sync(_frames_upload, body, content_type, max_frames)
    return _frames_upload(body, content_type, max_frames)


def parse_small_json(body: bytes) -> dict[str, Any]:
    """An optional small JSON object body (``{}`` when empty); 400 ``invalid_json`` else."""
    if not body.strip():
        return {}
    obj = _load_json(body)
    if not isinstance(obj, dict):
        raise ApiError(400, "invalid_json", "expected a JSON object")
    return obj
