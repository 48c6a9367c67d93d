"""The 2D CNN liveness test: a fine-tuned EfficientNet-Lite0 run with ONNX Runtime.

The network (see :mod:`facelive.training.cnn.model`; EfficientNet: Tan & Le, ICML 2019; head after
the 2019 thesis) looks at a centred square crop around the face with context (paper edges, fingers,
screen bezels) and outputs ``[P(attack), P(live)]``. The ONNX file and its card ``cnn.json``
(input size, crop context, normalisation, threshold chosen on Replay-Attack devel at the EER point)
ship in ``facelive/models`` and are checksum-verified at load.

Two versions of the network ship: ``cnn.onnx``, the default, a static INT8 quantisation
(``facelive train cnn-int8``, :mod:`facelive.training.cnn.quantize`; its own threshold in
``cnn.json``), and ``cnn_fp32.onnx`` + ``cnn_fp32.json``, the float network as exported.
``precision="fp32"`` or the environment variable ``FACELIVE_CNN_PRECISION=fp32`` selects the
float one.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelive import modelstore
from facelive.errors import ModelError
from facelive.face.detection import square_crop
from facelive.liveness.base import Frame, LivenessTest

MODEL_FILE = "cnn.onnx"
CARD_FILE = "cnn.json"
FP32_MODEL_FILE = "cnn_fp32.onnx"
FP32_CARD_FILE = "cnn_fp32.json"
PRECISIONS = ("int8", "fp32")
PRECISION_ENV = "FACELIVE_CNN_PRECISION"
"""Environment variable choosing the network: ``int8`` (default: ``cnn.onnx``) or ``fp32``."""


def default_precision() -> str:
    """``$FACELIVE_CNN_PRECISION`` when set (``int8`` or ``fp32``), else ``int8``."""
    value = os.environ.get(PRECISION_ENV, "").strip().lower() or "int8"
    if value not in PRECISIONS:
        raise ModelError(f"{PRECISION_ENV}={value!r}: use one of {', '.join(PRECISIONS)}")
    return value


def default_model_path(precision: str | None = None) -> Path:
    """The network the test loads when given no path.

    The folder is the first of :func:`facelive.modelstore.model_dirs` with a ``cnn.onnx``
    (``$FACELIVE_MODELS``, then the shipped one). ``int8`` (default): its ``cnn.onnx``, whatever
    its precision (a re-trained float model stays what the test uses). ``fp32``: its
    ``cnn_fp32.onnx`` when there is one (the float original that ``facelive train cnn-int8``
    keeps beside the int8 ``cnn.onnx``), else its ``cnn.onnx`` unless that one is int8.
    """
    precision = precision or default_precision()
    if precision not in PRECISIONS:
        raise ModelError(f"CNN precision must be one of {', '.join(PRECISIONS)}, "
                         f"got {precision!r}")
    folder = modelstore.find_folder(MODEL_FILE)
    if precision == "fp32":
        if (folder / FP32_MODEL_FILE).is_file():
            return folder / FP32_MODEL_FILE
        card = modelstore.read_json(CARD_FILE, folder)
        if isinstance(card, dict) and card.get("precision") == "int8":
            raise ModelError(f"{folder / MODEL_FILE} is int8 and {FP32_MODEL_FILE} is missing")
    return folder / MODEL_FILE


class CropNetworkTest(LivenessTest):
    """A test that feeds the square face crop to an ONNX network with output
    ``[P(attack), P(live)]`` and a JSON card (input size, crop context, normalisation,
    threshold); the CNN and the probe test (:mod:`facelive.liveness.probe`) are two."""

    needs_face = True
    model_file = MODEL_FILE
    card_file = CARD_FILE

    def __init__(self, model_path: Path, threads: int = 1) -> None:
        """Load ``model_path`` (an ``.onnx`` file with its ``.json`` card beside it, both listed
        in that folder's ``SHA256SUMS``)."""
        path = Path(model_path)
        self._session, self.card = modelstore.load_onnx(
            path, self.model_file, self.card_file,
            ("input_size", "context", "mean", "std", "threshold", "version"), threads)
        self.model_file = path.name
        self.precision = str(self.card.get("precision", "fp32"))
        self._input = self._session.get_inputs()[0].name
        try:
            self.size = int(self.card["input_size"])
            self.context = float(self.card["context"])
            self.threshold = float(self.card["threshold"])
            self.version = str(self.card["version"])
            self._mean = np.asarray(self.card["mean"], np.float32).reshape(1, 3, 1, 1)
            self._std = np.asarray(self.card["std"], np.float32).reshape(1, 3, 1, 1)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{self.card_file}: bad value: {exc}") from None
        # (v / 255 - mean) / std for every uint8 value v, in float32 as the arithmetic would
        # give it, one column per input channel (B, G, R): preprocess() is then one table look-up
        rgb = (np.arange(256, dtype=np.float32)[None, :] / np.float32(255.0)
               - self._mean.reshape(3, 1)) / self._std.reshape(3, 1)
        self._lut_bgr = np.ascontiguousarray(rgb[::-1].T).reshape(1, 256, 3)
        self._lock = threading.Lock()  # ORT sessions are thread-safe; the lock bounds threads used

    @property
    def input_name(self) -> str:
        """The network's input name (for code that feeds the session directly)."""
        return self._input

    def preprocess(self, crops_bgr: np.ndarray) -> np.ndarray:
        """uint8 BGR crops ``(N, S, S, 3)`` -> normalised float32 RGB ``(N, 3, S, S)``,
        ``(x / 255 - mean) / std``: bit for bit what that float32 arithmetic gives, by a table
        look-up (``cv2.LUT``) and one transposing copy, 3x faster than the arithmetic on
        224x224 crops."""
        crops = np.asarray(crops_bgr)
        n, h, w = crops.shape[:3]
        out = np.empty((n, 3, h, w), np.float32)
        for i in range(n):
            out[i] = cv2.LUT(np.ascontiguousarray(crops[i]), self._lut_bgr).transpose(2, 0, 1)[::-1]
        return out

    def predict_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """P(live) for a batch of face crops already cut with the card's context and size."""
        crops = np.asarray(crops_bgr)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.shape[1:] != (self.size, self.size, 3) or crops.dtype != np.uint8:
            raise ValueError(
                f"expected uint8 crops of shape (N, {self.size}, {self.size}, 3), got "
                f"{crops.dtype} {crops.shape}"
            )
        with self._lock:
            probs = self._session.run(None, {self._input: self.preprocess(crops)})[0]
        return probs[:, 1].astype(np.float64)

    def crop(self, frame: Frame) -> np.ndarray:
        """The network's input crop of ``frame`` (cached in ``frame.cache``)."""
        key = f"crop:{self.context}:{self.size}"
        if key not in frame.cache:
            if frame.face is None:
                raise ValueError("no face box: the CNN never classifies the whole frame")
            frame.cache[key] = square_crop(frame.image, frame.face, self.context, self.size)
        return frame.cache[key]

    def score_frame(self, frame: Frame) -> float:
        """P(live) of the face in ``frame`` (``frame.face`` must be set)."""
        return float(self.predict_crops(self.crop(frame))[0])

    def info(self) -> dict[str, Any]:
        d = super().info()
        d.update(input_size=self.size, context=self.context, precision=self.precision)
        return d


class CNNTest(CropNetworkTest):
    """P(live) from the face crop, by the shipped fine-tuned CNN (ONNX Runtime, CPU)."""

    name = "cnn"

    def __init__(self, model_path: Path | None = None, threads: int = 1,
                 precision: str | None = None) -> None:
        """Load the network (``model_path``: an ``.onnx`` file with its ``.json`` card beside it
        and both listed in that folder's ``SHA256SUMS``; default: :func:`default_model_path` for
        ``precision``, ``int8`` unless ``FACELIVE_CNN_PRECISION`` says otherwise)."""
        super().__init__(Path(model_path) if model_path is not None
                         else default_model_path(precision), threads)
