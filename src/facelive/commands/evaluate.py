"""``facelive evaluate``: score a dataset split with chosen tests; write metrics, report, plots."""

from __future__ import annotations

import argparse
import shlex
import sys
import time

from facelive.commands._engine import (
    add_engine_arguments,
    dask_scorer,
    engine_command,
    engine_usage_error,
)
from facelive.errors import FaceliveError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate liveness tests on a dataset (APCER/BPCER/ACER/HTER/EER/AUC)",
        description="Score a dataset split with the selected tests and write metrics.json, "
                    "report.md, scores.csv and PNG plots (ROC, DET, histograms) into --out.",
    )
    p.add_argument("--dataset", choices=["nuaa", "replay-attack", "3dmad", "folder"],
                   help="the dataset to score (required unless --protocol names a "
                        "generalisation protocol)")
    p.add_argument("--root", help="the dataset folder")
    p.add_argument("--split", choices=["train", "devel", "test"],
                   help="split to evaluate (default: every split found)")
    p.add_argument("--protocol", help="database protocol (Replay-Attack: grandtest, print, "
                                      "photo, video, mobile, highdef), or a generalisation "
                                      "protocol: cross-session, nuaa-to-ra, ra-to-nuaa or all "
                                      "(trains each test on the source; needs --nuaa and "
                                      "--replay-attack; see docs/evaluation.md)")
    p.add_argument("--nuaa", help="generalisation protocols: the NUAA root")
    p.add_argument("--replay-attack", dest="replay_attack",
                   help="generalisation protocols: the Replay-Attack root")
    p.add_argument("--recipes", default="before,after",
                   help="generalisation protocols: recipes to compare (before, after, after-2d, "
                        "transfer: the shipped decision, its fusion fitted on the other "
                        "cross-database direction)")
    p.add_argument("--epochs", type=int, default=12,
                   help="generalisation protocols: VoxNet epochs of the face3d source models")
    p.add_argument("--cnn-recipe", dest="cnn_recipe", default=None,
                   help="generalisation protocols: also train the CNN on each source with this "
                        "recipe (cpu, cpu-rescale, cpu-synth, cpu-rescale-synth, cpu-depth, "
                        "cpu-depth-synth, cpu-gentle, cpu-frozen; minutes per "
                        "split on a CPU) and fuse all three tests")
    p.add_argument("--target-bpcer", type=float, default=0.05,
                   help="generalisation protocols: BPCER the calibration aims at")
    p.add_argument("--conditions", nargs="?", const="all", default=None,
                   help="re-run the evaluation under capture conditions (all, or a comma list "
                        "of original, jpeg95, jpeg85, jpeg70, scale0.5, scale2, web, phone, "
                        "phone-portrait)")
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
    add_engine_arguments(p)
    p.set_defaults(func=run)


def _command(args: argparse.Namespace) -> str:
    """The command line equivalent to ``args`` (recorded in the report)."""
    parts = ["facelive", "evaluate"]
    for name in ("dataset", "root", "split", "protocol", "nuaa", "replay_attack", "cnn_recipe",
                 "tests",
                 "threshold", "threshold_from", "support", "frame_step", "limit", "conditions",
                 "out"):
        v = getattr(args, name, None)
        if v is not None:
            parts += [f"--{name.replace('_', '-')}", str(v)]
        if name == "replay_attack" and args.protocol and getattr(args, "recipes", None):
            parts += ["--recipes", str(args.recipes)]  # the generalisation recipes compared
    parts += [f for f, on in (("--no-plots", args.no_plots), ("--quiet", args.quiet)) if on]
    parts += engine_command(args) if hasattr(args, "engine") else []
    return shlex.join(parts)


def _is_generalisation(protocol: str | None) -> bool:
    from facelive.evaluation.protocols import PROTOCOLS

    return bool(protocol) and all(p.strip() in (*PROTOCOLS, "all")
                                  for p in str(protocol).split(","))


