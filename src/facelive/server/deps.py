"""FastAPI dependency providers: the app's :class:`ServiceState`, its settings, access control.

Routes declare ``state: State`` (``Annotated[ServiceState, Depends(get_state)]``) rather than
closing over the app, so each route module is a plain :class:`fastapi.APIRouter`.

Access control (:mod:`facelive.server.auth`): :func:`authorize` checks the API key when keys are
configured (401 ``unauthorized`` otherwise), :func:`require_operator` the operator key of
``/metrics`` and ``/v1/info``. Limits (:mod:`facelive.server.ratelimit`, shared by every process
and replica through Redis): :func:`limit_rate` counts a request against the client address's and
the key's limits (429 ``rate_limited`` with ``Retry-After``), :func:`limit_sessions` a session
creation against the key's (or, for the demo, the address's) session quota (429
``too_many_sessions``); an unreachable Redis is 503 ``store_unavailable`` with ``Retry-After``.
Routes that count refusals in their metrics call them in their body; others declare
``key: ApiKey``.

Metrics: a route declared with ``dependencies=[Depends(count_requests)]`` or
``[Depends(count_refusals)]`` has its outcome recorded by
:class:`~facelive.server.middleware.OutcomeMiddleware` (a route notes its decision with
:func:`~facelive.server.errors.outcome`; the error handler notes an error's code).
"""

from __future__ import annotations

import logging
import math
from typing import Annotated

from fastapi import Depends, Request

from facelive.server.auth import client_bucket, parse_bearer
from facelive.server.errors import ApiError, outcome, retry_after
from facelive.server.ratelimit import LimitStoreUnavailable
from facelive.server.settings import Settings
from facelive.server.state import ServiceState

__all__ = ["get_state", "get_settings", "State", "AppSettings", "authorize", "limit_rate",
           "limit_sessions",
           "require_api_key", "ApiKey", "client_address", "bearer_token", "session_key",
           "address_bucket", "count_requests", "count_refusals", "require_operator",
           "OperatorKey"]

log = logging.getLogger("facelive.server")


def get_state(request: Request) -> ServiceState:
    """The state of the app serving the request (``app.state.facelive``)."""
    return request.app.state.facelive


State = Annotated[ServiceState, Depends(get_state)]


def get_settings(state: State) -> Settings:
    """The app's settings."""
    return state.settings


AppSettings = Annotated[Settings, Depends(get_settings)]


def count_requests(request: Request) -> None:
    """Route dependency: the request's outcome (decision or error code) and latency go to the
    request metrics (``facelive_requests``, ``facelive_request_duration_seconds``)."""
    outcome(request).counted = "requests"


def count_refusals(request: Request) -> None:
    """Route dependency: an :class:`ApiError` answer counts a session event ``refused_<code>``
    (``facelive_session_events``)."""
    outcome(request).counted = "sessions"


def client_address(request: Request) -> str | None:
    """The client's address: the peer, or the one a trusted proxy forwarded (already validated
    by :class:`facelive.server.middleware.HardeningMiddleware`)."""
    client = request.scope.get("client")
    return client[0] if client else None


def authorize(request: Request, state: ServiceState) -> str | None:
    """The API key's id (first 12 hex digits of its digest) when keys are configured and the
    request's ``Authorization: Bearer`` key is one of them; None when no keys are configured;
    otherwise :class:`ApiError` 401 ``unauthorized``."""
    keys = state.api_keys
    if not keys.enabled:
        return None
    key_id = keys.check(parse_bearer(request.headers.get("authorization")))
    if key_id is None:
        raise ApiError(401, "unauthorized", "a valid API key is required "
                       "(header: Authorization: Bearer <key>)",
                       {"WWW-Authenticate": 'Bearer realm="facelive"'})
    return key_id


async def _hit(state: ServiceState, rule: str, who: str) -> float:
    """The wait before client ``who`` may pass rule ``rule`` (0.0: now); 503
    ``store_unavailable`` with ``Retry-After`` when the Redis counters cannot be reached (fail
    closed)."""
    try:
        return await state.rate_limits.hit(rule, who)
    except LimitStoreUnavailable as exc:
        log.error("rate-limit store unavailable: %s", exc)
        raise ApiError(503, "store_unavailable", "the rate-limit store is unavailable",
                       retry_after(state.settings.retry_after_s)) from None


