"""Fusion model, pipeline decision rules, concurrency, time budgets and the plug-in registry."""

from __future__ import annotations

import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from facelive.errors import FaceliveError
from facelive.fusion.model import FusionModel, LinearFusion, all_subsets, fit_linear, logit
from facelive.linear import StandardizedLinear
from facelive.liveness import Frame, LivenessTest
from facelive.liveness.registry import available_tests, load_test
from facelive.pipeline import Pipeline
from facelive.types import FaceBox


class ConstTest(LivenessTest):
    def __init__(self, name: str, value: float, *, needs_face: bool = False, delay: float = 0.0,
                 threshold: float = 0.5, fail: bool = False) -> None:
        self.name, self.value, self.needs_face = name, value, needs_face
        self.delay, self.threshold, self.fail = delay, threshold, fail
        self.threads: set[str] = set()

    def score_frame(self, frame: Frame) -> float:
        self.threads.add(threading.current_thread().name)
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("boom")
        return self.value


class FakeDetector:
    def __init__(self, box: FaceBox | None) -> None:
        self.box, self.calls = box, 0

    def detect(self, image: np.ndarray) -> FaceBox | None:
        self.calls += 1
        return self.box


IMG = np.zeros((64, 64, 3), np.uint8)
BOX = FaceBox(10, 10, 30, 30, 0.9)


def test_fit_linear_matches_lda_posterior(rng) -> None:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    y = rng.random(400) < 0.5
    s = np.clip(np.column_stack([0.5 + 0.3 * (y - 0.5) + 0.2 * rng.standard_normal(400),
                                 0.5 + 0.1 * (y - 0.5) + 0.2 * rng.standard_normal(400)]),
                0.01, 0.99)
    m = fit_linear(s, y, ("a", "b"))
    z = (logit(s) - m.model.mean) / m.model.scale
    ref = LinearDiscriminantAnalysis(solver="eigen", shrinkage="auto").fit(z, y.astype(int))
    np.testing.assert_allclose(m.predict_proba(s), ref.predict_proba(z)[:, 1], atol=1e-9)
    # round trip through the stored form
    m2 = LinearFusion.from_dict(m.to_dict())
    np.testing.assert_allclose(m2.predict_proba(s), m.predict_proba(s))


def _model(missing: str = "abstain") -> FusionModel:
    subsets = {}
    for sub in all_subsets(["a", "b"]):
        k = len(sub)
        linear = StandardizedLinear(np.zeros(k), np.ones(k), np.ones(k), 0.0)
        subsets[sub] = LinearFusion(sub, linear, threshold=0.5)
    return FusionModel(("a", "b"), subsets, missing)


def test_missing_policies() -> None:
    m = _model("abstain")
    assert m.fuse({"a": 0.9, "b": None}, ["a", "b"]) == (None, None)
    s, thr = m.fuse({"a": 0.9, "b": 0.8}, ["a", "b"])
    assert thr == 0.5 and s == pytest.approx(1 / (1 + np.exp(-(logit(0.9) + logit(0.8)))))
    m.missing = "available"
    s, _ = m.fuse({"a": 0.9, "b": None}, ["a", "b"])
    assert s == pytest.approx(0.9)
    assert FusionModel.from_dict(m.to_dict()).subsets.keys() == m.subsets.keys()


def test_single_test_uses_its_threshold() -> None:
    pipe = Pipeline([ConstTest("a", 0.6, threshold=0.7)])
    r = pipe.check(IMG)
    assert r.decision == "spoof" and r.score == pytest.approx(0.6)
    assert r.tests["a"].status == "ok" and r.error is None


def test_all_live_rule_without_fusion() -> None:
    pipe = Pipeline([ConstTest("a", 0.9), ConstTest("b", 0.4)], fusion=None)
    r = pipe.check(IMG)
    assert r.decision == "spoof" and r.score == pytest.approx(0.4)
    pipe = Pipeline([ConstTest("a", 0.9), ConstTest("b", 0.6)], fusion=None)
    assert pipe.check(IMG).decision == "live"


def test_fusion_used_and_scores_kept() -> None:
    pipe = Pipeline([ConstTest("a", 0.9), ConstTest("b", 0.2)], fusion=_model())
    r = pipe.check(IMG)
    assert set(r.tests) == {"a", "b"}
    assert r.tests["a"].score == pytest.approx(0.9)
    expect = 1 / (1 + np.exp(-(logit(0.9) + logit(0.2))))
    assert r.score == pytest.approx(expect, abs=1e-6)
    assert r.decision == ("live" if expect >= 0.5 else "spoof")


