"""Schemathesis hooks (``SCHEMATHESIS_HOOKS=helpers.fuzz_hooks``) that take the fuzzer past the
credentials and the session ids of ``tests/server/test_fuzz_live.py``.

Before each call (:func:`before_call`): the liveness and backend endpoints get the API key, the
operator endpoints the operator key, and every ``/v1/sessions/{session_id}/...`` call a real
session created for it (its client token for the browser endpoints; its challenge fetched first
for the upload). One valid upload in five is replaced by three junk frames with the session's
nonce and increasing timestamps, which the server accepts and verifies; one in five keeps the
generated frames with the session's nonce and increasing timestamps. One call in five of each
operation keeps what the fuzzer generated (credentials and ids), so refusals are fuzzed too.
After each call (:func:`after_call`) the operation, status, error code and message are
appended to ``FACELIVE_FUZZ_LOG`` (one JSON line each) for the test to count; sessions whose
upload was accepted are read back by later ``/result`` calls.

Settings, from the environment: ``FACELIVE_FUZZ_BASE`` (the server's URL),
``FACELIVE_FUZZ_API_KEY``, ``FACELIVE_FUZZ_OPERATOR_KEY``, ``FACELIVE_FUZZ_LOG``.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
from typing import Any

import httpx
import schemathesis

BASE = os.environ.get("FACELIVE_FUZZ_BASE", "http://127.0.0.1:8000")
API_KEY = os.environ.get("FACELIVE_FUZZ_API_KEY", "")
OPERATOR_KEY = os.environ.get("FACELIVE_FUZZ_OPERATOR_KEY", "")
LOG = os.environ.get("FACELIVE_FUZZ_LOG", os.devnull)
SESSION_PATH = "/v1/sessions/{session_id}/"

_calls: dict[str, itertools.count[int]] = collections.defaultdict(itertools.count)
_uploaded: list[str] = []


def _bearer(token: str) -> str:
    return f"Bearer {token}"


def _new_session(fetch: bool) -> dict[str, Any]:
    """A new session (``session_id``, ``client_token``), its challenge fetched when ``fetch``
    (then with its ``nonce``)."""
    with httpx.Client(base_url=BASE, timeout=20) as c:
        r = c.post("/v1/sessions", headers={"authorization": _bearer(API_KEY)})
        r.raise_for_status()
        s = r.json()
        if fetch:
            r = c.get(f"/v1/sessions/{s['session_id']}/challenge",
                      headers={"authorization": _bearer(s["client_token"])})
            r.raise_for_status()
            s["nonce"] = r.json()["nonce"]
    return s


def _positive(case: Any) -> bool:
    """Whether the fuzzer generated ``case`` as valid data (an invalid one is never made
    valid here: the negative-data checks would count its acceptance against the server)."""
    mode = getattr(getattr(getattr(case, "meta", None), "generation", None), "mode", None)
    return mode is None or str(getattr(mode, "value", mode)).lower() == "positive"


def _credential(path: str) -> str | None:
    if path in ("/metrics", "/v1/info"):
        return OPERATOR_KEY
    if path in ("/v1/liveness", "/v1/sessions") or path.endswith("/result"):
        return API_KEY
    return None


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    path = case.operation.path
    n = next(_calls[f"{case.operation.method} {path}"])  # counted per operation
    if n % 5 == 0:
        return  # the generated credentials and ids, as they are
    headers = dict(case.headers or {})
    credential = _credential(path)
    if path.startswith(SESSION_PATH):
        if path.endswith("/result") and _uploaded and n % 2:
            sid = _uploaded[n % len(_uploaded)]
        else:
            try:
                s = _new_session(fetch=path.endswith("/frames"))
            except httpx.HTTPError:  # the server refused a session: fuzz the generated ids
                return
            sid = s["session_id"]
            credential = credential or s["client_token"]
            if path.endswith("/frames") and n % 5 == 1 and _positive(case):  # accepted
                case.body = {"frames": [b"\xff\xd8 not a frame %d" % i for i in range(3)],
                             "timestamps": "[0, 100, 200]", "nonce": s["nonce"]}
            elif (path.endswith("/frames") and n % 5 == 3 and _positive(case)
                  and isinstance(case.body, dict)):
                case.body["nonce"] = s["nonce"]  # the generated frames, the right nonce
                frames = case.body.get("frames")
                if isinstance(frames, list):
                    case.body["timestamps"] = json.dumps([i * 100.0 for i in range(len(frames))])
        case.path_parameters = {**(case.path_parameters or {}), "session_id": sid}
    if credential is not None:
        headers["Authorization"] = _bearer(credential)
    case.headers = headers


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    path = case.operation.path
    sid = (case.path_parameters or {}).get("session_id")
    if path.endswith("/frames") and response.status_code == 202 and sid:
        _uploaded.append(sid)
    try:
        error = json.loads(response.content)["error"]
        code, message = error["code"], error["message"][:200]
    except (ValueError, KeyError, TypeError):
        code = message = None
    with open(LOG, "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"operation": f"{case.operation.method.upper()} {path}",
                             "status": response.status_code, "code": code,
                             "message": message}) + "\n")
