"""What a relying site needs from the session API: ``aud`` and ``iss`` at session creation, the
claims it checks (``iss``, ``aud``, ``sid``, ``exp``), demo tokens that no production verifier
accepts, a cancel that ends the session at once, and a clean start-up error for a signing key
that cannot be opened.

The last test runs the Python (PyJWT) and Node (``jose``) verifiers of
``docs/integration-web.md`` ("Token checks"), as a site would copy them, against real tokens of a
server listening on 127.0.0.1 (uvicorn in a thread, the real pipeline with a constant-score test,
the sessions on a fake clock): its own session's token verifies; a token of another session,
of another API key (``aud``), of the demo, or expired, fails in both.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from facelive.audit import AuditError, ResultSigner, verify_token
from facelive.pipeline import Pipeline
from facelive.server.app import create_app
from facelive.server.auth import hash_key
from facelive.server.session_store import (
    SessionAbandoned,
    SessionConflict,
    hash_token,
    new_session_id,
    open_store,
)
from facelive.server.settings import Settings
from helpers import REPO, FakeClock, free_port, subprocess_env
from helpers.sessions import (
    DIGESTS,
    KEY,
    KEY2,
    auth,
    create,
    err,
    fetch,
    jpegs,
    payload,
    upload,
    upload_files,
    wait_result,
)

ISSUER = "https://liveness.example.test"
DOCS = REPO / "docs" / "integration-web.md"
NODE_PROJECT = REPO / "tests" / "relying_party"


# -- aud and iss at session creation -------------------------------------------------------------

def test_session_creation_returns_the_aud_and_iss_of_its_token(make) -> None:
    with make(issuer=ISSUER, demo=True) as c:
        s, s2 = create(c), create(c, KEY2)
        assert s["aud"] == hash_key(KEY)[:12] and s2["aud"] == hash_key(KEY2)[:12]
        assert s["iss"] == s2["iss"] == ISSUER
        demo = c.post("/demo/sessions").json()
        assert demo["aud"] == "demo" and demo["iss"] == ISSUER
        created = c.get("/openapi.json").json()["components"]["schemas"]["SessionCreated"]
        assert {"aud", "iss"} <= set(created["required"])
    with make() as c:
        assert create(c)["iss"] == "facelive"  # no --issuer


def test_issuer_must_be_a_url() -> None:
    from facelive.errors import FaceliveError

    assert Settings(issuer="http://127.0.0.1:8000/facelive").issuer
    for bad in ("liveness.example.org", "https://x.org/?q=1", "https://x.org/#f", "ftp://x"):
        with pytest.raises(FaceliveError, match="issuer must be an http"):
            Settings(issuer=bad)
    assert Settings().result_ttl_s == 600


# -- the token's claims ----------------------------------------------------------------------------

def still_frames(astronaut: Any, n: int = 4) -> tuple[list[bytes], list[float]]:
    """``n`` copies of one frame, 100 ms apart: a cheap upload whose result is not live."""
    return jpegs([astronaut[0]] * n), [100.0 * i for i in range(n)]


def run_flow(c: TestClient, clock: FakeClock, astronaut: Any, key: str = KEY, *,
             demo: bool = False) -> tuple[dict[str, Any], str]:
    """Create (or a demo session), fetch, upload a cheap clip that is not live
    (:func:`still_frames`), then the session and its token."""
    if demo:
        r = c.post("/demo/sessions")
        assert r.status_code == 201, r.text
        s = r.json()
    else:
        s = create(c, key)
    ch = fetch(c, s)
    data, ts = still_frames(astronaut)
    clock.t += ch.capture_ms / 1000.0 + 0.5
    assert upload(c, s, data, ts, ch.nonce).status_code == 202
    if demo:
        deadline = time.monotonic() + 60
        while True:
            r = c.get(f"/demo/sessions/{s['session_id']}/result", headers=auth(s["client_token"]))
            if r.status_code != 202 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    else:
        r = wait_result(c, s["session_id"], key)
    assert r.status_code == 200, r.text
    return s, r.json()["token"]


def test_tokens_carry_iss_aud_sid_and_a_short_exp(make, clock, astronaut) -> None:
    with make(issuer=ISSUER, result_ttl_s=120) as c:
        s, token = run_flow(c, clock, astronaut)
        jwks = c.get("/.well-known/jwks.json").json()
    claims = verify_token(token, jwks, issuer=ISSUER, audience=s["aud"],
                          session_id=s["session_id"])
    assert claims["iss"] == ISSUER and claims["aud"] == s["aud"] == hash_key(KEY)[:12]
    assert claims["exp"] - claims["iat"] == 120
    for kw, match in (({"issuer": "https://other.example"}, "another issuer"),
                      ({"audience": hash_key(KEY2)[:12]}, "another audience"),
                      ({"session_id": "another-session"}, "another session")):
        with pytest.raises(AuditError, match=match):
            verify_token(token, jwks, **kw)


def test_demo_tokens_use_their_own_key(make, clock, astronaut, tmp_path) -> None:
    """A demo token verifies only against ``/demo/jwks.json``: the production JWK Set refuses
    it whatever the verifier expects, and the demo key is the same in every process that holds
    the signing key file (derived from it)."""
    with make(issuer=ISSUER, demo=True) as c:
        s, token = run_flow(c, clock, astronaut, demo=True)
        jwks = c.get("/.well-known/jwks.json").json()
        demo_jwks = c.get("/demo/jwks.json").json()
    assert payload(token)["aud"] == "demo"
    assert demo_jwks["keys"][0]["kid"] != jwks["keys"][0]["kid"]
    assert demo_jwks["keys"][0]["x"] != jwks["keys"][0]["x"]
    for kw in ({}, {"audience": "demo", "session_id": s["session_id"], "issuer": ISSUER}):
        with pytest.raises(AuditError, match="does not verify"):
            verify_token(token, jwks, **kw)
    assert verify_token(token, demo_jwks, audience="demo")["sid"] == s["session_id"]
    signer = ResultSigner.load(tmp_path / "signing.pem")
    assert signer.derive("demo").jwks() == demo_jwks
    assert signer.derive("other").kid != signer.derive("demo").kid
    with make(api_keys=(), signing_key=None) as c:  # no demo: no demo key served
        assert c.get("/demo/jwks.json").status_code == 404


# -- cancel: the abandoned state -----------------------------------------------------------------

def test_cancel_abandons_the_session_at_once_and_is_idempotent(make, clock, astronaut) -> None:
    with make() as c:
        s = create(c)
        sid, cancel = s["session_id"], f"/v1/sessions/{s['session_id']}/cancel"
        ch = fetch(c, s)
        r = c.get(f"/v1/sessions/{sid}/result", headers=auth(KEY))
        assert r.status_code == 202 and r.json()["status"] == "pending"
        err(c.post(cancel), 401, "unauthorized")
        err(c.post(cancel, headers=auth(KEY)), 401, "unauthorized")  # an API key is not it
        other = create(c)
        err(c.post(cancel, headers=auth(other["client_token"])), 403, "forbidden")
        for _ in range(2):  # idempotent
            r = c.post(cancel, headers=auth(s["client_token"]))
            assert r.status_code == 200, r.text
            assert r.json() == {"session_id": sid, "status": "abandoned"}
            assert r.headers["cache-control"] == "no-store"
        err(c.get(f"/v1/sessions/{sid}/result", headers=auth(KEY)), 410, "session_abandoned")
        err(c.get(f"/v1/sessions/{sid}/challenge", headers=auth(s["client_token"])), 410,
            "session_abandoned")
        err(upload(c, s, *still_frames(astronaut), ch.nonce), 410, "session_abandoned")
        err(c.post("/v1/sessions/nope/cancel", headers=auth(s["client_token"])), 404,
            "session_not_found")
        registry = c.app.state.facelive.metrics.registry
        assert registry.get_sample_value("facelive_session_events_total",
                                         {"event": "abandoned"}) == 2


def test_cancel_after_the_upload_changes_nothing(make, clock, astronaut) -> None:
    with make() as c:
        s = create(c)
        ch = fetch(c, s)
        clock.t += ch.capture_ms / 1000.0 + 0.5
        assert upload(c, s, *still_frames(astronaut), ch.nonce).status_code == 202
        err(c.post(f"/v1/sessions/{s['session_id']}/cancel", headers=auth(s["client_token"])),
            409, "frames_submitted")
        assert wait_result(c, s["session_id"]).status_code == 200
        clock.t += 400  # expired: cancel answers 410 like every other call
        err(c.post(f"/v1/sessions/{s['session_id']}/cancel", headers=auth(s["client_token"])),
            410, "session_expired")


def test_the_demo_result_reports_a_cancel(make) -> None:
    with make(api_keys=(), demo=True) as c:
        s = c.post("/demo/sessions").json()
        r = c.post(f"/v1/sessions/{s['session_id']}/cancel", headers=auth(s["client_token"]))
        assert r.status_code == 200
        err(c.get(f"/demo/sessions/{s['session_id']}/result", headers=auth(s["client_token"])),
            410, "session_abandoned")


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_store_abandon_is_atomic_with_the_upload(kind: str, request) -> None:
    """Cancel and upload exclude each other in both stores (a Lua script in Redis)."""
    url = request.getfixturevalue("redis_url") if kind == "redis" else None
    store = open_store(url)
    try:
        def new() -> str:
            sid = new_session_id()
            store.create(sid, hash_token("t"), "key-1", {"nonce": sid}, time.time() + 60)
            return sid

        a = new()
        assert store.get(a).status == "pending"
        first = store.mark_abandoned(a).abandoned_at
        assert first is not None and store.get(a).status == "abandoned"
        assert store.mark_abandoned(a).abandoned_at == first  # idempotent
        with pytest.raises(SessionAbandoned):
            store.mark_frames_submitted(a)
        b = new()
        store.mark_frames_submitted(b)
        with pytest.raises(SessionConflict):
            store.mark_abandoned(b)
        assert store.get(b).status == "submitted" and store.get(b).abandoned_at is None
    finally:
        store.close()


# -- a signing key that cannot be opened -----------------------------------------------------------

@pytest.mark.slow
def test_unusable_signing_key_stops_serve_with_one_line(tmp_path: Path) -> None:
    """A missing folder, a key others can read: ``facelive serve`` exits 2 with one line naming
    the flag, before loading any model, and never a traceback. (The other reasons a key file
    cannot be opened: tests/test_audit.py.)"""
    loose = tmp_path / "loose.pem"
    ResultSigner.generate().save(loose)
    loose.chmod(0o644)
    env = subprocess_env(FACELIVE_API_KEYS=DIGESTS[0])
    for path, reason in ((tmp_path / "missing" / "key.pem", "its folder does not exist"),
                         (loose, "readable or writable by others")):
        out = subprocess.run([sys.executable, "-m", "facelive", "serve", "--port", "1",
                              "--signing-key", str(path)], env=env, capture_output=True,
                             text=True, timeout=120, check=False)
        assert out.returncode == 2, out.stderr
        lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
        assert "Traceback" not in out.stderr and len(lines) == 1, out.stderr
        assert lines[0].startswith("facelive serve: error: --signing-key: ")
        assert str(path) in lines[0] and reason in lines[0], lines[0]


def test_unusable_signing_key_fails_app_start_up_with_the_reason(pipeline, tmp_path) -> None:
    app = create_app(Settings(api_keys=DIGESTS, signing_key=str(tmp_path / "no" / "k.pem")),
                     pipeline)
    with pytest.raises(RuntimeError, match=r"^--signing-key: .*its folder does not exist"):
        with TestClient(app):
            pass


# -- the relying site's verifiers of docs/integration-web.md ---------------------------------

def doc_snippet(lang: str, url: str) -> str:
    """The code block under ``<!-- relying-party snippet: LANG`` in docs/integration-web.md,
    with its example server URL replaced by ``url``."""
    text = DOCS.read_text(encoding="utf-8")
    m = re.search(rf"<!-- relying-party snippet: {lang} .*?-->\n```\w+\n(.*?)\n```", text, re.S)
    assert m, f"no {lang} snippet in {DOCS}"
    code = m.group(1)
    assert code.count('"https://liveness.example.org"') == 1, code
    return code.replace('"https://liveness.example.org"', json.dumps(url))


PY_DRIVER = """

