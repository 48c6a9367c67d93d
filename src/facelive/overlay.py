"""Live overlay: liveness decisions drawn on a camera or video stream.

:func:`analyse_stream` reads frames with OpenCV, sends every ``every``-th one through a
:class:`facelive.pipeline.Pipeline`, and steadies the verdict with a
:class:`facelive.video.DecisionSmoother` over the last analysed frames. What is smoothed is each
frame's margin ``logit(score) - logit(threshold)`` at that frame's own threshold (a fused score
may come from a different subset of tests, with its own threshold, from frame to frame). A frame
without a face starts a new stream (the next face may be someone else); a frame with a face but
no decision (a test without a score under the ``abstain`` policy) shows ``unknown``, never the
previous verdict. :func:`draw_overlay` draws the face box
coloured by the smoothed verdict (green live, red spoof, amber no decision yet), the fused P(live),
every test's score and the analysis rate. ``facelive webcam`` puts both in a window, a video file
or JSON lines.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from facelive.fusion import logit
from facelive.types import LivenessResult
from facelive.video import DecisionSmoother, SmoothedDecision

__all__ = ["StreamFrame", "analyse_stream", "draw_overlay", "verdict"]

COLOURS = {"live": (60, 190, 60), "spoof": (40, 40, 220), "unknown": (0, 190, 255)}
"""BGR colours of the verdicts."""


@dataclass
class StreamFrame:
    """One frame of a stream and what is known about it."""

    index: int
    image: np.ndarray  # BGR uint8
    result: LivenessResult | None  # the latest pipeline result (None before the first)
    analysed: bool  # whether ``result`` was computed on this very frame
    smoothed: SmoothedDecision  # over margins: value > 0 leans live
    rate: float  # analysed frames per second, over the last second or so


def verdict(result: LivenessResult | None, smoothed: SmoothedDecision) -> str:
    """``live``, ``spoof`` or ``unknown`` (no face, no decision on the latest analysed frame, or
    too few frames)."""
    if (result is None or result.face is None or result.decision == "unknown"
            or smoothed.live is None):
        return "unknown"
    return "live" if smoothed.live else "spoof"


def margin(result: LivenessResult) -> float | None:
    """A result's distance from its own decision threshold, in logits (> 0: live side).

    Without a threshold (the all-tests-must-agree rule), +1 for live and -1 for spoof.
    """
    if result.decision not in ("live", "spoof"):
        return None
    score, thr = result.score, result.threshold
    if score is None or thr is None:
        return 1.0 if result.decision == "live" else -1.0
    return float(logit(score) - logit(thr))


def analyse_stream(capture: Any, pipeline: Any, *, every: int = 1, smooth: int = 5,
                   max_frames: int | None = None) -> Iterator[StreamFrame]:
    """Yield every frame read from ``capture`` (a ``cv2.VideoCapture``) with its analysis.

    Every ``every``-th frame goes through ``pipeline.check_frame``; the others carry the
    latest result. Smoothing: mean of the last ``smooth`` margins (:func:`margin`), live above
    0, with hysteresis of 0.2 logits.
    """
    if every < 1 or smooth < 1:
        raise ValueError("every and smooth must be >= 1")
    smoother = DecisionSmoother(smooth, threshold=0.0, margin=0.2, min_frames=1)
    state = SmoothedDecision(None, None, 0)
    result: LivenessResult | None = None
    stamps: list[float] = []
    index = 0
    while max_frames is None or index < max_frames:
        ok, image = capture.read()
        if not ok or image is None:
            return
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        elif image.shape[2] == 4:
            image = cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
        analysed = index % every == 0
        if analysed:
            result = pipeline.check_frame(np.ascontiguousarray(image))
            if result.face is None:
                smoother.reset()
            state = smoother.update(margin(result))
            now = time.perf_counter()
            stamps = [t for t in stamps if now - t < 1.0] + [now]
        rate = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else 0.0
        yield StreamFrame(index, image, result, analysed, state, rate)
        index += 1


def draw_overlay(frame: StreamFrame) -> np.ndarray:
    """A copy of the frame's image with the verdict, scores and rate drawn on it."""
    out = frame.image.copy()
    h, w = out.shape[:2]
    scale = max(0.4, min(1.2, w / 900))
    thick = max(1, round(2 * scale))
    v = verdict(frame.result, frame.smoothed)
    colour = COLOURS[v]
    r = frame.result
    if r is not None and r.face is not None:
        f = r.face
        cv2.rectangle(out, (f.x, f.y), (f.x + f.w, f.y + f.h), colour, thick + 1)
    if r is None:
        head = "starting..."
    elif r.face is None:
        head = "no face"
    else:
        score = r.score
        head = v.upper() + ("" if score is None else f"  P(live) {score:.2f}")
    lines = [head]
    if r is not None:
        for name, t in r.tests.items():
            lines.append(f"{name}: " + ("-" if t.score is None else f"{t.score:.2f}")
                         + ("" if t.status == "ok" else f" ({t.status})"))
    lines.append(f"{frame.rate:.1f} analyses/s")
    y = round(28 * scale)
    for i, text in enumerate(lines):
        size = scale * (0.9 if i == 0 else 0.6)
        c = colour if i == 0 else (255, 255, 255)
        cv2.putText(out, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, size, (0, 0, 0), thick + 2,
                    cv2.LINE_AA)
        cv2.putText(out, text, (10, y), cv2.FONT_HERSHEY_SIMPLEX, size, c, thick, cv2.LINE_AA)
        y += round((34 if i == 0 else 24) * scale)
    return out
