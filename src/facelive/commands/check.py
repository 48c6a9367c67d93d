"""``facelive check``: live or spoof, for images and folders of images."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from facelive.types import LivenessResult

FORMATS = ("text", "json", "jsonl")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="decide live or spoof for images",
        description=(
            "Run liveness tests on images (folders are searched recursively). Exit status: 0 when "
            "every file was processed, 1 when any file could not be read, 2 for usage errors."
        ),
    )
    p.add_argument("paths", nargs="+", metavar="PATH", help="image file or folder")
    p.add_argument("--tests", default=None,
                   help="comma-separated tests to run (default: cnn,probe,minifas, fused; "
                        "face3d runs only when named)")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format")
    p.add_argument("--threshold", type=float, default=None,
                   help="override the decision threshold on the final score")
    p.add_argument("--no-fusion", action="store_true",
                   help="combine several tests by the all-must-say-live rule instead of the fusion")
    p.add_argument("--missing", choices=("abstain", "available"), default=None,
                   help="fusion policy when a test has no score (default: the model's)")
    p.add_argument("--faces", choices=("refuse", "largest"), default="refuse",
                   help="a frame with several faces: no decision (refuse, the default) or judge "
                        "the largest face")
    p.set_defaults(func=run)


def _format_row(r: LivenessResult) -> list[str]:
    score = "-" if r.score is None else f"{r.score:.3f}"
    tests = ", ".join(
        f"{n}={'-' if t.score is None else format(t.score, '.3f')}"
        + ("" if t.status == "ok" else f" ({t.status})")
        for n, t in r.tests.items()
    )
    note = r.error or r.reason or ""
    return [r.path or "-", r.decision, score, tests, f"{r.ms:.0f}", note]


def run(args: argparse.Namespace) -> int:
    from facelive.errors import FaceliveError
    from facelive.imageio import iter_image_paths
    from facelive.liveness.registry import parse_test_names, unknown_tests_message
    from facelive.pipeline import Pipeline

    names = parse_test_names(args.tests)
    if args.tests and (problem := unknown_tests_message(names or [])):
        print(f"facelive check: error: {problem}", file=sys.stderr)
        return 2
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        print("facelive check: error: --threshold must be in [0, 1]", file=sys.stderr)
        return 2
    try:
        pipe = Pipeline(names, fusion=None if args.no_fusion else "default",
                        threshold=args.threshold, missing=args.missing, faces=args.faces)
    except FaceliveError as exc:
        print(f"facelive check: error: cannot load the models: {exc}", file=sys.stderr)
        return 1
    paths = iter_image_paths(args.paths)
    if not paths:
        print("facelive check: error: no images found", file=sys.stderr)
        return 1
    results: list[dict[str, Any]] = []  # the JSON objects, for --format json
    failed = False
    table = None
    if args.format == "text":
        from rich.console import Console
        from rich.table import Table

        table = Table("path", "decision", "P(live)", "tests", "ms", "note")
    with pipe:
        for path in paths:
            r = pipe.check(path)
            failed |= r.error is not None
            if args.format == "jsonl":
                print(json.dumps(r.to_dict()), flush=True)
            elif table is not None:
                table.add_row(*_format_row(r))
            else:
                results.append(r.to_dict())
    if args.format == "json":
        print(json.dumps(results[0] if len(results) == 1 else results, indent=2))
    elif table is not None:
        Console(width=160).print(table)
    return 1 if failed else 0
