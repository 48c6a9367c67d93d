"""The liveness-test interface every test (built-in or plug-in) implements.

A test receives a :class:`Frame` (the decoded image, decoded once, plus the face found once by the
pipeline) and returns P(live) in [0, 1]. The pipeline wraps each call into a :class:`TestResult`
with a status and timing, so a test only has to compute its score or raise.

Third-party tests register a zero-argument factory (usually the class) in the entry-point group
``facelive.tests``; :func:`available_tests` lists built-in and installed tests by name.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from typing import Any, Literal

import numpy as np

Status = Literal["ok", "no_face", "error", "timeout"]
ENTRY_POINT_GROUP = "facelive.tests"


class NoFaceError(Exception):
    """Raised by a test that needs a face it cannot use (e.g. no face mesh in the face box):
    the result's status becomes ``no_face``, not ``error``."""


@dataclass(frozen=True)
class FaceBox:
    """A detected face: top-left corner, width and height in pixels, detector confidence."""

    x: int
    y: int
    w: int
    h: int
    confidence: float

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class Frame:
    """One decoded image (BGR uint8, H x W x 3) and what the pipeline found in it."""

    image: np.ndarray
    face: FaceBox | None = None
    landmarks: np.ndarray | None = None  # (N, 3) face mesh in image pixels, set by face3d
    cache: dict[str, Any] = field(default_factory=dict)  # shared per-frame intermediates


@dataclass
class TestResult:
    """What one test said about one frame."""

    score: float | None
    status: Status
    ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"score": self.score, "status": self.status, "ms": round(self.ms, 3)}
        if self.error is not None:
            d["error"] = self.error
        return d


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


def _builtin_tests() -> dict[str, Callable[[], LivenessTest]]:
    from facelive.cnn import CNNTest
    from facelive.face3d import Face3DTest
    from facelive.quality.test import QualityTest

    return {"quality": QualityTest, "cnn": CNNTest, "face3d": Face3DTest}


def available_tests() -> dict[str, Callable[[], LivenessTest]]:
    """Built-in tests plus those installed under the ``facelive.tests`` entry-point group."""
    tests = _builtin_tests()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in tests:
            tests[ep.name] = ep.load
    return tests


def unknown_tests_message(names: Sequence[str]) -> str | None:
    """``None`` when every name is an available test, else the message to show the user."""
    known = available_tests()
    unknown = [n for n in names if n not in known]
    if names and not unknown:
        return None
    return (f"unknown test(s) {', '.join(unknown) or '(none)'}; "
            f"available: {', '.join(sorted(known))}")


def parse_test_names(text: str | None) -> list[str] | None:
    """Split a comma-separated list of test names (``None``/empty: ``None``, the defaults)."""
    if not text:
        return None
    return [n.strip() for n in text.split(",") if n.strip()]


def load_test(name: str) -> LivenessTest:
    """Instantiate the test registered under ``name``."""
    tests = available_tests()
    if name not in tests:
        raise KeyError(f"unknown test {name!r}; available: {', '.join(sorted(tests))}")
    factory = tests[name]
    obj = factory()
    if not isinstance(obj, LivenessTest) and callable(obj):  # entry point loaded a class
        obj = obj()
    if not isinstance(obj, LivenessTest):
        raise TypeError(f"test {name!r} is not a facelive.liveness.LivenessTest")
    return obj
