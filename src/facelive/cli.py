"""The ``facelive`` command line.

Each subcommand lives in its own module under :mod:`facelive.commands`, which provides
``register(subparsers)``; the parser it adds sets ``func`` (called with the parsed arguments,
returning the exit status). Heavy imports happen inside ``func`` so that ``--help`` stays fast.
Exit status: 0 success, 1 a processed input failed, 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import facelive
import facelive.commands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="facelive", description="Face liveness (presentation-attack detection)."
    )
    parser.add_argument("--version", action="version", version=f"facelive {facelive.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in sorted(pkgutil.iter_modules(facelive.commands.__path__), key=lambda m: m.name):
        if mod.name.startswith("_"):
            continue
        importlib.import_module(f"facelive.commands.{mod.name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except facelive.FaceliveError as exc:
        print(f"facelive: error: {exc}", file=sys.stderr)
        return 2 if exc.code in ("dataset_error", "usage") else 1


if __name__ == "__main__":
    sys.exit(main())
