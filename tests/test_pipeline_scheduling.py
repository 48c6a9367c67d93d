"""The pipeline submits the face test it expects to take longest first (and learns which one that
is from the checks it has run)."""

from __future__ import annotations

import threading
import time

import numpy as np

from facelive.liveness import Frame, LivenessTest
from facelive.pipeline import Pipeline
from facelive.types import FaceBox
from helpers import FixedDetector


class Sleeper(LivenessTest):
    needs_face = True

    def __init__(self, name: str, delay: float, log: list[str]) -> None:
        self.name, self.delay, self.log = name, delay, log

    def score_frame(self, frame: Frame) -> float:
        self.log.append(self.name)
        time.sleep(self.delay)
        return 0.9


def test_the_longest_face_test_starts_first() -> None:
    log: list[str] = []
    short, long = Sleeper("short", 0.02, log), Sleeper("long", 0.08, log)
    pipe = Pipeline([short, long], fusion=None,
                    detector=FixedDetector([FaceBox(10, 10, 30, 30, 0.9)]), workers=1)
    img = np.zeros((64, 64, 3), np.uint8)
    pipe.check(img)
    assert log == ["short", "long"]  # nothing known yet: the declared order
    log.clear()
    pipe.check(img)
    assert log == ["long", "short"]
    assert pipe._expected_ms["long"] > pipe._expected_ms["short"]
    pipe.close()
    assert threading.active_count() < 50
