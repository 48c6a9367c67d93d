"""The session store: in memory, and in a real Redis shared by two store instances and
by two processes. The Redis tests start their own ``redis-server`` on a free port of 127.0.0.1
(skipped, with the reason, where it is not installed: ``apt-get install -y redis-server``)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

from facelive.server.session_store import (
    MemorySessionStore,
    RedisSessionStore,
    SessionConflict,
    SessionExpired,
    SessionNotFound,
    StoreFull,
    hash_token,
    new_session_id,
    new_token,
    open_store,
)
from helpers import FakeClock

CHALLENGE = {"nonce": "n-1", "steps": [{"colour": [255, 255, 255], "start_ms": 0,
                                        "duration_ms": 500}], "created_at": 1.0}


def _stores(kind: str, redis_url_factory, clock: FakeClock):
    if kind == "memory":
        s = MemorySessionStore(clock=clock, retain_s=100)
        return s, s  # one process: the "two instances" are the same object
    url = redis_url_factory()
    prefix = f"t{time.monotonic_ns()}:"
    return (RedisSessionStore(url, prefix=prefix, clock=clock, retain_s=100),
            RedisSessionStore(url, prefix=prefix, clock=clock, retain_s=100))


@pytest.fixture(params=["memory", "redis"])
def stores(request: pytest.FixtureRequest):
    clock = FakeClock(1_000_000.0)
    a, b = _stores(request.param, lambda: request.getfixturevalue("redis_url"), clock)
    yield a, b, clock
    a.close()
    b.close()


def test_session_lifecycle_across_instances(stores) -> None:
    a, b, clock = stores
    sid, token = new_session_id(), new_token()
    created = a.create(sid, hash_token(token), "key-1", CHALLENGE, clock.t + 60, {"ip": "x"})
    assert created.status == "pending"
    with pytest.raises(SessionConflict):
        b.create(sid, hash_token("other"), "key-2", CHALLENGE, clock.t + 60)
    s = b.get(sid)  # created through one, read through the other
    assert s is not None and s.api_key_id == "key-1" and s.challenge == CHALLENGE
    assert s.token_matches(token) and not s.token_matches(new_token())
    assert s.meta == {"ip": "x"}
    clock.t += 1
    first = b.mark_challenge_fetched(sid)
    clock.t += 1
    assert a.mark_challenge_fetched(sid) == first  # the first fetch is kept
    marked = b.mark_frames_submitted(sid)
    assert marked.frames_submitted_at == clock.t and marked.status == "submitted"
    with pytest.raises(SessionConflict):
        a.mark_frames_submitted(sid)  # exactly once, whichever instance
    a.store_result(sid, {"decision": "spoof", "token": "t"})
    with pytest.raises(SessionConflict):
        b.store_result(sid, {"decision": "live"})
    done = b.get(sid)
    assert done is not None and done.result == {"decision": "spoof", "token": "t"}
    assert done.status == "done"
    a.delete(sid)
    assert b.get(sid) is None


def test_unknown_and_expired(stores) -> None:
    a, b, clock = stores
    with pytest.raises(SessionNotFound):
        a.mark_frames_submitted("nope")
    with pytest.raises(SessionNotFound):
        b.mark_challenge_fetched("nope")
    assert a.get("nope") is None
    sid = new_session_id()
    a.create(sid, hash_token("t"), "k", CHALLENGE, clock.t + 10)
    clock.t += 11
    s = b.get(sid)
    assert s is not None and s.expired(clock.t)  # kept for retain_s: 410, not 404
    with pytest.raises(SessionExpired):
        b.mark_frames_submitted(sid)
    with pytest.raises(SessionExpired):
        a.mark_challenge_fetched(sid)


def test_nonce_single_use_across_instances(stores) -> None:
    a, b, clock = stores
    assert a.consume_nonce("abc", ttl_s=30)
    assert not b.consume_nonce("abc", ttl_s=30)
    assert not a.consume_nonce("abc", ttl_s=30)
    assert b.consume_nonce("other", ttl_s=30)


def test_counters(stores) -> None:
    a, b, clock = stores
    c1 = a.hit("key:k1", window_s=60)
    c2 = b.hit("key:k1", window_s=60)
    assert (c1.count, c2.count) == (1, 2)
    assert 0 < c2.reset_in_s <= 60
    assert a.hit("addr:1.2.3.4", window_s=60).count == 1


def test_memory_counter_window_and_nonce_expiry() -> None:
    clock = FakeClock(1_000_000.0)
    s = MemorySessionStore(clock=clock)
    assert s.hit("k", 10).count == 1
    clock.t += 5
    c = s.hit("k", 10)
    assert c.count == 2 and c.reset_in_s == pytest.approx(5)
    clock.t += 6
    assert s.hit("k", 10).count == 1  # a new window
    assert s.consume_nonce("n", ttl_s=10)
    clock.t += 11
    assert s.consume_nonce("n", ttl_s=10)  # forgotten after its ttl


def test_memory_store_is_bounded() -> None:
    clock = FakeClock(1_000_000.0)
    s = MemorySessionStore(max_sessions=3, max_nonces=5, clock=clock, retain_s=5)
    for i in range(3):
        s.create(f"s{i}", "h", "k", CHALLENGE, clock.t + 10)
    with pytest.raises(StoreFull):
        s.create("s3", "h", "k", CHALLENGE, clock.t + 10)
    clock.t += 11  # expired (retained): they make room before live ones would be refused
    s.create("s3", "h", "k", CHALLENGE, clock.t + 10)
    assert s.get("s3") is not None
    for i in range(20):
        assert s.consume_nonce(f"n{i}")
    assert len(s._nonces) <= 5


def test_memory_store_threads_mark_once() -> None:
    s = MemorySessionStore()
    s.create("x", "h", "k", CHALLENGE, time.time() + 60)
    wins = []

    def worker() -> None:
        try:
            s.mark_frames_submitted("x")
            wins.append(1)
        except SessionConflict:
            pass

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


def test_open_store() -> None:
    assert isinstance(open_store(None), MemorySessionStore)
    with pytest.raises(ValueError):
        open_store("http://example.invalid")


_WORKER = """
import json, sys
from facelive.server.session_store import RedisSessionStore, SessionConflict
url, prefix, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = RedisSessionStore(url, prefix=prefix)
sys.stdin.readline()  # start together
nonces = [i for i in range(n) if store.consume_nonce(f"nonce-{i}", ttl_s=60)]
marked = []
for i in range(n):
    try:
        store.mark_frames_submitted(f"sess-{i}")
        marked.append(i)
    except SessionConflict:
        pass
print(json.dumps({"nonces": nonces, "marked": marked}))
"""


def test_two_processes_share_one_redis(redis_url: str) -> None:
    prefix = f"p{time.monotonic_ns()}:"
    n = 200
    setup = RedisSessionStore(redis_url, prefix=prefix)
    for i in range(n):
        setup.create(f"sess-{i}", "h", "k", CHALLENGE, time.time() + 60)
    procs = [subprocess.Popen([sys.executable, "-c", _WORKER, redis_url, prefix, str(n)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    time.sleep(1.0)  # both imported and connected
    for p in procs:
        p.stdin.write("go\n")  # type: ignore[union-attr]
        p.stdin.flush()  # type: ignore[union-attr]
    outs = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    nonce_wins = sorted(outs[0]["nonces"] + outs[1]["nonces"])
    marked = sorted(outs[0]["marked"] + outs[1]["marked"])
    assert nonce_wins == list(range(n))  # every nonce consumed exactly once
    assert marked == list(range(n))  # every session's frames accepted exactly once
    # the nonce a process consumed is refused when replayed to the other instance
    assert not setup.consume_nonce("nonce-0", ttl_s=60)
    setup.close()
