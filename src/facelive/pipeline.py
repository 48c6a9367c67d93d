"""The liveness pipeline: decode once, detect the face once, run the tests concurrently, fuse.

>>> import numpy as np
>>> with Pipeline() as pipe:                # the default tests + the shipped fusion
...     result = pipe.check(np.zeros((240, 320, 3), np.uint8))   # a path, bytes or BGR array
>>> result.decision, result.face            # a blank frame has no face: no decision
('unknown', None)
>>> result.to_dict()["decision"]            # the object `facelive check --format json` prints
'unknown'

Decision rules (documented in ``docs/usage.md``):
- one test: its own score and threshold;
- several tests with a fusion model covering them: the fused P(live) and the fusion's threshold;
  a missing score (no face, error, timeout) follows the fusion's missing-score policy;
- several tests without a fusion model: live only when every test says live (score: the lowest
  test score); any missing score gives no decision.
A frame without a face gives ``"decision": "unknown"`` whenever a selected test needs a face.
A result without a decision says why: ``reason`` (text) and ``reason_code`` (one of
:data:`facelive.types.REASON_CODES`); each test's result carries its own threshold and verdict.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

import numpy as np

from facelive.errors import FaceliveError
from facelive.fusion import FusionModel, load_fusion
from facelive.imageio import load_image
from facelive.liveness.base import Frame, LivenessTest
from facelive.liveness.registry import DEFAULT_TESTS, available_tests, load_test
from facelive.types import FaceBox, LivenessResult, ReasonCode, TestResult

__all__ = ["DEFAULT_TESTS", "FACE_POLICIES", "Pipeline"]

FACE_POLICIES = ("refuse", "largest")
"""What a frame with several faces gets: no decision (``refuse``) or the largest face judged."""


def _usable_cores() -> int:
    """CPU cores this process may run on (affinity-aware where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


@dataclass
class _Job:
    """One test submitted for one frame; ``started`` is set when a worker picks it up."""

    test: LivenessTest
    submitted: float
    started: float | None = None
    future: Future[TestResult] = None  # type: ignore[assignment]

    def run(self, frame: Frame) -> TestResult:
        self.started = time.perf_counter()
        return self.test.score(frame)


class Pipeline:
    """Run selected liveness tests on images and combine their scores into one decision.

    Parameters
    ----------
    tests : sequence of str or LivenessTest, optional
        Test names (see :func:`facelive.liveness.registry.available_tests`) or test objects;
        default: the built-in default tests (:data:`DEFAULT_TESTS`).
    fusion : "default", FusionModel or None, optional
        ``"default"``: the shipped fusion model when it covers the tests; ``None``: no fusion
        (the all-tests-must-agree rule); or a :class:`~facelive.fusion.FusionModel`.
    threshold : float, optional
        Override the decision threshold on the final score.
    missing : {"abstain", "available"}, optional
        The fusion's policy for a test without a score (no face, error, timeout): no decision
        (``"abstain"``), or fuse the tests that did score (``"available"``); default: the
        shipped fusion's own policy.
    budget_ms : float, optional
        Per-test time budget, counted from the test's start; a test that overruns, or waits as
        long again for a free worker, gets status ``timeout``.
    parallel : bool, optional
        Run the tests concurrently, on at most one thread per CPU core (more threads than cores
        only time-slice the same cores: with the 3 built-in tests on 2 cores,
        ``benchmarks/bench_pipeline.py`` measured 61-76 ms per frame with 3 threads and 48-51 ms
        with 2). Tests that need no face start before face detection and overlap with it.
    detector : object, optional
        A thread-safe face detector with ``detect(image)`` (and optionally ``detect_all``);
        default: a :class:`facelive.face.detection.FaceDetector`, created when a test needs a
        face.
    workers : int, optional
        Threads for the tests (default: one per test, at most one per CPU core).
    faces : {"refuse", "largest"}, optional
        What a frame with more than one face (above the detector's confidence cut) gets:
        ``"refuse"`` (default): no decision, ``reason_code`` ``"multiple_faces"`` with
        ``face_count`` (one person per check, so that a photo held beside a live face is never
        judged by the live one);
        ``"largest"``: judge the largest face. Only checked when a selected test needs a face.

    Raises
    ------
    facelive.FaceliveError
        On an unknown ``faces`` policy or a test selected twice (code ``usage``).
    KeyError
        On an unknown test name.

    Notes
    -----
    The pipeline parallelises across tests; library thread pools on top of that only compete for
    the cores (OpenBLAS workers busy-wait: 62 ms per frame instead of 46 ms on the 2-core VM).
    Making the libraries single-threaded is process-wide, so the pipeline does not do it behind
    its caller's back: the entry points (``facelive`` CLI, ``facelive serve``) opt in with
    :func:`facelive.runtime.tune_process`; an application embedding the pipeline may do the same.
    """

    def __init__(
        self,
        tests: Sequence[str | LivenessTest] | None = None,
        *,
        fusion: str | FusionModel | None = "default",
        threshold: float | None = None,
        missing: str | None = None,
        budget_ms: float = 5000.0,
        parallel: bool = True,
        detector: Any | None = None,
        workers: int | None = None,
        faces: str = "refuse",
    ) -> None:
        t0 = time.perf_counter()
        if faces not in FACE_POLICIES:
            raise FaceliveError(f"faces must be one of {', '.join(FACE_POLICIES)}, got {faces!r}",
                                code="usage")
        self.faces = faces
        names = list(tests) if tests else list(DEFAULT_TESTS)
        self.tests: list[LivenessTest] = [
            t if isinstance(t, LivenessTest) else load_test(t) for t in names
        ]
        seen = [t.name for t in self.tests]
        if len(set(seen)) != len(seen):
            raise FaceliveError("a test was selected twice", code="usage")
        self.budget_s = budget_ms / 1e3
        self.parallel = parallel and len(self.tests) > 1
        self._workers = workers or min(len(self.tests), _usable_cores())
        self._pool_lock = threading.Lock()
        self._pool = self._new_pool() if self.parallel else None
        self.fusion: FusionModel | None = None
        if len(self.tests) > 1:
            if isinstance(fusion, FusionModel):
                self.fusion = fusion
            elif fusion == "default":
                model = load_fusion(missing=missing)
                if model is not None and model.covers(self.test_names):
                    self.fusion = model
        self._threshold_override = threshold
        self._expected_ms: dict[str, float] = {}  # running mean of each test's time
        self._needs_face = any(t.needs_face for t in self.tests)
        self._detector = detector  # must be thread-safe (FaceDetector is)
        if self._needs_face and self._detector is None:
            from facelive.face.detection import FaceDetector

            self._detector = FaceDetector()
        self.load_ms = (time.perf_counter() - t0) * 1e3

    @property
    def test_names(self) -> list[str]:
        """The selected tests' names, in order."""
        return [t.name for t in self.tests]

    @property
    def threshold(self) -> float:
        """The decision threshold on the final score (live when score >= threshold)."""
        if self._threshold_override is not None:
            return self._threshold_override
        if len(self.tests) == 1:
            return self.tests[0].threshold
        if self.fusion is not None:
            return self.fusion.subsets[tuple(sorted(self.test_names))].threshold
        return 0.5

    def info(self) -> dict[str, Any]:
        """What the pipeline runs: each test's ``info()``, the fusion and the threshold.

        Returns
        -------
        dict
            ``{"tests": [...], "fusion": "linear" | "all-live" | None, "threshold": float}``.
        """
        return {
            "tests": [t.info() for t in self.tests],
            # "linear": the shipped fusion file (a linear model on the tests' logits; LDA
            # first, non-negative logistic regression now)
            "fusion": ("linear" if self.fusion is not None
                       else ("all-live" if len(self.tests) > 1 else None)),
            "threshold": self.threshold,
        }

    # -- running ---------------------------------------------------------------------------
    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """The faces the pipeline sees in ``image``, largest first.

        Parameters
        ----------
        image : numpy.ndarray
            A BGR ``uint8`` image ``(H, W, 3)``.

        Returns
        -------
        list of FaceBox
            At most one unless the detector offers ``detect_all`` and the policy is
            ``refuse``; empty without a face (or without a detector).
        """
        if self._detector is None:
            return []
        if self.faces == "refuse" and hasattr(self._detector, "detect_all"):
            return list(self._detector.detect_all(image))
        face = self._detector.detect(image)
        return [] if face is None else [face]

    def _new_pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(max_workers=self._workers, thread_name_prefix="facelive-test")

    def _submit(self, tests: Sequence[LivenessTest], frame: Frame) -> list[_Job]:
        jobs = []
        with self._pool_lock:
            assert self._pool is not None
            for t in tests:
                job = _Job(t, time.perf_counter())
                job.future = self._pool.submit(job.run, frame)
                jobs.append(job)
        return jobs

    def _collect(self, jobs: list[_Job]) -> dict[str, TestResult]:
        """Wait for each job: a started test gets ``budget`` from its own start; a test still
        queued (all workers busy) gets ``budget`` more before it is given up unstarted."""
        out: dict[str, TestResult] = {}
        budget = self.budget_s
        for job in jobs:
            while True:
                start = job.started
                deadline = (start if start is not None else job.submitted + budget) + budget
                wait = deadline - time.perf_counter()
                if start is None:
                    wait = min(wait, 0.01)  # re-check whether it has started meanwhile
                try:
                    out[job.test.name] = job.future.result(timeout=max(0.0, wait))
                    break
                except FutureTimeout:
                    if time.perf_counter() < deadline:
                        continue
                    if job.future.cancel():  # never started
                        msg = f"did not start within {budget * 1e3:.0f} ms (all workers busy)"
                    else:
                        msg = f"exceeded the {budget * 1e3:.0f} ms budget"
                        self._replace_pool()  # its thread stays busy: keep the pool usable
                    out[job.test.name] = TestResult(None, "timeout", budget * 1e3, msg)
                    break
        return out

    def _replace_pool(self) -> None:
        """Swap in a fresh pool after a running test overran: Python cannot stop the thread,
        and a few hung tests must not leave every later request waiting for a worker."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False)  # queued jobs still run; the stuck thread ends
                self._pool = self._new_pool()   # whenever its test returns

    def _run(self, frame: Frame) -> tuple[dict[str, TestResult], float]:
        """Detect the face (when a test needs one) and run the tests; returns the results (in
        the tests' order) and the detection time in ms.

        In parallel mode the tests that need no face start before detection, so they overlap
        with it; the others start as soon as the face box is known. Each test's time budget
        counts from its own start (see :meth:`_collect`).
        """
        face_ms = 0.0

        def detect() -> None:
            nonlocal face_ms
            if self._needs_face:
                tf = time.perf_counter()
                faces = self.detect(frame.image)
                frame.cache["faces"] = len(faces)
                one = len(faces) == 1 or (len(faces) > 1 and self.faces == "largest")
                frame.face = faces[0] if one else None
                face_ms = (time.perf_counter() - tf) * 1e3

        if not self.parallel or self._pool is None:
            detect()
            return {t.name: t.score(frame) for t in self.tests}, face_ms
        early = self._submit([t for t in self.tests if not t.needs_face], frame)
        try:
            detect()
        except BaseException:
            for job in early:
                job.future.cancel()
            raise
        late = self._submit(self._longest_first([t for t in self.tests if t.needs_face]), frame)
        results = self._collect(early + late)
        self._learn(results)
        return {t.name: results[t.name] for t in self.tests}, face_ms

    def _longest_first(self, tests: list[LivenessTest]) -> list[LivenessTest]:
        """``tests`` in decreasing order of their recent run time (declared order until known).

        With more tests than workers, the test still queued runs on whichever worker frees
        first; starting the longest test first finishes soonest (the 3D test first, on the
        worker the quality test is not using, then the CNN wherever a worker is free).
        """
        return sorted(tests, key=lambda t: -self._expected_ms.get(t.name, 0.0))

    def _learn(self, results: dict[str, TestResult]) -> None:
        for name, r in results.items():
            if r.status == "ok":
                prev = self._expected_ms.get(name)
                self._expected_ms[name] = r.ms if prev is None else 0.8 * prev + 0.2 * r.ms

    def decide(self, results: dict[str, TestResult]) -> tuple[str, float | None, float | None]:
        """Combine test results by the decision rules of the module docstring.

        Parameters
        ----------
        results : dict of str to TestResult
            One result per selected test.

        Returns
        -------
        tuple
            ``(decision, score, threshold)``: ``"live"``, ``"spoof"`` or ``"unknown"``; the final
            score (``None`` without a decision); the threshold it was compared with (``None``
            under the all-tests-must-agree rule or without a decision).
        """
        scores = {n: r.score for n, r in results.items()}
        names = self.test_names
        if len(names) == 1:
            s = scores[names[0]]
            thr = self.threshold
        elif self.fusion is not None:
            s, thr = self.fusion.fuse(scores, names)
            if self._threshold_override is not None and s is not None:
                thr = self._threshold_override
        else:
            if any(scores[n] is None for n in names):
                return "unknown", None, None
            live = all(scores[t.name] >= t.threshold for t in self.tests)  # type: ignore[operator]
            s = min(scores[n] for n in names)  # type: ignore[type-var]
            return ("live" if live else "spoof"), s, None
        if s is None or thr is None:
            return "unknown", None, None
        return ("live" if s >= thr else "spoof"), s, thr

    def check_frame(self, image: np.ndarray, path: str | None = None) -> LivenessResult:
        """Run the pipeline on a decoded image; never raises on a failing test.

        Parameters
        ----------
        image : numpy.ndarray
            A BGR ``uint8`` image ``(H, W, 3)``, as :func:`facelive.load_image` returns.
        path : str, optional
            Reported as the result's ``path``.

        Returns
        -------
        LivenessResult
            The decision, the final score and threshold, each test's result, the face box and
            timings; a test's exception or overrun becomes its ``status``, a failing face
            detector a result with ``error`` set.
        """
        t0 = time.perf_counter()
        frame = Frame(image=image)
        try:
            results, face_ms = self._run(frame)
        except Exception as exc:  # e.g. the detector refusing an image: a result, not a crash
            return LivenessResult.failed(
                path, f"face detection failed: {type(exc).__name__}: {exc}", "detection_error",
                (time.perf_counter() - t0) * 1e3, reason_code="detection_error")
        decision, score, thr = self.decide(results)
        n_faces: int | None = frame.cache.get("faces")  # None: no test needed a face
        reason: str | None = None
        code: ReasonCode | None = None
        if n_faces is not None and n_faces > 1 and frame.face is None:
            decision, score, thr = "unknown", None, None  # one person per check: no partial guess
        if decision == "unknown":
            reason, code = self._why_unknown(results, frame, n_faces)
        thresholds = {t.name: t.threshold for t in self.tests}
        return LivenessResult(
            path=path,
            decision=decision,  # type: ignore[arg-type]
            score=None if score is None else float(score),
            threshold=None if thr is None else float(thr),
            tests={n: r.judged(thresholds.get(n)) for n, r in results.items()},
            face=frame.face,
            face_ms=round(face_ms, 3),
            ms=round((time.perf_counter() - t0) * 1e3, 3),
            error=None,
            reason=reason,
            reason_code=code,
            face_count=n_faces,
        )

    def _why_unknown(self, results: dict[str, TestResult], frame: Frame,
                     n_faces: int | None) -> tuple[str, ReasonCode]:
        """The ``reason`` and ``reason_code`` of a frame without a decision (see
        :data:`facelive.types.ReasonCode`)."""
        if n_faces is not None and n_faces > 1 and frame.face is None:
            return f"multiple faces ({n_faces})", "multiple_faces"
        if frame.face is None and self._needs_face:
            return "no face found", "no_face"
        bad = [f"{n}: {r.status}" for n, r in results.items() if r.status != "ok"]
        statuses = {r.status for r in results.values()}
        code: ReasonCode = ("test_error" if "error" in statuses
                            else "test_timeout" if "timeout" in statuses else "missing_scores")
        return ("no decision (" + ", ".join(bad) + ")" if bad else "no decision"), code

    def check(self, source: str | os.PathLike[str] | bytes | np.ndarray,
              path: str | None = None) -> LivenessResult:
        """Load ``source`` and run the pipeline; never raises on bad input.

        Parameters
        ----------
        source : str, os.PathLike, bytes or numpy.ndarray
            An image file, encoded image bytes, or an array (see :func:`facelive.load_image`).
        path : str, optional
            Reported as the result's ``path`` (default: ``source`` when it is a path).

        Returns
        -------
        LivenessResult
            As :meth:`check_frame`; an input that cannot be used yields
            ``decision == "unknown"`` with ``error`` (and ``error_code``) set.
        """
        t0 = time.perf_counter()
        if path is None and isinstance(source, (str, os.PathLike)):
            path = str(source)
        try:
            image = load_image(source)
        except FaceliveError as exc:
            return LivenessResult.failed(path, exc.message, exc.code,
                                         (time.perf_counter() - t0) * 1e3)
        return self.check_frame(image, path)

    def close(self) -> None:
        """Stop the worker threads and release the tests' and the detector's resources."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
        for t in self.tests:
            if hasattr(t, "close"):
                t.close()
        if self._detector is not None and hasattr(self._detector, "close"):
            self._detector.close()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe_available() -> list[str]:
    return sorted(available_tests())