def test_no_face_gives_unknown_and_face_detected_once() -> None:
    det = FakeDetector(None)
    pipe = Pipeline([ConstTest("a", 0.9), ConstTest("b", 0.9, needs_face=True)],
                    fusion=_model(), detector=det)
    r = pipe.check(IMG)
    assert r.decision == "unknown" and r.tests["b"].status == "no_face"
    assert r.reason == "no face found" and r.face is None
    det.box = BOX
    r = pipe.check(IMG)
    assert r.decision in ("live", "spoof") and r.face.w == 30
    assert det.calls == 2  # once per frame, not once per test


def test_errors_and_timeouts_are_statuses() -> None:
    pipe = Pipeline([ConstTest("a", 0.9, fail=True), ConstTest("b", 0.9, delay=1.0)],
                    fusion=None, budget_ms=100)
    t0 = time.perf_counter()
    r = pipe.check(IMG)
    assert time.perf_counter() - t0 < 0.9
    assert r.tests["a"].status == "error" and "boom" in r.tests["a"].error
    assert r.tests["b"].status == "timeout"
    assert r.decision == "unknown"
    pipe.close()


def test_tests_run_concurrently() -> None:
    a, b = ConstTest("a", 0.9, delay=0.2), ConstTest("b", 0.9, delay=0.2)
    pipe = Pipeline([a, b], fusion=None, workers=2)  # sleeping tests need no second core
    t0 = time.perf_counter()
    pipe.check(IMG)
    assert time.perf_counter() - t0 < 0.35  # in series it would take >= 0.4 s
    assert a.threads != b.threads
    serial = Pipeline([ConstTest("a", 0.9, delay=0.2), ConstTest("b", 0.9, delay=0.2)],
                      fusion=None, parallel=False)
    t0 = time.perf_counter()
    serial.check(IMG)
    assert time.perf_counter() - t0 >= 0.4


class SlowDetector(FakeDetector):
    def detect(self, image: np.ndarray) -> FaceBox | None:
        time.sleep(0.2)
        return super().detect(image)


def test_face_free_tests_overlap_with_detection() -> None:
    """The quality-like test (no face needed) runs while the face is being detected."""
    whole = ConstTest("whole", 0.9, delay=0.2)
    face = ConstTest("face", 0.9, needs_face=True)
    pipe = Pipeline([face, whole], fusion=None, detector=SlowDetector(BOX), workers=2)
    t0 = time.perf_counter()
    r = pipe.check(IMG)
    assert time.perf_counter() - t0 < 0.35  # detection then the test would take >= 0.4 s
    assert list(r.tests) == ["face", "whole"]  # results keep the tests' order
    assert r.decision == "live" and r.face.w == 30
    pipe.close()


def test_budget_counts_from_a_tests_start_not_its_queueing() -> None:
    """One worker, two tests: the second waits for the first but still gets its own budget."""
    a, b = ConstTest("a", 0.9, delay=0.15), ConstTest("b", 0.8, delay=0.15)
    pipe = Pipeline([a, b], fusion=None, workers=1, budget_ms=250)
    r = pipe.check(IMG)  # b starts at ~0.15 s and ends at ~0.30 s, past 0.25 s from submission
    assert r.tests["a"].status == "ok" and r.tests["b"].status == "ok"
    pipe.close()


def test_a_hung_test_does_not_starve_later_frames() -> None:
    hung = ConstTest("hung", 0.9, delay=1.0)
    pipe = Pipeline([hung, ConstTest("b", 0.9)], fusion=None, workers=1, budget_ms=150)
    first = pipe.check(IMG)
    assert first.tests["hung"].status == "timeout"
    assert "exceeded" in first.tests["hung"].error
    # the hung thread still holds the old pool's only worker; the next frame gets a fresh one
    second = pipe.check(IMG)
    assert "exceeded" in second.tests["hung"].error  # it started, so it was not starved
    pipe.close()


class FailingDetector(FakeDetector):
    def detect(self, image: np.ndarray) -> FaceBox | None:
        raise RuntimeError("detector exploded")


