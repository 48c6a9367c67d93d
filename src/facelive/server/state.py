"""The service's state (one per app): settings, the pipeline, admission, access control, metrics.

The API is stateless between requests; this is what one app (one server process) holds for its
lifetime: the pipeline it serves (a :class:`~facelive.server.workers.WorkerPool` of processes
when it loads its own models, or the pipeline object it was given, run in threads), the admission
count of the non-blocking semaphore, the worker-thread limiter, the API keys
(:mod:`facelive.server.auth`), the rate limits (:mod:`facelive.server.ratelimit`), its
Prometheus registry and the challenge sessions (:mod:`facelive.server.sessions`: the store, the
result signer, and the clip verifications running in the background after their upload was
answered).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio

from facelive.errors import FaceliveError, ImageError
from facelive.server.auth import ApiKeys, load_operator_keys
from facelive.server.errors import ApiError, image_error
from facelive.server.errors import retry_after as retry_after_header
from facelive.server.metrics import Metrics
from facelive.server.parsing import UploadBudget
from facelive.server.ratelimit import LimitStoreUnavailable, RateLimits
from facelive.server.ratelimit import config_problems as limit_problems
from facelive.server.sessions import (
    SessionService,
    config_problems,
    open_session_store,
    open_signer,
    sessions_enabled,
)
from facelive.server.settings import Settings
from facelive.server.verification import VerifyQueue
from facelive.server.workers import (
    ChallengeJob,
    LivenessPipeline,
    WorkerPool,
    load_pipeline,
    pool_size,
    run_challenge,
    run_pipeline,
)
from facelive.types import LivenessResult

__all__ = ["LivenessPipeline", "ServiceState", "load_pipeline", "WorkerPool"]

log = logging.getLogger("facelive.server")

VERIFY_NICE = 5
"""How much lower the verification processes' CPU priority is than ``/v1/liveness``'s."""


@dataclass
class ServiceState:
    settings: Settings
    pipeline: LivenessPipeline | None = None
    pool: WorkerPool | None = None
    owns_pipeline: bool = False
    load_error: str | None = None
    load_ms: float | None = None
    in_flight: int = 0
    metrics: Metrics = field(default_factory=Metrics)
    limiter: anyio.CapacityLimiter | None = None
    api_keys: ApiKeys = field(default_factory=ApiKeys)
    operator_keys: ApiKeys = field(default_factory=ApiKeys)
    rate_limits: RateLimits = field(default_factory=lambda: RateLimits({}))
    pool_loader: Any = None
    uploads: UploadBudget | None = None
    clock: Callable[[], float] = time.time
    """Unix seconds for the sessions (injectable in tests)."""
    sessions: SessionService | None = None
    sessions_reason: str = "the session API is off (--no-sessions)"
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    verify_pool: WorkerPool | None = None
    """The pipeline processes that verify clips (apart from ``pool``), when the app started
    them."""
    verifications: VerifyQueue | None = None
    verify_limiter: anyio.CapacityLimiter | None = None

    def __post_init__(self) -> None:
        s = self.settings
        if self.pipeline is not None and self.load_ms is None:
            self.load_ms = getattr(self.pipeline, "load_ms", None)
        if self.pool is not None:
            if self.load_ms is None:
                self.load_ms = self.pool.load_ms
            if self.pool.metrics is None:  # a pool started before the app reports here
                self.pool.metrics = self.metrics
        self.api_keys = ApiKeys.from_settings(s.api_keys, s.api_keys_file)
        self.operator_keys = load_operator_keys(s.operator_keys, s.operator_keys_file,
                                                self.api_keys)
        if self.api_keys.enabled and not self.operator_keys.enabled:
            log.warning("no operator key is configured (FACELIVE_OPERATOR_KEYS or "
                        "--operator-keys-file): /metrics and /v1/info answer 403")
        self.rate_limits = RateLimits.from_settings(s)
        self.uploads = UploadBudget(s.upload_buffer_bytes, s.retry_after_s)
        queue = self.verifications = VerifyQueue(s.verify_slots, s.verify_queue,
                                                 s.verify_per_key, s.retry_after_s)
        self.metrics.verifications.labels("waiting").set_function(lambda: queue.waiting)
        self.metrics.verifications.labels("running").set_function(lambda: queue.running)

    # -- lifetime ------------------------------------------------------------------------
    async def start(self, load: Any = load_pipeline) -> None:
        """Create the thread limiter and, without a pipeline or pool, load one (in a thread):
        a :class:`WorkerPool` of ``pool_size(settings)`` processes, or with
        ``pipeline_workers=0`` the pipeline ``load(settings)`` in this process.

        A load failure raises :class:`RuntimeError` with the reason (start-up fails), unless
        ``settings.allow_missing_models``: then it is kept as :attr:`load_error`.
        """
        self.limiter = anyio.CapacityLimiter(self.settings.max_concurrency)
        self.verify_limiter = anyio.CapacityLimiter(self.settings.verify_slots)
        self._start_sessions()
        await self._start_limits()
        if self.pipeline is None and self.pool is None:
            t0 = time.perf_counter()
            try:
                if pool_size(self.settings) > 0:
                    self.pool, self.verify_pool = await self._start_pools()
                else:
                    self.pipeline = await anyio.to_thread.run_sync(load, self.settings)
                self.owns_pipeline = True
                self.load_ms = (time.perf_counter() - t0) * 1e3
            except FaceliveError as exc:
                if not self.settings.allow_missing_models:
                    log.error("%s", exc.message)
                    raise RuntimeError(exc.message) from None
                self.load_error = exc.message
                log.warning("%s; serving with /readyz = 503 (--allow-missing-models)",
                            exc.message)
        if self.pool is not None:
            self.metrics.workers.set(self.pool.alive)
        self.metrics.ready.set(1 if self.pipeline is not None or self.pool is not None else 0)
        if self.load_ms is not None:
            self.metrics.model_load.set(self.load_ms / 1e3)

    async def _start_pools(self) -> tuple[WorkerPool, WorkerPool | None]:
        """Start the ``/v1/liveness`` pool and, with the session API on, the verification pool
        (``verify_slots`` processes at CPU priority ``nice`` :data:`VERIFY_NICE`), in parallel;
        when one fails both are closed and its error raised."""
        s = self.settings
        loader = self.pool_loader or load_pipeline
        pools = [WorkerPool(s, loader=loader, metrics=self.metrics)]
        if self.sessions is not None:
            pools.append(WorkerPool(s, size=s.verify_slots, loader=loader, nice=VERIFY_NICE))
        started = await asyncio.gather(*(anyio.to_thread.run_sync(p.start) for p in pools),
                                       return_exceptions=True)
        failed = [r for r in started if isinstance(r, BaseException)]
        if failed:
            for p in pools:
                p.close()
            raise failed[0]
        return pools[0], (pools[1] if len(pools) > 1 else None)

    async def _start_limits(self) -> None:
        """Check the rate-limit settings and reach their Redis: limits that cannot hold
        (:func:`~facelive.server.ratelimit.config_problems`) and an unreachable Redis raise
        :class:`RuntimeError` (start-up fails, loudly)."""
        problems = limit_problems(self.settings)
        if problems:
            for p in problems:
                log.error("%s", p)
            raise RuntimeError("; ".join(problems))
        try:
            await self.rate_limits.check()
        except LimitStoreUnavailable as exc:
            raise RuntimeError(f"cannot reach the rate-limit store (Redis): {exc}") from None

    async def close_limits(self) -> None:
        """Close the rate limits' Redis connections (at shutdown)."""
        await self.rate_limits.close()

    def _start_sessions(self) -> None:
        """Open the session store and the result signer, or say why the session API is off.
        Settings that cannot work (:func:`~facelive.server.sessions.config_problems`) and an
        unreachable Redis raise :class:`RuntimeError` (start-up fails, loudly)."""
        s = self.settings
        problems = config_problems(s, self.api_keys.enabled)
        if problems:
            for p in problems:
                log.error("%s", p)
            raise RuntimeError("; ".join(problems))
        if not s.sessions:
            return
        if not sessions_enabled(s, self.api_keys.enabled):
            self.sessions_reason = ("the session API needs API keys: none is configured "
                                    "(FACELIVE_API_KEYS or --api-keys-file)")
            log.warning("challenge sessions disabled: no API key is configured "
                        "(FACELIVE_API_KEYS or --api-keys-file); /v1/sessions answers 503 "
                        "sessions_disabled")
            return
        store = open_session_store(s, self.clock)
        service = self.sessions = SessionService(s, store, open_signer(s), self.clock,
                                                 keys_enabled=self.api_keys.enabled)
        self.metrics.held_results.set_function(service.held_count)
        log.info("challenge sessions on (store: %s; signing key id %s)%s",
                 "redis" if s.redis_url else "memory", self.sessions.signer.kid,
                 "; DEMO MODE: /demo endpoints show the verdict to the browser, never use it "
                 "in production" if s.demo else "")

    def require_sessions(self) -> SessionService:
        """The session service, or 503 ``sessions_disabled`` with the reason."""
        if self.sessions is None:
            raise ApiError(503, "sessions_disabled", self.sessions_reason)
        return self.sessions

    async def verify_clip(self, job: ChallengeJob) -> dict[str, Any]:
        """Verify one challenge clip off the event loop, never in ``/v1/liveness``'s capacity:
        in a process of the verification pool (killed past ``verify_timeout_s``; a pool given
        to the app serves both when there is none), or for a given pipeline object in a worker
        thread of its own limiter (``verify_slots``; the wait is bounded by
        ``verify_timeout_s``, the thread itself cannot be stopped). The caller holds a
        :class:`VerifyQueue` slot. A timeout raises :class:`ApiError` 503 ``timeout``."""
        pool = self.verify_pool or self.pool
        if pool is not None:
            return await anyio.to_thread.run_sync(pool.verify, job, limiter=self.verify_limiter)
        pipeline = self.ready_pipeline()
        limit = self.settings.verify_timeout_s
        try:
            with anyio.fail_after(limit):
                return await anyio.to_thread.run_sync(run_challenge, pipeline, job,
                                                      self.settings,
                                                      limiter=self.verify_limiter,
                                                      abandon_on_cancel=True)
        except TimeoutError:
            raise ApiError(503, "timeout", f"verifying the clip took longer than {limit:g} s") \
                from None

    def pipeline_info(self) -> dict[str, Any]:
        return self.ready_pipeline().info()

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` on the event loop after the response (kept until it ends)."""
        task = asyncio.get_running_loop().create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    async def drain(self, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) for the background verifications at shutdown."""
        if self.background:
            _, pending = await asyncio.wait(set(self.background), timeout=timeout_s)
            for task in pending:
                task.cancel()

    def stop(self) -> None:
        """Close the pipeline or pool if this state loaded it (a given one stays the caller's)."""
        if self.sessions is not None:
            self.sessions.close()
        if self.owns_pipeline:
            if self.pipeline is not None:
                self.pipeline.close()
                self.pipeline = None
            if self.pool is not None:
                self.pool.close()
                self.pool = None
            if self.verify_pool is not None:
                self.verify_pool.close()
                self.verify_pool = None

    # -- requests ------------------------------------------------------------------------
    def ready_pipeline(self, default_reason: str = "the models are not loaded",
                       retry_after: bool = False) -> LivenessPipeline | WorkerPool:
        """The pipeline (or pool: both have ``info()``), or :class:`ApiError` 503 ``not_ready``
        with the reason (and a ``Retry-After`` of at least one second when ``retry_after``)."""
        headers = retry_after_header(self.settings.retry_after_s) if retry_after else None
        if self.pool is not None:
            if self.pool.alive == 0:
                raise ApiError(503, "not_ready", "no pipeline process is running "
                               f"({self.pool.starting} starting)", headers)
            return self.pool
        if self.pipeline is None:
            raise ApiError(503, "not_ready", self.load_error or default_reason, headers)
        return self.pipeline

    async def check(self, data: bytes) -> LivenessResult:
        """Decode and check one image: in a pipeline process (pool), or in a worker thread of
        this process (a given pipeline). Image errors and failed results raise
        :class:`ApiError`."""
        if self.pool is not None:
            result = await anyio.to_thread.run_sync(self.pool.check, data, limiter=self.limiter)
        else:
            pipeline = self.ready_pipeline(retry_after=True)
            result = await anyio.to_thread.run_sync(self._check_here, pipeline, data,
                                                    limiter=self.limiter)
        if result.error:
            raise image_error(result.error_code, result.error)
        return result

    def _check_here(self, pipeline: LivenessPipeline, data: bytes) -> LivenessResult:
        try:
            return run_pipeline(pipeline, data, self.settings)
        except ImageError as exc:
            raise image_error(exc.code, exc.message) from None

    def take_slot(self) -> None:
        """Take one of ``max_concurrency`` processing slots, or refuse at once: 503
        ``overloaded``. Non-blocking semaphore: the check and the increment happen without an
        await in between, so on the single event loop no two requests can take the last slot.
        (A session's clip holds one from its upload until its verification ends.)"""
        limit = self.settings.max_concurrency
        if self.in_flight >= limit:
            raise ApiError(503, "overloaded",
                           f"all {limit} processing slots are busy; retry later",
                           retry_after_header(self.settings.retry_after_s))
        self.in_flight += 1
        self.metrics.in_flight.inc()

    def release_slot(self) -> None:
        self.in_flight -= 1
        self.metrics.in_flight.dec()

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of ``max_concurrency`` slots (:meth:`take_slot`) for the block."""
        self.take_slot()
        try:
            yield
        finally:
            self.release_slot()
