"""Client addresses: ``X-Forwarded-For`` believed only from trusted proxies, and what reaches
the access log printable."""

from __future__ import annotations

import ipaddress
import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from facelive.server.app import create_app
from facelive.server.middleware import printable, resolve_client
from facelive.server.settings import Settings
from helpers import StubPipeline

NETS = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128")]


@pytest.mark.parametrize("peer,xff,expected", [
    ("203.0.113.9", ["1.2.3.4"], "203.0.113.9"),  # untrusted peer: its header is ignored
    ("10.0.0.2", ["1.2.3.4"], "1.2.3.4"),
    ("10.0.0.2", ["6.6.6.6, 1.2.3.4, 10.0.0.7"], "1.2.3.4"),  # skip trusted hops from the right
    ("10.0.0.2", ["6.6.6.6", "1.2.3.4"], "1.2.3.4"),  # several headers: one list
    ("10.0.0.2", ["\x1b[31mevil, 1.2.3.4"], "1.2.3.4"),
    ("10.0.0.2", ["1.2.3.4, \x1b[31mevil"], "10.0.0.2"),  # junk on the right: the proxy
    ("10.0.0.2", ["1.2.3.4:5678"], "10.0.0.2"),
    ("::1", ["2001:db8::1"], "2001:db8::1"),
    ("::ffff:10.0.0.3", ["198.51.100.1"], "198.51.100.1"),
    ("testclient", ["1.2.3.4"], None),
])
def test_resolve_client(peer: str, xff: list[str], expected: str | None) -> None:
    assert resolve_client(peer, xff, NETS) == expected


def test_forwarded_for_is_believed_only_from_trusted_proxies(
        caplog: pytest.LogCaptureFixture) -> None:

    seen: list[Any] = []
    for trusted, expected in [((), None), (("0.0.0.0/0",), "1.2.3.4")]:
        app = create_app(Settings(trusted_proxies=trusted), pipeline=StubPipeline())

        @app.get("/whoami")
        async def whoami(request: Request) -> dict[str, Any]:
            seen.append(request.client.host if request.client else None)
            return {}

        # TestClient's peer is "testclient" (not an IP): forwarded only via a trusted /0
        with TestClient(app, client=("192.0.2.10", 1234)) as c, \
                caplog.at_level(logging.INFO, logger="facelive.access"):
            caplog.clear()
            c.get("/whoami", headers={"x-forwarded-for": "1.2.3.4",
                                      "x-forwarded-proto": "https"})
            c.get("/whoami", headers={"x-forwarded-for": "evil\x7f\x1b[0m"})
        assert seen[-2] == (expected or "192.0.2.10")
        assert seen[-1] == "192.0.2.10"
        text = caplog.text
        assert "\x1b" not in text and "evil" not in text
        assert ("1.2.3.4" in text) == (expected is not None)


def test_printable() -> None:
    assert printable("/a\nb\x1b[0m\u00e9") == "/a\\x0ab\\x1b[0m\\xe9"
    assert printable("x" * 500).endswith("...") and len(printable("x" * 500)) == 203
