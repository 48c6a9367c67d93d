"""``benchmarks/bench_distributed.py`` runs end to end on a few Replay-Attack devel frames and
prints its table with every row's scores equal to the single-process run's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import REPO


@pytest.mark.slow
@pytest.mark.data
def test_bench_distributed_prints_its_table(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed", reason="the scale extra (dask) is not installed")
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_distributed.py"), "--frames", "8",
         "--workers", "1", "--chunk-size", "2", "--json", str(out)],
        capture_output=True, text=True, timeout=600, cwd=REPO,
        env={**os.environ, "FACELIVE_DATA": str(shared_data)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    table = [ln for ln in proc.stdout.splitlines() if ln.startswith("| ")]
    assert [ln.split(" | ")[0] for ln in table[1:]] == [
        "| single process", "| dask, 1 worker", "| single process (again)"]
    assert all(" | yes | " in ln for ln in table[1:])  # the scores are the same, bit for bit
    assert "625,000 images" in proc.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["workers"] for r in rows] == [0, 1, 0]
    assert all(r["score_s"] > 0 and r["cpu_s"] > 0 and min(r["rss_mb"]) > 50 for r in rows)
