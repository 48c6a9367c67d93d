"""Two app instances on one real Redis: replicas behind a load balancer.

A ``redis-server`` is started on a free port for this module (skipped, with the reason, where it
is not installed: ``apt-get install -y redis-server``; ``.ci/run`` installs it). Both apps use
the same Redis URL and the same signing key file, as replicas must. A session created on one is
completed on the other; a nonce replayed to the second is refused; two simultaneous uploads of
one session to the two instances are accepted exactly once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from facelive.server.app import create_app
from facelive.server.settings import Settings
from helpers import FakeClock, free_port
from helpers.redis_server import redis_server
from helpers.sessions import (
    DIGESTS,
    KEY,
    KEY2,
    clip,
    create,
    err,
    fetch,
    joserfc_verify,
    payload,
    upload,
    wait_result,
)


@pytest.fixture
def redis_fresh(redis_url: str) -> str:
    """The module's Redis, emptied (the session counters would carry over between tests)."""
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url


@pytest.fixture
def two(redis_fresh: str, pipeline: Any, tmp_path: Path) -> Iterator[tuple[TestClient, ...]]:
    redis_url = redis_fresh
    clock = FakeClock()
    settings = Settings(api_keys=DIGESTS, redis_url=redis_url,
                        signing_key=str(tmp_path / "signing.pem"))
    a = TestClient(create_app(settings, pipeline, clock=clock))
    b = TestClient(create_app(settings, pipeline, clock=clock))
    with a, b:
        yield a, b, clock  # type: ignore[misc]


def test_a_session_created_on_one_instance_completes_on_the_other(two, astronaut) -> None:
    a, b, clock = two
    s = create(a)
    ch = fetch(b, s)  # the browser lands on the other replica
    frames, ts = clip(astronaut, ch)
    clock.t += ch.capture_ms / 1000.0 + 0.5
    r = upload(b, s, frames, ts, ch.nonce)
    assert r.status_code == 202 and r.json() == {"status": "received"}
    res = wait_result(a, s["session_id"])  # the backend asks the first one
    assert res.status_code == 200 and res.json()["decision"] == "live", res.text
    jwks_a = a.get("/.well-known/jwks.json").json()
    assert b.get("/.well-known/jwks.json").json() == jwks_a  # one key for every replica
    assert joserfc_verify(res.json()["token"], jwks_a)["sid"] == s["session_id"]
    # the nonce (and the frames) replayed to the second instance: refused
    err(upload(b, s, frames, ts, ch.nonce), 409, "frames_submitted")
    err(upload(a, s, frames, ts, ch.nonce), 409, "frames_submitted")
    # a valid client token of this session is refused on another one, across instances
    other = create(b)
    err(a.get(f"/v1/sessions/{other['session_id']}/challenge", headers={
        "authorization": f"Bearer {s['client_token']}"}), 403, "forbidden")


