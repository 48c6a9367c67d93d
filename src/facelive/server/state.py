"""The service's state (one per app): settings, the pipeline, admission, metrics.

The API is stateless between requests; this is what one app (one worker process) holds for its
lifetime: the pipeline it serves (loaded at start-up unless given), the admission count of the
non-blocking semaphore, the worker-thread limiter and its Prometheus registry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from facelive.errors import FaceliveError
from facelive.server.errors import ApiError
from facelive.server.metrics import Metrics
from facelive.server.settings import Settings
from facelive.types import LivenessResult

__all__ = ["LivenessPipeline", "ServiceState", "load_pipeline"]

log = logging.getLogger("facelive.server")


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


@dataclass
class ServiceState:
    settings: Settings
    pipeline: LivenessPipeline | None = None
    owns_pipeline: bool = False
    load_error: str | None = None
    load_ms: float | None = None
    in_flight: int = 0
    metrics: Metrics = field(default_factory=Metrics)
    limiter: anyio.CapacityLimiter | None = None

    def __post_init__(self) -> None:
        if self.pipeline is not None and self.load_ms is None:
            self.load_ms = getattr(self.pipeline, "load_ms", None)

    # -- lifetime ------------------------------------------------------------------------
    async def start(self, load: Any = load_pipeline) -> None:
        """Create the thread limiter and, without a pipeline, ``load`` one (in a thread).

        A load failure raises :class:`RuntimeError` with the reason (start-up fails), unless
        ``settings.allow_missing_models``: then it is kept as :attr:`load_error`.
        """
        self.limiter = anyio.CapacityLimiter(self.settings.max_concurrency)
        if self.pipeline is None:
            t0 = time.perf_counter()
            try:
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
        self.metrics.ready.set(1 if self.pipeline is not None else 0)
        if self.load_ms is not None:
            self.metrics.model_load.set(self.load_ms / 1e3)

    def stop(self) -> None:
        """Close the pipeline if this state loaded it (a given one stays the caller's)."""
        if self.owns_pipeline and self.pipeline is not None:
            self.pipeline.close()
            self.pipeline = None

    # -- requests ------------------------------------------------------------------------
    def ready_pipeline(self, default_reason: str = "the models are not loaded",
                       retry_after: bool = False) -> LivenessPipeline:
        """The pipeline, or :class:`ApiError` 503 ``not_ready`` with the reason (and a
        ``Retry-After`` of at least one second when ``retry_after``)."""
        if self.pipeline is None:
            headers = ({"Retry-After": str(max(self.settings.retry_after_s, 1))}
                       if retry_after else None)
            raise ApiError(503, "not_ready", self.load_error or default_reason, headers)
        return self.pipeline

    @contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one of ``max_concurrency`` slots, or refuse at once: 503 ``overloaded``.

        Non-blocking semaphore: the check and the increment happen without an await in between,
        so on the single event loop no two requests can take the last slot.
        """
        limit = self.settings.max_concurrency
        if self.in_flight >= limit:
            raise ApiError(503, "overloaded",
                           f"all {limit} processing slots are busy; retry later",
                           {"Retry-After": str(self.settings.retry_after_s)})
        self.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            yield
        finally:
            self.in_flight -= 1
            self.metrics.in_flight.dec()
