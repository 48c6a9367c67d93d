"""``facelive serve``: the liveness web service and its browser client (uvicorn).

Its flags are generated from the fields of :class:`facelive.server.settings.Settings`
(:func:`add_arguments`, named by :func:`flag`), and so is the settings table of
``docs/deployment.md`` (:func:`settings_table`; ``python -m facelive.commands.serve --markdown
docs/deployment.md`` rewrites it between its markers, ``--markdown`` alone prints it).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union, get_args, get_origin

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

    from facelive.server.settings import Settings

ENV_ONLY = frozenset({"api_keys", "operator_keys"})
"""Settings without a flag (API and operator keys never appear in a process list)."""
TABLE_START = "<!-- settings table: python -m facelive.commands.serve --markdown FILE -->"
TABLE_END = "<!-- end of the settings table -->"


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
    add_arguments(p)
    p.set_defaults(func=run)


def flag(name: str) -> str | None:
    """The flag of a setting.

    Parameters
    ----------
    name : str
        A field of :class:`~facelive.server.settings.Settings`.

    Returns
    -------
    str or None
        ``--`` and the name in kebab case, less a ``_s`` (seconds) suffix (``retry_after_s``:
        ``--retry-after``); ``--no-...`` for a switch that is on by default (``openapi``:
        ``--no-openapi``); None for a setting of :data:`ENV_ONLY`.
    """
    from facelive.server.settings import Settings

    base = name.removesuffix("_s").replace("_", "-")
    on = Settings.model_fields[name].default is True
    return None if name in ENV_ONLY else f"--no-{base}" if on else f"--{base}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add a flag for each setting (see :func:`flag`).

    The help is the field's description with its default and variable, the type and choices
    come from its annotation, and the default is None, so that a flag not given leaves the
    setting to its ``FACELIVE_*`` variable (:func:`from_args`).

    Parameters
    ----------
    p : argparse.ArgumentParser
        The parser of ``facelive serve`` (or any parser).
    """
    from facelive.server.settings import ENV, SIZE, Settings, size

    group: Any = p
    for name, field in Settings.model_fields.items():
        if name == "sessions":
            group = p.add_argument_group("challenge sessions (they need API keys, or --demo)")
        if (option := flag(name)) is None:
            continue
        text = f"{field.description.rstrip('.')} (default {_shown_default(name)}; {ENV[name]})"
        kw: dict[str, Any] = {"dest": name, "default": None,
                              "help": text.replace("`", "").replace("%", "%%")}
        kind, choices = _kind(field)
        if kind is bool:
            kw["action"] = "store_false" if field.default else "store_true"
            kw["help"] = ("Turn off: " if field.default else "") + kw["help"]
        else:
            kw["choices"] = choices
            kw["metavar"] = None if choices else option[2:].upper().replace("-", "_")
            kw["type"] = size if SIZE in field.metadata else kind if kind in (int, float) else str
        group.add_argument(option, **kw)


def _kind(field: FieldInfo) -> tuple[Any, tuple[str, ...] | None]:
    """The field's type (``X | None`` and ``Annotated`` unwrapped) and its choices."""
    kind = field.annotation
    if get_origin(kind) in (Union, type(int | None)):
        kind = next(a for a in get_args(kind) if a is not type(None))
    kind = get_args(kind)[0] if get_origin(kind) is Annotated else kind
    return (str, get_args(kind)) if get_origin(kind) is Literal else (kind, None)


def _shown_default(name: str) -> str:
    """The default of a setting as the help and the table show it (Markdown)."""
    from facelive.server.settings import MB, SIZE, Settings

    field = Settings.model_fields[name]
    v = field.default
    if v is None or v in ((), "") or isinstance(v, bool):
        return {None: "unset", (): "none", "": "empty", True: "on", False: "off"}[v]
    if SIZE in field.metadata:
        v = f"{v // MB}MB" if v % MB == 0 else f"{v // 1024}k" if v % 1024 == 0 else v
    return f"`{v:g}`" if isinstance(v, float) else f"`{v}`"


