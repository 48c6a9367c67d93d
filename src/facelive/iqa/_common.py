"""Shared conventions of the quality measures (see ``docs/quality-measures.md``).

* ``I``: the grey image, float64 in 0..255, ITU-R BT.601 luma (the weights of OpenCV's BGR2GRAY,
  without its rounding to uint8).
* ``I'``: ``I`` smoothed by a 3x3 Gaussian, sigma 0.5, symmetric border (OpenCV BORDER_REFLECT,
  which repeats the edge pixel, like MATLAB's ``'symmetric'``).
* Divisions by zero return documented values (e.g. PSNR of identical images -> :data:`DB_CAP`).
"""

from __future__ import annotations

import cv2
import numpy as np

from facelive.errors import ImageError

DB_CAP = 100.0
"""PSNR and SNR are clipped to [-DB_CAP, DB_CAP] dB (identical images give +DB_CAP)."""
MIN_SIDE = 16
"""Smallest image side the measures accept."""
BORDER = cv2.BORDER_REFLECT
"""Symmetric border (edge pixel repeated) used by every filter."""
BT601 = np.array([0.114, 0.587, 0.299])
"""BT.601 luma weights in B, G, R order (as OpenCV's BGR2GRAY)."""


def _as_array(image: object, what: str) -> np.ndarray:
    if not isinstance(image, np.ndarray):
        raise ImageError(f"{what}: expected a numpy array, got {type(image).__name__}")
    if image.dtype.kind not in "biuf":
        raise ImageError(f"{what}: unsupported array dtype {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3)):
        raise ImageError(f"{what}: expected an (H, W) or (H, W, 3) array, got shape {image.shape}")
    a = image.astype(np.float64, copy=False)
    if a.size == 0:
        raise ImageError(f"{what}: empty array")
    if image.dtype.kind == "f" and not np.isfinite(a).all():  # integers are always finite
        raise ImageError(f"{what}: array contains NaN or infinite values")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    return a


def check_image(image: object, what: str = "image", min_side: int = MIN_SIDE) -> np.ndarray:
    """Validate an image array and return it as float64 (grey or 3-channel)."""
    a = _as_array(image, what)
    h, w = a.shape[:2]
    if h < min_side or w < min_side:
        raise ImageError(f"{what}: {w}x{h} is too small; at least {min_side}x{min_side} needed")
    return a


def check_pair(
    reference: object, distorted: object, *, colour: bool = False, min_side: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Validate a full-reference pair: same shape, float64; grey unless ``colour``."""
    r = check_image(reference, "reference", min_side)
    d = check_image(distorted, "distorted", min_side)
    if r.shape != d.shape:
        raise ImageError(f"reference {r.shape} and distorted {d.shape} differ in shape")
    if colour:
        if r.ndim == 2:
            r = np.repeat(r[:, :, None], 3, axis=2)
            d = np.repeat(d[:, :, None], 3, axis=2)
    elif r.ndim == 3:
        raise ImageError("this measure takes grey (H, W) arrays; convert with to_grey()")
    return r, d


def to_grey(image: np.ndarray) -> np.ndarray:
    """BGR (H, W, 3) or grey (H, W) -> grey float64 0..255 (BT.601 luma, as OpenCV BGR2GRAY).

    Parameters
    ----------
    image : numpy.ndarray
        BGR (H, W, 3) or grey (H, W), any real dtype, 0..255.

    Returns
    -------
    numpy.ndarray
        ``I``: grey float64 (H, W), 0..255.
    """
    a = _as_array(image, "image")
    if a.ndim == 2:
        return a
    return a @ BT601


def blurred(image: np.ndarray) -> np.ndarray:
    """``I'``: 3x3 Gaussian, sigma 0.5, symmetric border, float64 (grey or channel-wise colour).

    Galbally, Marcel & Fierrez, IEEE TIP 23(2), 2014, Sec. III: the reference of the full-reference
    measures is this smoothed copy of the input.

    Parameters
    ----------
    image : numpy.ndarray
        Grey (H, W) or colour (H, W, 3) float64, 0..255 (e.g. :func:`to_grey`'s output).

    Returns
    -------
    numpy.ndarray
        ``I'``: the same shape, float64.
    """
    a = _as_array(image, "image")
    return cv2.GaussianBlur(a, (3, 3), 0.5, sigmaY=0.5, borderType=BORDER)


def ratio(num: float, den: float, both_zero: float) -> float:
    """``num / den`` with ``both_zero`` for 0/0 and +-1e12 for x/0."""
    if den == 0.0:
        if num == 0.0:
            return float(both_zero)
        return float(np.copysign(1e12, num))
    return float(num / den)


def db(num: float, den: float) -> float:
    """``10 log10(num / den)`` clipped to [-DB_CAP, DB_CAP] (0/0 -> DB_CAP)."""
    if den <= 0.0:
        return DB_CAP if num >= 0.0 else -DB_CAP
    if num <= 0.0:
        return -DB_CAP
    return float(np.clip(10.0 * np.log10(num / den), -DB_CAP, DB_CAP))


def sobel(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """3x3 Sobel derivatives (x, y) with symmetric border, float64."""
    gx = cv2.Sobel(grey, cv2.CV_64F, 1, 0, ksize=3, borderType=BORDER)
    gy = cv2.Sobel(grey, cv2.CV_64F, 0, 1, ksize=3, borderType=BORDER)
    return gx, gy


def total(a: np.ndarray) -> float:
    """``sum(a)`` of a 2-D float array (rows may be strided), accumulated in float64 (OpenCV)."""
    return float(cv2.sumElems(a)[0])


def total_sq(a: np.ndarray) -> float:
    """``sum(a * a)`` of a 2-D float array, accumulated in float64 (OpenCV)."""
    return float(cv2.norm(a, cv2.NORM_L2SQR))
