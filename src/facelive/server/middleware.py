"""The service's ASGI middleware: client address, request framing, security headers, access log;
outcomes and metrics.

:class:`OutcomeMiddleware` wraps the routes (inside CORS): it answers an exception that no
handler took with 500 ``internal_error`` (logged; the server keeps serving) and, when the request
ends, records its :class:`~facelive.server.errors.Outcome` in the metrics.

:class:`HardeningMiddleware` wraps the whole app (every route, static file and error):

- **Client address.** ``X-Forwarded-For`` and ``X-Forwarded-Proto`` are believed only when the
  peer is one of ``settings.trusted_proxies`` (addresses or CIDR networks; none by default, so
  a client cannot choose its address). The forwarded chain is read from the right, skipping
  trusted proxies; each entry must parse as an IP address (:mod:`ipaddress`), so the address
  the app sees, rate-limits and logs is always a valid IP, never the raw header.
- **Request framing.** A request with both ``Transfer-Encoding`` and ``Content-Length`` (the
  request-smuggling shape; h11 accepts it and lets chunked win) is refused with 400
  ``invalid_request``, and one whose head (target and headers) is over ``max_header_bytes``
  with 431 ``header_too_large`` (h11's own limit only applies to a head still incomplete), both
  with the connection closed.
- **Security headers** on every response unless the route set its own: ``Content-Security-
  Policy`` (the web client's policy for ``/`` and ``/static/``, ``default-src 'none'`` for the
  API), ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` (with the CSP's
  ``frame-ancestors 'none'``) and ``Referrer-Policy: no-referrer``. A ``Location`` header never
  carries a host (redirects are path-only, so the Host header is never reflected).
- **Access log** (logger ``facelive.access``, one line per request): the validated client
  address, method, path (control and non-ASCII characters escaped, at most 200 characters, no
  query string), status and time. uvicorn's own access log, which prints the raw path, is off.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

from facelive.server.errors import Outcome, internal_error
from facelive.server.metrics import Metrics
from facelive.server.settings import Settings

__all__ = ["HardeningMiddleware", "OutcomeMiddleware", "PAGE_CSP", "PAGE_HEADERS", "API_CSP",
           "printable", "resolve_client"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

access_log = logging.getLogger("facelive.access")
log = logging.getLogger("facelive.server")

PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob: mediastream:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'self'"
)
"""The web client's policy (``/`` and ``/static/``): its own scripts and styles only, no CDN."""
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
"""Every other response (JSON, metrics): nothing may be loaded or framed."""

PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": PAGE_CSP,
    "Permissions-Policy": "camera=(self)",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
"""Headers of the web client's page (``GET /``)."""

_COMMON = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
           (b"referrer-policy", b"no-referrer")]
_PAGE = [(b"content-security-policy", PAGE_CSP.encode()),
         (b"permissions-policy", b"camera=(self)")]
_API = [(b"content-security-policy", API_CSP.encode())]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def printable(text: str, limit: int = 200) -> str:
    """``text`` safe for a log line: printable ASCII kept, everything else escaped
    (``\\n`` -> ``\\x0a``), cut at ``limit`` characters."""
    out = []
    for ch in text[:limit]:
        o = ord(ch)
        if 0x20 <= o < 0x7F and ch != "\\":
            out.append(ch)
        elif o < 0x100:
            out.append(f"\\x{o:02x}")
        else:
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
    return "".join(out) + ("..." if len(text) > limit else "")


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(value.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: list[Network]) -> bool:
    return any(ip.version == n.version and ip in n for n in nets)


def resolve_client(peer: str | None, forwarded_for: list[str],
                   trusted: list[Network]) -> str | None:
    """The client's address: ``peer`` (validated), or, when ``peer`` is a trusted proxy, the
    rightmost ``X-Forwarded-For`` entry that is not itself a trusted proxy. Entries that are not
    IP addresses end the walk (the last valid hop is kept). None when ``peer`` is not an IP."""
    ip = _ip(peer) if peer else None
    if ip is None:
        return None
    if not forwarded_for or not _trusted(ip, trusted):
        return str(ip)
    hops = [h for value in forwarded_for for h in value.split(",")]
    for hop in reversed(hops):
        hop_ip = _ip(hop)
        if hop_ip is None:
            break
        ip = hop_ip
        if not _trusted(hop_ip, trusted):
            break
    return str(ip)


