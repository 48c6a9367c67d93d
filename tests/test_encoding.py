"""The encodings shared by every layer: SHA-256 hex digests and numpy values as JSON."""

from __future__ import annotations

import doctest
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import facelive.encoding as encoding
from facelive.encoding import json_default, jsonable, sha256_hex


def test_docstring_examples() -> None:
    assert doctest.testmod(encoding).failed == 0


def test_sha256_hex_of_bytes_and_text() -> None:
    assert sha256_hex(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert sha256_hex(bytearray(b"abc")) == sha256_hex(memoryview(b"abc")) == sha256_hex(b"abc")
    assert sha256_hex("clé") == hashlib.sha256("clé".encode()).hexdigest()  # UTF-8


def test_json_default() -> None:
    data = {"i": np.int64(3), "f": np.float32(0.5), "b": np.bool_(True), "a": np.eye(2),
            "p": Path("/tmp/x"), "t": (1, 2), "s": {7}}
    assert json.loads(json.dumps(data, default=json_default)) == {
        "i": 3, "f": 0.5, "b": True, "a": [[1.0, 0.0], [0.0, 1.0]], "p": "/tmp/x",
        "t": [1, 2], "s": [7]}
    with pytest.raises(TypeError):
        json.dumps({"x": object()}, default=json_default)


def test_jsonable() -> None:
    out = jsonable({1: (np.float64(0.25), np.int32(2)), "ok": np.bool_(False),
                    "p": Path("m.onnx"), "n": None})
    assert out == {"1": [0.25, 2], "ok": False, "p": "m.onnx", "n": None}
    assert type(out["ok"]) is bool and type(out["1"][1]) is int
