"""Hostile-traffic benchmark of ``facelive serve``: bounded attacks beside honest clients, loopback.

    PYTHONPATH=src python benchmarks/bench_hostile.py --duration 60 --honest-clients 4
    PYTHONPATH=src python benchmarks/bench_hostile.py --workers 2 --redis      # shared limits
    PYTHONPATH=src python benchmarks/bench_hostile.py --attacks input --duration 300  # soak
    PYTHONPATH=src python benchmarks/bench_hostile.py --quick            # a few seconds (tests)
    PYTHONPATH=src python benchmarks/bench_hostile.py --worst-case       # cost of the largest image

Starts ``facelive serve`` on 127.0.0.1 (its own subprocess, real models unless ``--server-args``
says otherwise) with API keys (one per honest client, one per attacker), an operator key, the
session API with a signing key, per-key rate limits (``--key-rate`` requests/s, ``--key-burst``)
and, with ``--redis``, a ``redis-server`` it starts on a free port (``noeviction``, as
``docs/deployment.md`` configures it) for the sessions and the limits, which ``--workers 2``
needs. It waits for ``/readyz``, warms up (two requests per honest client, one honest challenge
session), samples the server's resident memory (the server and its child processes, from
/proc), then for ``--duration`` seconds runs, all at once, the honest clients:

- ``honest /v1/liveness``: ``--honest-clients`` clients (each its own API key) posting a
  640x480 camera frame, one request at a time, 0.1 s apart;
- ``honest sessions``: ``--honest-sessions`` clients (their own API key) running the challenge
  flow: create a session, fetch the challenge, film it (:func:`facelive.challenge.simulate.
  simulate_live_clip` on ``examples/astronaut.jpg``: the head turns a little, the screen's light
  follows the face; the time the challenge takes to play passes on the server's clock), upload
  with the clip's timestamps (sent again after 503 ``verify_busy`` or 429), poll the result,
  and check the signed token against the JWK Set (``aud``, ``sid``);

and, with ``--attacks tenant`` (the default) or ``all``, ``--attack-threads`` attackers (default
8; thread ``i`` runs attack ``i`` mod 8, one request at a time; they run in a process of their
own, so that building their bodies never delays the honest clients' event loop; all but the
``rate:`` and capacity ones wait the ``Retry-After``, at most 1 s, after a 429 or 503), the
attacks of the second hardening review:

1. ``rate: /v1/liveness`` and ``rate: session creation``: one key (``hammer``) posting camera
   frames and creating sessions back to back (4 connections each); its answers other than
   429 ``rate_limited`` must stay within one key's limit (``key_burst`` per window of
   ``key_burst / key_rate`` s) however many server processes share the port;
2. ``store fill``: one key creating sessions and uploading 150 random 100-byte frames each at
   once (frame hashes and nonces into the store);
3. with ``--redis``, the same attacks against Redis: its ``evicted_keys`` must stay 0;
4. ``clip flood, bad timing`` and ``clip flood, plausible timing``: one key uploading 150
   frames of 1000x1000 JPEG (every frame unique; the JPEG quality chosen so the clip just fits
   the default 8 MB upload limit: the review's 12 MB clip is refused 413) with timestamps 1 ms
   apart, or
   at 10 fps over the challenge after its time has passed (so every check runs);
5. ``part flood``: 10 MiB of 873,796 empty multipart parts to ``/v1/liveness``, 7.8 MB of
   them to the frames upload;
6. ``session capacity``: one key (``capacity``) creating sessions back to back (4
   connections);
7. ``huge timestamp``: an upload whose timestamps are ``[1`` and 400 zeros ``]``;
8. ``tenant reads /metrics, /v1/info``: a tenant API key on the operator endpoints.

With ``--attacks input`` or ``all``, the attacks of the first hardening review too (one key
each, bounded as before): the 8000x32 PNG (``thin image``), the largest accepted JPEG, 9.5 MB
JSON bodies (``--big-json`` clients), 100,000-deep nested JSON, 8 slow uploads (10 bytes every
2 s), 8 silent sockets, forged ``X-Forwarded-For`` with escape sequences, framing attacks and a
fuzzed-upload mix, and a ``/healthz`` probe every 0.25 s.

When the time is up the attackers stop, the honest sessions under way finish, the bench waits
for the attackers' accepted clips to be verified (their results polled) and ``--settle``
seconds more, and samples the memory again. It prints a table (per attacker the requests sent
and the answers by status and error code), then the honest liveness share answered 200 and its
latency percentiles, the honest sessions completed, the server's memory at the start, its
peak, the end of the attack and after it, and the log's tracebacks. Exit status 1 when a bound
of the issue is missed: honest ``/v1/liveness`` >= 95% answered 200 with p99 <= 1 s, every
honest session completed with a verified token, peak memory under 1.5 GB (1.5e9 bytes), memory
after the attack within 20% of the start; also when the ``hammer`` key got more than its limit,
a tenant key read ``/metrics`` or ``/v1/info``, Redis evicted a key, any answer was a 500, a
``/healthz`` probe was not answered 200, or the log holds a traceback or a forged address.

``--worst-case`` instead sends, one at a time to a server with one pipeline process (no API
keys), the largest and thinnest images the limits accept (and two just past them), three times
each, and prints for each the answer, the slowest time and the pipeline process's peak resident
memory (VmHWM) and its growth over the process after a warm-up frame: the stated cost of the
limits.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import math
import multiprocessing
import os
import random
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

# benchmarks/ is on sys.path when run as a script
from bench_load import peak_rss_mib, rss_mib, tree_pids, wait_ready

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELIVE_DATA", REPO.parent / "shared" / "data"))
FORGED = "6.6.6.6"
PEAK_BOUND_MIB = 1.5e9 / 2**20
"""The issue's memory bound, 1.5 GB, in MiB."""
EMPTY_PARTS = 873_796
"""10 MiB of empty multipart parts (12 bytes each with a 4-character boundary)."""
TENANT_ATTACKS = ("rate: /v1/liveness", "rate: session creation", "store fill",
                  "clip flood, bad timing", "clip flood, plausible timing", "part flood",
                  "session capacity", "huge timestamp + tenant on /metrics, /v1/info")
"""Attack thread ``i`` runs ``TENANT_ATTACKS[i % 8]``."""
HAMMER_CONNECTIONS = 4
"""Connections of each ``rate:`` attacker and of the capacity one (one request at a time
each)."""


# -- bodies -------------------------------------------------------------------------------------

def frame_jpeg() -> bytes:
    """A 640x480 camera frame: the shared NUAA live frame, else a synthetic picture."""
    import cv2

    real = sorted((DATA / "nuaa" / "ClientRaw").rglob("*.jpg"))[:1]
    img = cv2.imread(str(real[0])) if real else None
    if img is None:
        yy, xx = np.mgrid[0:480, 0:640]
        img = np.dstack([xx % 256, yy % 256, (xx + yy) % 256]).astype(np.uint8)
    img = cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()


