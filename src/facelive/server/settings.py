"""Settings of the liveness web service: one typed model, from ``FACELIVE_*`` variables and flags.

Each setting is a field of :class:`Settings`: its type states the constraint and its
``Field(description=...)`` what it does. Each is read from a variable (:data:`ENV`); the
``facelive serve`` flags, their help and the settings table of ``docs/deployment.md`` are
generated from the fields (:mod:`facelive.commands.serve`). Keyword arguments (the flags) win
over the variables, which win over the defaults; an invalid value raises
:class:`~facelive.errors.FaceliveError` (code ``usage``) naming the variable it came from.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from contextvars import ContextVar
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StringConstraints,
    ValidationError,
)
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from facelive.errors import FaceliveError

__all__ = ["Settings", "ENV", "SIZE", "size"]

MB = 1024 * 1024
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("facelive_environ", default=None)


def size(v: Any) -> Any:
    """A count of bytes or pixels, as a number or with a binary suffix.

    Parameters
    ----------
    v : Any
        ``10485760``, ``"10MB"``/``"10M"`` (MiB), ``"512k"``/``"512KB"`` (KiB) or
        ``"16_000_000"``; a value that is not a string is returned as it is.

    Returns
    -------
    Any
        The count (an int) for a string.
    """
    if not isinstance(v, str):
        return v
    s = v.strip().lower().replace("_", "")
    for suffix, mult in (("mb", MB), ("m", MB), ("kb", 1024), ("k", 1024), ("b", 1)):
        if s.endswith(suffix):
            return int(float(s[: -len(suffix)]) * mult)
    return int(s)


def _network(v: str) -> str:
    ipaddress.ip_network(v, strict=False)  # ValueError: not an IP address or network
    return v


def _issuer_url(v: str) -> str:
    if not re.fullmatch(r"https?://[^\s/?#]+(/[^\s?#]*)?", v):
        raise ValueError(f"issuer must be an http(s) URL without query or fragment, got {v!r}")
    return v


SIZE = BeforeValidator(size)
"""The validator of :data:`Size` fields (found in their ``metadata``)."""
_LIST = BeforeValidator(lambda v: tuple(p.strip() for p in v.split(",") if p.strip())
                        if isinstance(v, str) else v)
Size = Annotated[PositiveInt, SIZE]
Names = Annotated[tuple[str, ...], _LIST]
Networks = Annotated[tuple[Annotated[str, AfterValidator(_network)], ...], _LIST]
Digests = Annotated[tuple[Annotated[str, StringConstraints(
    strip_whitespace=True, to_lower=True, pattern=r"^[0-9a-fA-F]{64}$")], ...], _LIST]


class Settings(BaseSettings):
    """Everything ``facelive serve`` can be told (defaults are production-safe)."""

    model_config = SettingsConfigDict(env_prefix="FACELIVE_", frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="Bind address.")
    port: Annotated[int, Field(ge=1, le=65535)] = Field(8000, description="TCP port.")
    workers: PositiveInt = Field(1, description="Server processes (uvicorn workers; each has "
                                 "its own pipeline processes).")
    pipeline_workers: NonNegativeInt | None = Field(None, description="Processes running the "
        "pipeline, each loading the models once (unset: usable cores / `workers`); `0`: "
        "threads of the server process (no kill on timeout).")
    max_body_bytes: Size = Field(10 * MB, description="Largest request body (`10MB`, `512k` or "
                                 "bytes; 413 `body_too_large`).")
    max_pixels: Size = Field(4_000_000, description="Largest width x height of an image (413 "
        "`image_too_large`); 4 MP covers a 2560x1440 camera frame and bounds one image's cost "
        "to about +150 MiB and 0.2 s.")
    max_aspect_ratio: Annotated[float, Field(ge=1)] = Field(4.0, description="Largest long side "
        "/ short side of an image (422 `image_aspect_ratio`).")
    max_concurrency: PositiveInt = Field(8, description="Requests processed at once per server "
        "process, counted once their body has arrived; one more: 503 `overloaded`.")
    retry_after_s: NonNegativeInt = Field(1, description="`Retry-After` seconds sent with 503.")
    job_timeout_s: PositiveFloat = Field(10.0, description="Hard deadline of one image in a "
        "pipeline process; past it the process is killed and replaced (503 `timeout`).")
    worker_max_rss_mb: PositiveInt = Field(1024, description="A pipeline process above this "
        "resident memory is killed (during a job: 503 `memory_limit`) or recycled (after one).")
    upload_buffer_bytes: Size = Field(128 * MB, description="Bytes of request bodies being "
        "received at once, across requests (503 `overloaded` past it).")
    body_timeout_s: PositiveFloat = Field(20.0, description="Time to receive a request body, "
        "from the end of its head (408 `body_timeout`).")
    body_min_rate: NonNegativeInt = Field(1024, description="Slowest accepted upload, bytes/s "
        "averaged, enforced after 5 s (408 `body_timeout`); `0`: off.")
    header_timeout_s: PositiveFloat = Field(10.0, description="Accepted, not enforced: uvicorn "
        "has no request-head timeout, the reverse proxy's is (nginx `client_header_timeout`).")
    keep_alive_s: PositiveInt = Field(5, description="Idle seconds before a kept-alive "
                                      "connection is closed.")
    max_connections: PositiveInt = Field(256, description="Open connections per server process; "
        "one more is answered 503 and closed at once.")
    max_header_bytes: Size = Field(16384, description="Largest request head (431 "
        "`header_too_large`, or 400 while it is still arriving).")
    trusted_proxies: Networks = Field((), description="Addresses or CIDR networks of reverse "
        "proxies whose `X-Forwarded-For`/`-Proto` are believed, comma-separated.")
    api_keys: Digests = Field((), description="SHA-256 hex digests of the accepted API keys, "
        "comma-separated (`python -m facelive.server.auth --new` makes a key and its digest).")
    api_keys_file: str | None = Field(None, description="File of API key digests, one per line "
        "(`#` comments; `sha256sum` output accepted).")
    operator_keys: Digests = Field((), description="SHA-256 hex digests of the operator keys, "
        "comma-separated: only they read `/metrics` and `/v1/info` (a tenant API key gets 403); "
        "with none, those two answer 403 whenever API keys are configured.")
    operator_keys_file: str | None = Field(None, description="File of operator key digests, one "
        "per line (like `--api-keys-file`); an operator key may not also be an API key.")
    key_rate: NonNegativeFloat = Field(0.0, description="Requests/s per API key (tenant), "
        "counted as `key_burst` per `key_burst / key_rate` s (fixed window; in Redis with "
        "`redis_url`, shared by every process and replica); over it 429 `rate_limited`; `0`: no "
        "limit.")
    key_burst: PositiveInt = Field(20, description="Most requests of one API key at once (the "
        "count of its window).")
    address_rate: NonNegativeFloat = Field(0.0, description="Requests/s per client address "
        "(IPv6: per /64), checked before the API key and counted like `key_rate`; `0`: no "
        "limit.")
    address_burst: PositiveInt = Field(20, description="Most requests of one client address at "
        "once (the count of its window).")
    max_tracked_clients: PositiveInt = Field(10000, description="Rate-limit counters kept in "
        "memory per limit without `redis_url` (the least recently used are forgotten).")
    rate_limit_timeout_s: PositiveFloat = Field(1.0, description="Longest wait for the Redis "
        "rate-limit counters; past it, or when Redis is down, 503 `store_unavailable` with "
        "`Retry-After` (fail closed).")
    openapi: bool = Field(True, description="Serve the API schema at `/openapi.json` (`/docs` "
                          "and `/redoc` are never served).")
    tests: Annotated[Names | None, Field(min_length=1)] = Field(None, description="Liveness "
        "tests, comma-separated (unset: cnn,probe,minifas, fused; quality and face3d only when "
        "named).")
    threshold: Annotated[float, Field(ge=0, le=1)] | None = Field(None, description="Decision "
        "threshold override (unset: the model's).")
    no_fusion: bool = Field(False, description="The all-tests-must-say-live rule instead of the "
                            "fusion.")
    missing: Literal["abstain", "available"] | None = Field(None, description="Fusion policy "
        "for a missing score (unset: the model's).")
    budget_ms: PositiveFloat = Field(5000.0, description="Per-test time budget in ms (a test "
        "over it is `timeout` and its pipeline process is replaced).")
    allow_missing_models: bool = Field(False, description="Start even when the models cannot "
        "be loaded (`/readyz` then answers 503 with the reason).")
    cors_origins: Names = Field((), description="Origins allowed to call the API from other "
        "sites, comma-separated.")
    root_path: str = Field("", description="Path prefix when served under a proxy sub-path.")
    log_level: Literal["critical", "error", "warning", "info", "debug", "trace"] = Field(
        "info", description="Log level (uvicorn and the `facelive` loggers).")
    sessions: bool = Field(True, description="Serve the challenge session API (`/v1/sessions`, "
        "`/.well-known/jwks.json`); it needs API keys (or `demo`), else it answers 503 "
        "`sessions_disabled`.")
    redis_url: Annotated[str, Field(pattern=r"^(redis|rediss|unix)://")] | None = Field(
        None, description="Session store and rate-limit counters shared by server processes "
        "and replicas (`redis://`, `rediss://` or `unix://`; unset: in memory); prefer the "
        "variable, which keeps a password out of the process list; an unreachable Redis stops "
        "the start.")
    signing_key: str | None = Field(None, description="Ed25519 key file (PEM or JWK) signing "
        "the results, created (mode 0600) when absent; unset: a key in memory (tokens cannot "
        "be verified after a restart).")
    issuer: Annotated[str, AfterValidator(_issuer_url)] | None = Field(None,
        description="The `iss` claim of the result tokens: this server's public base URL "
        "(`https://liveness.example.org`), which relying sites check; unset: `facelive` (a "
        "warning at start-up when API keys are configured).")
    demo: bool = Field(False, description="The challenge demo at `/` and the `/demo` endpoints "
        "(sessions without an API key, verdict shown to the browser); never in production.")
    session_ttl_s: PositiveFloat = Field(300.0, description="Time from a session's creation to "
        "fetch the challenge and upload (then 410 `session_expired`).")
    result_ttl_s: PositiveInt = Field(600, description="Lifetime of a signed result in "
        "seconds (its `exp` - `iat`): the site's backend fetches and checks it right after the "
        "session.")
    sessions_per_key: NonNegativeInt = Field(600, description="Sessions one API key (tenant) "
        "may create per session window, counted with the rate limits (in Redis with "
        "`redis_url`: shared by every process and replica); `0`: no limit; over it 429 "
        "`too_many_sessions` with `Retry-After`.")
    sessions_per_address: NonNegativeInt = Field(120, description="Sessions one client address "
        "(IPv6: /64) may create per session window at `/demo/sessions` (a site's "
        "`/v1/sessions` calls come from its backend, so they count per API key only); `0`: no "
        "limit.")
    session_window_s: PositiveFloat = Field(60.0, description="The fixed window of the two "
        "session quotas, in seconds (rounded up to whole seconds).")
    key_max_sessions: PositiveInt = Field(1000, description="Sessions one API key (tenant) may "
        "hold in the session store at once (live ones, and expired ones kept an hour to answer "
        "410, which make room first), and twice as many unexpired nonces; over it 429 "
        "`quota_exceeded` with `Retry-After`, while other keys go on.")
    key_max_frame_hashes: PositiveInt = Field(150_000, description="Frame hashes (kept "
        "`result_ttl_s` to spot frames re-sent into another session) one API key may hold in "
        "the store; past it that key's oldest are forgotten, never another key's.")
    session_max_frames: PositiveInt = Field(150, description="Most frames in one upload (413 "
                                            "`too_many_frames`, counted while parsing).")
    session_max_body_bytes: Size = Field(8 * MB, description="Largest frames upload (413 "
        "`body_too_large`); a 6.5 s clip at 10 fps and 480 px is about 2-3 MB, 150 frames of "
        "640 x 480 JPEG about 6-8 MB; the server process holds each admitted clip until its "
        "verification starts.")
    session_frame_max_pixels: Size = Field(307_200, description="Largest width x height of "
        "one frame as the verifier decodes it (640 x 480; `facelive.js` sends at most 480 px "
        "on the long side): a larger JPEG (up to 64 times this) is decoded at 1/2, 1/4 or 1/8 "
        "of its size, never in full; any other larger frame makes the result `unknown`, reason "
        "`unreadable frame`.")
    verify_timeout_s: PositiveFloat = Field(30.0, description="Hard deadline of one clip's "
        "verification in a pipeline process (killed and replaced past it; the result is a "
        "signed `unknown`, reason `verification timed out`); about 1-2 s is normal.")
    verify_budget_s: PositiveFloat = Field(10.0, description="Wall-clock budget of one clip's "
        "verification: past it the verifier stops where it is and the result is a signed "
        "`unknown`, reason `verification stopped at its N s budget` (nothing is killed).")
    verify_slots: PositiveInt = Field(1, description="Clips verified at once per server "
        "process, each in a pipeline process of its own (started beside the `pipeline_workers` "
        "ones, at a lower CPU priority) or, with `pipeline_workers=0`, a thread: clips never "
        "take `/v1/liveness`'s processes or `max_concurrency` slots.")
    verify_queue: NonNegativeInt = Field(8, description="Clips waiting for a verification slot "
        "per server process; one more upload is refused before it uses the session (503 "
        "`verify_busy` with `Retry-After`: the same frames may be sent again).")
    verify_per_key: NonNegativeInt = Field(4, description="Clips of one API key waiting or "
        "being verified at once per server process; one more upload: 429 "
        "`too_many_verifications` with `Retry-After`; `0`: no cap (a single-tenant service may "
        "set `verify_slots` + `verify_queue`).")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise FaceliveError(_describe(exc, given=values), code="usage") from None

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        **_: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments over the variables (no ``.env`` file, no secrets directory)."""
        return init_settings, InitSettingsSource(settings_cls, _variables(_ENVIRON.get()))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from the ``FACELIVE_*`` variables of ``environ`` (default ``os.environ``)
        under ``overrides`` (those that are not None)."""
        token = _ENVIRON.set(environ)
        try:
            return cls(**{k: v for k, v in overrides.items() if v is not None})
        finally:
            _ENVIRON.reset(token)

    def to_env(self) -> dict[str, str]:
        """The ``FACELIVE_*`` variables that reproduce these settings (for worker processes)."""
        shown = {tuple: ",".join, bool: lambda v: "1" if v else "0"}
        return {ENV[k]: shown.get(type(v), str)(v) for k, v in self if v is not None}

    def with_(self, **changes: Any) -> Settings:
        """A validated copy with ``changes`` (the environment is not read again)."""
        return type(self).from_env({}, **{**self.model_dump(), **changes})


ENV = {name: Settings.model_config["env_prefix"] + name.upper() for name in Settings.model_fields}
"""Setting name -> environment variable."""


def _variables(environ: Mapping[str, str] | None) -> dict[str, str]:
    """The settings in ``FACELIVE_*`` variables (any case; stripped; a blank one is unset)."""
    env = {k.upper(): v.strip() for k, v in (os.environ if environ is None else environ).items()}
    return {name: env[var] for name, var in ENV.items() if env.get(var)}


def _describe(exc: ValidationError, given: Mapping[str, Any]) -> str:
    """One message for every problem; a value from the environment names its variable."""
    from_env, other = [], []
    for err in exc.errors():
        name, ctx = str(err["loc"][0]) if err["loc"] else "settings", err.get("ctx") or {}
        msg = str(ctx["error"] if err["type"] == "value_error" and "error" in ctx else err["msg"])
        msg = re.sub(r"^(Input|Value|String) should", f"{name} must", msg)
        msg = msg if msg.startswith(name) else f"{name}: {msg}"
        if name in ENV and name not in given:
            from_env.append(f"invalid {ENV[name]}={err['input']!r}: {msg}")
        else:
            other.append(msg)
    return "; ".join(from_env + (["invalid settings: " + "; ".join(other)] if other else []))
