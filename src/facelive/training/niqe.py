"""Fitting the NIQE pristine model (mu, Sigma): ``facelive train niqe`` ->
``models/niqe_pristine.npz``.

Mittal, Soundararajan & Bovik, IEEE SPL 20(3), 2013: 36 patch features on pristine images, patches
kept when their sharpness (mean local sigma) exceeds 0.75 of the image's sharpest patch, then the
mean and covariance of the kept patches. The original model used 125 LIVE-independent pristine
photographs; this one uses scikit-image's public-domain / CC0 samples (facelive.iqa._samples)
at three scales (1, 0.75, 0.5; area interpolation) with 96x96 patches on 4 grids offset by half
a patch. No research-only data is involved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

SCALES = (1.0, 0.75, 0.5)
OFFSETS = ((0, 0), (0, 48), (48, 0), (48, 48))


def train_niqe(out_dir: Path | None = None, *, images: Mapping[str, np.ndarray] | None = None,
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fit the pristine model on ``images`` (name -> BGR uint8; default: the shipped model's
    scikit-image samples) and write ``niqe_pristine.npz`` (+ ``SHA256SUMS``) into ``out_dir``
    (default: the package's ``models/``). Returns the report."""
    import cv2

    from facelive import modelstore
    from facelive.iqa._common import to_grey
    from facelive.iqa._samples import pristine_images
    from facelive.iqa.niqe_model import MODEL_FILE, PATCH, SHARPNESS_THRESHOLD, patch_features

    images = pristine_images() if images is None else dict(images)
    kept, per_image = [], []
    for name, img in images.items():
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
            per_image.append({"image": name, "scale": s, "size": [grey.shape[1], grey.shape[0]],
                              "kept": int(sel.sum()), "patches": int(len(sel))})
            log(f"{name:10s} x{s:<4} {grey.shape[1]}x{grey.shape[0]}: "
                f"{sel.sum()}/{len(sel)} patches kept")
    if not kept:
        raise ValueError(f"no image holds 2x2 patches of {PATCH} px at any scale")
    feats = np.concatenate(kept)
    mu = feats.mean(axis=0)
    cov = np.cov(feats, rowvar=False)
    path = modelstore.write_npz(MODEL_FILE, {
        "mu": mu, "cov": cov, "patch": np.array(PATCH), "n_patches": np.array(len(feats)),
        "images": np.array(list(images)), "scales": np.array(SCALES),
    }, out_dir)
    log(f"{len(feats)} pristine patches -> {path}")
    return {
        "model": "niqe",
        "file": str(path),
        "sha256": modelstore.sha256_bytes(path.read_bytes()),
        "images": list(images),
        "scales": list(SCALES),
        "patch": PATCH,
        "offsets": [list(o) for o in OFFSETS],
        "sharpness_threshold": SHARPNESS_THRESHOLD,
        "n_patches": int(len(feats)),
        "per_image": per_image,
        "mu": mu.tolist(),
        "cov_trace": float(np.trace(cov)),
    }


def card_markdown(report: dict[str, Any], command: str) -> str:
    """The NIQE pristine model's card (Markdown); every number comes from ``report``."""
    rows = "\n".join(f"| {r['image']} | {r['scale']} | {r['size'][0]}x{r['size'][1]} | "
                     f"{r['kept']} / {r['patches']} |" for r in report["per_image"])
    return f"""# Model card: NIQE pristine model, `models/niqe_pristine.npz`

**What it is.** The multivariate Gaussian (`mu` (36), `cov` (36x36)) of NIQE's 36 patch features
on pristine images (Mittal, Soundararajan & Bovik, IEEE SPL 2013), used by the quality test's NIQE
measure (`facelive.iqa.niqe_model`). Not the original `modelparameters.mat`: fitted on
{len(report["images"])} scikit-image sample images that are public domain or CC0
({", ".join(report["images"])}), at scales {", ".join(str(s) for s in report["scales"])},
{report["patch"]} px patches on {len(report["offsets"])} grids offset by half a patch, keeping the
patches sharper than {report["sharpness_threshold"]} of each image's sharpest:
**{report["n_patches"]} patches**. No research-only data; see `docs/quality-measures.md`.

**Reproduce** (seconds, deterministic):

    {command}

| image | scale | size | patches kept |
|---|---|---|---|
{rows}
"""
