"""The OpenAPI schema against a live server: schemathesis (its command line, run from outside)
against ``facelive serve`` on 127.0.0.1 with the real models, and the statuses each endpoint
declares.

The fuzzer is driven past the credentials and the session ids by ``helpers.fuzz_hooks``: each
session call gets a real session (its client token, its challenge fetched, and for every other
upload the session's nonce and increasing timestamps, so that junk frames are accepted and
verified), the backend and liveness calls the API key, ``/metrics`` and ``/v1/info`` the
operator key; one call in five keeps what the fuzzer generated. The run is bounded (a fixed
seed, ``--max-examples``, one worker) to stay within about a minute on two cores; change
``FACELIVE_FUZZ_SEED`` / ``FACELIVE_FUZZ_EXAMPLES`` to look further.
"""

from __future__ import annotations

import collections
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from facelive.server.auth import hash_key
from helpers import REPO, TESTS, free_port, subprocess_env
from helpers.server import stub_client

API_KEY, OPERATOR_KEY = "fuzz-tenant-key", "fuzz-operator-key"
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance,response_headers_conformance")
SESSION_OPS = ("GET /v1/sessions/{session_id}/challenge", "POST /v1/sessions/{session_id}/frames",
               "GET /v1/sessions/{session_id}/result")


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``facelive serve`` on a free loopback port with one API key and one operator key, the
    session quotas off or out of reach (the fuzzer makes hundreds of sessions) and one pipeline
    process."""
    port = free_port()
    log = tmp_path_factory.mktemp("fuzz-server") / "server.log"
    env = subprocess_env(FACELIVE_API_KEYS=hash_key(API_KEY),
                         FACELIVE_OPERATOR_KEYS=hash_key(OPERATOR_KEY),
                         FACELIVE_SESSIONS_PER_ADDRESS="0", FACELIVE_SESSIONS_PER_KEY="0",
                         FACELIVE_KEY_MAX_SESSIONS="1000000",
                         FACELIVE_PIPELINE_WORKERS="1", FACELIVE_LOG_LEVEL="warning")
    with log.open("wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "facelive", "serve", "--host",
                                 "127.0.0.1", "--port", str(port)], env=env, cwd=REPO,
                                stdout=fh, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.3)
        yield base
        assert proc.poll() is None, log.read_text()[-3000:]  # the fuzzer did not kill it
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.mark.slow
def test_fuzzer_finds_no_server_error_and_no_schema_violation(live_server: str,
                                                             tmp_path: Path) -> None:
    calls = tmp_path / "calls.jsonl"
    env = dict(subprocess_env(), SCHEMATHESIS_HOOKS="helpers.fuzz_hooks",
               FACELIVE_FUZZ_BASE=live_server, FACELIVE_FUZZ_API_KEY=API_KEY,
               FACELIVE_FUZZ_OPERATOR_KEY=OPERATOR_KEY, FACELIVE_FUZZ_LOG=str(calls),
               PYTHONPATH=os.pathsep.join([str(TESTS), str(REPO / "src")]))
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", f"{live_server}/openapi.json",
           "--checks", CHECKS, "--max-examples", os.environ.get("FACELIVE_FUZZ_EXAMPLES", "25"),
           "--seed", os.environ.get("FACELIVE_FUZZ_SEED", "23"), "--workers", "1",
           "--phases", "examples,coverage,fuzzing", "--request-timeout", "30",
           "--report", "json", "--report-dir", str(tmp_path)]
    out = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=400)
    tail = (out.stdout + out.stderr)[-6000:]
    report = json.loads(next(tmp_path.glob("json-*.json")).read_text())
    assert out.returncode == 0 and report["exit_code"] == 0, tail
    assert report["failures"] == [] and report["errors"] == [], tail
    assert report["operations"]["tested"] == report["operations"]["selected"] >= 9, tail
    assert report["test_cases"]["generated"] >= 200, report["test_cases"]
    # the fuzzer got past the credentials and the session ids
    for kind in ("missing_auth", "missing_test_data"):
        assert not set(report["warnings"][kind]) & {*SESSION_OPS, "GET /metrics",
                                                    "GET /v1/info"}, report["warnings"]
    seen = collections.Counter()
    for line in calls.read_text().splitlines():
        call = json.loads(line)
        seen[call["operation"], call["status"], call["code"]] += 1
    table = "\n".join(f"{k}: {n}" for k, n in sorted(seen.items(), key=str))
    assert not [k for k in seen if k[1] >= 500], table
    reached = {op: {k[1] for k in seen if k[0] == op and k[1] not in (401, 404, 405)}
               for op in SESSION_OPS}
    assert 200 in reached["GET /v1/sessions/{session_id}/challenge"], table
    assert {202, 422} <= reached["POST /v1/sessions/{session_id}/frames"], table
    assert {200, 202} & reached["GET /v1/sessions/{session_id}/result"], table
    assert {k[:2] for k in seen} >= {("GET /metrics", 200), ("GET /v1/info", 200)}, table


DECLARED = {
    ("post", "/v1/liveness"): {200, 400, 401, 408, 413, 415, 422, 429, 500, 503},
    ("post", "/v1/sessions"): {201, 400, 401, 408, 413, 422, 429, 503},
    ("get", "/v1/sessions/{session_id}/challenge"): {200, 401, 403, 404, 410, 429, 503},
    ("post", "/v1/sessions/{session_id}/frames"): {202, 400, 401, 403, 404, 408, 409, 410, 413,
                                                   415, 422, 429, 503},
    ("get", "/v1/sessions/{session_id}/result"): {200, 202, 401, 403, 404, 410, 429, 500, 503},
    ("get", "/.well-known/jwks.json"): {200, 503},
    ("get", "/metrics"): {200, 401, 403},
    ("get", "/v1/info"): {200, 401, 403, 503},
    ("get", "/readyz"): {200, 503},
}
"""Every status each endpoint answers (from its code); the fuzzer checks the ones it reaches."""


def test_every_status_an_endpoint_answers_is_declared() -> None:
    with stub_client() as c:
        spec = c.get("/openapi.json").json()
    for (method, path), statuses in DECLARED.items():
        declared = {int(s) for s in spec["paths"][path][method]["responses"]}
        assert statuses <= declared, (method, path, sorted(statuses - declared))
    text = json.dumps(spec)
    for code in ("image_too_small", "too_many_parts", "part_headers_too_large", "field_too_large",
                 "too_many_frames", "invalid_nonce", "rate_limited", "forbidden"):
        assert f"`{code}`" in text, code
