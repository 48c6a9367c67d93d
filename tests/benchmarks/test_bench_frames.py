"""The benchmarks' frame set (``benchmarks/_frames.py``) is fixed and named, and its statistics
are the usual ones."""

from __future__ import annotations

import sys

import numpy as np

from helpers import REPO


def test_benchmark_frames_are_fixed_and_named(monkeypatch, tmp_path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import _frames
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    monkeypatch.setattr(_frames, "DATA", tmp_path)  # no research data: the example + variants
    frames = _frames.frame_set(4)
    assert [f.name for f in frames] == ["astronaut", "mirrored", "darker", "brighter"]
    assert all(f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    assert "example + variants (4)" in _frames.describe(frames)
    s = _frames.stats([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0 and s["n"] == 5 and s["p10"] < s["median"] < s["p90"]
