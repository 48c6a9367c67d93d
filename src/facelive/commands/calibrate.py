"""``facelive calibrate``: thresholds and quality-domain statistics from a site's live frames."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "calibrate",
        help="calibrate on your own camera's live frames (writes a --models folder)",
        description="Score bona fide (live) frames captured through your own camera and client, "
                    "set every threshold so that at most --target-bpcer of them is rejected, "
                    "re-standardise the quality test's measures on them, and write a model "
                    "folder for `facelive --models DIR` / FACELIVE_MODELS (docs/evaluation.md).",
    )
    p.add_argument("--live", required=True, help="folder of live frames (searched recursively)")
    p.add_argument("--out", required=True, help="model folder to write (SHA256SUMS included)")
    p.add_argument("--target-bpcer", type=float, default=0.05,
                   help="share of these live frames that may be rejected (default 0.05)")
    p.add_argument("--tests", default=None, help="comma-separated tests (default: the defaults)")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from facelive.calibration import calibrate, live_images
    from facelive.liveness.registry import parse_test_names

    images = live_images(args.live)
    if not images:
        print(f"facelive calibrate: no images in {args.live}", file=sys.stderr)
        return 2

    def progress(i: int, n: int) -> None:
        if not args.quiet and (i == n or i % 50 == 0):
            print(f"calibrate: {i}/{n} frames", file=sys.stderr)

    report = calibrate(images, args.out, target_bpcer=args.target_bpcer,
                       tests=parse_test_names(args.tests), source=str(args.live),
                       progress=progress)
    summary = {"out": args.out, "n_images": report["n_images"], "status": report["status"],
               "thresholds": {k: {"before": round(v["threshold_before"], 6),
                                  "after": round(v["threshold_after"], 6)}
                              for k, v in {**report["tests"], **report["fusion"]}.items()},
               "quality_restandardised": report.get("quality_domain", {}).get("restandardised")}
    print(json.dumps(summary, indent=1))
    return 0
