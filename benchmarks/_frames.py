"""Benchmark inputs: a real face frame when the research data is present, else the example."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELIVE_DATA", REPO.parent / "shared" / "data"))


def face_frame(width: int = 640, height: int = 480) -> tuple[np.ndarray, str]:
    """A frame with a face at width x height, and where it came from."""
    nuaa = sorted((DATA / "nuaa" / "ClientRaw").glob("*/*.jpg"))
    if nuaa:
        img, src = cv2.imread(str(nuaa[0])), f"NUAA {nuaa[0].name}"
    else:
        img, src = cv2.imread(str(REPO / "examples" / "astronaut.jpg")), "examples/astronaut.jpg"
    h, w = img.shape[:2]
    target = width / height
    if w / h > target:  # crop to the target aspect ratio, then resize
        nw = round(h * target)
        img = img[:, (w - nw) // 2:(w - nw) // 2 + nw]
    else:
        nh = round(w / target)
        img = img[(h - nh) // 2:(h - nh) // 2 + nh]
    interp = cv2.INTER_AREA if img.shape[1] > width else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(img, (width, height), interpolation=interp)), src
