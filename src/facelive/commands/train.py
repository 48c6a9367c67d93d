"""``facelive train``: reproduce the shipped models from the databases."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a liveness test or the fusion",
                       description="Reproduce the shipped models (research-only data).")
    tsub = p.add_subparsers(dest="what", metavar="MODEL", required=True)

    q = tsub.add_parser("quality", help="the image-quality test (25 measures + LDA)")
    q.add_argument("--nuaa", required=True, type=Path, help="NUAA database root")
    q.add_argument("--replay-attack", required=True, type=Path, help="Replay-Attack root")
    q.add_argument("--workers", type=int, default=1, help="processes for feature extraction")
    q.add_argument("--out", type=Path, default=None,
                   help="write the model here instead of the package's models/quality.json")
    q.add_argument("--report", type=Path, default=Path("runs/quality/report.json"))
    q.add_argument("--card", type=Path, default=None,
                   help="also write the model card (Markdown) here")
    q.add_argument("--threshold-rule", choices=("eer", "apcer"), default="eer")
    q.add_argument("--target-apcer", type=float, default=0.1)
    q.set_defaults(func=_train_quality)

    f = tsub.add_parser("fusion", help="the score fusion (LDA over the tests' devel scores)")
    f.add_argument("--replay-attack", required=True, type=Path, help="Replay-Attack root")
    f.add_argument("--tests", default="quality,cnn,face3d")
    f.add_argument("--target-apcer", type=float, default=0.05,
                   help="operating point: highest allowed devel APCER (worst type)")
    f.add_argument("--missing", choices=("abstain", "available"), default="abstain")
    f.add_argument("--folds", type=int, default=5, help="cross-validation folds inside devel")
    f.add_argument("--out", type=Path, default=None)
    f.add_argument("--report", type=Path, default=Path("runs/fusion/report.json"))
    f.add_argument("--card", type=Path, default=None, help="also write the model card here")
    f.set_defaults(func=_train_fusion)

    d = tsub.add_parser("face3d", help="the 3D test (face mesh + VoxNet, needs .[train])",
                        description="Train the VoxNet of the 3D test on CPU and export ONNX.")
    d.add_argument("--nuaa", required=True, type=Path, help="NUAA database root")
    d.add_argument("--replay-attack", required=True, type=Path, help="Replay-Attack root")
    d.add_argument("--epochs", type=int, default=12)
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--train-on", choices=("ra", "nuaa+ra"), default="ra",
                   help="the shipped model's training data")
    d.add_argument("--no-cross", action="store_true", help="skip the cross-dataset models")
    d.add_argument("--out", type=Path, default=None,
                   help="folder for face3d.onnx/json (default: the package's models/)")
    d.add_argument("--report", type=Path, default=Path("runs/face3d/report.json"))
    d.add_argument("--card", type=Path, default=None, help="also write the model card here")
    d.add_argument("--scores", type=Path, default=Path("runs/face3d/devel_scores.npz"),
                   help="per-frame RA devel scores of every model (keep out of git)")
    d.set_defaults(func=_train_face3d)

    try:
        from facelive.training.cnn import cli as cnn_cli
    except ImportError:  # the CNN trainer is being written / optional
        return
    cnn_cli.add_parser(tsub)


def _train_quality(args: argparse.Namespace) -> int:
    from facelive.training.quality import train_quality, write_report

    report = train_quality(args.nuaa, args.replay_attack, workers=args.workers,
                           out_model=args.out, threshold_rule=args.threshold_rule,
                           target_apcer=args.target_apcer)
    write_report(report, args.report)
    if args.card is not None:
        from facelive.training.quality import render_card

        args.card.parent.mkdir(parents=True, exist_ok=True)
        args.card.write_text(render_card(report, _command_line()))
    dev = report["devel"]["frame"]
    print(json.dumps({"threshold": report["model"]["threshold"],
                      "devel": {k: dev[k] for k in ("APCER", "APCER_max", "BPCER", "ACER", "EER")}},
                     indent=1, default=float))
    print(f"report: {args.report}")
    return 0


def _train_fusion(args: argparse.Namespace) -> int:
    from facelive.liveness.registry import parse_test_names
    from facelive.training.fusion import train_fusion

    tests = parse_test_names(args.tests) or []
    report = train_fusion(args.replay_attack, tests, target_apcer=args.target_apcer,
                          missing=args.missing, folds=args.folds, out_model=args.out)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1, default=float))
    if args.card is not None:
        from facelive.training.fusion import render_card

        report["missing"] = args.missing
        args.card.parent.mkdir(parents=True, exist_ok=True)
        args.card.write_text(render_card(report, _command_line()))
    print(json.dumps(report["summary"], indent=1, default=float))
    print(f"report: {args.report}")
    return 0


def _train_face3d(args: argparse.Namespace) -> int:
    try:
        from facelive.training.face3d.train import render_card, train_face3d
    except ImportError as exc:
        print(f"facelive train face3d needs the training extra (pip install '.[train]'): {exc}")
        return 2
    report = train_face3d(args.nuaa, args.replay_attack, epochs=args.epochs, seed=args.seed,
                          out_dir=args.out, cross=not args.no_cross,
                          scores_out=args.scores, train_on=args.train_on)
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps(report, indent=1, default=float))
    if args.card is not None:
        args.card.parent.mkdir(parents=True, exist_ok=True)
        args.card.write_text(render_card(report, _command_line()))
    dev = report["devel"]["frame"]
    print(json.dumps({"threshold": report["model"]["threshold"],
                      "devel": {k: dev[k] for k in ("APCER_max", "BPCER", "ACER", "EER")}},
                     indent=1, default=float))
    print(f"report: {args.report}")
    return 0


def _command_line() -> str:
    import shlex
    import sys

    return "facelive " + " ".join(shlex.quote(a) for a in sys.argv[1:])
