"""Stand-ins shared by the tests: a pipeline without models, a constant-score liveness test, a
detector that finds given boxes, a clock that moves only when told, small encoded images.

``tests/conftest.py`` puts ``tests/`` on ``sys.path``, so test modules import this package as
``helpers`` (``from helpers import StubPipeline``); a server started in a subprocess gets the same
path from :func:`subprocess_env`. Processes spawned by a pipeline pool inherit ``sys.path``, so
the stand-ins also load there. A test client of the app with the stand-in pipeline is in
:mod:`helpers.server`, the challenge-session flow over HTTP in :mod:`helpers.sessions`, the
real-browser helpers in :mod:`helpers.browser`.
"""

from __future__ import annotations

import io
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

from facelive.liveness import Frame, LivenessTest
from facelive.types import FaceBox, LivenessResult, TestResult

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
EXAMPLE = REPO / "examples" / "astronaut.jpg"

Behaviour = Literal["answer", "hang", "hog", "crash"]


class StubPipeline:
    """A stand-in for :class:`facelive.pipeline.Pipeline` without models: ``check``,
    ``check_frame``, ``info`` and ``close``, with one test named ``stub``.

    The score is the image's mean grey level over 255 (or ``score`` when given); the decision is
    ``live`` at or above the threshold 0.5, else ``spoof``; the face is the centred half of the
    image. ``calls`` counts the checks and ``shapes`` records the image shapes seen.

    Parameters
    ----------
    score
        A fixed score instead of the brightness.
    behaviour
        ``"answer"`` (the default); ``"hang"``, a loop no time budget covers (only killing the
        process stops it); ``"hog"``, allocating memory until the process is killed; ``"crash"``,
        ending the process with status 3.
    error
        Raised by ``check`` instead of answering.
    gate
        ``check`` waits for this event (at most 10 s) before anything else.
    delay_s
        Seconds ``check`` sleeps before answering.
    no_face_below
        A mean grey level under which the image has no face (``unknown``, reason code
        ``no_face``), as for a dark frame.
    undecided_at
        A mean grey level at which the face has no score (``unknown``: the test errs).
    """

    load_ms = 1.0
    threshold = 0.5
    test = "stub"

    def __init__(self, score: float | None = None, *, behaviour: Behaviour = "answer",
                 error: Exception | None = None, gate: threading.Event | None = None,
                 delay_s: float = 0.0, no_face_below: float | None = None,
                 undecided_at: float | None = None) -> None:
        self.score, self.behaviour, self.error, self.gate = score, behaviour, error, gate
        self.delay_s, self.no_face_below, self.undecided_at = delay_s, no_face_below, undecided_at
        self.calls = 0
        self.shapes: list[tuple[int, ...]] = []

    def check(self, source: Any, path: str | None = None) -> LivenessResult:
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        self.calls += 1
        if self.behaviour == "hang":
            while True:
                pass
        if self.behaviour == "hog":
            hoard = []
            while True:
                hoard.append(np.ones(16 << 20, np.uint8))
                time.sleep(0.005)
        if self.behaviour == "crash":
            os._exit(3)
        if self.error is not None:
            raise self.error
        time.sleep(self.delay_s)
        assert isinstance(source, np.ndarray) and source.dtype == np.uint8
        self.shapes.append(source.shape)
        return self._result(source, path)

    def check_frame(self, image: np.ndarray) -> LivenessResult:
        return self.check(image)

    def _result(self, image: np.ndarray, path: str | None) -> LivenessResult:
        mean = float(image.mean())
        if self.no_face_below is not None and mean < self.no_face_below:
            return LivenessResult(path, "unknown", None, None,
                                  {self.test: TestResult(None, "no_face", 1.0)}, None, 1.0, 3.0,
                                  reason="no face found")
        h, w = image.shape[:2]
        face = FaceBox(x=w // 4, y=h // 4, w=w // 2, h=h // 2, confidence=0.9)
        if self.undecided_at is not None and mean == self.undecided_at:
            return LivenessResult(path, "unknown", None, None,
                                  {self.test: TestResult(None, "error", 1.0)}, face, 1.0, 3.0,
                                  reason=f"no decision ({self.test}: error)")
        score = self.score if self.score is not None else round(mean / 255.0, 6)
        return LivenessResult(
            path=path, decision="live" if score >= self.threshold else "spoof", score=score,
            threshold=self.threshold,
            tests={self.test: TestResult(score=score, status="ok", ms=2.0,
                                         threshold=self.threshold)},
            face=face, face_ms=1.0, ms=3.0)

    def info(self) -> dict[str, Any]:
        return {"tests": [{"name": self.test, "version": "1", "needs_face": True,
                           "threshold": self.threshold}],
                "fusion": None, "threshold": self.threshold}

    def close(self) -> None:
        pass


class ConstantTest(LivenessTest):
    """A liveness test with a fixed score, or a failure (``fail`` raises, ``delay_s`` sleeps
    first, e.g. past a time budget); for the real :class:`~facelive.pipeline.Pipeline`."""

    def __init__(self, name: str = "constant", score: float = 0.75, *, needs_face: bool = True,
                 threshold: float = 0.5, fail: bool = False, delay_s: float = 0.0) -> None:
        self.name, self.score_value, self.needs_face = name, score, needs_face
        self.threshold, self.fail, self.delay_s = threshold, fail, delay_s

    def score_frame(self, frame: Frame) -> float:
        time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("boom")
        return self.score_value


class FixedDetector:
    """A face detector that finds ``boxes`` in every image (or raises ``boxes`` when it is an
    exception)."""

    def __init__(self, boxes: list[FaceBox] | tuple[FaceBox, ...] | Exception) -> None:
        self.boxes = boxes

    def detect_all(self, image: np.ndarray) -> list[FaceBox]:
        if isinstance(self.boxes, Exception):
            raise self.boxes
        return list(self.boxes)

    def detect(self, image: np.ndarray) -> FaceBox | None:
        boxes = self.detect_all(image)
        return boxes[0] if boxes else None


class FakeClock:
    """Unix seconds that move only when told (``clock.t += 5``); starts at ``t``, by default the
    real time now (so that tokens signed on this clock are fresh)."""

    def __init__(self, t: float | None = None) -> None:
        self.t = time.time() if t is None else t

    def __call__(self) -> float:
        return self.t


def encoded(pixels: np.ndarray, fmt: str = "JPEG", **options: Any) -> bytes:
    """``pixels`` (RGB) encoded as ``fmt`` by Pillow."""
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **options)
    return buf.getvalue()


def jpeg(w: int = 160, h: int = 120, value: int = 200) -> bytes:
    """A uniform grey ``w`` x ``h`` JPEG."""
    return encoded(np.full((h, w, 3), value, np.uint8), "JPEG")


def png(w: int, h: int, value: int = 0) -> bytes:
    """A uniform ``w`` x ``h`` PNG (black by default: a few hundred bytes however large)."""
    return encoded(np.full((h, w, 3), value, np.uint8), "PNG")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def subprocess_env(**extra: str) -> dict[str, str]:
    """This process's environment with ``src/`` and ``tests/`` first on ``PYTHONPATH`` (a server
    run in a subprocess imports facelive from the working tree and these helpers), plus
    ``extra``."""
    path = [str(REPO / "src"), str(TESTS)] + [p for p in [os.environ.get("PYTHONPATH")] if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join(path), **extra)

