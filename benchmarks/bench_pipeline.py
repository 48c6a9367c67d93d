"""Benchmark: one frame through face detection, all tests and the fusion (issue 5), and the
quality test end to end at three resolutions (issue 2).

    python benchmarks/bench_pipeline.py [--repeat 30]

Prints median / p90 milliseconds per frame. The pipeline runs with its default thread pool on
this machine's cores; the serial row runs the same tests one after the other.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _times(fn, repeat: int) -> list[float]:
    fn()  # warm-up
    fn()
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e3)
    return out


def _row(table, name: str, ts: list[float], note: str = "") -> float:
    ts = sorted(ts)
    med = statistics.median(ts)
    p90 = ts[min(len(ts) - 1, int(0.9 * len(ts)))]
    table.add_row(name, f"{med:.1f}", f"{p90:.1f}", note)
    return med


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=30)
    args = ap.parse_args()
    from _frames import face_frame
    from rich.console import Console
    from rich.table import Table

    from facelive.liveness import Frame
    from facelive.liveness.quality import QualityTest
    from facelive.pipeline import Pipeline
    from facelive.runtime import tune_process

    tune_process(filter_stderr=False)  # what `facelive check` / `facelive serve` apply
    frame, src = face_frame(640, 480)
    console = Console()
    console.print(f"input: {src} at 640x480; {os.cpu_count()} CPU cores; "
                  f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")

    table = Table("what", "median ms", "p90 ms", "note", title="facelive per-frame latency")
    t0 = time.perf_counter()
    par = Pipeline()
    load_ms = (time.perf_counter() - t0) * 1e3
    ser = Pipeline(parallel=False)
    r = par.check_frame(frame)
    note = f"decision={r.decision} score={r.score}"
    _row(table, "face detection only", _times(lambda: par.detect(frame), args.repeat))
    m_par = _row(table, f"pipeline {'+'.join(par.test_names)} + fusion (parallel)",
                 _times(lambda: par.check_frame(frame), args.repeat), note)
    m_ser = _row(table, "same, tests in series", _times(lambda: ser.check_frame(frame),
                                                        args.repeat))
    for t in par.tests:
        f = Frame(image=frame, face=par.detect(frame))
        _row(table, f"test {t.name} alone (no detection)",
             _times(lambda t=t, f=f: t.score(Frame(image=f.image, face=f.face)), args.repeat))
    qt = QualityTest()
    for w, h in ((320, 240), (640, 480), (1280, 720)):
        img, _ = face_frame(w, h)
        _row(table, f"quality test end to end at {w}x{h}",
             _times(lambda img=img: qt.score(Frame(image=img)), args.repeat),
             "resize to 240p + 25 measures + LDA")
    console.print(table)
    console.print(f"pipeline load (all models): {load_ms:.0f} ms; parallel speed-up over series: "
                  f"{m_ser / m_par:.2f}x")
    par.close()
    ser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
