"""Benchmark: 640x480 frames through face detection, the default tests and the fusion; the
quality test end to end at three resolutions; ``facelive check``'s own ``ms`` on the same frames;
the time from process start to a loaded pipeline; and the performance targets, met or missed.

    python benchmarks/bench_pipeline.py [--repeat 10] [--frames 6] [--load-runs 5]

Frames: ``benchmarks/_frames.py`` (``--frames`` Replay-Attack devel and ``--frames`` NUAA
frames at 640x480 when ../shared/data is there, else the example and variants of it); every
timed row runs over all of them ``--repeat`` times, interleaved, after a warm-up, and prints the
median, p10 and p90 in ms over all runs plus the median per frame source. Wall-clock times on a
shared machine: the load average is printed with them. The pipeline runs as ``facelive check``
and ``facelive serve`` run it (``tune_process``: single-threaded BLAS and OpenCV, tests in
parallel on one thread per core). Two more rows help read it on a busy machine: the process's
CPU time per pipeline run (all threads, MediaPipe's included), and an estimate of the parallel
pipeline on two idle cores (per frame and run: the larger of the quality test alone and
detection + the face tests alone; the tests are then independent, one per core).

``facelive check`` row: the same frames written as JPEG (quality 95) to a temporary folder and
given to ``facelive check --format jsonl`` in a process of its own; its per-file ``ms`` (the
pipeline on the decoded image, without decoding), the first file excluded (it pays MediaPipe's
graph start-up). Load rows: a fresh ``python`` process importing facelive and constructing
``Pipeline()`` (every model loaded and checksum-verified; MediaPipe's graphs start on the first
frame), timed from the parent from process start until the child says it is ready, ``--load-runs``
times; and ``Pipeline()`` alone inside this process (the number earlier README versions gave).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

TARGETS = {  # the performance targets: (row, limit ms)
    "pipeline": ("pipeline, default tests + fusion, tests in parallel (bench median)", 15.0),
    "check": ("pipeline, default tests + fusion, in `facelive check`'s own ms (median)", 15.0),
    "quality": ("quality test end to end at 640x480 (median)", 15.0),
    "load": ("every model loaded: process start to ready (median)", 700.0),
}

_CHILD = r"""
import sys, time
t0 = time.perf_counter()
from facelive.runtime import tune_process
tune_process(filter_stderr=False)
from facelive.pipeline import Pipeline
t1 = time.perf_counter()
p = Pipeline()
t2 = time.perf_counter()
print(f"READY {(t1 - t0) * 1e3:.1f} {(t2 - t1) * 1e3:.1f}", flush=True)
if "--first" in sys.argv:
    import numpy as np
    img = np.load(sys.argv[-1])
    t3 = time.perf_counter()
    p.check_frame(img)
    print(f"FIRST {(time.perf_counter() - t3) * 1e3:.1f}", flush=True)
