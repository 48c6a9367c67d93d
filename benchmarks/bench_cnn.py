"""Benchmark: face detection + crop + CNN per 640x480 frame on one core, and model load time.

    PYTHONPATH=src python benchmarks/bench_cnn.py [--image PATH] [--repeat 50]

Pins the process to one CPU core (where the OS allows) and one thread for ONNX Runtime and
MediaPipe, then prints a table of medians. Targets (issue 4): <= 30 ms per frame, load <= 1 s.
Without ``--image`` it uses a NUAA live frame (640x480) from ../shared/data.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Benchmark the CNN test on one core.")
    ap.add_argument("--image", type=Path, default=None)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent
                    / "shared" / "data")
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args(argv)
    import cv2
    from _frames import pin_one_core, print_step_table

    pin_one_core()

    from facelive.face.detection import FaceDetector, square_crop
    from facelive.imageio import load_image
    from facelive.liveness import Frame

    cv2.setNumThreads(1)
    path = args.image or sorted((args.data / "nuaa" / "ClientRaw" / "0001").glob("*.jpg"))[0]
    img = load_image(path)
    if img.shape[:2] != (480, 640):
        img = cv2.resize(img, (640, 480), interpolation=cv2.INTER_AREA)

    t0 = time.perf_counter()
    from facelive.liveness.cnn import CNNTest

    cnn = CNNTest(threads=1)
    t_load_cnn = time.perf_counter() - t0
    t0 = time.perf_counter()
    det = FaceDetector()
    det.detect(img)  # graph start-up happens on first use
    t_load_det = time.perf_counter() - t0

    rows: dict[str, list[float]] = {"detect": [], "crop": [], "cnn": [], "total": []}
    for _ in range(3):
        cnn.score_frame(Frame(img, det.detect(img)))
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        box = det.detect(img)
        t1 = time.perf_counter()
        crop = square_crop(img, box, cnn.context, cnn.size)
        t2 = time.perf_counter()
        cnn.predict_crops(crop)
        t3 = time.perf_counter()
        for k, v in zip(rows, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
            rows[k].append(v * 1e3)
    det.close()

    print(f"image {path} ({img.shape[1]}x{img.shape[0]}), {args.repeat} runs, "
          f"1 core, onnxruntime threads=1")
    print_step_table(rows, {"load CNN (import+ORT)": t_load_cnn * 1e3,
                            "load detector": t_load_det * 1e3})
    ok = statistics.median(rows["total"]) <= 30 and t_load_cnn <= 1.0
    print(f"targets (<= 30 ms per frame, load <= 1 s): {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
