"""The 25 image-quality measures (IQMs) of Galbally, Marcel & Fierrez, IEEE TIP 23(2), 2014.

``measures(image)`` returns all 25 as an ordered mapping ``name -> float`` (:data:`MEASURE_NAMES`
order). Each measure is also a function of its own: the full-reference ones take ``(reference,
distorted)`` (same-shape grey float arrays in 0..255; ``mas``/``mams`` take colour (H, W, 3)), the
no-reference ones take ``(image)``. Conventions: ``docs/quality-measures.md``.
"""

from __future__ import annotations

from facelive.quality._common import DB_CAP, blurred, to_grey, tune_allocator
from facelive.quality.biqi_model import biqi
from facelive.quality.correlation import mams, mas, nxc
from facelive.quality.edges import tcd, ted
from facelive.quality.measures import MEASURE_NAMES, measures
from facelive.quality.niqe_model import niqe
from facelive.quality.noreference import hlfi, jqi
from facelive.quality.pixel import ad, lmse, md, mse, nae, psnr, ramd, sc, snr
from facelive.quality.spectral import gme, gpe, sme, spe
from facelive.quality.structural import rred, ssim, vif

__all__ = [
    "DB_CAP", "MEASURE_NAMES", "blurred", "measures", "to_grey", "tune_allocator",
    "mse", "psnr", "snr", "sc", "md", "ad", "nae", "ramd", "lmse", "nxc", "mas", "mams", "ted",
    "tcd", "sme", "spe", "gme", "gpe", "ssim", "vif", "rred", "jqi", "hlfi", "biqi", "niqe",
]
