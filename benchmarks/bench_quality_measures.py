"""Time the 25 quality measures: each measure alone and ``measures()`` in total, one thread.

Per measure: the public function on precomputed inputs (I and I' grey, C and C' colour for MAS and
MAMS; I for the no-reference ones), so it includes that function's own input checks and its own
FFT / gradient work, which ``measures()`` shares. Total: ``measures(BGR uint8 frame)``, which also
builds I, I', C, C'. Median of repeated runs after a warm-up. ``facelive.runtime.tune_allocator()``
is applied first (as the ``facelive`` entry points do); ``FACELIVE_MALLOC_TUNING=0`` measures
without it. Input: a
Replay-Attack devel frame when ../shared/data is there (resized), else a generated textured image;
the ``measures()`` totals also run over the benchmark frame set (``benchmarks/_frames.py``,
``--frames`` per source) and print median and p10-p90 over frames and repeats.

Usage: PYTHONPATH=src python benchmarks/bench_quality_measures.py [--repeats N] [--sizes WxH ...]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELIVE_DATA", REPO.parent / "shared" / "data"))
FULL_REF = ("MSE", "PSNR", "SNR", "SC", "MD", "AD", "NAE", "RAMD", "LMSE", "NXC", "MAS", "MAMS",
            "TED", "TCD", "SME", "SPE", "GME", "GPE", "SSIM", "VIF", "RRED")


def source_image() -> tuple[np.ndarray, str]:
    """A real frame when the shared data is present, else a generated texture (BGR uint8)."""
    frames = sorted((DATA / "replay-attack" / "devel" / "real").rglob("*.jpg"))
    if frames:
        from facelive.imageio import load_image

        return load_image(frames[0]), f"Replay-Attack devel frame {frames[0].name}"
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.random((90, 160, 3)) * 255, (1280, 720), interpolation=cv2.INTER_CUBIC)
    img += rng.normal(0, 6, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8), "generated texture"


def median_ms(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median wall time and median thread CPU time (robust to other processes), in ms."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.thread_time()
        fn()
        wall.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    return 1000.0 * statistics.median(wall), 1000.0 * statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    import facelive.iqa as q
    from facelive.runtime import tune_allocator

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--sizes", nargs="+", default=["320x240", "640x480", "1280x720"])
    ap.add_argument("--frames", type=int, default=3, help="frames per source for the totals")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _frames import describe, frame_set, machine_line, stats
    cv2.setNumThreads(1)
    tuned = tune_allocator()  # as the facelive CLI and server do at start-up
    src, what = source_image()
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes]
    results: dict[str, list[float]] = {name: [] for name in q.MEASURE_NAMES}
    totals = []
    for w, h in sizes:
        interp = cv2.INTER_AREA if w < src.shape[1] else cv2.INTER_CUBIC
        img = cv2.resize(src, (w, h), interpolation=interp)
        grey = q.to_grey(img)
        gb = q.blurred(grey)
        colour = img.astype(np.float64)
        cb = q.blurred(colour)
        for name in track(q.MEASURE_NAMES, description=f"{w}x{h}", transient=True):
            fn = getattr(q, name.lower())
            if name in ("MAS", "MAMS"):
                call = partial(fn, colour, cb)
            elif name in FULL_REF:
                call = partial(fn, grey, gb)
            else:
                call = partial(fn, grey)
            results[name].append(median_ms(call, args.repeats)[1])
        totals.append(median_ms(partial(q.measures, img), args.repeats))
    spread = []  # measures() over the frame set: thread CPU ms, all frames x repeats
    for w, h in sizes:
        fs = frame_set(args.frames, w, h)
        cpu = []
        for f in fs:
            q.measures(f.image)
            for _ in range(max(1, args.repeats // 3)):
                c = time.thread_time()
                q.measures(f.image)
                cpu.append((time.thread_time() - c) * 1e3)
        spread.append(stats(cpu))

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    table = Table(title=f"quality measures, median ms, 1 thread ({what}); load {load:.1f}",
                  caption="per measure: thread CPU time; totals: CPU time and wall time; "
                  f"malloc tuning {'on' if tuned else 'off'}")
    table.add_column("measure")
    for w, h in sizes:
        table.add_column(f"{w}x{h}", justify="right")
    for name, ms in results.items():
        table.add_row(name, *(f"{v:.2f}" for v in ms))
    table.add_row("sum of separate", *(f"{sum(r[i] for r in results.values()):.1f}"
                                       for i in range(len(sizes))), style="dim")
    table.add_row("measures() CPU", *(f"{t[1]:.1f}" for t in totals), style="bold")
    table.add_row("measures() wall", *(f"{t[0]:.1f}" for t in totals))
    table.add_row("measures() CPU, frame set: median", *(f"{s['median']:.1f}" for s in spread),
                  style="bold")
    table.add_row("  p10-p90", *(f"{s['p10']:.1f}-{s['p90']:.1f}" for s in spread))
    Console().print(table)
    print(f"frame set:\n{describe(frame_set(args.frames))}\n{machine_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
