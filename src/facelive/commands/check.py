"""``facelive check``: live or spoof, for images and folders of images."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from facelive.commands._engine import add_engine_arguments, dask_scorer, engine_usage_error

if TYPE_CHECKING:
    from facelive.types import LivenessResult

FORMATS = ("text", "json", "jsonl")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check",
        help="decide live or spoof for images",
        description=(
            "Run liveness tests on images (folders are searched recursively). Exit status: 0 when "
            "every file was processed, 1 when any file could not be read, 2 for usage errors. "
            "--engine dask scores on a Dask cluster and prints the same results in the same order."
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
    add_engine_arguments(p)
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


def _results(engine: Any, paths: list[Any]) -> Iterator[LivenessResult]:
    """Each path's result, in order: on a Dask cluster (progress on a terminal's stderr) or
    here, one after another."""
    from facelive.pipeline import Pipeline

    if isinstance(engine, Pipeline):
        yield from (engine.check(p) for p in paths)
        return
    from rich.console import Console

    err = Console(stderr=True)
    yield from engine.check(paths, progress=err.is_terminal, console=err)


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
    if problem := engine_usage_error(args):
        print(f"facelive check: error: {problem}", file=sys.stderr)
        return 2
    paths = iter_image_paths(args.paths)
    if not paths:
        print("facelive check: error: no images found", file=sys.stderr)
        return 1
    options = dict(fusion=not args.no_fusion, threshold=args.threshold, missing=args.missing,
                   faces=args.faces)
    try:
        if args.engine == "dask":
            engine: Any = dask_scorer(args, tests=names, **options)
        else:
            engine = Pipeline(names, fusion="default" if options.pop("fusion") else None,
                              **options)
    except FaceliveError as exc:
        if exc.code == "usage":
            print(f"facelive check: error: {exc}", file=sys.stderr)
            return 2
        print(f"facelive check: error: cannot load the models: {exc}", file=sys.stderr)
        return 1
    results: list[dict[str, Any]] = []  # the JSON objects, for --format json
    failed = False
    table = None
    if args.format == "text":
        from rich.console import Console
        from rich.table import Table

        table = Table("path", "decision", "P(live)", "tests", "ms", "note")
    with engine:
        for r in _results(engine, paths):
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
