"""Batch scoring on a Dask distributed cluster (``facelive check|evaluate --engine dask``).

The images are scored where the models are: each Dask worker builds the pipeline once (a
:class:`PipelinePlugin`, registered on the client, so a worker that joins or restarts builds its
own), and the client sends chunks of work items (image paths, or dataset samples, which decode
their pixels on the worker) as tasks. :func:`ordered_map` keeps at most ``window`` chunks
submitted and not yet handed back, so memory does not grow with the input; it hands results back
in input order, so the output equals the single-process run's. A task is a pure function of its
chunk: when a worker dies, the scheduler runs its chunks again on another worker and each chunk's
result is taken once (``retries`` also re-runs a chunk whose task raised).

Without a scheduler address :class:`DaskScorer` starts a local cluster (one single-threaded
worker process per core, loopback only, no dashboard) and stops it when closed. The optional
dependency is ``pip install "facelive[scale]"`` (``dask[distributed]``). Every worker needs
facelive with the same models, and must see the input files under the same paths (a shared or
copied file system): only paths and sample records travel, never pixels.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from facelive.errors import FaceliveError

if TYPE_CHECKING:
    from facelive.datasets.base import Sample
    from facelive.evaluation.evaluate import SampleScore, ScoreRun
    from facelive.pipeline import Pipeline
    from facelive.types import LivenessResult

__all__ = ["DEFAULT_CHUNK_SIZE", "DaskScorer", "PipelinePlugin", "PipelineSpec", "ordered_map"]

DEFAULT_CHUNK_SIZE = 16
"""Work items per task: large enough that the per-task overhead (a few ms) is small against
scoring 16 images (about 0.5 s), small enough that a lost worker costs little work again."""
DEFAULT_RETRIES = 2
"""Times a chunk whose task raised is run again (a dead worker's chunks are rescheduled by the
scheduler itself, up to its ``distributed.scheduler.allowed-failures``)."""
LOOPBACK_HTTP = "127.0.0.1:0"
"""Where a local cluster's scheduler serves its HTTP routes (health, metrics): it always serves
them, by default on port 8787 of every interface."""
INSTALL_HINT = 'the dask engine needs the "scale" extra: pip install "facelive[scale]"'


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError as exc:
        raise FaceliveError(f"{INSTALL_HINT} ({exc})", code="usage") from None
    return distributed


@dataclass(frozen=True)
class PipelineSpec:
    """What a worker needs to build the same :class:`~facelive.pipeline.Pipeline` as the client
    would (picklable: it travels to the workers).

    ``models`` is the ``FACELIVE_MODELS`` folder (``--models``), set on the worker before the
    models load; ``test_threads`` is the pipeline's thread count for its tests (1: the tests run
    one after another, the worker process being the unit of parallelism).
    """

    tests: tuple[str, ...] | None = None
    fusion: bool = True
    threshold: float | None = None
    missing: str | None = None
    faces: str = "refuse"
    models: str | None = None
    test_threads: int = 1

    def build(self) -> Pipeline:
        """The pipeline (models loaded), with the same process tuning as the ``facelive`` CLI."""
        from facelive.modelstore import MODELS_ENV
        from facelive.runtime import tune_process

        if self.models is not None:
            os.environ[MODELS_ENV] = self.models
        tune_process(filter_stderr=False)
        from facelive.pipeline import Pipeline

        return Pipeline(list(self.tests) if self.tests else None,
                        fusion="default" if self.fusion else None, threshold=self.threshold,
                        missing=self.missing, faces=self.faces,
                        parallel=self.test_threads > 1, workers=max(1, self.test_threads))


def usable_cores() -> int:
    """CPU cores this process may run on (affinity-aware where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _worker_plugin_base() -> type:
    try:
        from distributed import WorkerPlugin
    except ImportError:
        return object
    return WorkerPlugin


class PipelinePlugin(_worker_plugin_base()):  # type: ignore[misc]
    """A Dask worker plugin holding one :class:`~facelive.pipeline.Pipeline` per worker.

    ``setup`` runs on every worker when the plugin is registered and on every worker that joins
    later (a restarted one included): it loads the models once for all the tasks of that worker.
    A failure to load them fails the registration (the client sees the error). Each plugin has a
    name of its own, so that several runs may share a cluster.
    """

    def __init__(self, spec: PipelineSpec) -> None:
        self.spec = spec
        self.name = f"facelive-pipeline-{uuid.uuid4().hex[:12]}"
        self.pipeline: Pipeline | None = None

    def setup(self, worker: Any) -> None:
        self.pipeline = self.spec.build()

    def teardown(self, worker: Any) -> None:
        if self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None

    def __getstate__(self) -> dict[str, Any]:  # the pipeline never travels
        return {"spec": self.spec, "name": self.name, "pipeline": None}


def worker_pipeline(name: str, worker: Any = None) -> Pipeline:
    """The pipeline that plugin ``name`` built on ``worker`` (default: the worker running the
    current task; ``Client.run`` functions get theirs as ``dask_worker``)."""
    from distributed import get_worker

    plugin = (worker or get_worker()).plugins.get(name)
    if plugin is None or plugin.pipeline is None:
        raise RuntimeError(f"no facelive pipeline {name!r} on this worker")
    return plugin.pipeline


def describe_pipeline(name: str) -> dict[str, Any]:
    """Task: the worker pipeline's ``threshold``, ``test_names`` and model ``load_ms``."""
    pipe = worker_pipeline(name)
    return {"threshold": float(pipe.threshold), "test_names": list(pipe.test_names),
            "load_ms": float(pipe.load_ms)}


def check_chunk(name: str, paths: Sequence[Any]) -> list[LivenessResult]:
    """Task: ``Pipeline.check`` on each path of a chunk, in order (``facelive check``)."""
    pipe = worker_pipeline(name)
    return [pipe.check(p) for p in paths]


def score_chunk(name: str, samples: Sequence[Sample]) -> list[SampleScore]:
    """Task: :func:`facelive.evaluation.evaluate.score_sample` on each sample of a chunk, in
    order (``facelive evaluate``)."""
    from facelive.evaluation.evaluate import score_sample

    pipe = worker_pipeline(name)
    return [score_sample(pipe, s) for s in samples]


@dataclass
class MapStats:
    """What :func:`ordered_map` did (added up over the calls given the same object): chunks
    submitted and the most held at once."""

    chunks: int = 0
    peak_in_flight: int = 0


def ordered_map(client: Any, fn: Callable[..., list[Any]], items: Iterable[Any], *,
                args: tuple[Any, ...] = (), chunk_size: int = DEFAULT_CHUNK_SIZE,
                window: int = 4, retries: int = DEFAULT_RETRIES,
                on_chunk_done: Callable[[int], None] | None = None,
                stats: MapStats | None = None) -> Iterator[Any]:
    """Run ``fn(*args, chunk)`` on the cluster for consecutive chunks of ``items``; yield the
    results item by item, in input order.

    At most ``window`` chunks are held at once (submitted, running, or finished and waiting for an
    earlier one): ``items`` is read lazily and a chunk's result is released once yielded, so
    memory is bounded by ``window * chunk_size`` results whatever the input's length. Each chunk
    is one task with a unique key; ``retries`` re-runs a task that raised, the scheduler
    re-runs one whose worker died, and each chunk's result is taken exactly once.
    ``on_chunk_done(n)`` is called with a chunk's length when it completes (progress bars).

    Raises
    ------
    facelive.FaceliveError
        When a chunk fails for good (its task kept raising, or killed too many workers).
    """
    from distributed import as_completed

    if chunk_size < 1 or window < 1:
        raise ValueError("chunk_size and window must be >= 1")
    stats = stats if stats is not None else MapStats()
    token = uuid.uuid4().hex[:12]
    prefix = getattr(fn, "__name__", "task").replace("_", "-")
    it = iter(items)
    chunks = iter(lambda: list(itertools.islice(it, chunk_size)), [])
    index: dict[str, int] = {}
    sizes: dict[int, int] = {}
    ready: dict[int, list[Any]] = {}
    futures = as_completed()
    held = 0
    submitted = 0
    next_out = 0
    exhausted = False

    def fill() -> None:
        nonlocal held, submitted, exhausted
        while held < window and not exhausted:
            chunk = next(chunks, None)
            if chunk is None:
                exhausted = True
                return
            i = submitted
            submitted += 1
            fut = client.submit(fn, *args, chunk, key=f"facelive-{prefix}-{token}-{i}",
                                retries=retries, pure=False)
            index[fut.key] = i
            sizes[i] = len(chunk)
            futures.add(fut)
            stats.chunks += 1
            held += 1
            stats.peak_in_flight = max(stats.peak_in_flight, held)  # over every call

    fill()
    try:
        while held:
            fut = next(futures)
            i = index.pop(fut.key)
            try:
                ready[i] = fut.result()
            except Exception as exc:
                raise FaceliveError(f"chunk {i} ({sizes[i]} items) failed on the cluster: "
                                    f"{type(exc).__name__}: {exc}", code="cluster_error") from exc
            finally:
                fut.release()
            if on_chunk_done is not None:
                on_chunk_done(sizes[i])
            while next_out in ready:
                out = ready.pop(next_out)
                sizes.pop(next_out)
                next_out += 1
                held -= 1
                yield from out
            fill()
    finally:
        pending = list(futures.futures) if hasattr(futures, "futures") else []
        futures.clear()
        if pending:
            client.cancel(pending)


class DaskScorer:
    """Score on a Dask cluster with one pipeline per worker; a context manager.

    Parameters
    ----------
    spec : PipelineSpec
        The pipeline each worker builds.
    scheduler : str, optional
        A running scheduler's address (``tcp://host:8786``); default: start a local cluster of
        ``workers`` single-threaded worker processes on loopback, stopped by :meth:`close`.
    workers : int, optional
        Local cluster size (default: the cores this process may use).
    chunk_size : int
        Work items per task.
    window : int, optional
        Chunks held at once (default: twice the cluster's worker threads).
    retries : int
        Re-runs of a task that raised.

    Attributes
    ----------
    threshold, test_names, load_ms
        The worker pipeline's decision threshold, tests and model load time (from one worker).
    startup_s : float
        Seconds to have the cluster ready with the models loaded on every worker.
    """

    def __init__(self, spec: PipelineSpec, *, scheduler: str | None = None,
                 workers: int | None = None, chunk_size: int = DEFAULT_CHUNK_SIZE,
                 window: int | None = None, retries: int = DEFAULT_RETRIES) -> None:
        import time

        distributed = _import_distributed()
        if chunk_size < 1:
            raise FaceliveError("chunk size must be >= 1", code="usage")
        t0 = time.perf_counter()
        self.chunk_size = chunk_size
        self.retries = retries
        self.cluster: Any = None
        self.stats = MapStats()
        if scheduler is None:
            cores = usable_cores()
            n = workers or cores
            if n < 1:
                raise FaceliveError("workers must be >= 1", code="usage")
            if spec.test_threads == 1 and n < cores:  # spare cores: the tests run in parallel
                spec = dataclasses.replace(spec, test_threads=max(1, cores // n))
            self.cluster = distributed.LocalCluster(  # no dashboard; every port on loopback
                n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                dashboard_address=None, scheduler_kwargs={"dashboard_address": LOOPBACK_HTTP},
                silence_logs=40)  # logging.ERROR
            self.client = distributed.Client(self.cluster)
        else:
            try:
                self.client = distributed.Client(scheduler, timeout="30s")
            except OSError as exc:
                raise FaceliveError(f"cannot reach the Dask scheduler {scheduler}: {exc}",
                                    code="usage") from None
        try:
            if scheduler is not None:
                self.client.wait_for_workers(1, timeout=120)
            self.spec = spec
            self.plugin = PipelinePlugin(spec)
            try:
                self.client.register_plugin(self.plugin)
            except FaceliveError:
                raise
            except Exception as exc:
                raise FaceliveError(f"the workers cannot load the models: "
                                    f"{type(exc).__name__}: {exc}") from exc
            info = self.client.submit(describe_pipeline, self.plugin.name, pure=False).result()
            self.threshold: float = info["threshold"]
            self.test_names: list[str] = info["test_names"]
            self.load_ms: float = info["load_ms"]
            nthreads = sum(self.client.nthreads().values())
            self.window = window or max(2, 2 * nthreads)
        except BaseException:
            self.close()
            raise
        self.startup_s = time.perf_counter() - t0

    # -- running ---------------------------------------------------------------------------
    def map(self, fn: Callable[..., list[Any]], items: Iterable[Any], *, total: int | None,
            progress: bool, description: str, console: Any = None) -> Iterator[Any]:
        """``fn`` over ``items`` in chunks (:func:`ordered_map`), with a progress bar."""
        from facelive.evaluation.evaluate import progress_bar

        with progress_bar(progress, console) as bar:
            task = bar.add_task(description, total=total)
            yield from ordered_map(self.client, fn, items, args=(self.plugin.name,),
                                   chunk_size=self.chunk_size, window=self.window,
                                   retries=self.retries, stats=self.stats,
                                   on_chunk_done=lambda n: bar.advance(task, n))

    def check(self, paths: Sequence[Any], *, progress: bool = False,
              console: Any = None) -> Iterator[LivenessResult]:
        """``Pipeline.check`` of every path, in order (what ``facelive check`` prints)."""
        return self.map(check_chunk, paths, total=len(paths), progress=progress,
                        description="checking", console=console)

    def score_samples(self, samples: Sequence[Sample], *, progress: bool = True,
                      description: str = "scoring") -> ScoreRun:
        """The :class:`~facelive.evaluation.evaluate.ScoreRun` of ``samples``, equal to
        :func:`~facelive.evaluation.evaluate.score_samples` in one process (timings aside)."""
        from facelive.evaluation.evaluate import ScoreRun

        run = ScoreRun(samples=list(samples))
        for s in self.map(score_chunk, run.samples, total=len(run.samples), progress=progress,
                          description=description):
            run.add(s)
        return run

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        """Disconnect; stop the local cluster if this scorer started it."""
        client, cluster = getattr(self, "client", None), self.cluster
        self.cluster = None
        if client is not None:
            if cluster is None:  # a shared cluster: leave no pipeline on its workers
                try:
                    plugin = getattr(self, "plugin", None)
                    if plugin is not None:
                        client.unregister_worker_plugin(plugin.name)
                except Exception:  # noqa: BLE001  (best effort on a cluster we do not own)
                    pass
            client.close()
        if cluster is not None:
            cluster.close()

    def __enter__(self) -> DaskScorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
