"""The browser client: ``GET /`` (the page, with its security headers); ``/static`` is mounted
by the app factory from :data:`STATIC_DIR`."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

__all__ = ["router", "STATIC_DIR", "PAGE_HEADERS"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob: mediastream:; connect-src 'self'; frame-ancestors 'none'"
    ),
    "Permissions-Policy": "camera=(self)",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)
