"""Pipeline worker processes: each image is decoded and checked in a process that can be killed.

A thread cannot be stopped from outside, so a per-test budget that answers ``timeout`` while the
test runs on is not a limit. When the app loads its own models, :class:`WorkerPool` runs the
pipeline in ``size`` processes started with the ``spawn`` context (MediaPipe, ONNX Runtime and
``fork`` do not mix), each loading the models once:

- a request sends the encoded image bytes; the process decodes them (with the pixel and aspect
  ratio limits) and runs the pipeline, so a decoder crash takes down only that process;
- a job still running at its deadline (``job_timeout_s``) gets its process killed (SIGKILL) and
  replaced, and the request answers 503 ``timeout``;
- a process whose resident memory passes ``worker_max_rss_mb`` while it works is killed the same
  way (503 ``memory_limit``), and one left above it after a job is replaced;
- a process whose result has a test over its budget (status ``timeout``: that test's thread is
  still running there) is replaced once it has answered, so the overrun stops using CPU;
- a process that dies (crash, OOM killer) answers 500 ``internal_error`` and is replaced.

Challenge clips are verified the same way (:class:`ChallengeJob`, :meth:`WorkerPool.verify`),
in a pool of their own (``verify_slots`` processes, started with a CPU priority ``nice`` lower
than the ``/v1/liveness`` processes': :mod:`facelive.server.state`):
:func:`facelive.challenge.verify.verify_challenge` with the process's pipeline and a face
detector and mesh kept for the process's life stops at the first decisive failure before
decoding a frame, decodes the frames at most ``session_frame_max_pixels`` each (larger JPEGs
reduced on decode), gives up with a signed ``unknown`` past ``verify_budget_s`` and is killed
past ``verify_timeout_s`` or the memory limit. :func:`run_challenge` is that job, also run in a
thread for a pipeline object given to the app.

Replacements start in the background; until one is ready the pool has one process fewer, and a
request waits at most ``job_timeout_s`` for a free process (else 503 ``overloaded``). Every
process exits when the server process dies.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Protocol

from facelive.encoding import jsonable
from facelive.errors import FaceliveError, ImageError
from facelive.server.errors import ApiError, image_error, retry_after
from facelive.server.metrics import Metrics
from facelive.server.settings import Settings
from facelive.types import LivenessResult

__all__ = ["LivenessPipeline", "WorkerPool", "load_pipeline", "run_pipeline", "usable_cores",
           "pool_size", "ChallengeJob", "run_challenge"]

log = logging.getLogger("facelive.server")

START_TIMEOUT_S = 180.0
"""Longest wait for a new process to load the models."""
RSS_POLL_S = 0.05
"""How often a working process's resident memory is read."""
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class LivenessPipeline(Protocol):
    """What the service needs of a pipeline (:class:`facelive.pipeline.Pipeline`, or a stand-in
    in tests): ``check`` a decoded image, describe itself, release its resources."""

    def check(self, source: Any, path: str | None = None) -> LivenessResult: ...

    def info(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


def load_pipeline(settings: Settings) -> LivenessPipeline:
    """Build the :class:`facelive.pipeline.Pipeline` the settings describe (loads the models).

    Raises :class:`FaceliveError` (code ``model_error``) with a clear message when it cannot.
    """
    from facelive.pipeline import Pipeline

    try:
        return Pipeline(list(settings.tests) if settings.tests else None,
                        fusion=None if settings.no_fusion else "default",
                        threshold=settings.threshold, missing=settings.missing,
                        budget_ms=settings.budget_ms)
    except FaceliveError as exc:
        raise FaceliveError(f"cannot load the models: {exc.message}", code="model_error") from None
    except (KeyError, TypeError, ImportError, OSError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        raise FaceliveError(f"cannot load the models: {msg}", code="model_error") from None


def usable_cores() -> int:
    """CPU cores this process may run on (affinity-aware where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def pool_size(settings: Settings) -> int:
    """Pipeline processes per server process: ``pipeline_workers``, or the usable cores shared
    among the ``workers`` server processes (at least one)."""
    if settings.pipeline_workers is not None:
        return settings.pipeline_workers
    return max(1, usable_cores() // settings.workers)


def run_pipeline(pipeline: LivenessPipeline, data: bytes, settings: Settings) -> LivenessResult:
    """Decode ``data`` with the settings' limits and run the pipeline (in whatever thread or
    process calls it). Image errors raise :class:`ImageError`; a pipeline result with ``error``
    set is returned as is."""
    from facelive.imageio import decode_image

    image = decode_image(data, max_pixels=settings.max_pixels,
                         max_aspect_ratio=settings.max_aspect_ratio)
    del data
    # check_frame (facelive.pipeline.Pipeline) takes the decoded array as is, so the service's
    # limits (not the library defaults of load_image) are the ones that apply.
    check = getattr(pipeline, "check_frame", None) or pipeline.check
    return check(image)


# -- challenge clips -----------------------------------------------------------------------------

@dataclass(frozen=True)
class ChallengeJob:
    """One session's clip to verify: the encoded frames as uploaded, their timestamps (ms since
    the challenge started), the issued challenge (``Challenge.to_dict()``) and the server's own
    time between the first challenge fetch and the upload (``elapsed_ms``)."""

    frames: list[bytes]
    timestamps_ms: list[float]
    challenge: dict[str, Any]
    elapsed_ms: float


_tools = threading.local()


def _face_tools() -> tuple[Any, Any]:
    """This thread's face detector and mesh (MediaPipe graphs are not shared between threads),
    created on first use and kept for the thread's life."""
    if getattr(_tools, "pair", None) is None:
        from facelive.face.detection import FaceDetector
        from facelive.face.mesh import FaceMesher

        _tools.pair = (FaceDetector(), FaceMesher())
    return _tools.pair


