"""Where the motion check's threshold sits on real captures (issue 22).

    python experiments/challenge_motion.py --data ../shared/data [--split devel] [--videos 60]

The verifier's motion check (:func:`facelive.challenge.physics.face_motion`) fits a homography to
the face's optical flow between two frames seconds apart; a plane (a photo) leaves only the
flow's noise. For every Replay-Attack video of the split (5 frames per video in the shared data,
about 3 s apart), the first and second frames are compared (Face Mesh landmarks of the first,
:func:`facelive.challenge.physics.flow_residual`, in inter-ocular distances):

* ``live``: real people in front of a webcam (the bona fide distribution, real camera noise);
* ``print, fixed support``: a printed photo on a stand, filmed by the same webcam (a real still
  plane, with real camera noise);
* ``still, re-encoded``: the live video's first frame sent twice with independent sensor noise
  (``--noise`` grey levels), a 0.5 px shift and JPEG q85 (a still photo injected as video).

Beside it, the landmarks' own homography residual
(:func:`facelive.challenge.verify.homography_residual`) on the same pairs, which Face Mesh's
jitter swamps. Prints the quantiles of each and the share at or above a few thresholds
(``VerifyParams.motion_min_residual`` among them). Nothing per image is written.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> int:
    import cv2
    import numpy as np

    from facelive.challenge.physics import flow_residual
    from facelive.challenge.verify import VerifyParams, homography_residual
    from facelive.face.detection import FaceDetector
    from facelive.face.mesh import FaceMesher, MeshNotFound

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--split", default="devel")
    ap.add_argument("--videos", type=int, default=60, help="per group")
    ap.add_argument("--noise", type=float, default=3.0)
    args = ap.parse_args(argv)
    root = args.data / "replay-attack" / args.split
    if not root.is_dir():
        print(f"no {root}", file=sys.stderr)
        return 2
    thr = VerifyParams().motion_min_residual
    rng = np.random.default_rng(0)
    det, mesher = FaceDetector(), FaceMesher()

    def marks(img):
        box = det.detect(img)
        if box is None:
            return None
        try:
            v, _ = mesher.reconstruct(img, box)
        except MeshNotFound:
            return None
        return mesher.to_image(v, img.shape, box)

    def reencode(img, shift):
        m = np.float32([[1, 0, shift], [0, 1, 0]])
        out = cv2.warpAffine(img, m, img.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
        out = np.clip(out + rng.normal(0, args.noise, out.shape), 0, 255).astype(np.uint8)
        return cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, 85])[1],
                            cv2.IMREAD_COLOR)

    def pair_stats(a, b):
        ma, mb = marks(a), marks(b)
        if ma is None or mb is None:
            return None
        iod = float(np.linalg.norm(ma[33, :2] - ma[263, :2]))
        flow = flow_residual(a, b, ma, sigma=max(2.0, 0.06 * iod)) / iod
        return flow, homography_residual(ma, mb)[0]

    groups: dict[str, list[tuple[float, float]]] = {"live": [], "print, fixed support": [],
                                                    "still, re-encoded": []}
    t0 = time.perf_counter()
    live = sorted((root / "real").glob("*"))[:args.videos]
    prints = [v for v in sorted((root / "attack" / "fixed").glob("*"))
              if "print" in v.name][:args.videos]
    for name, videos in (("live", live), ("print, fixed support", prints)):
        for v in videos:
            frames = sorted(v.glob("*.jpg"))
            if len(frames) < 2:
                continue
            a, b = cv2.imread(str(frames[0])), cv2.imread(str(frames[1]))
            r = pair_stats(a, b)
            if r is not None:
                groups[name].append(r)
            if name == "live":
                s = pair_stats(reencode(a, 0.0), reencode(a, 0.5))
                if s is not None:
                    groups["still, re-encoded"].append(s)
    det.close()
    mesher.close()
    print(f"Replay-Attack {args.split}, first two frames of each video (~3 s apart); "
          f"{time.perf_counter() - t0:.0f} s")
    cuts = sorted({0.001, 0.0015, thr, 0.002})
    print("| pairs | n | flow residual min / p5 / median / p95 / max | "
          + " | ".join(f"share >= {c:g}" for c in cuts) + " | landmark residual median |")
    print("|---|---|---|" + "---|" * len(cuts) + "---|")
    for name, rows in groups.items():
        if not rows:
            continue
        f = np.array([r[0] for r in rows])
        lm = np.array([r[1] for r in rows])
        q = np.percentile(f, [0, 5, 50, 95, 100])
        print(f"| {name} | {len(rows)} | " + " / ".join(f"{v:.4f}" for v in q) + " | "
              + " | ".join(f"{(f >= c).mean():.2f}" for c in cuts)
              + f" | {np.median(lm):.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
