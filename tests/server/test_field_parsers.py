"""Property tests (hypothesis) of the request field parsers: whatever the bytes, a parser answers
a value that meets its contract or an :class:`ApiError` with a 4xx status, never another
exception (a 500).

Covered: the frames upload's ``timestamps`` (:func:`parse_timestamps`) and ``nonce``
(:func:`parse_nonce`), whole frames uploads, the liveness multipart and JSON bodies, the
session-creation body, and the multipart walker's limits (parts, part headers, field sizes) on
generated bodies.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from facelive.server.errors import ApiError
from facelive.server.parsing import (
    LIVENESS_MULTIPART,
    MAX_NONCE_CHARS,
    MAX_OTHER_PARTS,
    MAX_TIMESTAMP_MS,
    _frames_upload,
    parse_json,
    parse_multipart,
    parse_nonce,
    parse_small_json,
    parse_timestamps,
)

PROPERTY = settings(deadline=None, max_examples=100,
                    suppress_health_check=[HealthCheck.too_slow])

# JSON values: numbers of every size (floats infinite and NaN too), strings, booleans, nesting
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=-10**500, max_value=10**500)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=3),
    max_leaves=20)


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value, allow_nan=True).encode()


def _refused(exc: ApiError, *statuses: int) -> None:
    assert exc.status in statuses, (exc.status, exc.code, exc.message)
    assert exc.code and exc.message


# -- timestamps ----------------------------------------------------------------------------------


def _check_timestamps(raw: bytes, frames: int) -> None:
    try:
        out = parse_timestamps(raw, frames)
    except ApiError as exc:
        _refused(exc, 422)
        assert exc.code == "invalid_field"
        return
    assert len(out) == frames and all(type(t) is float for t in out)
    assert all(0 <= t <= MAX_TIMESTAMP_MS and math.isfinite(t) for t in out)
    assert all(b > a for a, b in zip(out, out[1:], strict=False))


@PROPERTY
@given(json_values, st.integers(0, 8))
@example([1 * 10**400], 1)  # the OverflowError of the attack review
@example([float("nan")], 1)
@example([0, float("inf")], 2)
@example([True, 2], 2)
def test_timestamps_from_any_json(value: Any, frames: int) -> None:
    _check_timestamps(_json_bytes(value), frames)


@PROPERTY
@given(st.binary(max_size=200), st.integers(0, 4))
@example(b"[1" + b"0" * 400 + b"]", 1)
@example(b"[1" + b"0" * 5000 + b"]", 1)  # over Python's integer digit limit
@example(b"[1e400]", 1)
@example(b"[NaN]", 1)
@example(b"[-Infinity]", 1)
@example(b"[" * 100_000, 1)
def test_timestamps_from_any_bytes(raw: bytes, frames: int) -> None:
    _check_timestamps(raw, frames)


@PROPERTY
@given(st.lists(st.integers(0, MAX_TIMESTAMP_MS) | st.floats(0, MAX_TIMESTAMP_MS),
                min_size=1, max_size=40, unique=True))
def test_increasing_timestamps_in_range_are_accepted(values: list[float]) -> None:
    values = sorted(values, key=float)
    if any(float(b) <= float(a) for a, b in zip(values, values[1:], strict=False)):
        return  # an int and a float of the same value
    assert parse_timestamps(_json_bytes(values), len(values)) == [float(v) for v in values]


@pytest.mark.parametrize(("raw", "frames", "why"), [
    (b"[1" + b"0" * 400 + b"]", 1, "out of range"), (b"[-1]", 1, "out of range"),
    (b"[3600001]", 1, "out of range"), (b"[1e999]", 1, "out of range"),
    (b"[0, 100, 100]", 3, "strictly increase"), (b"[100, 50]", 2, "strictly increase"),
    (b"[NaN]", 1, "holds NaN"), (b"[true]", 1, "holds a bool"), (b'["1"]', 1, "holds a str"),
    (b"{}", 1, "not a list"), (b"[0, 100]", 1, "1 frames but 2"), (b"\xff", 1, "not JSON")])
def test_each_timestamp_refusal_says_why(raw: bytes, frames: int, why: str) -> None:
    with pytest.raises(ApiError) as info:
        parse_timestamps(raw, frames)
    assert info.value.status == 422 and info.value.code == "invalid_field"
    assert why in info.value.message


# -- nonce ---------------------------------------------------------------------------------------


@PROPERTY
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
@example(b"")
@example(b" \t\r\n")
@example(b"x" * (MAX_NONCE_CHARS + 1))
@example(b"abc\x00def")
def test_nonce_from_any_bytes(raw: bytes) -> None:
    try:
        nonce = parse_nonce(raw)
    except ApiError as exc:
        _refused(exc, 422)
        return
    assert 1 <= len(nonce) <= MAX_NONCE_CHARS and nonce.isascii() and nonce.isprintable()
    assert nonce == nonce.strip()


def test_a_server_nonce_is_accepted() -> None:
    import secrets

    nonce = secrets.token_urlsafe(18)
    assert parse_nonce(f" {nonce}\r\n".encode()) == nonce


# -- multipart -----------------------------------------------------------------------------------

BOUNDARY = "f1b0undary"
CTYPE = f"multipart/form-data; boundary={BOUNDARY}"

part_names = st.sampled_from(["image", "frames", "timestamps", "nonce", "other", ""])
header_lines = st.lists(st.tuples(st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,20}", fullmatch=True),
                                  st.text(st.characters(min_codepoint=32, max_codepoint=126),
                                          max_size=60)), max_size=3)
parts = st.tuples(part_names, st.binary(max_size=64), header_lines)


def multipart(items: list[tuple[str, bytes, list[tuple[str, str]]]],
              boundary: str = BOUNDARY) -> bytes:
    out = b""
    for name, data, extra in items:
        head = f'Content-Disposition: form-data; name="{name}"\r\n'
        head += "".join(f"{k}: {v}\r\n" for k, v in extra)
        out += f"--{boundary}\r\n{head}\r\n".encode() + data + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


@pytest.mark.slow
@PROPERTY
@given(st.lists(parts, max_size=12))
def test_liveness_multipart_answers_the_first_image_or_a_4xx(
        items: list[tuple[str, bytes, list[tuple[str, str]]]]) -> None:
    body = multipart(items)
    try:
        data = parse_multipart(body, CTYPE)
    except ApiError as exc:
        _refused(exc, 400, 413, 422)
        if len(items) > LIVENESS_MULTIPART.max_parts:
            assert exc.code == "too_many_parts"
        return
    assert len(items) <= LIVENESS_MULTIPART.max_parts
    images = [d for name, d, _ in items if name == "image"]
    assert images and data == images[0]


@PROPERTY
@given(st.binary(max_size=400), st.sampled_from([CTYPE, "multipart/form-data",
                                                 "multipart/form-data; boundary=",
                                                 "multipart/form-data; boundary=" + "b" * 300,
                                                 'multipart/form-data; boundary="a b"'])
       | st.text(st.characters(max_codepoint=255), max_size=80).map(  # a header is latin-1
           lambda params: "multipart/form-data;" + params))
@example(b"--" + BOUNDARY.encode() + b"\r\n" + b"X: y\r\n" * 20 + b"\r\n", CTYPE)
def test_multipart_from_any_bytes(body: bytes, ctype: str) -> None:
    for parse in (lambda: parse_multipart(body, ctype), lambda: _frames_upload(body, ctype, 5)):
        try:
            parse()
        except ApiError as exc:
            _refused(exc, 400, 413, 422)


@pytest.mark.slow
@PROPERTY
@given(st.lists(st.binary(min_size=1, max_size=32), min_size=1, max_size=6), json_values,
       st.binary(max_size=40), st.lists(parts, max_size=10))
def test_frames_upload_from_generated_fields(frames: list[bytes], stamps: Any, nonce: bytes,
                                             extra: list[Any]) -> None:
    items = [("frames", f, []) for f in frames] + [
        ("timestamps", _json_bytes(stamps), []), ("nonce", nonce, [])] + extra
    try:
        upload = _frames_upload(multipart(items), CTYPE, max_frames=6)
    except ApiError as exc:
        _refused(exc, 400, 413, 422)
        return
    assert upload.frames[:len(frames)] == frames
    assert len(upload.timestamps_ms) == len(upload.frames)
    assert sum(1 for name, _, _ in extra if name not in ("frames", "timestamps", "nonce")) \
        <= MAX_OTHER_PARTS


# -- liveness JSON -------------------------------------------------------------------------------


@PROPERTY
@given(json_values | st.fixed_dictionaries({"image": json_values | st.text(max_size=40)}))
def test_liveness_json_answers_bytes_or_a_4xx(value: Any) -> None:
    try:
        data = parse_json(_json_bytes(value))
    except ApiError as exc:
        _refused(exc, 400, 422)
        return
    assert isinstance(data, bytes)


@PROPERTY
@given(st.binary(max_size=200) | json_values.map(_json_bytes))
@example(b"[" * 100_000)
@example(b"[1" + b"0" * 5000 + b"]")
def test_session_creation_body_is_an_object_or_a_400(raw: bytes) -> None:
    try:
        obj = parse_small_json(raw)
    except ApiError as exc:
        _refused(exc, 400)
        assert exc.code == "invalid_json"
        return
    assert isinstance(obj, dict)
