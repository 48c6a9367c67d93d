"""Clean sample images that NIQE / BIQI model fitting uses (``facelive train niqe`` / ``biqi``).

Only scikit-image sample images that ship inside the wheel (no network) and that its documentation
marks public domain or CC0: natural photographs and CC0 textures. Documents, microscopy,
astronomy, synthetic images and the motion-blurred ``clock`` are left out.
"""

from __future__ import annotations

import numpy as np

PRISTINE_NAMES = (
    "astronaut", "camera", "chelsea", "coffee", "rocket", "coins", "brick", "grass", "gravel",
)


def pristine_images() -> dict[str, np.ndarray]:
    """name -> BGR uint8 image (grey images are repeated on 3 channels)."""
    import skimage.data

    out = {}
    for name in PRISTINE_NAMES:
        img = np.asarray(getattr(skimage.data, name)())
        if img.ndim == 2:
            img = np.repeat(img[:, :, None], 3, axis=2)
        out[name] = np.ascontiguousarray(img[:, :, 2::-1])  # RGB -> BGR
    return out
