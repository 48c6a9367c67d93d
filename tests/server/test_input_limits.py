"""Service hardening (issue 12), in process: image geometry, JSON nesting, body timeouts, client
addresses, security headers, API docs, redirects, API keys and rate limits."""

from __future__ import annotations

import asyncio
import hashlib
import io
import ipaddress
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from starlette.requests import Request

from facelive.errors import FaceliveError
from facelive.server import auth
from facelive.server.app import create_app
from facelive.server.errors import ApiError
from facelive.server.middleware import API_CSP, PAGE_CSP, printable, resolve_client
from facelive.server.parsing import parse_json, read_body
from facelive.server.settings import Settings
from facelive.types import LivenessResult, TestResult


def jpeg(w: int = 160, h: int = 120) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.full((h, w, 3), 200, np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


class Fake:
    load_ms = 1.0

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def check(self, source: Any, path: str | None = None) -> LivenessResult:
        self.shapes.append(source.shape)
        return LivenessResult(path=path, decision="live", score=0.9, threshold=0.5,
                              tests={"fake": TestResult(0.9, "ok", 1.0)}, face=None,
                              face_ms=0.0, ms=1.0)

    def info(self) -> dict[str, Any]:
        return {"tests": [{"name": "fake"}], "fusion": None, "threshold": 0.5}

    def close(self) -> None:
        pass


def client(**settings: Any) -> TestClient:
    return TestClient(create_app(Settings(**settings), pipeline=Fake()))


def post(c: TestClient, body: bytes, ctype: str = "image/jpeg", **headers: str) -> Any:
    return c.post("/v1/liveness", content=body, headers={"content-type": ctype, **headers})


def code(r: Any) -> str:
    return r.json()["error"]["code"]


# -- work bounded by the input ----------------------------------------------------------------


def test_thin_image_of_the_issue_is_refused() -> None:
    """The 8000x32 PNG (2 KB) that became a 60000x240 working frame: 422 from its header."""
    thin = png(8000, 32)
    assert len(thin) < 4096
    with client() as c:
        r = post(c, thin, "image/png")
        assert r.status_code == 422 and code(r) == "image_aspect_ratio", r.text
        assert "8000x32" in r.json()["error"]["message"]
        assert post(c, png(128, 32), "image/png").status_code == 200  # 4:1 is accepted
        assert code(post(c, png(129, 32), "image/png")) == "image_aspect_ratio"
        assert c.get("/v1/info").json()["limits"]["max_aspect_ratio"] == 4.0


def test_aspect_ratio_is_configurable() -> None:
    with client(max_aspect_ratio=8.0) as c:
        assert post(c, png(256, 32), "image/png").status_code == 200
        assert code(post(c, png(300, 32), "image/png")) == "image_aspect_ratio"


# -- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"image": ' + b"[" * 50_000 + b"]" * 50_000
                                  + b"}", b'{"a":' * 5000 + b"1" + b"}" * 5000])
def test_nested_json_is_400_not_500(body: bytes) -> None:
    with client() as c:
        r = post(c, body, "application/json")
        assert r.status_code == 400 and code(r) == "invalid_json", r.text
    with pytest.raises(ApiError) as info:
        parse_json(body)
    assert info.value.code == "invalid_json"


def test_large_json_body_is_parsed() -> None:
    import base64

    big = jpeg(1200, 900)
    body = json.dumps({"image": base64.b64encode(big).decode(), "pad": "x" * 300_000}).encode()
    with client() as c:
        assert post(c, body, "application/json").status_code == 200


def _request(chunks: list[tuple[float, bytes]], headers: dict[str, str] | None = None) -> Request:
    """A Request whose body arrives as ``(delay, bytes)`` chunks."""
    items = list(chunks)

    async def receive() -> dict[str, Any]:
        if not items:
            return {"type": "http.request", "body": b"", "more_body": False}
        delay, data = items.pop(0)
        await asyncio.sleep(delay)
        return {"type": "http.request", "body": data, "more_body": True}

    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return Request({"type": "http", "method": "POST", "headers": raw, "path": "/"}, receive)


def test_body_total_timeout() -> None:
    req = _request([(0.05, b"x" * 10)] * 100)
    with pytest.raises(ApiError) as info:
        asyncio.run(read_body(req, 10_000, timeout_s=0.5))
    assert info.value.status == 408 and info.value.code == "body_timeout"
    assert info.value.headers == {"Connection": "close"}


