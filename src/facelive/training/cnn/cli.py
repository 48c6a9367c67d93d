"""``facelive train cnn``: reproduce the shipped CNN model (needs the ``[train]`` extra).

Steps: list NUAA (official train list, every 2nd frame of each capture) and Replay-Attack train +
devel; detect and crop every image once into a crop cache (context 2.0, 224 px, JPEG q85, the same
cache the shipped model was trained from); fine-tune on NUAA (minus the held-back subjects) +
Replay-Attack train; export ONNX; score Replay-Attack devel end to end and set the threshold at its
EER point. Writes ``cnn.onnx``, ``cnn.json``, ``SHA256SUMS`` and ``report.json`` to ``--out``.
Torch is imported inside the command only.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "cnn", help="the 2D CNN test (EfficientNet-Lite0, needs pip install .[train])",
        description="Fine-tune the CNN liveness network and export it to ONNX.")
    p.add_argument("--nuaa", required=True, type=Path, help="NUAA database root")
    p.add_argument("--replay-attack", required=True, type=Path, help="Replay-Attack root")
    p.add_argument("--out", required=True, type=Path, help="folder for cnn.onnx / cnn.json")
    p.add_argument("--cache", type=Path, default=Path("runs/cnn/crops"),
                   help="face-crop cache folder (research-only images: keep it out of git)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--aug", type=float, default=1.0, help="augmentation strength")
    p.add_argument("--context", type=float, default=2.0, help="crop context (<= 2.0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="limit each epoch (quick checks only; default: one pass)")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError:
        print("facelive train cnn needs the training extra: pip install '.[train]'")
        return 2
    import numpy as np
    from rich.progress import Progress

    from facelive.datasets import nuaa_subject_split
    from facelive.errors import FaceliveError
    from facelive.face.detection import FaceDetector
    from facelive.liveness.cnn import CNNTest
    from facelive.training.cnn.data import (
        build_crop_cache,
        dataset_of,
        list_samples,
        load_crop_cache,
        subsample_nuaa,
    )
    from facelive.training.cnn.evaluate import report, score_samples_e2e
    from facelive.training.cnn.export import write_model
    from facelive.training.cnn.train import TrainConfig, recrop, train_model

    if args.context > 2.0 or args.context <= 0:
        raise FaceliveError("--context must be in (0, 2.0]", code="usage")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
        else args.device
    items = subsample_nuaa(list_samples(args.nuaa, args.replay_attack), 2)
    heldout = nuaa_subject_split(args.nuaa)[1]  # 0003, 0006, 0009
    if not (args.cache / "manifest.json").is_file():
        with Progress() as prog:
            task = prog.add_task("detect + crop", total=len(items))
            build_crop_cache(items, args.cache, context=2.0, size=224, quality=85,
                             progress=lambda i, n: prog.update(task, completed=i))
    manifest, crops = load_crop_cache(args.cache)
    recs = manifest["records"]
    ds = np.array([r["dataset"] for r in recs])
    split = np.array([r["split"] for r in recs])
    subj = np.array([r["subject"] for r in recs])
    y = np.array([r["label"] for r in recs])
    fit = ((ds == "nuaa") & ~np.isin(subj, heldout)) | (
        (ds == "replay-attack") & (split == "train"))
    dev = (ds == "replay-attack") & (split == "devel")
    cfg = TrainConfig(epochs=args.epochs, aug=args.aug, context=args.context, seed=args.seed,
                      steps_per_epoch=args.steps_per_epoch)
    view = recrop(crops, float(manifest["context"]), cfg.context, cfg.input_size)
    idx = np.flatnonzero(fit)
    strata = np.array([f"{ds[i]}-{y[i]}" for i in idx])
    print(f"training on {len(idx)} crops ({device}): {cfg.as_dict()}")
    net, history = train_model(view[idx], y[idx], strata, cfg, device=device,
                               eval_sets={"ra_devel": (view[dev], y[dev])})
    net = net.cpu().float().eval()
    args.out.mkdir(parents=True, exist_ok=True)
    write_model(net, context=cfg.context, image_size=cfg.input_size, version=args.version,
                folder=args.out, extra={"train_config": cfg.as_dict()})
    test = CNNTest(args.out / "cnn.onnx")
    devel = [s for s in items if dataset_of(s) == "replay-attack" and s.split == "devel"]
    with FaceDetector() as det, Progress() as prog:
        task = prog.add_task("devel (end to end)", total=len(devel))
        scores = score_samples_e2e(devel, test, det,
                                   lambda i, n: prog.update(task, completed=i))
    rep = report(devel, scores)
    write_model(net, context=cfg.context, image_size=cfg.input_size, version=args.version,
                folder=args.out, threshold=round(rep["threshold"], 6),
                extra={"train_config": cfg.as_dict()})
    (args.out / "report.json").write_text(json.dumps({"history": history, "ra_devel": rep},
                                                     indent=1))
    f = rep["frame"]
    print(f"devel: threshold {rep['threshold']:.4f} APCER {f['APCER_max']:.4f} "
          f"BPCER {f['BPCER']:.4f} ACER {f['ACER']:.4f} EER {f['EER']:.4f} "
          f"no face {rep['no_face']}")
    print(f"written {args.out / 'cnn.onnx'}, cnn.json, report.json")
    return 0
