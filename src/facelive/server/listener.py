"""The HTTP listener: the keyword arguments of ``uvicorn.run`` for the service's settings.

Only uvicorn's public options are used, with its h11 protocol (``http="h11"``):

- **connection cap**: ``limit_concurrency`` is ``max_connections + 1``. uvicorn answers a
  request with ``503 Service Unavailable`` (and closes that connection) when it arrives while
  ``limit_concurrency`` connections are open, counting the one it came on; so up to
  ``max_connections`` open connections are served, idle ones included, and every request beyond
  that is refused at once. uvicorn does not close the idle sockets themselves: that is the
  reverse proxy's work (below);
- **keep-alive**: ``timeout_keep_alive`` (``keep_alive_s``) closes a connection that stays idle
  after a response;
- **request head size**: ``h11_max_incomplete_event_size`` (``max_header_bytes``) for a head
  still arriving (400); :class:`~facelive.server.middleware.HardeningMiddleware` refuses a
  complete head over the same size (431).

uvicorn has no timeout for a request head (a socket that connects and sends nothing, or half a
request line, stays open until the client goes): that guarantee is the reverse proxy's, which
``docs/deployment.md`` requires in front of a public deployment (nginx ``client_header_timeout``),
together with the per-address connection limit. The body read timeout and the minimum upload
rate are the app's (:mod:`facelive.server.parsing`), since only the route knows when it wants
the body.

:func:`uvicorn_options` also turns off the ``Server`` header, uvicorn's proxy-header handling
and its access log (:class:`~facelive.server.middleware.HardeningMiddleware` does both, from the
configured trusted proxies only).
"""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from facelive.server.settings import Settings

__all__ = ["uvicorn_options", "log_config"]


def log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's logging configuration plus the ``facelive`` loggers (same handler and level)."""
    cfg = copy.deepcopy(LOGGING_CONFIG)
    level = settings.log_level.upper() if settings.log_level != "trace" else "DEBUG"
    cfg["loggers"]["facelive"] = {"handlers": ["default"], "level": level, "propagate": False}
    cfg["loggers"]["facelive.access"] = {"handlers": ["default"], "level": level,
                                         "propagate": False}
    return cfg


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run``/``uvicorn.Config`` for these settings (the same for
    one server process or several: every value is a plain option that uvicorn passes on)."""
    return dict(
        host=settings.host, port=settings.port, log_level=settings.log_level,
        log_config=log_config(settings), root_path=settings.root_path,
        http="h11", limit_concurrency=settings.max_connections + 1,
        proxy_headers=False, access_log=False,
        server_header=False, timeout_keep_alive=settings.keep_alive_s,
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_graceful_shutdown=10,
    )
