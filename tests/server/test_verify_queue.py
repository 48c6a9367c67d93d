"""Clip verification has its own budget: a bounded queue and slots apart from ``/v1/liveness``'s,
a cap per tenant, and results that survive a session store that is down.

The app serves the stand-in pipeline; the verification itself is replaced by a fake whose clips
wait on a gate (they hold their verification slot for as long as the test says), so a flood of
clips costs no CPU here. The real verifier's early stop and decoding bounds are
``tests/challenge/test_verify_budget.py``; the separate, lower-priority verification processes
are started for real at the end of this module.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient

import facelive.server.sessions as sessions_module
from facelive.server.app import create_app
from facelive.server.errors import ApiError
from facelive.server.session_store import MemorySessionStore
from facelive.server.settings import Settings
from facelive.server.state import VERIFY_NICE, ServiceState
from facelive.server.verification import VerifyQueue
from facelive.server.workers import ChallengeJob
from helpers import StubPipeline, jpeg
from helpers.sessions import DIGESTS, KEY, KEY2, auth, create, err, fetch, payload, upload

OUTCOME = {"decision": "live", "reasons": [], "scores": {}, "checks": {}, "threshold": 0.5,
           "models": {}}


class GatedVerifier:
    """Stands in for :meth:`ServiceState.verify_clip`: each clip waits for ``gate``."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.running = 0
        self.started = 0

    async def __call__(self, job: ChallengeJob) -> dict[str, Any]:
        self.started += 1
        self.running += 1
        try:
            while not self.gate.is_set():
                await anyio.sleep(0.01)
            return dict(OUTCOME)
        finally:
            self.running -= 1


_clips = itertools.count()


def frames(n: int = 12) -> tuple[list[bytes], list[float]]:
    """A clip's frames, never sent before (frames re-sent from another session are refused
    without a verification)."""
    k = next(_clips)
    return ([jpeg(64 + k, 48, 10 + i) for i in range(n)], [i * 100.0 for i in range(n)])


def app_client(tmp_path: Path, **kw: Any) -> tuple[TestClient, GatedVerifier]:
    settings = Settings(api_keys=DIGESTS, signing_key=str(tmp_path / "k.pem"), **kw)
    c = TestClient(create_app(settings, pipeline=StubPipeline(0.9)))
    return c, GatedVerifier()


def state_of(c: TestClient) -> ServiceState:
    return c.app.state.facelive  # type: ignore[attr-defined]


def send_clip(c: TestClient, key: str = KEY, clip: Any = None
              ) -> tuple[dict[str, Any], Any, Any]:
    s = create(c, key)
    ch = fetch(c, s)
    f, ts = clip or frames()
    return s, ch, upload(c, s, f, ts, ch.nonce)


