"""The result object: its JSON shape, each test's verdict, a reason code for every ``unknown``."""

from __future__ import annotations

import inspect
from typing import Any, get_args

import numpy as np
import pytest

import facelive.types
from facelive.liveness import Frame, LivenessTest
from facelive.pipeline import Pipeline
from facelive.types import (
    REASON_CODES,
    SCHEMA_VERSION,
    FaceBox,
    LivenessResult,
    ReasonCode,
    TestResult,
)
from helpers import ConstantTest, FixedDetector

IMG = np.zeros((64, 64, 3), np.uint8)
BOX = FaceBox(10, 10, 30, 30, 0.9)


def const(name: str, value: float = 0.9, *, needs_face: bool = False,
          delay: float = 0.0, **kw: Any) -> ConstantTest:
    """A test named ``name`` with a fixed score (or a failure: ``fail``, ``delay`` past the
    budget); no face needed unless told."""
    return ConstantTest(name, value, needs_face=needs_face, delay_s=delay, **kw)


def check(tests: list[LivenessTest], boxes: list[FaceBox] | Exception = (BOX,), **kw):
    with Pipeline(tests, fusion=None, detector=FixedDetector(list(boxes) if isinstance(
            boxes, tuple) else boxes), **kw) as pipe:
        return pipe.check(IMG)


def test_reason_codes_are_one_documented_list() -> None:
    assert REASON_CODES == get_args(ReasonCode) == (
        "no_face", "multiple_faces", "unreadable_image", "detection_error", "test_error",
        "test_timeout", "missing_scores")
    source = inspect.getsource(facelive.types)
    table = source[source.index("ReasonCode = "):source.index("REASON_CODES: Final")]
    for code in REASON_CODES:  # each one explained in the table under ReasonCode
        assert f"\n``{code}``" in table, code


def test_a_decision_has_no_reason_and_each_test_its_verdict() -> None:
    r = check([const("a", 0.9, needs_face=True), const("b", 0.3, threshold=0.4)])
    d = r.to_dict()
    assert d["decision"] == "spoof" and d["reason"] is None and d["reason_code"] is None
    assert d["face_count"] == 1 and d["schema_version"] == SCHEMA_VERSION
    assert d["tests"]["a"] == {"verdict": "live", "score": 0.9, "threshold": 0.5,
                               "status": "ok", "ms": d["tests"]["a"]["ms"]}
    assert (d["tests"]["b"]["verdict"], d["tests"]["b"]["threshold"]) == ("spoof", 0.4)


@pytest.mark.parametrize("tests,boxes,kw,code,reason", [
    ([const("a", needs_face=True)], (), {}, "no_face", "no face found"),
    ([const("a", needs_face=True), const("b")], (BOX, BOX), {}, "multiple_faces",
     "multiple faces (2)"),
    ([const("a", fail=True), const("b", delay=0.3)], (), {"budget_ms": 50.0}, "test_error",
     "no decision (a: error, b: timeout)"),
    ([const("a"), const("b", delay=0.3)], (), {"budget_ms": 50.0}, "test_timeout",
     "no decision (b: timeout)"),
])
def test_every_unknown_has_a_reason_code(tests, boxes, kw, code, reason) -> None:
    r = check(tests, boxes, **kw)
    assert (r.decision, r.reason_code, r.reason) == ("unknown", code, reason)
    assert r.error is None and r.error_code is None
    assert all(t.verdict is None for t in r.tests.values() if t.score is None)


def test_multiple_faces_even_when_the_other_tests_could_decide() -> None:
    """``missing="available"`` would decide on the test that needs no face: several faces still
    give no decision, with the count."""
    r = check([const("a", needs_face=True), const("b")], (BOX, BOX, BOX), missing="available")
    assert (r.decision, r.reason_code, r.face_count, r.face) == (
        "unknown", "multiple_faces", 3, None)
    assert r.tests["b"].verdict == "live" and r.tests["a"].status == "no_face"


def test_missing_scores_when_nothing_failed_outright() -> None:
    class NoScore(ConstantTest):
        def score(self, frame: Frame) -> TestResult:
            return TestResult(None, "no_face", 0.1, "no face in its own crop")

    r = check([NoScore("a", needs_face=True), const("b")])
    assert (r.decision, r.reason_code, r.reason) == (
        "unknown", "missing_scores", "no decision (a: no_face)")


def test_images_that_cannot_be_used() -> None:
    r = check([const("a", needs_face=True)], RuntimeError("detector refused"))
    assert (r.decision, r.reason_code, r.error_code) == ("unknown", "detection_error",
                                                         "detection_error")
    assert "detector refused" in r.error and r.reason is None and r.face_count is None
    with Pipeline([const("a")], fusion=None) as pipe:
        bad = pipe.check(b"not an image").to_dict()
    assert (bad["decision"], bad["reason_code"]) == ("unknown", "unreadable_image")
    assert bad["error"] and bad["error_code"] and bad["tests"] == {} and "path" not in bad


def test_path_only_for_a_file(tmp_path) -> None:
    import cv2

    f = tmp_path / "img.png"
    cv2.imwrite(str(f), np.full((64, 64, 3), 128, np.uint8))
    with Pipeline([const("a")], fusion=None) as pipe:
        from_file = pipe.check(f).to_dict()
        from_bytes = pipe.check(f.read_bytes()).to_dict()
        from_array = pipe.check(IMG).to_dict()
    assert from_file["path"] == str(f)
    assert "path" not in from_bytes and "path" not in from_array
    assert list(from_file) == ["schema_version", "path"] + [
        k for k in from_array if k != "schema_version"]
    assert from_array["face_count"] is None  # no test needs a face: none was looked for


def test_verdict_follows_score_and_threshold() -> None:
    assert TestResult(0.5, "ok", 1.0, threshold=0.5).verdict == "live"
    assert TestResult(0.49, "ok", 1.0, threshold=0.5).verdict == "spoof"
    assert TestResult(0.9, "ok", 1.0).verdict is None  # no threshold, no verdict
    assert TestResult(None, "error", 1.0, "boom", threshold=0.5).verdict is None
    judged = TestResult(0.9, "ok", 1.0, threshold=0.95).judged(0.5)
    assert (judged.threshold, judged.verdict) == (0.5, "live")
    assert list(judged.to_dict()) == ["verdict", "score", "threshold", "status", "ms"]
    assert list(TestResult(None, "error", 1.0, "boom").to_dict())[-1] == "error"


def test_failed_result_keys() -> None:
    d = LivenessResult.failed("x.jpg", "truncated", "truncated_image", 1.23456).to_dict()
    assert d == {"schema_version": "2", "path": "x.jpg", "decision": "unknown", "score": None,
                 "threshold": None, "reason": None, "reason_code": "unreadable_image",
                 "face_count": None, "tests": {}, "face": None, "face_ms": 0.0, "ms": 1.235,
                 "error": "truncated", "error_code": "truncated_image"}
    assert list(d) == list(LivenessResult.failed("x.jpg", "t", "c", 1.0).to_dict())
