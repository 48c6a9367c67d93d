"""``benchmarks/bench_ratelimit.py`` runs and prints its table (tiny sizes, no Redis)."""

from __future__ import annotations

import subprocess
import sys

from helpers import REPO, subprocess_env


def test_bench_ratelimit_prints_one_row_per_size() -> None:
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_ratelimit.py"),
                          "--clients", "10,50", "--hits", "20", "--no-redis"],
                         env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| clients counted | limits MemoryStorage")
    assert [r.split(" | ")[0] for r in rows[1:]] == ["| 10", "| 50"]
    assert all(r.endswith("| - |") and r.count(" us") == 2 for r in rows[1:])
