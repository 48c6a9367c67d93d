"""Benchmark: face detection + crop + CNN per 640x480 frame on one core, the int8 and the float
network side by side, and their load times.

    python benchmarks/bench_cnn.py [--repeat 20] [--frames 6] [--image PATH]

Pins the process to one CPU core (where the OS allows) and one thread for ONNX Runtime and
OpenCV; runs over the benchmark frame set (``benchmarks/_frames.py``: Replay-Attack devel + NUAA
frames at 640x480 when ../shared/data is there) or ``--image``, ``--repeat`` passes, the two
networks interleaved on the same crops, and prints median / p10 / p90 ms per step with the
median per frame source. Targets (issue 4): <= 30 ms per frame, load <= 1 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark the CNN test on one core.")
    ap.add_argument("--image", type=Path, default=None, help="one image instead of the set")
    ap.add_argument("--frames", type=int, default=6, help="frames per source")
    ap.add_argument("--repeat", type=int, default=20, help="passes over the frames")
    args = ap.parse_args(argv)
    import cv2
    from _frames import (
        BenchFrame,
        describe,
        fit_to,
        frame_set,
        machine_line,
        pin_one_core,
        print_step_table,
    )

    pin_one_core()
    cv2.setNumThreads(1)

    from facelive.face.detection import FaceDetector, square_crop
    from facelive.imageio import load_image

    if args.image is not None:
        frames = [BenchFrame(fit_to(load_image(args.image), 640, 480), "--image",
                             args.image.name)]
    else:
        frames = frame_set(args.frames)

    t0 = time.perf_counter()
    from facelive.liveness.cnn import CNNTest

    nets = {}
    loads = {}
    for precision in ("int8", "fp32"):
        t0 = time.perf_counter()
        nets[precision] = CNNTest(threads=1, precision=precision)
        loads[f"load CNN {precision} (first: + ONNX Runtime import)"] = (
            time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    det = FaceDetector()
    det.detect(frames[0].image)  # graph start-up happens on first use
    loads["load detector (+ first frame)"] = (time.perf_counter() - t0) * 1e3
    cnn = nets["int8"]

    names = ["face detection", "crop + resize", "preprocess (to float NCHW)",
             "CNN int8 (ONNX Runtime)", "CNN fp32 (ONNX Runtime)",
             "total per frame (int8)", "total per frame (fp32)"]
    rows: dict[str, list[float]] = {k: [] for k in names}
    by_source: dict[str, dict[str, list[float]]] = {}
    boxes = {f.name: det.detect(f.image) for f in frames}
    skipped = [n for n, b in boxes.items() if b is None]
    for net in nets.values():
        for f in frames:
            if boxes[f.name] is not None:
                net.predict_crops(square_crop(f.image, boxes[f.name], cnn.context, cnn.size))
    for _ in range(args.repeat):
        for f in frames:
            if boxes[f.name] is None:
                continue
            t0 = time.perf_counter()
            box = det.detect(f.image)
            t1 = time.perf_counter()
            crop = square_crop(f.image, box, cnn.context, cnn.size)
            t2 = time.perf_counter()
            cnn.preprocess(crop[None])
            t3 = time.perf_counter()
            nets["int8"].predict_crops(crop)
            t4 = time.perf_counter()
            nets["fp32"].predict_crops(crop)
            t5 = time.perf_counter()
            vals = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t4 - t0 - (t3 - t2),
                    t2 - t0 + t5 - t4)
            src = by_source.setdefault(f.source, {k: [] for k in names})
            for k, v in zip(names, vals, strict=True):
                rows[k].append(v * 1e3)
                src[k].append(v * 1e3)
    det.close()

    print(f"frames ({len(frames)}, 640x480):\n{describe(frames)}")
    print(f"{args.repeat} passes, 1 core, onnxruntime threads=1; {machine_line()}")
    print("(the CNN rows include the preprocessing; the totals: detection + crop + CNN)")
    if skipped:
        print(f"no face (skipped): {skipped}")
    print_step_table(rows, loads, by_source)
    import numpy as np

    total = float(np.median(rows["total per frame (int8)"]))
    load = loads["load CNN int8 (first: + ONNX Runtime import)"]
    print(f"targets (<= 30 ms per frame, load <= 1 s): "
          f"{'met' if total <= 30 and load <= 1000 else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
