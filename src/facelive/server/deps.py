"""FastAPI dependency providers: the app's :class:`ServiceState` and its settings.

Routes declare ``state: State`` (``Annotated[ServiceState, Depends(get_state)]``) rather than
closing over the app, so each route module is a plain :class:`fastapi.APIRouter`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from facelive.server.settings import Settings
from facelive.server.state import ServiceState

__all__ = ["get_state", "get_settings", "State", "AppSettings"]


def get_state(request: Request) -> ServiceState:
    """The state of the app serving the request (``app.state.facelive``)."""
    return request.app.state.facelive


State = Annotated[ServiceState, Depends(get_state)]


def get_settings(state: State) -> Settings:
    """The app's settings."""
    return state.settings


AppSettings = Annotated[Settings, Depends(get_settings)]
