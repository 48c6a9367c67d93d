"""The app with the stand-in pipeline, in process (Starlette's test client)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from facelive.server.app import create_app
from facelive.server.settings import Settings
from helpers import StubPipeline


def stub_client(**settings: Any) -> TestClient:
    """A test client of the app with ``Settings(**settings)`` and a :class:`StubPipeline`."""
    return TestClient(create_app(Settings(**settings), pipeline=StubPipeline()))


def post_image(c: TestClient, body: bytes, ctype: str = "image/jpeg", **headers: str) -> Any:
    """``POST /v1/liveness`` with ``body`` as the raw image."""
    return c.post("/v1/liveness", content=body, headers={"content-type": ctype, **headers})


def error_code(r: Any) -> str:
    """The ``code`` of an error answer."""
    return r.json()["error"]["code"]