p.close()
"""


def _child_env() -> dict[str, str]:
    """This process's environment, with the facelive it imports first on the path."""
    import facelive

    src = str(Path(facelive.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def load_runs(n: int, first_frame: Path | None = None) -> dict[str, list[float]]:
    """Fresh processes: ms from start to a constructed ``Pipeline()``, and its parts."""
    env = _child_env()
    out: dict[str, list[float]] = {"process start to ready": [], "imports (in the child)": [],
                                   "Pipeline() (in the child)": [], "first frame after ready": []}
    for _ in range(n):
        argv = [sys.executable, "-c", _CHILD]
        if first_frame is not None:
            argv += ["--first", str(first_frame)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=env)
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        ready = (time.perf_counter() - t0) * 1e3
        rest = proc.stdout.read().split()
        proc.wait()
        if not line or line[0] != "READY":
            raise RuntimeError("the child process did not load the pipeline")
        out["process start to ready"].append(ready)
        out["imports (in the child)"].append(float(line[1]))
        out["Pipeline() (in the child)"].append(float(line[2]))
        if rest and rest[0] == "FIRST":
            out["first frame after ready"].append(float(rest[1]))
    return out


def check_ms(frames: list, workdir: Path) -> tuple[list[dict], float]:
    """``facelive check --format jsonl`` on the frames as JPEG files; its JSON lines (in the
    frames' order) and the process's wall time in ms."""
    import cv2

    names = []
    for i, f in enumerate(frames):
        name = workdir / f"{i:03d}.jpg"
        cv2.imwrite(str(name), f.image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        names.append(name)
    cmd = [sys.executable, "-m", "facelive", "check", "--format", "jsonl", str(workdir)]
    env = _child_env()
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    wall = (time.perf_counter() - t0) * 1e3
    rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    if len(rows) != len(names):
        raise RuntimeError(f"facelive check failed: {res.stderr[-2000:]}")
    return rows, wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=10, help="passes over the frame set")
    ap.add_argument("--frames", type=int, default=6, help="frames per source")
    ap.add_argument("--load-runs", type=int, default=5, help="fresh processes for the load rows")
    ap.add_argument("--json", type=Path, default=None, help="also write every number here")
    args = ap.parse_args()
    import numpy as np
    from _frames import describe, frame_set, machine_line, stats

    from facelive.liveness import Frame
    from facelive.liveness.quality import QualityTest
    from facelive.pipeline import Pipeline
    from facelive.runtime import tune_process

    tune_process(filter_stderr=False)  # what `facelive check` / `facelive serve` apply
    frames = frame_set(args.frames)
    print(f"frames ({len(frames)}, 640x480):\n{describe(frames)}")
    print(f"{machine_line()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")

    t0 = time.perf_counter()
    par = Pipeline()
    load_in_process = (time.perf_counter() - t0) * 1e3
    ser = Pipeline(parallel=False)
    print(f"tests: {'+'.join(par.test_names)}; fusion: {par.info()['fusion']}; "
          f"cnn: {par.tests[par.test_names.index('cnn')].info().get('precision', 'fp32')}"
          if "cnn" in par.test_names else "")
    rows: dict[str, list[float]] = {}
    by_source: dict[str, dict[str, list[float]]] = {}

    def add(name: str, src: str, ms: float) -> None:
        rows.setdefault(name, []).append(ms)
        by_source.setdefault(src, {}).setdefault(name, []).append(ms)

    def timed(fn) -> float:
        t = time.perf_counter()
        fn()
        return (time.perf_counter() - t) * 1e3

    faces = {}
    for f in frames:  # warm-up: every frame through both pipelines
        par.check_frame(f.image)
        ser.check_frame(f.image)
        found = par.detect(f.image)
        faces[f.name] = found[0] if found else None
    no_face = [f.name for f in frames if faces[f.name] is None]
    p_name = f"pipeline {'+'.join(par.test_names)} + fusion (parallel)"
    decisions: dict[str, str] = {}
    for _ in range(args.repeat):
        for f in frames:
            add("face detection only", f.source, timed(lambda f=f: par.detect(f.image)))
            t, c = time.perf_counter(), time.process_time()
            r = par.check_frame(f.image)
            add(p_name, f.source, (time.perf_counter() - t) * 1e3)
            add("  CPU time of that pipeline run (all threads of the process)", f.source,
                (time.process_time() - c) * 1e3)
            decisions[f.name] = r.decision
            for n, tr in r.tests.items():
                add(f"  {n} inside the parallel pipeline (its own ms)", f.source, tr.ms)
            add("same, tests in series", f.source, timed(lambda f=f: ser.check_frame(f.image)))
            alone = {"detection": rows["face detection only"][-1]}
            for test in par.tests:
                if test.needs_face and faces[f.name] is None:
                    continue
                alone[test.name] = timed(
                    lambda t=test, f=f: t.score(Frame(image=f.image, face=faces[f.name])))
                add(f"test {test.name} alone (no detection)", f.source, alone[test.name])
            if len(alone) == len(par.tests) + 1:  # two idle cores: face chain beside the rest
                face_chain = alone["detection"] + sum(alone[t.name] for t in par.tests
                                                      if t.needs_face)
                rest = sum(alone[t.name] for t in par.tests if not t.needs_face)
                add("estimate for two idle cores: max(quality, detection + face tests)",
                    f.source, max(face_chain, rest))
    qt = QualityTest()
    sized = {(w, h): frame_set(args.frames, w, h) for w, h in ((320, 240), (640, 480),
                                                             (1280, 720))}
    for fs in sized.values():
        for f in fs:
            qt.score(Frame(image=f.image))
    for _ in range(args.repeat):
        for (w, h), fs in sized.items():
            for f in fs:
                add(f"quality test end to end at {w}x{h}", f.source,
                    timed(lambda f=f: qt.score(Frame(image=f.image))))
    par.close()
    ser.close()

    with tempfile.TemporaryDirectory(prefix="facelive-bench-") as tmp:
        check_rows, check_wall = check_ms(frames, Path(tmp))
        first = Path(tmp) / "frame.npy"
        np.save(first, frames[0].image)
        load = load_runs(args.load_runs, first)
    for f, r in list(zip(frames, check_rows, strict=True))[1:]:  # first file: graph start-up
        add("`facelive check` own ms (files 2..N)", f.source, r["ms"])
        for n, tr in r["tests"].items():
            add(f"  {n} inside `facelive check` (its own ms)", f.source, tr["ms"])

    sources = list(by_source)
    print()
    print("| what | median ms | p10 | p90 | n | " + " | ".join(f"{s} median" for s in sources)
          + " |")
    print("|---|---|---|---|---|" + "---|" * len(sources))
    for name, v in rows.items():
        s = stats(v)
        per = " | ".join(f"{stats(by_source[src].get(name, []))['median']:.1f}"
                         for src in sources)
        print(f"| {name} | {s['median']:.1f} | {s['p10']:.1f} | {s['p90']:.1f} | {s['n']} | "
              f"{per} |")
    for name, v in load.items():
        if v:
            s = stats(v)
            print(f"| load: {name} | {s['median']:.0f} | {s['p10']:.0f} | {s['p90']:.0f} | "
                  f"{s['n']} |" + " |" * len(sources))
    print(f"| load: Pipeline() in this process (earlier README metric) | {load_in_process:.0f} "
          f"| | | 1 |" + " |" * len(sources))
    print(f"\n`facelive check` on {len(frames)} files: {check_wall:.0f} ms in all, first file "
          f"{check_rows[0]['ms']:.1f} ms (graph start-up); decisions: "
          + ", ".join(f"{r['decision']}" for r in check_rows))
    if no_face:
        print(f"frames without a face (face tests skipped in the 'alone' rows): {no_face}")
    par_med = stats(rows[p_name])["median"]
    ser_med = stats(rows["same, tests in series"])["median"]
    print(f"parallel speed-up over series: {ser_med / par_med:.2f}x")

    got = {"pipeline": par_med,
           "check": stats(rows["`facelive check` own ms (files 2..N)"])["median"],
           "quality": stats(rows["quality test end to end at 640x480"])["median"],
           "load": stats(load["process start to ready"])["median"]}
    print("\nperformance targets (2 cores, 640x480, medians):\n")
    print("| target | limit ms | measured ms | |")
    print("|---|---|---|---|")
    for key, (label, limit) in TARGETS.items():
        print(f"| {label} | <= {limit:.0f} | {got[key]:.1f} | "
              f"{'met' if got[key] <= limit else 'MISSED'} |")
    if args.json is not None:
        args.json.write_text(json.dumps({
            "frames": [[f.source, f.name] for f in frames], "machine": machine_line(),
            "rows": {k: stats(v) for k, v in rows.items()},
            "by_source": {s: {k: stats(v) for k, v in d.items()} for s, d in by_source.items()},
            "load": {k: stats(v) for k, v in load.items()},
            "load_in_process_ms": load_in_process, "targets": got}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