def from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of parsed :func:`add_arguments` flags over the ``FACELIVE_*`` variables.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed flags (a flag not given is None).
    environ : Mapping or None
        The variables (default ``os.environ``).

    Returns
    -------
    Settings
        Validated settings (:class:`~facelive.errors.FaceliveError` ``usage`` when invalid).
    """
    from facelive.server.settings import ENV, Settings

    return Settings.from_env(environ, **{k: getattr(args, k, None) for k in ENV})


def settings_table() -> str:
    """The settings as the Markdown table of ``docs/deployment.md``.

    Returns
    -------
    str
        One row per setting (flag, variable, default, meaning), ending with a newline.
    """
    from facelive.server.settings import ENV, Settings

    rows = ["| flag | variable | default | meaning |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        option = f"`{flag(name)}`" if flag(name) else "(none)"
        rows.append(f"| {option} | `{ENV[name]}` | {_shown_default(name)} | "
                    f"{field.description} |")
    return "\n".join(rows) + "\n"


def write_settings_table(path: str | Path) -> bool:
    """Rewrite the settings table between :data:`TABLE_START` and :data:`TABLE_END` of a file.

    Parameters
    ----------
    path : str or Path
        A Markdown file holding the two markers.

    Returns
    -------
    bool
        Whether the table changed.
    """
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(TABLE_START, 1)
    new = f"{head}{TABLE_START}\n{settings_table()}{TABLE_END}{rest.split(TABLE_END, 1)[1]}"
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


def run(args: argparse.Namespace) -> int:
    from facelive.errors import FaceliveError

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
    from facelive.server.auth import ApiKeys, load_operator_keys
    from facelive.server.listener import uvicorn_options
    from facelive.server.workers import pool_size

    try:  # a bad keys file stops the command before anything starts
        keys = ApiKeys.from_settings(settings.api_keys, settings.api_keys_file)
        load_operator_keys(settings.operator_keys, settings.operator_keys_file, keys)
    except FaceliveError as exc:
        print(f"facelive serve: error: {exc.message}", file=sys.stderr)
        return 2
    if problem := _session_problem(settings, keys.enabled):
        print(f"facelive serve: error: {problem}", file=sys.stderr)
        return 2
    if problem := _limit_problem(settings):
        print(f"facelive serve: error: {problem}", file=sys.stderr)
        return 2
    in_process = pool_size(settings) == 0
    from facelive.server.sessions import sessions_enabled

    # with the session API on, the app starts its pools itself: the clips' own pool beside
    # /v1/liveness's (a pool handed to the app would verify the clips in /v1/liveness's processes)
    app_pools = settings.sessions and sessions_enabled(settings, keys.enabled)
    # Load the models here first (in the pipeline processes, or in this process with
    # --pipeline-workers 0), so that a missing or corrupt model stops the command with a clear
    # message rather than a start-up traceback.
    pool = pipeline = None
    try:
        if in_process:
            pipeline = app_module.load_pipeline(settings)
        elif settings.workers == 1 and not app_pools:
            pool = app_module.start_workers(settings)
        else:  # the app (each uvicorn worker) starts its own pools: check the models load, once
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


def _limit_problem(settings: Settings) -> str | None:
    """Why the rate limits cannot hold (None when they can): per-process counters with several
    server processes, or a Redis for the counters that does not answer (checked here, before
    the models load)."""
    import asyncio

    from facelive.server.ratelimit import LimitStoreUnavailable, RateLimits, config_problems

    if problems := config_problems(settings):  # per-process counters would multiply the limits
        return "; ".join(problems)
    limits = RateLimits.from_settings(settings)

    async def check() -> None:
        try:
            await limits.check()
        finally:
            await limits.close()

    try:
        asyncio.run(check())
    except LimitStoreUnavailable as exc:
        return f"cannot reach the rate-limit store (Redis): {exc}"
    return None


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
    if keys_enabled and not settings.issuer:
        print("facelive serve: warning: no --issuer: result tokens say iss \"facelive\"; set "
              "it to this server's public URL (FACELIVE_ISSUER=https://...), which relying "
              "sites check", file=sys.stderr)
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


if __name__ == "__main__":  # --markdown [FILE]: print the settings table, or rewrite FILE's
    if sys.argv[1:2] != ["--markdown"]:
        sys.exit("usage: python -m facelive.commands.serve --markdown [FILE]")
    if len(sys.argv) > 2:
        print("updated" if write_settings_table(sys.argv[2]) else "unchanged", sys.argv[2])
    else:
        print(settings_table(), end="")
