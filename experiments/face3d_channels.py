"""Where does the 3D test's signal come from? Geometry vs shading of the reconstructed face.

    python experiments/face3d_channels.py --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack

Uses the cached face meshes of ``facelive train face3d`` (computed here if absent) and fits a
plain logistic regression (standardised inputs, C=0.1, balanced classes) on one kind of input at
a time: the 468 normalised vertices (x, y, z), their depth z alone, their image-plane x, y alone,
or the 468 grey levels under the vertices. Trained on Replay-Attack train; frame-level EER on
Replay-Attack devel (in-domain) and on all NUAA train images (cross-dataset). A linear probe, not
the VoxNet: it shows which input carries the signal, not the test's error rates.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from facelive.datasets import open_dataset
from facelive.evaluation import eer
from facelive.liveness.face3d.voxel import normalise_vertices
from facelive.training.face3d.data import extract_meshes

INPUTS = {
    "geometry (x, y, z)": lambda v, g: v.reshape(len(v), -1),
    "depth z only": lambda v, g: v[:, :, 2],
    "image-plane x, y only": lambda v, g: v[:, :, :2].reshape(len(v), -1),
    "shading (grey levels)": lambda v, g: g,
}


def _features(m: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ok = m["status"] == 0
    v = np.zeros(m["vertices"].shape)
    v[ok] = [normalise_vertices(x) for x in m["vertices"][ok]]
    return v, np.nan_to_num(m["intensity"]), ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nuaa", type=Path, required=True)
    ap.add_argument("--replay-attack", type=Path, required=True)
    args = ap.parse_args()
    sets = {
        "ra-train": open_dataset("replay-attack", args.replay_attack, split="train").samples(),
        "ra-devel": open_dataset("replay-attack", args.replay_attack, split="devel").samples(),
        "nuaa-train": open_dataset("nuaa", args.nuaa, split="train").samples(),
    }
    data = {}
    for name, samples in sets.items():
        v, g, ok = _features(extract_meshes(samples, name=name))
        data[name] = (v, g, ok, np.array([s.is_live for s in samples]))
    print("| input (linear probe, RA train) | EER RA devel | EER NUAA (cross-dataset) |")
    print("|---|---|---|")
    for label, fn in INPUTS.items():
        v, g, ok, y = data["ra-train"]
        clf = make_pipeline(StandardScaler(), LogisticRegression(
            C=0.1, max_iter=3000, class_weight="balanced"))
        clf.fit(fn(v, g)[ok], y[ok])
        cells = []
        for target in ("ra-devel", "nuaa-train"):
            tv, tg, tok, ty = data[target]
            p = clf.predict_proba(fn(tv, tg))[:, 1]
            cells.append(f"{100 * eer(p[tok & ty], p[tok & ~ty]):.1f}%")
        print(f"| {label} | {cells[0]} | {cells[1]} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
