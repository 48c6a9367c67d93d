"""Golden values: the shipped models' scores on examples/astronaut.jpg.

A refactor must not change a number: these pin every built-in test's score, the fused score, the
threshold and the face box, and the exact JSON object (key order included) that
``facelive check --format jsonl`` prints, timings aside. The values were produced by
``facelive check examples/astronaut.jpg --format jsonl`` at commit ffcbe61 (before the re-layout
of issue 10) and reproduced after it.

If a model is deliberately retrained, update the numbers here in the same commit, with the
command that produced them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "astronaut.jpg"
TOL = 1e-6  # the scores agree to ~1e-13 across thread settings; a changed model moves them more

GOLDEN = {
    "decision": "spoof",
    "score": 0.14296816705010557,
    "threshold": 0.19229185398590798,
    "tests": {"quality": 0.9671108327867127, "cnn": 0.4480096399784088,
              "face3d": 0.028045833110809326},
    "face": {"x": 177, "y": 83, "w": 95, "h": 95, "confidence": 0.919891893863678},
}
KEY_ORDER = ["path", "decision", "score", "threshold", "tests", "face", "face_ms", "ms", "error",
             "reason"]


def _check(obj: dict) -> None:
    assert list(obj) == KEY_ORDER
    assert obj["decision"] == GOLDEN["decision"]
    assert obj["score"] == pytest.approx(GOLDEN["score"], abs=TOL)
    assert obj["threshold"] == pytest.approx(GOLDEN["threshold"], abs=1e-12)
    assert list(obj["tests"]) == list(GOLDEN["tests"])
    for name, score in GOLDEN["tests"].items():
        assert list(obj["tests"][name]) == ["score", "status", "ms"]
        assert obj["tests"][name]["status"] == "ok"
        assert obj["tests"][name]["score"] == pytest.approx(score, abs=TOL), name
    face = obj["face"]
    assert {k: face[k] for k in "xywh"} == {k: GOLDEN["face"][k] for k in "xywh"}
    assert face["confidence"] == pytest.approx(GOLDEN["face"]["confidence"], abs=1e-6)
    assert obj["error"] is None and obj["reason"] is None


def test_pipeline_scores_are_pinned() -> None:
    from facelive.pipeline import Pipeline

    with Pipeline() as pipe:
        result = pipe.check(EXAMPLE)
    _check(result.to_dict())
    assert result.to_dict()["path"] == str(EXAMPLE)


def test_cli_jsonl_is_pinned_and_quiet() -> None:
    """The console command prints the pinned object and nothing on stderr (no absl/TFLite lines);
    ``--verbose`` lets the native log lines through."""
    env = {k: v for k, v in os.environ.items() if k not in ("GLOG_minloglevel",
                                                            "TF_CPP_MIN_LOG_LEVEL")}
    cmd = [sys.executable, "-m", "facelive", "check", "examples/astronaut.jpg", "--format",
           "jsonl"]
    out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    (line,) = out.stdout.splitlines()
    obj = json.loads(line)
    assert obj["path"] == "examples/astronaut.jpg"
    _check(obj)

    verbose = subprocess.run([sys.executable, "-m", "facelive", "--verbose", *cmd[3:]],
                             cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert verbose.returncode == 0
    assert "TensorFlow Lite" in verbose.stderr or "W0000" in verbose.stderr
