"""The ``facelive`` command line.

Each subcommand lives in its own module under :mod:`facelive.commands`, which provides
``register(subparsers)``; the parser it adds sets ``func`` (called with the parsed arguments,
returning the exit status). Heavy imports happen inside ``func`` so that ``--help`` stays fast.
Exit status: 0 success, 1 a processed input failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

import facelive
import facelive.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facelive", description="Face liveness (presentation-attack detection)."
    )
    parser.add_argument("--version", action="version", version=f"facelive {facelive.__version__}")
    parser.add_argument("--models", metavar="DIR", default=None,
                        help="use the models in DIR (written by `facelive train ... --out DIR`) "
                             "instead of the shipped ones where DIR has them "
                             "(also: FACELIVE_MODELS)")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show the native libraries' log lines (MediaPipe, TFLite, absl)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in sorted(pkgutil.iter_modules(facelive.commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        importlib.import_module(f"facelive.commands.{mod.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.models is not None:
        from pathlib import Path

        from facelive.modelstore import MODELS_ENV

        if not Path(args.models).is_dir():
            parser.error(f"--models: {args.models} is not a folder")
        os.environ[MODELS_ENV] = str(Path(args.models).resolve())
    from facelive.runtime import tune_process

    # the server process only parses requests (its pipeline processes tune themselves): the
    # allocator setting would keep every request body's memory in its heap
    tune_process(quiet=not args.verbose, filter_stderr=False,
                 allocator=args.command != "serve")
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except facelive.FaceliveError as exc:
        print(f"facelive: error: {exc}", file=sys.stderr)
        return 2 if exc.code in ("dataset_error", "usage") else 1


def entry() -> None:
    """The ``facelive`` console script: :func:`main` in a process of its own, so that it may also
    filter the native libraries' stderr chatter (process-wide; ``--verbose`` keeps it)."""
    argv = sys.argv[1:]
    if not ({"-v", "--verbose"} & set(argv)):
        from facelive.runtime import filter_native_stderr

        filter_native_stderr()
    sys.exit(main(argv))


if __name__ == "__main__":
    entry()
