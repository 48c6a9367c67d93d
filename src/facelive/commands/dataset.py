"""``facelive dataset``: inspect a dataset (``info``) or build an HDF5 training cache."""

from __future__ import annotations

import argparse
import sys

DATASETS = ["nuaa", "replay-attack", "3dmad", "folder"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--root", required=True, help="the dataset folder")
    p.add_argument("--split", choices=["train", "devel", "test"],
                   help="split (default: every split found)")
    p.add_argument("--protocol", help="database protocol (Replay-Attack: grandtest, print, ...)")
    p.add_argument("--frame-step", type=int, default=None,
                   help="video datasets: every k-th frame (Replay-Attack .mov: 25, 3DMAD: 10)")


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("dataset", help="inspect datasets, build training caches")
    sub = p.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    info = sub.add_parser("info", help="count samples per split, label and attack type")
    _common(info)
    info.set_defaults(func=run_info)
    cache = sub.add_parser("cache", help="write preprocessed samples to a chunked HDF5 file")
    _common(cache)
    cache.add_argument("--out", required=True, help="the .h5 file to write")
    cache.add_argument("--size", type=int, default=224, help="image side in pixels (224)")
    cache.add_argument("--fit", choices=["pad", "crop", "stretch"], default="pad",
                       help="how full frames are fitted to a square (pad)")
    cache.add_argument("--face-crop", action="store_true",
                       help="crop around the detected face (falls back to --fit without a face)")
    cache.add_argument("--context", type=float, default=1.5,
                       help="face crop side / face box side (1.5)")
    cache.add_argument("--quiet", action="store_true", help="no progress bar")
    cache.set_defaults(func=run_cache)


def _open(args: argparse.Namespace):
    from facelive.datasets import open_dataset

    options = {}
    if args.frame_step is not None:
        if args.dataset not in ("replay-attack", "3dmad"):
            raise _Usage("--frame-step applies to video datasets (replay-attack, 3dmad)")
        options["frame_step"] = args.frame_step
    return open_dataset(args.dataset, args.root, split=args.split, protocol=args.protocol,
                        **options)


class _Usage(Exception):
    pass


def run_info(args: argparse.Namespace) -> int:
    import json

    try:
        ds = _open(args)
    except _Usage as exc:
        print(f"facelive dataset: {exc}", file=sys.stderr)
        return 2
    summary = ds.summary()
    summary["missing_examples"] = ds.missing[:10]
    summary["skipped_examples"] = ds.skipped[:10]
    print(json.dumps(summary, indent=2))
    return 0


def run_cache(args: argparse.Namespace) -> int:
    import json

    from facelive.datasets.cache import build_cache

    if args.size < 8:
        print("facelive dataset cache: --size must be >= 8", file=sys.stderr)
        return 2
    try:
        ds = _open(args)
    except _Usage as exc:
        print(f"facelive dataset: {exc}", file=sys.stderr)
        return 2
    res = build_cache(
        ds.samples(), args.out, size=args.size, fit=args.fit, face_crop=args.face_crop,
        context=args.context, source=f"{ds.name}:{ds.root}", progress=not args.quiet,
        args={"dataset": ds.name, "split": args.split, "protocol": ds.protocol,
              "frame_step": args.frame_step},
    )
    res["skipped"] = len(res["skipped"])
    print(json.dumps(res))
    return 0
