"""The screen-flash challenge in a real browser: Debian's Chromium (Playwright) with its
fake camera, one live ``facelive serve --demo`` with an API key and a signing key for the module.

What a person sees is checked through the visible texts of ``facelive.js``'s layer (its state is
``data-facelive-state``): the explanation and Start before any camera request, the colours with
an instruction and a progress bar, Cancel (the button, or Escape) that tells the server, and the
outcome in plain words, never a score. Three pages drive it: a site's own page on the server's
origin (``/a-site/page.html``, served by the test, importing ``/static/facelive.js``, its
backend played by the test with the API key), the same page on another origin that the server's
``--cors-origins`` does not list (the page says so), and the demo page at ``/`` (no API key in
the browser although keys are configured; its single-image loop pauses while the challenge
runs, and the challenge's verdict shows at the top of the page).

The fake camera plays a still picture (``examples/astronaut.jpg``), which cannot reflect the
screen's colours, so the challenge never says live; the tests check the texts of whatever outcome
it reaches, and the signed result through the backend API. Screenshots of each state (800 x 600)
are taken; with ``FACELIVE_UPDATE_SCREENSHOTS=1`` they replace ``docs/img/challenge-*.png``.
The helpers (server start, stand-in pipeline when the models are absent, Chromium) are
:mod:`helpers.browser`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
from PIL import Image

from facelive.server.auth import hash_key
from facelive.server.routes.web import STATIC_DIR
from helpers import EXAMPLE, REPO
from helpers.browser import launch_chromium, run_server, write_y4m

pytestmark = [pytest.mark.browser, pytest.mark.slow]

API_KEY = "browser-test-key"
VIEWPORT = {"width": 800, "height": 600}
SCREENSHOTS = REPO / "docs" / "img"
TITLES = {"live": "You\u2019re verified", "spoof": "We could not confirm a live person",
          "unknown": "We could not complete the check"}
ADVICE = "Try again in better light, facing the screen"
RAW_SCORE = re.compile(r"\d\.\d")  # a score or threshold such as 0.93 must never show

# The site's page: imports facelive.js (from `module`) and runs it with a `result` function that
# asks "the site's backend" (/a-site/result/{id}, answered by the test with the API key).
SITE_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>a site</title></head>
<body><h1>A site's own page</h1>
<div id="box" style="width: 480px; height: 360px"></div>
<script type="module">
import { faceliveCheck } from "MODULE";
async function siteResult(sessionId) {
  for (let i = 0; i < 180; i++) {
    const r = await fetch("/a-site/result/" + sessionId);
    if (r.status === 200) return (await r.json()).decision;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error("no result");
}
window.run = (args) => {
  window.outcome = null;
  window.controller = new AbortController();  // the page's own way to cancel
  const element = args.element ? document.getElementById(args.element) : null;
  faceliveCheck({ ...args, element, result: siteResult, signal: window.controller.signal }).then(
    (r) => { window.outcome = r; },
    (e) => { window.outcome = { error: e.code, message: e.message }; });
};
window.faceliveLoaded = true;
</script></body></html>"""

# Counts the page's camera requests (getUserMedia), to check that none comes before consent.
COUNT_CAMERA = """
window.cameraRequests = 0;
if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
  const original = navigator.mediaDevices.getUserMedia.bind(navigator.mediaDevices);
  navigator.mediaDevices.getUserMedia = (c) => { window.cameraRequests += 1; return original(c); };
}
"""


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


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    """Screenshots taken by the tests (name -> PNG); copied to docs/img when asked."""
    taken: dict[str, Path] = {}
    yield taken
    if os.environ.get("FACELIVE_UPDATE_SCREENSHOTS") == "1":
        for name, path in taken.items():
            shutil.copyfile(path, SCREENSHOTS / f"challenge-{name}.png")


def screenshot(page: Any, shots: dict[str, Path], name: str, tmp_path: Path) -> None:
    path = tmp_path / f"challenge-{name}.png"
    page.screenshot(path=str(path))
    with Image.open(path) as img:
        assert img.format == "PNG" and img.size == (800, 600), (img.format, img.size)
    shots[name] = path


def open_page(browser: Any, **options: Any) -> tuple[Any, list[str], list[tuple[str, str]]]:
    """A page (800 x 600) counting camera requests, with its errors and its requests."""
    page = browser.new_page(viewport=VIEWPORT, **options)
    errors: list[str] = []
    requests: list[tuple[str, str]] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("request", lambda r: requests.append((r.method, r.url)))
    page.add_init_script(COUNT_CAMERA)
    return page, errors, requests


