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

from facelive.quality._common import BORDER, check_pair, sobel

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
    """Total edge difference, mean |E(I) - E(I')| over binary Sobel edge maps."""
    r, d = check_pair(reference, distorted)
    return _ted(edge_map(*sobel(r)), edge_map(*sobel(d)))


def corner_count(gx: np.ndarray, gy: np.ndarray) -> int:
    """Number of Harris corners from Sobel derivatives (see the module docstring)."""
    a = cv2.GaussianBlur(gx * gx, (5, 5), 1.0, borderType=BORDER)
    b = cv2.GaussianBlur(gy * gy, (5, 5), 1.0, borderType=BORDER)
    c = cv2.GaussianBlur(gx * gy, (5, 5), 1.0, borderType=BORDER)
    # R = a b - c^2 - k (a + b)^2, in place
    c *= c
    resp = a * b
    resp -= c
    a += b
    a *= a
    a *= HARRIS_K
    resp -= a
    top = float(resp.max())
    if top <= 0.0:
        return 0
    peak = cv2.dilate(resp, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return int(np.count_nonzero((resp >= peak) & (resp > CORNER_QUALITY * top)))


def _tcd(n1: int, n2: int) -> float:
    top = max(n1, n2)
    return 0.0 if top == 0 else abs(n1 - n2) / top


def tcd(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Total corner difference, |n(I) - n(I')| / max(n(I), n(I')), 0 when neither has corners."""
    r, d = check_pair(reference, distorted)
    return _tcd(corner_count(*sobel(r)), corner_count(*sobel(d)))
