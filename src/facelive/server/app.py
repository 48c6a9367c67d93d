"""The liveness web service's app factory: ``POST /v1/liveness``, health, readiness, metrics, web.

>>> app = create_app(Settings())                 # loads the default pipeline at start-up
>>> app = create_app(Settings(), pipeline=pipe)  # or serve an existing pipeline (tests, embedding)

The API is stateless: every request carries one image and gets the object that
``facelive check --format json`` prints. Requests are admitted by a non-blocking semaphore of
``max_concurrency`` slots; when every slot is taken the request is refused at once with 503 and
``Retry-After`` (no unbounded queue). Images are held in memory only and never logged.

Layers (each imports only those below it; none imports :mod:`facelive.commands` or
:mod:`facelive.cli`): this factory; the routers of :mod:`facelive.server.routes` (``liveness``,
``ops``, ``web``); :mod:`~facelive.server.deps` (``Depends`` providers);
:mod:`~facelive.server.state` (per-app state, pipeline loading, admission);
:mod:`~facelive.server.parsing` (request bodies); :mod:`~facelive.server.errors` and
:mod:`~facelive.server.schemas` (error bodies, OpenAPI tables); :mod:`~facelive.server.settings`
and :mod:`~facelive.server.metrics`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import facelive
from facelive.server.errors import ApiError, register_exception_handlers
from facelive.server.routes import liveness, ops, web
from facelive.server.routes.web import STATIC_DIR
from facelive.server.settings import Settings
from facelive.server.state import LivenessPipeline, ServiceState, load_pipeline

__all__ = ["create_app", "create_app_from_env", "load_pipeline", "ApiError", "STATIC_DIR"]


def create_app(settings: Settings | None = None,
               pipeline: LivenessPipeline | None = None) -> FastAPI:
    """Build the service (``settings`` default: :class:`Settings`, read from ``FACELIVE_*``).

    ``pipeline``: an object with ``check(image) -> LivenessResult`` and ``info() -> dict`` (a
    :class:`facelive.pipeline.Pipeline`, or a light stand-in in tests); the caller keeps
    ownership. Without it, the app loads :func:`load_pipeline` at start-up and closes it at
    shutdown; when that fails, start-up fails with the reason, unless
    ``settings.allow_missing_models``, in which case ``/readyz`` and ``/v1/liveness`` answer
    503 ``not_ready`` with the reason.
    """
    settings = settings or Settings()
    state = ServiceState(settings=settings, pipeline=pipeline)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start(load_pipeline)
        try:
            yield
        finally:
            state.stop()

    app = FastAPI(
        title="facelive",
        version=facelive.__version__,
        description="Face liveness (presentation-attack detection) for web cameras. "
                    "Every error answers `{\"error\": {\"code\", \"message\"}}`.",
        lifespan=lifespan,
    )
    app.state.facelive = state
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"],
                           expose_headers=["Retry-After"])
    register_exception_handlers(app)
    app.include_router(liveness.router)
    app.include_router(ops.router)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` / several workers: settings from ``FACELIVE_*``.

    This is a process entry point (each uvicorn worker process calls it), so it applies the
    process-wide tuning that ``facelive`` applies (:func:`facelive.runtime.tune_process`).
    """
    from facelive.runtime import tune_process

    tune_process(filter_stderr=False)
    return create_app(Settings.from_env())
