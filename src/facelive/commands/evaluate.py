"""``facelive evaluate``: score a dataset split with chosen tests; write metrics, report, plots."""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from facelive.errors import FaceliveError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate liveness tests on a dataset (APCER/BPCER/ACER/HTER/EER/AUC)",
        description="Score a dataset split with the selected tests and write metrics.json, "
                    "report.md, scores.csv and PNG plots (ROC, DET, histograms) into --out.",
    )
    p.add_argument("--dataset", required=True, choices=["nuaa", "replay-attack", "3dmad", "folder"])
    p.add_argument("--root", required=True, help="the dataset folder")
    p.add_argument("--split", choices=["train", "devel", "test"],
                   help="split to evaluate (default: every split found)")
    p.add_argument("--protocol", help="database protocol (Replay-Attack: grandtest, print, "
                                      "photo, video, mobile, highdef)")
    p.add_argument("--tests", default=None,
                   help="comma-separated test names (default: the pipeline's default tests)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--threshold", type=float, help="decision threshold on the final score")
    g.add_argument("--threshold-from", choices=["train", "devel", "test"],
                   help="use the EER threshold of this split of the same dataset")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--support", choices=["fixed", "hand"], help="Replay-Attack attack support")
    p.add_argument("--frame-step", type=int, default=None,
                   help="video datasets: score every k-th frame "
                        "(Replay-Attack .mov: 25, 3DMAD: 10)")
    p.add_argument("--limit", type=int, default=None,
                   help="score about N samples: whole, evenly spaced videos (quick checks)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _command(args: argparse.Namespace) -> str:
    """The command line equivalent to ``args`` (recorded in the report)."""
    parts = ["facelive", "evaluate"]
    for name in ("dataset", "root", "split", "protocol", "tests", "threshold", "threshold_from",
                 "support", "frame_step", "limit", "out"):
        v = getattr(args, name, None)
        if v is not None:
            parts += [f"--{name.replace('_', '-')}", str(v)]
    parts += [f for f, on in (("--no-plots", args.no_plots), ("--quiet", args.quiet)) if on]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    import json

    from facelive.datasets import open_dataset
    from facelive.evaluation.evaluate import run_evaluation

    if args.threshold_from and args.split is None:
        print("facelive evaluate: --threshold-from needs --split", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print("facelive evaluate: --limit must be >= 1", file=sys.stderr)
        return 2
    options = {}
    if args.support:
        if args.dataset != "replay-attack":
            print("facelive evaluate: --support applies to replay-attack only", file=sys.stderr)
            return 2
        options["support"] = args.support
    if args.frame_step is not None:
        if args.dataset not in ("replay-attack", "3dmad"):
            print("facelive evaluate: --frame-step applies to video datasets", file=sys.stderr)
            return 2
        options["frame_step"] = args.frame_step
    from facelive.liveness.registry import parse_test_names

    tests = parse_test_names(args.tests)
    dataset = open_dataset(args.dataset, args.root, split=args.split, protocol=args.protocol,
                           **options)
    ref = None
    if args.threshold_from:
        ref = open_dataset(args.dataset, args.root, split=args.threshold_from,
                           protocol=args.protocol, **options)
    from facelive.pipeline import Pipeline

    t0 = time.perf_counter()
    try:
        pipe = Pipeline(tests=tests)
    except (KeyError, ValueError) as exc:
        raise FaceliveError(f"cannot build the pipeline: {exc}", code="usage") from None
    load_s = time.perf_counter() - t0
    try:
        result = run_evaluation(
            dataset, pipe, args.out, threshold=args.threshold, threshold_from=ref,
            progress=not args.quiet, plots=not args.no_plots, limit=args.limit,
            extra={"tests": list(getattr(pipe, "test_names", tests or [])),
                   "command": _command(args),
                   "timing": {"model_load_s": round(load_s, 4)}},
        )
    finally:
        if hasattr(pipe, "close"):
            pipe.close()
    summary = {lvl: {k: result[lvl][k] for k in ("APCER_max", "BPCER", "ACER", "EER", "AUC")}
               for lvl in ("frame", "video") if result.get(lvl)}
    print(json.dumps({"threshold": result["threshold"], **summary,
                      "n_no_decision": result["frame"]["n_no_decision"], "out": args.out}))
    return 0
