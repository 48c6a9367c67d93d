"""The image-quality liveness test (W-IQA).

Galbally, Marcel & Fierrez, "Image Quality Assessment for Fake Biometric Detection: Application to
Iris, Fingerprint, and Face Recognition", IEEE Trans. Image Processing 23(2), 2014: the 25 quality
measures of the whole frame against a blurred copy of itself, standardised, classified by linear
discriminant analysis (eigen solver, Ledoit-Wolf shrinkage).

Resolution robustness: every frame is first resampled to a canonical working resolution (short side
:data:`CANONICAL_SHORT_SIDE` pixels, aspect ratio kept, area interpolation when shrinking), so the
measures, which depend strongly on the pixel scale, see the same scale whatever the camera. (The
thesis's model called every 1280x720 frame "live" because it had only seen 320x240 frames.)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelive import modelstore
from facelive.errors import ModelError
from facelive.linear import StandardizedLinear
from facelive.liveness.base import Frame, LivenessTest

CANONICAL_SHORT_SIDE = 240
MODEL_FILE = "quality.json"
MODEL_FORMAT = "facelive-quality-lda/1"


def canonical_frame(image: np.ndarray, short_side: int = CANONICAL_SHORT_SIDE) -> np.ndarray:
    """Resample ``image`` so that its shorter side is ``short_side`` pixels (aspect kept)."""
    h, w = image.shape[:2]
    s = short_side / min(h, w)
    if abs(s - 1.0) < 1e-9:
        return image
    size = (max(1, round(w * s)), max(1, round(h * s)))
    interp = cv2.INTER_AREA if s < 1.0 else cv2.INTER_LINEAR
    return cv2.resize(image, size, interpolation=interp)


def quality_features(image: np.ndarray) -> np.ndarray:
    """The 25 measures of ``image`` at the canonical resolution, in ``MEASURE_NAMES`` order."""
    from facelive.iqa import measures

    values = measures(canonical_frame(image))
    return np.fromiter(values.values(), dtype=np.float64, count=len(values))


@dataclass
class QualityModel:
    """Standardisation + two-class LDA over the 25 measures, stored as numbers (JSON)."""

    feature_names: tuple[str, ...]
    linear: StandardizedLinear
    threshold: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """P(live) for an (n, 25) feature array (or one 25-vector)."""
        x = np.nan_to_num(np.asarray(features, dtype=np.float64), nan=0.0, posinf=1e12,
                          neginf=-1e12)
        return self.linear.predict_proba(x)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": MODEL_FORMAT,
            "canonical_short_side": CANONICAL_SHORT_SIDE,
            "feature_names": list(self.feature_names),
            **self.linear.to_dict(),
            "threshold": float(self.threshold),
            "info": self.info,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> QualityModel:
        if d.get("format") != MODEL_FORMAT:
            raise ModelError("not a facelive quality model")
        from facelive.iqa import MEASURE_NAMES

        names = tuple(d["feature_names"])
        if names != tuple(MEASURE_NAMES):
            raise ModelError("quality model's feature order does not match this facelive version")
        if int(d.get("canonical_short_side", CANONICAL_SHORT_SIDE)) != CANONICAL_SHORT_SIDE:
            raise ModelError("quality model was trained at another working resolution")
        return cls(names, StandardizedLinear.from_dict(d), float(d["threshold"]),
                   dict(d.get("info", {})))

    @classmethod
    def fit(cls, features: np.ndarray, is_live: np.ndarray) -> QualityModel:
        """Fit the standardiser and LDA (solver ``eigen``, ``shrinkage="auto"``)."""
        from facelive.iqa import MEASURE_NAMES

        x = np.nan_to_num(np.asarray(features, dtype=np.float64), nan=0.0, posinf=1e12,
                          neginf=-1e12)
        return cls(tuple(MEASURE_NAMES), StandardizedLinear.fit(x, is_live))

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> QualityModel:
        if path is None:
            return cls.from_dict(modelstore.read_json(MODEL_FILE))
        p = Path(path)
        return cls.from_dict(modelstore.read_json(p.name, p.parent))


class QualityTest(LivenessTest):
    """Liveness from whole-frame image quality (25 measures + LDA). Needs no face."""

    name = "quality"
    version = "1"
    needs_face = False

    def __init__(self, model_path: str | os.PathLike[str] | None = None,
                 threshold: float | None = None) -> None:
        self.model = QualityModel.load(model_path)
        from facelive.iqa import biqi_model, niqe_model

        niqe_model.load_model()  # load (and checksum) the measure models now, not on the
        biqi_model.load_model()  # first frame
        self.threshold = self.model.threshold if threshold is None else float(threshold)
        self.version = str(self.model.info.get("version", self.version))

    def score_frame(self, frame: Frame) -> float:
        feats = frame.cache.get("quality_features")
        if feats is None:
            feats = quality_features(frame.image)
            frame.cache["quality_features"] = feats
        return float(self.model.predict_proba(feats)[0])
