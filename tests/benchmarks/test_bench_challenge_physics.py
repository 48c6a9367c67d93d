"""The physical checks' cost benchmark (benchmarks/bench_challenge_physics.py) on a small clip:
it runs, the live clip is ``live`` and every step is timed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / "benchmarks" / "bench_challenge_physics.py"


@pytest.mark.slow
def test_physics_benchmark_prints_its_table() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO / "src")] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    out = subprocess.run([sys.executable, str(BENCH), "--size", "320", "--repeat", "1"],
                         env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]
    assert "decision live" in out.stdout
    for step in ("verify_challenge", "motion (face_motion)", "falloff (screen_falloff)",
                 "shape (shading_response)"):
        assert f"| {step}" in out.stdout, step
