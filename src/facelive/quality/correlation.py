"""Full-reference correlation measures: NXC, MAS, MAMS.

Galbally, Marcel & Fierrez, IEEE TIP 23(2), 2014, Table I; NXC from Eskicioglu & Fisher, IEEE
Trans. Communications 43(12), 1995; MAS and MAMS from Avcibas, Sankur & Sayood, J. Electronic
Imaging 11(2), 2002 (angles between the colour vectors of corresponding pixels).
"""

from __future__ import annotations

import cv2
import numpy as np

from facelive.quality._common import check_pair, ratio

_SQRT3_255 = np.sqrt(3.0) * 255.0


def nxc(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Normalised cross-correlation, sum(I * I') / sum(I^2), element-wise product
    (Eskicioglu & Fisher 1995); 1 when both sums are 0."""
    r, d = check_pair(reference, distorted)
    return ratio(float(np.sum(r * d)), float(np.sum(r * r)), 1.0)


def _alpha(c1: tuple[np.ndarray, ...], c2: tuple[np.ndarray, ...]) -> np.ndarray:
    """Per-pixel normalised angle (2/pi) arccos(<c1, c2> / (|c1| |c2|)) in [0, 1], planar input.

    Two zero vectors have angle 0; a zero vector against a non-zero one has alpha = 1.
    """
    b1, g1, r1 = c1
    b2, g2, r2 = c2
    dot = b1 * b2 + g1 * g2 + r1 * r2
    n1 = b1 * b1 + g1 * g1 + r1 * r1
    n2 = b2 * b2 + g2 * g2 + r2 * r2
    den = np.sqrt(n1 * n2)
    np.maximum(den, np.finfo(np.float64).tiny, out=den)
    cos = dot / den  # 0 where a vector is zero (dot = 0) ...
    cos += (n1 + n2) == 0  # ... and 1 where both are
    return (2.0 / np.pi) * np.arccos(np.clip(cos, -1.0, 1.0))


def planes(c: np.ndarray) -> tuple[np.ndarray, ...]:
    """The channels of an (H, W, 3) array as 3 contiguous (H, W) planes."""
    return tuple(cv2.split(c))


def _mas_mams(c1: tuple[np.ndarray, ...], c2: tuple[np.ndarray, ...]) -> tuple[float, float]:
    """(MAS, MAMS) from planar colour images (3 channel planes each)."""
    alpha = _alpha(c1, c2)
    d0, d1, d2 = (x - y for x, y in zip(c1, c2, strict=True))
    mag = np.sqrt(d0 * d0 + d1 * d1 + d2 * d2) / _SQRT3_255
    return 1.0 - float(np.mean(alpha)), float(np.mean(1.0 - (1.0 - alpha) * (1.0 - mag)))


def mas(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean angle similarity, 1 - mean(alpha_p), alpha_p = (2/pi) arccos of the cosine between the
    colour vectors C_p and C'_p (Avcibas et al. 2002). Takes (H, W, 3) arrays (grey is repeated)."""
    r, d = check_pair(reference, distorted, colour=True)
    return _mas_mams(planes(r), planes(d))[0]


def mams(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean angle-magnitude similarity as in Galbally et al. 2014, Table I:
    mean(1 - (1 - alpha_p) (1 - |C_p - C'_p| / (sqrt(3) 255))) (Avcibas et al. 2002).
    Takes (H, W, 3) arrays (grey is repeated); identical images give 0."""
    r, d = check_pair(reference, distorted, colour=True)
    return _mas_mams(planes(r), planes(d))[1]