def wait_until(cond: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


# -- the queue on its own ------------------------------------------------------------------------

def test_queue_admits_slots_plus_queue_then_refuses() -> None:
    q = VerifyQueue(slots=1, queue=2, per_key=2, retry_after_s=3)
    a1, a2 = q.admit("a"), q.admit("a")
    with pytest.raises(ApiError) as exc:
        q.admit("a")
    assert exc.value.status == 429 and exc.value.code == "too_many_verifications"
    assert exc.value.headers == {"Retry-After": "3"}
    b1 = q.admit("b")
    with pytest.raises(ApiError) as exc:
        q.admit("c")
    assert exc.value.status == 503 and exc.value.code == "verify_busy"
    with pytest.raises(ApiError, match="verification slots"):
        q.admit("c", take=False)  # the check before the body is read refuses the same way
    q.release(a1)
    q.release(a1)  # twice: counted once
    assert q.admitted == 2 and q.held_by("a") == 1
    q.admit("c", take=False)
    assert q.admitted == 2  # only checked
    for t in (a2, b1):
        q.release(t)
    assert q.admitted == 0 and q.held_by("a") == q.held_by("b") == 0


def test_queue_runs_in_order_in_its_slots_and_releases_on_failure() -> None:
    q = VerifyQueue(slots=2, queue=10)
    peak = [0]

    async def work(i: int) -> int:
        peak[0] = max(peak[0], q.running)
        await anyio.sleep(0.02)
        if i == 3:
            raise RuntimeError("boom")
        return i

    async def main() -> list[Any]:
        out: list[Any] = []

        async def one(i: int) -> None:
            try:
                out.append(await q.run(q.admit("k"), lambda: work(i)))
            except RuntimeError:
                out.append("failed")

        async with anyio.create_task_group() as tg:
            for i in range(6):
                tg.start_soon(one, i)
        return out

    out = anyio.run(main)
    assert sorted(x for x in out if x != "failed") == [0, 1, 2, 4, 5] and "failed" in out
    assert peak[0] == 2 and q.admitted == 0 and q.running == 0


# -- the service -----------------------------------------------------------------------------------

def test_a_flood_of_clips_never_takes_the_liveness_slots(tmp_path: Path) -> None:
    c, fake = app_client(tmp_path, verify_slots=1, verify_queue=2, verify_per_key=0,
                         max_concurrency=2)
    with c:
        state = state_of(c)
        state.verify_clip = fake  # type: ignore[method-assign]
        sent = [send_clip(c) for _ in range(3)]  # 1 verifying + 2 waiting: the queue is full
        assert all(r.status_code == 202 for _, _, r in sent), [r.text for *_, r in sent]
        assert wait_until(lambda: fake.running == 1)
        refused = frames()
        s, ch, r = send_clip(c, clip=refused)
        err(r, 503, "verify_busy")
        assert r.headers["retry-after"] == "1"
        assert state.in_flight == 0  # no clip holds a /v1/liveness slot
        gauge = state.metrics.registry.get_sample_value
        assert gauge("facelive_clip_verifications", {"state": "running"}) == 1
        assert gauge("facelive_clip_verifications", {"state": "waiting"}) == 2
        for _ in range(10):  # both liveness slots answer while the queue is full
            res = c.post("/v1/liveness", content=jpeg(),
                         headers={"content-type": "image/jpeg", **auth(KEY)})
            assert res.status_code == 200, res.text
        assert c.get(f"/v1/sessions/{s['session_id']}/result", headers=auth(KEY)).json() == {
            "status": "pending"}  # the refused upload did not use the session
        fake.gate.set()
        assert wait_until(lambda: state.verifications.admitted == 0)
        assert upload(c, s, *refused, ch.nonce).status_code == 202  # the same clip, sent again
        for sess, _, _ in sent + [(s, None, None)]:
            assert wait_until(lambda sid=sess["session_id"]: c.get(
                f"/v1/sessions/{sid}/result", headers=auth(KEY)).status_code == 200)
        assert fake.started == 4 and state.verifications.admitted == 0


def test_one_tenant_cannot_take_every_verification_place(tmp_path: Path) -> None:
    c, fake = app_client(tmp_path, verify_slots=1, verify_queue=8, verify_per_key=2)
    with c:
        state = state_of(c)
        state.verify_clip = fake  # type: ignore[method-assign]
        assert send_clip(c, KEY)[2].status_code == 202
        assert send_clip(c, KEY)[2].status_code == 202
        _, _, r = send_clip(c, KEY)
        err(r, 429, "too_many_verifications")
        assert int(r.headers["retry-after"]) >= 1
        assert send_clip(c, KEY2)[2].status_code == 202  # another tenant goes on
        assert state.verifications.held_by(DIGESTS[0][:12]) == 2
        fake.gate.set()
        assert wait_until(lambda: state.verifications.admitted == 0)
        assert send_clip(c, KEY)[2].status_code == 202  # its places are back


# -- a result signed while the store is down -------------------------------------------------------

class FailingStore(MemorySessionStore):
    """A memory store that fails like an unreachable Redis while ``down`` (every call), or only
    on ``store_result`` while ``writes_down``."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.down = False
        self.writes_down = False
        self.failed_writes = 0

    def _fail(self) -> None:
        from redis.exceptions import ConnectionError as RedisConnectionError

        raise RedisConnectionError("Connection refused (test)")

    def get(self, session_id):  # type: ignore[no-untyped-def]
        if self.down:
            self._fail()
        return super().get(session_id)

    def store_result(self, session_id, result):  # type: ignore[no-untyped-def]
        if self.down or self.writes_down:
            self.failed_writes += 1
            self._fail()
        return super().store_result(session_id, result)


def test_a_result_signed_while_the_store_is_down_is_kept_and_stored_later(
        tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sessions_module, "RESULT_RETRY_MAX_S", 0.2)
    c, fake = app_client(tmp_path)
    fake.gate.set()
    with c:
        state = state_of(c)
        state.verify_clip = fake  # type: ignore[method-assign]
        service = state.sessions
        assert service is not None
        store = FailingStore(clock=service.clock)
        service.store = store
        store.writes_down = True  # the upload is stored; the result's write fails
        s, _, r = send_clip(c)
        assert r.status_code == 202
        sid = s["session_id"]
        assert wait_until(lambda: store.failed_writes >= 2)
        # this process holds the signed result and answers it, even with the store down
        store.down = True
        res = c.get(f"/v1/sessions/{sid}/result", headers=auth(KEY))
        assert res.status_code == 200, res.text
        assert state.metrics.registry.get_sample_value("facelive_session_results_held") == 1
        token = res.json()["token"]
        assert payload(token)["sid"] == sid and res.json()["decision"] == "live"
        err(c.get(f"/v1/sessions/{sid}/result", headers=auth(KEY2)), 403, "forbidden")
        # another process (or replica) sharing the store is told to retry, never 404
        other = sessions_module.SessionService(service.settings, store, service.signer,
                                               service.clock)
        with pytest.raises(ApiError) as exc:
            other.result(sid, DIGESTS[0][:12])
        assert exc.value.status == 503 and exc.value.code == "store_unavailable"
        assert exc.value.headers["Retry-After"] == "1"
        store.down = False
        status, body, _ = other.result(sid, DIGESTS[0][:12])
        assert status == 202 and body == {"status": "verifying"}
        # the store is back: the retried write lands, and every process answers the same token
        store.writes_down = False
        assert wait_until(lambda: other.result(sid, DIGESTS[0][:12])[0] == 200)
        assert other.result(sid, DIGESTS[0][:12])[1]["token"] == token
        assert service.held(sid) is None


def test_a_session_the_store_lost_comes_back_with_its_result(tmp_path: Path,
                                                            monkeypatch) -> None:
    monkeypatch.setattr(sessions_module, "RESULT_RETRY_MAX_S", 0.2)
    c, fake = app_client(tmp_path)
    with c:
        state = state_of(c)
        state.verify_clip = fake  # type: ignore[method-assign]
        service = state.sessions
        assert service is not None
        store = FailingStore(clock=service.clock)
        service.store = store
        s, _, r = send_clip(c)
        assert r.status_code == 202
        sid = s["session_id"]
        store.down = True  # Redis goes down ...
        fake.gate.set()
        assert wait_until(lambda: store.failed_writes >= 1)
        store.delete(sid)  # ... and comes back empty
        store.down = False
        other = sessions_module.SessionService(service.settings, store, service.signer,
                                               service.clock)
        assert wait_until(lambda: store.get(sid) is not None and store.get(sid).result)
        status, body, _ = other.result(sid, DIGESTS[0][:12])
        assert status == 200 and payload(body["token"])["sid"] == sid
        assert store.get(sid).frames_submitted_at is not None


# -- the verification processes ------------------------------------------------------------------

def load_stub(settings: Settings) -> StubPipeline:
    return StubPipeline(0.9)


@pytest.mark.slow
def test_clips_are_verified_in_processes_of_their_own_at_lower_priority(tmp_path: Path) -> None:
    settings = Settings(api_keys=DIGESTS, signing_key=str(tmp_path / "k.pem"),
                        pipeline_workers=1, verify_slots=1)
    state = ServiceState(settings=settings)
    state.pool_loader = load_stub

    async def main() -> None:
        await state.start()
        try:
            assert state.pool is not None and state.verify_pool is not None
            liveness, verify = state.pool.pids(), state.verify_pool.pids()
            assert len(liveness) == len(verify) == 1 and not set(liveness) & set(verify)
            base = os.getpriority(os.PRIO_PROCESS, liveness[0])
            assert os.getpriority(os.PRIO_PROCESS, verify[0]) == base + VERIFY_NICE
            from facelive.challenge.sequence import new_challenge

            ch = new_challenge()
            job = ChallengeJob(frames=[jpeg(64, 48, i) for i in range(20)],
                               timestamps_ms=[float(i) for i in range(20)],
                               challenge=ch.to_dict(), elapsed_ms=5000.0)
            out = await state.verify_clip(job)
            assert out["decision"] == "spoof" and out["stopped"] == "timing"
            assert (await state.check(jpeg())).decision == "live"
        finally:
            state.stop()

    anyio.run(main)


def test_a_queued_clip_is_not_reported_lost_while_the_queue_ahead_can_still_run(
        tmp_path: Path) -> None:
    from facelive.audit import ResultSigner
    from facelive.server.session_store import Session

    settings = Settings(api_keys=DIGESTS, verify_slots=2, verify_queue=8, verify_timeout_s=30,
                        job_timeout_s=10)
    now = time.time()
    service = sessions_module.SessionService(settings, MemorySessionStore(),
                                             ResultSigner.generate(), clock=lambda: now)
    assert service.lost_after_s() == (1 + 4) * (30 + 10) + sessions_module.LOST_GRACE_S

    def session(submitted_ago: float) -> Session:
        return Session("s", "h", "k", {}, now - 400, now + 100, challenge_fetched_at=now - 399,
                       frames_submitted_at=now - submitted_ago)

    # 150 s after the upload: four clips' turns ahead of it may still be running
    assert service._result_of(session(150.0))[:2] == (202, {"status": "verifying"})
    with pytest.raises(ApiError) as exc:
        service._result_of(session(service.lost_after_s() + 1))
    assert exc.value.status == 500 and exc.value.code == "verification_lost"
