"""``facelive train cnn`` and ``facelive train cnn-threshold``.

``cnn`` reproduces the shipped CNN model (needs the ``[train]`` extra). Steps: list NUAA (official
train list, every 2nd frame of each capture) and Replay-Attack train + devel; detect and crop
every image once into a crop cache (context 2.0, 224 px, JPEG q85, the same cache the shipped
model was trained from); fine-tune on NUAA (minus the held-back subjects) + Replay-Attack train;
export ONNX; score Replay-Attack devel end to end and set the threshold at its EER point
(:mod:`.threshold`). Writes ``cnn.onnx``, ``cnn.json``, ``SHA256SUMS`` and ``report.json`` to
``--out``. Torch is imported inside the command only.

``cnn-int8`` quantises the float model to INT8 with ONNX Runtime (:mod:`.quantize`; no torch)
and makes it the folder's ``cnn.onnx``, keeping the float one as ``cnn_fp32.onnx``.

``cnn-threshold`` is the last step alone, for an existing model (the shipped one by default, or
``--model PATH.onnx``): no torch needed. It rewrites the card in the model's folder, or writes
model and card to ``--out DIR``. The shipped ``cnn.json`` threshold came from this step.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "cnn", help="the 2D CNN test (EfficientNet-Lite0, needs pip install .[train])",
        description="Fine-tune the CNN liveness network and export it to ONNX.")
    p.add_argument("--nuaa", required=True, type=Path, help="NUAA database root")
    p.add_argument("--replay-attack", required=True, type=Path, help="Replay-Attack root")
    p.add_argument("--out", required=True, type=Path, help="folder for cnn.onnx / cnn.json")
    p.add_argument("--cache", type=Path, default=None,
                   help="face-crop cache folder (research-only images: keep it out of git; "
                        "default runs/cnn/crops, with --recipe runs/cnn/crops-all)")
    p.add_argument("--recipe", default=None,
                   help="a CPU recipe of the generalisation protocols (cpu, cpu-rescale, "
                        "cpu-synth, cpu-rescale-synth, cpu-depth, cpu-depth-synth, cpu-gentle, "
                        "cpu-frozen: 128 px input, 4 epochs), trained on every NUAA frame plus "
                        "Replay-Attack train; default: the 224 px GPU recipe (every 2nd NUAA "
                        "frame); NUAA subjects 0003/0006/0009 are held back either way (the "
                        "fusion is fitted on them)")
    p.add_argument("--epochs", type=int, default=None, help="default 8 (or the recipe's)")
    p.add_argument("--aug", type=float, default=1.0, help="augmentation strength")
    p.add_argument("--context", type=float, default=2.0, help="crop context (<= 2.0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--version", default="1.0.0")
    p.add_argument("--steps-per-epoch", type=int, default=None,
                   help="limit each epoch (quick checks only; default: one pass)")
    p.add_argument("--report", type=Path, default=None,
                   help="report JSON (default: OUT/report.json)")
    p.add_argument("--card", type=Path, default=None,
                   help="also write a model card section (Markdown) here")
    p.set_defaults(func=run)

    t = subparsers.add_parser(
        "cnn-threshold", help="the CNN test's threshold only (RA devel EER point, no torch)",
        description="Score Replay-Attack devel end to end with a CNN model and write the EER "
                    "threshold into its card (cnn.json).")
    t.add_argument("--replay-attack", required=True, type=Path, help="Replay-Attack root")
    t.add_argument("--model", type=Path, default=None,
                   help="ONNX file with its .json card beside it (default: the shipped model)")
    t.add_argument("--out", type=Path, default=None,
                   help="write model + card here (default: rewrite the card in place)")
    t.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads")
    t.add_argument("--report", type=Path, default=Path("runs/cnn/threshold.json"))
    t.add_argument("--card", type=Path, default=None,
                   help="also write a model card section (Markdown) here")
    t.set_defaults(func=run_threshold)

    q = subparsers.add_parser(
        "cnn-int8", help="INT8 quantisation of the CNN (ONNX Runtime; needs onnx, not torch)",
        description="Quantise the float CNN statically (calibration: Replay-Attack devel face "
                    "crops computed at run time), set its threshold on RA devel, compare it with "
                    "the float model; writes cnn.onnx/cnn.json (int8) and keeps the float files "
                    "as cnn_fp32.onnx/cnn_fp32.json.")
    q.add_argument("--replay-attack", required=True, type=Path, help="Replay-Attack root")
    q.add_argument("--nuaa", type=Path, default=None,
                   help="NUAA root: also compare on the held-back subjects 0003/0006/0009")
    q.add_argument("--model", type=Path, default=None,
                   help="float ONNX file with its .json card beside it (default: the float "
                        "model the runtime would load)")
    q.add_argument("--out", type=Path, default=None,
                   help="output folder (default: the float model's folder)")
    q.add_argument("--step", type=int, default=9,
                   help="calibrate on every STEP-th RA devel frame (default 9: 200 crops)")
    q.add_argument("--report", type=Path, default=Path("runs/cnn/int8.json"))
    q.add_argument("--card", type=Path, default=None,
                   help="also write a model card section (Markdown) here")
    q.set_defaults(func=run_int8)
    return p


def run_int8(args: argparse.Namespace) -> int:
    try:
        import onnx  # noqa: F401  (onnxruntime.quantization needs it)
    except ImportError:
        print("facelive train cnn-int8 needs onnx (in the training extra): "
              "pip install '.[train]'")
        return 2
    from facelive.training.cnn.quantize import card_markdown, train_cnn_int8
    from facelive.training.report import finish, metric_summary

    rep = train_cnn_int8(args.replay_attack, model=args.model, out_dir=args.out,
                         step=args.step, nuaa_root=args.nuaa)
    summary = {"threshold": rep["threshold"], "float_threshold": rep["float_threshold"],
               "ms_per_crop": {k: round(v["median"], 2) for k, v in rep["ms_per_crop"].items()},
               "decisions_changed_ra_devel": rep["decisions_changed_ra_devel"]}
    for name in ("ra_devel", "nuaa_heldout"):
        if name in rep:
            summary[name] = {k: metric_summary(v["frame"]) for k, v in rep[name].items()}
    print(f"written {rep['onnx']} (int8), {rep['float_onnx']} (fp32)")
    return finish(rep, report_path=args.report, template=card_markdown, card_path=args.card,
                  summary=summary)


def _summary(rep: dict) -> dict:
    from facelive.training.report import metric_summary

    return {"threshold": rep["threshold"], "previous_threshold": rep.get("previous_threshold"),
            "ra_devel": metric_summary(rep["ra_devel"]["frame"]),
            "no_face": rep["ra_devel"]["no_face"]}


def run_threshold(args: argparse.Namespace) -> int:
    from facelive.training.cnn.threshold import card_markdown, train_cnn_threshold
    from facelive.training.report import finish

    rep = train_cnn_threshold(args.replay_attack, model=args.model, out_dir=args.out,
                              threads=args.threads)
    print(f"written {rep['card']}")
    return finish(rep, report_path=args.report, template=card_markdown, card_path=args.card,
                  summary=_summary(rep))


def run(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError:
        print("facelive train cnn needs the training extra: pip install '.[train]'")
        return 2
    import dataclasses

    import numpy as np
    from rich.progress import Progress

    from facelive.datasets import nuaa_subject_split
    from facelive.errors import FaceliveError
    from facelive.training.cnn.data import (
        build_crop_cache,
        dataset_of,
        list_samples,
        load_crop_cache,
        subsample_nuaa,
    )
    from facelive.training.cnn.export import write_model
    from facelive.training.cnn.threshold import card_markdown, train_cnn_threshold
    from facelive.training.cnn.train import TrainConfig, recrop, train_model
    from facelive.training.report import finish

    if args.context > 2.0 or args.context <= 0:
        raise FaceliveError("--context must be in (0, 2.0]", code="usage")
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" \
        else args.device
    if args.recipe is not None:
        from facelive.training.cnn.protocol import RECIPES

        if args.recipe not in RECIPES:
            raise FaceliveError(f"--recipe takes {', '.join(RECIPES)}", code="usage")
        cfg = dataclasses.replace(RECIPES[args.recipe], context=args.context, seed=args.seed,
                                  epochs=args.epochs or RECIPES[args.recipe].epochs,
                                  steps_per_epoch=args.steps_per_epoch)
        items = list_samples(args.nuaa, args.replay_attack)
        cache = args.cache or Path("runs/cnn/crops-all")
    else:
        cfg = TrainConfig(epochs=args.epochs or 8, aug=args.aug, context=args.context,
                          seed=args.seed, steps_per_epoch=args.steps_per_epoch)
        items = subsample_nuaa(list_samples(args.nuaa, args.replay_attack), 2)
        cache = args.cache or Path("runs/cnn/crops")
    # NUAA 0003, 0006, 0009 are held back: the fusion is fitted on them (and RA devel)
    heldout = nuaa_subject_split(args.nuaa)[1]
    if not (cache / "manifest.json").is_file():
        with Progress() as prog:
            task = prog.add_task("detect + crop", total=len(items))
            build_crop_cache(items, cache, context=2.0, size=224, quality=85,
                             progress=lambda i, n: prog.update(task, completed=i))
    manifest, crops = load_crop_cache(cache)
    recs = manifest["records"]
    ds = np.array([r["dataset"] for r in recs])
    split = np.array([r["split"] for r in recs])
    subj = np.array([r["subject"] for r in recs])
    y = np.array([r["label"] for r in recs])
    fit = ((ds == "nuaa") & ~np.isin(subj, heldout)) | (
        (ds == "replay-attack") & (split == "train"))
    dev = (ds == "replay-attack") & (split == "devel")
    maps = valid = None
    if cfg.depth > 0:
        from facelive.training.cnn.protocol import crop_cache_depth

        maps, valid = crop_cache_depth(manifest, crops)
    view = recrop(crops, float(manifest["context"]), cfg.context, cfg.input_size)
    idx = np.flatnonzero(fit)
    nuaa_part = ("every frame" if args.recipe else "every 2nd frame") + (
        ", subjects 0003/0006/0009 held back")
    trained_on = f"NUAA train list ({nuaa_part}) + Replay-Attack train: {len(idx)} crops"
    strata = np.array([f"{ds[i]}-{y[i]}" for i in idx])
    print(f"training on {len(idx)} crops ({device}): {cfg.as_dict()}")
    net, history = train_model(view[idx], y[idx], strata, cfg, device=device,
                               eval_sets={"ra_devel": (view[dev], y[dev])},
                               depth=None if maps is None else maps[idx],
                               depth_valid=None if valid is None else valid[idx])
    net = net.cpu().float().eval()
    args.out.mkdir(parents=True, exist_ok=True)
    write_model(net, context=cfg.context, image_size=cfg.input_size, version=args.version,
                folder=args.out, extra={"train_config": cfg.as_dict(),
                                        "recipe": args.recipe or "gpu-224",
                                        "trained_on": trained_on})
    devel = [s for s in items if dataset_of(s) == "replay-attack" and s.split == "devel"]
    rep = train_cnn_threshold(samples=devel, model=args.out / "cnn.onnx")
    rep = {**rep, "history": history, "train_config": cfg.as_dict(), "device": device,
           "recipe": args.recipe or "gpu-224", "trained_on": trained_on}
    print(f"written {args.out / 'cnn.onnx'}, cnn.json")
    return finish(rep, report_path=args.report or args.out / "report.json",
                  template=card_markdown, card_path=args.card, summary=_summary(rep))
