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

from facelive.iqa._common import BORDER, check_pair, ratio

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
    return cv2.sepFilter2D(x, cv2.CV_64F, k, k, dst=dst, borderType=BORDER)


def _blur3(x: np.ndarray) -> np.ndarray:
    """The 3x3 Gaussian (sigma 0.5, symmetric border) of :func:`facelive.iqa.blurred`."""
    return cv2.GaussianBlur(x, (3, 3), 0.5, sigmaY=0.5, borderType=BORDER)


def _log1p(x: np.ndarray) -> np.ndarray:
    """``log(1 + x)`` in place for x >= 0 (contiguous float64), by OpenCV's vectorised ``log``,
    several times faster than ``np.log1p``'s scalar loop. Against ``log1p``: at most the rounding
    of ``1 + x`` (1.1e-16 absolute) plus ~1 ulp of the result per element (tested); only sums and
    products of these terms are used, so the absolute error is what counts.
    """
    x += 1.0
    return cv2.log(x, dst=x)


def _sum_log1p(x: np.ndarray) -> float:
    """``sum(log(1 + x))`` for x >= 0 (overwrites ``x``)."""
    return float(np.sum(_log1p(x)))


def _ssim(x: np.ndarray, y: np.ndarray, y_is_blurred: bool = False) -> float:
    """Mean SSIM. ``y_is_blurred``: ``y`` is ``_blur3(x)``, so its local mean is ``_blur3`` of
    ``x``'s (symmetric filters commute under the symmetric border; equal up to rounding)."""
    k = _gauss(11, 1.5)
    c1 = (SSIM_K1 * 255.0) ** 2
    c2 = (SSIM_K2 * 255.0) ** 2
    mx = _filt(x, k)
    my = _blur3(mx) if y_is_blurred else _filt(y, k)
    tmp = np.multiply(x, x)
    sxx = _filt(tmp, k)
    syy = _filt(np.multiply(y, y, out=tmp), k)
    sxy = _filt(np.multiply(x, y, out=tmp), k)
    mxy = np.multiply(mx, my, out=tmp)
    mxx = np.multiply(mx, mx, out=mx)
    myy = np.multiply(my, my, out=my)
    sxx -= mxx
    syy -= myy
    sxy -= mxy
    # ((2 mx my + c1)(2 sxy + c2)) / ((mx^2 + my^2 + c1)(sxx + syy + c2)), in place
    mxy *= 2.0
    mxy += c1
    sxy *= 2.0
    sxy += c2
    mxy *= sxy
    mxx += myy
    mxx += c1
    sxx += syy
    sxx += c2
    mxx *= sxx
    s = np.divide(mxy, mxx, out=mxy)
    pad = 5  # scikit-image averages over the image without its 5-pixel border
    if s.shape[0] > 2 * pad and s.shape[1] > 2 * pad:
        s = s[pad:-pad, pad:-pad]
    return float(np.mean(s))


def ssim(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004), Gaussian 11x11 window, sigma 1.5, L = 255."""
    r, d = check_pair(reference, distorted, min_side=11)
    return _ssim(r, d)


def _vif(ref: np.ndarray, dist: np.ndarray, dist_is_blurred: bool = False) -> float:
    """VIFp of ``vifp_mec.m``. Its guards reduce to: a pixel adds to the numerator only when
    s1, s2 >= 1e-10 and g > 0, with sv^2 floored at 1e-10; the denominator ignores s1 < 1e-10.
    Natural logs are used: the base cancels in the ratio. ``dist_is_blurred``: ``dist`` is
    ``_blur3(ref)``; then the scale-1 mean of ``dist`` and its scale-2 input are ``_blur3`` of
    those of ``ref`` (symmetric filters commute under the symmetric border; equal up to rounding).
    """
    num = 0.0
    den = 0.0
    eps = 1e-10
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        k = _gauss(n, n / 5.0)
        if scale > 1:
            low = _filt(ref, k)
            dist = (_blur3(low) if dist_is_blurred and scale == 2 else _filt(dist, k))[::2, ::2]
            ref = low[::2, ::2]
        tmp = np.multiply(ref, ref)
        s1 = _filt(tmp, k)
        s2 = _filt(np.multiply(dist, dist, out=tmp), k)
        s12 = _filt(np.multiply(ref, dist, out=tmp), k)
        mu1 = _filt(ref, k)
        mu2 = _blur3(mu1) if dist_is_blurred and scale == 1 else _filt(dist, k, dst=tmp)
        s12 -= mu1 * mu2
        s1 -= np.multiply(mu1, mu1, out=mu1)
        s2 -= np.multiply(mu2, mu2, out=mu2)
        keep = s1 >= eps
        s1 *= keep  # also zeroes negative variances; afterwards s1 > 0 exactly where keep
        g = np.add(s1, eps, out=mu1)
        g = np.divide(s12, g, out=g)
        keep &= s2 >= eps
        keep &= g > 0
        g *= keep
        s12 *= g
        sv = np.subtract(s2, s12, out=s12)
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
    """Pixel-domain visual information fidelity (Sheikh & Bovik 2006); 1 for two flat images."""
    r, d = check_pair(reference, distorted, min_side=16)
    return _vif(r, d)


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
    return float(np.mean(np.abs(_entropy_terms(ref) - _entropy_terms(dist))))


def rred(reference: np.ndarray, distorted: np.ndarray) -> float:
    """Reduced-reference entropic difference (Soundararajan & Bovik 2012); 0 if identical."""
    r, d = check_pair(reference, distorted, min_side=6)
    return _rred(r, d)
