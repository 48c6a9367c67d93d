"""Smoothing a liveness test's output over the frames of a stream.

Per-frame decisions flicker (the 2019 thesis saw its CNN flip between live and spoof on
consecutive frames). :class:`DecisionSmoother` keeps the last ``k`` scores and decides on their
moving average, or on a majority vote of the per-frame decisions, with hysteresis: once live, the
smoothed value must fall below ``threshold - margin`` to turn spoof, and once spoof it must rise
above ``threshold + margin`` to turn live. Frames without a score (no face, error) are skipped,
not counted as votes; :meth:`reset` starts a new stream.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Literal

Mode = Literal["mean", "majority"]


@dataclass(frozen=True)
class SmoothedDecision:
    """The smoother's state after one frame."""

    value: float | None  # mean score, or share of live votes; None before any scored frame
    live: bool | None  # None until ``min_frames`` scored frames were seen
    frames: int  # scored frames in the window


class DecisionSmoother:
    """Moving average or majority vote over the last ``k`` scored frames, with hysteresis."""

    def __init__(self, k: int, threshold: float = 0.5, mode: Mode = "mean",
                 margin: float = 0.05, min_frames: int = 1) -> None:
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if mode not in ("mean", "majority"):
            raise ValueError(f"mode must be 'mean' or 'majority', got {mode!r}")
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if not 1 <= int(min_frames) <= int(k):
            raise ValueError(f"min_frames must be in [1, k], got {min_frames}")
        self.k = int(k)
        self.threshold = float(threshold)
        self.mode: Mode = mode
        self.margin = float(margin)
        self.min_frames = int(min_frames)
        self._window: deque[float] = deque(maxlen=self.k)
        self._live: bool | None = None

    def reset(self) -> None:
        """Forget the stream."""
        self._window.clear()
        self._live = None

    def _value(self) -> float:
        w = self._window
        if self.mode == "mean":
            return sum(w) / len(w)
        return sum(1.0 for s in w if s >= self.threshold) / len(w)

    def update(self, score: float | None) -> SmoothedDecision:
        """Add one frame's P(live) (``None`` or NaN: no score) and return the smoothed decision."""
        if score is not None and not math.isnan(float(score)):
            self._window.append(float(score))
        if not self._window:
            return SmoothedDecision(None, None, 0)
        value = self._value()
        cut = self.threshold if self.mode == "mean" else 0.5
        if len(self._window) < self.min_frames:
            return SmoothedDecision(value, None, len(self._window))
        if self._live is None:
            self._live = value >= cut
        elif self._live and value < cut - self.margin:
            self._live = False
        elif not self._live and value > cut + self.margin:
            self._live = True
        return SmoothedDecision(value, self._live, len(self._window))

    @property
    def live(self) -> bool | None:
        """The current smoothed decision (None before enough frames)."""
        return self._live if len(self._window) >= self.min_frames else None
