"""Golden values: the shipped models' scores on examples/astronaut.jpg.

A refactor must not change a number: these pin every built-in test's score, the fused score, the
threshold and the face box, and the exact JSON object (key order included) that
``facelive check --format jsonl`` prints, timings aside. When a model is deliberately retrained,
update the numbers here in the same commit, with the commands that produced them (the history of
the values is in git and CHANGELOG.md).

The shipped models were produced by

    facelive train quality --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack --card docs/model-cards/quality.md
    facelive train cnn-int8 --replay-attack ../shared/data/replay-attack \\
        --nuaa ../shared/data/nuaa --report runs/cnn/int8.json --card runs/cnn/int8_card.md
    facelive train probe --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack --card docs/model-cards/probe.md
    facelive train minifas --upstream ../shared/models/minifasnet-celeba-spoof \\
        --replay-attack ../shared/data/replay-attack --nuaa ../shared/data/nuaa \\
        --card docs/model-cards/minifas.md
    facelive train fusion --replay-attack ../shared/data/replay-attack \\
        --nuaa ../shared/data/nuaa --cnn-recipe cpu --card docs/model-cards/fusion.md

and the numbers by ``facelive check examples/astronaut.jpg --format jsonl [--tests
quality,cnn,probe,minifas,face3d]``.
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
    "decision": "live",
    "score": 0.9479833488758445,
    "threshold": 0.9022781409305662,
    "tests": {"cnn": 0.4771561920642853, "probe": 0.743557870388031,
              "minifas": 0.9872900729891626},
    "face": {"x": 177, "y": 83, "w": 95, "h": 95, "confidence": 0.919891893863678},
}
WITH_ALL = {  # --tests quality,cnn,probe,minifas,face3d: every built-in test, the same fusion file
    **GOLDEN, "decision": "live", "score": 0.9998697955029016, "threshold": 0.9300769296181768,
    "tests": {"quality": 0.8280257452223728, **GOLDEN["tests"], "face3d": 0.028045833110809326},
}
KEY_ORDER = ["schema_version", "path", "decision", "score", "threshold", "reason", "reason_code",
             "face_count", "tests", "face", "face_ms", "ms", "error", "error_code"]
TEST_KEY_ORDER = ["verdict", "score", "threshold", "status", "ms"]


def _check(obj: dict, golden: dict = GOLDEN) -> None:
    assert list(obj) == KEY_ORDER
    assert obj["decision"] == golden["decision"]
    assert obj["score"] == pytest.approx(golden["score"], abs=TOL)
    assert obj["threshold"] == pytest.approx(golden["threshold"], abs=1e-12)
    assert list(obj["tests"]) == list(golden["tests"])
    for name, score in golden["tests"].items():
        assert list(obj["tests"][name]) == TEST_KEY_ORDER
        assert obj["tests"][name]["status"] == "ok"
        assert obj["tests"][name]["score"] == pytest.approx(score, abs=TOL), name
        t = obj["tests"][name]
        assert t["verdict"] == ("live" if t["score"] >= t["threshold"] else "spoof"), name
    face = obj["face"]
    assert {k: face[k] for k in "xywh"} == {k: GOLDEN["face"][k] for k in "xywh"}
    assert face["confidence"] == pytest.approx(GOLDEN["face"]["confidence"], abs=1e-6)
    assert obj["error"] is None and obj["reason"] is None
    assert obj["schema_version"] == "2" and obj["reason_code"] is None and obj["face_count"] == 1


def test_pipeline_scores_are_pinned() -> None:
    from facelive.pipeline import Pipeline

    with Pipeline() as pipe:
        result = pipe.check(EXAMPLE)
    _check(result.to_dict())
    assert result.to_dict()["path"] == str(EXAMPLE)


def test_every_builtin_test_when_named_is_pinned() -> None:
    """quality and face3d are not default tests but stay built in: named, they are scored and
    fused."""
    from facelive.pipeline import Pipeline

    with Pipeline(list(WITH_ALL["tests"])) as pipe:
        _check(pipe.check(EXAMPLE).to_dict(), WITH_ALL)


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
