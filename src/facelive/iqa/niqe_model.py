"""NIQE, the Natural Image Quality Evaluator (no reference).

Mittal, Soundararajan & Bovik, "Making a 'completely blind' image quality analyzer", IEEE Signal
Processing Letters 20(3), 2013 (``computequality.m``, ``computefeature.m``): MSCN coefficients
(7x7 Gaussian window, sigma 7/6, C = 1, replicated border); per patch 18 features (GGD shape and
variance of the MSCN coefficients; AGGD shape, mean, left and right variance of the products with
the 4 neighbours (0,1), (1,0), (1,1), (-1,1), circularly shifted within the patch), at the full and
half scale (patch p and p/2, area interpolation): 36 features. The image's patches give a
multivariate Gaussian (mu_t, Sigma_t); NIQE = sqrt((mu - mu_t)^T pinv((Sigma + Sigma_t)/2)
(mu - mu_t)) against the pristine model (mu, Sigma).

The pristine model ``models/niqe_pristine.npz`` is this project's own, fitted by
``facelive train niqe`` on scikit-image's public-domain sample images (see
``docs/quality-measures.md``); it is not the LIVE-derived ``modelparameters.mat``.
Patches are 96x96 (as the original) when the image holds at least 2x2 of them, else the largest
multiple of 8 (>= 8) that does.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from facelive import modelstore
from facelive.errors import ModelError
from facelive.iqa._common import check_image, to_grey
from facelive.iqa._ggd import fit_aggd, fit_ggd

MODEL_FILE = "niqe_pristine.npz"
PATCH = 96
N_FEATURES = 36
SHIFTS = ((0, 1), (1, 0), (1, 1), (-1, 1))
SHARPNESS_THRESHOLD = 0.75
"""Training keeps the patches whose mean local sigma exceeds this fraction of the image's best."""

_WINDOW = cv2.getGaussianKernel(7, 7.0 / 6.0, cv2.CV_64F)


def mscn(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean-subtracted contrast-normalised coefficients and the local sigma (Mittal et al. 2013)."""
    mu = cv2.sepFilter2D(grey, cv2.CV_64F, _WINDOW, _WINDOW, borderType=cv2.BORDER_REPLICATE)
    sq = np.multiply(grey, grey)
    sigma = cv2.sepFilter2D(sq, cv2.CV_64F, _WINDOW, _WINDOW, dst=sq,
                            borderType=cv2.BORDER_REPLICATE)
    sigma -= np.square(mu)
    np.abs(sigma, out=sigma)
    np.sqrt(sigma, out=sigma)
    out = np.subtract(grey, mu, out=mu)
    out /= sigma + 1.0
    return out, sigma


def patch_size(h: int, w: int) -> int:
    """96, or the largest multiple of 8 (>= 8) that fits 2x2 patches in an h x w image."""
    p = PATCH
    while p > 8 and (h // p < 2 or w // p < 2):
        p -= 8
    return p


def _patches(x: np.ndarray, p: int) -> np.ndarray:
    ny, nx = x.shape[0] // p, x.shape[1] // p
    return x[: ny * p, : nx * p].reshape(ny, p, nx, p).transpose(0, 2, 1, 3).reshape(-1, p, p)


def _wrap_slices(d: int, p: int) -> tuple[tuple[slice, slice], ...]:
    """(destination, source) slices of ``np.roll`` by ``d`` along an axis of length ``p``."""
    s = d % p
    if s == 0:
        return ((slice(None), slice(None)),)
    return ((slice(s, None), slice(None, p - s)), (slice(None, s), slice(p - s, None)))


def _scale_features(blocks: np.ndarray) -> np.ndarray:
    n, p = len(blocks), blocks.shape[1]
    alpha, var = fit_ggd(blocks.reshape(n, -1))
    # the 4 neighbour products of every patch (circular within the patch, as np.roll), fitted
    # in one batch: rows (shift, patch)
    pairs = np.empty((len(SHIFTS),) + blocks.shape)
    for i, (dy, dx) in enumerate(SHIFTS):
        for ydst, ysrc in _wrap_slices(dy, p):
            for xdst, xsrc in _wrap_slices(dx, p):
                np.multiply(blocks[:, ydst, xdst], blocks[:, ysrc, xsrc],
                            out=pairs[i][:, ydst, xdst])
    a, eta, lvar, rvar = (v.reshape(len(SHIFTS), n) for v in fit_aggd(pairs.reshape(4 * n, -1)))
    cols = [alpha, var]
    for i in range(len(SHIFTS)):
        cols.extend((a[i], eta[i], lvar[i], rvar[i]))
    return np.stack(cols, axis=1)


def _features(img: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """(features (n_patches, 36), local sigma) of a grey image cropped to whole p x p patches."""
    m1, sigma = mscn(img)
    half = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    m2, _ = mscn(half)
    f1 = _scale_features(_patches(m1, p))
    f2 = _scale_features(_patches(m2, p // 2))
    return np.concatenate([f1, f2], axis=1), sigma


def _crop(grey: np.ndarray, p: int | None) -> tuple[np.ndarray, int]:
    h, w = grey.shape
    p = p or patch_size(h, w)
    if h < p or w < p:
        raise ValueError(f"image {w}x{h} is smaller than one {p}x{p} patch")
    return grey[: h // p * p, : w // p * p], p


def patch_features(grey: np.ndarray, p: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(features (n_patches, 36), sharpness (n_patches,)) of a grey float64 image."""
    img, p = _crop(grey, p)
    feats, sigma = _features(img, p)
    return feats, _patches(sigma, p).mean(axis=(1, 2))


@lru_cache(maxsize=1)
def load_model() -> tuple[np.ndarray, np.ndarray]:
    """The pristine (mu, Sigma), read once and verified through :mod:`facelive.modelstore`."""
    z = modelstore.read_npz(MODEL_FILE)
    mu, cov = z.get("mu"), z.get("cov")
    if mu is None or cov is None or mu.shape != (N_FEATURES,) or cov.shape != (36, 36):
        raise ModelError(f"{MODEL_FILE}: expected mu (36,) and cov (36, 36)")
    mu.setflags(write=False)
    cov.setflags(write=False)
    return mu, cov


def _niqe(grey: np.ndarray) -> float:
    mu, cov = load_model()
    feats, _ = _features(*_crop(grey, None))
    mu_t = feats.mean(axis=0)
    cov_t = np.cov(feats, rowvar=False) if len(feats) > 1 else np.zeros_like(cov)
    d = mu - mu_t
    # symmetric matrix: the eigen-decomposition pseudo-inverse (the same cut-off, as its
    # |eigenvalues| are its singular values) is cheaper than the SVD one
    dist2 = float(d @ np.linalg.pinv((cov + cov_t) / 2.0, hermitian=True) @ d)
    return float(np.sqrt(max(dist2, 0.0)))


def niqe(image: np.ndarray) -> float:
    """NIQE of a grey or BGR image (lower = closer to the pristine model).

    Parameters
    ----------
    image : numpy.ndarray
        Grey (H, W) or BGR (H, W, 3), 0..255.

    Returns
    -------
    float
        >= 0; lower = closer to the pristine model.
    """
    return _niqe(to_grey(check_image(image)))
