"""Does a clip's landmark motion tell a real head from a flat print or screen? (issue 14)

    python experiments/challenge_planarity.py --data ../shared/data [--split devel] \
        [--min-motion 0.05] [--out runs/challenge_planarity.json]

For every Replay-Attack video of the split (5 frames per video in the shared data, about 3 s
apart), the face is detected and meshed in each frame (the verifier's own
:class:`~facelive.face.detection.FaceDetector` and :class:`~facelive.face.mesh.FaceMesher`), and
for each of the 10 frame pairs :func:`facelive.challenge.verify.homography_residual` fits a
homography between the two landmark sets: a flat print or screen moves as a plane, so its residual
is only the landmarks' noise, while a real head's 3D motion leaves more. The video's statistic is
the median residual over the pairs whose landmarks moved at least ``--min-motion`` (RMS, in
inter-ocular distances; the verifier's ``planar_min_motion``), also without that filter. Printed:
AUC and EER of live vs attack (all attacks, fixed vs hand support, per attack type).

It also measures the verifier's landmark-shape continuity
(:func:`facelive.challenge.verify.shape_distance`): within a video (same person, frames 3 s
apart: more change than consecutive frames of a clip) vs between videos of different clients
(a swapped face), to place ``max_shape_jump``. Nothing per image is written to the repository;
``--out`` keeps the per-video statistics under ``runs/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def auc_eer(pos: list[float], neg: list[float]) -> tuple[float, float]:
    """AUC of ``pos`` scoring above ``neg`` (ties count half) and the equal error rate."""
    import numpy as np

    p, n = np.asarray(pos, float), np.asarray(neg, float)
    if p.size == 0 or n.size == 0:
        return float("nan"), float("nan")
    auc = float(((p[:, None] > n[None, :]).sum() + 0.5 * (p[:, None] == n[None, :]).sum())
                / (p.size * n.size))
    best = 1.0
    for t in np.unique(np.concatenate([p, n])):
        frr = float((p < t).mean())
        far = float((n >= t).mean())
        best = min(best, max(frr, far))
    return auc, best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--split", default="devel")
    ap.add_argument("--min-motion", type=float, default=0.05)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import cv2
    import numpy as np

    from facelive.challenge.verify import homography_residual, shape_distance
    from facelive.face.detection import FaceDetector
    from facelive.face.mesh import FaceMesher, MeshNotFound

    root = Path(args.data) / "replay-attack" / args.split
    if not root.is_dir():
        print(f"no Replay-Attack {args.split} split at {root}", file=sys.stderr)
        return 2
    videos = sorted(p for p in root.glob("real/*") if p.is_dir())
    videos += sorted(p for p in root.glob("attack/*/*") if p.is_dir())
    det, mesher = FaceDetector(), FaceMesher()
    rows, shapes = [], {}
    t0 = time.time()
    for v in videos:
        marks = []
        for f in sorted(v.glob("*.jpg")):
            img = cv2.imread(str(f))
            box = det.detect(img) if img is not None else None
            if box is None:
                continue
            try:
                verts, _ = mesher.reconstruct(img, box)
            except MeshNotFound:
                continue
            marks.append(mesher.to_image(verts, img.shape, box))
        res_all, res_moving, motion = [], [], []
        for a in range(len(marks)):
            for b in range(a + 1, len(marks)):
                r, m = homography_residual(marks[a], marks[b])
                if np.isfinite(r):
                    res_all.append(r)
                    motion.append(m)
                    if m >= args.min_motion:
                        res_moving.append(r)
        within = [shape_distance(marks[a], marks[a + 1]) for a in range(len(marks) - 1)]
        rel = v.relative_to(root).as_posix()
        live = rel.startswith("real/")
        client = next(p for p in v.name.split("_") if p.startswith("client"))
        kind = "live" if live else v.name.split("_")[1]
        support = "live" if live else rel.split("/")[1]
        rows.append({
            "video": rel, "live": live, "kind": kind, "support": support, "client": client,
            "frames": len(marks),
            "residual_all": float(np.median(res_all)) if res_all else None,
            "residual_moving": float(np.median(res_moving)) if res_moving else None,
            "pairs_moving": len(res_moving),
            "motion": float(np.median(motion)) if motion else None,
            "shape_within": float(np.max(within)) if within else None,
        })
        if marks:
            shapes[rel] = (client, marks[0])
    det.close()
    mesher.close()

    def report(key: str) -> None:
        live = [r[key] for r in rows if r["live"] and r[key] is not None]
        print(f"\n### statistic: {key}  (live videos with a value: {len(live)} of "
              f"{sum(r['live'] for r in rows)})\n")
        print("| attacks | videos with a value | live median | attack median | AUC | EER |")
        print("|---|---|---|---|---|---|")
        groups = [("all", lambda r: True), ("fixed", lambda r: r["support"] == "fixed"),
                  ("hand", lambda r: r["support"] == "hand")]
        groups += [(k, lambda r, k=k: r["kind"] == k) for k in ("print", "mobile", "highdef")]
        for name, sel in groups:
            att = [r[key] for r in rows if not r["live"] and sel(r) and r[key] is not None]
            tot = sum(1 for r in rows if not r["live"] and sel(r))
            auc, eer = auc_eer(live, att)
            print(f"| {name} | {len(att)} of {tot} | {np.median(live):.4f} | "
                  f"{np.median(att) if att else float('nan'):.4f} | {auc:.3f} | {eer:.3f} |")

    report("residual_all")
    report("residual_moving")
    mot_l = [r["motion"] for r in rows if r["live"] and r["motion"] is not None]
    mot_a = [r["motion"] for r in rows if not r["live"] and r["motion"] is not None]
    print(f"\nmedian landmark motion (RMS / IOD): live {np.median(mot_l):.4f}, "
          f"attack {np.median(mot_a):.4f}")

    within = np.array([r["shape_within"] for r in rows if r["live"]
                       and r["shape_within"] is not None])
    keys = sorted(shapes)
    rng = np.random.default_rng(0)
    across = []
    for _ in range(2000):
        a, b = rng.choice(len(keys), 2, replace=False)
        (ca, ma), (cb, mb) = shapes[keys[a]], shapes[keys[b]]
        if ca != cb:
            across.append(shape_distance(ma, mb))
    across_arr = np.array(across)
    print("\n### landmark shape change (Procrustes RMS / IOD)\n")
    print(f"same live video, largest of 4 consecutive pairs ~3 s apart: median "
          f"{np.median(within):.4f}, p95 {np.percentile(within, 95):.4f}, max {within.max():.4f}")
    print(f"different clients (random pairs of videos): p1 {np.percentile(across_arr, 1):.4f}, "
          f"p5 {np.percentile(across_arr, 5):.4f}, median {np.median(across_arr):.4f}")
    print(f"\n{len(rows)} videos in {time.time() - t0:.0f} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"rows": rows, "across": across}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
