"""The liveness-test interface every test (built-in or plug-in) implements.

A test receives a :class:`Frame` (the decoded image, decoded once, plus the face found once by the
pipeline) and returns P(live) in [0, 1]. The pipeline wraps each call into a :class:`TestResult`
with a status and timing, so a test only has to compute its score or raise.

This module knows no test: the built-in ones (:mod:`facelive.liveness.quality`,
:mod:`facelive.liveness.cnn`, :mod:`facelive.liveness.face3d`) and plug-ins are looked up by name
in :mod:`facelive.liveness.registry`.
"""

from __future__ import annotations

import abc
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facelive.types import FaceBox, TestResult


class NoFaceError(Exception):
    """Raised by a test that needs a face it cannot use (e.g. no face mesh in the face box):
    the result's status becomes ``no_face``, not ``error``."""


@dataclass
class Frame:
    """One decoded image (BGR uint8, H x W x 3) and what the pipeline found in it."""

    image: np.ndarray
    face: FaceBox | None = None
    landmarks: np.ndarray | None = None  # (N, 3) face mesh in image pixels, set by face3d
    cache: dict[str, Any] = field(default_factory=dict)  # shared per-frame intermediates


class LivenessTest(abc.ABC):
    """Base class of liveness tests.

    Subclasses set ``name``, ``version`` and ``needs_face`` and implement :meth:`score_frame`.
    ``threshold`` is the test's own operating point on P(live) (live when score >= threshold).
    """

    name: str = "unnamed"
    version: str = "0"
    needs_face: bool = False
    needs_landmarks: bool = False
    threshold: float = 0.5

    @abc.abstractmethod
    def score_frame(self, frame: Frame) -> float:
        """Return P(live) for ``frame``; raise on failure."""

    def score(self, frame: Frame) -> TestResult:
        """Score ``frame`` and wrap the outcome; never raises."""
        t0 = time.perf_counter()
        if self.needs_face and frame.face is None:
            return TestResult(None, "no_face", (time.perf_counter() - t0) * 1e3)
        try:
            s = float(self.score_frame(frame))
            if not np.isfinite(s):
                raise ValueError("test produced a non-finite score")
            s = min(1.0, max(0.0, s))
            return TestResult(s, "ok", (time.perf_counter() - t0) * 1e3)
        except NoFaceError as exc:
            return TestResult(None, "no_face", (time.perf_counter() - t0) * 1e3, str(exc))
        except Exception as exc:  # a failing test must never take the request down
            return TestResult(
                None, "error", (time.perf_counter() - t0) * 1e3, f"{type(exc).__name__}: {exc}"
            )

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "needs_face": self.needs_face,
            "threshold": self.threshold,
        }
