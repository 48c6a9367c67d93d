"""BIQI, the Blind Image Quality Index (no reference).

Moorthy & Bovik, "A two-step framework for constructing blind image quality indices", IEEE Signal
Processing Letters 17(5), 2010: a 3-scale, 3-orientation wavelet decomposition (biorthogonal
9/7 = PyWavelets ``bior4.4``, periodization); a zero-mean generalised Gaussian fitted to each of the
9 detail subbands gives 18 features (shape alpha and log10 of the variance); a classifier gives
p(distortion type) over {JPEG, JPEG2000, white noise, blur, fast fading} and one regressor per type
a quality q_i; BIQI = sum_i p_i q_i, on a 0 (clean) .. 100 (strongest distortion) scale.

The published models (libsvm SVMs trained on LIVE) are not available: ``models/biqi.json`` holds
this project's own multinomial logistic classifier and per-type linear regressors, fitted by
``facelive train biqi`` on synthetic distortions of scikit-image's sample images and evaluated
here with numpy (no libsvm, no temporary files, thread-safe). See ``docs/quality-measures.md``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import pywt

from facelive import modelstore
from facelive.errors import ModelError
from facelive.iqa._common import check_image, to_grey
from facelive.iqa._ggd import fit_ggd

MODEL_FILE = "biqi.json"
MODEL_FORMAT = "facelive-biqi/1"
WAVELET = "bior4.4"
LEVELS = 3
CLASSES = ("jpeg", "jp2k", "white_noise", "blur", "fast_fading")
N_FEATURES = 2 * 3 * LEVELS


def biqi_features(grey: np.ndarray) -> np.ndarray:
    """The 18 features: per detail subband (finest scale first; H, V, D), GGD alpha and
    log10(variance + 1e-6)."""
    approx = grey
    alphas, logvars = [], []
    for _ in range(LEVELS):
        approx, details = pywt.dwt2(approx, WAVELET, mode="periodization")
        for band in details:
            a, v = fit_ggd(band.ravel())
            alphas.append(a[0])
            logvars.append(np.log10(v[0] + 1e-6))
    return np.array([x for pair in zip(alphas, logvars, strict=True) for x in pair])


@lru_cache(maxsize=1)
def load_model() -> dict[str, Any]:
    """The classifier/regressors as numpy arrays, read once and verified by modelstore."""
    m = modelstore.read_json(MODEL_FILE)
    if m.get("format") != MODEL_FORMAT:
        raise ModelError(f"{MODEL_FILE}: format {m.get('format')!r} is not {MODEL_FORMAT}")
    k, n = len(CLASSES), N_FEATURES
    out = {
        "mean": np.asarray(m["mean"], np.float64),
        "scale": np.asarray(m["scale"], np.float64),
        "clf_coef": np.asarray(m["classifier"]["coef"], np.float64),
        "clf_intercept": np.asarray(m["classifier"]["intercept"], np.float64),
        "reg_coef": np.asarray(m["regressors"]["coef"], np.float64),
        "reg_intercept": np.asarray(m["regressors"]["intercept"], np.float64),
    }
    shapes = {"mean": (n,), "scale": (n,), "clf_coef": (k, n), "clf_intercept": (k,),
              "reg_coef": (k, n), "reg_intercept": (k,)}
    for key, shape in shapes.items():
        if out[key].shape != shape:
            raise ModelError(f"{MODEL_FILE}: {key} has shape {out[key].shape}, expected {shape}")
        out[key].setflags(write=False)
    return out


def predict(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(p(type), q(type)) for an 18-feature vector, with the shipped model."""
    m = load_model()
    z = (features - m["mean"]) / m["scale"]
    logits = m["clf_coef"] @ z + m["clf_intercept"]
    p = np.exp(logits - logits.max())
    p /= p.sum()
    q = np.clip(m["reg_coef"] @ z + m["reg_intercept"], 0.0, 100.0)
    return p, q


def _biqi(grey: np.ndarray) -> float:
    p, q = predict(biqi_features(grey))
    return float(p @ q)


def biqi(image: np.ndarray) -> float:
    """BIQI of a grey or BGR image, 0 (clean) .. 100 (strongly distorted)."""
    return _biqi(to_grey(check_image(image)))
