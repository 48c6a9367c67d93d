"""Full-reference edge and corner measures: TED, TCD.

Galbally, Marcel & Fierrez, IEEE TIP 23(2), 2014, Table I (after Nill & Bouzas, and Avcibas et
al. 2002): the edge maps are binary Sobel edges with MATLAB ``edge``'s automatic cut-off
(gradient magnitude^2 above 4 mean(magnitude^2)); the corners are Harris & Stephens (Alvey Vision
Conference 1988) corners: 3x3 local maxima of the Harris response R = det(M) - 0.04 tr(M)^2 (M the
Sobel structure tensor smoothed by a 5x5 Gaussian, sigma 1) above 1% of the image's maximum R.
"""

from __future__ import annotations

import cv2
import numpy as np

from facelive.iqa._common import BORDER, check_pair, sobel

HARRIS_K = 0.04
CORNER_QUALITY = 0.01


def edge_map(gx: np.ndarray, gy: np.ndarray) -> np.ndarray:
    """Binary Sobel edge map: mag^2 > 4 mean(mag^2) (MATLAB ``edge(I, 'sobel')``'s cut-off,
    without thinning). A flat image has no edges."""
    return edges_from_mag2(gx * gx + gy * gy)


def edges_from_mag2(mag2: np.ndarray) -> np.ndarray:
    """Binary edge map from the squared gradient magnitude (see :func:`edge_map`)."""
    return mag2 > 4.0 * float(np.mean(mag2))


def _ted(e1: np.ndarray, e2: np.ndarray) -> float:
    return float(np.count_nonzero(e1 != e2)) / e1.size


def ted(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Total edge difference, mean |E(I) - E(I')| over binary Sobel edge maps.

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        In [0, 1]; 0 for identical images.
    """
    r, d = check_pair(reference, distorted)
    return _ted(edge_map(*sobel(r)), edge_map(*sobel(d)))


def corner_count(
    gx: np.ndarray, gy: np.ndarray, squares: tuple[np.ndarray, np.ndarray] | None = None
) -> int:
    """Number of Harris corners from Sobel derivatives (see the module docstring).

    ``squares``: ``(gx * gx, gy * gy)`` when the caller already has them (read, not modified).
    """
    if squares is None:
        t = gx * gx
        a = cv2.GaussianBlur(t, (5, 5), 1.0, borderType=BORDER)
        b = cv2.GaussianBlur(np.multiply(gy, gy, out=t), (5, 5), 1.0, borderType=BORDER)
    else:
        a = cv2.GaussianBlur(squares[0], (5, 5), 1.0, borderType=BORDER)
        b = cv2.GaussianBlur(squares[1], (5, 5), 1.0, borderType=BORDER)
        t = np.empty_like(gx)
    c = cv2.GaussianBlur(np.multiply(gx, gy, out=t), (5, 5), 1.0, borderType=BORDER)
    # R = a b - c^2 - k (a + b)^2, in place
    c *= c
    resp = np.multiply(a, b, out=t)
    resp -= c
    a += b
    a *= a
    a *= HARRIS_K
    resp -= a
    top = float(resp.max())
    if top <= 0.0:
        return 0
    # 3x3 local maxima (as a 3x3 dilation with replicated border), tested only at the candidates
    w = resp.shape[1]
    ind = np.flatnonzero(resp > CORNER_QUALITY * top)
    padded = cv2.copyMakeBorder(resp, 1, 1, 1, 1, cv2.BORDER_REPLICATE).ravel()
    at = ind + 2 * (ind // w) + (w + 3)  # (y, x) -> (y + 1, x + 1) in the padded image
    v = padded[at]
    keep = np.ones(len(v), dtype=bool)
    for off in (-w - 3, -w - 2, -w - 1, -1, 1, w + 1, w + 2, w + 3):
        keep &= v >= padded[at + off]
    return int(np.count_nonzero(keep))


def _tcd(n1: int, n2: int) -> float:
    top = max(n1, n2)
    return 0.0 if top == 0 else abs(n1 - n2) / top


def tcd(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Total corner difference, |n(I) - n(I')| / max(n(I), n(I')), 0 when neither has corners.

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        In [0, 1]; 0 for identical images.
    """
    r, d = check_pair(reference, distorted)
    return _tcd(corner_count(*sobel(r)), corner_count(*sobel(d)))
