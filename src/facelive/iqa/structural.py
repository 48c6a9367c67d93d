"""Full-reference structural / information-theoretic measures: SSIM, VIF, RRED.

* SSIM: Wang, Bovik, Sheikh & Simoncelli, "Image quality assessment: from error visibility to
  structural similarity", IEEE TIP 13(4), 2004 (11x11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03,
  L 255); identical to scikit-image's ``structural_similarity(..., gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=255)`` (tested), computed with OpenCV filters.
* VIF: Sheikh & Bovik, "Image information and visual quality", IEEE TIP 15(2), 2006, pixel-domain
  version (``vifp_mec.m``): 4 scales, Gaussian windows 2^(5-s)+1, sigma size/5, sigma_n^2 = 2.
  Filtering is 'same' with a symmetric border (not 'valid'), so any image >= 16x16 works.
* RRED: Soundararajan & Bovik, "RRED indices: reduced reference entropic differencing for image
  quality assessment", IEEE TIP 21(2), 2012: in each first-level orthonormal Haar wavelet detail
  subband (as PyWavelets' ``dwt2(x, 'haar')``, computed in numpy), 3x3 blocks b, block variance
  s_b^2, h_b = 0.5 log(2 pi e (s_b^2 + sigma_N^2)), g_b = log(1 + s_b^2), sigma_N^2 = 0.1;
  RRED = mean_b |g_b h_b - g'_b h'_b|.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from facelive.iqa._common import BORDER, check_pair, ratio, total

SSIM_K1 = 0.01
SSIM_K2 = 0.03
VIF_SIGMA_N2 = 2.0
RRED_SIGMA_N2 = 0.1
RRED_BLOCK = 3


@lru_cache(maxsize=8)
def _gauss(size: int, sigma: float) -> np.ndarray:
    k = cv2.getGaussianKernel(size, sigma, cv2.CV_64F)
    k.setflags(write=False)
    return k


def _filt(x: np.ndarray, k: np.ndarray, dst: np.ndarray | None = None) -> np.ndarray:
    """Separable filtering by ``k`` (symmetric border), in the dtype of ``x``."""
    return cv2.sepFilter2D(x, -1, k, k, dst=dst, borderType=BORDER)


def _blur3(x: np.ndarray) -> np.ndarray:
    """The 3x3 Gaussian (sigma 0.5, symmetric border) of :func:`facelive.iqa.blurred`."""
    return cv2.GaussianBlur(x, (3, 3), 0.5, sigmaY=0.5, borderType=BORDER)


def _moments(x: np.ndarray, d: np.ndarray, mx: np.ndarray, md: np.ndarray, k: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Local variances of ``x`` and ``d`` and their covariance under the window ``k``, given
    their local means ``mx`` and ``md``."""
    tmp = np.multiply(x, x)
    sxx = _filt(tmp, k)
    sdd = _filt(np.multiply(d, d, out=tmp), k)
    sxd = _filt(np.multiply(x, d, out=tmp), k)
    sxx -= np.multiply(mx, mx, out=tmp)
    sdd -= np.multiply(md, md, out=tmp)
    sxd -= np.multiply(mx, md, out=tmp)
    return sxx, sdd, sxd


def _log1p(x: np.ndarray) -> np.ndarray:
    """``log(1 + x)`` in place for x >= 0 (contiguous float64 or float32), by OpenCV's
    vectorised ``log``, several times faster than ``np.log1p``'s scalar loop. Against ``log1p``:
    at most the rounding of ``1 + x`` (1.1e-16 absolute in float64) plus ~1 ulp of the result per
    element (tested); only sums and products of these terms are used, so the absolute error is
    what counts.
    """
    x += 1.0
    return cv2.log(x, dst=x)


def _sum_log1p(x: np.ndarray) -> float:
    """``sum(log(1 + x))`` for x >= 0 (overwrites ``x``), accumulated in float64."""
    return total(_log1p(x))


