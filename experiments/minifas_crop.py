"""Which face crop suits the CelebA-Spoof MiniFAS test on facelive's own face boxes?

The network was trained on 1.5x squares around another detector's boxes; facelive's boxes
(MediaPipe BlazeFace) may be tighter or looser. Every protocol frame is cropped around the
pipeline detector's box (those stored in the protocol crop cache, ``runs/cnn/crops-all``) at
several context factors, with and without averaging the live logit over a horizontal flip, and
scored by the shipped graph. Printed: EER / AUC on Replay-Attack devel (where a crop would be
chosen) and, for information only, on Replay-Attack train and the NUAA training list.

    python experiments/minifas_crop.py --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack --context 1.5 1.8 2.1 2.4
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from facelive.evaluation.metrics import auc, eer
from facelive.evaluation.protocols import PARTS, Universe
from facelive.face.detection import centred_square_crop
from facelive.liveness.minifas import MiniFASTest
from facelive.types import FaceBox


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nuaa", required=True)
    ap.add_argument("--replay-attack", required=True)
    ap.add_argument("--crop-cache", type=Path, default=Path("runs/cnn/crops-all"))
    ap.add_argument("--context", type=float, nargs="+", default=[1.5, 1.8, 2.1, 2.4])
    args = ap.parse_args()
    universe = Universe.load(args.nuaa, args.replay_attack)
    from facelive.training.cnn.protocol import ensure_crop_cache

    ensure_crop_cache(universe, args.crop_cache)
    manifest = json.loads((args.crop_cache / "manifest.json").read_text())
    boxes = {r["key"]: r["box"] for r in manifest["records"]}
    test = MiniFASTest()
    n = len(universe)
    plain = {c: np.full(n, np.nan) for c in args.context}
    flipped = {c: np.full(n, np.nan) for c in args.context}
    for i, s in enumerate(universe.samples):
        box = boxes.get(s.key)
        if box is None:
            continue
        image = s.load()
        crops = np.stack([centred_square_crop(image, FaceBox(*box, 1.0), c, test.size)
                          for c in args.context])
        logits = test.live_logits(np.concatenate([crops, crops[:, :, ::-1]]))
        for j, c in enumerate(args.context):
            plain[c][i] = logits[j]
            flipped[c][i] = (logits[j] + logits[j + len(args.context)]) / 2
        if i % 1000 == 0:
            print(f"{i}/{n}", flush=True)
    y = universe.is_live
    print("\n| context | flip | " + " | ".join(f"{p} EER / AUC" for p in PARTS) + " |")
    print("|---|---|" + "---|" * len(PARTS))
    for c in args.context:
        for name, v in (("no", plain[c]), ("yes", flipped[c])):
            cells = []
            for p in PARTS:
                m = (universe.part == p) & np.isfinite(v)
                cells.append(f"{100 * eer(v[m & y], v[m & ~y]):.1f}% / "
                             f"{auc(v[m & y], v[m & ~y]):.3f}")
            print(f"| {c:g} | {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