def test_body_minimum_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    from facelive.server import parsing

    monkeypatch.setattr(parsing, "MIN_RATE_GRACE_S", 0.3)
    slow = _request([(0.1, b"x" * 10)] * 100)  # 100 bytes/s
    with pytest.raises(ApiError) as info:
        asyncio.run(read_body(slow, 10_000, timeout_s=30, min_rate=1000))
    assert info.value.code == "body_timeout" and "bytes per second" in info.value.message
    fast = _request([(0.01, b"x" * 100)] * 50)  # 10 kB/s
    assert len(asyncio.run(read_body(fast, 10_000, timeout_s=30, min_rate=1000))) == 5000


def test_upload_budget_bounds_bodies_in_flight() -> None:
    from facelive.server.parsing import UploadBudget

    budget = UploadBudget(1000)
    budget.take(900)  # another upload holds 900 bytes
    with pytest.raises(ApiError) as info:
        asyncio.run(read_body(_request([(0, b"x" * 60)] * 3), 10_000, budget=budget))
    assert info.value.status == 503 and info.value.code == "overloaded"
    assert budget.used == 900  # what this request had taken is given back
    budget.give(900)
    assert len(asyncio.run(read_body(_request([(0, b"x" * 60)] * 3), 10_000,
                                     budget=budget))) == 180
    assert budget.used == 0
    with client(upload_buffer_bytes=1000) as c:
        r = post(c, b"\xff" * 5000)
        assert r.status_code == 503 and code(r) == "overloaded"
        assert c.app.state.facelive.uploads.used == 0


# -- client addresses ---------------------------------------------------------------------------


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
    import logging

    seen: list[Any] = []
    for trusted, expected in [((), None), (("0.0.0.0/0",), "1.2.3.4")]:
        app = create_app(Settings(trusted_proxies=trusted), pipeline=Fake())

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


# -- headers, docs, redirects ---------------------------------------------------------------------


def test_security_headers_on_every_response() -> None:
    with client() as c:
        responses = {
            "/": c.get("/"), "/static/index.html": c.get("/static/index.html"),
            "/static/app.js": c.get("/static/app.js"), "/healthz": c.get("/healthz"),
            "/v1/info": c.get("/v1/info"), "/metrics": c.get("/metrics"),
            "/nope": c.get("/nope"), "/openapi.json": c.get("/openapi.json"),
            "liveness error": post(c, b"", "image/jpeg"), "liveness": post(c, jpeg()),
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
    with client() as c:
        assert c.get("/docs").status_code == 404 and c.get("/redoc").status_code == 404
        assert c.get("/openapi.json").status_code == 200
    with client(openapi=False) as c:
        assert c.get("/openapi.json").status_code == 404


def test_no_host_header_reflection() -> None:
    with client() as c:
        for path in ("/v1/info/", "/static", "/healthz/"):
            r = c.get(path, headers={"host": "evil.example"}, follow_redirects=False)
            assert "evil.example" not in r.headers.get("location", ""), path
            assert r.status_code == 404, path


def test_transfer_encoding_with_content_length_is_refused() -> None:
    from facelive.server.middleware import HardeningMiddleware

    called: list[bool] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        called.append(True)

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/v1/liveness", "client": ("1.2.3.4", 1),
             "headers": [(b"content-length", b"5"), (b"transfer-encoding", b"chunked")]}
    asyncio.run(HardeningMiddleware(app, Settings())(scope, None, send))  # type: ignore[arg-type]
    assert not called and sent[0]["status"] == 400
    assert (b"connection", b"close") in sent[0]["headers"]
    assert b"invalid_request" in sent[1]["body"]


# -- API keys and rate limits ------------------------------------------------------------------


KEY = "correct horse battery staple"
DIGEST = hashlib.sha256(KEY.encode()).hexdigest()


def test_api_keys_protect_liveness_info_and_metrics() -> None:
    with client(api_keys=(DIGEST,)) as c:
        for r in (post(c, jpeg()), post(c, jpeg(), authorization="Bearer wrong"),
                  post(c, jpeg(), authorization=f"Basic {KEY}"),
                  c.get("/v1/info"), c.get("/metrics")):
            assert r.status_code == 401 and code(r) == "unauthorized", r.text
            assert r.headers["www-authenticate"].startswith("Bearer")
        auth_header = {"authorization": f"Bearer {KEY}"}
        assert post(c, jpeg(), **auth_header).status_code == 200
        assert c.get("/v1/info", headers=auth_header).status_code == 200
        metrics = c.get("/metrics", headers=auth_header)
        assert metrics.status_code == 200
        assert 'facelive_requests_total{outcome="unauthorized"} 3.0' in metrics.text
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").status_code == 200