def test_a_failing_detector_gives_an_error_result() -> None:
    pipe = Pipeline([ConstTest("whole", 0.9), ConstTest("face", 0.9, needs_face=True)],
                    fusion=None, detector=FailingDetector(None), workers=2)
    r = pipe.check(IMG)
    assert r.decision == "unknown" and "detector exploded" in r.error
    assert r.error_code == "detection_error"
    pipe.close()


def test_bad_input_is_a_result_not_an_exception(tmp_path) -> None:
    pipe = Pipeline([ConstTest("a", 0.9)])
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    r = pipe.check(tmp_path / "bad.jpg")
    assert r.decision == "unknown" and r.error and r.error_code
    assert pipe.check(b"").error_code == "empty_image"


def test_plugin_registered_through_entry_point(tmp_path, monkeypatch) -> None:
    """A third-party test installed as a package is found by name (entry point facelive.tests)."""
    pkg = tmp_path / "dummy_liveness_plugin.py"
    pkg.write_text(textwrap.dedent("""
        from facelive.liveness import LivenessTest

        class DummyTest(LivenessTest):
            name = "dummy"
            version = "1.0"

            def score_frame(self, frame):
                return 0.75
    """))
    dist = tmp_path / "dummy_liveness_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: dummy-liveness-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[facelive.tests]\ndummy = dummy_liveness_plugin:DummyTest\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "dummy" in available_tests()
    test = load_test("dummy")
    assert test.name == "dummy"
    r = Pipeline(["dummy"]).check(IMG)
    assert r.score == pytest.approx(0.75) and r.decision == "live"
    with pytest.raises(KeyError):
        load_test("no-such-test")
    sys.modules.pop("dummy_liveness_plugin", None)


def test_shipped_fusion_covers_the_default_tests() -> None:
    """`facelive check` fuses the default tests, and any named set of built-in tests: the shipped
    model must cover every subset of the built-in tests (face3d is built in, not a default)."""
    from facelive.liveness.registry import _builtin_tests
    from facelive.pipeline import DEFAULT_TESTS, load_fusion

    assert set(DEFAULT_TESTS) == {"cnn", "probe", "minifas"} < set(_builtin_tests())
    model = load_fusion()
    assert model is not None and model.covers(DEFAULT_TESTS)
    for sub in all_subsets(tuple(_builtin_tests())):  # every fallback of `available` exists
        assert sub in model.subsets and 0.0 < model.subsets[sub].threshold < 1.0


class TwoFaces:
    """A detector that sees two faces (as with a photo held beside a live face)."""

    boxes = [FaceBox(10, 10, 30, 30, 0.95), FaceBox(50, 10, 20, 20, 0.9)]

    def detect(self, image):
        return self.boxes[0]

    def detect_all(self, image):
        return list(self.boxes)


def test_multiple_faces_get_no_decision_unless_largest_is_asked_for():
    tests = [ConstTest("face", 0.9, needs_face=True), ConstTest("whole", 0.9)]
    with Pipeline(tests, fusion=None, detector=TwoFaces(), missing="available") as pipe:
        r = pipe.check(IMG)
    assert r.decision == "unknown" and r.score is None and r.face is None
    assert r.reason == "multiple faces (2)"
    assert r.reason_code == "multiple_faces" and r.face_count == 2
    assert r.tests["whole"].verdict == "live"  # scored, but never decides alone
    with Pipeline(tests, fusion=None, detector=TwoFaces(), faces="largest") as pipe:
        r = pipe.check(IMG)
    assert r.decision == "live" and r.face == TwoFaces.boxes[0]
    assert r.reason_code is None and r.face_count == 1  # only the largest face is looked for
    with pytest.raises(FaceliveError):
        Pipeline(tests, fusion=None, detector=TwoFaces(), faces="any")


