"""The HTTP listener: uvicorn's options and an h11 protocol with the limits uvicorn lacks.

uvicorn (0.54, h11) has a keep-alive timeout (``timeout_keep_alive``) and a header size limit
(``h11_max_incomplete_event_size``) but no header read timeout (a socket that connects and
sends nothing, or half a request line, stays open for ever) and no cap on open connections
(``limit_concurrency`` answers 503 to *requests* over the limit but keeps every idle socket).
:class:`GuardedH11Protocol` adds both:

- **connection cap**: a connection beyond ``max_connections`` (per server process) is answered
  ``503`` and closed as soon as it is accepted;
- **header timeout**: a connection must deliver a complete request head within
  ``header_timeout_s`` of being opened, and again after each response (a kept-alive connection
  that stays silent is closed earlier by uvicorn's keep-alive timeout); otherwise it is answered
  ``408`` and closed. The same timer closes a connection whose request body the app did not
  read (a refused upload) that long after the response.

The body read timeout and the minimum upload rate are the app's (:mod:`facelive.server.parsing`),
since only the route knows when it wants the body.

The subclass uses uvicorn's ``H11Protocol`` internals (``cycle``, ``conn``, ``transport``,
``connections``, ``on_response_complete``), which is why uvicorn and h11 are pinned; the tests
in tests/test_hardening_server.py exercise it against a real server.

:func:`uvicorn_options` gives the keyword arguments of ``uvicorn.run``/``uvicorn.Config`` for the
settings (this protocol, keep-alive, header size, no ``Server`` header, no uvicorn proxy-header
handling and no uvicorn access log: :class:`~facelive.server.middleware.HardeningMiddleware`
does both, from the configured trusted proxies only).
"""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import h11
from uvicorn.config import LOGGING_CONFIG
from uvicorn.protocols.http.h11_impl import H11Protocol

from facelive.server.settings import Settings

__all__ = ["GuardedH11Protocol", "uvicorn_options", "log_config"]



def _raw_response(status: str, code: str, message: str, extra: bytes = b"") -> bytes:
    body = f'{{"error":{{"code":"{code}","message":"{message}"}}}}'.encode()
    return (f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n".encode() + extra
            + f"connection: close\r\ncontent-length: {len(body)}\r\n\r\n".encode() + body)


_CLOSE_503 = _raw_response("503 Service Unavailable", "overloaded",
                           "too many open connections; retry later", b"retry-after: 1\r\n")
_CLOSE_408 = _raw_response("408 Request Timeout", "header_timeout",
                           "the request head did not arrive in time")


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap and a request-head timeout (see the module
    docstring). The limits come from the class's ``bound`` settings (:func:`make_protocol`) or,
    unbound (several uvicorn worker processes, which import the class by name), from the
    ``FACELIVE_*`` environment."""

    bound: Settings | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = type(self).bound or _env_settings()
        self._head_timer: asyncio.TimerHandle | None = None
        self._armed_cycle: object = None

    # -- connection cap and first timer --------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.settings.max_connections:
            self.connections.discard(self)
            transport.write(_CLOSE_503)
            transport.close()
            return
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    # -- request-head timer --------------------------------------------------------------------
    def _arm(self) -> None:
        self._disarm()
        self._armed_cycle = self.cycle
        self._head_timer = self.loop.call_later(self.settings.header_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_arrived(self) -> None:
        """Cancel the timer once a new request head has been parsed (a new cycle exists)."""
        if self._head_timer is not None and self.cycle is not self._armed_cycle:
            self._disarm()

    def _expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing() or self.cycle is not self._armed_cycle:
            return  # closed already, or a request head arrived: the app's limits apply
        if self.conn.their_state is h11.IDLE and self.conn.our_state is h11.IDLE:
            self.transport.write(_CLOSE_408)  # nothing else is in flight on this connection
        self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._head_arrived()

    def on_response_complete(self) -> None:
        if self.transport.is_closing():
            super().on_response_complete()
            return
        # From the end of a response: the next request head (or the rest of an unread body)
        # must come within the header timeout. Pipelined requests already buffered are handled
        # by super() below and cancel the timer at once.
        self._arm()
        super().on_response_complete()
        self._head_arrived()


_ENV_SETTINGS: list[Settings] = []


def _env_settings() -> Settings:
    if not _ENV_SETTINGS:
        _ENV_SETTINGS.append(Settings())
    return _ENV_SETTINGS[0]


def make_protocol(settings: Settings) -> type[GuardedH11Protocol]:
    """A :class:`GuardedH11Protocol` subclass bound to ``settings`` (uvicorn instantiates the
    class itself, so the limits travel as a class attribute)."""
    return type("FaceliveH11Protocol", (GuardedH11Protocol,), {"bound": settings})


def log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's logging configuration plus the ``facelive`` loggers (same handler and level)."""
    cfg = copy.deepcopy(LOGGING_CONFIG)
    level = settings.log_level.upper() if settings.log_level != "trace" else "DEBUG"
    cfg["loggers"]["facelive"] = {"handlers": ["default"], "level": level, "propagate": False}
    cfg["loggers"]["facelive.access"] = {"handlers": ["default"], "level": level,
                                         "propagate": False}
    return cfg


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run`` for these settings. With several server processes
    (``workers`` > 1) the protocol class is the unbound one, which reads the ``FACELIVE_*``
    environment in each process (a bound class cannot be pickled for them)."""
    return dict(
        host=settings.host, port=settings.port, log_level=settings.log_level,
        log_config=log_config(settings), root_path=settings.root_path,
        http=make_protocol(settings) if settings.workers == 1 else GuardedH11Protocol,
        proxy_headers=False, access_log=False,
        server_header=False, timeout_keep_alive=settings.keep_alive_s,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_graceful_shutdown=10,
    )
