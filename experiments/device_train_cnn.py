"""Train every CNN variant of the model card in one run (made for a lent GPU machine).

Reads a crop cache built by ``facelive.training.cnn.data.build_crop_cache`` (context 2.0,
224 px) and the EfficientNet-Lite0 ImageNet weights, then for each variant trains
  A  NUAA train (minus the held-back subjects) + Replay-Attack train   (the shipped recipe)
  B  NUAA only  -> Replay-Attack devel is cross-dataset
  C  Replay-Attack train only -> NUAA (held-back subjects, and all of it) is cross-dataset
and writes per-epoch history, final per-sample scores (``metrics.json``) and fp16 weights of the
A models (two per ``weights_*.pt`` file) to ``--out``. Example (what the model card ran):

    PYTHONPATH=src:.devdata/pylib python experiments/device_train_cnn.py \
        --cache .devdata/c20 --weights .devdata/lite0_fp16.pt --out $OUT --budget 330
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from facelive.training.cnn.data import load_crop_cache, nuaa_heldout_subjects
from facelive.training.cnn.train import TrainConfig, predict, recrop, train_model

VARIANTS: dict[str, dict] = {
    "aug1": {"aug": 1.0},
    "aug2": {"aug": 2.0},
    "aug0": {"aug": 0.0},
    "ctx14": {"aug": 1.0, "context": 1.4},
    "frozen": {"aug": 1.0, "freeze_backbone": True, "head_lr": 3e-3},
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", type=Path, required=True)
    ap.add_argument("--weights", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--save-epochs", default="4", help="extra epochs to snapshot for aug1/A")
    ap.add_argument("--budget", type=float, default=330.0, help="seconds; later variants skipped")
    ap.add_argument("--seeds", default="0", help="comma-separated training seeds")
    ap.add_argument("--runs", default="A,B,C", help="which of the A/B/C trainings to run")
    ap.add_argument("--no-weights", action="store_true", help="write metrics only")
    ap.add_argument("--smoke", action="store_true", help="tiny CPU check of the whole script")
    args = ap.parse_args(argv)
    t_start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    logf = open(args.out / "train_log.txt", "a")

    def log(msg: str) -> None:
        line = f"[{time.perf_counter() - t_start:7.1f}s] {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
        log(f"device {torch.cuda.get_device_name(0)} torch {torch.__version__}")
    manifest, crops = load_crop_cache(args.cache)
    recs = manifest["records"]
    log(f"loaded {len(recs)} crops")
    ds = np.array([r["dataset"] for r in recs])
    split = np.array([r["split"] for r in recs])
    subj = np.array([r["subject"] for r in recs])
    y = np.array([r["label"] for r in recs])
    held = np.isin(subj, nuaa_heldout_subjects()) & (ds == "nuaa")
    sets = {
        "nuaa_fit": (ds == "nuaa") & ~held,
        "nuaa_heldout": held,
        "nuaa_all": ds == "nuaa",
        "ra_train": (ds == "replay-attack") & (split == "train"),
        "ra_devel": (ds == "replay-attack") & (split == "devel"),
    }
    if args.smoke:
        rng = np.random.default_rng(0)
        for k, m in sets.items():
            idx = np.flatnonzero(m)
            keep = np.zeros_like(m)
            keep[rng.choice(idx, min(24, idx.size), replace=False)] = True
            sets[k] = keep
    runs = {"A": ("nuaa_fit", "ra_train"), "B": ("nuaa_fit",), "C": ("ra_train",)}
    evals = {"A": ("ra_devel", "nuaa_heldout"), "B": ("ra_devel", "nuaa_heldout"),
             "C": ("ra_devel", "nuaa_heldout", "nuaa_all")}
    results: dict = {"cache": {"context": manifest["context"], "size": manifest["size"],
                               "n": len(recs), "no_face": len(manifest["no_face"])},
                     "sets": {k: int(m.sum()) for k, m in sets.items()},
                     "index": {k: np.flatnonzero(m).tolist() for k, m in sets.items()
                               if k in ("ra_devel", "nuaa_heldout", "nuaa_all")},
                     "runs": {}}
    saved: list[tuple[str, dict]] = []
    names = [v for v in args.variants.split(",") if v]
    jobs = [(v, int(sd)) for sd in args.seeds.split(",") for v in names]
    for vname, seed in jobs:
        if time.perf_counter() - t_start > args.budget:
            log(f"budget reached: skipping {vname}/seed {seed} and later jobs")
            break
        over = dict(VARIANTS[vname])
        cfg = TrainConfig(epochs=args.epochs, seed=seed, **over)
        if args.smoke:
            cfg.epochs, cfg.batch_size, cfg.steps_per_epoch = 2, 8, 2
        view = recrop(crops, float(manifest["context"]), cfg.context, cfg.input_size)
        wanted = [r for r in args.runs.split(",") if r]
        for run in wanted if vname != "frozen" else ("A",):
            m = np.zeros(len(recs), bool)
            for k in runs[run]:
                m |= sets[k]
            idx = np.flatnonzero(m)
            strata = np.array([f"{ds[i]}-{y[i]}" for i in idx])
            ev = {k: (view[sets[k]], y[sets[k]]) for k in evals[run]}
            log(f"== {vname}/{run}: {len(idx)} training crops, {cfg.as_dict()}")
            snap_epochs = {int(e) for e in args.save_epochs.split(",") if e}
            snaps: dict[int, dict] = {}

            def on_epoch(net: torch.nn.Module, epoch: int, _v: str = vname, _r: str = run,
                         _s: dict = snaps, _e: set = snap_epochs) -> None:
                if _v == "aug1" and _r == "A" and epoch in _e:
                    _s[epoch] = {k: v.detach().half().cpu() for k, v in net.state_dict().items()}

            net, hist = train_model(view[idx], y[idx], strata, cfg, device=device,
                                    weights=str(args.weights) if args.weights else None,
                                    eval_sets=ev, log=log, on_epoch=on_epoch)
            scores = {k: np.round(predict(net, view[sets[k]], device), 5).tolist()
                      for k in evals[run]}
            key = f"{vname}/{run}" + (f"/s{seed}" if seed else "")
            results["runs"][key] = {"config": cfg.as_dict(), "history": hist,
                                                 "scores": scores}
            if run == "A" and not args.no_weights:
                sd = {k: v.detach().half().cpu() for k, v in net.state_dict().items()}
                saved.append((f"{vname}_e{cfg.epochs}", sd))
                for e, s in sorted(snaps.items()):
                    saved.append((f"{vname}_e{e}", s))
            (args.out / "metrics.json").write_text(json.dumps(results))
            for i in range(0, len(saved), 2):  # rewritten as models come, in case of a timeout
                pack = dict(saved[i:i + 2])
                torch.save(pack, args.out / f"weights_{i // 2}.pt")
    log(f"saved {[n for n, _ in saved]}")
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
