"""Does the float32 quality test decide like the float64 reference on RA devel? (issue 13)

    OMP_NUM_THREADS=1 python experiments/quality_float32_check.py \
        [--replay-attack ../shared/data/replay-attack] [--limit N]

Scores every devel frame with the shipped quality model (``QualityModel.load()``, only the
measures it weighs, as the quality test does) twice: ``measures(dtype=np.float64)`` (the
reference) and the default float32 working precision. Prints the largest relative deviation of
each weighted measure, the largest absolute score difference, the frame whose reference score is
closest to the shipped threshold (and how far float32 moves it), and the number of frames whose
decision (live when score >= threshold) differs; that number must be 0 (``docs/iqm.md``'s
float32 rule). About 2 minutes on one core.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replay-attack", type=Path,
                    default=REPO.parent / "shared" / "data" / "replay-attack")
    ap.add_argument("--limit", type=int, default=None, help="only the first N frames")
    args = ap.parse_args(argv)

    import numpy as np

    from facelive.datasets.replay_attack import ReplayAttack
    from facelive.iqa import MEASURE_NAMES, measures
    from facelive.liveness.quality import QualityModel, canonical_frame

    model = QualityModel.load()
    names = model.weighted_measures
    samples = ReplayAttack(args.replay_attack, split="devel").samples()[: args.limit]
    feats = {np.float64: [], np.float32: []}
    for s in samples:
        img = canonical_frame(s.load())
        for dtype, rows in feats.items():
            m = measures(img, names, dtype=dtype)
            rows.append([m.get(n, 0.0) for n in MEASURE_NAMES])
    ref, fast = (np.array(feats[t]) for t in (np.float64, np.float32))
    p_ref, p_fast = model.predict_proba(ref), model.predict_proba(fast)
    t = model.threshold
    changed = int(np.count_nonzero((p_ref >= t) != (p_fast >= t)))
    print(f"Replay-Attack devel: {len(samples)} frames, {len(names)} weighted measures, "
          f"threshold {t:.6f}")
    for i, n in enumerate(MEASURE_NAMES):
        if n in names:
            rel = np.abs(fast[:, i] - ref[:, i]) / np.maximum(np.abs(ref[:, i]), 1e-300)
            print(f"  {n:5s} max rel. deviation {rel.max():.1e}")
    print(f"max |score difference| {np.max(np.abs(p_fast - p_ref)):.1e}")
    near = int(np.argmin(np.abs(p_ref - t)))
    print(f"closest reference score to the threshold: {abs(p_ref[near] - t):.1e} away "
          f"({samples[near].key}; float32 moves it by {abs(p_fast[near] - p_ref[near]):.1e})")
    print(f"changed decisions: {changed}")
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
