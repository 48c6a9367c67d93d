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
    max_pixels: int = 4_000_000
    """Largest accepted width x height of a decoded image, else 413. 4 MP covers every camera
    frame a browser sends (2560x1440 is 3.7 MP) and bounds one image's cost to about +150 MiB and
    0.2 s (``benchmarks/bench_hostile.py --worst-case``; 16 MP costs +286 MiB)."""
    max_aspect_ratio: float = 4.0
    """Largest accepted long side / short side of an image, else 422 ``image_aspect_ratio``."""
    max_concurrency: int = 8
    """Requests processed at once per worker (after their body has arrived); one more gets 503
    with Retry-After."""
    retry_after_s: int = 1
    pipeline_workers: int | None = None
    """Processes running the pipeline when the app loads its own models (default: the usable
    cores divided by ``workers``, at least 1); 0 runs it in threads of the server process."""
    job_timeout_s: float = 10.0
    """Hard deadline of one image in a pipeline process; past it the process is killed
    (SIGKILL), replaced, and the request answers 503 ``timeout``."""
    worker_max_rss_mb: int = 1024
    """A pipeline process whose resident memory passes this is killed (during a job: 503
    ``memory_limit``) or recycled (between jobs)."""
    upload_buffer_bytes: int = 128 * MB
    """Bytes of request bodies being received at once (bodies are read before a request takes
    a slot); past it a request is refused with 503 ``overloaded``."""
    body_timeout_s: float = 20.0
    """Time allowed to receive a request body, from the end of its headers (else 408)."""
    body_min_rate: int = 1024
    """Slowest accepted upload, bytes per second averaged from the end of the headers, enforced
    after the first 5 s (else 408); 0 turns it off."""
    header_timeout_s: float = 10.0
    """Time allowed to send a complete request head, on a new or kept-alive connection."""
    keep_alive_s: int = 5
    """Idle time after which a kept-alive connection is closed."""
    max_connections: int = 256
    """Open connections per server process; one more is answered 503 and closed at once."""
    max_header_bytes: int = 16384
    """Largest request head (request line and headers), else 400."""
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    """Addresses or networks (CIDR) of reverse proxies whose ``X-Forwarded-For`` and
    ``X-Forwarded-Proto`` are believed; others' are ignored."""
    api_keys: Annotated[tuple[str, ...], NoDecode] = ()
    """SHA-256 hex digests of the accepted API keys (comma-separated)."""
    api_keys_file: str | None = None
    """File with one SHA-256 hex digest per line (``#`` comments), added to ``api_keys``."""
    key_rate: float = 0.0
    """Requests per second allowed per API key (token bucket; 0: no limit)."""
    key_burst: int = 20
    """Bucket size of the per-key limit (requests allowed at once after a pause)."""
    address_rate: float = 0.0
    """Requests per second allowed per client address (IPv6: per /64; 0: no limit)."""
    address_burst: int = 20
    """Bucket size of the per-address limit."""
    max_tracked_clients: int = 10000
    """Keys and addresses whose buckets are remembered (least recently seen are forgotten)."""
    openapi: bool = True
    """Serve the API schema at ``/openapi.json`` (``/docs`` and ``/redoc`` are never served)."""
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
    # -- challenge sessions (issue 14; facelive.server.sessions) --------------------------------
    sessions: bool = True
    """Serve the challenge session API (``/v1/sessions``, ``/.well-known/jwks.json``). It needs
    API keys (or ``demo``); without them its endpoints answer 503 ``sessions_disabled``."""
    redis_url: str | None = None
    """Session store shared by workers and replicas (``redis://``, ``rediss://``, ``unix://``);
    default: in the memory of this server process."""
    signing_key: str | None = None
    """Ed25519 private key file (PEM or JWK) that signs session results; created (mode 0600)
    when absent. Unset: a key generated in memory at start-up (tokens can no longer be verified
    after a restart; a warning is logged)."""
    demo: bool = False
    """Serve the challenge demo at ``/`` with demo-only session endpoints (``/demo/...``) that
    need no API key and show the browser its verdict. Never in production."""
    session_ttl_s: float = 300.0
    """Time from a session's creation within which the browser must fetch the challenge and
    upload its frames (else 410 ``session_expired``)."""
    result_ttl_s: int = 3600
    """Lifetime of a signed result (its ``exp`` claim)."""
    sessions_per_key: int = 600
    """Sessions one API key may create per ``session_window_s`` (0: no limit), else 429."""
    sessions_per_address: int = 120
    """Sessions one client address (IPv6: /64) may create per ``session_window_s`` (0: no
    limit), else 429."""
    session_window_s: float = 60.0
    """The fixed window of the two session counters."""
    session_max_frames: int = 150
    """Most frames in one upload (413 ``too_many_frames``, counted while parsing)."""
    session_max_body_bytes: int = 16 * MB
    """Largest frames upload (413 ``body_too_large``)."""
    session_frame_max_pixels: int = 1_000_000
    """Largest width x height of one uploaded frame (the clip is then judged ``unknown``)."""
    verify_timeout_s: float = 60.0
    """Hard deadline of one clip's verification in a pipeline process (killed past it; the
    session's result is then ``unknown``, reason ``verification timed out``)."""

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
    @field_validator("tests", "cors_origins", "trusted_proxies", "api_keys", mode="before")
    @classmethod
    def _comma_list(cls, v: Any) -> Any:
        return tuple(p.strip() for p in v.split(",") if p.strip()) if isinstance(v, str) else v

    @field_validator("max_body_bytes", "max_pixels", "max_header_bytes", "upload_buffer_bytes",
                     "session_max_body_bytes", "session_frame_max_pixels", mode="before")
    @classmethod
    def _size(cls, v: Any) -> Any:
        return _parse_size(v) if isinstance(v, str) else v

    @field_validator("port")
    @classmethod
    def _port(cls, v: int) -> int:
        if not 0 < v < 65536:
            raise ValueError(f"port must be in 1..65535, got {v}")
        return v

    @field_validator("workers", "max_body_bytes", "max_pixels", "max_concurrency",
                     "worker_max_rss_mb", "keep_alive_s", "max_connections", "max_header_bytes",
                     "key_burst", "address_burst", "max_tracked_clients",
                     "upload_buffer_bytes", "result_ttl_s", "session_max_frames",
                     "session_max_body_bytes", "session_frame_max_pixels")
    @classmethod
    def _positive(cls, v: int, info: ValidationInfo) -> int:
        if v < 1:
            raise ValueError(f"{info.field_name} must be at least 1, got {v}")
        return v

    @field_validator("job_timeout_s", "body_timeout_s", "header_timeout_s", "session_ttl_s",
                     "session_window_s", "verify_timeout_s")
    @classmethod
    def _positive_seconds(cls, v: float, info: ValidationInfo) -> float:
        if not v > 0:
            raise ValueError(f"{info.field_name} must be positive, got {v}")
        return v

    @field_validator("pipeline_workers", "body_min_rate", "key_rate", "address_rate",
                     "sessions_per_key", "sessions_per_address")
    @classmethod
    def _not_negative(cls, v: float | None, info: ValidationInfo) -> float | None:
        if v is not None and v < 0:
            raise ValueError(f"{info.field_name} must be >= 0, got {v}")
        return v

    @field_validator("max_aspect_ratio")
    @classmethod
    def _aspect(cls, v: float) -> float:
        if not v >= 1.0:
            raise ValueError(f"max_aspect_ratio must be at least 1, got {v}")
        return v

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        import ipaddress

        for item in v:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"trusted_proxies: {item!r} is not an IP address or network") \
                    from None
        return v

    @field_validator("api_keys")
    @classmethod
    def _digests(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        out = tuple(d.lower() for d in v)
        for d in out:
            if len(d) != 64 or any(c not in "0123456789abcdef" for c in d):
                raise ValueError("api_keys must be SHA-256 hex digests (64 hex digits each; "
                                 "hash a key with: printf %s KEY | sha256sum)")
        return out

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("redis_url must start with redis://, rediss:// or unix://")
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
    p.add_argument("--max-aspect-ratio", type=float, default=None,
                   help=f"largest long side / short side of an image (default "
                        f"{d('max_aspect_ratio'):g}; FACELIVE_MAX_ASPECT_RATIO)")
    p.add_argument("--pipeline-workers", type=int, default=None,
                   help="processes running the pipeline (default: usable cores / --workers; 0: "
                        "threads of the server process; FACELIVE_PIPELINE_WORKERS)")
    p.add_argument("--job-timeout", dest="job_timeout_s", type=float, default=None,
                   help=f"seconds one image may take in a pipeline process before the process "
                        f"is killed and the request answers 503 timeout (default "
                        f"{d('job_timeout_s'):g}; FACELIVE_JOB_TIMEOUT_S)")
    p.add_argument("--worker-max-rss-mb", type=int, default=None,
                   help=f"kill/recycle a pipeline process above this resident memory (default "
                        f"{d('worker_max_rss_mb')}; FACELIVE_WORKER_MAX_RSS_MB)")
    p.add_argument("--upload-buffer-bytes", type=_size_arg, default=None,
                   help="bytes of request bodies received at once, e.g. 128MB (default 128 MiB; "
                        "FACELIVE_UPLOAD_BUFFER_BYTES)")
    p.add_argument("--body-timeout", dest="body_timeout_s", type=float, default=None,
                   help=f"seconds to receive a request body (default {d('body_timeout_s'):g}; "
                        "FACELIVE_BODY_TIMEOUT_S)")
    p.add_argument("--body-min-rate", type=int, default=None,
                   help=f"slowest accepted upload in bytes/s after 5 s (default "
                        f"{d('body_min_rate')}; 0: off; FACELIVE_BODY_MIN_RATE)")
    p.add_argument("--header-timeout", dest="header_timeout_s", type=float, default=None,
                   help=f"seconds to send a request head (default {d('header_timeout_s'):g}; "
                        "FACELIVE_HEADER_TIMEOUT_S)")
    p.add_argument("--keep-alive", dest="keep_alive_s", type=int, default=None,
                   help=f"idle seconds before a kept-alive connection is closed (default "
                        f"{d('keep_alive_s')}; FACELIVE_KEEP_ALIVE_S)")
    p.add_argument("--max-connections", type=int, default=None,
                   help=f"open connections per server process (default {d('max_connections')}; "
                        "FACELIVE_MAX_CONNECTIONS)")
    p.add_argument("--max-header-bytes", type=_size_arg, default=None,
                   help=f"largest request head (default {d('max_header_bytes')}; "
                        "FACELIVE_MAX_HEADER_BYTES)")
    p.add_argument("--trusted-proxies", default=None,
                   help="comma-separated addresses/networks of proxies whose X-Forwarded-For is "
                        "believed (default none; FACELIVE_TRUSTED_PROXIES)")
    p.add_argument("--api-keys-file", default=None,
                   help="file of SHA-256 digests of accepted API keys, one per line "
                        "(FACELIVE_API_KEYS_FILE; or the digests in FACELIVE_API_KEYS)")
    p.add_argument("--key-rate", type=float, default=None,
                   help="requests/s per API key (0: no limit; FACELIVE_KEY_RATE)")
    p.add_argument("--key-burst", type=int, default=None,
                   help=f"burst per API key (default {d('key_burst')}; FACELIVE_KEY_BURST)")
    p.add_argument("--address-rate", type=float, default=None,
                   help="requests/s per client address, IPv6 per /64 (0: no limit; "
                        "FACELIVE_ADDRESS_RATE)")
    p.add_argument("--address-burst", type=int, default=None,
                   help=f"burst per address (default {d('address_burst')}; "
                        "FACELIVE_ADDRESS_BURST)")
    p.add_argument("--no-openapi", dest="openapi", action="store_false", default=None,
                   help="do not serve /openapi.json (FACELIVE_OPENAPI=0)")
    p.add_argument("--tests", default=None,
                   help="comma-separated tests (default: quality,cnn,probe, fused; FACELIVE_TESTS)")
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
    g = p.add_argument_group("challenge sessions (issue 14; need API keys, or --demo)")
    g.add_argument("--no-sessions", dest="sessions", action="store_false", default=None,
                   help="do not serve the session API (FACELIVE_SESSIONS=0)")
    g.add_argument("--redis-url", default=None,
                   help="session store shared by workers and replicas, e.g. "
                        "redis://127.0.0.1:6379/0 (default: in memory; FACELIVE_REDIS_URL, "
                        "which keeps a password out of the process list)")
    g.add_argument("--signing-key", default=None, metavar="FILE",
                   help="Ed25519 key that signs the results, created (mode 0600) when absent "
                        "(default: a key in memory, lost at restart; FACELIVE_SIGNING_KEY)")
    g.add_argument("--demo", action="store_true", default=None,
                   help="the challenge demo at / with demo-only session endpoints that show "
                        "the verdict to the browser; never in production (FACELIVE_DEMO)")
    g.add_argument("--session-ttl", dest="session_ttl_s", type=float, default=None,
                   help=f"seconds a session stays open (default {d('session_ttl_s'):g}; "
                        "FACELIVE_SESSION_TTL_S)")
    g.add_argument("--result-ttl", dest="result_ttl_s", type=int, default=None,
                   help=f"lifetime of a signed result in seconds (default {d('result_ttl_s')}; "
                        "FACELIVE_RESULT_TTL_S)")
    g.add_argument("--sessions-per-key", type=int, default=None,
                   help=f"sessions an API key may create per window (default "
                        f"{d('sessions_per_key')}; 0: no limit; FACELIVE_SESSIONS_PER_KEY)")
    g.add_argument("--sessions-per-address", type=int, default=None,
                   help=f"sessions a client address may create per window (default "
                        f"{d('sessions_per_address')}; 0: no limit; "
                        "FACELIVE_SESSIONS_PER_ADDRESS)")
    g.add_argument("--session-window", dest="session_window_s", type=float, default=None,
                   help=f"window of the session counters in seconds (default "
                        f"{d('session_window_s'):g}; FACELIVE_SESSION_WINDOW_S)")
    g.add_argument("--session-max-frames", type=int, default=None,
                   help=f"most frames in one upload (default {d('session_max_frames')}; "
                        "FACELIVE_SESSION_MAX_FRAMES)")
    g.add_argument("--session-max-body-bytes", type=_size_arg, default=None,
                   help="largest frames upload (default 16 MiB; FACELIVE_SESSION_MAX_BODY_BYTES)")
    g.add_argument("--verify-timeout", dest="verify_timeout_s", type=float, default=None,
                   help=f"deadline of one clip's verification in seconds (default "
                        f"{d('verify_timeout_s'):g}; FACELIVE_VERIFY_TIMEOUT_S)")


def _size_arg(raw: str) -> int:
    try:
        return _parse_size(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {raw!r}") from None


def from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from parsed :func:`add_arguments` flags over ``FACELIVE_*`` variables."""
    return Settings.from_env(environ, **{k: getattr(args, k, None) for k in ENV})

