"""The ``--demo`` endpoints with API keys configured: the demo page needs no key (its sessions
and its single-image loop), the API still does, and nothing of the demo exists without
``--demo``. The challenge flow itself is in ``test_sessions.py`` (HTTP) and
``test_sessions_browser.py`` (Chromium)."""

from __future__ import annotations

from helpers import jpeg
from helpers.server import error_code, stub_client
from helpers.sessions import DIGESTS, auth

FILES = {"image": ("frame.jpg", jpeg(value=200), "image/jpeg")}


def test_demo_single_image_needs_no_key_when_keys_are_configured() -> None:
    with stub_client(api_keys=DIGESTS, demo=True) as c:
        r = c.post("/v1/liveness", files=FILES)
        assert r.status_code == 401 and error_code(r) == "unauthorized"
        r = c.post("/demo/liveness", files=FILES)  # what the demo page sends: no key
        assert r.status_code == 200, r.text
        assert r.json()["decision"] == "live" and r.json()["schema_version"] == "2"
        r = c.post("/demo/sessions")  # the demo's challenge: no key either
        assert r.status_code == 201 and set(r.json()) >= {"session_id", "client_token"}
        registry = c.app.state.facelive.metrics.registry  # counted like /v1/liveness
        assert registry.get_sample_value("facelive_requests_total", {"outcome": "live"}) == 1


def test_demo_single_image_is_rate_limited_and_refuses_bad_input() -> None:
    with stub_client(api_keys=DIGESTS, demo=True, address_rate=0.001, address_burst=2) as c:
        assert c.post("/demo/liveness", files=FILES).status_code == 200
        r = c.post("/demo/liveness", content=b"not an image",
                   headers={"content-type": "image/jpeg"})
        assert r.status_code == 422, r.text
        r = c.post("/demo/liveness", files=FILES)
        assert r.status_code == 429 and error_code(r) == "rate_limited"
        assert "retry-after" in r.headers


def test_no_demo_endpoint_without_demo() -> None:
    with stub_client(api_keys=DIGESTS) as c:
        assert c.post("/demo/liveness", files=FILES).status_code == 404
        assert c.post("/demo/sessions").status_code == 404
        assert c.post("/v1/liveness", files=FILES, headers=auth("wrong")).status_code == 401
        spec = c.get("/openapi.json").json()
        assert not [p for p in spec["paths"] if p.startswith("/demo")]
