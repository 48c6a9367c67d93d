"""Real-browser test of the web client: Debian's Chromium (Playwright) + a live ``facelive serve``.

Chromium's fake camera plays a Y4M file generated from a face image (a real live frame from the
shared data when present, else ``examples/astronaut.jpg``). When the shipped models are not in the
repository yet, the server is the same app run with the real pipeline (real face detection) and a
constant-score stand-in test, so the client is still tested (:mod:`helpers.browser`). The
screen-flash challenge's client (``facelive.js``), the ``--demo`` page and the page on a server
with API keys are tested in ``tests/server/test_sessions_browser.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import pytest

from helpers import EXAMPLE
from helpers.browser import launch_chromium, run_server, write_y4m

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VERDICTS = ("live", "spoof", "noface", "unknown")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(base URL, mode): ``facelive serve`` when the models load, else the stand-in pipeline."""
    yield from run_server(tmp_path_factory)


@pytest.fixture(scope="module")
def camera_file(request: pytest.FixtureRequest,
                tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bool]:
    """(Y4M path, whether it shows a real face) in a temporary folder outside the repo."""
    try:
        data: Path | None = request.getfixturevalue("shared_data")
    except pytest.skip.Exception:  # no shared data: a synthetic picture ("no face" is fine)
        data = None
    real = sorted((data / "nuaa" / "ClientRaw").rglob("*.jpg"))[:1] if data else []
    image = cv2.imread(str(real[0] if real else EXAMPLE))
    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    write_y4m(image, path)
    return path, True


@pytest.fixture(scope="module")
def browser(camera_file: tuple[Path, bool]) -> Iterator[object]:
    yield from launch_chromium(camera_file[0])


def test_verdict_appears(browser: object, server: tuple[str, str],
                         camera_file: tuple[Path, bool]) -> None:
    url, mode = server
    page = browser.new_page()  # type: ignore[attr-defined]
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url + "/")
    page.wait_for_function(
        "() => ['live','spoof','noface','unknown'].includes("
        "document.getElementById('verdict').dataset.decision)", timeout=60_000)
    decision = page.get_attribute("#verdict", "data-decision")
    text = page.inner_text("#verdict")
    assert decision in VERDICTS and text.strip(), (decision, text)
    assert not errors, errors
    assert page.is_hidden("#message"), page.inner_text("#message")
    if camera_file[1]:  # a real face: the server found it and decided
        assert decision in ("live", "spoof"), (mode, decision, text)
        box = page.evaluate("() => { const c = document.getElementById('overlay');"
                            " return [c.width, c.height]; }")
        assert box == [640, 480]
        if mode == "stand-in pipeline":
            assert decision == "live" and "0.75" in page.inner_text("#details")
    page.close()


@pytest.mark.parametrize("error,expected", [("NotAllowedError", "permission was denied"),
                                            ("NotFoundError", "No camera was found")])
def test_camera_errors_are_explained(browser: object, server: tuple[str, str], error: str,
                                     expected: str) -> None:
    page = browser.new_page()  # type: ignore[attr-defined]
    page.add_init_script(
        "navigator.mediaDevices.getUserMedia = () => Promise.reject("
        f"new DOMException('test', '{error}'));")
    page.goto(server[0] + "/")
    page.wait_for_selector("#message:not([hidden])", timeout=20_000)
    assert expected in page.inner_text("#message")
    assert page.inner_text("#verdict") == "No camera"
    page.close()
