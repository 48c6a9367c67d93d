"""The service's routes, one :class:`fastapi.APIRouter` per concern."""

from facelive.server.routes import demo, liveness, ops, sessions, web

__all__ = ["demo", "liveness", "ops", "sessions", "web"]
