"""Budgets that stop work: the pipeline runs in processes that can be killed.

The loaders below run in spawned pipeline processes (they import this module by name, and the
stand-ins from ``helpers``), so they are module-level functions. Each pool here has one process,
to keep the tests light on the 2-core machine.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from facelive.errors import FaceliveError
from facelive.server.app import create_app
from facelive.server.settings import Settings
from facelive.server.workers import WorkerPool
from helpers import ConstantTest, StubPipeline, jpeg, png

CLK_TCK = os.sysconf("SC_CLK_TCK")


def load_ok(settings: Settings) -> StubPipeline:
    return StubPipeline(0.9)


def load_hang(settings: Settings) -> StubPipeline:
    return StubPipeline(0.9, behaviour="hang")


def load_hog(settings: Settings) -> StubPipeline:
    return StubPipeline(0.9, behaviour="hog")


def load_crash(settings: Settings) -> StubPipeline:
    return StubPipeline(0.9, behaviour="crash")


def load_raise(settings: Settings) -> StubPipeline:
    return StubPipeline(0.9, error=RuntimeError("boom"))


def load_missing(settings: Settings) -> StubPipeline:
    raise FaceliveError("cannot load the models: model file quality.json is missing",
                        code="model_error")


def load_spinning_test(settings: Settings) -> Any:
    """The real Pipeline with a test that never returns (busy loop) beside a normal one."""
    from facelive.liveness import Frame, LivenessTest
    from facelive.pipeline import Pipeline

    class Spin(LivenessTest):
        name, needs_face, threshold = "spin", False, 0.5

        def score_frame(self, frame: Frame) -> float:
            while True:
                pass

    return Pipeline([Spin(), ConstantTest(needs_face=False)], fusion=None,
                    budget_ms=settings.budget_ms)


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    if fields[0] == "Z":
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def wait_for(cond: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def post(c: TestClient, body: bytes, ctype: str = "image/jpeg") -> Any:
    return c.post("/v1/liveness", content=body, headers={"content-type": ctype})


@pytest.fixture
def settings() -> Settings:
    return Settings(job_timeout_s=1.5, budget_ms=400, worker_max_rss_mb=1024)


def serve(settings: Settings, loader: Any) -> tuple[WorkerPool, TestClient]:
    pool = WorkerPool(settings, size=1, loader=loader).start()
    return pool, TestClient(create_app(settings, workers=pool))


def test_images_are_decoded_and_checked_in_the_process(settings: Settings) -> None:
    pool, client = serve(settings, load_ok)
    with pool, client as c:
        assert pool.pids() and os.getpid() not in pool.pids()
        r = post(c, jpeg(96, 64, 128))
        assert r.status_code == 200 and r.json()["tests"]["stub"]["status"] == "ok"
        thin = post(c, png(8000, 32), "image/png")  # refused from its header, in the process
        assert thin.status_code == 422 and thin.json()["error"]["code"] == "image_aspect_ratio"
        garbage = post(c, b"\x89PNG\r\n\x1a\n" + os.urandom(500), "image/png")
        assert garbage.status_code == 422
        ready = c.get("/readyz").json()
        assert ready["status"] == "ready" and ready["tests"] == ["stub"]
        assert c.get("/v1/info").json()["limits"]["pipeline_processes"] == 1
        assert pool.restarts == {}


def test_hung_job_is_killed_at_its_deadline(settings: Settings) -> None:
    """A job that never ends: 503 timeout at the deadline, the process is killed (its CPU time
    stops growing) and a new one takes its place."""
    pool, client = serve(settings, load_hang)
    with pool, client as c:
        (pid,) = pool.pids()
        t0 = time.monotonic()
        r = post(c, jpeg(96, 64, 128))
        took = time.monotonic() - t0
        assert r.status_code == 503 and r.json()["error"]["code"] == "timeout", r.text
        assert "Retry-After" in r.headers
        assert settings.job_timeout_s <= took < settings.job_timeout_s + 1.5
        assert cpu_seconds(pid) is None  # killed and reaped: it burns no more CPU
        assert pool.restarts == {"timeout": 1}
        assert wait_for(lambda: pool.alive == 1)
        assert pool.pids() != [pid]
        assert 'facelive_pipeline_process_restarts_total{reason="timeout"} 1.0' in c.get(
            "/metrics").text


def test_test_over_budget_stops_using_cpu(settings: Settings) -> None:
    """A test that overruns its budget: the answer comes at the budget (status timeout) and the
    process running the stray test is replaced, so the overrun stops consuming CPU."""
    pool, client = serve(settings, load_spinning_test)
    with pool, client as c:
        (pid,) = pool.pids()
        cpu0 = cpu_seconds(pid)
        assert cpu0 is not None
        t0 = time.monotonic()
        r = post(c, jpeg(96, 64, 128))
        took = time.monotonic() - t0
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["tests"]["spin"]["status"] == "timeout"
        assert body["tests"]["constant"]["status"] == "ok" and body["decision"] == "unknown"
        assert took < settings.budget_ms / 1e3 + 1.0
        assert cpu_seconds(pid) is None  # the spinning thread's process is gone
        assert pool.restarts == {"test_timeout": 1}
        assert wait_for(lambda: pool.alive == 1)
        (new_pid,) = pool.pids()
        time.sleep(0.5)
        idle = cpu_seconds(new_pid)
        time.sleep(1.0)
        assert idle is not None and cpu_seconds(new_pid) - idle < 0.2  # the new one is idle


def test_memory_hog_is_killed(settings: Settings) -> None:
    s = settings.with_(worker_max_rss_mb=400, job_timeout_s=20)
    pool, client = serve(s, load_hog)
    with pool, client as c:
        t0 = time.monotonic()
        r = post(c, jpeg(96, 64, 128))
        assert r.status_code == 503 and r.json()["error"]["code"] == "memory_limit", r.text
        assert time.monotonic() - t0 < 15
        assert pool.restarts == {"memory": 1}


def test_crash_is_500_and_the_process_replaced(settings: Settings) -> None:
    pool, client = serve(settings, load_crash)
    with pool, client as c:
        r = post(c, jpeg(96, 64, 128))
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        assert c.get("/healthz").status_code == 200
        assert pool.restarts == {"crashed": 1}
        assert wait_for(lambda: pool.alive == 1)


def test_pipeline_exception_keeps_the_process(settings: Settings) -> None:
    pool, client = serve(settings, load_raise)
    with pool, client as c:
        (pid,) = pool.pids()
        r = post(c, jpeg(96, 64, 128))
        assert r.status_code == 500 and r.json()["error"]["code"] == "internal_error"
        assert pool.pids() == [pid] and pool.restarts == {}


def test_load_failure_is_reported(settings: Settings) -> None:
    with pytest.raises(FaceliveError, match="quality.json is missing") as info:
        WorkerPool(settings, size=1, loader=load_missing).start()
    assert info.value.code == "model_error"


def test_app_starts_its_own_pool_when_models_are_missing() -> None:
    """Without a pipeline object the app starts pipeline processes; their load error is the
    start-up error (or /readyz's reason with allow_missing_models)."""
    s = Settings(tests=("no-such-test",), allow_missing_models=True, pipeline_workers=1)
    with TestClient(create_app(s)) as c:
        r = c.get("/readyz")
        assert r.status_code == 503 and "no-such-test" in r.json()["error"]["message"]


def test_pool_size_default() -> None:
    from facelive.server.workers import pool_size, usable_cores

    assert pool_size(Settings()) == usable_cores()
    assert pool_size(Settings(workers=2)) == max(1, usable_cores() // 2)
    assert pool_size(Settings(pipeline_workers=0)) == 0