def _ssim(x: np.ndarray, d: np.ndarray, y_is_blurred: bool = False) -> float:
    """Mean SSIM of ``x`` against ``y = x - d``, computed in the dtype of ``x`` and ``d``.

    Wang's ((2 mx my + c1)(2 sxy + c2)) / ((mx^2 + my^2 + c1)(sxx + syy + c2)) equals
    (1 - a)(1 - b), a = md^2 / (mx^2 + my^2 + c1), b = sdd / (sxx + syy + c2) (as 2 mx my =
    mx^2 + my^2 - md^2 and 2 sxy = sxx + syy - sdd; md, sdd: local mean and variance of ``d``).
    The small terms a and b come from the moments of the difference, not from differences of
    nearly equal moments of x and y, so float32 keeps them accurate (and 1 - SSIM is averaged).
    ``y_is_blurred``: ``y`` is ``_blur3(x)``, so ``my`` is ``_blur3(mx)`` (symmetric filters
    commute under the symmetric border; equal up to rounding).
    """
    k = _gauss(11, 1.5)
    c1 = (SSIM_K1 * 255.0) ** 2
    c2 = (SSIM_K2 * 255.0) ** 2
    mx = _filt(x, k)
    md = mx - _blur3(mx) if y_is_blurred else _filt(d, k)
    sxx, sdd, sxd = _moments(x, d, mx, md, k)
    # b = sdd / (2 (sxx - sxd) + sdd + c2), in place (sxx + syy = 2 sxx - 2 sxd + sdd)
    sxx -= sxd
    sxx *= 2.0
    sxx += sdd
    sxx += c2
    b = np.divide(sdd, sxx, out=sdd)
    # a = md^2 / (mx^2 + (mx - md)^2 + c1)
    my = np.subtract(mx, md, out=sxd)
    my *= my
    mx *= mx
    mx += my
    mx += c1
    md *= md
    a = np.divide(md, mx, out=md)
    # 1 - SSIM = a + b - a b
    ab = np.multiply(a, b, out=mx)
    a += b
    a -= ab
    pad = 5  # scikit-image averages over the image without its 5-pixel border
    if a.shape[0] > 2 * pad and a.shape[1] > 2 * pad:
        a = a[pad:-pad, pad:-pad]
    return 1.0 - total(a) / a.size


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004), Gaussian 11x11 window, sigma 1.5, L = 255.

    Parameters
    ----------
    reference : numpy.ndarray
        ``I``: a grey float image in 0..255 (:func:`~facelive.iqa.to_grey`).
    distorted : numpy.ndarray
        ``I'``, the same shape (in the quality test, :func:`~facelive.iqa.blurred` of ``I``).

    Returns
    -------
    float
        At most 1 (identical images).
    """
    r, d = check_pair(reference, distorted, min_side=11)
    return _ssim(r, r - d)


def _vif(ref: np.ndarray, d: np.ndarray) -> float:
    """VIFp of ``vifp_mec.m`` of ``ref`` against ``dist = ref - d``, in the dtype of the inputs.

    Its guards reduce to: a pixel adds to the numerator only when s1, s2 >= 1e-10 and g > 0,
    with sv^2 floored at 1e-10; the denominator ignores s1 < 1e-10. Natural logs are used: the
    base cancels in the ratio. The moments of ``dist`` come from those of ``d`` (s12 = s1 - sxd,
    s2 = s1 - 2 sxd + sdd) and sv = s2 - g s12 = (s1 sdd - sxd^2 + eps s2) / (s1 + eps), so no
    small quantity is a difference of nearly equal large ones (accurate in float32). The local
    means of ``d`` are filtered from ``d`` itself: for ``dist = _blur3(ref)`` they also equal
    ``mu1 - _blur3(mu1)`` (SSIM's shortcut), but that difference loses float32 precision, which
    sxd = E[ref d] - mu1 mud multiplies by mu1 (2x the float32 deviation of VIF, measured).
    """
    num = 0.0
    den = 0.0
    eps = 1e-10
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        k = _gauss(n, n / 5.0)
        if scale > 1:
            ref = _filt(ref, k)[::2, ::2]
            d = _filt(d, k)[::2, ::2]
        mu1 = _filt(ref, k)
        mud = _filt(d, k)
        s1, sdd, sxd = _moments(ref, d, mu1, mud, k)
        s12 = np.subtract(s1, sxd, out=mu1)
        s2 = s12 - sxd
        s2 += sdd
        keep = s1 >= eps
        s1 *= keep  # also zeroes negative variances; afterwards s1 > 0 exactly where keep
        g = s1 + eps
        sv = np.multiply(s1, sdd, out=sdd)
        sv -= np.multiply(sxd, sxd, out=sxd)
        sv += eps * s2
        sv /= g
        g = np.divide(s12, g, out=g)
        keep &= s2 >= eps
        keep &= g > 0
        g *= keep
        sv = np.where(keep, sv, s2)  # g = 0: sv = s2
        np.maximum(sv, eps, out=sv)
        sv += VIF_SIGMA_N2
        g *= g
        g *= s1
        g /= sv
        num += _sum_log1p(g)
        s1 *= 1.0 / VIF_SIGMA_N2
        den += _sum_log1p(s1)
    return ratio(num, den, 1.0)


def vif(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Pixel-domain visual information fidelity (Sheikh & Bovik 2006); 1 for two flat images.

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
    r, d = check_pair(reference, distorted, min_side=16)
    return _vif(r, r - d)


def _block_var(band: np.ndarray, b: int = RRED_BLOCK) -> np.ndarray:
    """Variance of each non-overlapping b x b block (area resampling = exact block means)."""
    h, w = band.shape[0] // b * b, band.shape[1] // b * b
    x = np.ascontiguousarray(band[:h, :w])
    size = (w // b, h // b)
    m = cv2.resize(x, size, interpolation=cv2.INTER_AREA)
    m2 = cv2.resize(x * x, size, interpolation=cv2.INTER_AREA)
    return np.maximum(m2 - m * m, 0.0)


def haar_details(image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First-level orthonormal Haar detail subbands (H, V, D) of an even-cropped image.

    Equal to ``pywt.dwt2(image, 'haar')[1]`` (tested); 2x2 sums and differences in numpy.
    """
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    x = image[:h, :w]
    a, b, c, d = x[0::2, 0::2], x[0::2, 1::2], x[1::2, 0::2], x[1::2, 1::2]
    top, bottom = a + b, c + d
    left_minus_right_top, left_minus_right_bottom = a - b, c - d
    return ((top - bottom) * 0.5, (left_minus_right_top + left_minus_right_bottom) * 0.5,
            (left_minus_right_top - left_minus_right_bottom) * 0.5)


def _entropy_terms(image: np.ndarray) -> np.ndarray:
    terms = []
    for band in haar_details(image):
        s2 = _block_var(band)
        h = s2 + RRED_SIGMA_N2
        h *= 2.0 * np.pi * np.e
        h = cv2.log(h, dst=h)
        h *= 0.5
        h *= _log1p(s2)
        terms.append(h.ravel())
    return np.concatenate(terms)


def _rred(ref: np.ndarray, dist: np.ndarray) -> float:
    return float(np.mean(np.abs(_entropy_terms(ref) - _entropy_terms(dist)), dtype=np.float64))


def rred(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Reduced-reference entropic difference (Soundararajan & Bovik 2012); 0 if identical.

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
    r, d = check_pair(reference, distorted, min_side=6)
    return _rred(r, d)
