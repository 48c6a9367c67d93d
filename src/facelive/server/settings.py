"""Settings of the liveness web service, from command-line flags and ``FACELIVE_*`` variables.

Precedence: a command-line flag beats its environment variable, which beats the default. Every
setting has one variable, named ``FACELIVE_`` + the upper-case field name (see :data:`ENV`).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from facelive.errors import FaceliveError

MB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    """Everything ``facelive serve`` can be told (defaults are production-safe)."""

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
    tests: tuple[str, ...] | None = None
    """Liveness tests to run (default: the built-in tests, fused)."""
    threshold: float | None = None
    no_fusion: bool = False
    missing: str | None = None
    budget_ms: float = 5000.0
    allow_missing_models: bool = False
    """Start even when the models cannot be loaded (``/readyz`` then answers 503)."""
    cors_origins: tuple[str, ...] = ()
    root_path: str = ""
    log_level: str = "info"

    def __post_init__(self) -> None:
        problems = []
        if not 0 < self.port < 65536:
            problems.append(f"port must be in 1..65535, got {self.port}")
        for name in ("workers", "max_body_bytes", "max_pixels", "max_concurrency"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.retry_after_s < 0:
            problems.append(f"retry_after_s must be >= 0, got {self.retry_after_s}")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            problems.append(f"threshold must be in [0, 1], got {self.threshold}")
        if self.missing not in (None, "abstain", "available"):
            problems.append(f"missing must be 'abstain' or 'available', got {self.missing!r}")
        if self.budget_ms <= 0:
            problems.append(f"budget_ms must be positive, got {self.budget_ms}")
        if self.tests is not None and not self.tests:
            problems.append("tests must name at least one test")
        if self.log_level not in ("critical", "error", "warning", "info", "debug", "trace"):
            problems.append(f"unknown log_level {self.log_level!r}")
        if problems:
            raise FaceliveError("invalid settings: " + "; ".join(problems), code="usage")

    # -- environment ---------------------------------------------------------------------
    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read ``FACELIVE_*`` variables; ``overrides`` (non-None values) win over them."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(ENV_PREFIX + f.name.upper())
            if raw is not None and raw.strip() != "":
                values[f.name] = _parse(f.name, raw.strip())
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def to_env(self) -> dict[str, str]:
        """The ``FACELIVE_*`` variables that reproduce these settings (for worker processes)."""
        out: dict[str, str] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            if isinstance(v, tuple):
                v = ",".join(v)
            elif isinstance(v, bool):
                v = "1" if v else "0"
            out[ENV_PREFIX + f.name.upper()] = str(v)
        return out

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)


ENV_PREFIX = "FACELIVE_"
_INT = {"port", "workers", "max_body_bytes", "max_pixels", "max_concurrency", "retry_after_s"}
_FLOAT = {"threshold", "budget_ms"}
_BOOL = {"no_fusion", "allow_missing_models"}
_LIST = {"tests", "cors_origins"}
ENV = {f.name: ENV_PREFIX + f.name.upper() for f in fields(Settings)}
"""Setting name -> environment variable."""


def _parse(name: str, raw: str) -> Any:
    var = ENV_PREFIX + name.upper()
    try:
        if name in _INT:
            return _parse_size(raw) if name in ("max_body_bytes", "max_pixels") else int(raw)
        if name in _FLOAT:
            return float(raw)
        if name in _BOOL:
            low = raw.lower()
            if low in ("1", "true", "yes", "on"):
                return True
            if low in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected 1/0, true/false, yes/no or on/off")
        if name in _LIST:
            return tuple(p.strip() for p in raw.split(",") if p.strip())
        return raw
    except ValueError as exc:
        raise FaceliveError(f"invalid {var}={raw!r}: {exc}", code="usage") from None


def _parse_size(raw: str) -> int:
    """``10485760``, ``10MB``/``10M`` (MiB), ``512k`` (KiB) or ``16_000_000``."""
    s = raw.strip().lower().replace("_", "")
    for suffix, mult in (("mb", MB), ("m", MB), ("kb", 1024), ("k", 1024), ("b", 1)):
        if s.endswith(suffix):
            return int(float(s[: -len(suffix)]) * mult)
    return int(s)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the service's flags (defaults None, so unset flags fall back to the environment)."""
    d = Settings()
    p.add_argument("--host", default=None, help=f"bind address (default {d.host}; FACELIVE_HOST)")
    p.add_argument("--port", type=int, default=None, help=f"port (default {d.port}; FACELIVE_PORT)")
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes, each loading the models (default 1; FACELIVE_WORKERS)")
    p.add_argument("--max-body-bytes", type=_size_arg, default=None,
                   help="largest request body, e.g. 10MB (default 10 MiB; FACELIVE_MAX_BODY_BYTES)")
    p.add_argument("--max-pixels", type=_size_arg, default=None,
                   help=f"largest image width*height (default {d.max_pixels}; FACELIVE_MAX_PIXELS)")
    p.add_argument("--max-concurrency", type=int, default=None,
                   help=f"requests processed at once per worker; more get 503 "
                        f"(default {d.max_concurrency}; FACELIVE_MAX_CONCURRENCY)")
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
    p.add_argument("--log-level", default=None,
                   choices=("critical", "error", "warning", "info", "debug", "trace"),
                   help="log level (default info; FACELIVE_LOG_LEVEL)")


def _size_arg(raw: str) -> int:
    try:
        return _parse_size(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {raw!r}") from None


def from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from parsed :func:`add_arguments` flags over ``FACELIVE_*`` variables."""
    overrides = {k: getattr(args, k, None) for k in ENV}
    for k in ("tests", "cors_origins"):
        if isinstance(overrides.get(k), str):
            overrides[k] = tuple(p.strip() for p in overrides[k].split(",") if p.strip())
    return Settings.from_env(environ, **overrides)
