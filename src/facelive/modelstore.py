"""Shipped model files, verified by SHA-256 before use.

Models live in ``facelive/models/`` as ONNX, JSON or npz (never pickle). ``SHA256SUMS`` in the same
folder lists each file's checksum; :func:`read_bytes` refuses a file whose checksum differs.

Models re-trained on your own data (``facelive train ... --out DIR``, which writes the files and
their ``SHA256SUMS``) are used instead of the shipped ones when ``DIR`` is named by the
``FACELIVE_MODELS`` environment variable (or ``facelive --models DIR ...``): each model is read
from ``DIR`` when ``DIR`` has it, else from the shipped folder; a model's companion files (an
``.onnx`` graph and its ``.json`` card) always come from the same folder.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from facelive.encoding import sha256_hex
from facelive.errors import ModelError

MODEL_DIR = Path(__file__).resolve().parent / "models"
SUMS_FILE = "SHA256SUMS"
MODELS_ENV = "FACELIVE_MODELS"


sha256_bytes = sha256_hex
"""The SHA-256 hex digest of a model file's bytes (:func:`facelive.encoding.sha256_hex`)."""


def _read_sums(folder: Path) -> dict[str, str]:
    sums: dict[str, str] = {}
    f = folder / SUMS_FILE
    if f.exists():
        for line in f.read_text().splitlines():
            if line.strip():
                parts = line.split(maxsplit=1)
                if len(parts) != 2:
                    raise ModelError(f"{f}: malformed line {line!r}")
                sums[parts[1].strip().lstrip("*")] = parts[0]
    return sums


def model_dirs() -> list[Path]:
    """Where models are looked up, in order: ``$FACELIVE_MODELS`` (when set), the shipped folder."""
    override = os.environ.get(MODELS_ENV)
    return ([Path(override)] if override else []) + [MODEL_DIR]


def find_folder(name: str) -> Path:
    """The first folder of :func:`model_dirs` that holds ``name`` (the shipped one if none does)."""
    for folder in model_dirs():
        if (folder / name).is_file():
            return folder
    return MODEL_DIR


def model_path(name: str, folder: Path | None = None) -> Path:
    return (folder or find_folder(name)) / name


def read_bytes(name: str, folder: Path | None = None) -> bytes:
    """Return a model file's bytes after checking its SHA-256 against ``SHA256SUMS``
    (``folder`` default: :func:`find_folder`)."""
    folder = folder or find_folder(name)
    path = folder / name
    if not path.exists():
        raise ModelError(f"model file {path} is missing")
    data = path.read_bytes()
    expected = _read_sums(folder).get(name)
    if expected is None:
        raise ModelError(f"model file {name} has no checksum in {folder / SUMS_FILE}")
    actual = sha256_bytes(data)
    if actual != expected:
        raise ModelError(f"model file {name} fails its checksum ({actual} != {expected})")
    return data


def write_bytes(name: str, data: bytes, folder: Path | None = None) -> Path:
    """Write a model file atomically and record its checksum in ``SHA256SUMS``."""
    folder = folder or MODEL_DIR
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.chmod(tmp, 0o644)  # mkstemp creates 0600; model files are plain readable data
    os.replace(tmp, folder / name)
    sums = _read_sums(folder)
    sums[name] = sha256_bytes(data)
    (folder / SUMS_FILE).write_text("".join(f"{d}  {n}\n" for n, d in sorted(sums.items())))
    return folder / name


def read_json(name: str, folder: Path | None = None) -> Any:
    try:
        return json.loads(read_bytes(name, folder).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"model file {name} is not valid JSON: {exc}") from None


def write_json(name: str, obj: Any, folder: Path | None = None) -> Path:
    text = json.dumps(obj, indent=1, sort_keys=False) + "\n"
    return write_bytes(name, text.encode("utf-8"), folder)


def read_npz(name: str, folder: Path | None = None) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(read_bytes(name, folder)), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def write_npz(name: str, arrays: dict[str, np.ndarray], folder: Path | None = None) -> Path:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return write_bytes(name, buf.getvalue(), folder)


def load_onnx(model_path: Path | str | None, onnx_name: str, card_name: str,
              required: tuple[str, ...] = (), threads: int = 1) -> tuple[Any, dict[str, Any]]:
    """An ONNX Runtime CPU session and its JSON card, both checksum-verified.

    ``model_path``: an ``.onnx`` file with its ``.json`` card beside it, both listed in that
    folder's ``SHA256SUMS``; ``None`` loads ``onnx_name`` and ``card_name`` from the folder
    :func:`find_folder` gives for ``onnx_name``. Raises :class:`ModelError` when the card lacks a
    ``required`` key or ONNX Runtime cannot load the graph.
    """
    import onnxruntime as ort

    if model_path is not None:
        model_path = Path(model_path)
        folder, onnx_name = model_path.parent, model_path.name
        card_name = model_path.with_suffix(".json").name
    else:
        folder = find_folder(onnx_name)
    card = read_json(card_name, folder)
    if not isinstance(card, dict):
        raise ModelError(f"{card_name} is not a JSON object")
    missing = [k for k in required if k not in card]
    if missing:
        raise ModelError(f"{card_name} lacks {', '.join(missing)}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = max(1, int(threads))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    try:
        session = ort.InferenceSession(read_bytes(onnx_name, folder), opts,
                                       providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's exception types share no base but Exception
        raise ModelError(f"cannot load {onnx_name}: {exc}") from exc
    return session, card
