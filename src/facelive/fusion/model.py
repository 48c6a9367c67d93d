"""Score fusion: one liveness decision from several tests' scores.

The thesis fused its tests with linear discriminant analysis; so does facelive by default. Each
test's P(live) is mapped to its logit, standardised, and projected by a two-class LDA (solver
``eigen``, automatic Ledoit-Wolf shrinkage). For two classes LDA's posterior is the logistic of its
decision function, so the fitted model is stored as plain numbers (JSON) and evaluated with numpy.

A model is fitted for every non-empty subset of the tests, so that a frame where one test has no
score (no face, error, timeout) can still be fused from the others when the missing-score policy
allows it (:data:`MISSING_POLICIES`).

The linear model itself is :class:`facelive.linear.StandardizedLinear`. The shipped
fusion is a *monotone* one (:func:`fit_nonneg`: non-negative weights on the logits, fitted on
scores pooled from both databases); the file format is the same for both kinds.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelive import modelstore
from facelive.errors import ModelError
from facelive.linear import StandardizedLinear

FUSION_MODEL = "fusion.json"

EPS = 1e-6
MISSING_POLICIES = ("abstain", "available")
"""``abstain``: any missing score -> no decision; ``available``: fuse the tests that scored."""


def logit(p: np.ndarray | float) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)
    return np.log(p / (1.0 - p))


@dataclass
class LinearFusion:
    """One fitted linear fusion over an ordered set of tests: P(live) from the tests' logits."""

    tests: tuple[str, ...]
    model: StandardizedLinear
    threshold: float = 0.5
    metrics: dict[str, Any] = field(default_factory=dict)

    def predict_proba(self, scores: np.ndarray) -> np.ndarray:
        """P(live) for an (n, len(tests)) array of per-test P(live)."""
        return self.model.predict_proba(logit(scores))

    def to_dict(self) -> dict[str, Any]:
        return {"tests": list(self.tests), **self.model.to_dict(),
                "threshold": float(self.threshold), "metrics": self.metrics}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LinearFusion:
        return cls(tuple(d["tests"]), StandardizedLinear.from_dict(d),
                   float(d.get("threshold", 0.5)), dict(d.get("metrics", {})))


def fused_scores(model: LinearFusion, scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """P(live) of a :class:`LinearFusion` over per-sample scores (NaN where one is missing)."""
    x = np.column_stack([scores[t] for t in model.tests])
    ok = np.all(np.isfinite(x), axis=1)
    out = np.full(len(x), np.nan)
    if ok.any():
        out[ok] = model.predict_proba(x[ok])
    return out


def fit_linear(scores: np.ndarray, is_live: np.ndarray, tests: Sequence[str],
               estimator: Any | None = None) -> LinearFusion:
    """Fit a linear fusion on per-test P(live) ``scores`` (n, k) and labels (True = live).

    ``estimator`` is any scikit-learn linear classifier exposing ``coef_`` and ``intercept_`` after
    ``fit`` (LDA by default; e.g. ``LogisticRegression`` also works).
    """
    return LinearFusion(tuple(tests), StandardizedLinear.fit(logit(scores), is_live, estimator))


def fit_nonneg(scores: np.ndarray, is_live: np.ndarray, tests: Sequence[str], *,
               sample_weight: np.ndarray | None = None, l2: float = 1e-2) -> LinearFusion:
    """Fit a monotone fusion: logistic regression on the standardised logits with every weight
    >= 0 (:func:`facelive.linear.fit_sign_constrained`), so that a higher P(live) from any test
    never lowers the fused P(live). An unconstrained fit may give a test a negative weight where,
    in the fitting data, it is anti-correlated with the label given the others: a quirk of that
    data which flips elsewhere. ``sample_weight`` balances domains (e.g. database x label)."""
    from facelive.linear import fit_sign_constrained

    return LinearFusion(tuple(tests), fit_sign_constrained(logit(scores), is_live,
                                                           sample_weight=sample_weight, l2=l2))


def balanced_weights(cells: Sequence[str]) -> np.ndarray:
    """Sample weights that give every cell (e.g. ``"database/label"``) the same total weight."""
    c = np.asarray(cells, dtype=object)
    w = np.empty(len(c))
    for v in set(c.tolist()):
        m = c == v
        w[m] = 1.0 / m.sum()
    return w * len(c) / w.sum()


@dataclass
class FusionModel:
    """Linear fusions for every subset of a set of tests, plus the missing-score policy."""

    tests: tuple[str, ...]
    subsets: dict[tuple[str, ...], LinearFusion]
    missing: str = "abstain"
    info: dict[str, Any] = field(default_factory=dict)

    def covers(self, tests: Sequence[str]) -> bool:
        return tuple(sorted(tests)) in self.subsets

    def fuse(self, scores: Mapping[str, float | None],
             tests: Sequence[str]) -> tuple[float | None, float | None]:
        """Fuse one frame's scores of ``tests``; returns (P(live), threshold) or (None, None)."""
        present = tuple(sorted(t for t in tests if scores.get(t) is not None))
        if not present or (self.missing == "abstain" and len(present) < len(tests)):
            return None, None
        model = self.subsets.get(present)
        if model is None:
            return None, None
        x = np.array([[scores[t] for t in model.tests]], dtype=np.float64)
        return float(model.predict_proba(x)[0]), model.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "facelive-fusion/1",
            "tests": list(self.tests),
            "missing": self.missing,
            "info": self.info,
            "subsets": [m.to_dict() for m in self.subsets.values()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> FusionModel:
        if d.get("format") != "facelive-fusion/1":
            raise ValueError("not a facelive fusion model")
        subsets = {}
        for s in d["subsets"]:
            m = LinearFusion.from_dict(s)
            subsets[tuple(sorted(m.tests))] = m
        missing = d.get("missing", "abstain")
        if missing not in MISSING_POLICIES:
            raise ValueError(f"unknown missing-score policy {missing!r}")
        return cls(tuple(d["tests"]), subsets, missing, dict(d.get("info", {})))


def all_subsets(tests: Sequence[str]) -> list[tuple[str, ...]]:
    names = sorted(tests)
    return [c for r in range(1, len(names) + 1) for c in itertools.combinations(names, r)]


def load_fusion(path: str | os.PathLike[str] | None = None,
                missing: str | None = None) -> FusionModel | None:
    """Load the shipped fusion model (or one at ``path``); None when none is shipped."""
    try:
        if path is None:
            if not modelstore.model_path(FUSION_MODEL).exists():
                return None
            data = modelstore.read_json(FUSION_MODEL)
        else:
            p = Path(path)
            data = modelstore.read_json(p.name, p.parent)
        model = FusionModel.from_dict(data)
    except (ValueError, KeyError) as exc:
        raise ModelError(f"fusion model is invalid: {exc}") from None
    if missing is not None:
        model.missing = missing
    return model