def test_api_keys_file(tmp_path: Path) -> None:
    f = tmp_path / "keys"
    other = auth.hash_key("other")
    f.write_text(f"# operators\n{DIGEST}  -\n\n{other}\n")
    keys = auth.ApiKeys.from_settings((), str(f))
    assert len(keys) == 2 and keys.check(KEY) == DIGEST[:12] and keys.check("other")
    assert keys.check("nope") is None and keys.check(None) is None
    with client(api_keys_file=str(f)) as c:
        assert post(c, jpeg(), authorization="Bearer other").status_code == 200
    f.write_text("not-a-digest\n")
    with pytest.raises(FaceliveError, match="keys:1: not a SHA-256"):
        auth.ApiKeys.from_settings((), str(f))
    with pytest.raises(FaceliveError, match="cannot read"):
        auth.ApiKeys.from_settings((), str(tmp_path / "missing"))
    with pytest.raises(FaceliveError, match="FACELIVE_API_KEYS"):
        Settings.from_env({"FACELIVE_API_KEYS": "secret-key-in-clear"})


def test_hash_key_command(capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(KEY + "\n"))
    assert auth.main([]) == 0
    assert capsys.readouterr().out.strip() == DIGEST
    assert auth.main(["--new"]) == 0
    out = capsys.readouterr().out.split()
    assert auth.hash_key(out[1]) == out[3]


def test_rate_limit_per_address_and_key() -> None:
    with client(address_rate=0.01, address_burst=2) as c:
        assert [post(c, jpeg()).status_code for _ in range(2)] == [200, 200]
        r = post(c, jpeg())
        assert r.status_code == 429 and code(r) == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
    with client(api_keys=(DIGEST, auth.hash_key("k2")), key_rate=0.01, key_burst=1) as c:
        assert post(c, jpeg(), authorization=f"Bearer {KEY}").status_code == 200
        assert post(c, jpeg(), authorization=f"Bearer {KEY}").status_code == 429
        assert post(c, jpeg(), authorization="Bearer k2").status_code == 200  # own bucket


def test_rate_limiter_refills_and_stays_bounded() -> None:
    now = [0.0]
    lim = auth.RateLimiter(rate=2.0, burst=2, max_clients=3, clock=lambda: now[0])
    assert lim.take("a") == 0 and lim.take("a") == 0
    assert lim.take("a") == pytest.approx(0.5)
    now[0] = 0.5
    assert lim.take("a") == 0
    for name in ("b", "c", "d", "e"):
        lim.take(name)
    assert len(lim) == 3
    assert auth.RateLimiter(0, 1).take("x") == 0 and not auth.RateLimiter(0, 1).enabled


def test_client_bucket() -> None:
    assert auth.client_bucket("2001:db8:1:2:aaaa::1") == auth.client_bucket("2001:db8:1:2::9")
    assert auth.client_bucket("2001:db8:1:3::1") != auth.client_bucket("2001:db8:1:2::1")
    assert auth.client_bucket("::ffff:1.2.3.4") == "1.2.3.4"
    assert auth.client_bucket("\x1b[0m") == "unknown" == auth.client_bucket(None)


def test_parse_bearer() -> None:
    assert auth.parse_bearer("Bearer abc") == "abc" and auth.parse_bearer("bearer  abc ") == "abc"
    assert auth.parse_bearer("Basic abc") is None and auth.parse_bearer("Bearer") is None
    assert auth.parse_bearer(None) is None and auth.parse_bearer("Bearer " + "x" * 5000) is None


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{"FACELIVE_MAX_ASPECT_RATIO": "0.5"},
                                 {"FACELIVE_TRUSTED_PROXIES": "proxy.example"},
                                 {"FACELIVE_JOB_TIMEOUT_S": "0"},
                                 {"FACELIVE_PIPELINE_WORKERS": "-1"},
                                 {"FACELIVE_MAX_CONNECTIONS": "0"}])
def test_bad_hardening_settings(env: dict[str, str]) -> None:
    with pytest.raises(FaceliveError) as info:
        Settings.from_env(env)
    assert info.value.code == "usage" and list(env)[0] in info.value.message


def test_hardening_settings_round_trip() -> None:
    s = Settings.from_env({"FACELIVE_TRUSTED_PROXIES": "10.0.0.0/8, ::1",
                           "FACELIVE_API_KEYS": DIGEST.upper(), "FACELIVE_ADDRESS_RATE": "5",
                           "FACELIVE_MAX_HEADER_BYTES": "32k", "FACELIVE_OPENAPI": "0"})
    assert s.trusted_proxies == ("10.0.0.0/8", "::1") and s.api_keys == (DIGEST,)
    assert s.max_header_bytes == 32 * 1024 and not s.openapi
    assert Settings.from_env(s.to_env()) == s
