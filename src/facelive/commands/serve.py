"""``facelive serve``: the liveness web service and its browser client (uvicorn)."""

from __future__ import annotations

import argparse
import os
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the liveness web service and browser client",
        description=(
            "Serve POST /v1/liveness, /healthz, /readyz, /metrics, /openapi.json and the browser "
            "client at /. Every flag also reads a FACELIVE_* environment variable (the flag "
            "wins). The models load once at start-up; if they cannot be loaded the command "
            "exits with status 1 and the reason, unless --allow-missing-models is given (then "
            "/readyz answers 503 with the reason until the server is restarted with models)."
        ),
    )
    from facelive.server.settings import add_arguments

    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facelive.errors import FaceliveError
    from facelive.server.settings import from_args

    try:
        settings = from_args(args)
    except FaceliveError as exc:
        print(f"facelive serve: error: {exc.message}", file=sys.stderr)
        return 2
    if settings.tests:
        from facelive.liveness.registry import unknown_tests_message

        if problem := unknown_tests_message(settings.tests):
            print(f"facelive serve: error: {problem}", file=sys.stderr)
            return 2

    import uvicorn

    from facelive.server.app import create_app, load_pipeline

    # Load the models here first, so that a missing or corrupt model stops the command with a
    # clear message (rather than a worker's start-up traceback).
    pipeline = None
    try:
        pipeline = load_pipeline(settings)
    except FaceliveError as exc:
        if not settings.allow_missing_models:
            print(f"facelive serve: error: {exc.message}\n(start with --allow-missing-models to "
                  "serve anyway with /readyz answering 503)", file=sys.stderr)
            return 1
        print(f"facelive serve: warning: {exc.message}; /readyz will answer 503",
              file=sys.stderr)
    common = dict(host=settings.host, port=settings.port, log_level=settings.log_level,
                  root_path=settings.root_path, proxy_headers=True,
                  timeout_graceful_shutdown=10)
    if settings.workers == 1:
        try:
            uvicorn.run(create_app(settings, pipeline), **common)  # type: ignore[arg-type]
        finally:
            if pipeline is not None:
                pipeline.close()
        return 0
    # Several workers: each process builds its own app (and models) from the environment.
    if pipeline is not None:
        pipeline.close()
        del pipeline
    os.environ.update(settings.to_env())
    uvicorn.run("facelive.server.app:create_app_from_env", factory=True,
                workers=settings.workers, **common)  # type: ignore[arg-type]
    return 0
