"""Full-reference correlation measures: NXC, MAS, MAMS.

Galbally, Marcel & Fierrez, IEEE TIP 23(2), 2014, Table I; NXC from Eskicioglu & Fisher, IEEE
Trans. Communications 43(12), 1995; MAS and MAMS from Avcibas, Sankur & Sayood, J. Electronic
Imaging 11(2), 2002 (angles between the colour vectors of corresponding pixels).
"""

from __future__ import annotations

import numpy as np

from facelive.iqa._common import check_pair, ratio

_SQRT3_255 = np.sqrt(3.0) * 255.0


def nxc(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Normalised cross-correlation, sum(I * I') / sum(I^2), element-wise product
    (Eskicioglu & Fisher 1995); 1 when both sums are 0."""
    r, d = check_pair(reference, distorted)
    return ratio(float(np.sum(r * d)), float(np.sum(r * r)), 1.0)


def _alpha(c1: np.ndarray, c2: np.ndarray) -> np.ndarray:
    """Per-pixel angle arccos(<c1, c2> / (|c1| |c2|)) between the colour vectors of two planar
    (3, H, W) images, in radians (not yet scaled by 2/pi).

    Two zero vectors have angle 0; a zero vector against a non-zero one has a right angle.
    """
    dot = np.einsum("kij,kij->ij", c1, c2)
    n1 = np.einsum("kij,kij->ij", c1, c1)
    n2 = np.einsum("kij,kij->ij", c2, c2)
    both_zero = None
    if n1.min() == 0.0 and n2.min() == 0.0:  # rare: only then look for two zero vectors
        both_zero = (n1 + n2) == 0
    den = np.multiply(n1, n2, out=n1)
    np.sqrt(den, out=den)
    np.maximum(den, np.finfo(np.float64).tiny, out=den)
    cos = np.divide(dot, den, out=dot)  # 0 where a vector is zero (dot = 0) ...
    if both_zero is not None:
        cos += both_zero  # ... and 1 where both are
    np.clip(cos, -1.0, 1.0, out=cos)
    return np.arccos(cos, out=cos)


def planes(c: np.ndarray) -> np.ndarray:
    """The channels of an (H, W, 3) array as one contiguous planar (3, H, W) float64 array."""
    return np.ascontiguousarray(c.transpose(2, 0, 1), dtype=np.float64)


def _mas_mams(c1: np.ndarray, c2: np.ndarray) -> tuple[float, float]:
    """(MAS, MAMS) from planar (3, H, W) colour images.

    alpha = (2/pi) angle and m = |C - C'| / (sqrt(3) 255); MAMS = mean(1 - (1 - alpha)(1 - m)) is
    evaluated as mean(alpha) + mean(m) - mean(alpha m) (the same value, fewer array passes).
    """
    angle = _alpha(c1, c2).ravel()
    d = c1 - c2
    mag = np.einsum("kij,kij->ij", d, d)
    mag = np.sqrt(mag, out=mag).ravel()
    n = angle.size
    alpha = np.multiply(angle, 2.0 / np.pi, out=angle)
    mean_alpha = float(np.mean(alpha))
    mean_mag = float(np.sum(mag)) / n / _SQRT3_255
    mean_prod = float(np.dot(alpha, mag)) / n / _SQRT3_255
    return 1.0 - mean_alpha, mean_alpha + mean_mag - mean_prod


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