async def limit_rate(request: Request, state: ServiceState, key_id: str | None = None, *,
                     address: bool = True) -> None:
    """Count the request against the client address's limit (``address``) and the key's (when
    ``key_id``); :class:`ApiError` 429 ``rate_limited`` with ``Retry-After`` when one is spent.
    (The liveness route limits the address before checking the key, so guessing keys is
    rate-limited too, and the key after.)"""
    checks: list[tuple[str, str, str]] = []
    if address:
        checks.append(("address", client_bucket(client_address(request)), "address"))
    if key_id is not None:
        checks.append(("key", key_id, "API key"))
    for rule, who, what in checks:
        wait = await _hit(state, rule, who)
        if wait > 0:
            raise ApiError(429, "rate_limited",
                           f"too many requests from this {what}; retry after {wait:.1f} s",
                           retry_after(wait))


async def limit_sessions(request: Request, state: ServiceState, key_id: str, *,
                         address: bool = False) -> None:
    """Count a session creation against the API key's quota (``sessions_per_key`` per
    ``session_window_s``) and, with ``address`` (the demo, whose browsers create sessions
    themselves), the client address's (``sessions_per_address``); 429 ``too_many_sessions``
    with ``Retry-After`` over one. A site's backend creates its sessions from one address for
    all its users, so its quota is the key's."""
    checks = [("sessions_per_address", address_bucket(request), "client address")] \
        if address else []
    checks.append(("sessions_per_key", key_id, "API key"))
    for name, who, what in checks:
        wait = await _hit(state, name, who)
        if wait > 0:
            rule = state.rate_limits.rule(name)
            raise ApiError(429, "too_many_sessions",
                           f"more than {rule.amount} sessions from this {what} in "
                           f"{rule.window_s} s; retry after {math.ceil(wait)} s",
                           retry_after(wait))


def require_api_key(request: Request, state: State) -> str | None:
    """Dependency: :func:`authorize` (the key's id, or None when no keys are configured)."""
    return authorize(request, state)


ApiKey = Annotated[str | None, Depends(require_api_key)]


def require_operator(request: Request, state: State) -> str | None:
    """Dependency of ``/metrics`` and ``/v1/info``: the operator key's id.

    With operator keys configured, the ``Authorization: Bearer`` credential must be one of
    them: a tenant's API key is 403 ``forbidden``, anything else 401 ``unauthorized``. With
    none configured, the two are open only while no API key is configured either (a service
    open to everyone; None is returned); otherwise they are closed to everyone (403
    ``forbidden``), so that no tenant reads what every tenant's traffic adds up to.
    """
    token = parse_bearer(request.headers.get("authorization"))
    operators = state.operator_keys
    if not operators.enabled:
        if not state.api_keys.enabled:
            return None
        raise ApiError(403, "forbidden", "no operator key is configured "
                       "(FACELIVE_OPERATOR_KEYS or --operator-keys-file): this endpoint is "
                       "closed")
    key_id = operators.check(token)
    if key_id is not None:
        return key_id
    if state.api_keys.check(token) is not None:
        raise ApiError(403, "forbidden", "this endpoint needs an operator key, not an API key")
    raise ApiError(401, "unauthorized", "an operator key is required "
                   "(header: Authorization: Bearer <key>)",
                   {"WWW-Authenticate": 'Bearer realm="facelive-operator"'})


OperatorKey = Annotated[str | None, Depends(require_operator)]


def bearer_token(request: Request) -> str | None:
    """The ``Authorization: Bearer`` credential (a session's client token), or None."""
    return parse_bearer(request.headers.get("authorization"))


def address_bucket(request: Request) -> str:
    """The client address's rate-limit identity (IPv4 address, IPv6 /64)."""
    return client_bucket(client_address(request))


def session_key(request: Request, state: ServiceState) -> str:
    """The API key's id for the session API's backend endpoints: 503 ``sessions_disabled``
    when the session API is off (no key configured), else :func:`authorize` (401)."""
    state.require_sessions()
    if not state.api_keys.enabled:
        raise ApiError(503, "sessions_disabled", "the session API's backend endpoints need API "
                       "keys: none is configured (FACELIVE_API_KEYS or --api-keys-file)")
    key_id = authorize(request, state)
    assert key_id is not None
    return key_id