def backend_result(url: str, session_id: str, timeout: float = 90.0) -> dict[str, Any]:
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


def new_session(url: str) -> dict[str, Any]:
    r = httpx.post(url + "/v1/sessions", headers={"authorization": f"Bearer {API_KEY}"},
                   timeout=10)
    assert r.status_code == 201, r.text
    return r.json()


def site_backend_result(url: str, session_id: str) -> tuple[int, str]:
    """The site's backend: asks facelive for the result with its API key; (status, JSON)."""
    r = httpx.get(f"{url}/v1/sessions/{session_id}/result",
                  headers={"authorization": f"Bearer {API_KEY}"}, timeout=10)
    return r.status_code, json.dumps({"decision": r.json()["decision"]}
                                     if r.status_code == 200 else {})


@pytest.fixture(scope="module")
def other_site(server: tuple[str, str]) -> Iterator[str]:
    """A site on another origin (127.0.0.1, another port) that the server's ``--cors-origins``
    does not list: its page, its own copy of facelive.js, its backend's result endpoint."""
    url = server[0]

    class Site(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            status, ctype = 200, "text/html"
            if self.path == "/a-site/page.html":
                body = SITE_PAGE.replace("MODULE", "/a-site/facelive.js")
            elif self.path == "/a-site/facelive.js":
                body, ctype = (STATIC_DIR / "facelive.js").read_text("utf-8"), "text/javascript"
            elif self.path.startswith("/a-site/result/"):
                status, body = site_backend_result(url, self.path.rsplit("/", 1)[1])
                ctype = "application/json"
            else:
                status, body = 404, ""
            data = body.encode()
            self.send_response(status)
            self.send_header("content-type", ctype)
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Site)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def site_page(page: Any, url: str, origin: str | None = None) -> None:
    """Open the site's page: on the server's origin (served by the test through the browser,
    importing ``/static/facelive.js``), or at ``origin`` (the :func:`other_site` server)."""
    if origin is None:
        origin = url
        page.route(url + "/a-site/page.html", lambda route: route.fulfill(
            status=200, content_type="text/html",
            body=SITE_PAGE.replace("MODULE", "/static/facelive.js")))

        def result(route: Any) -> None:
            status, body = site_backend_result(url, route.request.url.rsplit("/", 1)[1])
            route.fulfill(status=status, content_type="application/json", body=body)

        page.route(url + "/a-site/result/*", result)
    page.goto(origin + "/a-site/page.html")
    page.wait_for_function("() => window.faceliveLoaded === true", timeout=20_000)


def layer_text(page: Any) -> str:
    return page.inner_text("[data-facelive=layer]")


def wait_state(page: Any, state: str, timeout: float = 30_000) -> str:
    page.wait_for_selector(f"[data-facelive=layer][data-facelive-state={state}]",
                           timeout=timeout)
    return layer_text(page)


def camera_requests(page: Any) -> int:
    return page.evaluate("() => window.cameraRequests")


def through_consent(page: Any, before: int = 0) -> None:
    """The explanation comes first, without any camera request (``before``: the page's own,
    earlier); Start asks for the camera."""
    text = wait_state(page, "consent")
    assert "about 6 seconds" in text and "keep your face in view" in text, text
    assert "sensitive to flashing lights" in text and "Start" in text and "Cancel" in text
    assert camera_requests(page) == before  # not before the explanation
    assert page.evaluate("() => document.activeElement.dataset.facelive") == "start"


def during_colours(page: Any, before: int = 0) -> str:
    """The colours play with the instruction, a moving progress bar and Cancel (Esc)."""
    text = wait_state(page, "colours")
    assert camera_requests(page) == before + 1
    assert "Keep your face in view and look at the screen" in text, text
    page.wait_for_function(
        "() => +document.querySelector('[data-facelive=progress]').getAttribute("
        "'aria-valuenow') >= 30", timeout=20_000)
    text = layer_text(page)
    assert "Cancel (Esc)" in text and re.search(r"About \d s left", text), text
    return text


def outcome_text(page: Any, timeout: float = 90_000) -> str:
    text = wait_state(page, "outcome", timeout)
    assert not RAW_SCORE.search(text), text  # plain words, never a score
    assert "Close" in text
    return text


