"""All 25 quality measures of one image against its blurred copy, sharing intermediates.

Galbally, Marcel & Fierrez, "Image Quality Assessment for Fake Biometric Detection", IEEE TIP
23(2), 2014, Table I. ``I`` (grey), ``I'`` (:func:`blurred`), ``C`` and ``C'`` (colour) are built
once; the DFTs, Sobel gradients and Laplacians are shared between the measures. A subset of the
measures can be asked for (``names``); only what it needs is computed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

import cv2
import numpy as np
from numpy.typing import DTypeLike

from facelive.iqa._common import BORDER, blurred, check_image, sobel, to_grey
from facelive.iqa._common import ratio as _ratio
from facelive.iqa.biqi_model import _biqi
from facelive.iqa.correlation import _mas_mams, planes
from facelive.iqa.edges import _tcd, _ted, corner_count, edges_from_mag2
from facelive.iqa.niqe_model import _niqe
from facelive.iqa.noreference import _hlfi, _jqi
from facelive.iqa.pixel import _lmse, _psnr, _ramd, _snr, laplacian
from facelive.iqa.spectral import _gme, _gpe, _sme, _spe, spectrum
from facelive.iqa.structural import _rred, _ssim, _vif

MEASURE_NAMES: tuple[str, ...] = (
    "MSE", "PSNR", "SNR", "SC", "MD", "AD", "NAE", "RAMD", "LMSE", "NXC", "MAS", "MAMS", "TED",
    "TCD", "SME", "SPE", "GME", "GPE", "SSIM", "VIF", "RRED", "JQI", "HLFI", "BIQI", "NIQE",
)
_PIXEL = frozenset(("MSE", "PSNR", "SNR", "SC", "MD", "AD", "NAE", "RAMD", "NXC"))
_COLOUR = frozenset(("MAS", "MAMS"))
_GRADIENT = frozenset(("TED", "TCD", "GME", "GPE"))
_SPECTRAL = frozenset(("SME", "SPE", "HLFI"))
WORKING_PRECISION_MEASURES = frozenset(
    ("LMSE", "SME", "SPE", "HLFI", "SSIM", "VIF", "RRED", "BIQI"))
"""The measures computed in ``measures(dtype=...)``'s working precision; the others are float64:
sums over I and D (cheap, exact enough only in float64), thresholded or counted ones (TED, TCD:
a flipped pixel moves them > 1e-4), GPE (in flat regions the reference's gradient phase is that
of rounding noise, which float32 does not reproduce), GME (shares GPE's gradients); not tried:
JQI (cheap), MAS, MAMS and NIQE (unweighted by the shipped model)."""


def measures(
    image: np.ndarray, names: Iterable[str] | None = None, *, dtype: DTypeLike = np.float32
) -> OrderedDict[str, float]:
    """The 25 measures of ``image``, sharing intermediates.

    Full-reference measures compare I (the grey image, the reference) with I' (its blurred copy,
    the distorted image); no-reference ones use I.

    Parameters
    ----------
    image : numpy.ndarray
        BGR ``uint8`` (H, W, 3), or grey (H, W) in 0..255; at least 16x16.
    names : iterable of str, optional
        Compute only these measures (returned in :data:`MEASURE_NAMES` order); each value is the
        same number as in the full computation (e.g. for a model that gives some measures no
        weight).
    dtype : numpy dtype, optional
        Working precision of the filtering, FFTs and wavelets of
        :data:`WORKING_PRECISION_MEASURES`: float32 (default; within 1e-4 relative of the
        float64 reference on natural images, tested) or ``np.float64`` (the reference). I, I',
        D = I - I' and the other measures are always float64.

    Returns
    -------
    collections.OrderedDict
        Measure name -> value, in :data:`MEASURE_NAMES` order; every value is a finite float.

    Raises
    ------
    ValueError
        On an unknown measure name or dtype.
    facelive.ImageError
        On an array that is not a usable image (shape, dtype, size, NaN).
    """
    want = _wanted(names)
    if np.dtype(dtype) not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, not {np.dtype(dtype)}")
    a = check_image(image)
    grey = to_grey(a)
    gb = blurred(grey)
    diff = grey - gb
    out: dict[str, float] = {}
    if want & _PIXEL:
        out.update(_pixel_measures(grey, gb, diff))
    # I and D in the working precision; I' = I - D is not formed (see the measures' docstrings)
    x, d = grey.astype(dtype, copy=False), diff.astype(dtype, copy=False)
    if "LMSE" in want:
        out["LMSE"] = _lmse(laplacian(x), laplacian(d))
    if want & _COLOUR:
        out.update(_colour_measures(image, a, grey, gb))
    if want & _GRADIENT:
        out.update(_gradient_measures(grey, gb, want))
    if want & _SPECTRAL:
        out.update(_spectral_measures(grey, d, want, dtype))
    if "SSIM" in want:
        out["SSIM"] = _ssim(x, d, y_is_blurred=True)
    if "VIF" in want:
        out["VIF"] = _vif(x, d)
    if "RRED" in want:
        out["RRED"] = _rred(x, gb.astype(dtype, copy=False))
    if "JQI" in want:
        out["JQI"] = _jqi(grey)
    if "BIQI" in want:
        out["BIQI"] = _biqi(x)
    if "NIQE" in want:
        out["NIQE"] = _niqe(grey)
    return OrderedDict((k, out[k]) for k in MEASURE_NAMES if k in want)


def _wanted(names: Iterable[str] | str | None) -> frozenset[str]:
    """The measures asked for: all of them for ``None``, else ``names`` (one name or several).

    Parameters
    ----------
    names : iterable of str, str or None
        The ``names`` argument of :func:`measures`.

    Returns
    -------
    frozenset of str
        The names.

    Raises
    ------
    ValueError
        On a name that is not in :data:`MEASURE_NAMES`.
    """
    if names is None:
        return frozenset(MEASURE_NAMES)
    want = frozenset((names,) if isinstance(names, str) else names)
    unknown = want - frozenset(MEASURE_NAMES)
    if unknown:
        raise ValueError(f"unknown quality measure(s): {', '.join(sorted(unknown))}")
    return want


def _pixel_measures(grey: np.ndarray, gb: np.ndarray, diff: np.ndarray) -> dict[str, float]:
    """The pixel-difference measures (:data:`_PIXEL`), all from shared sums over I, I' and D.

    Parameters
    ----------
    grey, gb, diff : numpy.ndarray
        I, I' and D = I - I', float64 (H, W).

    Returns
    -------
    dict
        MSE, PSNR, SNR, SC, MD, AD, NAE, RAMD and NXC.
    """
    n = grey.size
    flat_i, flat_b, flat_d = grey.ravel(), gb.ravel(), diff.ravel()
    mse = float(np.dot(flat_d, flat_d)) / n
    sum_i2 = float(np.dot(flat_i, flat_i))
    sum_b2 = float(np.dot(flat_b, flat_b))
    absdiff = np.abs(diff)
    return {
        "MSE": mse,
        "PSNR": _psnr(mse),
        "SNR": _snr(sum_i2, n, mse),
        "SC": _ratio(sum_i2, sum_b2, 1.0),
        "MD": float(absdiff.max()),
        "AD": float(np.mean(diff)),
        "NAE": _ratio(float(absdiff.sum()), float(np.abs(grey).sum()), 0.0),
        "RAMD": _ramd(absdiff),
        "NXC": _ratio(float(np.dot(flat_i, flat_b)), sum_i2, 1.0),
    }


def _colour_measures(image: np.ndarray, a: np.ndarray, grey: np.ndarray, gb: np.ndarray
                     ) -> dict[str, float]:
    """MAS and MAMS, from the colour image C and its channel-wise blurred copy C'.

    Parameters
    ----------
    image : numpy.ndarray
        The input as given to :func:`measures`.
    a : numpy.ndarray
        The input checked (:func:`~facelive.iqa._common.check_image`), float64.
    grey, gb : numpy.ndarray
        I and I' (used for grey input, where C is I on three channels).

    Returns
    -------
    dict
        MAS and MAMS.
    """
    if a.ndim == 3:  # C and C' as (3, H, W) channel planes, each blurred like I'
        c = planes(image if image.dtype == np.uint8 else a)  # uint8 -> float64 is exact
        cb = np.empty_like(c)
        for u, v in zip(c, cb, strict=True):
            cv2.GaussianBlur(u, (3, 3), 0.5, dst=v, sigmaY=0.5, borderType=BORDER)
        mas, mams = _mas_mams(c, cb)
    else:  # grey input: C is the grey image on 3 channels, and C' its blurred copy
        mas, mams = _mas_mams(np.stack((grey,) * 3), np.stack((gb,) * 3))
    return {"MAS": mas, "MAMS": mams}


def _gradient_measures(grey: np.ndarray, gb: np.ndarray, want: frozenset[str]
                       ) -> dict[str, float]:
    """The measures of the Sobel gradients of I and I' (:data:`_GRADIENT`) that ``want`` needs.

    Parameters
    ----------
    grey, gb : numpy.ndarray
        I and I', float64.
    want : frozenset of str
        The measures asked for; TED and GME come together (they share the gradient magnitude).

    Returns
    -------
    dict
        Some of TED, TCD, GME and GPE.
    """
    out: dict[str, float] = {}
    g1, g2 = sobel(grey), sobel(gb)
    if want & {"TED", "TCD", "GME"}:
        sq1 = (g1[0] * g1[0], g1[1] * g1[1])  # shared by the edge maps, GME and Harris
        sq2 = (g2[0] * g2[0], g2[1] * g2[1])
        if "TCD" in want:
            n1, n2 = corner_count(*g1, squares=sq1), corner_count(*g2, squares=sq2)
            out["TCD"] = _tcd(n1, n2)
        m1sq = np.add(*sq1, out=sq1[0])
        m2sq = np.add(*sq2, out=sq2[0])
        out["TED"] = _ted(edges_from_mag2(m1sq), edges_from_mag2(m2sq))
        out["GME"] = _gme(np.sqrt(m1sq), np.sqrt(m2sq))
    if "GPE" in want:
        out["GPE"] = _gpe(g1, g2)
    return out


def _spectral_measures(grey: np.ndarray, d: np.ndarray, want: frozenset[str],
                       dtype: DTypeLike) -> dict[str, float]:
    """The measures of the DFTs of I and D (:data:`_SPECTRAL`) that ``want`` needs.

    Parameters
    ----------
    grey : numpy.ndarray
        I, float64.
    d : numpy.ndarray
        D = I - I' in the working precision.
    want : frozenset of str
        The measures asked for; SME and SPE come together (they share the DFT of D).
    dtype : numpy dtype
        The working precision.

    Returns
    -------
    dict
        Some of SME, SPE and HLFI.
    """
    out: dict[str, float] = {}
    h, w = grey.shape
    # F in float64 (then rounded): a float32 FFT's error is relative to the whole spectrum
    f1 = spectrum(grey).astype(np.result_type(dtype, np.complex64), copy=False)
    mag1 = np.abs(f1)
    if want & {"SME", "SPE"}:
        fd = spectrum(d)
        out["SME"] = _sme(mag1, np.abs(f1 - fd), w)
        out["SPE"] = _spe(f1, fd, w)
    out["HLFI"] = _hlfi(mag1, h, w)
    return out
