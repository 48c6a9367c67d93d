"""No-reference measures computed on ``I`` alone: JQI, HLFI.

* JQI: Wang, Sheikh & Bovik, "No-reference perceptual quality assessment of JPEG compressed
  images", ICIP 2002 (``jpeg_quality_score.m``): blockiness B across 8-pixel block boundaries,
  activity A, zero-crossing rate Z, horizontal and vertical averaged;
  S = alpha + beta B^g1 A^g2 Z^g3 with the published exponents divided by 10,000.
  B, A and Z are floored at :data:`JQI_FLOOR` so that flat images give a finite score.
* HLFI: Zhang, Hu & Sheikh (high-low frequency index, as used by Galbally et al., IEEE TIP 23(2),
  2014): on the centred magnitude spectrum, lfs = sum over |ky| <= 0.15 H and |kx| <= 0.15 W
  (signed frequency indices around the zero frequency), hfs = the rest;
  HLFI = (lfs - hfs) / sum|F| (0 for an all-zero image).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from facelive.iqa._common import check_image, to_grey
from facelive.iqa.spectral import full_sum, spectrum

JQI_ALPHA = -245.8909
JQI_BETA = 261.9373
JQI_GAMMAS = (-239.8886 / 10000.0, 160.1664 / 10000.0, 64.2859 / 10000.0)
JQI_FLOOR = 1e-6
HLFI_BAND = 0.15


def _jqi_axis(img: np.ndarray) -> tuple[float, float, float]:
    """(B, A, Z) along the rows (horizontal differences) of ``img``."""
    n = img.shape[1]
    d = img[:, 1:] - img[:, :-1]
    ad = np.abs(d)
    cols = ad[:, 7 : 8 * (n // 8 - 1) : 8]
    b = float(np.mean(cols)) if cols.size else 0.0
    a = (8.0 * float(np.mean(ad)) - b) / 7.0
    neg, pos = d < 0, d > 0  # sign changes between neighbouring differences
    z = (float(np.mean((neg[:, :-1] & pos[:, 1:]) | (pos[:, :-1] & neg[:, 1:])))
         if d.shape[1] > 1 else 0.0)
    return b, a, z


def jqi_features(grey: np.ndarray) -> tuple[float, float, float]:
    """(B, A, Z) of Wang, Sheikh & Bovik 2002, averaged over horizontal and vertical."""
    bh, ah, zh = _jqi_axis(grey)
    bv, av, zv = _jqi_axis(grey.T)
    return (bh + bv) / 2.0, (ah + av) / 2.0, (zh + zv) / 2.0


def _jqi(grey: np.ndarray) -> float:
    b, a, z = (max(v, JQI_FLOOR) for v in jqi_features(grey))
    g1, g2, g3 = JQI_GAMMAS
    return float(JQI_ALPHA + JQI_BETA * b**g1 * a**g2 * z**g3)


def jqi(image: np.ndarray) -> float:
    """JPEG quality index (Wang, Sheikh & Bovik 2002) of a grey or BGR image.

    Parameters
    ----------
    image : numpy.ndarray
        Grey (H, W) or BGR (H, W, 3), 0..255.

    Returns
    -------
    float
        The predicted quality (higher = fewer JPEG artefacts).
    """
    return _jqi(to_grey(check_image(image)))


@lru_cache(maxsize=32)
def _low_band(h: int, w: int) -> np.ndarray:
    ky = np.abs(np.fft.fftfreq(h) * h)
    kx = np.arange(w // 2 + 1)
    low = (ky[:, None] <= HLFI_BAND * h) & (kx[None, :] <= HLFI_BAND * w)
    low.setflags(write=False)
    return low


def _hlfi(mag_half: np.ndarray, h: int, w: int) -> float:
    total = full_sum(mag_half, w)
    low = full_sum(np.where(_low_band(h, w), mag_half, 0.0), w)
    if total == 0.0:
        return 0.0
    return (low - (total - low)) / total


def hlfi(image: np.ndarray) -> float:
    """High-low frequency index (lfs - hfs) / sum|F| of a grey or BGR image.

    Parameters
    ----------
    image : numpy.ndarray
        Grey (H, W) or BGR (H, W, 3), 0..255.

    Returns
    -------
    float
        In [-1, 1].
    """
    g = to_grey(check_image(image))
    return _hlfi(np.abs(spectrum(g)), *g.shape)