def run_challenge(pipeline: LivenessPipeline, job: ChallengeJob, settings: Settings
                  ) -> dict[str, Any]:
    """Verify the clip (:func:`~facelive.challenge.verify.verify_challenge`: the checks that
    need no pixels first, then the frames decoded at most ``session_frame_max_pixels`` each,
    ``max_aspect_ratio``, within ``verify_budget_s``); returns the outcome, JSON-able:
    ``decision``, ``reasons``, ``scores``, ``checks``, ``threshold``, ``models``
    (``pipeline.info()``), ``latency_ms``, ``stopped`` (the check that ended it early, or
    ``None``) and ``ms``. A frame that does not decode gives ``unknown`` with the reason
    (nothing is raised for a client's data).
    """
    from facelive.challenge.verify import verify_challenge

    t0 = time.perf_counter()
    models = pipeline.info()
    threshold = getattr(pipeline, "threshold", None)
    if not callable(getattr(pipeline, "check_frame", None)) or threshold is None:
        raise TypeError("the pipeline cannot score frames for the challenge (it needs "
                        "check_frame() and threshold, as facelive.pipeline.Pipeline has)")
    detector, mesher = _face_tools()
    try:
        report = verify_challenge(job.frames, job.timestamps_ms, job.challenge,
                                  pipeline=pipeline, detector=detector, mesher=mesher,
                                  elapsed_ms=job.elapsed_ms,
                                  max_frame_pixels=settings.session_frame_max_pixels,
                                  max_aspect_ratio=settings.max_aspect_ratio,
                                  budget_s=settings.verify_budget_s)
    except ImageError as exc:
        return jsonable({"decision": "unknown", "reasons": [f"unreadable frame: {exc.message}"],
                         "scores": {}, "checks": {"frames": False}, "threshold": threshold,
                         "models": models, "latency_ms": None, "stopped": "frames",
                         "ms": (time.perf_counter() - t0) * 1e3})
    return jsonable({**report.outcome(threshold), "models": models,
                     "latency_ms": report.colour.get("latency_ms"), "stopped": report.stopped,
                     "ms": (time.perf_counter() - t0) * 1e3})


# -- the worker process ------------------------------------------------------------------------

def _die_with_parent(parent: int) -> None:
    """Exit when the server process is gone (even while a job runs).

    Linux's ``PR_SET_PDEATHSIG`` would fire when the *thread* that started the process ends
    (the pool starts processes from short-lived threads), so a daemon thread watches the parent
    id instead: once the parent dies the process is re-parented and exits within a second.
    """

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, name="facelive-parent-watch", daemon=True).start()


