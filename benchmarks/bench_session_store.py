"""Benchmark: the session store filled by one party, and what each entry costs in Redis.

    python benchmarks/bench_session_store.py [--fill 100000] [--repeat 5] [--no-redis]

1. The fill attack on :class:`facelive.server.session_store.MemorySessionStore`: one key
   uploads 150 random frames per session until ``--fill`` frame hashes are stored (the store
   holds ``--fill`` at most: its frame capacity, the size of the former shared table); then,
   ``--repeat`` times, an honest key's session creation and a 150-frame upload (nonce, mark,
   frame hashes) into the full store, timed in thread CPU ms (the store's work under its lock,
   robust to other processes on a shared machine): median and max.
2. Bytes per entry in Redis (``redis-server`` on a free port, started and stopped here; skipped
   when absent): ``used_memory`` before and after 2,000 sessions, 2,000 nonces and 30,000
   frame hashes, each with its tenant index; the figures ``docs/deployment.md`` sizes
   ``maxmemory`` from.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time


def _hashes(n: int) -> list[str]:
    return [os.urandom(32).hex() for _ in range(n)]


def fill_attack(fill: int, repeat: int) -> dict[str, float]:
    from facelive.server.session_store import MemorySessionStore

    store = MemorySessionStore(max_frame_hashes=fill, tenant_max_frames=fill,
                               tenant_max_sessions=fill // 150 + 10)
    challenge = {"nonce": "n", "steps": []}
    now = time.time()
    t0 = time.perf_counter()
    for i in range(fill // 150 + 1):
        store.create(f"att-{i}", "h", "attacker", challenge, now + 300)
        store.consume_nonce(f"att-nonce-{i}", 360, tenant="attacker")
        store.mark_frames_submitted(f"att-{i}")
        store.record_frames(f"att-{i}", _hashes(150), 600)
    fill_s = time.perf_counter() - t0
    create_ms, upload_ms = [], []
    for i in range(repeat):
        frames = _hashes(150)
        t0 = time.thread_time()
        store.create(f"honest-{i}", "h", "honest", challenge, now + 300)
        t1 = time.thread_time()
        store.consume_nonce(f"honest-nonce-{i}", 360, tenant="honest")
        store.mark_frames_submitted(f"honest-{i}")
        store.record_frames(f"honest-{i}", frames, 600)
        t2 = time.thread_time()
        create_ms.append((t1 - t0) * 1e3)
        upload_ms.append((t2 - t1) * 1e3)
    return {"fill_s": fill_s, "stored": len(store._frames),
            "create_med": statistics.median(create_ms), "create_max": max(create_ms),
            "upload_med": statistics.median(upload_ms), "upload_max": max(upload_ms)}


def redis_bytes() -> dict[str, float] | None:
    exe = shutil.which("redis-server")
    if exe is None:
        return None
    import redis

    from facelive.challenge.sequence import new_challenge
    from facelive.server.session_store import RedisSessionStore, hash_token, new_session_id

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", tempfile.mkdtemp()],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        store = RedisSessionStore(url, tenant_max_sessions=10**6, tenant_max_nonces=10**6,
                                  tenant_max_frames=10**7)

        def used() -> int:
            return int(client.info("memory")["used_memory"])

        n, uploads = 2000, 200
        m0 = used()
        sids = [new_session_id() for _ in range(n)]
        for sid in sids:
            store.create(sid, hash_token(sid), "0123456789ab",
                         new_challenge(mode="flash").to_dict(), time.time() + 300,
                         {"mode": "flash"})
        m1 = used()
        for sid in sids:
            store.consume_nonce(f"nonce-{sid}", 360, tenant="0123456789ab")
        m2 = used()
        t0 = time.perf_counter()
        for sid in sids[:uploads]:
            store.mark_frames_submitted(sid)
            store.record_frames(sid, _hashes(150), 600)
        upload_ms = (time.perf_counter() - t0) / uploads * 1e3
        m3 = used()
        store.close()
        return {"session": (m1 - m0) / n, "nonce": (m2 - m1) / n,
                "frame": (m3 - m2) / (uploads * 150), "upload_ms": upload_ms}
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fill", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-redis", action="store_true")
    args = ap.parse_args()
    r = fill_attack(args.fill, args.repeat)
    print(f"memory store filled with {r['stored']:,} frame hashes by one key in "
          f"{r['fill_s']:.1f} s")
    print("| honest call into the full store | median CPU ms | max CPU ms |")
    print("|---|---|---|")
    print(f"| create a session | {r['create_med']:.2f} | {r['create_max']:.2f} |")
    print(f"| 150-frame upload (nonce, mark, hashes) | {r['upload_med']:.2f} | "
          f"{r['upload_max']:.2f} |")
    if not args.no_redis:
        b = redis_bytes()
        if b is None:
            print("redis-server not installed: Redis figures skipped")
        else:
            print("\n| Redis entry (with its tenant index) | bytes |")
            print("|---|---|")
            for what in ("session", "nonce", "frame"):
                print(f"| {what} | {b[what]:.0f} |")
            print(f"\nRedis: one 150-frame record_frames call {b['upload_ms']:.1f} ms")


if __name__ == "__main__":
    main()
