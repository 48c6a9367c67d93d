"""Settings of the liveness web service, from command-line flags and ``FACELIVE_*`` variables.

:class:`Settings` is a ``pydantic-settings`` model: ``Settings()`` reads the environment (one
variable per field, ``FACELIVE_`` + the upper-case field name, see :data:`ENV`) over the defaults,
and keyword arguments win over both. Precedence: a command-line flag beats its environment
variable, which beats the default (:func:`from_args`). An invalid value raises
:class:`~facelive.errors.FaceliveError` (code ``usage``) naming the variable it came from.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Annotated, Any

from pydantic import ValidationError, ValidationInfo, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from facelive.errors import FaceliveError

__all__ = ["Settings", "ENV", "ENV_PREFIX", "add_arguments", "from_args"]

MB = 1024 * 1024
ENV_PREFIX = "FACELIVE_"
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")

# The environment Settings() reads: os.environ unless Settings.from_env() was given a mapping.
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("facelive_settings_environ",
                                                            default=None)


class _Environment(EnvSettingsSource):
    """``FACELIVE_*`` variables of :data:`_ENVIRON` (or ``os.environ``), stripped; blank = unset."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENVIRON.get()
        env = os.environ if env is None else env
        return {k.lower(): v.strip() for k, v in env.items()
                if k.upper().startswith(ENV_PREFIX) and v.strip()}


@contextmanager
def _environment(environ: Mapping[str, str] | None) -> Iterator[None]:
    """Within the block, ``Settings()`` reads ``environ`` (None: ``os.environ``)."""
    token = _ENVIRON.set(environ)
    try:
        yield
    finally:
        _ENVIRON.reset(token)


class Settings(BaseSettings):
    """Everything ``facelive serve`` can be told (defaults are production-safe)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    max_body_bytes: int = 10 * MB
    """Largest accepted request body (Content-Length and the streamed count), else 413."""
    max_pixels: int = 16_000_000
    """Largest accepted width x height of a decoded image, else 413."""
    max_concurrency: int = 8
    """Requests processed at once per worker; one more gets 503 with Retry-After."""
    retry_after_s: int = 1
    tests: Annotated[tuple[str, ...] | None, NoDecode] = None
    """Liveness tests to run (default: the built-in tests, fused)."""
    threshold: float | None = None
    no_fusion: bool = False
    missing: str | None = None
    budget_ms: float = 5000.0
    allow_missing_models: bool = False
    """Start even when the models cannot be loaded (``/readyz`` then answers 503)."""
    cors_origins: Annotated[tuple[str, ...], NoDecode] = ()
    root_path: str = ""
    log_level: str = "info"

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise FaceliveError(_describe(exc, given=values), code="usage") from None

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _Environment(settings_cls)  # no .env file, no secrets directory

    # -- parsing (environment strings) and validation ------------------------------------------
    @field_validator("tests", "cors_origins", mode="before")
    @classmethod
    def _comma_list(cls, v: Any) -> Any:
        return tuple(p.strip() for p in v.split(",") if p.strip()) if isinstance(v, str) else v

    @field_validator("max_body_bytes", "max_pixels", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return _parse_size(v) if isinstance(v, str) else v

    @field_validator("port")
    @classmethod
    def _port(cls, v: int) -> int:
        if not 0 < v < 65536:
            raise ValueError(f"port must be in 1..65535, got {v}")
        return v

    @field_validator("workers", "max_body_bytes", "max_pixels", "max_concurrency")
    @classmethod
    def _positive(cls, v: int, info: ValidationInfo) -> int:
        if v < 1:
            raise ValueError(f"{info.field_name} must be at least 1, got {v}")
        return v

    @field_validator("retry_after_s")
    @classmethod
    def _retry_after(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"retry_after_s must be >= 0, got {v}")
        return v

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, v: float | None) -> float | None:
        if v is not None and not 0.0 <= v <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], got {v}")
        return v

    @field_validator("missing")
    @classmethod
    def _missing(cls, v: str | None) -> str | None:
        if v not in (None, "abstain", "available"):
            raise ValueError(f"missing must be 'abstain' or 'available', got {v!r}")
        return v

    @field_validator("budget_ms")
    @classmethod
    def _budget(cls, v: float) -> float:
        if v <= 0:
            raise ValueError(f"budget_ms must be positive, got {v}")
        return v

    @field_validator("tests")
    @classmethod
    def _tests(cls, v: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if v is not None and not v:
            raise ValueError("tests must name at least one test")
        return v

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, v: str) -> str:
        if v not in LOG_LEVELS:
            raise ValueError(f"unknown log_level {v!r}")
        return v

    # -- environment ---------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``FACELIVE_*`` variables of ``environ`` (default ``os.environ``); ``overrides``
        (non-None values) win over them."""
        with _environment(environ):
            return cls(**{k: v for k, v in overrides.items() if v is not None})

    def to_env(self) -> dict[str, str]:
        """The ``FACELIVE_*`` variables that reproduce these settings (for worker processes)."""
        out: dict[str, str] = {}
        for name in type(self).model_fields:
            v = getattr(self, name)
            if v is None:
                continue
            if isinstance(v, tuple):
                v = ",".join(v)
            elif isinstance(v, bool):
                v = "1" if v else "0"
            out[ENV[name]] = str(v)
        return out

    def with_(self, **changes: Any) -> Settings:
        """A validated copy with ``changes`` (the environment is not read again)."""
        return type(self).from_env({}, **{**self.model_dump(), **changes})