def _worker_main(conn: Connection, settings: Settings, loader: Callable[[Settings], Any],
                 parent: int, nice: int = 0) -> None:
    """Body of a pipeline process: lower its CPU priority by ``nice``, load, report ``ready``
    (or ``failed``), then serve jobs."""
    _die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the server's to handle
    if nice > 0 and hasattr(os, "nice"):
        os.nice(nice)
    from facelive.runtime import tune_process

    tune_process(filter_stderr=False)
    t0 = time.perf_counter()
    try:
        pipeline = loader(settings)
    except FaceliveError as exc:
        conn.send(("failed", exc.message))
        return
    except BaseException as exc:  # report anything, rather than die silently
        conn.send(("failed", f"cannot load the models: {type(exc).__name__}: {exc}"))
        return
    info = pipeline.info()
    conn.send(("ready", info, getattr(pipeline, "load_ms", None)
               or (time.perf_counter() - t0) * 1e3))
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            break
        if msg is None:
            break
        job, data = msg
        try:
            if isinstance(data, ChallengeJob):
                reply: tuple[Any, ...] = (job, "ok", run_challenge(pipeline, data, settings))
            else:
                reply = (job, "ok", run_pipeline(pipeline, data, settings))
        except ImageError as exc:
            reply = (job, "image_error", exc.code, exc.message)
        except MemoryError:
            reply = (job, "memory", "not enough memory for this image")
        except Exception as exc:  # any other failure is the job's reply; the process serves on
            reply = (job, "error", type(exc).__name__, str(exc)[:300])
        del data, msg
        try:
            conn.send(reply)
        except (OSError, ValueError):
            break
    try:
        pipeline.close()
    except Exception:  # noqa: BLE001 - the process is exiting; closing is best effort
        pass


# -- the pool (server side) ----------------------------------------------------------------------

