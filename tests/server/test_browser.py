"""Real-browser test of the web client: Debian's Chromium (Playwright) + a live ``facelive serve``.

Chromium's fake camera plays a Y4M file generated from a face image (a real live frame from the
shared data when present, else ``examples/astronaut.jpg``). When the shipped models are not in the
repository yet, the server is the same app run with the real pipeline (real face detection) and a
constant-score stand-in test, so the client is still tested. The screen-flash challenge's client
(``facelive.js``) is tested in ``tests/test_sessions_browser.py`` with the helpers here.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("FACELIVE_CHROMIUM", "/usr/bin/chromium"))
REPO = Path(__file__).resolve().parents[2]
VERDICTS = ("live", "spoof", "noface", "unknown")

STUB_SERVER = """
import sys, uvicorn
from facelive.liveness import LivenessTest
from facelive.pipeline import Pipeline
from facelive.server.app import create_app
from facelive.server.settings import Settings

class Constant(LivenessTest):
    name, needs_face, threshold = "constant", True, 0.5
    def score_frame(self, frame):
        return 0.75

uvicorn.run(create_app(Settings(), Pipeline([Constant()])), host="127.0.0.1",
            port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_y4m(image_bgr: np.ndarray, path: Path, frames: int = 10) -> None:
    """A 640x480 4:2:0 YUV4MPEG2 clip repeating ``image_bgr`` (Chromium's fake camera input)."""
    img = cv2.resize(image_bgr, (640, 480), interpolation=cv2.INTER_AREA)
    yuv = cv2.cvtColor(img, cv2.COLOR_BGR2YUV_I420).tobytes()
    with path.open("wb") as fh:
        fh.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            fh.write(b"FRAME\n" + yuv)


def _wait_ready(url: str, proc: subprocess.Popen, timeout: float = 90.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def run_server(tmp_path_factory: pytest.TempPathFactory,
               env_extra: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """(base URL, mode): ``facelive serve`` when the models load, else the stand-in pipeline;
    ``env_extra``: ``FACELIVE_*`` settings for both."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO / "src")] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    env.update(env_extra or {})
    for mode in ("facelive serve", "stand-in pipeline"):
        port = free_port()
        cmd = ([sys.executable, "-m", "facelive", "serve", "--port", str(port)]
               if mode == "facelive serve" else [sys.executable, "-c", STUB_SERVER, str(port)])
        log = tmp_path_factory.mktemp("server") / "server.log"
        with log.open("w") as fh:
            proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            if _wait_ready(url, proc):
                yield url, mode
                return
            if mode != "facelive serve":
                proc.kill()
                pytest.fail(f"the server did not start: {log.read_text()[-2000:]}")
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()


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
    image = cv2.imread(str(real[0] if real else REPO / "examples" / "astronaut.jpg"))
    path = tmp_path_factory.mktemp("camera") / "camera.y4m"
    write_y4m(image, path)
    return path, True


def launch_chromium(camera: Path) -> Iterator[object]:
    """Chromium with the fake camera playing ``camera`` (skips when Chromium is absent)."""
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={camera}"]
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), args=args, headless=True)
        try:
            yield b
        finally:
            b.close()


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
