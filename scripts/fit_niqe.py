"""Fit the NIQE pristine model (mu, Sigma) and store it as src/facelive/models/niqe_pristine.npz.

Mittal, Soundararajan & Bovik, IEEE SPL 20(3), 2013: 36 patch features on pristine images, patches
kept when their sharpness (mean local sigma) exceeds 0.75 of the image's sharpest patch, then the
mean and covariance of the kept patches. The original model used 125 LIVE-independent pristine
photographs; this one uses scikit-image's public-domain / CC0 samples (facelive.iqa._samples)
at three scales (1, 0.75, 0.5; area interpolation) with 96x96 patches on 4 grids offset by half
a patch.

Usage: PYTHONPATH=src python scripts/fit_niqe.py [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

SCALES = (1.0, 0.75, 0.5)
OFFSETS = ((0, 0), (0, 48), (48, 0), (48, 48))


def main(argv: list[str] | None = None) -> int:
    from facelive import modelstore
    from facelive.iqa._common import to_grey
    from facelive.iqa._samples import pristine_images
    from facelive.iqa.niqe_model import MODEL_FILE, PATCH, SHARPNESS_THRESHOLD, patch_features

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=None, help="model folder (default: shipped)")
    args = ap.parse_args(argv)

    kept = []
    for name, img in pristine_images().items():
        for s in SCALES:
            im = img if s == 1.0 else cv2.resize(img, None, fx=s, fy=s,
                                                 interpolation=cv2.INTER_AREA)
            grey = to_grey(im)
            if min(grey.shape) < 2 * PATCH:
                continue
            # the patch grid at 4 offsets (half a patch), for 4x more training patches
            fs, sh = zip(*(patch_features(grey[oy:, ox:], PATCH) for oy, ox in OFFSETS),
                         strict=True)
            feats, sharp = np.concatenate(fs), np.concatenate(sh)
            sel = sharp > SHARPNESS_THRESHOLD * sharp.max()
            kept.append(feats[sel])
            print(f"{name:10s} x{s:<4} {grey.shape[1]}x{grey.shape[0]}: "
                  f"{sel.sum()}/{len(sel)} patches kept")
    feats = np.concatenate(kept)
    mu = feats.mean(axis=0)
    cov = np.cov(feats, rowvar=False)
    path = modelstore.write_npz(MODEL_FILE, {
        "mu": mu, "cov": cov, "patch": np.array(PATCH), "n_patches": np.array(len(feats)),
        "images": np.array(list(pristine_images())), "scales": np.array(SCALES),
    }, args.out_dir)
    print(f"{len(feats)} pristine patches -> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
