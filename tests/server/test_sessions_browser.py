"""The screen-flash challenge in a real browser: Debian's Chromium (Playwright) with its
fake camera, a live ``facelive serve --demo`` with an API key and a signing key.

``facelive.js`` on a site's own page (a page the test serves on the server's origin, which imports
the module from ``/static/facelive.js``) and the demo page at ``/`` both complete the flow: the
warning, the colours, the upload, ``{"status": "received"}`` and nothing more. The fake camera
plays a still picture (``examples/astronaut.jpg``), which cannot reflect the screen's colours, so
the challenge fails: the result, read through the backend API with the API key and verified
against ``/.well-known/jwks.json``, is not "live", and its signed record says why. The helpers
(server start, stand-in pipeline when the models are absent, Chromium) are
:mod:`helpers.browser`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import cv2
import httpx
import pytest

from facelive.server.auth import hash_key
from helpers import EXAMPLE
from helpers.browser import launch_chromium, run_server, write_y4m
from helpers.sessions import COLOUR_REASON

pytestmark = pytest.mark.browser

API_KEY = "browser-test-key"
SITE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>a site</title></head>
<body><h1>A site's own page</h1>
<script type="module">
import { faceliveCheck } from "/static/facelive.js";
window.faceliveCheck = faceliveCheck;
window.faceliveLoaded = true;
</script></body></html>"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    key_dir = tmp_path_factory.mktemp("key")
    yield from run_server(tmp_path_factory, {
        "FACELIVE_API_KEYS": hash_key(API_KEY), "FACELIVE_DEMO": "1",
        "FACELIVE_SIGNING_KEY": str(key_dir / "signing.pem")})


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    write_y4m(cv2.imread(str(EXAMPLE)), path)
    yield from launch_chromium(path)


def backend_result(url: str, session_id: str, timeout: float = 90.0) -> dict:
    """The site backend's view: poll the result with the API key."""
    deadline = time.monotonic() + timeout
    headers = {"authorization": f"Bearer {API_KEY}"}
    while True:
        r = httpx.get(f"{url}/v1/sessions/{session_id}/result", headers=headers, timeout=10)
        if r.status_code != 202:
            assert r.status_code == 200, r.text
            return r.json()
        assert time.monotonic() < deadline, "no result in time"
        time.sleep(0.5)


def verified_claims(url: str, token: str) -> dict:
    from facelive.audit import verify_token

    return verify_token(token, httpx.get(url + "/.well-known/jwks.json", timeout=10).json())


def test_facelive_js_on_a_site_page_ends_in_a_failed_challenge(browser: object,
                                                              server: tuple[str, str]) -> None:
    url, mode = server
    created = httpx.post(url + "/v1/sessions", headers={"authorization": f"Bearer {API_KEY}"},
                         timeout=10)
    assert created.status_code == 201, created.text
    session = created.json()
    page = browser.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.route(url + "/a-site/page.html", lambda route: route.fulfill(
        status=200, content_type="text/html", body=SITE_PAGE))
    page.goto(url + "/a-site/page.html")
    page.wait_for_function("() => window.faceliveLoaded === true", timeout=20_000)
    page.evaluate(
        """(a) => { window.outcome = null;
                    faceliveCheck(a).then((r) => { window.outcome = r; },
                                          (e) => { window.outcome = {error: e.code,
                                                                      message: e.message}; }); }""",
        {"server": url, "sessionId": session["session_id"],
         "clientToken": session["client_token"]})
    page.wait_for_selector("[data-facelive=start]:enabled", timeout=20_000)
    assert "flashes the screen" in page.inner_text("[data-facelive=layer]")
    page.click("[data-facelive=start]")
    page.wait_for_function("() => window.outcome !== null", timeout=60_000)
    outcome = page.evaluate("() => window.outcome")
    assert outcome.get("status") == "received", outcome  # and nothing about the verdict
    assert set(outcome) == {"status", "sessionId", "frames"} and outcome["frames"] >= 12
    assert page.query_selector("[data-facelive=layer]") is None  # the colours are gone
    assert not errors, errors
    page.close()
    result = backend_result(url, session["session_id"])
    claims = verified_claims(url, result["token"])
    print(f"[{mode}] facelive.js: {result['decision']}; {claims['reasons']}; "
          f"scores {claims['scores']}")
    assert result["decision"] == claims["decision"] != "live", (mode, claims["reasons"])
    assert claims["checks"]["colour"] is False, claims
    assert COLOUR_REASON in claims["reasons"]
    assert len(claims["frames"]) == outcome["frames"]


def test_demo_page_runs_the_challenge(browser: object, server: tuple[str, str]) -> None:
    url, mode = server
    page = browser.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    page.wait_for_selector("#challenge-start", state="visible", timeout=20_000)
    page.click("#challenge-start")
    page.wait_for_selector("[data-facelive=start]:enabled", timeout=20_000)
    page.click("[data-facelive=start]")
    page.wait_for_selector("#challenge-result:not([hidden])", timeout=90_000)
    decision = page.get_attribute("#challenge-result", "data-decision")
    reasons = page.inner_text("#challenge-reasons")
    print(f"[{mode}] demo page: {decision}; {reasons}")
    assert decision in ("spoof", "unknown"), (mode, decision, page.inner_text("#challenge"))
    assert "colour response" in reasons
    assert not errors, errors
    page.close()
