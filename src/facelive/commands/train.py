"""``facelive train MODEL``: rebuild each shipped model (``src/facelive/models/``).

quality, cnn, cnn-threshold, probe, face3d and fusion learn from NUAA / Replay-Attack
(research-only data); niqe and biqi from scikit-image's public-domain samples. Every subcommand
ends the same way (:func:`facelive.training.report.finish`): report JSON, optional model card
(``--card``) with the command line that produced it, a printed summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="rebuild a shipped model (a test, the fusion, NIQE, BIQI)",
                       description="Reproduce the shipped models (NUAA / Replay-Attack: "
                                   "research-only data; niqe, biqi: scikit-image samples).")
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

    f = tsub.add_parser("fusion", help="the score fusion (monotone, over both databases' "
                                       "held-out scores)")
    f.add_argument("--replay-attack", required=True, type=Path, help="Replay-Attack root")
    f.add_argument("--nuaa", type=Path, default=None,
                   help="NUAA root: pool its held-back subjects with Replay-Attack devel "
                        "(the shipped fusion); without it, Replay-Attack devel only")
    f.add_argument("--method", choices=("nonneg", "lda"), default=None,
                   help="nonneg (default): weights >= 0; lda: the pre-issue-11 fusion")
    f.add_argument("--fit-on", choices=("cross-database+in-domain", "cross-database",
                                        "in-domain"), default=None,
                   help="cross-database+in-domain (default, needs --nuaa): both pools below, "
                        "each database of each weighted equally; cross-database: each "
                        "trainable test scored on the database it was not trained on; "
                        "in-domain: the shipped tests on held-out subjects of their training "
                        "databases")
    f.add_argument("--cnn-recipe", default=None,
                   help="cross-database fit: the CNN's per-database recipe (default: shipped)")
    f.add_argument("--threshold-rule",
                   choices=("domain-apcer", "domain-minimax", "domain-max-eer",
                            "operating-point"),
                   default=None, help="domain-apcer (default): APCER <= --target-apcer on every "
                                      "database; domain-minimax: lowest worst-database ACER; "
                                      "domain-max-eer: highest per-database EER threshold; "
                                      "operating-point: stricter of EER and worst-type "
                                      "APCER <= --target-apcer")
    f.add_argument("--l2", type=float, default=None,
                   help="nonneg fusion: L2 penalty on the weights (default 0.001, the shipped one)")
    f.add_argument("--tests", default="quality,cnn,probe,minifas,face3d")
    f.add_argument("--target-apcer", type=float, default=0.05,
                   help="highest allowed APCER of the fitting frames' threshold")
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
    d.add_argument("--no-cross", action="store_true", help="skip the generalisation protocols")
    d.add_argument("--evaluate-only", action="store_true",
                   help="train no shipped model: re-evaluate the one in the models folder and "
                        "regenerate its report/card (protocol models are trained if not cached)")
    d.add_argument("--out", type=Path, default=None,
                   help="folder for face3d.onnx/json (default: the package's models/)")
    d.add_argument("--report", type=Path, default=Path("runs/face3d/report.json"))
    d.add_argument("--card", type=Path, default=None, help="also write the model card here")
    d.add_argument("--scores", type=Path, default=Path("runs/face3d/devel_scores.npz"),
                   help="per-frame RA devel scores of every model (keep out of git)")
    d.set_defaults(func=_train_face3d)

    pr = tsub.add_parser("probe", help="the probe test (linear model on frozen ImageNet "
                                       "features, needs .[train])",
                         description="Fit the probe test's linear model and export ONNX.")
    pr.add_argument("--nuaa", required=True, type=Path, help="NUAA database root")
    pr.add_argument("--replay-attack", required=True, type=Path, help="Replay-Attack root")
    pr.add_argument("--C", type=float, default=None,
                    help="inverse L2 strength (default: the shipped recipe's)")
    pr.add_argument("--no-cross", action="store_true", help="skip the generalisation protocols")
    pr.add_argument("--out", type=Path, default=None,
                    help="folder for probe.onnx/json (default: the package's models/)")
    pr.add_argument("--report", type=Path, default=Path("runs/probe/report.json"))
    pr.add_argument("--card", type=Path, default=None, help="also write the model card here")
    pr.set_defaults(func=_train_probe)

    mf = tsub.add_parser("minifas", help="the MiniFAS test (CelebA-Spoof MiniFASNetV2-SE, "
                                         "trained upstream): install, measure, set threshold",
                         description="Check the upstream graphs, score both databases with "
                                     "FP32 and INT8, install the chosen one with its "
                                     "threshold (EER on Replay-Attack devel) and licence.")
    mf.add_argument("--upstream", required=True, type=Path,
                    help="folder with model_fp32.onnx, model_int8.onnx and LICENSE")
    mf.add_argument("--replay-attack", required=True, type=Path, help="Replay-Attack root")
    mf.add_argument("--nuaa", type=Path, default=None,
                    help="NUAA root: also measure there (and on Replay-Attack train)")
    mf.add_argument("--precision", choices=("auto", "fp32", "int8"), default="auto",
                    help="auto (default): INT8 only when it is as accurate and faster")
    mf.add_argument("--context", type=float, default=None,
                    help="crop side over the face box's longer side (default: "
                         "facelive.training.minifas.CONTEXT)")
    mf.add_argument("--out", type=Path, default=None,
                    help="model folder (default: the package's models/); SHA256SUMS updated")
    mf.add_argument("--report", type=Path, default=Path("runs/minifas/report.json"))
    mf.add_argument("--card", type=Path, default=None, help="also write the model card here")
    mf.set_defaults(func=_train_minifas)

    for name, what in (("niqe", "the NIQE pristine model (models/niqe_pristine.npz)"),
                       ("biqi", "the BIQI classifier and regressors (models/biqi.json)")):
        n = tsub.add_parser(name, help=f"{what}; scikit-image samples, no research data",
                            description=f"Fit {what} on scikit-image's public-domain samples.")
        n.add_argument("--out", "--out-dir", dest="out", type=Path, default=None,
                       help="model folder (default: the package's models/); SHA256SUMS updated")
        n.add_argument("--report", type=Path, default=Path(f"runs/{name}/report.json"))
        n.add_argument("--card", type=Path, default=None, help="also write the model card here")
        n.set_defaults(func=_train_niqe if name == "niqe" else _train_biqi)

    try:
        from facelive.training.cnn import cli as cnn_cli
    except ImportError:  # the CNN trainer is being written / optional
        return
    cnn_cli.add_parser(tsub)


def _train_quality(args: argparse.Namespace) -> int:
    from facelive.training.quality import card_markdown, train_quality
    from facelive.training.report import finish, metric_summary

    report = train_quality(args.nuaa, args.replay_attack, workers=args.workers,
                           out_model=args.out, threshold_rule=args.threshold_rule,
                           target_apcer=args.target_apcer)
    keys = ("APCER", "APCER_max", "BPCER", "ACER", "EER")
    return finish(report, report_path=args.report, template=card_markdown, card_path=args.card,
                  summary={"threshold": report["model"]["threshold"],
                           "devel": metric_summary(report["devel"]["frame"], keys)})


def _train_minifas(args: argparse.Namespace) -> int:
    from facelive.training.minifas import card_markdown, install_minifas
    from facelive.training.report import finish

    report = install_minifas(args.upstream, args.replay_attack, nuaa_root=args.nuaa,
                             precision=args.precision, out=args.out,
                             **({"context": args.context} if args.context else {}))
    summary = {"precision": report["chosen"], "threshold": report["threshold"],
               **{p: {k: v["frame"]["EER"] for k, v in r["parts"].items()}
                  | {"ms_per_crop": r["ms_per_crop"]}
                  for p, r in report["precisions"].items()}}
    return finish(report, report_path=args.report, template=card_markdown, card_path=args.card,
                  summary=summary)


def _train_fusion(args: argparse.Namespace) -> int:
    from facelive.liveness.registry import parse_test_names
    from facelive.training.fusion import card_markdown, train_fusion
    from facelive.training.report import finish

    tests = parse_test_names(args.tests) or []
    extra = {k: v for k, v in (("nuaa_root", args.nuaa), ("method", args.method),
                               ("threshold_rule", args.threshold_rule), ("l2", args.l2),
                               ("fit_on", args.fit_on), ("cnn_recipe", args.cnn_recipe))
             if v is not None}
    fit_on = args.fit_on or "cross-database+in-domain"
    extra["fit_on"] = fit_on
    if fit_on != "in-domain":
        if args.nuaa is None:
            print("facelive train fusion: a cross-database fit needs --nuaa (or --fit-on "
                  "in-domain)", file=sys.stderr)
            return 2
        from facelive.training.fusion import fusion_frames, pooled_frames
        from facelive.training.generalisation import cross_database_frames

        extra["cnn_recipe"] = args.cnn_recipe or "shipped"
        frames = cross_database_frames(args.nuaa, args.replay_attack, tests,
                                       cnn_recipe=extra["cnn_recipe"])
        extra["frames"] = frames if fit_on == "cross-database" else pooled_frames(
            ("in-domain", fusion_frames(args.replay_attack, tests, args.nuaa)),
            ("cross-database", frames))
    report = train_fusion(args.replay_attack, tests, target_apcer=args.target_apcer,
                          missing=args.missing, folds=args.folds, out_model=args.out, **extra)
    return finish(report, report_path=args.report, template=card_markdown, card_path=args.card,
                  summary=report["summary"])


def _train_face3d(args: argparse.Namespace) -> int:
    try:
        from facelive.training.face3d.train import card_markdown, train_face3d
    except ImportError as exc:
        print(f"facelive train face3d needs the training extra (pip install '.[train]'): {exc}")
        return 2
    from facelive.training.report import finish, metric_summary

    report = train_face3d(args.nuaa, args.replay_attack, epochs=args.epochs, seed=args.seed,
                          out_dir=args.out, cross=not args.no_cross,
                          scores_out=args.scores, train_on=args.train_on,
                          **({"evaluate_only": True} if args.evaluate_only else {}))
    return finish(report, report_path=args.report, template=card_markdown, card_path=args.card,
                  summary={"threshold": report["model"]["threshold"],
                           "devel": metric_summary(report["devel"]["frame"])})


def _train_probe(args: argparse.Namespace) -> int:
    import dataclasses

    try:
        from facelive.training.probe import SHIPPED, card_markdown, train_probe
    except ImportError as exc:
        print(f"facelive train probe needs the training extra (pip install '.[train]'): {exc}")
        return 2
    from facelive.training.report import finish, metric_summary

    recipe = SHIPPED if args.C is None else dataclasses.replace(SHIPPED, C=args.C)
    report = train_probe(args.nuaa, args.replay_attack, recipe=recipe, out_dir=args.out,
                         cross=not args.no_cross)
    return finish(report, report_path=args.report, template=card_markdown, card_path=args.card,
                  summary={"threshold": report["model"]["threshold"],
                           "devel": metric_summary(report["devel"]["frame"])})


def _train_niqe(args: argparse.Namespace) -> int:
    from facelive.training.niqe import card_markdown, train_niqe
    from facelive.training.report import finish

    report = train_niqe(args.out)
    return finish(report, report_path=args.report, template=card_markdown, card_path=args.card,
                  summary={k: report[k] for k in ("file", "sha256", "n_patches")})


def _train_biqi(args: argparse.Namespace) -> int:
    from facelive.training.biqi import card_markdown, train_biqi
    from facelive.training.report import finish

    report = train_biqi(args.out)
    return finish(report, report_path=args.report, template=card_markdown, card_path=args.card,
                  summary={k: report[k] for k in ("file", "sha256", "n_samples", "held_out")})