def test_site_page_consent_colours_result(browser: Any, server: tuple[str, str],
                                          shots: dict[str, Path], tmp_path: Path) -> None:
    url, mode = server
    session = new_session(url)
    page, errors, _ = open_page(browser)
    site_page(page, url)
    page.evaluate("(a) => window.run(a)", {"server": url, "sessionId": session["session_id"],
                                           "clientToken": session["client_token"]})
    through_consent(page)
    page.click("[data-facelive=start]")
    during_colours(page)
    text = outcome_text(page)
    result = backend_result(url, session["session_id"])
    assert TITLES[result["decision"]] in text, (result["decision"], text)
    if result["decision"] == "spoof":
        assert ADVICE in text
    page.click("[data-facelive=close]")
    page.wait_for_function("() => window.outcome !== null", timeout=10_000)
    outcome = page.evaluate("() => window.outcome")
    assert outcome["status"] == "received" and outcome["decision"] == result["decision"]
    assert outcome["frames"] >= 12 and outcome["sessionId"] == session["session_id"]
    assert page.query_selector("[data-facelive=layer]") is None  # the layer is gone
    assert not errors, errors
    page.close()
    from facelive.audit import verify_token

    jwks = httpx.get(url + "/.well-known/jwks.json", timeout=10).json()
    claims = verify_token(result["token"], jwks)
    print(f"[{mode}] facelive.js: {result['decision']}; {claims['reasons']}")
    assert claims["decision"] == result["decision"] != "live", (mode, claims["reasons"])
    assert len(claims["frames"]) == outcome["frames"]


def test_escape_cancels_and_tells_the_server(browser: Any, server: tuple[str, str]) -> None:
    url, _ = server
    session = new_session(url)
    page, errors, requests = open_page(browser, reduced_motion="reduce")
    site_page(page, url)
    page.evaluate("(a) => window.run(a)", {"server": url, "sessionId": session["session_id"],
                                           "clientToken": session["client_token"]})
    through_consent(page)
    assert "Your device asks for reduced motion" in layer_text(page)
    page.click("[data-facelive=start]")
    during_colours(page)
    assert page.evaluate("() => document.fullscreenElement.dataset.facelive") == "layer"
    with page.expect_response(lambda r: r.url.endswith("/cancel"), timeout=15_000) as told:
        page.keyboard.press("Escape")
    text = outcome_text(page, 15_000)
    assert "Cancelled" in text and "No pictures were sent" in text, text
    cancel = told.value
    assert cancel.request.method == "POST"
    assert cancel.request.headers["authorization"] == f"Bearer {session['client_token']}"
    assert not [u for m, u in requests if m == "POST" and u.endswith("/frames")]
    page.keyboard.press("Escape")  # closes the outcome
    page.wait_for_function("() => window.outcome !== null", timeout=10_000)
    assert page.evaluate("() => window.outcome.error") == "cancelled"
    assert not errors, errors
    page.close()
    if cancel.status == 404:  # a server without the cancel endpoint: the page is unaffected
        return
    assert cancel.status < 300, cancel.status
    r = httpx.get(f"{url}/v1/sessions/{session['session_id']}/result",
                  headers={"authorization": f"Bearer {API_KEY}"}, timeout=10)
    assert "abandoned" in r.text, (r.status_code, r.text)


def test_page_on_an_origin_missing_from_cors_origins_says_so(
        browser: Any, server: tuple[str, str], other_site: str, shots: dict[str, Path],
        tmp_path: Path) -> None:
    url, _ = server
    session = new_session(url)
    page, errors, _ = open_page(browser)
    site_page(page, url, origin=other_site)
    page.evaluate("(a) => window.run(a)", {"server": url, "sessionId": session["session_id"],
                                           "clientToken": session["client_token"]})
    text = outcome_text(page, 20_000)
    assert "This page cannot reach the verification service" in text, text
    assert "CORS settings: --cors-origins" in text, text
    screenshot(page, shots, "cors", tmp_path)
    assert camera_requests(page) == 0  # told before any camera prompt
    page.click("[data-facelive=close]")
    page.wait_for_function("() => window.outcome !== null", timeout=10_000)
    assert page.evaluate("() => window.outcome.error") == "cors"
    assert not errors, errors
    page.close()


