"""Full-reference correlation measures: NXC, MAS, MAMS.

Galbally, Marcel & Fierrez, IEEE TIP 23(2), 2014, Table I; NXC from Eskicioglu & Fisher, IEEE
Trans. Communications 43(12), 1995; MAS and MAMS from Avcibas, Sankur & Sayood, J. Electronic
Imaging 11(2), 2002 (angles between the colour vectors of corresponding pixels).
"""

from __future__ import annotations

import math

import numpy as np

from facelive.iqa._common import check_pair, ratio

_SQRT3_255 = np.sqrt(3.0) * 255.0


def nxc(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Normalised cross-correlation, sum(I * I') / sum(I^2), element-wise product
    (Eskicioglu & Fisher 1995); 1 when both sums are 0.

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        1 for identical images.
    """
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
    return _arccos(cos)


# asin(sqrt(u)) = sqrt(u) P(u), P's Taylor coefficients (2k)! / (4^k (k!)^2 (2k + 1)); for
# u <= _SMALL_U the first omitted term is below 1e-17 relative
_ASIN_COEF = tuple(
    math.factorial(2 * k) / (4**k * math.factorial(k) ** 2 * (2 * k + 1)) for k in range(8)
)
_SMALL_U = 0.0025


def _arccos(cos: np.ndarray) -> np.ndarray:
    """``np.arccos(cos)`` (a new array; ``cos`` is overwritten), faster for the small angles
    that dominate here.

    arccos(c) = 2 asin(sqrt(u)), u = (1 - c) / 2; for c >= 0.995 (angles up to 0.1 rad, most
    pixels of an image against its blurred copy) the difference 1 - c is exact (Sterbenz) and the
    series of asin gives the angle to ~1 ulp; the other pixels use ``np.arccos``. Agrees with
    ``np.arccos`` to a few ulp (tested).
    """
    flat = cos.reshape(-1)
    big = np.flatnonzero(flat < 1.0 - 2.0 * _SMALL_U)
    other = np.arccos(flat[big]) if big.size else None
    u = np.subtract(1.0, flat, out=flat)
    u *= 0.5
    acc = u * _ASIN_COEF[-1]
    acc += _ASIN_COEF[-2]
    for c in _ASIN_COEF[-3::-1]:  # Horner in u
        acc *= u
        acc += c
    acc *= np.sqrt(u, out=u)
    acc *= 2.0
    if other is not None:
        acc[big] = other
    return acc.reshape(cos.shape)


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
    colour vectors C_p and C'_p (Avcibas et al. 2002). Takes (H, W, 3) arrays (grey is repeated).

    Parameters
    ----------
    reference : numpy.ndarray
        ``C``: a colour float image (H, W, 3) in 0..255 (a grey one is repeated).
    distorted : numpy.ndarray
        ``C'``, the same shape.

    Returns
    -------
    float
        In [0, 1]; 1 for identical images.
    """
    r, d = check_pair(reference, distorted, colour=True)
    return _mas_mams(planes(r), planes(d))[0]


def mams(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean angle-magnitude similarity as in Galbally et al. 2014, Table I:
    mean(1 - (1 - alpha_p) (1 - |C_p - C'_p| / (sqrt(3) 255))) (Avcibas et al. 2002).
    Takes (H, W, 3) arrays (grey is repeated); identical images give 0.

    Parameters
    ----------
    reference : numpy.ndarray
        ``C``: a colour float image (H, W, 3) in 0..255 (a grey one is repeated).
    distorted : numpy.ndarray
        ``C'``, the same shape.

    Returns
    -------
    float
        In [0, 1]; 0 for identical images.
    """
    r, d = check_pair(reference, distorted, colour=True)
    return _mas_mams(planes(r), planes(d))[1]
