"""The MiniFAS test: a MiniFASNetV2-SE trained on CelebA-Spoof, run with ONNX Runtime.

Every other trained test learnt from the 65 people of NUAA and Replay-Attack; this network learnt
from CelebA-Spoof (Zhang et al., "CelebA-Spoof: Large-Scale Face Anti-Spoofing Dataset with Rich
Annotations", ECCV 2020: 625k images of 10,177 subjects, 8 scenes, 10+ capture devices). The
architecture is MiniFASNetV2 with squeeze-and-excitation blocks (Minivision's Silent-Face
project); the weights are the Apache-2.0 release of the open project ``face-antispoof-onnx``
(credit, licence and provenance: ``MINIFAS-LICENSE`` and ``docs/model-cards/minifas.md``).

The input convention is the one the network was trained with, stated in its card
``minifas.json``: a square of side 1.5 x the face box's longer side centred on the box, reflected
pixels where it leaves the image (:func:`facelive.face.detection.centred_square_crop`), 128 x 128,
RGB, scaled to 0..1, CHW. The network outputs the logits ``[real, spoof]``; P(live) is the
softmax of ``real``, i.e. the logistic of ``real - spoof``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from facelive import modelstore
from facelive.errors import ModelError
from facelive.face.detection import centred_square_crop
from facelive.liveness.base import Frame, LivenessTest

MODEL_FILE = "minifas.onnx"
CARD_FILE = "minifas.json"
CARD_KEYS = ("input_size", "context", "channels", "scale", "live_index", "threshold", "version")


class MiniFASTest(LivenessTest):
    """P(live) of the face crop by MiniFASNetV2-SE trained on CelebA-Spoof.

    Parameters
    ----------
    model_path : Path, optional
        An ``.onnx`` file with its ``.json`` card beside it, both listed in that folder's
        ``SHA256SUMS``. Default: ``minifas.onnx`` of the first model folder that has one
        (:func:`facelive.modelstore.find_folder`).
    threads : int
        ONNX Runtime intra-op threads.
    """

    name = "minifas"
    needs_face = True

    def __init__(self, model_path: Path | None = None, threads: int = 1) -> None:
        path = Path(model_path) if model_path is not None else (
            modelstore.find_folder(MODEL_FILE) / MODEL_FILE)
        self._session, self.card = modelstore.load_onnx(path, MODEL_FILE, CARD_FILE, CARD_KEYS,
                                                        threads)
        self._input = self._session.get_inputs()[0].name
        try:
            self.size = int(self.card["input_size"])
            self.context = float(self.card["context"])
            self.scale = np.float32(self.card["scale"])
            self.live_index = int(self.card["live_index"])
            self.threshold = float(self.card["threshold"])
            self.version = str(self.card["version"])
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{CARD_FILE}: bad value: {exc}") from None
        if self.card["channels"] not in ("rgb", "bgr"):
            raise ModelError(f"{CARD_FILE}: channels must be 'rgb' or 'bgr'")
        if self.live_index not in (0, 1):
            raise ModelError(f"{CARD_FILE}: live_index must be 0 or 1")
        self.rgb = self.card["channels"] == "rgb"
        self.precision = str(self.card.get("precision", "fp32"))
        self._lock = threading.Lock()  # ORT sessions are thread-safe; the lock bounds threads used

    def crop(self, frame: Frame) -> np.ndarray:
        """The network's input crop of ``frame`` (BGR uint8, cached in ``frame.cache``)."""
        key = f"centred-crop:{self.context}:{self.size}"
        if key not in frame.cache:
            if frame.face is None:
                raise ValueError("no face box: the test never classifies the whole frame")
            frame.cache[key] = centred_square_crop(frame.image, frame.face, self.context,
                                                   self.size)
        return frame.cache[key]

    def preprocess(self, crops_bgr: np.ndarray) -> np.ndarray:
        """uint8 BGR crops ``(N, S, S, 3)`` -> float32 ``(N, 3, S, S)`` in the card's channel
        order, times the card's scale (1/255: values 0..1)."""
        crops = np.asarray(crops_bgr)
        if self.rgb:
            crops = crops[..., ::-1]
        return np.ascontiguousarray(crops.transpose(0, 3, 1, 2), dtype=np.float32) * self.scale

    def live_logits(self, crops_bgr: np.ndarray) -> np.ndarray:
        """The live logit ``real - spoof`` of a batch of crops already cut by :meth:`crop`."""
        crops = np.asarray(crops_bgr)
        if crops.ndim == 3:
            crops = crops[None]
        if crops.shape[1:] != (self.size, self.size, 3) or crops.dtype != np.uint8:
            raise ValueError(f"expected uint8 crops of shape (N, {self.size}, {self.size}, 3), "
                             f"got {crops.dtype} {crops.shape}")
        with self._lock:
            logits = self._session.run(None, {self._input: self.preprocess(crops)})[0]
        logits = logits.astype(np.float64)
        return logits[:, self.live_index] - logits[:, 1 - self.live_index]

    def predict_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """P(live) of a batch of crops: the logistic of :meth:`live_logits`."""
        from scipy.special import expit

        return expit(self.live_logits(crops_bgr))

    def score_frame(self, frame: Frame) -> float:
        """P(live) of the face in ``frame`` (``frame.face`` must be set)."""
        return float(self.predict_crops(self.crop(frame))[0])

    def info(self) -> dict[str, Any]:
        d = super().info()
        d.update(input_size=self.size, context=self.context, precision=self.precision)
        return d
