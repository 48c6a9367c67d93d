"""Does the fusion beat the best single test? Replay-Attack devel, three training regimes.

    python experiments/fusion_cross_domain.py --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack \\
        --cnn-runs runs/cnn/device/run1_metrics.json runs/cnn/device/run2_metrics.json \\
        --crop-manifest .devdata/c20/manifest.json --face3d-scores runs/face3d/devel_scores.npz \\
        --out runs/fusion-cross-domain

For each regime, the tests' scores on Replay-Attack devel come from models trained on:
- ``shipped models``: cnn and quality on NUAA + Replay-Attack train, face3d on Replay-Attack
  train (the shipped models, scored end to end);
- ``nuaa-only``: NUAA only: the tests never saw Replay-Attack (the deployment case: models
  trained elsewhere, only the fusion fitted on the target's own devel data);
- ``ra-only``: Replay-Attack train only (the database's own protocol: train on train, fit and
  tune on devel).
Every subset of the tests (single tests included) is fitted the same way: LDA on devel, measured
out-of-fold over 5 client-disjoint folds, operating point chosen on the out-of-fold scores
(:func:`facelive.training.fusion.fit_subsets`), so single tests and fusions compare fairly.
CNN scores of the non-shipped regimes are the per-crop scores saved by the GPU runs of
``experiments/device_train_cnn.py`` (variant aug1, seeds 0-2; see the CNN card); the fused rows are
computed once per CNN seed and reported as mean (min-max). Quality models are re-fitted here
from the cached features; 3D scores come from ``facelive train face3d --scores``.
Writes ``report.json``, ``report.md`` and ``eer.png`` under ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from facelive.datasets import open_dataset
from facelive.liveness.quality import QualityModel
from facelive.training.fusion import fit_subsets, score_tests
from facelive.training.quality import _valid, extract_features

TESTS = ("cnn", "face3d", "quality")


def quality_scores(train_feats: list[np.ndarray], train_samples: list, dev_feats: np.ndarray
                   ) -> np.ndarray:
    x = np.vstack(train_feats)
    y = np.array([s.is_live for s in train_samples])
    ok = _valid(x)
    model = QualityModel.fit(x[ok], y[ok])
    p = model.predict_proba(np.nan_to_num(dev_feats))
    return np.where(_valid(dev_feats), p, np.nan)


def cnn_scores(runs: list[Path], manifest: Path, paths: list[str], training: str
               ) -> list[np.ndarray]:
    """Per-seed RA devel scores of CNN variant aug1 trained on ``training`` (B: NUAA, C: RA),
    matched to the samples by their resolved image paths."""
    records = json.loads(manifest.read_text())["records"]
    pos = {p: i for i, p in enumerate(paths)}
    out = []
    for run in runs:
        d = json.loads(run.read_text())
        idx = d["index"]["ra_devel"]
        for name, r in d["runs"].items():
            parts = name.split("/")
            if parts[0] != "aug1" or parts[1] != training:
                continue
            s = np.full(len(paths), np.nan)
            for i, v in zip(idx, r["scores"]["ra_devel"], strict=True):
                s[pos[str(Path(records[i]["path"]).resolve())]] = v
            out.append(s)
    if not out:
        raise SystemExit(f"no aug1/{training} runs in {runs}")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nuaa", type=Path, required=True)
    ap.add_argument("--replay-attack", type=Path, required=True)
    ap.add_argument("--cnn-runs", type=Path, nargs="+", required=True)
    ap.add_argument("--crop-manifest", type=Path, required=True)
    ap.add_argument("--face3d-scores", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("runs/fusion-cross-domain"))
    args = ap.parse_args()

    nuaa = open_dataset("nuaa", args.nuaa, split="train").samples()
    ra_tr = open_dataset("replay-attack", args.replay_attack, split="train").samples()
    ra_dv = open_dataset("replay-attack", args.replay_attack, split="devel").samples()
    keys = [s.key for s in ra_dv]
    paths = [str(Path(s.path).resolve()) for s in ra_dv]
    f_n = extract_features(nuaa, name="nuaa-train")
    f_t = extract_features(ra_tr, name="ra-train")
    f_d = extract_features(ra_dv, name="ra-devel")
    f3 = np.load(args.face3d_scores, allow_pickle=False)
    if list(f3["keys"]) != keys:
        raise SystemExit("face3d scores do not match Replay-Attack devel")
    shipped = score_tests(ra_dv, list(TESTS), name="ra-devel")
    regimes = {
        "shipped models": [dict(shipped)],
        "nuaa-only (never saw RA)": [
            {"quality": quality_scores([f_n], nuaa, f_d), "cnn": c, "face3d": f3["nuaa_only"]}
            for c in cnn_scores(args.cnn_runs, args.crop_manifest, paths, "B")],
        "ra-only (RA train)": [
            {"quality": quality_scores([f_t], ra_tr, f_d), "cnn": c, "face3d": f3["ra_only"]}
            for c in cnn_scores(args.cnn_runs, args.crop_manifest, paths, "C")],
    }
    report: dict = {}
    lines = ["| training regime | tests (LDA on RA devel, out-of-fold) | EER % | ACER % at "
             "operating point | APCER max % | BPCER % | runs |", "|---|---|---|---|---|---|---|"]
    for regime, runs in regimes.items():
        per_run = [fit_subsets(sc, ra_dv, TESTS)[1] for sc in runs]
        report[regime] = per_run
        rows = []
        for sub in per_run[0]:
            vals = {k: np.array([100 * r[sub]["out_of_fold"][k] for r in per_run])
                    for k in ("EER", "ACER", "APCER_max", "BPCER")}
            rows.append((sub, vals))

        def cell(a: np.ndarray) -> str:
            return f"{a.mean():.1f}" if np.ptp(a) == 0 else \
                f"{a.mean():.1f} ({a.min():.1f}-{a.max():.1f})"

        best_single = min((v["EER"].mean(), s) for s, v in rows if "+" not in s)
        for sub, v in rows:
            mark = " **best single**" if sub == best_single[1] else ""
            lines.append(f"| {regime} | {sub}{mark} | {cell(v['EER'])} | {cell(v['ACER'])} | "
                         f"{cell(v['APCER_max'])} | {cell(v['BPCER'])} | {len(per_run)} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report.json").write_text(json.dumps(report, indent=1, default=float))
    table = "\n".join(lines)
    (args.out / "report.md").write_text(table + "\n")
    print(table)
    _plot(report, args.out / "eer.png")
    return 0


def _plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(report), figsize=(4.2 * len(report), 3.6), sharey=True)
    for ax, (regime, per_run) in zip(np.atleast_1d(axes), report.items(), strict=True):
        subs = list(per_run[0])
        eers = np.array([[100 * r[s]["out_of_fold"]["EER"] for s in subs] for r in per_run])
        colors = ["tab:blue" if "+" not in s else "tab:orange" for s in subs]
        ax.bar(range(len(subs)), eers.mean(0), color=colors,
               yerr=[eers.mean(0) - eers.min(0), eers.max(0) - eers.mean(0)], capsize=3)
        for i, v in enumerate(eers.mean(0)):
            ax.text(i, eers.max(0)[i] + 0.8, f"{v:.1f}", ha="center", fontsize=7)
        ax.set_xticks(range(len(subs)), subs, rotation=60, ha="right", fontsize=8)
        ax.set_title(regime, fontsize=9)
    np.atleast_1d(axes)[0].set_ylabel("out-of-fold EER on RA devel (%)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    raise SystemExit(main())
