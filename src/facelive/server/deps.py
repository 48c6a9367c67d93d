"""FastAPI dependency providers: the app's :class:`ServiceState`, its settings, access control.

Routes declare ``state: State`` (``Annotated[ServiceState, Depends(get_state)]``) rather than
closing over the app, so each route module is a plain :class:`fastapi.APIRouter`.

Access control (:mod:`facelive.server.auth`): :func:`authorize` checks the API key when keys are
configured (401 ``unauthorized`` otherwise) and :func:`limit_rate` takes a token from the key's
and the client address's buckets (429 ``rate_limited`` with ``Retry-After``). Routes that count
refusals in their metrics call them in their body; others declare ``key: ApiKey``.

Metrics: a route declared with ``dependencies=[Depends(count_requests)]`` or
``[Depends(count_refusals)]`` has its outcome recorded by
:class:`~facelive.server.middleware.OutcomeMiddleware` (a route notes its decision with
:func:`~facelive.server.errors.outcome`; the error handler notes an error's code).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from facelive.server.auth import RateLimiter, client_bucket, parse_bearer
from facelive.server.errors import ApiError, outcome, retry_after
from facelive.server.settings import Settings
from facelive.server.state import ServiceState

__all__ = ["get_state", "get_settings", "State", "AppSettings", "authorize", "limit_rate",
           "require_api_key", "ApiKey", "client_address", "bearer_token", "session_key",
           "address_bucket", "count_requests", "count_refusals"]


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


def limit_rate(request: Request, state: ServiceState, key_id: str | None = None, *,
               address: bool = True) -> None:
    """Take one token from the client address's bucket (``address``) and from the key's bucket
    (when ``key_id``); :class:`ApiError` 429 ``rate_limited`` with ``Retry-After`` when one is
    empty. (The liveness route limits the address before checking the key, so guessing keys is
    rate-limited too, and the key after.)"""
    checks: list[tuple[RateLimiter | None, str, str]] = []
    if address:
        checks.append((state.address_limiter, client_bucket(client_address(request)),
                       "address"))
    if key_id is not None:
        checks.append((state.key_limiter, key_id, "API key"))
    for limiter, who, what in checks:
        if limiter is None or not limiter.enabled:
            continue
        wait = limiter.take(who)
        if wait > 0:
            raise ApiError(429, "rate_limited",
                           f"too many requests from this {what}; retry after {wait:.1f} s",
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