# --- monotone fusion -----------------------------------------------------------------------------
def _two_domains(rng, n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Test a separates in both domains; test b helps in domain A but is reversed in domain B
    (a domain quirk); domain A has four times the samples."""
    dom = np.array(["A"] * (4 * n // 5) + ["B"] * (n // 5))
    y = rng.random(n) < 0.5
    a = np.where(y, rng.normal(1.0, 1.0, n), rng.normal(-1.0, 1.0, n))
    b = np.where(y, 1.0, -1.0) * np.where(dom == "A", -0.3, 1.0) + rng.normal(0, 1.0, n)
    b = b - 2.5 * a * (dom == "A") * 0.2  # anti-correlated with a in A: LDA flips its sign
    p = 1 / (1 + np.exp(-np.column_stack([a, b])))
    return p, y, dom


def test_fit_nonneg_keeps_every_weight_non_negative(rng) -> None:
    from facelive.fusion.model import fit_nonneg

    p, y, dom = _two_domains(rng)
    lda = fit_linear(p, y, ("a", "b"))
    mono = fit_nonneg(p, y, ("a", "b"))
    assert lda.model.coef[1] < 0  # the unconstrained fit follows domain A's quirk
    assert np.all(mono.model.coef >= 0) and mono.model.coef[0] > 0
    # stored like any fusion: the JSON format is unchanged
    back = LinearFusion.from_dict(mono.to_dict())
    np.testing.assert_allclose(back.predict_proba(p), mono.predict_proba(p))
    # monotone: raising a test's P(live) never lowers the fused P(live)
    lo, hi = p.copy(), p.copy()
    hi[:, 1] = np.minimum(hi[:, 1] + 0.2, 0.99)
    assert np.all(mono.predict_proba(hi) >= mono.predict_proba(lo) - 1e-12)


def test_balanced_weights_and_domain_max_eer_threshold() -> None:
    from facelive.fusion.model import balanced_weights
    from facelive.training.fusion import domain_max_eer_threshold

    w = balanced_weights(["A/1", "A/1", "A/1", "B/0"])
    assert w[:3].sum() == pytest.approx(w[3]) and w.sum() == pytest.approx(4)
    scores = np.array([0.9, 0.8, 0.3, 0.2, 0.6, 0.5, 0.45, 0.1])
    live = np.array([1, 1, 0, 0, 1, 1, 0, 0], bool)
    dom = np.array(["A"] * 4 + ["B"] * 4)
    # A separates between 0.3 and 0.8 (EER threshold 0.55), B between 0.45 and 0.5 (0.475)
    assert domain_max_eer_threshold(scores, live, dom) == pytest.approx(0.55)
    assert domain_max_eer_threshold(scores[4:], live[4:], dom[4:]) == pytest.approx(0.475)


def test_fit_subsets_nonneg_reports_per_domain(rng) -> None:
    from facelive.datasets import Sample
    from facelive.training.fusion import fit_subsets

    p, y, dom = _two_domains(rng, 200)
    samples = [Sample(f"k{i}", "live" if v else "spoof", None if v else "print", f"s{i % 10}",
                      f"k{i}", "devel") for i, v in enumerate(y)]
    models, rep = fit_subsets({"a": p[:, 0], "b": p[:, 1]}, samples, ["a", "b"], folds=5,
                              method="nonneg", threshold_rule="domain-max-eer", domains=dom)
    assert set(models) == {("a",), ("b",), ("a", "b")}
    assert all(np.all(m.model.coef >= 0) for m in models.values())
    assert set(rep["a+b"]["per_domain"]) == {"A", "B"}
    assert "out_of_fold_per_domain" in models[("a", "b")].metrics
    fm = FusionModel(("a", "b"), models, "available")
    assert FusionModel.from_dict(fm.to_dict()).subsets[("a", "b")].threshold == pytest.approx(
        models[("a", "b")].threshold)


def test_domain_apcer_threshold_bounds_every_domain() -> None:
    from facelive.training.fusion import domain_apcer_threshold

    rng = np.random.default_rng(3)
    scores = np.concatenate([rng.uniform(0, 1, 100), rng.uniform(0.3, 1, 100),  # domain A
                             rng.uniform(0, 1, 100), rng.uniform(0, 0.6, 100)])  # domain B
    live = np.tile(np.r_[np.ones(100, bool), np.zeros(100, bool)], 2)
    dom = np.array(["A"] * 200 + ["B"] * 200)
    thr = domain_apcer_threshold(scores, live, dom, 0.05)
    for d in "AB":
        attacks = scores[(dom == d) & ~live]
        assert np.mean(attacks >= thr) <= 0.05
    # the lowest such threshold: the stricter domain (A, attacks up to 1) sets it exactly
    a_att = np.sort(scores[(dom == "A") & ~live])[::-1]
    assert a_att[5] < thr <= a_att[4]
    assert domain_apcer_threshold(scores[200:], live[200:], dom[200:], 0.05) < thr
