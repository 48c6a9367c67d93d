"""Are the passive tests thrown by the challenge's screen tint? (issue 14)

    python experiments/challenge_tint.py --data ../shared/data [--per-class 30] \
        [--strength 0.35] [--out runs/challenge_tint.json]

Takes one frame from each of ``--per-class`` live and ``--per-class`` attack videos of
Replay-Attack devel (evenly spaced over the sorted videos, the middle frame of each), scores it
with the default pipeline (quality + cnn + face3d, fused) as it is, and again tinted as if lit by
each challenge colour (:func:`facelive.challenge.simulate.tint_frame`: the screen's light added to
the face region in linear light, ``strength`` its share), and prints per colour: the mean and
largest change of the fused P(live), the share of decisions that flip, and the mean change of
each test. The verifier pools the passive tests over the neutral steps (white and dark) only;
the chromatic rows show what pooling over every frame would risk. Nothing per image is written
to the repository; ``--out`` keeps the per-frame scores under ``runs/``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def pick_frames(root: Path, per_class: int) -> list[tuple[Path, bool]]:
    out = []
    for live, pattern in ((True, "real/*"), (False, "attack/*/*")):
        videos = sorted(p for p in root.glob(pattern) if p.is_dir())
        if not videos:
            continue
        step = max(1, len(videos) // per_class)
        for v in videos[::step][:per_class]:
            frames = sorted(v.glob("*.jpg"))
            if frames:
                out.append((frames[len(frames) // 2], live))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--split", default="devel")
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--strength", type=float, default=0.35)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)

    import cv2
    import numpy as np

    from facelive.challenge.sequence import PALETTE, srgb_to_linear
    from facelive.challenge.simulate import face_mask, tint_frame
    from facelive.face.detection import FaceDetector
    from facelive.pipeline import Pipeline
    from facelive.runtime import tune_process

    tune_process(quiet=True, filter_stderr=False)
    root = Path(args.data) / "replay-attack" / args.split
    if not root.is_dir():
        print(f"no Replay-Attack {args.split} split at {root}", file=sys.stderr)
        return 2
    frames = pick_frames(root, args.per_class)
    det = FaceDetector()
    pipe = Pipeline(detector=det)
    colours = {name: np.array([srgb_to_linear(v) for v in rgb]) for name, rgb in PALETTE.items()}
    rows = []
    t0 = time.time()
    for path, live in frames:
        img = cv2.imread(str(path))
        box = det.detect(img)
        if box is None:
            continue
        base = pipe.check_frame(img)
        if base.score is None:
            continue
        mask = face_mask(img.shape, box)
        row = {"video": path.parent.name, "live": live, "base": base.score,
               "base_tests": {n: t.score for n, t in base.tests.items()},
               "decision": base.decision, "tinted": {}}
        for name, lin in colours.items():
            r = pipe.check_frame(tint_frame(img, mask, lin, args.strength))
            row["tinted"][name] = {"score": r.score, "decision": r.decision,
                                   "tests": {n: t.score for n, t in r.tests.items()}}
        rows.append(row)
    pipe.close()

    tests = list(rows[0]["base_tests"]) if rows else []
    print(f"{len(rows)} frames ({sum(r['live'] for r in rows)} live), strength "
          f"{args.strength}, threshold {pipe.threshold:.3f}, {time.time() - t0:.0f} s\n")
    print("| screen colour | mean dP(live) | mean abs dP | max abs dP | decisions flipped | "
          + " | ".join(f"mean d{t}" for t in tests) + " |")
    print("|---|---|---|---|---|" + "---|" * len(tests))
    for name in colours:
        d = np.array([(r["tinted"][name]["score"] if r["tinted"][name]["score"] is not None
                       else np.nan) - r["base"] for r in rows])
        flips = sum(r["tinted"][name]["decision"] != r["decision"] for r in rows)
        per_test = []
        for t in tests:
            vals = [r["tinted"][name]["tests"][t] - r["base_tests"][t] for r in rows
                    if r["tinted"][name]["tests"].get(t) is not None
                    and r["base_tests"].get(t) is not None]
            per_test.append(f"{np.mean(vals):+.3f}" if vals else "-")
        print(f"| {name} | {np.nanmean(d):+.3f} | {np.nanmean(np.abs(d)):.3f} | "
              f"{np.nanmax(np.abs(d)):.3f} | {flips} of {len(rows)} | " + " | ".join(per_test)
              + " |")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
