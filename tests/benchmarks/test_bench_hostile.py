"""The hostile-traffic benchmark (benchmarks/bench_hostile.py) in its quick mode: a real
``facelive serve`` with its pipeline processes, every attack at once for a few seconds, and every
valid request still answered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "bench_hostile.py"


@pytest.mark.slow
def test_quick_hostile_run_answers_every_valid_request() -> None:
    from facelive.errors import FaceliveError
    from facelive.server.settings import Settings
    from facelive.server.workers import load_pipeline

    try:  # the shipped models are needed by `facelive serve`
        load_pipeline(Settings()).close()
    except FaceliveError as exc:
        pytest.skip(f"default models unavailable: {exc.message}")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO / "src")] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    out = subprocess.run([sys.executable, str(BENCH), "--quick"], env=env, cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    assert "every valid request and health probe answered 200" in text
    for row in ("thin image", "slow upload", "silent socket", "big JSON", "nested JSON",
                "spoofed XFF", "fuzz", "largest image"):
        assert row in text, row
    assert "tracebacks / forged address or escape" in text and " 0 / no " in text
