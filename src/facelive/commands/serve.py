"""``facelive serve``: the liveness web service and its browser client (uvicorn)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from facelive.server.settings import Settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="run the liveness web service and browser client",
        description=(
            "Serve POST /v1/liveness, the challenge sessions (/v1/sessions, "
            "/.well-known/jwks.json; they need API keys, else they answer 503), /healthz, "
            "/readyz, /metrics, /openapi.json and the browser client at /. Every flag also "
            "reads a FACELIVE_* environment variable (the flag wins). The models load once at "
            "start-up, in the pipeline processes; if they cannot be loaded the command exits "
            "with status 1 and the reason, unless --allow-missing-models is given (then "
            "/readyz answers 503 with the reason until the server is restarted with models). "
            "Settings that cannot work together (e.g. sessions with --workers 2 and no "
            "--redis-url) stop the command with status 2."
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

    from facelive.server import app as app_module
    from facelive.server.auth import ApiKeys
    from facelive.server.listener import uvicorn_options
    from facelive.server.workers import pool_size

    try:  # a bad keys file stops the command before anything starts
        keys = ApiKeys.from_settings(settings.api_keys, settings.api_keys_file)
    except FaceliveError as exc:
        print(f"facelive serve: error: {exc.message}", file=sys.stderr)
        return 2
    if problem := _session_problem(settings, keys.enabled):
        print(f"facelive serve: error: {problem}", file=sys.stderr)
        return 2
    in_process = pool_size(settings) == 0
    # Load the models here first (in the pipeline processes, or in this process with
    # --pipeline-workers 0), so that a missing or corrupt model stops the command with a clear
    # message rather than a start-up traceback.
    pool = pipeline = None
    try:
        if in_process:
            pipeline = app_module.load_pipeline(settings)
        elif settings.workers == 1:
            pool = app_module.start_workers(settings)
        else:  # each uvicorn worker starts its own pool: check that the models load, once
            app_module.start_workers(settings.with_(pipeline_workers=1)).close()
    except FaceliveError as exc:
        if not settings.allow_missing_models:
            print(f"facelive serve: error: {exc.message}\n(start with --allow-missing-models to "
                  "serve anyway with /readyz answering 503)", file=sys.stderr)
            return 1
        print(f"facelive serve: warning: {exc.message}; /readyz will answer 503",
              file=sys.stderr)
    options = uvicorn_options(settings)
    if settings.workers == 1:
        try:
            uvicorn.run(app_module.create_app(settings, pipeline, pool), **options)
        finally:
            if pipeline is not None:
                pipeline.close()
            if pool is not None:
                pool.close()
        return 0
    # Several server processes: each builds its own app (and pipeline processes) from the
    # environment.
    if pipeline is not None:
        pipeline.close()
        del pipeline
    os.environ.update(settings.to_env())
    uvicorn.run("facelive.server.app:create_app_from_env", factory=True,
                workers=settings.workers, **options)
    return 0


def _session_problem(settings: Settings, keys_enabled: bool) -> str | None:
    """Why the session settings cannot work (None when they can). Creates the signing key file
    here, once, before any server process starts (they would race to create it); says loudly
    when the session API stays off for want of API keys, and when the demo is on."""
    from facelive.audit import AuditError, ResultSigner
    from facelive.server.sessions import config_problems, sessions_enabled

    problems = config_problems(settings, keys_enabled)
    if problems:
        return "; ".join(problems)
    if not settings.sessions:
        return None
    if not sessions_enabled(settings, keys_enabled):
        print("facelive serve: warning: the challenge sessions are off: no API key is "
              "configured (FACELIVE_API_KEYS or --api-keys-file); /v1/sessions answers 503 "
              "sessions_disabled (--no-sessions silences this)", file=sys.stderr)
        return None
    if settings.signing_key:
        try:
            ResultSigner.load_or_create(settings.signing_key)
        except AuditError as exc:
            return f"--signing-key: {exc.message}"
    if settings.redis_url:  # fail before the models load, not after
        import time

        from facelive.server.sessions import open_session_store

        try:
            open_session_store(settings, time.time).close()
        except RuntimeError as exc:
            return str(exc)
    if settings.demo:
        print("facelive serve: warning: --demo: the /demo endpoints create sessions without an "
              "API key and show the browser its verdict; never use it in production",
              file=sys.stderr)
    return None
