"""End-to-end evaluation of the CNN test: detection, crop and ONNX network on the original frames.

Frames where no face is found get no score; they count as rejected (an attack rejected is
correct, a live face rejected is a BPCER error) and are reported separately. The threshold is
chosen at the frame-level EER point of the set it is tuned on (Replay-Attack devel only).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from facelive.training.data import Item
from facelive.training.metrics import eer_threshold, pad_metrics, video_scores


def score_items(items: list[Item], test, detector,
                progress: Callable[[int, int], None] | None = None,
                padded: list[bool] | None = None) -> np.ndarray:
    """P(live) per item through the full pipeline (NaN where no face was found).

    When ``padded`` is a list, it receives per item whether the crop needed border padding.
    """
    from facelive.face import crop_window
    from facelive.imageio import load_image
    from facelive.liveness import Frame

    out = np.full(len(items), np.nan)
    for i, it in enumerate(items):
        img = load_image(it.path)
        box = detector.detect(img)
        if box is not None:
            out[i] = test.score_frame(Frame(img, box))
        if padded is not None:
            pad = False
            if box is not None:
                x0, y0, side = crop_window(img.shape, box, test.context)
                h, w = img.shape[:2]
                pad = x0 < 0 or y0 < 0 or x0 + side > w or y0 + side > h
            padded.append(pad)
        if progress is not None:
            progress(i + 1, len(items))
    return out


def report(items: list[Item], scores: np.ndarray, threshold: float | None = None) -> dict:
    """Frame- and video-level APCER (per attack type), BPCER, ACER and EER.

    ``threshold=None`` picks the frame-level EER threshold of these scores (tuning set only).
    """
    y = np.array([it.label for it in items])
    types = [it.attack_type for it in items]
    groups = [it.group for it in items]
    s = np.where(np.isnan(scores), -1.0, scores)  # no face -> rejected
    if threshold is None:
        threshold = eer_threshold(s, y)[1]
    frame = pad_metrics(s, y, types, threshold)
    frame["no_face"] = int(np.isnan(scores).sum())
    vs, vy, vt = video_scores(s, groups, y, types)
    video = pad_metrics(vs, vy, vt, threshold)
    return {"threshold": float(threshold), "frame": frame, "video": video}
