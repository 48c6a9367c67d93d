"""Evaluate the CNN test end to end (detection + crop + ONNX) on Replay-Attack devel and NUAA.

    PYTHONPATH=src python scripts/eval_cnn.py --data ../shared/data [--model PATH.onnx] \
        [--out runs/cnn/eval.json] [--set-threshold]

Replay-Attack devel picks the EER threshold (the only set thresholds are tuned on); the NUAA
held-back subjects (and, for reference, the shipped threshold's) numbers use that threshold.
``--set-threshold`` writes the devel EER threshold into the model's card (``cnn.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Evaluate the CNN liveness test end to end.")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--model", type=Path, default=None, help="ONNX file (default: shipped)")
    ap.add_argument("--out", type=Path, default=Path("runs/cnn/eval.json"))
    ap.add_argument("--set-threshold", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import numpy as np
    from rich.progress import Progress

    from facelive import modelstore
    from facelive.cnn import CARD_FILE, CNNTest
    from facelive.face import FaceDetector
    from facelive.training.data import list_items, nuaa_heldout_subjects
    from facelive.training.evaluate_cnn import report, score_items

    test = CNNTest(args.model, threads=args.threads)
    devel = list_items(None, args.data / "replay-attack", ra_splits=("devel",))
    nuaa = [it for it in list_items(args.data / "nuaa", None)
            if it.subject in nuaa_heldout_subjects()]
    results: dict = {"model": test.info()}
    with FaceDetector() as det, Progress() as prog:
        scored, padded = {}, {}
        for name, items in (("ra_devel", devel), ("nuaa_heldout", nuaa)):
            task = prog.add_task(name, total=len(items))
            padded[name] = []
            scored[name] = score_items(items, test, det,
                                       lambda i, n, t=task: prog.update(t, completed=i),
                                       padded=padded[name])
    dev = report(devel, scored["ra_devel"])  # EER threshold of devel
    results["ra_devel"] = dev
    # does the network key on the border padding (more frequent for attacks)?
    pad = np.array(padded["ra_devel"])
    y = np.array([it.label for it in devel])
    s = np.nan_to_num(scored["ra_devel"], nan=-1.0)
    acc = s >= dev["threshold"]
    results["ra_devel_padding"] = {
        f"{kind}_{'padded' if p else 'unpadded'}": {
            "n": int(((y == lab) & (pad == p)).sum()),
            "error_rate": float(np.mean((acc != bool(lab))[(y == lab) & (pad == p)]))
            if ((y == lab) & (pad == p)).any() else None,
        }
        for kind, lab in (("live", 1), ("attack", 0)) for p in (True, False)
    }
    results["nuaa_heldout"] = report(nuaa, scored["nuaa_heldout"], dev["threshold"])
    results["shipped_threshold"] = {
        "ra_devel": report(devel, scored["ra_devel"], test.threshold),
        "nuaa_heldout": report(nuaa, scored["nuaa_heldout"], test.threshold),
    }
    results["scores"] = {k: [None if np.isnan(v) else round(float(v), 6) for v in s]
                         for k, s in scored.items()}
    results["paths"] = {"ra_devel": [it.path for it in devel],
                        "nuaa_heldout": [it.path for it in nuaa]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    if args.set_threshold:
        folder = args.model.parent if args.model else None
        name = args.model.with_suffix(".json").name if args.model else CARD_FILE
        card = modelstore.read_json(name, folder)
        card["threshold"] = round(dev["threshold"], 6)
        modelstore.write_json(name, card, folder)
    for name in ("ra_devel", "nuaa_heldout"):
        for level in ("frame", "video"):
            m = results[name][level]
            print(f"{name:13s} {level:5s} thr={m['threshold']:.4f} APCER={m['apcer']:.4f} "
                  f"{m['apcer_per_type']} BPCER={m['bpcer']:.4f} ACER={m['acer']:.4f} "
                  f"EER={m.get('eer', float('nan')):.4f}")
    print("RA devel errors by crop padding:", json.dumps(results["ra_devel_padding"]))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
