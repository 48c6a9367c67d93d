"""The 25 image-quality measures (IQMs) of Galbally, Marcel & Fierrez, IEEE TIP 23(2), 2014.

``measures(image)`` returns all 25 as an ordered mapping ``name -> float`` (:data:`MEASURE_NAMES`
order). Each measure is also a function of its own: the full-reference ones take ``(reference,
distorted)`` (same-shape grey float arrays in 0..255; ``mas``/``mams`` take colour (H, W, 3)), the
no-reference ones take ``(image)``. Conventions: ``docs/quality-measures.md``. ``measures()``
computes some measures in float32 by default (``dtype=np.float64``: the reference, as the separate
functions compute them).

>>> import numpy as np
>>> image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)   # BGR
>>> values = measures(image)
>>> len(values), list(values)[:3]
(25, ['MSE', 'PSNR', 'SNR'])
>>> grey = to_grey(image)                   # I; blurred(grey) is I', the distorted copy
>>> psnr(grey, blurred(grey)) == values["PSNR"]
True
>>> ssim(grey, grey)
1.0
"""

from __future__ import annotations

from facelive.iqa._common import DB_CAP, blurred, to_grey
from facelive.iqa.biqi_model import biqi
from facelive.iqa.correlation import mams, mas, nxc
from facelive.iqa.edges import tcd, ted
from facelive.iqa.measures import MEASURE_NAMES, measures
from facelive.iqa.niqe_model import niqe
from facelive.iqa.noreference import hlfi, jqi
from facelive.iqa.pixel import ad, lmse, md, mse, nae, psnr, ramd, sc, snr
from facelive.iqa.spectral import gme, gpe, sme, spe
from facelive.iqa.structural import rred, ssim, vif

__all__ = [
    "DB_CAP", "MEASURE_NAMES", "blurred", "measures", "to_grey",
    "mse", "psnr", "snr", "sc", "md", "ad", "nae", "ramd", "lmse", "nxc", "mas", "mams", "ted",
    "tcd", "sme", "spe", "gme", "gpe", "ssim", "vif", "rred", "jqi", "hlfi", "biqi", "niqe",
]
