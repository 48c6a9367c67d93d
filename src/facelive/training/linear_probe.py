"""The linear model of a linear probe: standardisation and an L2 logistic regression folded
into one weight vector (the probe test, :mod:`facelive.training.probe`, and the LP-FT head of
:mod:`facelive.training.cnn.train`). Plain numpy and scikit-learn, no torch."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import expit

from facelive.fusion.model import balanced_weights
from facelive.linear import standardise


def fit_linear(features: np.ndarray, y: np.ndarray, strata: Sequence[str],
               C: float) -> tuple[np.ndarray, float]:
    """Standardise, fit an L2 logistic regression (strata weighted equally) and fold the two:
    returns ``(w, b)`` with ``logit P(live) = features @ w + b``."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(features, np.float64)
    mu, sd = standardise(x)
    clf = LogisticRegression(C=C, max_iter=5000)
    clf.fit((x - mu) / sd, np.asarray(y, int), sample_weight=balanced_weights(strata))
    w = clf.coef_[0] / sd
    return w, float(clf.intercept_[0] - np.dot(w, mu))


def predict_linear(features: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """P(live) of the folded linear model."""
    return expit(np.asarray(features, np.float64) @ w + b)
