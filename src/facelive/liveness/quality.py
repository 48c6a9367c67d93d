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


def weighted_quality_features(image: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """:func:`quality_features` with only the measures ``names`` computed (the others 0.0): the
    same score for a model whose other measures have weight 0, in less time."""
    from facelive.iqa import MEASURE_NAMES, measures

    values = measures(canonical_frame(image), names)
    return np.array([values.get(n, 0.0) for n in MEASURE_NAMES], dtype=np.float64)


@dataclass
class DomainStats:
    """Per-feature location and scale of a capture domain's **bona fide** frames.

    Quality measures shift with the capture chain (camera, optics, lighting, compression) far more
    than with the attack, so a model may first express every frame relative to the live frames of
    its own domain: ``z = (x - mean) / scale``. At training each domain (database, session) gets
    its own stats; at run time the model holds one (:attr:`QualityModel.domain`), the average
    training domain by default, or the deployment's own live frames after ``facelive calibrate``.
    """

    mean: np.ndarray
    scale: np.ndarray
    n: int = 0
    source: str = ""

    @classmethod
    def of(cls, live_features: np.ndarray, source: str = "") -> DomainStats:
        """Mean and standard deviation (floored) of live frames' features (rows)."""
        x = _clean(live_features)
        if x.ndim != 2 or len(x) < 2:
            raise ValueError("domain statistics need at least two live frames")
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        floor = 1e-6 * np.maximum(np.abs(mean), 1.0)
        return cls(mean, np.maximum(scale, floor), len(x), source)

    @classmethod
    def average(cls, stats: list[DomainStats], source: str = "") -> DomainStats:
        """The average domain: mean of the means, geometric mean of the scales."""
        return cls(np.mean([s.mean for s in stats], axis=0),
                   np.exp(np.mean([np.log(s.scale) for s in stats], axis=0)),
                   sum(s.n for s in stats), source)

    def apply(self, x: np.ndarray) -> np.ndarray:
        return (x - self.mean) / self.scale

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(), "n": int(self.n),
                "source": self.source}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DomainStats:
        mean = np.asarray(d["mean"], dtype=np.float64)
        scale = np.asarray(d["scale"], dtype=np.float64)
        if mean.shape != scale.shape or not np.all(scale > 0):
            raise ModelError("quality model: bad domain statistics")
        return cls(mean, scale, int(d.get("n", 0)), str(d.get("source", "")))


def _clean(features: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(features, dtype=np.float64), nan=0.0, posinf=1e12,
                         neginf=-1e12)


