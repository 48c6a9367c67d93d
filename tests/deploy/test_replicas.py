"""Two ``facelive serve`` replicas behind nginx (``deploy/nginx/facelive.conf``), one Redis, one
signing key: sessions cross replicas, the JWK Set agrees, and a replica killed under load loses
no honest request and no session.

Real nginx, redis-server and servers with the shipped models, on loopback; skips with the reason
where nginx or redis-server is not installed (``.ci/run`` installs both).
"""

from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from helpers import REPO, jpeg, subprocess_env
from helpers.sessions import (
    DIGESTS,
    KEY,
    KEY2,
    auth,
    clip,
    fetch,
    joserfc_verify,
    load_astronaut,
    upload,
)

pytestmark = pytest.mark.slow

SESSIONS_PER_KEY = 10


def _bench() -> ModuleType:
    """benchmarks/bench_replicas.py: how replicas and nginx are started (shared with it)."""
    spec = importlib.util.spec_from_file_location("bench_replicas",
                                                  REPO / "benchmarks" / "bench_replicas.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


bench = _bench()


@dataclass
class Cluster:
    front: str
    folder: Path
    replicas: list[Any]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[Cluster]:
    if bench.nginx_executable() is None:
        pytest.skip("nginx not installed (apt-get install -y nginx)")
    tmp = tmp_path_factory.mktemp("replicas")
    key = tmp / "signing.pem"
    subprocess.run([sys.executable, "-m", "facelive", "audit", "keygen", "--out", str(key)],
                   env=subprocess_env(), cwd=REPO, check=True, capture_output=True)
    keys = tmp / "api-keys"
    keys.write_text("\n".join(DIGESTS) + "\n")
    args = bench.replica_args(redis_url, key, "--api-keys-file", str(keys),
                              "--pipeline-workers", "1", "--sessions-per-key",
                              str(SESSIONS_PER_KEY), "--session-window", "600")
    replicas = [bench.start_server(tmp, name, *args) for name in ("a", "b")]
    front = None
    try:
        for r in replicas:
            bench.wait_ready(r.url + "/readyz", r.proc, r.log)
        front = bench.start_nginx(tmp, [r.url for r in replicas])
        bench.wait_ready(front.url + "/healthz", front.proc, front.log)
        yield Cluster(front.url, tmp, replicas)
    finally:
        for s in [*replicas, *([front] if front else [])]:
            s.kill(signal.SIGTERM)


@pytest.fixture(scope="module")
def astronaut():
    return load_astronaut()


def test_the_replicas_publish_one_jwk_set(cluster: Cluster) -> None:
    sets = [httpx.get(r.url + "/.well-known/jwks.json", timeout=10).json()
            for r in cluster.replicas]
    assert sets[0] == sets[1] and sets[0]["keys"]
    assert httpx.get(cluster.front + "/.well-known/jwks.json", timeout=10).json() == sets[0]


def test_a_session_created_on_one_replica_completes_on_the_other(cluster: Cluster,
                                                                 astronaut) -> None:
    a, b = (httpx.Client(base_url=r.url, timeout=60) for r in cluster.replicas)
    with a, b:
        r = a.post("/v1/sessions", headers=auth(KEY))
        assert r.status_code == 201, r.text
        s = r.json()
        ch = fetch(b, s)
        frames, ts = clip(astronaut, ch)
        time.sleep(ch.capture_ms / 1000.0 + 0.5)  # the clip takes its time to film
        up = upload(b, s, frames, ts, ch.nonce)
        assert up.status_code == 202, up.text
        deadline = time.monotonic() + 120
        while True:
            res = b.get(f"/v1/sessions/{s['session_id']}/result", headers=auth(KEY))
            if res.status_code != 202 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert res.status_code == 200, res.text
        body = res.json()
        assert body["decision"] in ("live", "spoof", "unknown")
        # the token signed on replica b verifies with replica a's JWK Set
        claims = joserfc_verify(body["token"], a.get("/.well-known/jwks.json").json())
        assert claims["sid"] == s["session_id"] and claims["decision"] == body["decision"]
        # and replica a reads the same result from the shared store
        assert a.get(f"/v1/sessions/{s['session_id']}/result",
                     headers=auth(KEY)).json()["token"] == body["token"]


def test_a_tenant_gets_its_session_quota_once_across_replicas(cluster: Cluster) -> None:
    a, b = (httpx.Client(base_url=r.url, timeout=30) for r in cluster.replicas)
    with a, b:
        answers = Counter((a if i % 2 else b).post("/v1/sessions", headers=auth(KEY2)).status_code
                          for i in range(3 * SESSIONS_PER_KEY))
    assert answers == Counter({201: SESSIONS_PER_KEY, 429: 2 * SESSIONS_PER_KEY}), answers


def test_killing_a_replica_under_load_loses_no_request_and_no_session(cluster: Cluster) -> None:
    image = jpeg(320, 240)
    victim, survivor = cluster.replicas[1], cluster.replicas[0]
    with httpx.Client(base_url=cluster.front, timeout=60) as front:
        before = front.post("/v1/sessions", headers=auth(KEY))
        assert before.status_code == 201, before.text
        sid = before.json()["session_id"]
        statuses: Counter[int] = Counter()
        lock = threading.Lock()

        def honest_client(n: int) -> None:
            with httpx.Client(base_url=cluster.front, timeout=60) as c:
                for _ in range(n):
                    r = c.post("/v1/liveness", content=image,
                               headers={**auth(KEY), "content-type": "image/jpeg"})
                    with lock:
                        statuses[r.status_code] += 1

        clients = [threading.Thread(target=honest_client, args=(30,)) for _ in range(3)]
        for t in clients:
            t.start()
        deadline = time.monotonic() + 120
        while sum(statuses.values()) < 15 and time.monotonic() < deadline:
            time.sleep(0.01)
        victim.kill()  # a third of the way through the load
        for t in clients:
            t.join(300)
        assert not any(t.is_alive() for t in clients)
        assert statuses == Counter({200: 90}), statuses
        # both replicas served the load, and some requests were passed on from the dead one
        upstreams = [line.split()[2:] for line in (cluster.folder / "access.log").read_text()
                     .splitlines() if " /v1/liveness " in line]
        dead = victim.url.removeprefix("http://")
        assert any(u == [dead] for u in upstreams), "the victim served nothing before the kill"
        assert any(len(u) > 1 and u[0].rstrip(",") == dead for u in upstreams), upstreams
        # nginx routes around the dead replica: new requests and the session live on
        after = [front.post("/v1/liveness", content=image,
                            headers={**auth(KEY), "content-type": "image/jpeg"}).status_code
                 for _ in range(6)]
        assert after == [200] * 6
        got = front.get(f"/v1/sessions/{sid}/challenge",
                        headers=auth(before.json()["client_token"]))
        assert got.status_code == 200, got.text
        assert survivor.proc.poll() is None
