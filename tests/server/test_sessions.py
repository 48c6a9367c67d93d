"""The challenge session API over HTTP: the whole flow, every refusal, the signed result.

The app serves a real :class:`facelive.pipeline.Pipeline` (real face detection) with one
constant-score stand-in test, so the passive part always says live and the decision turns on the
challenge; the verification itself (timing, one face, continuity, the colour response) is the
real one. Clips are ``examples/astronaut.jpg`` "filmed" under the issued colours
(:func:`helpers.sessions.clip`). The sessions' clock is a fake one, advanced by the clip's length
between the challenge fetch and the upload (the server checks that the clip is not longer than
the time that passed on its own clock). The pipeline-process path is
``tests/server/test_sessions_workers.py``; two instances on one Redis,
``tests/server/test_sessions_redis.py``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import random
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from facelive.challenge.sequence import Challenge, new_challenge
from facelive.server.app import create_app
from facelive.server.auth import hash_key
from facelive.server.settings import Settings
from helpers import REPO, FakeClock
from helpers.sessions import (
    COLOUR_REASON,
    DIGESTS,
    KEY,
    KEY2,
    auth,
    clip,
    create,
    err,
    fetch,
    joserfc_verify,
    payload,
    upload,
    upload_files,
    wait_result,
)

# -- fixtures ------------------------------------------------------------------------------------

def recoloured(ch: Challenge, seed: int) -> Challenge:
    """``ch`` with another challenge's colours in its random part: the same timing, so only the
    colour check can tell."""
    other = new_challenge(rng=random.Random(seed))
    colours = [s.colour for s in other.steps if s.start_ms >= other.lead_ms]
    steps = tuple(s if s.start_ms < ch.lead_ms else replace(s, colour=colours[i % len(colours)])
                  for i, s in enumerate(ch.steps))
    return replace(ch, steps=steps)


def run_flow(c: TestClient, clock: FakeClock, astronaut: Any, *, seed: int = 0,
             film: Callable[[Challenge], Challenge] | None = None, **kw: Any
             ) -> tuple[dict[str, Any], Challenge, list[bytes], Any]:
    """Create, fetch, film (under ``film(issued)``, default the issued challenge), upload,
    result."""
    s = create(c)
    ch = fetch(c, s)
    frames, ts = clip(astronaut, film(ch) if film else ch, seed=seed, **kw)
    clock.t += ch.capture_ms / 1000.0 + 0.5
    r = upload(c, s, frames, ts, ch.nonce)
    assert r.status_code == 202 and r.json() == {"status": "received"}, r.text
    return s, ch, frames, wait_result(c, s["session_id"])


# -- the flow --------------------------------------------------------------------------------------

def test_live_clip_is_live_and_its_token_binds_the_session(make, clock, astronaut) -> None:
    with make() as c:
        s, ch, frames, r = run_flow(c, clock, astronaut)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"session_id", "decision", "token"}
        assert body["session_id"] == s["session_id"]
        jwks = c.get("/.well-known/jwks.json").json()
    claims = joserfc_verify(body["token"], jwks)
    assert claims["decision"] == body["decision"] == "live", claims["reasons"]
    assert claims["checks"]["colour"] is True and claims["reasons"] == []
    assert claims["scores"]["colour"] > 0.8 and claims["scores"]["passive"] == 0.75
    assert claims["sid"] == claims["sub"] == s["session_id"]
    assert claims["nonce"] == ch.nonce
    assert claims["challenge"]["steps"] == ch.to_dict()["steps"]
    assert claims["frames"] == [hashlib.sha256(f).hexdigest() for f in frames]
    assert claims["aud"] == hash_key(KEY)[:12] and claims["threshold"] == 0.5
    assert claims["models"]["tests"][0]["name"] == "constant"
    assert claims["exp"] - claims["iat"] == 600 and claims["iat"] <= time.time() + 1
    assert 0 <= claims["latency_ms"] <= 500 and claims["elapsed_ms"] >= ch.capture_ms
    header = json.loads(base64.urlsafe_b64decode(body["token"].split(".")[0] + "=="))
    assert header["alg"] == "EdDSA" and header["kid"] == jwks["keys"][0]["kid"]
    assert set(jwks["keys"][0]) == {"kty", "crv", "x", "kid", "alg", "use"}  # public part only


def test_any_changed_payload_byte_breaks_the_token(make, clock, astronaut) -> None:
    from joserfc.errors import JoseError

    with make() as c:
        _, _, _, r = run_flow(c, clock, astronaut, seed=1)
        token = r.json()["token"]
        jwks = c.get("/.well-known/jwks.json").json()
    head, part, sig = token.split(".")
    raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    assert joserfc_verify(token, jwks)["sid"]
    for i in range(len(raw)):
        changed = raw[:i] + bytes([raw[i] ^ 0x01]) + raw[i + 1:]
        enc = base64.urlsafe_b64encode(changed).rstrip(b"=").decode()
        with pytest.raises((JoseError, ValueError)):
            joserfc_verify(f"{head}.{enc}.{sig}", jwks)


def test_static_image_is_not_live(make, clock, astronaut) -> None:
    with make() as c:
        _, _, _, r = run_flow(c, clock, astronaut, seed=2, strength=0.0, motion_deg=0.0)
    claims = payload(r.json()["token"])
    assert r.json()["decision"] == claims["decision"] == "spoof"
    assert COLOUR_REASON in claims["reasons"] and claims["checks"]["colour"] is False


def test_clip_of_another_sequence_is_not_live(make, clock, astronaut) -> None:
    with make() as c:
        _, _, _, r = run_flow(c, clock, astronaut, seed=3,
                                film=lambda ch: recoloured(ch, seed=3))
    claims = payload(r.json()["token"])
    assert claims["decision"] == "spoof" and COLOUR_REASON in claims["reasons"]
    assert claims["checks"]["colour"] is False


def test_clip_shifted_in_time_is_not_live(make, clock, astronaut) -> None:
    with make() as c:  # the issued colours, 1.2 s late: beyond the 500 ms latency allowance
        _, _, _, r = run_flow(c, clock, astronaut, seed=4, latency_ms=1200.0)
    claims = payload(r.json()["token"])
    assert claims["decision"] == "spoof" and COLOUR_REASON in claims["reasons"]


def test_frames_resent_from_an_earlier_session_are_not_live(make, clock, astronaut) -> None:
    with make() as c:
        first = create(c)
        ch1 = fetch(c, first)
        frames, ts = clip(astronaut, ch1, seed=5)
        clock.t += ch1.capture_ms / 1000.0 + 0.5
        assert upload(c, first, frames, ts, ch1.nonce).status_code == 202
        r1 = wait_result(c, first["session_id"])
        assert r1.json()["decision"] == "live"
        # the same frames and timestamps, sent again to a new session with its nonce
        s = create(c)
        ch = fetch(c, s)
        clock.t += ch.capture_ms / 1000.0 + 0.5
        r = upload(c, s, frames, ts, ch.nonce)
        assert r.status_code == 202 and r.json() == {"status": "received"}
        r2 = wait_result(c, s["session_id"])
    claims = payload(r2.json()["token"])
    assert r2.json()["decision"] == claims["decision"] == "spoof"
    # decisive before any pixel: no verification ran (no colour check, no scores)
    assert claims["reasons"] == ["frames re-sent from an earlier session"]
    assert claims["checks"] == {"fresh_frames": False} and claims["scores"] == {}
    assert claims["frames"] == payload(r1.json()["token"])["frames"]
    assert payload(r1.json()["token"])["checks"]["fresh_frames"] is True


def test_the_browser_never_gets_the_verdict(make, clock, astronaut) -> None:
    with make() as c:
        s = create(c)
        ch = fetch(c, s)
        frames, ts = clip(astronaut, ch)
        clock.t += ch.capture_ms / 1000.0 + 0.5
        r = upload(c, s, frames, ts, ch.nonce)
        assert r.status_code == 202 and r.json() == {"status": "received"}
        assert r.headers["cache-control"] == "no-store"
        wait_result(c, s["session_id"])
        # the client token opens no result endpoint
        res = c.get(f"/v1/sessions/{s['session_id']}/result", headers=auth(s["client_token"]))
        assert res.status_code == 401
        assert c.get("/demo/sessions/x/result").status_code == 404  # no demo without --demo


# -- refusals ------------------------------------------------------------------------------------

def test_refusals_of_the_backend_endpoints(make, clock) -> None:
    with make() as c:
        err(c.post("/v1/sessions"), 401, "unauthorized")
        err(c.post("/v1/sessions", headers=auth("wrong")), 401, "unauthorized")
        err(c.post("/v1/sessions", headers=auth(KEY), json={"mode": "strobe"}), 422,
            "invalid_field")
        err(c.post("/v1/sessions", headers={**auth(KEY), "content-type": "application/json"},
                   content=b"{"), 400, "invalid_json")
        err(c.post("/v1/sessions", headers=auth(KEY), content=b"x" * 5000), 413,
            "body_too_large")
        s = create(c)
        sid = s["session_id"]
        err(c.get(f"/v1/sessions/{sid}/result"), 401, "unauthorized")
        err(c.get(f"/v1/sessions/{sid}/result", headers=auth("wrong")), 401, "unauthorized")
        err(c.get(f"/v1/sessions/{sid}/result", headers=auth(KEY2)), 403, "forbidden")
        err(c.get("/v1/sessions/nope/result", headers=auth(KEY)), 404, "session_not_found")
        r = c.get(f"/v1/sessions/{sid}/result", headers=auth(KEY))
        assert r.status_code == 202 and r.json() == {"status": "pending"}
        assert r.headers["retry-after"] == "1"
        clock.t += 301  # the session's 300 s are over, nothing was uploaded
        err(c.get(f"/v1/sessions/{sid}/result", headers=auth(KEY)), 410, "session_expired")


def test_refusals_of_the_browser_endpoints(make, clock, astronaut) -> None:
    with make() as c:
        a, b = create(c), create(c)
        url = f"/v1/sessions/{a['session_id']}/challenge"
        err(c.get(url), 401, "unauthorized")
        assert c.get(url).headers["www-authenticate"].startswith("Bearer")
        err(c.get(url, headers=auth("not-a-token")), 401, "unauthorized")
        err(c.get(url, headers=auth(a["session_id"] + ".forged")), 401, "unauthorized")
        err(c.get(url, headers=auth(KEY)), 401, "unauthorized")  # an API key is not a token
        err(c.get(url, headers=auth(b["client_token"])), 403, "forbidden")
        err(c.get("/v1/sessions/nope/challenge", headers=auth(a["client_token"])), 404,
            "session_not_found")
        frames_url = f"/v1/sessions/{a['session_id']}/frames"
        err(c.post(frames_url, headers=auth(b["client_token"]), files=upload_files([b"x"])),
            403, "forbidden")
        err(c.post(frames_url, headers=auth(a["client_token"]), files=upload_files([b"x"]),
                   data={"timestamps": "[0]", "nonce": "n"}), 409, "challenge_not_fetched")
        ch = fetch(c, a)
        tok = auth(a["client_token"])
        err(c.post(frames_url, headers=tok, content=b"{}"), 415, "unsupported_media_type")
        err(c.post(frames_url, headers=tok, files=upload_files([b"\xff\xd8x"]),
                   data={"nonce": ch.nonce}), 422, "missing_field")
        err(c.post(frames_url, headers=tok, files=upload_files([b"\xff\xd8x"]),
                   data={"timestamps": "[0, 100]", "nonce": ch.nonce}), 422, "invalid_field")
        err(c.post(frames_url, headers=tok, files=upload_files([b"\xff\xd8x"]),
                   data={"timestamps": '["a"]', "nonce": ch.nonce}), 422, "invalid_field")
        frames, ts = clip(astronaut, ch)
        clock.t += ch.capture_ms / 1000.0 + 0.5
        err(upload(c, a, frames, ts, "another-nonce"), 422, "invalid_nonce")
        r = upload(c, a, frames, ts, ch.nonce)
        assert r.status_code == 202
        err(upload(c, a, frames, ts, ch.nonce), 409, "frames_submitted")  # twice
        assert wait_result(c, a["session_id"]).status_code == 200
        err(upload(c, a, frames, ts, ch.nonce), 409, "frames_submitted")
        clock.t += 400
        err(c.get(f"/v1/sessions/{b['session_id']}/challenge",
                  headers=auth(b["client_token"])), 410, "session_expired")
        # the result outlives the session (for the store's retention), the upload does not
        assert c.get(f"/v1/sessions/{a['session_id']}/result", headers=auth(KEY)).status_code \
            == 200
        err(upload(c, a, frames, ts, ch.nonce), 410, "session_expired")


def test_size_limits_are_413_before_decoding(make, clock) -> None:
    with make(session_max_frames=3, session_max_body_bytes=100_000) as c:
        s = create(c)
        ch = fetch(c, s)
        junk = [b"not a jpeg"] * 4  # never decoded: the count is refused while parsing
        err(upload(c, s, junk, [0, 100, 200, 300], ch.nonce), 413, "too_many_frames")
        big = [b"\xff" * 40_000] * 3
        err(upload(c, s, big, [0, 100, 200], ch.nonce), 413, "body_too_large")
        err(c.post(f"/v1/sessions/{s['session_id']}/frames", headers=auth(s["client_token"]),
                   files=upload_files([b"x"]),
                   data={"timestamps": "[" + "0," * 40_000 + "0]", "nonce": ch.nonce}),
            413, "field_too_large")
        # nothing was accepted: the session still takes a proper upload
        assert c.get(f"/v1/sessions/{s['session_id']}/result", headers=auth(KEY)).json() == {
            "status": "pending"}


def test_unreadable_frames_give_a_signed_unknown(make, clock, astronaut) -> None:
    with make() as c:
        s = create(c)
        ch = fetch(c, s)
        frames, ts = clip(astronaut, ch, seed=7)
        frames[5] = b"not a jpeg"
        clock.t += ch.capture_ms / 1000.0 + 0.5
        r = upload(c, s, frames, ts, ch.nonce)
        assert r.status_code == 202
        res = wait_result(c, s["session_id"])
        # junk with impossible timing is refused on the timing, before any frame is opened
        s2 = create(c)
        ch2 = fetch(c, s2)
        clock.t += 10
        junk = [b"junk %d" % i for i in range(3)]
        assert upload(c, s2, junk, [0, 100, 200], ch2.nonce).status_code == 202
        res2 = wait_result(c, s2["session_id"])
    claims = payload(res.json()["token"])
    assert res.json()["decision"] == claims["decision"] == "unknown"
    assert claims["reasons"][0].startswith("unreadable frame: frame 5")
    claims2 = payload(res2.json()["token"])
    assert claims2["decision"] == "spoof" and claims2["checks"]["faces"] is None
    assert claims2["reasons"][0].startswith("implausible timing: 3 frames (at least 12)")


def test_too_many_sessions_per_key_or_address_is_429(make) -> None:
    with make(sessions_per_key=2, sessions_per_address=100) as c:
        create(c)
        create(c)
        r = c.post("/v1/sessions", headers=auth(KEY))
        err(r, 429, "too_many_sessions")
        assert 1 <= int(r.headers["retry-after"]) <= 60
        create(c, KEY2)  # another key has its own count
    with make(sessions_per_key=100, sessions_per_address=2, demo=True) as c:
        for _ in range(3):  # a site's backend: one address for all its users, the key counts
            create(c)
        assert [c.post("/demo/sessions").status_code for _ in range(2)] == [201, 201]
        r = c.post("/demo/sessions")  # the demo's browsers create sessions themselves
        err(r, 429, "too_many_sessions")
        assert "client address" in r.json()["error"]["message"]
        assert int(r.headers["retry-after"]) >= 1


def test_steady_mode_is_opt_in(make) -> None:
    with make() as c:
        assert fetch(c, create(c)).mode == "flash"
        ch = fetch(c, create(c, mode="steady"))
        assert ch.mode == "steady" and len(ch.steps) == 1


# -- configuration -------------------------------------------------------------------------------

def test_without_api_keys_the_sessions_are_off_loudly(pipeline, caplog) -> None:
    caplog.set_level(logging.WARNING, "facelive.server")
    with TestClient(create_app(Settings(), pipeline)) as c:
        err(c.post("/v1/sessions"), 503, "sessions_disabled")
        err(c.get("/v1/sessions/x/challenge", headers=auth("t")), 503, "sessions_disabled")
        err(c.get("/.well-known/jwks.json"), 503, "sessions_disabled")
        assert c.get("/healthz").status_code == 200  # the rest works
    assert "challenge sessions disabled: no API key is configured" in caplog.text


@pytest.mark.parametrize("kw,expected", [
    ({"api_keys": DIGESTS, "workers": 2}, "need --redis-url"),
    ({"api_keys": DIGESTS, "redis_url": "redis://127.0.0.1:1/0"}, "need --signing-key"),
    ({"signing_key": "k.pem"}, "need API keys"),
])
def test_settings_that_cannot_work_stop_the_start(pipeline, kw, expected) -> None:
    with pytest.raises(RuntimeError, match=expected):
        with TestClient(create_app(Settings(**kw), pipeline)):
            pass


def test_serve_refuses_sessions_with_workers_and_no_redis(tmp_path: Path) -> None:
    env = dict(os.environ, FACELIVE_API_KEYS=DIGESTS[0], PYTHONPATH=str(REPO / "src"))
    out = subprocess.run([sys.executable, "-m", "facelive", "serve", "--workers", "2"],
                         env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "need --redis-url" in out.stderr


def test_signing_key_file_is_created_private_and_kept(make, tmp_path: Path, clock,
                                                      caplog) -> None:
    path = tmp_path / "signing.pem"
    with make() as c:
        kid = c.get("/.well-known/jwks.json").json()["keys"][0]["kid"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with make() as c:  # a restart: the same key, so earlier tokens still verify
        assert c.get("/.well-known/jwks.json").json()["keys"][0]["kid"] == kid
        assert "max-age" in c.get("/.well-known/jwks.json").headers["cache-control"]
    caplog.set_level(logging.WARNING, "facelive.server")
    with make(signing_key=None) as c:
        assert c.get("/.well-known/jwks.json").json()["keys"][0]["kid"] != kid
    assert "generated in memory" in caplog.text


def test_demo_endpoints_only_with_demo(make, clock) -> None:
    with make() as c:
        assert c.post("/demo/sessions").status_code == 404
        assert "data-demo" not in c.get("/").text
    with make(api_keys=(), demo=True) as c:
        page = c.get("/")
        assert '<body data-demo="on">' in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        r = c.post("/demo/sessions")  # no API key involved
        assert r.status_code == 201
        s = r.json()
        assert fetch(c, s).mode == "flash"
        demo_result = f"/demo/sessions/{s['session_id']}/result"
        assert c.get(demo_result, headers=auth(s["client_token"])).json() == {
            "status": "pending"}
        err(c.get(demo_result), 401, "unauthorized")
        # without keys, the backend endpoints stay off
        err(c.post("/v1/sessions", headers=auth(KEY)), 503, "sessions_disabled")
    with make(demo=True) as c:  # a real session's verdict is never shown by the demo endpoint
        s = create(c)
        err(c.get(f"/demo/sessions/{s['session_id']}/result", headers=auth(s["client_token"])),
            403, "forbidden")


def test_client_module_and_openapi(make) -> None:
    with make() as c:
        js = c.get("/static/facelive.js")
        assert js.status_code == 200
        assert "javascript" in js.headers["content-type"]
        assert "export async function faceliveCheck" in js.text
        spec = c.get("/openapi.json").json()
    for path in ("/v1/sessions", "/v1/sessions/{session_id}/challenge",
                 "/v1/sessions/{session_id}/frames", "/v1/sessions/{session_id}/result",
                 "/.well-known/jwks.json"):
        assert path in spec["paths"], path
    frames = spec["paths"]["/v1/sessions/{session_id}/frames"]["post"]
    assert {"401", "403", "404", "409", "410", "413"} <= set(frames["responses"])
    assert "202" in spec["paths"]["/v1/sessions/{session_id}/result"]["get"]["responses"]
    assert "/demo/sessions" not in spec["paths"]
