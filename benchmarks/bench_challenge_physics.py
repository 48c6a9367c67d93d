"""What the challenge's physical checks add to a clip's verification, in seconds.

    PYTHONPATH=src python benchmarks/bench_challenge_physics.py [--size 480] [--repeat 3]

One live clip (:func:`facelive.challenge.simulate.simulate_live_clip` of
``examples/astronaut.jpg`` scaled to ``--size`` pixels, 10 fps over a default challenge, JPEG
q85) is verified ``--repeat`` times without the passive tests; each physical check
(:mod:`facelive.challenge.physics`) is then timed alone on the verifier's own faces and meshes.
Prints a table: step, median seconds.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    import cv2
    import numpy as np

    from facelive.challenge import physics
    from facelive.challenge import verify as v
    from facelive.challenge.sequence import new_challenge
    from facelive.challenge.simulate import simulate_live_clip
    from facelive.face.detection import FaceDetector
    from facelive.face.mesh import FaceMesher

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=int, default=480)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    img = cv2.imread(str(REPO / "examples" / "astronaut.jpg"))
    img = cv2.resize(img, (args.size, args.size), interpolation=cv2.INTER_AREA)
    ch = new_challenge(rng=random.Random(0))
    params = v.VerifyParams()
    with FaceDetector() as det, FaceMesher() as mesher:
        box = det.detect(img)
        verts, _ = mesher.reconstruct(img, box)
        frames, ts = simulate_live_clip(img, box, ch, mesher.to_image(verts, img.shape, box),
                                        rng=np.random.default_rng(0))
        times: dict[str, list[float]] = {}

        def timed(name, fn, *fargs):
            t0 = time.perf_counter()
            out = fn(*fargs)
            times.setdefault(name, []).append(time.perf_counter() - t0)
            return out

        for _ in range(max(1, args.repeat)):
            rep = timed("verify_challenge (no passive tests), whole clip",
                        lambda: v.verify_challenge(frames, ts, ch, detector=det, mesher=mesher))
            # the verifier's own inputs to the physical checks
            _, boxes, marks = v._faces(frames, det, mesher, params)
            lat = float(rep.colour["latency_ms"])
            screen = v._screen_linear(ch, np.asarray(ts) - lat, params.exposure_ms)
            means = np.array([v.region_means(f, b)[0]
                              for f, b in zip(frames, boxes, strict=True)])
            timed("motion (face_motion)", physics.face_motion, frames, marks, ts)
            timed("falloff (screen_falloff)", physics.screen_falloff, frames, boxes, means,
                  screen)
            timed("shape (shading_response)", physics.shading_response, frames, marks, screen)
    print(f"{len(frames)} frames of {args.size} x {args.size}, decision {rep.decision}, "
          f"median of {args.repeat}")
    print("| step | seconds |")
    print("|---|---|")
    for name, vals in times.items():
        print(f"| {name} | {statistics.median(vals):.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