def test_a_nonce_is_accepted_once_across_instances(two, astronaut) -> None:
    a, b, clock = two
    s = create(a)
    ch = fetch(a, s)
    frames, ts = clip(astronaut, ch, seed=1)
    clock.t += ch.capture_ms / 1000.0 + 0.5
    statuses: list[int] = []
    barrier = threading.Barrier(2)

    def send(client: TestClient) -> None:
        barrier.wait()
        statuses.append(upload(client, s, frames, ts, ch.nonce).status_code)

    threads = [threading.Thread(target=send, args=(c,)) for c in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(statuses) == [202, 409], statuses
    res = wait_result(b, s["session_id"])
    assert res.status_code == 200
    assert payload(res.json()["token"])["nonce"] == ch.nonce


def test_session_counters_are_shared(redis_fresh: str, pipeline: Any, tmp_path: Path) -> None:
    settings = Settings(api_keys=DIGESTS, redis_url=redis_fresh, sessions_per_key=3,
                        signing_key=str(tmp_path / "signing.pem"))
    a = TestClient(create_app(settings, pipeline))
    b = TestClient(create_app(settings, pipeline))
    with a, b:
        for c in (a, b, a):
            assert c.post("/v1/sessions", headers={"authorization": f"Bearer {KEY}"}
                          ).status_code == 201
        r = b.post("/v1/sessions", headers={"authorization": f"Bearer {KEY}"})
        err(r, 429, "too_many_sessions")
        assert int(r.headers["retry-after"]) >= 1


def test_an_unreachable_redis_stops_the_start(pipeline: Any, tmp_path: Path) -> None:
    settings = Settings(api_keys=DIGESTS, redis_url=f"redis://127.0.0.1:{free_port()}/0",
                        signing_key=str(tmp_path / "signing.pem"))
    with pytest.raises(RuntimeError, match="cannot reach the session store"):
        with TestClient(create_app(settings, pipeline)):
            pass


@pytest.mark.parametrize("store", ["memory", "redis"])
def test_one_key_at_its_session_quota_leaves_the_others_alone(
        store: str, request: pytest.FixtureRequest, pipeline: Any, tmp_path: Path) -> None:
    """Finding: one capacity for every tenant (10,000 sessions filled in 13 s with one key; the
    other tenants answered 503 ``sessions_full``). Now a key at ``key_max_sessions`` gets 429
    ``quota_exceeded`` with ``Retry-After`` (shared by replicas on one Redis), another key's
    sessions are still created."""
    redis_url = request.getfixturevalue("redis_fresh") if store == "redis" else None
    settings = Settings(api_keys=DIGESTS, redis_url=redis_url, key_max_sessions=3,
                        signing_key=str(tmp_path / "signing.pem") if redis_url else None)
    a = TestClient(create_app(settings, pipeline))
    b = TestClient(create_app(settings, pipeline)) if redis_url else a
    with a, b:
        for c in (a, b, a):
            create(c, KEY)
        r = b.post("/v1/sessions", headers={"authorization": f"Bearer {KEY}"})
        err(r, 429, "quota_exceeded")
        assert 1 <= int(r.headers["retry-after"]) <= 300  # until its first session expires
        for c in (a, b, a):
            create(c, KEY2)


@pytest.mark.slow
def test_an_attacker_key_cannot_push_another_out_of_a_small_redis(pipeline: Any,
                                                                  tmp_path: Path) -> None:
    """Finding: under ``volatile-ttl`` one key's uploads (150 frame hashes each, kept 24 h)
    evicted the rate counters and another key's session (404); under ``noeviction`` Redis ran
    out of memory and every key got 503. With the documented configuration (``noeviction``,
    ``maxmemory`` above the quotas), through the HTTP API: the attacker key fills its session
    quota and uploads 150 random frames into every session (twice its frame-hash quota); it
    gets 429 ``quota_exceeded``, never 503; nothing is evicted; the other key's session is still
    there and it creates new ones."""
    import os

    with redis_server(tmp_path, "--maxmemory", "12mb",
                      "--maxmemory-policy", "noeviction") as (url, client):
        settings = Settings(api_keys=DIGESTS, redis_url=url, key_max_sessions=30,
                            key_max_frame_hashes=2_000, signing_key=str(tmp_path / "k.pem"))
        with TestClient(create_app(settings, pipeline)) as c:
            honest = create(c, KEY2)
            fetch(c, honest)
            statuses = []
            for _ in range(40):
                r = c.post("/v1/sessions", headers={"authorization": f"Bearer {KEY}"})
                statuses.append(r.status_code)
                if r.status_code != 201:
                    err(r, 429, "quota_exceeded")
                    continue
                s = r.json()
                ch = fetch(c, s)
                frames = [os.urandom(64) for _ in range(150)]
                up = upload(c, s, frames, [100.0 * i for i in range(150)], ch.nonce)
                assert up.status_code == 202, up.text
            assert statuses.count(201) == 30 and statuses.count(429) == 10
            assert int(client.info("stats")["evicted_keys"]) == 0
            assert client.zcard("facelive:tenant:" + honest["aud"] + ":sessions") == 1
            r = c.get(f"/v1/sessions/{honest['session_id']}/result",
                      headers={"authorization": f"Bearer {KEY2}"})
            assert r.status_code == 202 and r.json() == {"status": "pending"}  # not 404
            fetch(c, create(c, KEY2))  # not 503
            memory = client.info("memory")
            assert memory["used_memory"] < memory["maxmemory"]
            attacker = [k for k in client.scan_iter("facelive:tenant:*:frames")]
            assert [client.zcard(k) for k in attacker] == [2_000]
