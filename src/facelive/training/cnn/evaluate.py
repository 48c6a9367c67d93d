"""End-to-end evaluation of the CNN test: detection, crop and ONNX network on the original frames.

Frames where no face is found get no network score; here they count as **rejected** (score 0:
an attack rejected is correct, a live face rejected is a BPCER error) and their number is
reported as ``no_face``. Metrics are those of :mod:`facelive.evaluation.metrics` (ISO/IEC
30107-3); the threshold is the frame-level EER threshold of the set it is tuned on (Replay-Attack
devel only). The video level averages the frames of a group: a Replay-Attack video, or a NUAA
capture (subject x session) when the samples come from
:func:`facelive.training.cnn.data.list_samples`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from facelive.datasets import Sample
from facelive.evaluation import eer_threshold, evaluate_scores


def score_samples_e2e(samples: Sequence[Sample], test: Any, detector: Any,
                      progress: Callable[[int, int], None] | None = None,
                      padded: list[bool] | None = None) -> np.ndarray:
    """P(live) per sample through the full pipeline (NaN where no face was found).

    ``test`` is a :class:`facelive.liveness.cnn.CNNTest`, ``detector`` a
    :class:`facelive.face.detection.FaceDetector`.
    When ``padded`` is a list, it receives per sample whether the crop needed border padding.
    """
    from facelive.face.detection import crop_window
    from facelive.liveness.base import Frame

    out = np.full(len(samples), np.nan)
    for i, smp in enumerate(samples):
        img = smp.load()
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
            progress(i + 1, len(samples))
    return out


def report(samples: Sequence[Sample], scores: np.ndarray,
           threshold: float | None = None) -> dict[str, Any]:
    """Frame- and video-level metrics (:func:`facelive.evaluation.evaluate_scores` keys:
    APCER per type, APCER_max, BPCER, ACER, EER, ...) plus ``no_face`` (frames without a face).

    ``threshold=None`` picks the frame-level EER threshold of these scores (tuning set only).
    """
    raw = np.asarray(scores, np.float64)
    s = np.where(np.isnan(raw), 0.0, raw)  # no face -> rejected
    if threshold is None:
        live = np.array([smp.is_live for smp in samples], bool)
        threshold = eer_threshold(s[live], s[~live])
    out = evaluate_scores(s.tolist(), samples, float(threshold))
    out["no_face"] = int(np.isnan(raw).sum())
    return out
