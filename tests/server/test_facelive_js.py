"""``facelive.js``'s own logic under Node (no browser): its photosensitive check agrees with
:func:`facelive.challenge.sequence.check_photosensitive` on the server's challenges and on broken
ones, and its outcome texts are plain words (no score, a title and advice for every decision and
error code the flow can end with). The flow itself runs in Chromium in
``test_sessions_browser.py``."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from typing import Any

import pytest

from facelive.challenge.sequence import Challenge, ChallengeError, new_challenge
from facelive.server.routes.web import STATIC_DIR

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="node not found (apt-get install nodejs)")

# Reads {"challenges": [...], "outcomes": [...]} on stdin, prints what facelive.js makes of them.
SCRIPT = """
const m = await import(process.argv[1]);
let raw = "";
for await (const chunk of process.stdin) raw += chunk;
const input = JSON.parse(raw);
const checked = input.challenges.map((c) => {
  try { m.checkChallenge(c); return "ok"; } catch (e) { return e.code + ": " + e.message; }
});
const texts = input.outcomes.map((o) => m.outcomeText(o));
console.log(JSON.stringify({ checked, texts }));
"""

OUTCOMES: list[Any] = [
    "live", "spoof", "unknown", "received", "something new",
    {"code": "cancelled", "message": "The check was stopped. No pictures were sent."},
    {"code": "camera", "message": "Camera permission was denied."},
    {"code": "cors", "message": "... (check the site's CORS settings: --cors-origins)."},
    {"code": "network", "message": "This page cannot reach the verification service."},
    {"code": "unsafe_challenge", "message": "the challenge contains a saturated red"},
    {"code": "session_expired", "status": 410}, {"code": "session_abandoned", "status": 410},
    {"code": "frames_submitted", "status": 409}, {"code": "rate_limited", "status": 429},
    {"code": "overloaded", "status": 503}, {"code": "result"}, {"code": "http_500", "status": 500},
]


def run_node(challenges: list[dict[str, Any]], outcomes: list[Any]) -> dict[str, Any]:
    module = (STATIC_DIR / "facelive.js").as_uri()
    proc = subprocess.run([NODE or "node", "--input-type=module", "-e", SCRIPT, module],
                          input=json.dumps({"challenges": challenges, "outcomes": outcomes}),
                          capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def python_verdict(d: dict[str, Any]) -> bool:
    try:
        Challenge.from_dict(d)
    except ChallengeError:
        return False
    return True


def broken(d: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """One challenge with one rule broken, or a colour near the red limit."""
    d = json.loads(json.dumps(d))
    steps = d["steps"]
    i = rng.randrange(1, len(steps))
    kind = rng.choice(["short", "gap", "red", "reddish", "linear-red", "bad-colour"])
    if kind == "short":  # 340 ms: more than 3 changes a second become possible
        steps[i]["duration_ms"] = 340
        for k in range(i + 1, len(steps)):
            steps[k]["start_ms"] = steps[k - 1]["start_ms"] + steps[k - 1]["duration_ms"]
    elif kind == "gap":
        steps[i]["start_ms"] += 50
    elif kind == "red":
        steps[i]["colour"] = [255, 0, 0]
    elif kind == "reddish":  # R/(R+G+B) 0.625 in sRGB
        steps[i]["colour"] = [200, 60, 60]
    elif kind == "linear-red":  # 0.5 in sRGB values, 0.69 in linear light
        steps[i]["colour"] = [180, 90, 90]
    else:
        steps[i]["colour"] = [0, 300, 0]
    return d


def test_photosensitive_check_agrees_with_the_server() -> None:
    rng = random.Random(7)
    good = [new_challenge(rng=rng).to_dict() for _ in range(40)]
    good += [new_challenge(mode="steady").to_dict(),
             new_challenge(steps=14, min_step_ms=350, max_step_ms=350, rng=rng).to_dict()]
    bad = [broken(d, rng) for d in good[:40] for _ in range(2)]
    out = run_node(good + bad, [])
    for d, verdict in zip(good + bad, out["checked"], strict=True):
        assert (verdict == "ok") == python_verdict(d), (verdict, d["steps"])
    assert all(v == "ok" for v in out["checked"][:len(good)])
    refused = [v for v in out["checked"][len(good):] if v != "ok"]
    assert len(refused) >= 60 and all(v.startswith("unsafe_challenge: ") for v in refused)


def test_outcomes_are_plain_words() -> None:
    texts = run_node([], OUTCOMES)["texts"]
    by_key = {json.dumps(o): t for o, t in zip(OUTCOMES, texts, strict=True)}
    for outcome, (title, advice) in zip(OUTCOMES, texts, strict=True):
        assert title and advice, outcome
        assert not re.search(r"\d\.\d", title + advice), (outcome, title, advice)  # no score
    assert by_key['"live"'][0] == "You\u2019re verified"
    assert by_key['"spoof"'] == ["We could not confirm a live person",
                                 "Try again in better light, facing the screen, with your face "
                                 "in view."]
    assert by_key['"something new"'] == by_key['"unknown"']  # an unknown decision is not "live"
    cors = next(t for o, t in zip(OUTCOMES, texts, strict=True)
                if isinstance(o, dict) and o["code"] == "cors")
    assert cors[0] == "This page cannot reach the verification service"
    assert "--cors-origins" in cors[1]
    assert texts[OUTCOMES.index({"code": "cancelled", "message": "The check was stopped. No "
                                 "pictures were sent."})][0] == "Cancelled"
