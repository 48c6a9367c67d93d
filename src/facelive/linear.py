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


def standardise(x: np.ndarray, min_scale: float = 1e-12) -> tuple[np.ndarray, np.ndarray]:
    """The column means and standard deviations with which features are standardised.

    Parameters
    ----------
    x : numpy.ndarray
        Features, one row per sample (float; its dtype is kept).
    min_scale : float, optional
        A standard deviation under this (a constant column) is replaced by 1, so that the column
        standardises to 0 rather than dividing by 0.

    Returns
    -------
    mean : numpy.ndarray
        Per column.
    scale : numpy.ndarray
        Per column, 1 where under ``min_scale``; ``(x - mean) / scale`` is standardised.
    """
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < min_scale] = 1.0
    return mean, scale


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
        mean, scale = standardise(x)
        est = estimator if estimator is not None else lda()
        est.fit((x - mean) / scale, np.asarray(y, dtype=int))
        return cls(mean, scale, np.ravel(est.coef_).astype(np.float64),
                   float(np.ravel(est.intercept_)[0]))


def fit_sign_constrained(x: np.ndarray, y: np.ndarray, signs: np.ndarray | None = None, *,
                         sample_weight: np.ndarray | None = None, l2: float = 1e-2
                         ) -> StandardizedLinear:
    """Standardise ``x`` and fit an L2-penalised logistic regression whose weights keep given
    signs: ``coef[j] * signs[j] >= 0`` (``signs[j] == 0`` drops input ``j``; default all +1).

    Minimises ``mean_i(w_i * logloss_i) + l2 / 2 * |coef|^2`` (weights ``w`` normalised to mean
    1; the intercept is not penalised) with L-BFGS-B under bounds. Used where a weight whose sign
    flips between capture domains is a domain's quirk rather than evidence: the fusion (every
    test's logit counts towards "live", never against) and the quality test (each measure
    counts in the direction it points in every training domain).
    """
    from scipy.optimize import minimize

    x = np.asarray(x, dtype=np.float64)
    yy = np.asarray(y, dtype=bool).astype(np.float64)
    n, k = x.shape
    if n == 0 or yy.min() == yy.max():
        raise ValueError("need samples of both classes")
    s = np.ones(k) if signs is None else np.sign(np.asarray(signs, dtype=np.float64))
    w = np.ones(n) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    w = w / w.mean()
    mean, scale = standardise(x)
    z = (x - mean) / scale * np.where(s == 0, 0.0, s)  # oriented: every weight >= 0

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        c, b = theta[:k], theta[k]
        t = z @ c + b
        ll = yy * np.logaddexp(0.0, -t) + (1 - yy) * np.logaddexp(0.0, t)
        g = w * (1.0 / (1.0 + np.exp(-np.clip(t, -500, 500))) - yy)
        value = float(np.mean(w * ll) + 0.5 * l2 * c @ c)
        return value, np.concatenate([z.T @ g / n + l2 * c, [g.mean()]])

    bounds = [(0.0, 0.0) if sj == 0 else (0.0, None) for sj in s] + [(None, None)]
    res = minimize(loss, np.zeros(k + 1), jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": 5000})
    coef = res.x[:k] * np.where(s == 0, 0.0, s)
    return StandardizedLinear(mean, scale, coef, float(res.x[k]))
