"""Evaluate the CNN test end to end (detection + crop + ONNX) on Replay-Attack devel and NUAA.

    python experiments/eval_cnn.py --data ../shared/data [--model PATH.onnx] \
        [--out runs/cnn/eval.json]

Replay-Attack devel picks the EER threshold (the only set thresholds are tuned on); the NUAA
held-back subjects (and, for reference, the shipped threshold's) numbers use that threshold;
also the RA devel error rates by crop border padding. Writing that threshold into the model's
card (``cnn.json``) is ``facelive train cnn-threshold`` (:mod:`facelive.training.cnn.threshold`).
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
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import numpy as np
    from rich.progress import Progress

    from facelive.datasets import nuaa_subject_split
    from facelive.face.detection import FaceDetector
    from facelive.liveness.cnn import CNNTest
    from facelive.training.cnn.data import list_samples
    from facelive.training.cnn.evaluate import report, score_samples_e2e

    test = CNNTest(args.model, threads=args.threads)
    devel = list_samples(None, args.data / "replay-attack", ra_splits=("devel",))
    nuaa = list_samples(args.data / "nuaa", None,
                        nuaa_subjects=nuaa_subject_split(args.data / "nuaa")[1])
    results: dict = {"model": test.info(), "face_min_confidence": None}
    with FaceDetector() as det, Progress() as prog:
        results["face_min_confidence"] = det.min_confidence
        scored, padded = {}, {}
        for name, items in (("ra_devel", devel), ("nuaa_heldout", nuaa)):
            task = prog.add_task(name, total=len(items))
            padded[name] = []
            scored[name] = score_samples_e2e(items, test, det,
                                             lambda i, n, t=task: prog.update(t, completed=i),
                                             padded=padded[name])
    dev = report(devel, scored["ra_devel"])  # EER threshold of devel
    results["ra_devel"] = dev
    # does the network key on the border padding (more frequent for attacks)?
    pad = np.array(padded["ra_devel"])
    y = np.array([int(smp.is_live) for smp in devel])
    s = np.nan_to_num(scored["ra_devel"], nan=0.0)
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
    results["paths"] = {"ra_devel": [str(smp.path) for smp in devel],
                        "nuaa_heldout": [str(smp.path) for smp in nuaa]}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1))
    for name in ("ra_devel", "nuaa_heldout"):
        for level in ("frame", "video"):
            m = results[name][level]
            print(f"{name:13s} {level:5s} thr={results[name]['threshold']:.4f} "
                  f"APCER={m['APCER_max']:.4f} {m['APCER']} BPCER={m['BPCER']:.4f} "
                  f"ACER={m['ACER']:.4f} EER={m['EER']:.4f} n={m['n_live']}/{m['n_spoof']}")
        print(f"{name:13s} no face: {results[name]['no_face']} of {len(scored[name])} frames")
    print("RA devel errors by crop padding:", json.dumps(results["ra_devel_padding"]))
    print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