def _path_only(location: bytes) -> bytes:
    """A ``Location`` value without scheme and host (``/path?query``)."""
    parts = urlsplit(location.decode("latin-1"))
    if not parts.scheme and not parts.netloc and not location.startswith(b"//"):
        return location
    path = "/" + parts.path.lstrip("/")
    return (path + (f"?{parts.query}" if parts.query else "")).encode("latin-1")


class HardeningMiddleware:
    """Pure ASGI middleware (no body buffering); see the module docstring."""

    def __init__(self, app: Callable[..., Awaitable[None]], settings: Settings) -> None:
        self.app = app
        self.trusted: list[Network] = [ipaddress.ip_network(p, strict=False)
                                       for p in settings.trusted_proxies]
        self.root_path = settings.root_path
        self.max_head = settings.max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        forwarded: list[str] = []
        proto: str | None = None
        te = cl = False
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        for name, value in scope.get("headers", ()):
            head += len(name) + len(value) + 4
            if name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").strip().lower()
            elif name == b"transfer-encoding":
                te = True
            elif name == b"content-length":
                cl = True
        peer = scope.get("client")
        client = resolve_client(peer[0] if peer else None, forwarded, self.trusted)
        if client is not None and peer is not None and client != peer[0]:
            scope["client"] = (client, 0)
        peer_ip = _ip(peer[0]) if peer else None
        if proto in ("http", "https") and peer_ip is not None and _trusted(peer_ip, self.trusted):
            scope["scheme"] = proto
        path = scope.get("path", "")
        app_path = path[len(self.root_path):] if self.root_path and path.startswith(
            self.root_path) else path
        extra = _PAGE if app_path == "/" or app_path.startswith("/static/") else _API
        status = 0

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                have = {k.lower() for k, _ in headers}
                for k, v in (*_COMMON, *extra):
                    if k not in have:
                        headers.append((k, v))
                headers = [(k, _path_only(v)) if k.lower() == b"location" else (k, v)
                           for k, v in headers]
                message["headers"] = headers
            await send(message)

        try:
            if te and cl:
                await _refuse(send_with_headers, 400, "invalid_request", "a request may not "
                              "have both Transfer-Encoding and Content-Length")
            elif head > self.max_head:
                await _refuse(send_with_headers, 431, "header_too_large",
                              f"the request head is over {self.max_head} bytes")
            else:
                await self.app(scope, receive, send_with_headers)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info('%s - "%s %s HTTP/%s" %d %.1f ms', client or "-",
                                printable(scope.get("method", "?"), 16), printable(path),
                                printable(scope.get("http_version", "?"), 8), status,
                                (time.perf_counter() - t0) * 1e3)


class OutcomeMiddleware:
    """Pure ASGI middleware: the last answer to unexpected errors, and the outcome metrics.

    Each HTTP request gets an :class:`~facelive.server.errors.Outcome` in its state (the route's
    ``request.state.outcome``). An exception that reaches this middleware before the response
    has started is logged and answered 500 ``internal_error``. When the request ends, its
    outcome is recorded: ``counted == "requests"`` (``POST /v1/liveness``):
    ``facelive_requests`` and ``facelive_request_duration_seconds`` by outcome (the decision, or
    the error code); ``counted == "sessions"`` (the session endpoints): an :class:`ApiError`
    answer counts ``facelive_session_events`` ``refused_<code>``.

    Parameters
    ----------
    app : ASGI app
        The app it wraps.
    metrics : Metrics
        The app's metrics.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        record = Outcome()
        scope.setdefault("state", {})["outcome"] = record
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:  # whatever a route raises is a 500 answer, not a dropped request
            if started:
                raise
            log.error("unexpected error on %s: %s", printable(scope.get("path", "")),
                      type(exc).__name__, exc_info=exc)
            record.value = "internal_error"
            await internal_error()(scope, receive, send)
        finally:
            if record.counted == "requests":
                self.metrics.observe_request(record.value, time.perf_counter() - t0)
            elif record.counted == "sessions" and record.refused:
                self.metrics.sessions.labels(f"refused_{record.value}").inc()


async def _refuse(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
