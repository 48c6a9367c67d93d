"""A standardised linear classifier stored as plain numbers (JSON), evaluated with numpy.

Both the quality test (25 measures) and the score fusion (the tests' logits) standardise their
inputs and apply a two-class linear discriminant: for two classes, LDA's posterior is the logistic
of its decision function, P(live) = sigmoid(w . (x - mean) / scale + b), so a fitted model is four
arrays of numbers, never a pickled estimator.

Reference: Fisher (1936); Ledoit & Wolf, "A well-conditioned estimator for large-dimensional
covariance matrices", J. Multivariate Analysis 88 (2004) (the automatic shrinkage).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


def lda() -> Any:
    """The project's default estimator: LDA, solver ``eigen``, ``shrinkage="auto"``."""
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    return LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto")


@dataclass
class StandardizedLinear:
    """P(class 1) = sigmoid(coef . (x - mean) / scale + intercept)."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        z = (np.atleast_2d(np.asarray(x, dtype=np.float64)) - self.mean) / self.scale
        return z @ self.coef + self.intercept

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """P(class 1) for an (n, k) array (or one k-vector)."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.decision_function(x), -500.0, 500.0)))

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": float(self.intercept)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> StandardizedLinear:
        def arr(key: str) -> np.ndarray:
            return np.asarray(d[key], dtype=np.float64)

        return cls(arr("mean"), arr("scale"), arr("coef"), float(d["intercept"]))

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, estimator: Any | None = None) -> StandardizedLinear:
        """Standardise ``x`` and fit ``estimator`` (any scikit-learn linear classifier exposing
        ``coef_`` and ``intercept_``; LDA by default) on labels ``y`` (True = class 1)."""
        x = np.asarray(x, dtype=np.float64)
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        scale[scale < 1e-12] = 1.0
        est = estimator if estimator is not None else lda()
        est.fit((x - mean) / scale, np.asarray(y, dtype=int))
        return cls(mean, scale, np.ravel(est.coef_).astype(np.float64),
                   float(np.ravel(est.intercept_)[0]))
