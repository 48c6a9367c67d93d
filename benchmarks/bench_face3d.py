"""Benchmark: the 3D test per 640x480 frame on one core, step by step, and its load time.

    python benchmarks/bench_face3d.py [--repeat 50]

Pins the process to one CPU core (where the OS allows), one thread for ONNX Runtime, MediaPipe
and OpenCV, and prints a table of medians: face detection, 3D reconstruction (crop + MediaPipe
Face Mesh + grey levels), voxelisation, VoxNet, total. The 2019 thesis's 3D test took 5.39 s for
the reconstruction alone.
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
    ap = argparse.ArgumentParser(description="Benchmark the 3D test on one core.")
    ap.add_argument("--repeat", type=int, default=50)
    args = ap.parse_args(argv)
    import cv2
    from _frames import face_frame, pin_one_core, print_step_table

    pin_one_core()

    from facelive.face.detection import FaceDetector
    from facelive.liveness import Frame

    cv2.setNumThreads(1)
    img, src = face_frame(640, 480)
    t0 = time.perf_counter()
    from facelive.liveness.face3d import Face3DTest

    test = Face3DTest(threads=1)
    test.score_frame(Frame(img, FaceDetector().detect(img)))  # graph start-up on first use
    t_load = time.perf_counter() - t0
    from facelive.liveness.face3d.voxel import face_voxels

    det = FaceDetector()
    mesher, tri = test._mesher, test._triangles
    rows: dict[str, list[float]] = {"face detection": [], "reconstruction (Face Mesh)": [],
                                    "voxelisation": [], "VoxNet (ONNX Runtime)": [],
                                    "total per frame": []}
    for _ in range(3):
        test.score_frame(Frame(img, det.detect(img)))
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        box = det.detect(img)
        t1 = time.perf_counter()
        vertices, intensity = mesher.shaded_mesh(img, box)
        t2 = time.perf_counter()
        grid = face_voxels(vertices, intensity, tri, test.grid, test.steps)
        t3 = time.perf_counter()
        test.predict_voxels(grid)
        t4 = time.perf_counter()
        for k, v in zip(rows, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0), strict=True):
            rows[k].append(v * 1e3)
    det.close()
    test.close()

    print(f"input: {src} at 640x480, {args.repeat} runs, 1 core, onnxruntime threads=1")
    print_step_table(rows, {"load (models + first frame)": t_load * 1e3})
    return 0


if __name__ == "__main__":
    sys.exit(main())
