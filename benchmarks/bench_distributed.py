"""Benchmark: scoring dataset frames on a local Dask cluster (``--engine dask``) against the
single-process run: throughput, start-up cost and memory per worker.

    python benchmarks/bench_distributed.py [--frames 80] [--workers 1,2] [--chunk-size 8]

Frames: ``--frames`` Replay-Attack devel frames (whole, evenly spaced videos, as ``facelive
evaluate --limit``) from ``../shared/data`` (or ``$FACELIVE_DATA``); the default tests and the
fusion. Rows, in this order so that a busy shared machine shows in the baseline too: the single
process, a local cluster of each ``--workers`` size, the single process again.

- single process: a fresh ``python`` process builds ``Pipeline()`` (tests in parallel, one thread
  per core, as ``facelive evaluate`` runs) and scores the frames with
  :func:`facelive.evaluation.evaluate.score_samples`; start-up = ``Pipeline()`` and one frame
  (MediaPipe starts its graphs on the first frame); memory = that process's resident set size
  (RSS) after scoring.
- dask, N workers: :class:`facelive.distributed.DaskScorer` (what ``--engine dask`` runs): a
  ``LocalCluster`` of N single-threaded worker processes; start-up = cluster started, models
  loaded on every worker, the pipeline described, and one frame on every worker; memory = each
  worker process's RSS after scoring (largest shown); the client process is not counted.

Throughput = frames / scoring seconds (start-up excluded; the "with start-up" column includes
it). CPU ms per frame: the scoring processes' CPU time (user + system, all threads; the workers'
Dask overhead included, the client's not) over the frames: what a core must spend per frame,
which another machine's load does not inflate as it does wall-clock times; the closing line
turns it into the per-core rate and the hours 625,000 images would take on M machines of C
cores (CPU-bound, perfectly spread, start-up and I/O left out). "same scores": every frame's
score equals the first single-process run's, bit for bit. Wall-clock times on a shared machine:
the 1-minute load average is printed with each row.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELIVE_DATA", REPO.parent / "shared" / "data"))


def _samples(n: int) -> list:
    from facelive.datasets import open_dataset
    from facelive.evaluation.evaluate import _subset

    ds = open_dataset("replay-attack", DATA / "replay-attack", split="devel")
    return _subset(ds.samples(), n)


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _cpu_s() -> float:
    """CPU seconds (user + system, every thread) this process has used."""
    t = os.times()
    return t.user + t.system


def child_single(n: int) -> None:
    """The single-process row, in a fresh process: print one JSON line."""
    from facelive.runtime import tune_process

    tune_process(filter_stderr=False)
    from facelive.evaluation.evaluate import score_samples
    from facelive.pipeline import Pipeline

    samples = _samples(n)
    t0 = time.perf_counter()
    pipe = Pipeline()
    pipe.check(samples[0].load())  # warm-up: MediaPipe's graphs start on the first frame
    t1, c1 = time.perf_counter(), _cpu_s()
    run = score_samples(pipe, samples, progress=False)
    t2, c2 = time.perf_counter(), _cpu_s()
    print(json.dumps({"startup_s": t1 - t0, "score_s": t2 - t1, "cpu_s": c2 - c1,
                      "rss_mb": [_rss_mb()], "scores": run.scores}), flush=True)


def single(n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child-single", str(n)], check=True,
                         capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _warm(name: str, sample, dask_worker=None) -> None:
    from facelive.distributed import worker_pipeline

    worker_pipeline(name, dask_worker).check(sample.load())


def dask_row(n: int, workers: int, chunk_size: int) -> dict:
    from facelive.distributed import DaskScorer, PipelineSpec

    samples = _samples(n)
    t0 = time.perf_counter()
    with DaskScorer(PipelineSpec(), workers=workers, chunk_size=chunk_size) as scorer:
        scorer.client.run(_warm, scorer.plugin.name, samples[0])  # on every worker
        startup = time.perf_counter() - t0
        c1 = scorer.client.run(_cpu_s)
        t1 = time.perf_counter()
        run = scorer.score_samples(samples, progress=False)
        score_s = time.perf_counter() - t1
        c2 = scorer.client.run(_cpu_s)
        rss = sorted(scorer.client.run(_rss_mb).values())
    return {"startup_s": startup, "score_s": score_s, "rss_mb": rss, "scores": run.scores,
            "cpu_s": sum(c2[w] - c1[w] for w in c2 if w in c1)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=80, help="Replay-Attack devel frames")
    ap.add_argument("--workers", default="1,2", help="local cluster sizes, comma-separated")
    ap.add_argument("--chunk-size", type=int, default=8, help="frames per task")
    ap.add_argument("--json", type=Path, default=None, help="also write every number here")
    ap.add_argument("--child-single", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child_single is not None:
        child_single(args.child_single)
        return 0
    if not (DATA / "replay-attack").is_dir():
        print(f"no Replay-Attack data at {DATA} (set FACELIVE_DATA)", file=sys.stderr)
        return 2
    n = len(_samples(args.frames))
    plan = [("single process", 0), *[(f"dask, {w} worker{'s' * (w > 1)}", w)
                                     for w in map(int, args.workers.split(","))],
            ("single process (again)", 0)]
    rows = []
    for label, w in plan:
        load = os.getloadavg()[0]
        r = single(n) if w == 0 else dask_row(n, w, args.chunk_size)
        r.update(label=label, workers=w, load=load)
        rows.append(r)
        print(f"  {label}: {n / r['score_s']:.1f} frames/s", file=sys.stderr, flush=True)
    ref = rows[0]["scores"]
    print(f"\n{n} Replay-Attack devel frames, default tests + fusion, chunk size "
          f"{args.chunk_size}, {os.cpu_count()} CPUs\n")
    print("| run | start-up (s) | scoring (s) | frames/s | frames/s with start-up | "
          "CPU ms per frame | RSS per process (MiB) | same scores | load avg |")
    print("|---|---:|---:|---:|---:|---:|---:|---|---:|")
    for r in rows:
        print(f"| {r['label']} | {r['startup_s']:.1f} | {r['score_s']:.1f} | "
              f"{n / r['score_s']:.1f} | {n / (r['startup_s'] + r['score_s']):.1f} | "
              f"{1e3 * r['cpu_s'] / n:.0f} | {max(r['rss_mb']):.0f} | "
              f"{'yes' if r['scores'] == ref else 'NO'} | {r['load']:.2f} |")
    best = min(r["cpu_s"] for r in rows if not r["workers"]) / n  # the pipeline alone
    worst = max(r["cpu_s"] for r in rows if r["workers"]) / n  # with a Dask worker's overhead
    print(f"\nPer core: {1 / worst:.1f} to {1 / best:.1f} frames/s (CPU time: the worst dask "
          "row, the best single-process row). 625,000 images on M machines of C cores, "
          "CPU-bound and evenly spread, in hours: " + ", ".join(
              f"{m}x{c}: {625_000 * best / (m * c) / 3600:.2f}-"
              f"{625_000 * worst / (m * c) / 3600:.2f}"
              for m, c in ((1, 2), (1, 16), (4, 16), (16, 16))))
    if args.json:
        args.json.write_text(json.dumps({"frames": n, "chunk_size": args.chunk_size,
                                         "rows": [{k: v for k, v in r.items() if k != "scores"}
                                                  for r in rows]}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