@dataclass
class QualityModel:
    """Standardisation + two-class LDA over the 25 measures, stored as numbers (JSON).

    With :attr:`domain` set, features are first expressed relative to that capture domain's live
    frames (:class:`DomainStats`); the stored file then carries ``"domain"`` (absent in models
    fitted without it, which behave as before).
    """

    feature_names: tuple[str, ...]
    linear: StandardizedLinear
    threshold: float = 0.5
    info: dict[str, Any] = field(default_factory=dict)
    domain: DomainStats | None = None

    @property
    def weighted_measures(self) -> tuple[str, ...]:
        """The measures with a non-zero weight (the others cannot change the score)."""
        return tuple(n for n, c in zip(self.feature_names, self.linear.coef, strict=True)
                     if c != 0.0)

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        """P(live) for an (n, 25) feature array (or one 25-vector)."""
        x = _clean(features)
        if self.domain is not None:
            x = self.domain.apply(x)
        return self.linear.predict_proba(x)

    def with_domain(self, live_features: np.ndarray, source: str = "calibration"
                    ) -> QualityModel:
        """A copy whose domain statistics come from ``live_features`` (bona fide frames of the
        deployment); only for models fitted with domains (:meth:`fit` with ``domains``)."""
        if self.domain is None:
            raise ModelError("this quality model was fitted without domain statistics")
        return QualityModel(self.feature_names, self.linear, self.threshold, dict(self.info),
                            DomainStats.of(live_features, source))

    def to_dict(self) -> dict[str, Any]:
        d = {
            "format": MODEL_FORMAT,
            "canonical_short_side": CANONICAL_SHORT_SIDE,
            "feature_names": list(self.feature_names),
            **self.linear.to_dict(),
            "threshold": float(self.threshold),
            "info": self.info,
        }
        if self.domain is not None:
            d["domain"] = self.domain.to_dict()
        return d

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
        domain = DomainStats.from_dict(d["domain"]) if d.get("domain") else None
        if domain is not None and domain.mean.shape != (len(names),):
            raise ModelError("quality model: domain statistics of the wrong length")
        return cls(names, StandardizedLinear.from_dict(d), float(d["threshold"]),
                   dict(d.get("info", {})), domain)

    @classmethod
    def fit(cls, features: np.ndarray, is_live: np.ndarray, domains: np.ndarray | None = None,
            *, method: str = "lda", l2: float = 1.0) -> QualityModel:
        """Fit the standardiser and the linear classifier.

        ``method``: ``"lda"`` (solver ``eigen``, ``shrinkage="auto"``; the thesis's model) or
        ``"sign-constrained"``: L2-penalised logistic regression (``l2``) in which each measure
        may only count in the direction it points (live minus attack mean) in *every* training
        domain, and measures whose direction differs between domains are dropped
        (:func:`facelive.linear.fit_sign_constrained`, :func:`consistent_signs`).
        ``domains`` (one label per row): express each row relative to its domain's live rows
        first (:class:`DomainStats`); the model keeps the average domain for run time.
        """
        from facelive.iqa import MEASURE_NAMES
        from facelive.linear import fit_sign_constrained

        x = _clean(features)
        y = np.asarray(is_live, dtype=bool)
        domain = None
        labels = np.zeros(len(x), dtype=object) if domains is None else np.asarray(
            domains, dtype=object)
        if domains is not None:
            stats = []
            x = x.copy()
            for d in sorted(set(labels)):
                rows = labels == d
                st = DomainStats.of(x[rows & y], str(d))
                x[rows] = st.apply(x[rows])
                stats.append(st)
            domain = DomainStats.average(stats, "average of " + ", ".join(s.source
                                                                          for s in stats))
        if method == "lda":
            linear = StandardizedLinear.fit(x, y)
        elif method == "sign-constrained":
            linear = fit_sign_constrained(x, y, consistent_signs(x, y, labels), l2=l2)
        else:
            raise ValueError(f"unknown method {method!r}")
        return cls(tuple(MEASURE_NAMES), linear, domain=domain)

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None) -> QualityModel:
        if path is None:
            return cls.from_dict(modelstore.read_json(MODEL_FILE))
        p = Path(path)
        return cls.from_dict(modelstore.read_json(p.name, p.parent))


def consistent_signs(x: np.ndarray, is_live: np.ndarray, domains: np.ndarray) -> np.ndarray:
    """Per column: +1 / -1 when its live-minus-attack mean difference has that sign in every
    domain (with both classes), 0 when the domains disagree."""
    y = np.asarray(is_live, dtype=bool)
    rows = []
    for d in sorted(set(domains)):
        m = np.asarray(domains) == d
        if (m & y).any() and (m & ~y).any():
            rows.append(np.sign(x[m & y].mean(axis=0) - x[m & ~y].mean(axis=0)))
    if not rows:
        raise ValueError("no domain has both classes")
    signs = np.array(rows)
    return np.where(np.all(signs == signs[0], axis=0), signs[0], 0.0)


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
        if feats is None:  # only the measures the model weighs (the others are left 0.0)
            feats = weighted_quality_features(frame.image, self.model.weighted_measures)
            frame.cache["quality_features"] = feats
        return float(self.model.predict_proba(feats)[0])
