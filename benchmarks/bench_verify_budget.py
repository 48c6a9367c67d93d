"""Cost of one hostile challenge clip in a verification process: time and peak memory.

    PYTHONPATH=src python benchmarks/bench_verify_budget.py              # about 30-60 s
    PYTHONPATH=src python benchmarks/bench_verify_budget.py --size 2000  # larger frames

Each case runs in a fresh Python process (so that its peak resident memory is its own): the
process creates the face detector and mesh first (a verification process keeps them for its
life), resets its peak-RSS counter (``/proc/self/clear_refs``), then verifies one clip with
:func:`facelive.server.workers.run_challenge` and the default :class:`Settings`, and reports the
wall time and the peak resident memory above the start (``VmHWM`` minus ``VmRSS`` before). The
passive tests are a constant stand-in (no models are loaded: face detection, the mesh and the
decoding are the real ones and are what a clip costs).

The clip: ``--frames`` JPEG frames (default 150) of ``examples/astronaut.jpg`` scaled to
``--size`` x ``--size`` (default 1000, 1 MP; a few pixels changed per frame so that no two frames
are identical), about 12 MB in all; for the case ``bad timing`` timestamps 1 ms apart (an
impossible 1000 fps), for ``plausible timing`` timestamps at 10 fps over the challenge (so every
check runs). Prints a table: case, decision, reasons, seconds, peak MiB above the start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def _one(case: str, frames: int, size: int) -> dict[str, object]:
    """Body of the child process: verify one clip, return the numbers."""
    import time

    import cv2
    import numpy as np

    from facelive.challenge.sequence import new_challenge
    from facelive.server.settings import Settings
    from facelive.server.workers import ChallengeJob, _face_tools, run_challenge
    from facelive.types import LivenessResult, TestResult

    class ConstantPipeline:
        """The passive tests' stand-in: every frame scores 0.75 (threshold 0.5)."""

        threshold = 0.5

        def check_frame(self, image: np.ndarray) -> LivenessResult:
            return LivenessResult(None, "live", 0.75, 0.5,
                                  {"constant": TestResult(0.75, "ok", 0.1, 0.5)}, None, 0.1, 0.1)

        def info(self) -> dict[str, object]:
            return {"tests": [{"name": "constant"}]}

    img = cv2.resize(cv2.imread(str(REPO / "examples" / "astronaut.jpg")), (size, size),
                     interpolation=cv2.INTER_CUBIC)
    data = []
    for i in range(frames):
        f = img.copy()
        f[i // size, i % size] ^= 0xFF  # no two frames identical
        data.append(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 85])[1].tobytes())
    del img
    ch = new_challenge()
    if case == "bad timing":
        ts = [float(i) for i in range(frames)]
    else:
        step = ch.capture_ms / (frames - 1)
        ts = [i * step for i in range(frames)]
    job = ChallengeJob(frames=data, timestamps_ms=ts, challenge=ch.to_dict(),
                       elapsed_ms=float(ch.capture_ms) + 1000.0)
    _face_tools()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    rss0 = _status_kib("VmRSS")
    t0 = time.perf_counter()
    out = run_challenge(ConstantPipeline(), job, Settings())
    seconds = time.perf_counter() - t0
    peak = _status_kib("VmHWM")
    return {"case": case, "decision": out["decision"], "reasons": out["reasons"],
            "seconds": round(seconds, 2), "peak_mib": round((peak - rss0) / 1024, 1),
            "bytes_mb": round(sum(map(len, data)) / 1e6, 1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--frames", type=int, default=150)
    ap.add_argument("--size", type=int, default=1000)
    ap.add_argument("--cases", default="bad timing,plausible timing")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_one(args.child, args.frames, args.size)))
        return 0
    rows = []
    for case in [c.strip() for c in args.cases.split(",") if c.strip()]:
        out = subprocess.run([sys.executable, __file__, "--child", case, "--frames",
                              str(args.frames), "--size", str(args.size)],
                             capture_output=True, text=True, env=dict(os.environ), timeout=600)
        if out.returncode != 0:
            print(out.stderr[-2000:], file=sys.stderr)
            return 1
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{args.frames} frames of {args.size}x{args.size}, "
          f"{rows[0]['bytes_mb'] if rows else 0} MB of JPEG")
    print(f"| {'case':<16} | {'decision':<8} | {'s':>6} | {'peak MiB':>8} | reasons")
    print(f"|{'-' * 18}|{'-' * 10}|{'-' * 8}|{'-' * 10}|---------")
    for r in rows:
        reasons = "; ".join(r["reasons"])  # type: ignore[arg-type]
        print(f"| {r['case']:<16} | {r['decision']:<8} | {r['seconds']:>6} | "
              f"{r['peak_mib']:>8} | {reasons[:90]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