ENV = {name: ENV_PREFIX + name.upper() for name in Settings.model_fields}
"""Setting name -> environment variable."""


def _describe(exc: ValidationError, given: Mapping[str, Any]) -> str:
    """One message for every problem; values from the environment name their variable."""
    from_env, other = [], []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else ""
        ctx = err.get("ctx") or {}
        msg = str(ctx["error"]) if err["type"] == "value_error" and "error" in ctx else err["msg"]
        if name in ENV and name not in given:
            from_env.append(f"invalid {ENV[name]}={err['input']!r}: {msg}")
        elif err["type"] == "value_error":
            other.append(msg)  # the message names the setting
        else:
            other.append(f"{name}: {msg}" if name else msg)
    if other:
        from_env.append("invalid settings: " + "; ".join(other))
    return "; ".join(from_env)


def _parse_size(raw: str) -> int:
    """``10485760``, ``10MB``/``10M`` (MiB), ``512k`` (KiB) or ``16_000_000``."""
    s = raw.strip().lower().replace("_", "")
    for suffix, mult in (("mb", MB), ("m", MB), ("kb", 1024), ("k", 1024), ("b", 1)):
        if s.endswith(suffix):
            return int(float(s[: -len(suffix)]) * mult)
    return int(s)


def _default(name: str) -> Any:
    field: FieldInfo = Settings.model_fields[name]
    return field.default


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the service's flags (defaults None, so unset flags fall back to the environment)."""
    d = _default
    p.add_argument("--host", default=None,
                   help=f"bind address (default {d('host')}; FACELIVE_HOST)")
    p.add_argument("--port", type=int, default=None,
                   help=f"port (default {d('port')}; FACELIVE_PORT)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes, each loading the models (default 1; FACELIVE_WORKERS)")
    p.add_argument("--max-body-bytes", type=_size_arg, default=None,
                   help="largest request body, e.g. 10MB (default 10 MiB; FACELIVE_MAX_BODY_BYTES)")
    p.add_argument("--max-pixels", type=_size_arg, default=None,
                   help=f"largest image width*height (default {d('max_pixels')}; "
                        "FACELIVE_MAX_PIXELS)")
    p.add_argument("--max-concurrency", type=int, default=None,
                   help=f"requests processed at once per worker; more get 503 "
                        f"(default {d('max_concurrency')}; FACELIVE_MAX_CONCURRENCY)")
    p.add_argument("--retry-after", dest="retry_after_s", type=int, default=None,
                   help="Retry-After seconds sent with 503 (default 1; FACELIVE_RETRY_AFTER_S)")
    p.add_argument("--tests", default=None,
                   help="comma-separated tests (default: all built-in, fused; FACELIVE_TESTS)")
    p.add_argument("--threshold", type=float, default=None,
                   help="override the decision threshold (FACELIVE_THRESHOLD)")
    p.add_argument("--no-fusion", action="store_true", default=None,
                   help="all-tests-must-say-live rule instead of the fusion (FACELIVE_NO_FUSION)")
    p.add_argument("--missing", choices=("abstain", "available"), default=None,
                   help="fusion policy for a missing score (FACELIVE_MISSING)")
    p.add_argument("--budget-ms", type=float, default=None,
                   help="per-test time budget in ms (default 5000; FACELIVE_BUDGET_MS)")
    p.add_argument("--allow-missing-models", action="store_true", default=None,
                   help="start even if the models cannot be loaded; /readyz then answers 503 "
                        "(FACELIVE_ALLOW_MISSING_MODELS)")
    p.add_argument("--cors-origins", default=None,
                   help="comma-separated origins allowed to call the API from other sites "
                        "(FACELIVE_CORS_ORIGINS)")
    p.add_argument("--root-path", default=None,
                   help="path prefix when served under a sub-path of a proxy (FACELIVE_ROOT_PATH)")
    p.add_argument("--log-level", default=None, choices=LOG_LEVELS,
                   help="log level (default info; FACELIVE_LOG_LEVEL)")


def _size_arg(raw: str) -> int:
    try:
        return _parse_size(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {raw!r}") from None


def from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from parsed :func:`add_arguments` flags over ``FACELIVE_*`` variables."""
    return Settings.from_env(environ, **{k: getattr(args, k, None) for k in ENV})

