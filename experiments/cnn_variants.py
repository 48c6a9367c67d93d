"""Summarise the CNN variant runs of ``experiments/device_train_cnn.py`` (in-domain vs
cross-dataset).

    python experiments/cnn_variants.py RUN_DIR/metrics.json [MORE/metrics.json ...]

For each variant and seed: A (NUAA + Replay-Attack) frame EER on RA devel and on the held-back NUAA
subjects; B (NUAA only) on RA devel; C (RA only) on the held-back NUAA subjects and on all NUAA.
Cross-dataset ACER uses the threshold at the EER point of the training domain's own devel set
(B: held-back NUAA subjects; C: RA devel), never the target's. Prints a markdown table with the
mean (and min-max) over seeds.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from facelive.evaluation.metrics import compute_metrics, eer, eer_threshold


def _labels(index: dict, manifest_labels: dict[int, int], name: str) -> np.ndarray:
    return np.array([manifest_labels[i] for i in index[name]])


def _eer(scores: np.ndarray, labels: np.ndarray) -> float:
    return eer(scores[labels == 1], scores[labels == 0])


def _eer_thr(scores: np.ndarray, labels: np.ndarray) -> float:
    return eer_threshold(scores[labels == 1], scores[labels == 0])


def _acer(scores: np.ndarray, labels: np.ndarray, types: list[str], thr: float) -> float:
    lab = ["live" if v == 1 else "spoof" for v in labels]
    return compute_metrics(scores.tolist(), lab, types, thr)["ACER"]


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    cache = Path(".devdata/c20/manifest.json")
    recs = json.loads(cache.read_text())["records"]
    lab = {i: r["label"] for i, r in enumerate(recs)}
    typ = {i: r["attack_type"] for i, r in enumerate(recs)}
    rows: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for f in argv:
        res = json.loads(Path(f).read_text())
        idx = res["index"]
        y = {k: _labels(idx, lab, k) for k in idx}
        t = {k: [typ[i] for i in idx[k]] for k in idx}
        for key, run in res["runs"].items():
            parts = key.split("/")
            variant, which = parts[0], parts[1]
            sc = {k: np.asarray(v) for k, v in run["scores"].items()}
            row = rows[(variant, which)]
            if which == "A":
                row["A: RA devel EER"].append(_eer(sc["ra_devel"], y["ra_devel"]))
                row["A: NUAA held-out EER"].append(_eer(sc["nuaa_heldout"], y["nuaa_heldout"]))
            elif which == "B":
                thr = _eer_thr(sc["nuaa_heldout"], y["nuaa_heldout"])
                row["B: NUAA->RA devel EER"].append(_eer(sc["ra_devel"], y["ra_devel"]))
                row["B: NUAA->RA devel ACER"].append(
                    _acer(sc["ra_devel"], y["ra_devel"], t["ra_devel"], thr))
            elif which == "C":
                thr = _eer_thr(sc["ra_devel"], y["ra_devel"])
                row["C: RA->NUAA held-out EER"].append(
                    _eer(sc["nuaa_heldout"], y["nuaa_heldout"]))
                row["C: RA->NUAA all EER"].append(_eer(sc["nuaa_all"], y["nuaa_all"]))
                row["C: RA->NUAA all ACER"].append(
                    _acer(sc["nuaa_all"], y["nuaa_all"], t["nuaa_all"], thr))
    variants = sorted({v for v, _ in rows})
    cols = sorted({c for r in rows.values() for c in r})
    print("| variant | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for v in variants:
        cells = []
        for c in cols:
            vals = next((rows[(v, w)][c] for w in "ABC" if c in rows.get((v, w), {})), [])
            if not vals:
                cells.append("-")
            elif len(vals) == 1:
                cells.append(f"{100 * vals[0]:.1f}")
            else:
                cells.append(f"{100 * np.mean(vals):.1f} ({100 * min(vals):.1f}-"
                             f"{100 * max(vals):.1f}, n={len(vals)})")
        print(f"| {v} | " + " | ".join(cells) + " |")
    print("(percent; frame level on cached crops; mean (min-max over seeds))")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
