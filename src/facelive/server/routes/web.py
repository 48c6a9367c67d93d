"""The browser client: ``GET /`` (the page, with its security headers); ``/static`` is mounted
by the app factory from :data:`STATIC_DIR` (its files get the same Content-Security-Policy from
:class:`~facelive.server.middleware.HardeningMiddleware`)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from facelive.server.middleware import PAGE_HEADERS

__all__ = ["router", "STATIC_DIR", "PAGE_HEADERS"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)
