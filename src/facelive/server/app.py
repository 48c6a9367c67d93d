"""The liveness web service's app factory: ``POST /v1/liveness``, the challenge sessions
(``/v1/sessions``, ``/.well-known/jwks.json``), health, readiness, metrics, web.

>>> app = create_app(Settings())                 # loads the default pipeline at start-up
>>> app = create_app(Settings(), pipeline=pipe)  # or serve an existing pipeline (tests, embedding)

The API is stateless: every request carries one image and gets the object that
``facelive check --format json`` prints. A request takes one of ``max_concurrency`` processing
slots once its body has arrived (non-blocking semaphore: when every slot is taken it is refused
at once with 503 and ``Retry-After``; no unbounded queue). Images are held in memory only and
never logged. Without a ``pipeline`` object the app runs the pipeline in killable worker
processes (:mod:`facelive.server.workers`); with one, in worker threads.

The challenge sessions are stateful: the session store (memory, or Redis with
``redis_url``) and the result signer are opened at start-up; a clip uploaded to a session is
verified after its 202 answer, in the background (awaited, up to ``verify_timeout_s``, at
shutdown).

Layers (each imports only those below it; none imports :mod:`facelive.commands` or
:mod:`facelive.cli`): this factory; the routers of :mod:`facelive.server.routes` (``liveness``,
``sessions``, ``demo``, ``ops``, ``web``); :mod:`~facelive.server.deps` (``Depends`` providers,
access control); :mod:`~facelive.server.state` (per-app state, admission);
:mod:`~facelive.server.sessions` (the session API's logic); then, independent of each other,
:mod:`~facelive.server.workers` (pipeline processes and loading), :mod:`~facelive.server.auth`
(API keys, rate limits), :mod:`~facelive.server.session_store` (sessions, nonces, counters),
:mod:`~facelive.server.parsing` (request bodies),
:mod:`~facelive.server.middleware` (client address, security headers, access log) and
:mod:`~facelive.server.listener` (uvicorn options and protocol); :mod:`~facelive.server.errors`
and :mod:`~facelive.server.schemas` (error bodies, OpenAPI tables);
:mod:`~facelive.server.settings` and :mod:`~facelive.server.metrics`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

import facelive
from facelive.server.errors import ApiError, register_exception_handlers
from facelive.server.middleware import HardeningMiddleware, OutcomeMiddleware
from facelive.server.routes import demo, liveness, ops, sessions, web
from facelive.server.routes.web import STATIC_DIR
from facelive.server.settings import Settings
from facelive.server.state import LivenessPipeline, ServiceState, WorkerPool, load_pipeline
from facelive.types import SCHEMA_VERSION

__all__ = ["API_VERSION", "create_app", "create_app_from_env", "load_pipeline", "start_workers",
           "ApiError", "STATIC_DIR", "WorkerPool"]

API_VERSION = f"{SCHEMA_VERSION}.0.0"
"""The HTTP API's version, the OpenAPI document's ``info.version``: its major number is the
``schema_version`` of the ``POST /v1/liveness`` result (the package's own version is in
``GET /v1/info``)."""


def start_workers(settings: Settings) -> WorkerPool:
    """Start the pipeline processes for ``settings`` (blocks until they have loaded the models;
    :class:`~facelive.errors.FaceliveError` ``model_error`` with the reason when they cannot).
    ``facelive serve`` calls it before binding the port, so a broken deployment fails fast."""
    return WorkerPool(settings).start()


MEMORY_RELEASE_S = 5.0
"""How often the server process hands freed request-body memory back to the kernel."""


async def _release_memory_every(seconds: float) -> None:
    """:func:`facelive.runtime.release_free_memory` every ``seconds``, in a thread (the uploads
    a server process frees stay resident otherwise: ``benchmarks/bench_hostile.py``)."""
    import anyio

    from facelive.runtime import release_free_memory

    while True:
        await asyncio.sleep(seconds)
        await anyio.to_thread.run_sync(release_free_memory)


def create_app(settings: Settings | None = None,
               pipeline: LivenessPipeline | None = None,
               workers: WorkerPool | None = None,
               *, clock: Callable[[], float] | None = None) -> FastAPI:
    """Build the service (``settings`` default: :class:`Settings`, read from ``FACELIVE_*``).

    ``pipeline``: an object with ``check(image) -> LivenessResult`` and ``info() -> dict`` (a
    :class:`facelive.pipeline.Pipeline`, or a light stand-in in tests), run in worker threads
    of this process; the caller keeps ownership. ``workers``: a started :class:`WorkerPool`
    (:func:`start_workers`), also the caller's. Without either, the app starts a
    :class:`WorkerPool` of pipeline processes at start-up (``pipeline_workers=0``: loads
    :func:`load_pipeline` in this process instead) and closes it at shutdown; when that fails,
    start-up fails with the reason, unless ``settings.allow_missing_models``, in which case
    ``/readyz`` and ``/v1/liveness`` answer 503 ``not_ready`` with the reason.

    The session API starts with the app when API keys are configured (or ``demo``): start-up
    fails on settings that cannot work together or an unreachable Redis; without keys its
    endpoints answer 503 ``sessions_disabled`` (logged at start-up). ``clock``: the sessions'
    Unix-seconds clock (tests).
    """
    settings = settings or Settings()
    state = ServiceState(settings=settings, pipeline=pipeline, pool=workers)
    if clock is not None:
        state.clock = clock

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start(load_pipeline)
        trimmer = asyncio.create_task(_release_memory_every(MEMORY_RELEASE_S))
        try:
            yield
        finally:
            trimmer.cancel()
            await state.drain(settings.verify_timeout_s)
            await state.close_limits()
            state.stop()

    app = FastAPI(
        title="facelive",
        version=API_VERSION,
        description="Face liveness (presentation-attack detection) for web cameras "
                    f"(facelive {facelive.__version__}; API {API_VERSION}, whose major number "
                    "is the `schema_version` of the `POST /v1/liveness` result). "
                    "Every error answers `{\"error\": {\"code\", \"message\"}}`. "
                    "One image does not prove presence: see the screen-flash challenge "
                    "(`/v1/sessions`).",
        lifespan=lifespan,
        docs_url=None, redoc_url=None,  # Swagger UI / ReDoc load scripts from a CDN
        openapi_url="/openapi.json" if settings.openapi else None,
        redirect_slashes=False,  # a redirect would be built from the Host header
    )
    app.state.facelive = state
    # Innermost first: unexpected errors and outcome metrics; CORS; then the hardening.
    app.add_middleware(OutcomeMiddleware, metrics=state.metrics)
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["*"],
                           expose_headers=["Retry-After"])
    register_exception_handlers(app)
    app.include_router(liveness.router)
    app.include_router(sessions.router)
    if settings.demo:
        app.include_router(demo.router)
    app.include_router(ops.router)
    app.include_router(web.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(HardeningMiddleware, settings=settings)  # outermost: sees every response
    return app


def create_app_from_env() -> FastAPI:
    """App factory for ``uvicorn --factory`` / several workers: settings from ``FACELIVE_*``.

    This is a process entry point (each uvicorn worker process calls it), so it applies the
    process-wide tuning that ``facelive serve`` applies (:func:`facelive.runtime.tune_process`):
    the allocator setting only where the pipeline runs in this process (``pipeline_workers`` 0),
    as it keeps freed buffers in the heap, request bodies included.
    """
    from facelive.runtime import tune_process

    settings = Settings.from_env()
    tune_process(filter_stderr=False, allocator=settings.pipeline_workers == 0)
    return create_app(settings)
