"""Session clips are verified in the killable pipeline processes (the pool of
``facelive.server.workers``).

The loaders run in spawned processes (they import this module by name), so they are module-level
functions; each pool has one process, to keep the tests light on the 2-core machine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from facelive.pipeline import Pipeline
from facelive.server.app import create_app
from facelive.server.settings import Settings
from facelive.server.workers import WorkerPool
from helpers import ConstantTest, FakeClock
from helpers.sessions import (
    DIGESTS,
    clip,
    create,
    fetch,
    load_astronaut,
    payload,
    upload,
    wait_result,
)


class Hanging(Pipeline):
    """Scores frames forever: only killing the process stops it."""

    def check_frame(self, image: np.ndarray, path: str | None = None) -> Any:
        while True:
            pass


def load_constant(settings: Settings) -> Pipeline:
    return Pipeline([ConstantTest()])


def load_hanging(settings: Settings) -> Pipeline:
    return Hanging([ConstantTest()])


@pytest.fixture(scope="module")
def astronaut() -> Any:
    return load_astronaut()


def serve(loader: Any, tmp_path: Path, **kw: Any) -> tuple[WorkerPool, TestClient, FakeClock]:
    settings = Settings(api_keys=DIGESTS, signing_key=str(tmp_path / "k.pem"), **kw)
    pool = WorkerPool(settings, size=1, loader=loader).start()
    clock = FakeClock()
    return pool, TestClient(create_app(settings, workers=pool, clock=clock)), clock


def _flow(c: TestClient, clock: FakeClock, astronaut: Any) -> Any:
    s = create(c)
    ch = fetch(c, s)
    frames, ts = clip(astronaut, ch)
    clock.t += ch.capture_ms / 1000.0 + 0.5
    r = upload(c, s, frames, ts, ch.nonce)
    assert r.status_code == 202 and r.json() == {"status": "received"}
    return wait_result(c, s["session_id"], timeout=90)


def test_a_clip_is_verified_in_a_pipeline_process(tmp_path: Path, astronaut) -> None:
    pool, client, clock = serve(load_constant, tmp_path)
    with pool, client as c:
        assert pool.pids() and os.getpid() not in pool.pids()
        res = _flow(c, clock, astronaut)
        assert res.status_code == 200 and res.json()["decision"] == "live", res.text
        claims = payload(res.json()["token"])
        assert claims["checks"]["colour"] and claims["models"]["tests"][0]["name"] == "constant"
        assert pool.restarts == {}


def test_a_clip_over_its_deadline_is_stopped_and_signed_unknown(tmp_path: Path,
                                                                astronaut) -> None:
    pool, client, clock = serve(load_hanging, tmp_path, verify_timeout_s=4.0)
    with pool, client as c:
        before = pool.pids()
        res = _flow(c, clock, astronaut)
        assert res.status_code == 200, res.text
        claims = payload(res.json()["token"])
        assert res.json()["decision"] == claims["decision"] == "unknown"
        assert claims["reasons"] == ["verification timed out"]
        assert pool.restarts.get("timeout") == 1 and before[0] not in pool.pids()
        assert c.get("/healthz").status_code == 200
