"""The browser client: ``GET /`` (the page, with its security headers); ``/static`` is mounted
by the app factory from :data:`STATIC_DIR` (its files get the same Content-Security-Policy from
:class:`~facelive.server.middleware.HardeningMiddleware`). With ``--demo`` the page's ``<body>``
gets ``data-demo="on"``, which shows its screen-flash challenge demo (``static/demo.js``, on
``static/facelive.js``, the client a site's own page uses)."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from facelive.server.deps import AppSettings
from facelive.server.middleware import PAGE_HEADERS

__all__ = ["router", "STATIC_DIR", "PAGE_HEADERS"]

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index(settings: AppSettings) -> Response:
    if settings.demo:
        html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        return HTMLResponse(html.replace("<body>", '<body data-demo="on">', 1),
                            headers=PAGE_HEADERS)
    return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)