def _rss_mb(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (0 when it cannot be read)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * PAGE / (1 << 20)
    except (OSError, ValueError, IndexError):
        return 0.0


@dataclass(eq=False)  # identity: workers are kept in a set
class _Worker:
    process: Any  # multiprocessing.process.BaseProcess
    conn: Connection
    jobs: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return int(self.process.pid or 0)


class WorkerPool:
    """``size`` pipeline processes; :meth:`check` runs one job (call it from a worker thread).

    ``loader(settings)`` builds the pipeline in each process; it must be importable by name
    (a module-level function), since processes are spawned. :meth:`start` blocks until every
    process is ready and raises :class:`FaceliveError` (code ``model_error``) with the first
    process's reason when one cannot load. ``nice`` lowers the processes' CPU priority (the
    verification pool's, so that clips yield the CPU to ``/v1/liveness``).
    """

    def __init__(self, settings: Settings, size: int | None = None,
                 loader: Callable[[Settings], Any] = load_pipeline,
                 metrics: Metrics | None = None, nice: int = 0) -> None:
        self.settings = settings
        self.size = max(1, size if size is not None else pool_size(settings))
        self.loader = loader
        self.metrics = metrics
        self.nice = nice
        self._ctx = multiprocessing.get_context("spawn")
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._lock = threading.Lock()
        self._workers: set[_Worker] = set()
        self._starting = 0
        self._closed = False
        self._ids = itertools.count(1)
        self._info: dict[str, Any] | None = None
        self.load_ms: float | None = None
        self.restarts: dict[str, int] = {}

    # -- life cycle ----------------------------------------------------------------------------
    def _spawn(self) -> tuple[_Worker | None, str | None]:
        """Start one process and wait until it has loaded the models: (worker, None) or
        (None, reason)."""
        parent_end, child_end = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(target=_worker_main, name="facelive-pipeline", daemon=True,
                                 args=(child_end, self.settings, self.loader, os.getpid(),
                                       self.nice))
        proc.start()
        child_end.close()
        worker = _Worker(proc, parent_end)
        try:
            if not parent_end.poll(START_TIMEOUT_S):
                reason = f"the pipeline process did not load in {START_TIMEOUT_S:.0f} s"
                msg: tuple[Any, ...] = ("failed", reason)
            else:
                msg = parent_end.recv()
        except (EOFError, OSError):
            proc.join(5)
            msg = ("failed", f"the pipeline process exited while loading (exit code "
                             f"{proc.exitcode})")
        if msg[0] != "ready":
            self._kill(worker)
            return None, str(msg[1])
        with self._lock:
            if self._info is None:
                self._info, self.load_ms = msg[1], msg[2]
        return worker, None

    def start(self) -> WorkerPool:
        """Start every process (in parallel) and wait for them; raises on the first failure."""
        results: list[tuple[_Worker | None, str | None]] = []

        def one() -> None:
            results.append(self._spawn())

        threads = [threading.Thread(target=one, name="facelive-pool-start")
                   for _ in range(self.size)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        failed = [reason for w, reason in results if w is None]
        started = [w for w, _ in results if w is not None]
        if failed:
            for w in started:
                self._kill(w)
            raise FaceliveError(failed[0] or "cannot start the pipeline processes",
                                code="model_error")
        with self._lock:
            for w in started:
                self._workers.add(w)
                self._idle.put(w)
        self._gauge()
        return self

    def close(self) -> None:
        """Stop every process (politely, then SIGKILL after a second)."""
        with self._lock:
            self._closed = True
            workers = list(self._workers)
            self._workers.clear()
        for w in workers:
            try:
                w.conn.send(None)
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + 1.0
        for w in workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            self._kill(w)
        self._gauge()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ---------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The pipeline's :meth:`info` (as the first process reported it)."""
        return dict(self._info or {})

    @property
    def alive(self) -> int:
        with self._lock:
            return len(self._workers)

    @property
    def starting(self) -> int:
        with self._lock:
            return self._starting

    def pids(self) -> list[int]:
        with self._lock:
            return sorted(w.pid for w in self._workers)

    def _gauge(self) -> None:
        if self.metrics is not None:
            self.metrics.workers.set(self.alive)

    @staticmethod
    def _kill(w: _Worker) -> None:
        try:
            if w.process.is_alive():
                os.kill(w.pid, signal.SIGKILL)
            w.process.join(5)
        except (OSError, ValueError, AssertionError):
            pass
        try:
            w.conn.close()
        except OSError:
            pass

    def _retire(self, w: _Worker, reason: str) -> None:
        """Kill ``w`` and start its replacement in the background."""
        self._kill(w)
        with self._lock:
            self._workers.discard(w)
            self.restarts[reason] = self.restarts.get(reason, 0) + 1
            if self._closed:
                return
            self._starting += 1
        if self.metrics is not None:
            self.metrics.worker_restarts.labels(reason).inc()
        self._gauge()
        log.warning("pipeline process %d replaced (%s)", w.pid, reason)
        threading.Thread(target=self._replace, name="facelive-pool-replace", daemon=True).start()

    def _replace(self) -> None:
        delay = 1.0
        while True:
            worker, reason = self._spawn()
            with self._lock:
                if worker is not None and not self._closed:
                    self._starting -= 1
                    self._workers.add(worker)
                    self._idle.put(worker)
                    worker = None
                    done = True
                elif self._closed:
                    self._starting -= 1
                    done = True
                else:
                    done = False
            if worker is not None:
                self._kill(worker)
            self._gauge()
            if done:
                return
            log.error("cannot restart a pipeline process: %s (retrying in %.0f s)", reason, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)

    # -- jobs ----------------------------------------------------------------------------------
    def _acquire(self, timeout: float) -> _Worker:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApiError(503, "overloaded", "no pipeline process became free in time; "
                               "retry later",
                               retry_after(self.settings.retry_after_s))
            try:
                w = self._idle.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                if self._closed:
                    raise ApiError(503, "not_ready", "the service is shutting down") from None
                continue
            if w.process.is_alive():
                return w
            self._retire(w, "crashed")

    def _exchange(self, w: _Worker, job: int, data: Any, timeout: float) -> tuple[Any, ...]:
        """Send one job and wait for its reply, watching the deadline and the memory."""
        deadline = time.monotonic() + timeout
        limit = self.settings.worker_max_rss_mb
        try:
            w.conn.send((job, data))
        except (OSError, ValueError):
            return (job, "crashed")
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return (job, "timeout")
            try:
                if w.conn.poll(min(RSS_POLL_S, remaining)):
                    reply = w.conn.recv()
                    if reply[0] == job:
                        return reply
                    continue  # a stale reply cannot happen (one job at a time); skip it
            except (EOFError, OSError):
                return (job, "crashed")
            if _rss_mb(w.pid) > limit:
                return (job, "memory")

    def check(self, data: bytes) -> LivenessResult:
        """Decode and check one image in a pipeline process (blocking: call it in a thread).

        Returns the :class:`LivenessResult` (with ``error`` set when the pipeline could not use
        the image); raises :class:`ApiError` for an image refused by the decoder (4xx), a job
        over its deadline (503 ``timeout``), over the memory limit (503 ``memory_limit``), a
        crashed process (500 ``internal_error``) or no free process (503 ``overloaded``).
        """
        s = self.settings
        w = self._acquire(s.job_timeout_s)
        job = next(self._ids)
        t0 = time.monotonic()
        reply = self._exchange(w, job, data, s.job_timeout_s)
        del data
        kind = reply[1]
        if kind in ("ok", "image_error"):
            w.jobs += 1
            result = reply[2] if kind == "ok" else None
            overran = result is not None and any(t.status == "timeout"
                                                 for t in result.tests.values())
            if overran:
                self._retire(w, "test_timeout")
            elif _rss_mb(w.pid) > s.worker_max_rss_mb:
                self._retire(w, "memory")
            else:
                self._idle.put(w)
            if result is not None:
                return result
            raise image_error(reply[2], reply[3])
        self._raise_if_killed(w, kind, "processing the image", s.job_timeout_s)
        if kind == "error":  # the pipeline raised; the process itself is fine
            log.error("pipeline error in process %d: %s: %s", w.pid, reply[2], reply[3])
            self._idle.put(w)
            raise ApiError(500, "internal_error", "unexpected server error")
        log.error("pipeline process %d died after %.1f s on a job", w.pid, time.monotonic() - t0)
        self._retire(w, "crashed")
        raise ApiError(500, "internal_error", "the image processing worker died; it was restarted")

    def _raise_if_killed(self, w: _Worker, kind: str, doing: str, timeout_s: float) -> None:
        """For a job reply of ``kind`` ``"timeout"`` or ``"memory"`` (the process was killed),
        retire ``w`` and raise 503 ``timeout`` / ``memory_limit`` (``doing`` names the work);
        other kinds return."""
        if kind not in ("timeout", "memory"):
            return
        s = self.settings
        retry = retry_after(s.retry_after_s)
        self._retire(w, kind)
        if kind == "timeout":
            raise ApiError(503, "timeout", f"{doing} took longer than the "
                           f"{timeout_s:g} s limit; the work was stopped", retry)
        raise ApiError(503, "memory_limit", f"{doing} needed more memory than "
                       f"the {s.worker_max_rss_mb} MiB limit; the work was stopped", retry)

    def verify(self, job: ChallengeJob) -> dict[str, Any]:
        """Verify one challenge clip in a pipeline process (blocking: call it in a thread) under
        ``verify_timeout_s``; returns :func:`run_challenge`'s outcome. Raises
        :class:`ApiError` as :meth:`check` does (503 ``timeout`` / ``memory_limit`` with the
        process killed and replaced, 500 ``internal_error``, 503 ``overloaded``)."""
        s = self.settings
        w = self._acquire(s.job_timeout_s)
        job_id = next(self._ids)
        t0 = time.monotonic()
        reply = self._exchange(w, job_id, job, s.verify_timeout_s)
        del job
        kind = reply[1]
        if kind == "ok":
            w.jobs += 1
            if _rss_mb(w.pid) > s.worker_max_rss_mb:
                self._retire(w, "memory")
            else:
                self._idle.put(w)
            return reply[2]
        self._raise_if_killed(w, kind, "verifying the clip", s.verify_timeout_s)
        if kind in ("error", "image_error"):
            log.error("challenge verification error in process %d: %s", w.pid, reply[2:])
            self._idle.put(w)
            raise ApiError(500, "internal_error", "unexpected server error")
        log.error("pipeline process %d died after %.1f s verifying a clip", w.pid,
                  time.monotonic() - t0)
        self._retire(w, "crashed")
        raise ApiError(500, "internal_error", "the verification worker died; it was restarted")
