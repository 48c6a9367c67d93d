"""Full-reference pixel-difference measures: MSE, PSNR, SNR, SC, MD, AD, NAE, RAMD, LMSE.

Galbally, Marcel & Fierrez, "Image Quality Assessment for Fake Biometric Detection", IEEE TIP
23(2), 2014, Table I; definitions from Avcibas, Sankur & Sayood, "Statistical evaluation of image
quality measures", J. Electronic Imaging 11(2), 2002, and Eskicioglu & Fisher, "Image quality
measures and their performance", IEEE Trans. Communications 43(12), 1995.
All take ``(reference, distorted)``: same-shape grey float arrays (0..255), ``D = reference -
distorted``, sums over all N pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

from facelive.iqa._common import BORDER, check_pair, db, ratio, total_sq

RAMD_R = 10
"""R of the R-averaged maximum difference."""


def mse(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean squared error, mean(D^2) (Eskicioglu & Fisher 1995).

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        >= 0; 0 for identical images.
    """
    r, d = check_pair(reference, distorted)
    diff = r - d
    return float(np.mean(diff * diff))


def _psnr(m: float) -> float:
    return db(255.0**2, m)


def psnr(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Peak SNR, 10 log10(255^2 / MSE) dB, capped at 100 dB (Eskicioglu & Fisher 1995).

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        In dB, at most 100 (identical images).
    """
    return _psnr(mse(reference, distorted))


def _snr(sum_sq: float, n: int, m: float) -> float:
    return db(sum_sq, n * m)


def snr(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Signal-to-noise ratio, 10 log10(sum(I^2) / (N MSE)) dB, clipped to +-100 dB
    (Eskicioglu & Fisher 1995).

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        In dB, in [-100, 100].
    """
    r, _ = check_pair(reference, distorted)
    return _snr(float(np.sum(r * r)), r.size, mse(reference, distorted))


def sc(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Structural content, sum(I^2) / sum(I'^2) (Eskicioglu & Fisher 1995); 1 when both are 0.

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        >= 0; 1 for identical images.
    """
    r, d = check_pair(reference, distorted)
    return ratio(float(np.sum(r * r)), float(np.sum(d * d)), 1.0)


def md(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Maximum difference, max |D| (Eskicioglu & Fisher 1995).

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        >= 0, in grey levels.
    """
    r, d = check_pair(reference, distorted)
    return float(np.max(np.abs(r - d)))


def ad(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Average difference, mean(D) (Eskicioglu & Fisher 1995).

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        In grey levels (signed).
    """
    r, d = check_pair(reference, distorted)
    return float(np.mean(r - d))


def nae(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Normalised absolute error, sum|D| / sum|I| (Eskicioglu & Fisher 1995); 0 when both are 0.

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        >= 0; 0 for identical images.
    """
    r, d = check_pair(reference, distorted)
    return ratio(float(np.sum(np.abs(r - d))), float(np.sum(np.abs(r))), 0.0)


def _ramd(absdiff: np.ndarray, r: int = RAMD_R) -> float:
    flat = absdiff.ravel()
    k = min(r, flat.size)
    if absdiff.ndim == 2 and absdiff.shape[0] >= k and flat.size > 64 * k:
        # the k largest values are >= the k-th largest row maximum: partition only those
        rowmax = absdiff.max(axis=1)
        t = np.partition(rowmax, rowmax.size - k)[rowmax.size - k]
        flat = flat[flat >= t]
    return float(np.mean(np.partition(flat, flat.size - k)[flat.size - k:]))


def ramd(reference: np.ndarray, distorted: np.ndarray) -> float:
    """R-averaged maximum difference: mean of the R = 10 largest |D| (Avcibas et al. 2002).

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        >= 0, in grey levels.
    """
    r, d = check_pair(reference, distorted)
    return _ramd(np.abs(r - d))


def laplacian(image: np.ndarray) -> np.ndarray:
    """4-neighbour Laplacian [[0,1,0],[1,-4,1],[0,1,0]] with symmetric border, in the dtype of
    ``image`` (a float array)."""
    return cv2.Laplacian(image, -1, ksize=1, borderType=BORDER)


def _lmse(lap_ref: np.ndarray, lap_diff: np.ndarray) -> float:
    return ratio(total_sq(lap_diff), total_sq(lap_ref), 0.0)


def lmse(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Laplacian MSE, sum((L(I) - L(I'))^2) / sum(L(I)^2), L the 4-neighbour Laplacian
    (Eskicioglu & Fisher 1995); 0 when both sums are 0.

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        >= 0; 0 for identical images.
    """
    r, d = check_pair(reference, distorted)
    return _lmse(laplacian(r), laplacian(r - d))