def run_protocols(args: argparse.Namespace) -> int:
    """``--protocol cross-session|nuaa-to-ra|ra-to-nuaa|all``: train on each source, score the
    target; report.json, report.md and protocols.png into --out."""
    import json
    from pathlib import Path

    from facelive.evaluation.plots import plot_grouped_bars
    from facelive.evaluation.protocols import expand_protocols

    if not args.nuaa or not args.replay_attack:
        print("facelive evaluate: --protocol " + args.protocol + " needs --nuaa and "
              "--replay-attack", file=sys.stderr)
        return 2
    try:
        from facelive.training.generalisation import RECIPES, report_markdown, summary_rows
        from facelive.training.generalisation import run_protocols as run
    except ImportError as exc:
        print(f"facelive evaluate --protocol needs the training extra (pip install "
              f"'.[train]'): {exc}", file=sys.stderr)
        return 2
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    if not recipes or any(r not in RECIPES for r in recipes):
        print(f"facelive evaluate: --recipes takes {', '.join(RECIPES)}", file=sys.stderr)
        return 2
    if args.cnn_recipe is not None:
        from facelive.training.cnn.protocol import RECIPES as CNN_RECIPES

        if args.cnn_recipe not in CNN_RECIPES:
            print(f"facelive evaluate: --cnn-recipe takes {', '.join(CNN_RECIPES)}",
                  file=sys.stderr)
            return 2
    protocols = expand_protocols(args.protocol)
    report = run(args.nuaa, args.replay_attack, protocols, recipes=recipes, epochs=args.epochs,
                 target_bpcer=args.target_bpcer, cnn_recipe=args.cnn_recipe)
    command = _command(args)
    report["command"] = command
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    (out / "report.md").write_text(report_markdown(report, command), encoding="utf-8")
    rows = summary_rows(report)
    if not args.no_plots:
        labels = sorted({(r["decision"], r["recipe"]) for r in rows},
                        key=lambda k: (k[0], recipes.index(k[1])))
        series = {f"{d} ({r})": [next((100 * x["EER"] for x in rows if x["split"] == p
                                       and x["decision"] == d and x["recipe"] == r
                                       and x["EER"] is not None), None) for p in protocols]
                  for d, r in labels}
        plot_grouped_bars(out / "protocols.png", protocols, series, ylabel="target EER (%)",
                          title="Generalisation protocols: EER on the target")
    print(json.dumps({f"{r['split']}/{r['decision']}/{r['recipe']}":
                      {k: r[k] for k in ("EER", "ACER", "AUC")} for r in rows}, indent=1))
    return 0


def run_conditions(args: argparse.Namespace, dataset, tests) -> int:
    import json

    from facelive.evaluation.conditions import parse_conditions
    from facelive.evaluation.conditions import run_conditions as run
    from facelive.evaluation.evaluate import _subset
    from facelive.pipeline import Pipeline

    try:
        names = parse_conditions(args.conditions)
    except ValueError as exc:
        print(f"facelive evaluate: {exc}", file=sys.stderr)
        return 2
    samples = _subset(dataset.samples(), args.limit)
    if not samples:
        raise FaceliveError(f"{dataset.name}: no samples in {dataset.root}", code="dataset_error")
    pipe = Pipeline(tests=tests)
    try:
        result = run(samples, pipe, args.out, conditions=names, threshold=args.threshold,
                     progress=not args.quiet, plots=not args.no_plots,
                     extra={"command": _command(args), "dataset": dataset.name,
                            "split": dataset.split, "tests": list(pipe.test_names)})
    finally:
        if hasattr(pipe, "close"):
            pipe.close()
    print(json.dumps({c: {k: e["decision"]["frame"][k] for k in ("APCER_max", "BPCER", "ACER",
                                                                 "EER")}
                      for c, e in result["conditions"].items()}))
    return 0


def run(args: argparse.Namespace) -> int:
    import json

    from facelive.datasets import open_dataset
    from facelive.evaluation.evaluate import run_evaluation

    if _is_generalisation(args.protocol):
        if args.engine != "local":
            print("facelive evaluate: --engine dask scores plain evaluations, not the "
                  "generalisation protocols", file=sys.stderr)
            return 2
        return run_protocols(args)
    if not args.dataset or not args.root:
        print("facelive evaluate: --dataset and --root are required (or --protocol "
              "cross-session|nuaa-to-ra|ra-to-nuaa|all)", file=sys.stderr)
        return 2
    if args.threshold_from and args.split is None:
        print("facelive evaluate: --threshold-from needs --split", file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print("facelive evaluate: --limit must be >= 1", file=sys.stderr)
        return 2
    if problem := engine_usage_error(args):
        print(f"facelive evaluate: {problem}", file=sys.stderr)
        return 2
    if args.engine == "dask" and args.conditions:
        print("facelive evaluate: --engine dask scores plain evaluations, not --conditions",
              file=sys.stderr)
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
    if args.conditions:
        if args.threshold_from:
            print("facelive evaluate: --conditions takes --threshold, not --threshold-from",
                  file=sys.stderr)
            return 2
        return run_conditions(args, dataset, tests)
    ref = None
    if args.threshold_from:
        ref = open_dataset(args.dataset, args.root, split=args.threshold_from,
                           protocol=args.protocol, **options)
    from facelive.pipeline import Pipeline

    t0 = time.perf_counter()
    scorer = None
    try:
        if args.engine == "dask":
            if tests:
                from facelive.liveness.registry import unknown_tests_message

                if problem := unknown_tests_message(tests):
                    raise FaceliveError(f"cannot build the pipeline: {problem}", code="usage")
            pipe = dask_scorer(args, tests=tests)  # threshold, test_names; scores on the cluster
            scorer = pipe.score_samples
        else:
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
            scorer=scorer,
        )
    finally:
        if hasattr(pipe, "close"):
            pipe.close()
    summary = {lvl: {k: result[lvl][k] for k in ("APCER_max", "BPCER", "ACER", "EER", "AUC")}
               for lvl in ("frame", "video") if result.get(lvl)}
    print(json.dumps({"threshold": result["threshold"], **summary,
                      "n_no_decision": result["frame"]["n_no_decision"], "out": args.out}))
    return 0