def png(w: int, h: int) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.zeros((h, w, 3), np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def largest_jpeg() -> bytes:
    """2000x2000 (4 MP, the default pixel limit): a smooth picture, so it stays small."""
    import cv2

    yy, xx = np.mgrid[0:2000, 0:2000]
    img = np.dstack([(xx // 16) % 256, (yy // 16) % 256, ((xx + yy) // 32) % 256])
    return cv2.imencode(".jpg", img.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def png_claiming(w: int, h: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b""))


def multipart(image: bytes, field_name: str = "image") -> tuple[bytes, str]:
    b = "hostileBenchBoundary0123456789"
    head = (f"--{b}\r\nContent-Disposition: form-data; name=\"{field_name}\"; "
            f"filename=\"f.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode()
    return head + image + f"\r\n--{b}--\r\n".encode(), f"multipart/form-data; boundary={b}"


def fuzz_cases(frame: bytes, rng: random.Random) -> list[tuple[str, bytes, str]]:
    """(name, body, content type) hostile uploads; mutated ones differ on every call."""
    mutated = bytearray(frame)
    for _ in range(rng.randint(1, 30)):
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    return [
        ("mutated jpeg", bytes(mutated), "image/jpeg"),
        ("truncated jpeg", frame[: rng.randrange(10, len(frame))], "image/jpeg"),
        ("random bytes", os.urandom(rng.randrange(1, 50_000)), "image/jpeg"),
        ("bomb header", png_claiming(50_000, 50_000), "image/png"),
        ("6000x3000 header", png_claiming(6000, 3000), "image/png"),
        ("tiny", png(8, 8), "image/png"),
        ("text", b"hello" * 100, "text/plain"),
        ("empty", b"", "image/jpeg"),
        ("bad base64", b'{"image": "%%%not base64%%%"}', "application/json"),
        ("base64 of garbage", json.dumps({"image": base64.b64encode(os.urandom(3000))
                                          .decode()}).encode(), "application/json"),
        ("json list", b"[1, 2, 3]", "application/json"),
        ("broken multipart", b"--x\r\ngarbage" * 50, "multipart/form-data; boundary=x"),
        ("wrong field", *multipart(frame, "photo")),
        ("mutated multipart", *multipart(bytes(mutated))),
    ]


def big_frames(n: int = 150, size: int = 1000, total: int = 7_900_000) -> list[bytes]:
    """``n`` JPEG frames of ``examples/astronaut.jpg`` at ``size`` x ``size``, a few pixels
    changed per frame, at the highest JPEG quality (85 down to 30) that keeps them within
    ``total`` bytes (150 frames of 1000x1000 within the default 8 MB upload limit; the
    review's clip was the same at about 12 MB, now refused 413)."""
    import cv2

    img = cv2.resize(cv2.imread(str(REPO / "examples" / "astronaut.jpg")), (size, size),
                     interpolation=cv2.INTER_CUBIC)
    quality = next((q for q in range(85, 30, -5) if n * len(
        cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1]) <= total), 30)
    out = []
    for i in range(n):
        f = img.copy()
        f[i // size, i % size] ^= 0xFF
        out.append(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, quality])[1].tobytes())
    return out


def unique(jpeg: bytes) -> bytes:
    """The same picture with 16 random bytes in a JPEG comment: another frame hash."""
    return jpeg[:2] + b"\xff\xfe\x00\x12" + os.urandom(16) + jpeg[2:]


BOUNDARY = "hostileBenchBoundary0123456789"


def frames_body(frames: list[bytes], timestamps: str, nonce: str,
                boundary: str = BOUNDARY) -> tuple[bytes, str]:
    """The multipart body of a frames upload (``timestamps``: its JSON text)."""
    parts = []
    for i, f in enumerate(frames):
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"frames\"; "
                     f"filename=\"frame-{i:03d}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
                     .encode() + f + b"\r\n")
    for name, value in (("timestamps", timestamps), ("nonce", nonce)):
        parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n"
                     f"{value}\r\n".encode())
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def empty_parts(n: int = EMPTY_PARTS) -> tuple[bytes, str]:
    """The part flood: 10 MiB of 873,796 empty parts (``n`` parts of 12 bytes)."""
    return (b"--abcd\r\n\r\n\r\n" * n + b"--abcd--\r\n",
            "multipart/form-data; boundary=abcd")


def auth(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def label(r: httpx.Response) -> str:
    """``201``, or ``429 rate_limited``: the status and, for an error, its code."""
    if r.status_code < 400:
        return str(r.status_code)
    try:
        return f"{r.status_code} {r.json()['error']['code']}"
    except (ValueError, KeyError, TypeError):
        return str(r.status_code)


# -- bookkeeping --------------------------------------------------------------------------------

@dataclass
class Tally:
    sent: int = 0
    statuses: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)

    def answered(self, status: int | str, dt: float | None = None) -> None:
        self.statuses[status] += 1
        if dt is not None:
            self.latencies.append(dt)

    def count(self, prefix: str) -> int:
        """Answers whose label starts with ``prefix`` (``"200"``, ``"429 rate_limited"``)."""
        return sum(n for k, n in self.statuses.items() if str(k).startswith(prefix))


@dataclass
class Face:
    """The honest sessions' face: ``examples/astronaut.jpg`` at a client's frame size, its box
    and its Face Mesh vertices in its pixels (for :func:`simulate_live_clip`)."""

    image: np.ndarray
    box: Any
    vertices: np.ndarray

    @classmethod
    def load(cls) -> Face:
        import cv2

        from facelive.face.detection import FaceDetector
        from facelive.face.mesh import FaceMesher

        img = cv2.resize(cv2.imread(str(REPO / "examples" / "astronaut.jpg")), (352, 352),
                         interpolation=cv2.INTER_AREA)
        det = FaceDetector()
        try:
            box = det.detect(img)
        finally:
            det.close()
        assert box is not None, "no face in examples/astronaut.jpg"
        with FaceMesher() as mesher:
            verts, _ = mesher.reconstruct(img, box)
            return cls(img, box, mesher.to_image(verts, img.shape, box))

    def film(self, challenge: dict[str, Any], seed: int) -> tuple[list[bytes], list[float]]:
        """A live clip of the challenge, JPEG q85, and its timestamps (ms)."""
        import cv2

        from facelive.challenge.sequence import Challenge
        from facelive.challenge.simulate import simulate_live_clip

        frames, ts = simulate_live_clip(self.image, self.box, Challenge.from_dict(challenge),
                                        self.vertices, fps=10.0, jpeg_quality=None,
                                        rng=np.random.default_rng(seed))
        return [cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes()
                for f in frames], ts


# -- honest clients and attackers ---------------------------------------------------------------

class Bench:
    def __init__(self, base: str, port: int, until: float, *, quick: bool, big_json: int,
                 keys: dict[str, str], frame: bytes, face: Face | None = None,
                 attacks: str = "all", attack_threads: int = 8, honest_clients: int = 4,
                 honest_sessions: int = 1) -> None:
        self.base, self.port, self.until, self.quick = base, port, until, quick
        self.big_json, self.keys, self.frame, self.face = big_json, keys, frame, face
        self.attacks, self.attack_threads = attacks, attack_threads
        self.honest_clients, self.honest_sessions = honest_clients, honest_sessions
        self.tallies: dict[str, Tally] = {}
        self.sessions: list[tuple[str, float | None]] = []
        """Each honest session's outcome (``completed live``, or where it failed) and its
        seconds from the upload's acceptance to the signed result."""
        self.accepted: dict[str, deque[str]] = {}
        """The last accepted uploads of each attacker key (polled after the attack)."""
        self.jwks: dict[str, Any] | None = None
        self.rng = random.Random(12)
        self.bodies: dict[str, Any] = {}

    def prepare(self) -> None:
        """Build the attackers' bodies (before the clock starts)."""
        frame = self.frame
        pad = "x" * (9_500_000 - len(frame) * 4 // 3)
        self.bodies = {
            "clip frames": big_frames(150, 1000), "empty parts": empty_parts(),
            # within the 8 MB clip upload limit, so that the part count refuses it
            "empty parts (clip)": empty_parts(650_000),
            "thin": png(8000, 32), "largest": largest_jpeg(),
            "big JSON": json.dumps({"image": base64.b64encode(frame).decode(),
                                    "pad": pad}).encode(),
            "nested": b"[" * 100_000}

    def tally(self, name: str) -> Tally:
        return self.tallies.setdefault(name, Tally())

    def running(self) -> bool:
        return time.monotonic() < self.until

    async def req(self, http: httpx.AsyncClient, t: Tally, method: str, path: str,
                  tag: str = "", **kw: Any) -> httpx.Response | None:
        """One request; its answer counted in ``t`` as ``tag`` + status (+ error code)."""
        t.sent += 1
        t0 = time.monotonic()
        try:
            r = await http.request(method, self.base + path, **kw)
        except httpx.HTTPError as exc:
            t.errors[type(exc).__name__] += 1
            return None
        t.answered(f"{tag} {label(r)}".strip(), time.monotonic() - t0)
        return r

    async def pause_after(self, r: httpx.Response | None) -> None:
        """After a 429 or 503 (or no answer) wait its ``Retry-After``, at most 1 s."""
        if r is None:
            await asyncio.sleep(0.5)
        elif r.status_code in (429, 503):
            try:
                wait = float(r.headers.get("retry-after", "1"))
            except ValueError:
                wait = 1.0
            await asyncio.sleep(min(1.0, max(0.05, wait)))

    async def new_session(self, http: httpx.AsyncClient, t: Tally, key: str
                          ) -> tuple[dict[str, Any], dict[str, Any]] | httpx.Response | None:
        """Create a session and fetch its challenge: (session, challenge), or the refusal."""
        r = await self.req(http, t, "POST", "/v1/sessions", "create", headers=auth(key))
        if r is None or r.status_code != 201:
            return r
        s = r.json()
        r = await self.req(http, t, "GET", f"/v1/sessions/{s['session_id']}/challenge",
                           "challenge", headers=auth(s["client_token"]))
        if r is None or r.status_code != 200:
            return r
        return s, r.json()

    # honest clients

    async def honest_liveness(self, http: httpx.AsyncClient, key: str) -> None:
        t = self.tally("honest /v1/liveness")
        headers = {**auth(key), "content-type": "image/jpeg"}
        while self.running():
            await self.req(http, t, "POST", "/v1/liveness", content=self.frame, headers=headers)
            await asyncio.sleep(0.1)

    async def honest_session(self, http: httpx.AsyncClient, key: str, seed: int
                             ) -> tuple[str, float | None]:
        """One challenge session as a site and its user run it: (outcome, seconds from the
        accepted upload to the signed result)."""
        assert self.face is not None
        t = self.tally("honest sessions (requests)")
        got = await self.new_session(http, t, key)
        if not isinstance(got, tuple):
            return f"not created: {label(got) if got is not None else 'no answer'}", None
        s, ch = got
        sid, fetched = s["session_id"], time.monotonic()
        frames, ts = await asyncio.to_thread(self.face.film, ch, seed)
        await asyncio.sleep(max(0.0, fetched + ch["capture_ms"] / 1000 + 0.2 - time.monotonic()))
        body, ctype = frames_body(frames, json.dumps(ts), ch["nonce"])
        deadline = time.monotonic() + 60
        while True:  # a client sends the same clip again after 503 verify_busy or a 429
            r = await self.req(http, t, "POST", f"/v1/sessions/{sid}/frames", "frames",
                               content=body, headers={**auth(s["client_token"]),
                                                      "content-type": ctype})
            if r is not None and r.status_code == 202:
                break
            if (r is not None and r.status_code not in (429, 503)) or time.monotonic() > deadline:
                return f"upload refused: {label(r) if r is not None else 'no answer'}", None
            await self.pause_after(r)
        uploaded = time.monotonic()
        while True:
            r = await self.req(http, t, "GET", f"/v1/sessions/{sid}/result", "result",
                               headers=auth(key))
            if r is not None and r.status_code == 200:
                break
            if ((r is not None and r.status_code not in (202, 429, 503))
                    or time.monotonic() > uploaded + 180):
                return f"no result: {label(r) if r is not None else 'no answer'}", None
            await asyncio.sleep(0.5)
        took = time.monotonic() - uploaded
        from facelive.audit import AuditError, verify_token

        out = r.json()
        try:
            claims = verify_token(out["token"], self.jwks or {}, audience=s.get("aud"),
                                  session_id=sid)
        except (AuditError, KeyError) as exc:
            return f"token refused: {exc}", took
        return f"completed {claims.get('decision', out.get('decision'))}", took

    async def honest_session_loop(self, http: httpx.AsyncClient, key: str, first: int) -> None:
        n = first
        while self.running():
            self.sessions.append(await self.honest_session(http, key, n))
            n += 1

    # the attacks of the second review (TENANT_ATTACKS)

    async def rate_hammer(self, http: httpx.AsyncClient, sessions: bool) -> None:
        """Attack 1: one key (``hammer``) on /v1/liveness (camera frames) or session creation,
        :data:`HAMMER_CONNECTIONS` connections back to back."""
        key = self.keys["hammer"]
        if sessions:
            t = self.tally("rate: session creation")
            args: dict[str, Any] = {"headers": auth(key)}
        else:
            t = self.tally("rate: /v1/liveness")
            args = {"content": self.frame,
                    "headers": {**auth(key), "content-type": "image/jpeg"}}
        path = "/v1/sessions" if sessions else "/v1/liveness"

        async def one() -> None:
            while self.running():
                await self.req(http, t, "POST", path, **args)

        await asyncio.gather(*(one() for _ in range(HAMMER_CONNECTIONS)))

    async def capacity(self, http: httpx.AsyncClient) -> None:
        """Attack 6: one key (``capacity``) creating sessions back to back,
        :data:`HAMMER_CONNECTIONS` connections."""
        t = self.tally("session capacity")
        key = self.keys["capacity"]

        async def one() -> None:
            while self.running():
                await self.req(http, t, "POST", "/v1/sessions", headers=auth(key))

        await asyncio.gather(*(one() for _ in range(HAMMER_CONNECTIONS)))

    async def upload(self, http: httpx.AsyncClient, t: Tally, who: str, s: dict[str, Any],
                     body: bytes, ctype: str) -> httpx.Response | None:
        r = await self.req(http, t, "POST", f"/v1/sessions/{s['session_id']}/frames", "frames",
                           content=body, headers={**auth(s["client_token"]),
                                                  "content-type": ctype})
        if r is not None and r.status_code == 202:
            self.accepted.setdefault(who, deque(maxlen=16)).append(s["session_id"])
        return r

    async def store_fill(self, http: httpx.AsyncClient) -> None:
        """Attack 2: sessions with 150 random 100-byte frames each, uploaded at once."""
        t = self.tally("store fill")
        while self.running():
            got = await self.new_session(http, t, self.keys["store"])
            if not isinstance(got, tuple):
                await self.pause_after(got)
                continue
            s, ch = got
            body, ctype = frames_body([os.urandom(100) for _ in range(150)],
                                      json.dumps([i * 40.0 for i in range(150)]), ch["nonce"])
            await self.pause_after(await self.upload(http, t, "store", s, body, ctype))

    async def clip_flood(self, http: httpx.AsyncClient, plausible: bool) -> None:
        """Attack 4: 150 frames of 1000x1000 JPEG (just under 8 MB, each frame unique) per upload,
        timestamps 1 ms apart, or (``plausible``) at 10 fps over the challenge, uploaded once
        its time has passed on the server's clock (two sessions kept ready ahead)."""
        name = f"clip flood, {'plausible' if plausible else 'bad'} timing"
        t = self.tally(name)
        frames = self.bodies["clip frames"]
        ready: deque[tuple[float, dict[str, Any], dict[str, Any]]] = deque()
        while self.running():
            while len(ready) < (3 if plausible else 1) and self.running():
                got = await self.new_session(http, t, self.keys["clips"])
                if not isinstance(got, tuple):
                    await self.pause_after(got)
                    break
                ready.append((time.monotonic(), *got))
            if not ready:
                continue
            fetched, s, ch = ready.popleft()
            n = len(frames)
            if plausible:
                await asyncio.sleep(max(0.0, fetched + ch["capture_ms"] / 1000 + 0.2
                                        - time.monotonic()))
                ts = [i * ch["capture_ms"] / (n - 1) for i in range(n)]
            else:
                ts = [float(i) for i in range(n)]
            if not self.running():
                break
            body, ctype = frames_body([unique(f) for f in frames], json.dumps(ts), ch["nonce"])
            r = await self.upload(http, t, name, s, body, ctype)
            if r is not None and r.status_code in (429, 503):
                ready.appendleft((fetched, s, ch))  # refused before the session was used
            await self.pause_after(r)

    async def part_flood(self, http: httpx.AsyncClient) -> None:
        """Attack 5: 10 MiB of empty parts to /v1/liveness and, in turn, 7.8 MB of them (650,000
        parts: the most the clip upload limit lets through) to a frames upload."""
        t = self.tally("part flood")
        key = self.keys["parts"]
        body, ctype = self.bodies["empty parts"]
        clip_body, _ = self.bodies["empty parts (clip)"]
        session: dict[str, Any] | None = None
        n = 0
        while self.running():
            n += 1
            if n % 2:
                r = await self.req(http, t, "POST", "/v1/liveness", "liveness", content=body,
                                   headers={**auth(key), "content-type": ctype})
            else:
                if session is None:
                    got = await self.new_session(http, t, key)
                    if not isinstance(got, tuple):
                        await self.pause_after(got)
                        continue
                    session = got[0]
                r = await self.req(http, t, "POST", f"/v1/sessions/{session['session_id']}"
                                   "/frames", "frames", content=clip_body,
                                   headers={**auth(session["client_token"]),
                                            "content-type": ctype})
                if r is not None and r.status_code != 413:
                    session = None
            await self.pause_after(r)

    async def timestamps_and_operator(self, http: httpx.AsyncClient) -> None:
        """Attacks 7 and 8: an upload with the timestamp ``1e400`` written out, and a tenant
        key on /metrics and /v1/info, in turn, 0.1 s apart."""
        huge = self.tally("huge timestamp")
        tenant = self.tally("tenant on /metrics, /v1/info")
        key = self.keys["parts2"]
        session: dict[str, Any] | None = None
        nonce = ""
        while self.running():
            for path in ("/metrics", "/v1/info"):
                await self.req(http, tenant, "GET", path, path, headers=auth(key))
            if session is None:
                got = await self.new_session(http, huge, key)
                if not isinstance(got, tuple):
                    await self.pause_after(got)
                    continue
                session, nonce = got[0], got[1]["nonce"]
            body, ctype = frames_body([self.frame], "[1" + "0" * 400 + "]", nonce)
            r = await self.req(http, huge, "POST", f"/v1/sessions/{session['session_id']}"
                               "/frames", "frames", content=body,
                               headers={**auth(session["client_token"]), "content-type": ctype})
            if r is not None and r.status_code != 422:
                session = None
            await asyncio.sleep(0.1)

    def tenant_jobs(self, http: httpx.AsyncClient) -> list[Any]:
        kinds = [lambda: self.rate_hammer(http, False), lambda: self.rate_hammer(http, True),
                 lambda: self.store_fill(http), lambda: self.clip_flood(http, False),
                 lambda: self.clip_flood(http, True), lambda: self.part_flood(http),
                 lambda: self.capacity(http), lambda: self.timestamps_and_operator(http)]
        return [kinds[i % len(kinds)]() for i in range(self.attack_threads)]

    async def drain(self, http: httpx.AsyncClient, timeout_s: float) -> tuple[int, float]:
        """Poll the results of the attackers' last accepted uploads until none is pending
        (their clips verified) or ``timeout_s``: (uploads still pending, seconds waited)."""
        t0 = time.monotonic()
        who_key = {"store": "store", "clip flood, bad timing": "clips",
                   "clip flood, plausible timing": "clips"}
        pending = [(who_key[w], sid) for w, sids in self.accepted.items() for sid in sids]
        t = Tally()
        while pending and time.monotonic() < t0 + timeout_s:
            left = []
            for key, sid in pending:
                r = await self.req(http, t, "GET", f"/v1/sessions/{sid}/result",
                                   headers=auth(self.keys[key]))
                if r is None or r.status_code in (202, 429, 503):
                    left.append((key, sid))
            pending = left
            if pending:
                await asyncio.sleep(1.0)
        return len(pending), time.monotonic() - t0

    # the attacks of the first review (--attacks input)

    async def post_loop(self, http: httpx.AsyncClient, name: str, make: object,
                        pause: float = 0.0, path: str = "/v1/liveness") -> None:
        t = self.tally(name)
        while self.running():
            body, ctype, headers = make()  # type: ignore[operator]
            t.sent += 1
            t0 = time.monotonic()
            try:
                r = await http.post(self.base + path, content=body,
                                    headers={"content-type": ctype, **headers})
                t.answered(r.status_code, time.monotonic() - t0)
            except httpx.HTTPError as exc:
                t.errors[type(exc).__name__] += 1
            if pause:
                await asyncio.sleep(pause)

    async def healthz(self, http: httpx.AsyncClient) -> None:
        t = self.tally("healthz")
        while self.running():
            t.sent += 1
            t0 = time.monotonic()
            try:
                r = await http.get(self.base + "/healthz")
                t.answered(r.status_code, time.monotonic() - t0)
            except httpx.HTTPError as exc:
                t.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.25)

    async def spoof(self, http: httpx.AsyncClient) -> None:
        t = self.tally("spoofed XFF")
        while self.running():
            t.sent += 1
            try:
                r = await http.get(self.base + "/healthz%0a%1b[31mINJECTED", headers={
                    "x-forwarded-for": f"{FORGED}, \x1b[2J{FORGED}",
                    "x-forwarded-proto": "javascript"})
                t.answered(r.status_code)
            except httpx.HTTPError as exc:
                t.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.2)

    async def raw(self, name: str, payload: bytes, trickle: bool) -> None:
        """A socket sending ``payload`` (head), then 10 bytes every 2 s (``trickle``) or
        nothing; reconnects when the server closes it. Counts the server's answers."""
        t = self.tally(name)
        while self.running():
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError as exc:
                t.errors[type(exc).__name__] += 1
                await asyncio.sleep(0.5)
                continue
            t.sent += 1
            t0 = time.monotonic()
            try:
                writer.write(payload)
                await writer.drain()
                data = b""
                while self.running():
                    try:
                        chunk = await asyncio.wait_for(reader.read(4096), 2.0)
                    except TimeoutError:
                        if trickle:
                            writer.write(b"\xff" * 10)
                            await writer.drain()
                        continue
                    if not chunk:
                        break
                    data += chunk
                if not self.running():
                    t.statuses["open at the end"] += 1
                elif data[:9] == b"HTTP/1.1 ":
                    t.answered(int(data[9:12]), time.monotonic() - t0)
                else:
                    t.answered("closed", time.monotonic() - t0)
            except OSError as exc:
                t.errors[type(exc).__name__] += 1
            finally:
                writer.close()

    async def smuggle(self) -> None:
        """Framing attacks on a raw socket (httpx will not send them): chunked plus
        Content-Length, and a Content-Length of 1 GB with a few bytes behind it."""
        t = self.tally("fuzz")
        head = (b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                b"Authorization: Bearer " + self.keys["input"].encode() + b"\r\n")
        requests = [head + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"5\r\nhello\r\n0\r\n\r\n",
                    head + b"Content-Length: 1000000000\r\n\r\n" + b"\xff" * 1000]
        n = 0
        while self.running():
            t.sent += 1
            n += 1
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                writer.write(requests[n % 2])
                await writer.drain()
                data = await asyncio.wait_for(reader.read(4096), 10)
                writer.close()
                t.answered(int(data[9:12]) if data[:9] == b"HTTP/1.1 " else "closed")
            except (OSError, TimeoutError) as exc:
                t.errors[type(exc).__name__] += 1
            await asyncio.sleep(0.5)

    def input_jobs(self, http: httpx.AsyncClient) -> list[Any]:
        frame, quick = self.frame, self.quick
        thin, largest, big, nested = (self.bodies[k] for k in ("thin", "largest", "big JSON",
                                                                 "nested"))
        head = (b"POST /v1/liveness HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                b"Authorization: Bearer " + self.keys["input"].encode() + b"\r\n"
                b"Content-Length: 100000\r\n\r\n")

        def key(name: str) -> dict[str, str]:
            return auth(self.keys[f"input-{name}"])

        def fuzz() -> tuple[bytes, str, dict[str, str]]:
            name, b, c = self.rng.choice(fuzz_cases(frame, self.rng))
            return b, c, key("fuzz")

        jobs = [self.healthz(http), self.spoof(http), self.smuggle()]
        jobs += [self.post_loop(http, "thin image", lambda: (thin, "image/png", key("thin")),
                                0.05)]
        jobs += [self.post_loop(http, "largest image",
                                lambda: (largest, "image/jpeg", key("largest")), 0.5)]
        jobs += [self.post_loop(http, "big JSON",
                                lambda: (big, "application/json", key("json")))
                 for _ in range(self.big_json)]
        jobs += [self.post_loop(http, "nested JSON",
                                lambda: (nested, "application/json", key("nested")), 0.05)]
        jobs += [self.post_loop(http, "fuzz", fuzz, 0.02)]
        jobs += [self.raw("slow upload", head, True) for _ in range(4 if quick else 8)]
        jobs += [self.raw("silent socket", b"", False) for _ in range(4 if quick else 8)]
        return jobs

    def limits(self) -> httpx.Limits:
        return httpx.Limits(max_connections=None, max_keepalive_connections=None)

    async def warm(self) -> None:
        """Two requests per honest client and one honest session, not counted."""
        async with httpx.AsyncClient(timeout=120, limits=self.limits()) as http:
            self.jwks = (await http.get(self.base + "/.well-known/jwks.json")).json()
            for i in range(self.honest_clients):
                for _ in range(2):
                    await http.post(self.base + "/v1/liveness", content=self.frame,
                                    headers={**auth(self.keys[f"honest-{i}"]),
                                             "content-type": "image/jpeg"})
            if self.honest_sessions and self.face is not None:
                until, self.until = self.until, math.inf
                outcome, _ = await self.honest_session(http, self.keys["honest-sessions"], 0)
                self.until = until
                print(f"warm-up session: {outcome}", file=sys.stderr)
            self.tallies.clear()

    async def run_honest(self) -> None:
        """The honest clients until ``self.until``, and the last sessions to their end."""
        async with httpx.AsyncClient(timeout=120, limits=self.limits()) as http:
            jobs = [self.honest_liveness(http, self.keys[f"honest-{i}"])
                    for i in range(self.honest_clients)]
            jobs += [self.honest_session_loop(http, self.keys["honest-sessions"], 1000 * (i + 1))
                     for i in range(self.honest_sessions if self.face is not None else 0)]
            await asyncio.gather(*jobs)

    async def run_attacks(self) -> tuple[int, float]:
        """The attackers until ``self.until``, then :meth:`drain`."""
        async with httpx.AsyncClient(timeout=120, limits=self.limits()) as http:
            jobs = []
            if self.attacks in ("tenant", "all"):
                jobs += self.tenant_jobs(http)
            if self.attacks in ("input", "all"):
                jobs += self.input_jobs(http)
            await asyncio.gather(*jobs)
            return await self.drain(http, 150.0)


