"""Benchmark: the 3D test per 640x480 frame on one core, step by step, and its load time;
optionally (``--int8``) what static INT8 quantisation of the VoxNet would give.

    python benchmarks/bench_face3d.py [--repeat 20] [--frames 6]
    python benchmarks/bench_face3d.py --int8 [--step 9]      # needs ../shared/data

Pins the process to one CPU core (where the OS allows), one thread for ONNX Runtime, MediaPipe
and OpenCV, and prints median / p10 / p90 ms of each step over the benchmark frame set
(``benchmarks/_frames.py``: Replay-Attack devel + NUAA frames at 640x480 when the data is there)
with the median per frame source: face detection, 3D reconstruction (crop + MediaPipe Face Mesh
+ grey levels), voxelisation, VoxNet, total. The 2019 thesis's 3D test took 5.39 s for the
reconstruction alone.

``--int8``: voxel grids of every Replay-Attack devel frame; the VoxNet quantised with ONNX
Runtime as the CNN is (:func:`facelive.training.cnn.quantize.quantize_onnx`; calibration: every
``--step``-th devel grid); devel EER and P(live) differences of both networks, and the VoxNet's
time per grid (thread CPU ms, runs interleaved). The quantised VoxNet is measured only, never
written to the models folder.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def bench_steps(args: argparse.Namespace) -> None:
    from _frames import describe, frame_set, machine_line, print_step_table

    from facelive.face.detection import FaceDetector
    from facelive.liveness import Frame
    from facelive.liveness.face3d.voxel import face_voxels

    frames = frame_set(args.frames)
    t0 = time.perf_counter()
    from facelive.liveness.face3d import Face3DTest

    test = Face3DTest(threads=1)
    det = FaceDetector()
    test.score_frame(Frame(frames[0].image, det.detect(frames[0].image)))  # graph start-up
    t_load = time.perf_counter() - t0
    mesher, tri = test._mesher, test._triangles
    names = ["face detection", "reconstruction (Face Mesh)", "voxelisation",
             "VoxNet (ONNX Runtime)", "total per frame"]
    rows: dict[str, list[float]] = {k: [] for k in names}
    by_source: dict[str, dict[str, list[float]]] = {}
    for f in frames:
        test.score_frame(Frame(f.image, det.detect(f.image)))  # warm-up on every frame
    skipped = []
    for _ in range(args.repeat):
        for f in frames:
            t0 = time.perf_counter()
            box = det.detect(f.image)
            t1 = time.perf_counter()
            if box is None:
                skipped.append(f.name)
                continue
            vertices, intensity = mesher.shaded_mesh(f.image, box)
            t2 = time.perf_counter()
            grid = face_voxels(vertices, intensity, tri, test.grid, test.steps)
            t3 = time.perf_counter()
            test.predict_voxels(grid)
            t4 = time.perf_counter()
            src = by_source.setdefault(f.source, {k: [] for k in names})
            for k, v in zip(names, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
                rows[k].append(v * 1e3)
                src[k].append(v * 1e3)
    det.close()
    test.close()
    print(f"frames ({len(frames)}, 640x480):\n{describe(frames)}")
    print(f"{args.repeat} passes over the frames, 1 core, onnxruntime threads=1; {machine_line()}")
    if skipped:
        print(f"no face (skipped): {sorted(set(skipped))}")
    print_step_table(rows, {"load (models + first frame)": t_load * 1e3}, by_source)


def bench_int8(args: argparse.Namespace) -> None:
    import numpy as np
    import onnxruntime as ort
    from _frames import DATA, machine_line
    from rich.progress import track

    from facelive import modelstore
    from facelive.evaluation import eer
    from facelive.face.detection import FaceDetector
    from facelive.liveness import Frame
    from facelive.liveness.base import NoFaceError
    from facelive.liveness.face3d import MODEL_FILE, Face3DTest
    from facelive.training.cnn.quantize import quantize_onnx
    from facelive.training.cnn.threshold import devel_samples

    samples = devel_samples(DATA / "replay-attack")
    test = Face3DTest(threads=1)
    grids, live = [], []
    with FaceDetector() as det:
        for smp in track(samples, description="devel voxel grids", transient=True):
            img = smp.load()
            box = det.detect(img)
            if box is None:
                continue
            try:
                grids.append(test.voxels(Frame(img, box)))
            except NoFaceError:
                continue
            live.append(smp.is_live)
    test.close()
    x = np.asarray(grids, np.float32)
    y = np.asarray(live, bool)
    name = test._input
    calib = x[::args.step]

    def batches():
        for i in range(len(calib)):
            yield {name: calib[i:i + 1]}

    folder = modelstore.find_folder(MODEL_FILE)
    t0 = time.perf_counter()
    variants = {"int8 (conv + dense)": (), "int8 (conv only, dense float)": ("Gemm", "Softmax")}
    models = {"fp32": modelstore.read_bytes(MODEL_FILE, folder)}
    for label, ops in variants.items():
        models[label] = quantize_onnx(folder / MODEL_FILE, batches, exclude_ops=ops)
    q_s = time.perf_counter() - t0
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    sess = {k: ort.InferenceSession(v, opts, providers=["CPUExecutionProvider"])
            for k, v in models.items()}
    scores = {k: np.concatenate([s.run(None, {name: x[i:i + 64]})[0][:, 1]
                                 for i in range(0, len(x), 64)]) for k, s in sess.items()}
    one = x[:1]
    times: dict[str, list[float]] = {k: [] for k in sess}
    for s in sess.values():
        for _ in range(5):
            s.run(None, {name: one})
    for _ in range(args.repeat * 10):
        for k, s in sess.items():
            c0 = time.thread_time()
            s.run(None, {name: one})
            times[k].append((time.thread_time() - c0) * 1e3)
    print(f"VoxNet INT8 (not shipped): {len(x)} Replay-Attack devel grids "
          f"({int(y.sum())} live), calibration on {len(calib)} (every {args.step}th), "
          f"quantisation {q_s:.0f} s; {machine_line()}")
    print("| network | RA devel EER % | max abs diff P(live) vs fp32 | ms per grid median "
          "(p10-p90), thread CPU | size MB |")
    print("|---|---|---|---|---|")
    for k in sess:
        t = np.asarray(times[k])
        print(f"| {k} | {100 * eer(scores[k][y], scores[k][~y]):.2f} | "
              f"{np.abs(scores[k] - scores['fp32']).max():.4f} | {np.median(t):.3f} "
              f"({np.percentile(t, 10):.3f}-{np.percentile(t, 90):.3f}) | "
              f"{len(models[k]) / 1e6:.2f} |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark the 3D test on one core.")
    ap.add_argument("--repeat", type=int, default=20, help="passes over the frame set")
    ap.add_argument("--frames", type=int, default=6, help="frames per source")
    ap.add_argument("--int8", action="store_true",
                    help="measure an INT8 VoxNet instead (needs ../shared/data)")
    ap.add_argument("--step", type=int, default=9, help="--int8: calibrate on every STEP-th grid")
    args = ap.parse_args(argv)
    import cv2
    from _frames import pin_one_core

    pin_one_core()
    cv2.setNumThreads(1)
    if args.int8:
        bench_int8(args)
    else:
        bench_steps(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
