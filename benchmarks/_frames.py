"""Benchmark inputs: a real face frame when the research data is present, else the example."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELIVE_DATA", REPO.parent / "shared" / "data"))


def face_frame(width: int = 640, height: int = 480) -> tuple[np.ndarray, str]:
    """A frame with a face at width x height, and where it came from."""
    nuaa = sorted((DATA / "nuaa" / "ClientRaw").glob("*/*.jpg"))
    if nuaa:
        img, src = cv2.imread(str(nuaa[0])), f"NUAA {nuaa[0].name}"
    else:
        img, src = cv2.imread(str(REPO / "examples" / "astronaut.jpg")), "examples/astronaut.jpg"
    h, w = img.shape[:2]
    target = width / height
    if w / h > target:  # crop to the target aspect ratio, then resize
        nw = round(h * target)
        img = img[:, (w - nw) // 2:(w - nw) // 2 + nw]
    else:
        nh = round(w / target)
        img = img[(h - nh) // 2:(h - nh) // 2 + nh]
    interp = cv2.INTER_AREA if img.shape[1] > width else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(img, (width, height), interpolation=interp)), src


def pin_one_core() -> None:
    """Run this process on one CPU core (where the OS allows): single-core benchmarks."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def print_step_table(rows: dict[str, list[float]], once: dict[str, float]) -> None:
    """A Markdown table: median and p90 ms of each timed step, then one-off timings (ms)."""
    width = max(len(k) for k in [*rows, *once])
    print(f"| {'step':{width}s} | {'median ms':>9s} | {'p90 ms':>7s} |")
    print(f"|{'-' * (width + 2)}|{'-' * 11}|{'-' * 9}|")
    for k, v in rows.items():
        print(f"| {k:{width}s} | {np.median(v):9.2f} | {np.percentile(v, 90):7.2f} |")
    for k, ms in once.items():
        print(f"| {k:{width}s} | {ms:9.0f} | {'':7s} |")