def attack_process(conn: Any, base: str, port: int, keys: dict[str, str], frame: bytes,
                   options: dict[str, Any]) -> None:
    """The attackers, in a process of their own (so that their work does not delay the honest
    clients' event loop): build the bodies, say ``ready``, receive the end time
    (``time.monotonic``, shared by the processes of the machine), attack, drain, send back
    (tallies, clips still pending, seconds the drain took)."""
    bench = Bench(base, port, math.inf, keys=keys, frame=frame, honest_clients=0,
                  honest_sessions=0, **options)
    bench.prepare()
    conn.send("ready")
    bench.until = conn.recv()
    pending, drained = asyncio.run(bench.run_attacks())
    conn.send((bench.tallies, pending, drained))


def _gradient_jpeg(w: int, h: int) -> bytes:
    import cv2

    yy, xx = np.mgrid[0:h, 0:w]
    img = np.dstack([(xx // 16) % 256, (yy // 16) % 256, ((xx + yy) // 32) % 256])
    return cv2.imencode(".jpg", img.astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()


def _hwm_mib(pid: int) -> float:
    """The largest VmHWM (peak resident memory) among ``pid``'s child processes."""
    best = 0.0
    for p in tree_pids(pid)[1:]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) / 1024)
        except OSError:
            pass
    return best


def worst_case(base: str, server_pid: int, frame: bytes) -> int:
    """Send the largest accepted images (and two just past the limits) one at a time."""
    cases = [("640x480 camera frame", frame, "image/jpeg"),
             ("128x32 (thinnest 4:1 at the smallest side)", _gradient_jpeg(128, 32), "image/jpeg"),
             ("2000x2000 (4 MP)", _gradient_jpeg(2000, 2000), "image/jpeg"),
             ("4000x4000 (16 MP, 1:1)", _gradient_jpeg(4000, 4000), "image/jpeg"),
             ("8000x2000 (16 MP, 4:1)", _gradient_jpeg(8000, 2000), "image/jpeg"),
             ("2000x8000 (16 MP, 1:4)", _gradient_jpeg(2000, 8000), "image/jpeg"),
             ("8000x32 PNG of issue 12 (refused)", png(8000, 32), "image/png"),
             ("6000x3000 (18 MP, refused)", _gradient_jpeg(6000, 3000), "image/jpeg")]
    from rich.console import Console
    from rich.table import Table

    with httpx.Client(timeout=60) as http:
        http.post(base + "/v1/liveness", content=frame, headers={"content-type": "image/jpeg"})
        base_hwm = _hwm_mib(server_pid)
        table = Table("image", "bytes", "answer", "slowest of 3", "process peak RSS (growth)",
                      title="largest accepted images, one pipeline process")
        for name, body, ctype in cases:
            answers, times = Counter(), []
            for _ in range(3):
                t0 = time.monotonic()
                r = http.post(base + "/v1/liveness", content=body, headers={"content-type": ctype})
                times.append(time.monotonic() - t0)
                answers[r.json().get("decision") or r.json()["error"]["code"]] += 1
            hwm = _hwm_mib(server_pid)
            table.add_row(name, f"{len(body):,}",
                          ", ".join(f"{k} x{v}" for k, v in answers.items()),
                          f"{max(times) * 1e3:.0f} ms", f"{hwm:.0f} MiB (+{hwm - base_hwm:.0f})")
    Console(width=150).print(table)
    print(f"pipeline process peak RSS after one warm-up frame: {base_hwm:.0f} MiB")
    return 0


def percentiles(lat: list[float]) -> str:
    if not lat:
        return "-"
    ms = np.array(lat) * 1e3
    return " / ".join(f"{np.percentile(ms, q):.0f}" for q in (50, 90, 99, 100)) + " ms"


def metric(text: str, prefix: str) -> float:
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(prefix))


def rss_by_pid(pid: int) -> dict[int, float]:
    """Resident memory (MiB) of ``pid`` and of each of its descendants."""
    out = {}
    for p in tree_pids(pid):
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    out[p] = int(line.split()[1]) / 1024
        except OSError:
            pass
    return out


def process_role(pid: int, server: int) -> str:
    """``server``, ``uvicorn worker`` (a child with children), ``verify`` (a lower CPU priority
    than the server's: the verification pool), ``tracker`` (multiprocessing's resource tracker)
    or ``pipeline``."""
    def nice(p: int) -> int:
        return int(Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[16])

    try:
        if pid == server:
            return "server"
        if "resource_tracker" in Path(f"/proc/{pid}/cmdline").read_text(errors="replace"):
            return "tracker"
        if len(tree_pids(pid)) > 1:
            return "uvicorn worker"
        return "verify" if nice(pid) > nice(server) else "pipeline"
    except (OSError, ValueError, IndexError):
        return "gone"


class Sampler(threading.Thread):
    """The server's resident memory (its processes together) every 0.5 s: (s, MiB)."""

    def __init__(self, pid: int, t0: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.t0 = pid, t0
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.wait(0.5):
            self.samples.append((time.monotonic() - self.t0, rss_mib(self.pid)))

    def halt(self) -> None:
        self._halt.set()
        self.join(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(folder: Path) -> tuple[subprocess.Popen, str]:
    """``redis-server`` on a free loopback port, configured as docs/deployment.md says."""
    import redis

    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
         "--appendonly", "no", "--maxmemory", "1gb", "--maxmemory-policy", "noeviction",
         "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    for _ in range(100):
        try:
            redis.Redis.from_url(url).ping()
            return proc, url
        except redis.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("redis-server did not answer")


def make_keys(honest_clients: int) -> dict[str, str]:
    roles = [f"honest-{i}" for i in range(honest_clients)]
    roles += ["honest-sessions", "hammer", "capacity", "store", "clips", "parts", "parts2",
              "input", "operator"]
    roles += [f"input-{n}" for n in ("thin", "largest", "json", "nested", "fuzz")]
    return {r: f"bench-{r}-{secrets.token_hex(12)}" for r in roles}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of attack")
    ap.add_argument("--quick", action="store_true",
                    help="a few seconds, fewer clients, short server timeouts (for the tests)")
    ap.add_argument("--attacks", choices=("tenant", "input", "all"), default="tenant",
                    help="the second review's attacks (default), the first's, or both")
    ap.add_argument("--attack-threads", type=int, default=8,
                    help="attackers of the second review (thread i runs attack i mod 8)")
    ap.add_argument("--honest-clients", type=int, default=None,
                    help="honest /v1/liveness clients (default 4; quick: 2)")
    ap.add_argument("--honest-sessions", type=int, default=1,
                    help="honest challenge-session clients, one session at a time each")
    ap.add_argument("--key-rate", type=float, default=10.0,
                    help="the server's --key-rate, requests/s per API key (0: no limit)")
    ap.add_argument("--key-burst", type=int, default=20, help="the server's --key-burst")
    ap.add_argument("--workers", type=int, default=1, help="server processes (>1 needs --redis "
                    "while --key-rate is set)")
    ap.add_argument("--redis", action="store_true",
                    help="start redis-server for the sessions and limits")
    ap.add_argument("--settle", type=float, default=None,
                    help="seconds after the attackers' clips are verified before the last "
                         "memory sample (default 5; quick: 2)")
    ap.add_argument("--big-json", type=int, default=None,
                    help="clients sending 9.5 MB JSON bodies (default 2; quick: 1)")
    ap.add_argument("--worst-case", action="store_true",
                    help="measure the largest accepted images instead (one pipeline process)")
    ap.add_argument("--json", default=None, help="also write the measures to this file")
    ap.add_argument("--server-args", default="",
                    help="extra `facelive serve` flags, e.g. '--tests quality,cnn'")
    args = ap.parse_args(argv)
    quick = args.quick
    duration = min(args.duration, 6.0) if quick else args.duration
    honest_clients = args.honest_clients if args.honest_clients is not None else (
        2 if quick else 4)
    settle = args.settle if args.settle is not None else (2.0 if quick else 5.0)
    big_json = args.big_json if args.big_json is not None else (1 if quick else 2)
    extra = args.server_args.split()
    if quick:  # so that the cut-offs and the session quota happen within the run
        extra = ["--header-timeout", "2", "--body-timeout", "3", "--key-max-sessions",
                 "40"] + extra
    if args.worst_case:
        extra = ["--pipeline-workers", "1"] + extra
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    folder = Path(tempfile.mkdtemp(prefix="facelive-hostile-"))
    log = folder / "server.log"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO / "src")] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    keys = make_keys(honest_clients)
    from facelive.server.auth import hash_key

    flags = []
    if not args.worst_case:
        env.update(
            FACELIVE_API_KEYS=",".join(hash_key(v) for k, v in keys.items() if k != "operator"),
            FACELIVE_OPERATOR_KEYS=hash_key(keys["operator"]),
            FACELIVE_SIGNING_KEY=str(folder / "signing.pem"))
        flags = ["--workers", str(args.workers), "--key-rate", f"{args.key_rate:g}",
                 "--key-burst", str(args.key_burst)]
    redis_proc = None
    if args.redis and not args.worst_case:
        if shutil.which("redis-server") is None:
            print("--redis: redis-server is not installed", file=sys.stderr)
            return 2
        redis_proc, env["FACELIVE_REDIS_URL"] = start_redis(folder)
    cmd = [sys.executable, "-m", "facelive", "serve", "--host", "127.0.0.1", "--port",
           str(port), *flags, *extra]
    frame = frame_jpeg()
    face = Face.load() if args.honest_sessions and not args.worst_case else None
    with log.open("wb") as fh:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT)
    operator = auth(keys["operator"])
    try:
        if not wait_ready(base, proc, log, 180, 0.3):
            return 2
        if args.worst_case:
            return worst_case(base, proc.pid, frame)
        info = httpx.get(base + "/v1/info", headers=operator, timeout=5).json()
        options = dict(quick=quick, big_json=big_json, attacks=args.attacks,
                       attack_threads=args.attack_threads)
        ctx = multiprocessing.get_context("spawn")
        conn, child_conn = ctx.Pipe()
        attackers = ctx.Process(target=attack_process, daemon=True,
                                args=(child_conn, base, port, keys, frame, options))
        attackers.start()
        bench = Bench(base, port, math.inf, keys=keys, frame=frame, face=face,
                      honest_clients=honest_clients, honest_sessions=args.honest_sessions,
                      **options)
        asyncio.run(bench.warm())
        assert conn.recv() == "ready"
        time.sleep(1.0)
        rss0, by_pid0 = rss_mib(proc.pid), rss_by_pid(proc.pid)
        roles = {p: process_role(p, proc.pid) for p in by_pid0}
        t_start = time.monotonic()
        sampler = Sampler(proc.pid, t_start)
        sampler.start()
        bench.until = t_start + duration
        conn.send(bench.until)
        asyncio.run(bench.run_honest())
        steps = {"sessions done": time.monotonic()}
        if not conn.poll(200):
            raise RuntimeError("the attackers did not finish")
        tallies, pending, _ = conn.recv()
        attackers.join(10)
        bench.tallies.update(tallies)
        steps["clips verified"] = time.monotonic()
        time.sleep(settle)
        sampler.halt()
        samples = sampler.samples
        rss_after, by_pid1 = rss_mib(proc.pid), rss_by_pid(proc.pid)
        hwm = peak_rss_mib(proc.pid)
        roles.update({p: process_role(p, proc.pid) for p in by_pid1 if p not in roles})
        samples.append((time.monotonic() - t_start, rss_after))
        elapsed = duration
        metrics = httpx.get(base + "/metrics", headers=operator, timeout=5).text
        evicted = redis_peak = None
        if redis_proc is not None:
            import redis

            r = redis.Redis.from_url(env["FACELIVE_REDIS_URL"])
            evicted = int(r.info("stats")["evicted_keys"])
            redis_peak = r.info("memory")["used_memory_peak_human"]
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        if redis_proc is not None:
            redis_proc.terminate()
            redis_proc.wait(10)
    text = log.read_bytes()
    restarts = metric(metrics, "facelive_pipeline_process_restarts_total")
    tracebacks = text.count(b"Traceback")
    forged = FORGED.encode() in text or b"\x1b" in text
    peak = max([m for _, m in samples] + [rss0])
    rss_end = min(samples, key=lambda s: abs(s[0] - duration))[1] if samples else rss0

    from rich.console import Console
    from rich.table import Table

    table = Table("attacker / client", "sent", "answers (status code: count)", "client errors",
                  title=f"facelive serve under hostile traffic, {elapsed:.0f} s")
    for name, t in bench.tallies.items():
        table.add_row(name, str(t.sent),
                      ", ".join(f"{k}: {v}" for k, v in sorted(t.statuses.items(), key=str)),
                      ", ".join(f"{k}: {v}" for k, v in t.errors.items()) or "0")
    console = Console(width=160)
    console.print(table)

    honest = bench.tallies.get("honest /v1/liveness", Tally())
    ok = honest.count("200")
    share = ok / honest.sent if honest.sent else 0.0
    p99 = float(np.percentile(honest.latencies, 99)) if honest.latencies else math.inf
    sessions = bench.sessions
    completed = [o for o, _ in sessions if o.startswith("completed")]
    verdicts = Counter(o for o, _ in sessions)
    took = [d for o, d in sessions if o.startswith("completed") and d is not None]
    hammer = [bench.tallies.get(n, Tally()) for n in ("rate: /v1/liveness",
                                                      "rate: session creation")]
    allowed = sum(sum(t.statuses.values()) - t.count("429 rate_limited") for t in hammer)
    window = args.key_burst / args.key_rate if args.key_rate > 0 else math.inf
    limit = (args.key_burst * (math.floor(elapsed / window) + 2)
             if args.key_rate > 0 else None)
    tenant = bench.tallies.get("tenant on /metrics, /v1/info", Tally())
    tenant_read = tenant.count("/metrics 2") + tenant.count("/v1/info 2")
    five_hundreds = sum(n for t in bench.tallies.values() for k, n in t.statuses.items()
                        if "500" in str(k).split())
    health = bench.tallies.get("healthz")

    summary = Table("measure", "value", "bound")
    tests = ",".join(t.get("name", "?") for t in info["pipeline"]["tests"])
    summary.add_row("server", f"facelive serve {' '.join(flags + extra)}"
                    f"{' (Redis)' if redis_proc else ''} (tests {tests}; "
                    f"{info['limits']['pipeline_processes']} pipeline processes)", "")
    summary.add_row("machine load average (1 min) at the end", f"{os.getloadavg()[0]:.1f}", "")
    summary.add_row("honest /v1/liveness answered 200", f"{ok} / {honest.sent} "
                    f"({100 * share:.1f}%)", ">= 95%")
    summary.add_row("honest /v1/liveness latency p50 / p90 / p99 / max",
                    percentiles(honest.latencies), "p99 <= 1000 ms")
    summary.add_row("honest sessions completed (signed, token verified)",
                    f"{len(completed)} / {len(sessions)} ("
                    + ", ".join(f"{k}: {v}" for k, v in sorted(verdicts.items())) + ")", "all")
    summary.add_row("honest session upload -> signed result p50 / max",
                    f"{np.median(took):.1f} / {max(took):.1f} s" if took else "-", "")
    if limit is not None:
        summary.add_row("hammer key answered other than 429 rate_limited",
                        f"{allowed} in {elapsed:.0f} s", f"<= {limit} (its limit once)")
    summary.add_row("tenant key answered 2xx on /metrics, /v1/info", str(tenant_read), "0")
    summary.add_row("answers 500 (any client)", str(five_hundreds), "0")
    if health is not None:
        summary.add_row("/healthz probes / answered 200 / slowest",
                        f"{health.sent} / {health.statuses.get(200, 0)} / "
                        f"{max(health.latencies, default=0) * 1e3:.0f} ms", "all 200")
    summary.add_row("server RSS start (warm) / peak / end of attack", f"{rss0:.0f} / {peak:.0f} "
                    f"/ {rss_end:.0f} MiB", f"peak < {PEAK_BOUND_MIB:.0f} MiB (1.5 GB)")
    summary.add_row("server RSS after the attack", f"{rss_after:.0f} MiB "
                    f"({100 * (rss_after / rss0 - 1):+.0f}%), "
                    f"{samples[-1][0] - duration:.0f} s after its end (attackers' clips "
                    f"verified {steps['clips verified'] - t_start - duration:.0f} s "
                    f"after; {pending} pending)", "within 20% of start")
    summary.add_row("RSS per process: start / VmHWM / after (MiB)", ", ".join(
        f"{roles.get(p, '?')} {p}: {by_pid0.get(p, 0):.0f} / {hwm.get(p, 0):.0f} / "
        f"{by_pid1.get(p, 0):.0f}" for p in sorted(set(by_pid0) | set(by_pid1))), "")
    if samples:
        step = max(1, len(samples) // 12)
        summary.add_row("RSS samples (s: MiB)",
                        " ".join(f"{t:.0f}:{m:.0f}" for t, m in samples[::step]), "")
    summary.add_row("pipeline process restarts", f"{restarts:.0f}", "")
    if evicted is not None:
        summary.add_row("Redis evicted keys / peak memory", f"{evicted} / {redis_peak}", "0")
    summary.add_row("server log: tracebacks / forged address or escape",
                    f"{tracebacks} / {'yes' if forged else 'no'}", "0 / no")
    console.print(summary)
    missed = []
    if not (honest.sent and share >= 0.95):
        missed.append("honest /v1/liveness < 95% answered 200")
    if p99 > 1.0:
        missed.append("honest /v1/liveness p99 > 1 s")
    if bench.face is not None and (not sessions or len(completed) < len(sessions)):
        missed.append("an honest session did not complete")
    if peak >= PEAK_BOUND_MIB:
        missed.append("server RSS reached 1.5 GB")
    if rss_after > 1.2 * rss0:
        missed.append("server RSS not back within 20% of its start")
    if limit is not None and allowed > limit:
        missed.append("the hammer key got more than its limit")
    if tenant_read:
        missed.append("a tenant key read /metrics or /v1/info")
    if five_hundreds:
        missed.append("an answer was 500")
    if health is not None and health.statuses.get(200, 0) != health.sent:
        missed.append("a /healthz probe was not answered 200")
    if evicted:
        missed.append("Redis evicted keys")
    if tracebacks or forged:
        missed.append("the server log holds a traceback or a forged address")
    print("result: " + ("every bound held" if not missed else "FAILED: " + "; ".join(missed)))
    if args.json:
        Path(args.json).write_text(json.dumps({
            "tallies": {n: {"sent": t.sent, "answers": {str(k): v for k, v in t.statuses.items()},
                            "errors": dict(t.errors)} for n, t in bench.tallies.items()},
            "honest_share_200": share, "honest_p99_s": p99, "sessions": sessions,
            "hammer_allowed": allowed, "hammer_limit": limit, "tenant_read": tenant_read,
            "answers_500": five_hundreds, "rss_mib": {"start": rss0, "peak": peak,
                                                      "end": rss_end, "after": rss_after},
            "processes": [{"role": roles.get(p, "?"), "pid": p, "start": by_pid0.get(p, 0),
                           "vmhwm": hwm.get(p, 0), "after": by_pid1.get(p, 0)}
                          for p in sorted(set(by_pid0) | set(by_pid1))],
            "samples": samples, "evicted_keys": evicted, "load_average": os.getloadavg(),
            "tracebacks": tracebacks, "forged": forged,
            "missed": missed}, indent=1))
    print(f"server log: {log}", file=sys.stderr)
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