import json as _json
import sys as _sys

_out = []
for _token, _sid, _aud in _json.load(_sys.stdin):
    try:
        _c = verify_liveness(_token, _sid, _aud)
        _out.append(["ok", _c["decision"]])
    except Exception as _e:
        _out.append(["refused", type(_e).__name__ + ": " + str(_e)])
print(_json.dumps(_out))
"""

NODE_DRIVER = """

const cases = JSON.parse(await new Promise((resolve) => {
  let s = "";
  process.stdin.on("data", (d) => { s += d; });
  process.stdin.on("end", () => resolve(s));
}));
const out = [];
for (const [token, sid, aud] of cases) {
  try {
    const c = await verifyLiveness(token, sid, aud);
    out.push(["ok", c.decision]);
  } catch (e) {
    out.push(["refused", `${e.code || e.name}: ${e.message}`]);
  }
}
console.log(JSON.stringify(out));
"""


class ThreadServer:
    """The app served by uvicorn on 127.0.0.1 in a thread (stopped by :meth:`stop`)."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                                    log_level="warning", http="h11"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "no server"
            time.sleep(0.05)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


def http_flow(c: httpx.Client, clock: FakeClock, astronaut: Any,
              key: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """The session flow over real HTTP (``key`` None: a demo session), uploading
    :func:`still_frames` (the token's decision does not matter here): the session and the
    result."""
    r = c.post("/v1/sessions", headers=auth(key)) if key else c.post("/demo/sessions")
    assert r.status_code == 201, r.text
    s = r.json()
    r = c.get(f"/v1/sessions/{s['session_id']}/challenge", headers=auth(s["client_token"]))
    from facelive.challenge.sequence import Challenge

    ch = Challenge.from_dict(r.json())
    data, ts = still_frames(astronaut)
    clock.t += ch.capture_ms / 1000.0 + 0.5
    r = c.post(f"/v1/sessions/{s['session_id']}/frames", headers=auth(s["client_token"]),
               files=upload_files(data), data={"timestamps": json.dumps(ts), "nonce": ch.nonce})
    assert r.status_code == 202, r.text
    where, cred = ((f"/v1/sessions/{s['session_id']}/result", key) if key else
                   (f"/demo/sessions/{s['session_id']}/result", s["client_token"]))
    deadline = time.monotonic() + 90
    while (r := c.get(where, headers=auth(cred))).status_code == 202:
        assert time.monotonic() < deadline, "no result in time"
        time.sleep(0.2)
    assert r.status_code == 200, r.text
    return s, r.json()


@pytest.fixture(scope="module")
def relying_cases(pipeline: Pipeline, astronaut: Any,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A server with ``--issuer`` = its own URL, and the (token, sid, aud) cases a site meets."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    key_file = tmp_path_factory.mktemp("rp") / "signing.pem"
    clock = FakeClock()
    app = create_app(Settings(api_keys=DIGESTS, signing_key=str(key_file), issuer=url,
                              demo=True), pipeline, clock=clock)
    server = ThreadServer(app, port)
    try:
        with httpx.Client(base_url=url, timeout=30) as c:
            mine, result = http_flow(c, clock, astronaut, KEY)
            other, other_result = http_flow(c, clock, astronaut, KEY)
            site2, site2_result = http_flow(c, clock, astronaut, KEY2)
            demo, demo_result = http_flow(c, clock, astronaut, None)
        token = result["token"]
        other_token, site2_token = other_result["token"], site2_result["token"]
        demo_token = demo_result["token"]
        claims = {k: v for k, v in payload(token).items() if k not in ("iat", "exp", "jti")}
        expired = ResultSigner.load(key_file).sign_result(claims, ttl_s=600,
                                                          now=time.time() - 3600)
        sid, aud = mine["session_id"], mine["aud"]
        cases = {
            "its own session": (token, sid, aud),
            "another session": (other_token, sid, aud),
            "another session, its own sid": (other_token, other["session_id"], aud),
            "another API key (aud)": (site2_token, site2["session_id"], aud),
            "the demo": (demo_token, demo["session_id"], aud),
            "the demo, aud demo": (demo_token, demo["session_id"], "demo"),
            "expired": (expired, sid, aud),
        }
        yield {"url": url, "cases": cases, "decision": result["decision"]}
    finally:
        server.stop()


def check_verdicts(out: list[list[str]], ctx: dict[str, Any]) -> None:
    verdicts = dict(zip(ctx["cases"], out, strict=True))
    assert verdicts["its own session"] == ["ok", ctx["decision"]], verdicts
    assert verdicts["another session, its own sid"][0] == "ok", verdicts
    for name in ("another session", "another API key (aud)", "the demo", "the demo, aud demo",
                 "expired"):
        assert verdicts[name][0] == "refused", (name, verdicts[name])


def test_pyjwt_snippet_of_the_docs(relying_cases: dict[str, Any], tmp_path: Path) -> None:
    """The Python verifier of docs/integration-web.md, run as a site would (PyJWT, its
    ``PyJWKClient`` fetching the server's JWK Set)."""
    script = tmp_path / "verify.py"
    script.write_text(doc_snippet("python", relying_cases["url"]) + PY_DRIVER)
    out = subprocess.run([sys.executable, str(script)], input=json.dumps(
        list(relying_cases["cases"].values())), capture_output=True, text=True, timeout=120,
        check=False)
    assert out.returncode == 0, out.stderr
    verdicts = json.loads(out.stdout)
    check_verdicts(verdicts, relying_cases)
    reasons = dict(zip(relying_cases["cases"], verdicts, strict=True))
    assert "another session" in reasons["another session"][1]
    assert "Audience" in reasons["another API key (aud)"][1]
    assert "PyJWKClientError" in reasons["the demo"][1]  # its kid is not in the JWK Set
    assert "ExpiredSignatureError" in reasons["expired"][1]


def node_project() -> Path:
    """``tests/relying_party`` with ``jose`` installed (``npm ci`` from its lock file when
    absent); skips without node or npm."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node or npm not installed (apt-get install -y nodejs npm)")
    version = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30,
                             check=False).stdout.strip()
    if int(version.lstrip("v").split(".")[0] or 0) < 20:
        pytest.skip(f"node {version}: jose 6 needs Node.js 20 or later")
    if not (NODE_PROJECT / "node_modules" / "jose" / "package.json").is_file():
        out = subprocess.run([npm, "ci", "--prefix", str(NODE_PROJECT), "--no-audit",
                              "--no-fund"], capture_output=True, text=True, timeout=300,
                             check=False)
        assert out.returncode == 0, f"npm ci failed: {out.stderr[-2000:]}"
    return NODE_PROJECT


def test_jose_snippet_of_the_docs(relying_cases: dict[str, Any], tmp_path: Path) -> None:
    """The Node verifier of docs/integration-web.md, run as a site would (the npm ``jose``
    package, ``createRemoteJWKSet`` fetching the server's JWK Set)."""
    project = node_project()
    (tmp_path / "node_modules").symlink_to(project / "node_modules")
    script = tmp_path / "verify.mjs"
    script.write_text(doc_snippet("node", relying_cases["url"]) + NODE_DRIVER)
    out = subprocess.run(["node", str(script)], input=json.dumps(
        list(relying_cases["cases"].values())), capture_output=True, text=True, timeout=120,
        check=False)
    assert out.returncode == 0, out.stderr
    verdicts = json.loads(out.stdout)
    check_verdicts(verdicts, relying_cases)
    reasons = dict(zip(relying_cases["cases"], verdicts, strict=True))
    assert "another session" in reasons["another session"][1]
    assert "ERR_JWT_CLAIM_VALIDATION_FAILED" in reasons["another API key (aud)"][1]
    assert "ERR_JWKS_NO_MATCHING_KEY" in reasons["the demo"][1]
    assert "ERR_JWT_EXPIRED" in reasons["expired"][1]
