"""The service's routes, one :class:`fastapi.APIRouter` per concern."""

from facelive.server.routes import liveness, ops, web

__all__ = ["liveness", "ops", "web"]
