"""Real-browser helpers: Debian's Chromium (Playwright) with a fake camera, and a live
``facelive serve`` in a subprocess (or, when the shipped models do not load, the same app with
the real pipeline and a constant-score stand-in test)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import httpx
import numpy as np
import pytest

from helpers import REPO, free_port, subprocess_env

CHROMIUM = Path(os.environ.get("FACELIVE_CHROMIUM", "/usr/bin/chromium"))

STUB_SERVER = """
import sys, uvicorn
from facelive.pipeline import Pipeline
from facelive.server.app import create_app
from facelive.server.settings import Settings
from helpers import ConstantTest

uvicorn.run(create_app(Settings(), Pipeline([ConstantTest()])), host="127.0.0.1",
            port=int(sys.argv[1]), log_level="warning")
"""


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
    env = subprocess_env(**(env_extra or {}))
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
