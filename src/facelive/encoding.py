"""Plain encodings shared by every layer: SHA-256 hex digests and numpy values as JSON.

Imports nothing from facelive, so that any module may use it.

>>> sha256_hex(b"")[:16]
'e3b0c44298fc1c14'
>>> import json, numpy as np
>>> json.dumps({"n": np.int64(3), "x": np.arange(2.0)}, default=json_default)
'{"n": 3, "x": [0.0, 1.0]}'
"""

from __future__ import annotations

import hashlib
from pathlib import PurePath
from typing import Any

__all__ = ["sha256_hex", "json_default", "jsonable"]


def sha256_hex(data: bytes | bytearray | memoryview | str) -> str:
    """The SHA-256 digest of ``data`` as lowercase hex.

    Parameters
    ----------
    data : bytes, bytearray, memoryview or str
        What to hash; a string is hashed as its UTF-8 bytes.

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def json_default(obj: Any) -> Any:
    """The ``default`` of :func:`json.dumps` for facelive's reports: numpy values and paths.

    Parameters
    ----------
    obj : object
        A value :mod:`json` cannot encode by itself.

    Returns
    -------
    object
        A numpy array or scalar as ``obj.tolist()`` (nested lists of Python numbers, or one
        number), a path as a string, a set or tuple as a list, anything else as ``float(obj)``.

    Raises
    ------
    TypeError
        When ``obj`` is none of these and has no float value.
    """
    if hasattr(obj, "tolist"):  # numpy arrays and scalars
        return obj.tolist()
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return float(obj)


def jsonable(value: Any) -> Any:
    """A copy of ``value`` in plain JSON types, recursively.

    Dictionaries get string keys, tuples become lists, numpy values Python numbers (as in
    :func:`json_default`); any other value (a path, say) becomes its ``str``.

    Parameters
    ----------
    value : object
        Nested dicts, lists and tuples of numbers, strings, booleans, ``None`` and numpy
        scalars.

    Returns
    -------
    object
        The same structure in JSON types.
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return jsonable(value.tolist())
    return str(value)