def test_demo_page_with_api_keys(browser: Any, server: tuple[str, str], shots: dict[str, Path],
                                 tmp_path: Path) -> None:
    url, mode = server
    page, errors, requests = open_page(browser)
    page.goto(url + "/")
    # the single-image loop works without a key in the page (POST demo/liveness)
    page.wait_for_function(
        "() => ['live','spoof','noface','unknown'].includes("
        "document.getElementById('verdict').dataset.decision)", timeout=60_000)
    assert page.is_hidden("#message"), page.inner_text("#message")
    before = camera_requests(page)  # the single-image loop's
    page.click("#challenge-start")
    through_consent(page, before)
    screenshot(page, shots, "consent", tmp_path)
    assert page.inner_text("#verdict") == "Paused while the challenge runs"
    page.click("[data-facelive=start]")
    during_colours(page, before)
    page.wait_for_function(  # a chromatic step for the picture (not the dark or white one)
        "() => new Set(getComputedStyle(document.querySelector('[data-facelive=layer]'))"
        ".backgroundColor.match(/\\d+/g)).size > 1", timeout=10_000)
    screenshot(page, shots, "colours", tmp_path)
    singles = len([u for _, u in requests if u.endswith("/demo/liveness")])
    text = outcome_text(page)
    screenshot(page, shots, "result", tmp_path)
    assert len([u for _, u in requests if u.endswith("/demo/liveness")]) == singles  # paused
    title = next(t for t in TITLES.values() if t in text)
    page.click("[data-facelive=close]")
    page.wait_for_selector("#challenge-result:not([hidden])", timeout=10_000)
    assert page.inner_text("#challenge-result") == title
    box = page.evaluate("() => document.getElementById('challenge-result')"
                        ".getBoundingClientRect().toJSON()")
    assert 0 <= box["top"] and box["bottom"] <= VIEWPORT["height"], box  # where one looks
    screenshot(page, shots, "demo-page", tmp_path)
    print(f"[{mode}] demo page: {title}; {page.inner_text('#challenge-why')}")
    assert title != TITLES["live"]
    # the single-image loop resumes afterwards
    page.wait_for_function("() => document.getElementById('verdict').textContent"
                           " !== 'Paused while the challenge runs'", timeout=30_000)

    # again, cancelled with the button
    before = camera_requests(page)
    page.click("#challenge-start")
    through_consent(page, before)
    page.click("[data-facelive=start]")
    during_colours(page, before)
    page.click("[data-facelive=cancel]")
    text = outcome_text(page, 15_000)
    assert "Cancelled" in text, text
    screenshot(page, shots, "cancelled", tmp_path)
    page.click("[data-facelive=close]")
    page.wait_for_selector("#challenge-result:not([hidden])", timeout=10_000)
    assert page.inner_text("#challenge-result") == "Cancelled"
    assert not errors, errors
    page.close()


def test_page_without_demo_says_that_an_api_key_is_needed(browser: Any,
                                                          server: tuple[str, str]) -> None:
    """The page at ``/`` without ``--demo`` (its HTML as served then) on a server with API keys:
    the single-image loop gets 401 from ``/v1/liveness``, stops and says why in plain words."""
    url, _ = server
    page, errors, requests = open_page(browser)
    page.route(url + "/", lambda route: route.fulfill(
        status=200, content_type="text/html",
        body=(STATIC_DIR / "index.html").read_text(encoding="utf-8")))
    page.goto(url + "/")
    page.wait_for_selector("#message:not([hidden])", timeout=30_000)
    assert "needs an API key" in page.inner_text("#message")
    assert page.inner_text("#verdict") == "Not available"
    sent = [u for _, u in requests if u.endswith("/v1/liveness")]
    page.wait_for_timeout(1500)
    assert len([u for _, u in requests if u.endswith("/v1/liveness")]) == len(sent) == 1
    assert not errors, errors
    page.close()


def test_page_cancels_through_its_signal_and_shows_its_own_outcome(
        browser: Any, server: tuple[str, str]) -> None:
    """``signal`` cancels like the button (the server is told); with ``showOutcome: false`` the
    layer closes at once and the promise settles without waiting for Close; with ``element``
    the colours play over that element, not full screen."""
    url, _ = server
    session = new_session(url)
    page, errors, _ = open_page(browser)
    site_page(page, url)
    page.evaluate("(a) => window.run(a)", {"server": url, "sessionId": session["session_id"],
                                           "clientToken": session["client_token"],
                                           "showOutcome": False, "element": "box"})
    through_consent(page)
    page.click("[data-facelive=start]")
    during_colours(page)
    assert page.evaluate("() => document.querySelector('[data-facelive=layer]')"
                         ".parentElement.id") == "box"
    assert page.evaluate("() => document.fullscreenElement") is None
    with page.expect_response(lambda r: r.url.endswith("/cancel"), timeout=15_000):
        page.evaluate("() => window.controller.abort()")
    page.wait_for_function("() => window.outcome !== null", timeout=10_000)
    assert page.evaluate("() => window.outcome.error") == "cancelled"
    assert page.query_selector("[data-facelive=layer]") is None
    assert not errors, errors
    page.close()
