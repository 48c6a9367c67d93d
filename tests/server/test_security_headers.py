"""What every response says about itself: security headers, no API docs pages, an optional
schema, no reflection of the Host header in redirects."""

from __future__ import annotations

from facelive.server.middleware import API_CSP, PAGE_CSP
from helpers import jpeg
from helpers.server import post_image, stub_client


def test_security_headers_on_every_response() -> None:
    with stub_client() as c:
        responses = {
            "/": c.get("/"), "/static/index.html": c.get("/static/index.html"),
            "/static/app.js": c.get("/static/app.js"), "/healthz": c.get("/healthz"),
            "/v1/info": c.get("/v1/info"), "/metrics": c.get("/metrics"),
            "/nope": c.get("/nope"), "/openapi.json": c.get("/openapi.json"),
            "liveness error": post_image(c, b"", "image/jpeg"), "liveness": post_image(c, jpeg()),
        }
    for name, r in responses.items():
        h = r.headers
        assert h["x-content-type-options"] == "nosniff", name
        assert h["x-frame-options"] == "DENY", name
        assert h["referrer-policy"] == "no-referrer", name
        assert "frame-ancestors 'none'" in h["content-security-policy"], name
        assert "server" not in h, name
    assert responses["/static/index.html"].headers["content-security-policy"] == PAGE_CSP
    assert responses["/static/index.html"].headers["permissions-policy"] == "camera=(self)"
    assert responses["/healthz"].headers["content-security-policy"] == API_CSP


def test_api_docs_are_off_and_schema_configurable() -> None:
    with stub_client() as c:
        assert c.get("/docs").status_code == 404 and c.get("/redoc").status_code == 404
        assert c.get("/openapi.json").status_code == 200
    with stub_client(openapi=False) as c:
        assert c.get("/openapi.json").status_code == 404


def test_no_host_header_reflection() -> None:
    with stub_client() as c:
        for path in ("/v1/info/", "/static", "/healthz/"):
            r = c.get(path, headers={"host": "evil.example"}, follow_redirects=False)
            assert "evil.example" not in r.headers.get("location", ""), path
            assert r.status_code == 404, path
