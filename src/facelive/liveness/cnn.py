"""The 2D CNN liveness test: a fine-tuned EfficientNet-Lite0 run with ONNX Runtime.

The network (see :mod:`facelive.training.cnn.model`; EfficientNet: Tan & Le, ICML 2019; head after
the 2019 thesis) looks at a centred square crop around the face with context (paper edges, fingers,
screen bezels) and outputs ``[P(attack), P(live)]``. The ONNX file and its card ``cnn.json``
(input size, crop context, normalisation, threshold chosen on Replay-Attack devel at the EER point)
ship in ``facelive/models`` and are checksum-verified at load.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from facelive import modelstore
from facelive.errors import ModelError
from facelive.face.detection import square_crop
from facelive.liveness.base import Frame, LivenessTest

MODEL_FILE = "cnn.onnx"
CARD_FILE = "cnn.json"


class CNNTest(LivenessTest):
    """P(live) from the face crop, by the shipped CNN (ONNX Runtime, CPU)."""

    name = "cnn"
    needs_face = True

    def __init__(self, model_path: Path | None = None, threads: int = 1) -> None:
        """Load the network (``model_path``: an ``.onnx`` file with its ``.json`` card beside it
        and both listed in that folder's ``SHA256SUMS``; default: the shipped model)."""
        self._session, self.card = modelstore.load_onnx(
            model_path, MODEL_FILE, CARD_FILE,
            ("input_size", "context", "mean", "std", "threshold", "version"), threads)
        self._input = self._session.get_inputs()[0].name
        try:
            self.size = int(self.card["input_size"])
            self.context = float(self.card["context"])
            self.threshold = float(self.card["threshold"])
            self.version = str(self.card["version"])
            self._mean = np.asarray(self.card["mean"], np.float32).reshape(1, 3, 1, 1)
            self._std = np.asarray(self.card["std"], np.float32).reshape(1, 3, 1, 1)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{CARD_FILE}: bad value: {exc}") from None
        self._lock = threading.Lock()  # ORT sessions are thread-safe; the lock bounds threads used

    def preprocess(self, crops_bgr: np.ndarray) -> np.ndarray:
        """uint8 BGR crops ``(N, S, S, 3)`` -> normalised float32 RGB ``(N, 3, S, S)``."""
        x = crops_bgr[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
        return (x - self._mean) / self._std

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
        d.update(input_size=self.size, context=self.context)
        return d
