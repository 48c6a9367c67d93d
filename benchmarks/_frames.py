"""Benchmark inputs and statistics shared by the benchmarks.

**The frame set** (:func:`frame_set`): a fixed, named list of 640x480 frames, so that every
benchmark says which frames it used and two runs use the same ones:

- with the research data (``../shared/data`` or ``$FACELIVE_DATA``): ``n`` Replay-Attack devel
  frames (320x240 webcam frames, scaled up to 640x480 with bilinear interpolation; spread evenly
  over the sorted real, fixed-support attack and hand-held attack lists) and ``n`` NUAA frames
  (640x480 as captured; spread evenly over the sorted live and print-attack lists of the
  held-back subjects 0003, 0006 and 0009);
- without it: ``examples/astronaut.jpg`` (512x512, centre-cropped to 4:3 and scaled) and
  ``n - 1`` variants of it (mirrored, darker, brighter, blurred, noisier, shifted), all faces.

Timing statistics: median with p10 and p90 (:func:`stats`), per step and per frame source.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELIVE_DATA", REPO.parent / "shared" / "data"))
NUAA_HELD_BACK = ("0003", "0006", "0009")


@dataclass(frozen=True)
class BenchFrame:
    """One benchmark frame: BGR uint8 image, its source set and its name (file or variant)."""

    image: np.ndarray
    source: str
    name: str


def fit_to(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Centre-crop ``img`` to the aspect ratio of ``width`` x ``height``, then resize (area
    interpolation when shrinking, bilinear when enlarging)."""
    h, w = img.shape[:2]
    target = width / height
    if w / h > target:
        nw = round(h * target)
        img = img[:, (w - nw) // 2:(w - nw) // 2 + nw]
    elif w / h < target:
        nh = round(w / target)
        img = img[(h - nh) // 2:(h - nh) // 2 + nh]
    if img.shape[:2] == (height, width):
        return np.ascontiguousarray(img)
    interp = cv2.INTER_AREA if img.shape[1] > width else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(img, (width, height), interpolation=interp))


def _spread(items: list[Path], k: int) -> list[Path]:
    """``k`` items spread evenly over a sorted list (first and last included when k > 1)."""
    if k <= 0 or not items:
        return []
    if k == 1:
        return [items[len(items) // 2]]
    idx = np.linspace(0, len(items) - 1, k).round().astype(int)
    return [items[i] for i in dict.fromkeys(idx)]


def _split(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


def data_frame_paths(n: int = 6, data: Path | None = None) -> dict[str, list[Path]]:
    """The research-data frames of :func:`frame_set` (empty when the data is absent)."""
    data = DATA if data is None else data
    out: dict[str, list[Path]] = {}
    ra = data / "replay-attack" / "devel"
    lists = [sorted((ra / "real").rglob("*.jpg")), sorted((ra / "attack" / "fixed").rglob("*.jpg")),
             sorted((ra / "attack" / "hand").rglob("*.jpg"))]
    if all(lists):
        out["replay-attack devel"] = [p for lst, k in zip(lists, _split(n, 3), strict=True)
                                      for p in _spread(lst, k)]
    nuaa = data / "nuaa"
    lists = [sorted(p for s in NUAA_HELD_BACK for p in (nuaa / kind / s).glob("*.jpg"))
             for kind in ("ClientRaw", "ImposterRaw")]
    if all(lists):
        out["nuaa"] = [p for lst, k in zip(lists, _split(n, 2), strict=True)
                       for p in _spread(lst, k)]
    return out


def _variants(base: np.ndarray, n: int) -> list[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    noisy = np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)
    shift = np.float32([[1, 0, 24], [0, 1, 12]])
    all_ = [("astronaut", base), ("mirrored", cv2.flip(base, 1)),
            ("darker", cv2.convertScaleAbs(base, alpha=0.6)),
            ("brighter", cv2.convertScaleAbs(base, alpha=1.1, beta=30)),
            ("blurred", cv2.GaussianBlur(base, (0, 0), 1.5)), ("noisier", noisy),
            ("shifted", cv2.warpAffine(base, shift, base.shape[1::-1],
                                       borderMode=cv2.BORDER_REPLICATE))]
    return all_[:max(1, n)]


def frame_set(n: int = 6, width: int = 640, height: int = 480) -> list[BenchFrame]:
    """The benchmark frames at ``width`` x ``height`` (see the module docstring)."""
    frames = []
    for source, paths in data_frame_paths(n).items():
        for p in paths:
            img = cv2.imread(str(p), cv2.IMREAD_COLOR)
            name = (f"{p.parent.parent.name}/{p.parent.name}/{p.name}" if source == "nuaa"
                    else f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
            frames.append(BenchFrame(fit_to(img, width, height), source, name))
    if frames:
        return frames
    base = fit_to(cv2.imread(str(REPO / "examples" / "astronaut.jpg")), width, height)
    return [BenchFrame(img, "example + variants", name) for name, img in _variants(base, n)]


def describe(frames: Iterable[BenchFrame]) -> str:
    """One line per source: how many frames and their names."""
    by: dict[str, list[str]] = {}
    for f in frames:
        by.setdefault(f.source, []).append(f.name)
    return "\n".join(f"  {src} ({len(names)}): {', '.join(names)}" for src, names in by.items())


def face_frame(width: int = 640, height: int = 480) -> tuple[np.ndarray, str]:
    """The first frame of :func:`frame_set` at width x height, and where it came from."""
    f = frame_set(1, width, height)[0]
    return f.image, f"{f.source} {f.name}"


def stats(values: Iterable[float]) -> dict[str, float]:
    """Median, p10, p90 and count of ``values`` (ms)."""
    v = np.asarray(list(values), np.float64)
    if v.size == 0:
        return {"median": float("nan"), "p10": float("nan"), "p90": float("nan"), "n": 0}
    return {"median": float(np.median(v)), "p10": float(np.percentile(v, 10)),
            "p90": float(np.percentile(v, 90)), "n": int(v.size)}


def time_calls(fn: Callable[[], object], repeat: int, warmup: int = 2) -> list[float]:
    """Wall-clock ms of ``repeat`` calls of ``fn`` after ``warmup`` calls."""
    import time

    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def machine_line() -> str:
    """Cores and load average (the benchmarks run on a shared machine: say how busy it was)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{cores} usable CPU cores; load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}"
            " (1 / 5 / 15 min)")


def pin_one_core() -> None:
    """Run this process on one CPU core (where the OS allows): single-core benchmarks."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def print_step_table(rows: dict[str, list[float]], once: dict[str, float],
                     by_source: dict[str, dict[str, list[float]]] | None = None) -> None:
    """A Markdown table: median, p10 and p90 ms of each timed step (and, with ``by_source``, the
    median of each step per frame source), then one-off timings (ms)."""
    sources = list(by_source or {})
    width = max(len(k) for k in [*rows, *once])
    head = f"| {'step':{width}s} | median ms | p10 ms | p90 ms |"
    head += "".join(f" {s} median |" for s in sources)
    print(head)
    print("|" + "|".join("---" for _ in range(4 + len(sources))) + "|")
    for k, v in rows.items():
        s = stats(v)
        line = f"| {k:{width}s} | {s['median']:9.2f} | {s['p10']:6.2f} | {s['p90']:6.2f} |"
        for src in sources:
            line += f" {stats(by_source[src].get(k, []))['median']:.2f} |"  # type: ignore[index]
        print(line)
    for k, ms in once.items():
        print(f"| {k:{width}s} | {ms:9.0f} | | |" + " |" * len(sources))
