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

import cv2
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


_LO = np.array(pywt.Wavelet(WAVELET).dec_lo[1:])
"""bior4.4 analysis low-pass, 9 symmetric taps: approximation i is centred on sample 2 i."""
_HI = np.array(pywt.Wavelet(WAVELET).dec_hi[1:8])
"""bior4.4 analysis high-pass, 7 symmetric taps: detail i is centred on sample 2 i + 1."""


def _periodic_filter(x: np.ndarray, k: np.ndarray, axis: int) -> np.ndarray:
    """Circular filtering of ``x`` along ``axis`` by the odd-length symmetric kernel ``k``."""
    p = len(k) // 2
    if axis == 1:
        xp = cv2.copyMakeBorder(x, 0, 0, p, p, cv2.BORDER_WRAP)
        return cv2.filter2D(xp, -1, k.reshape(1, -1))[:, p:-p]
    xp = cv2.copyMakeBorder(x, p, p, 0, 0, cv2.BORDER_WRAP)
    return cv2.filter2D(xp, -1, k.reshape(-1, 1))[p:-p]


def dwt2(x: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """One level of ``pywt.dwt2(x, 'bior4.4', mode='periodization')``: (cA, (cH, cV, cD)).

    float64 input goes to PyWavelets (the reference); float32 input is filtered by OpenCV (rows,
    then columns of the two decimated halves; an odd side is first extended by its last sample,
    as PyWavelets does), several times faster and within float32 rounding of it (tested).
    """
    if x.dtype != np.float32:
        return pywt.dwt2(x, WAVELET, mode="periodization")
    if x.shape[0] % 2:
        x = np.concatenate([x, x[-1:]], axis=0)
    if x.shape[1] % 2:
        x = np.concatenate([x, x[:, -1:]], axis=1)
    lo = np.ascontiguousarray(_periodic_filter(x, _LO, 1)[:, ::2])
    hi = np.ascontiguousarray(_periodic_filter(x, _HI, 1)[:, 1::2])
    return (_periodic_filter(lo, _LO, 0)[::2], (_periodic_filter(lo, _HI, 0)[1::2],
            _periodic_filter(hi, _LO, 0)[::2], _periodic_filter(hi, _HI, 0)[1::2]))


def biqi_features(grey: np.ndarray) -> np.ndarray:
    """The 18 features: per detail subband (finest scale first; H, V, D), GGD alpha and
    log10(variance + 1e-6). The wavelet transform runs in the dtype of ``grey`` (:func:`dwt2`)."""
    approx = grey
    alphas, logvars = [], []
    for _ in range(LEVELS):
        approx, details = dwt2(approx)
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
    """BIQI of a grey or BGR image, 0 (clean) .. 100 (strongly distorted).

    Parameters
    ----------
    image : numpy.ndarray
        Grey (H, W) or BGR (H, W, 3), 0..255.

    Returns
    -------
    float
        0 (clean) .. 100 (strongly distorted).
    """
    return _biqi(to_grey(check_image(image)))
