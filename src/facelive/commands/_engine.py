"""The ``--engine`` options that ``facelive check`` and ``facelive evaluate`` share."""

from __future__ import annotations

import argparse

ENGINES = ("local", "dask")


def add_engine_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--engine``, ``--scheduler``, ``--workers`` and ``--chunk-size`` to ``p``."""
    g = p.add_argument_group("distributed scoring (--engine dask; pip install 'facelive[scale]')")
    g.add_argument("--engine", choices=ENGINES, default="local",
                   help="local: score in this process (default); dask: on a Dask cluster, one "
                        "pipeline per worker, same output (docs/performance.md)")
    g.add_argument("--scheduler", metavar="ADDRESS", default=None,
                   help="--engine dask: a running scheduler (tcp://host:8786) whose workers see "
                        "the images under the same paths; default: a local cluster of this "
                        "machine's cores, stopped at the end")
    g.add_argument("--workers", type=int, default=None,
                   help="--engine dask without --scheduler: worker processes (default: cores)")
    g.add_argument("--chunk-size", dest="chunk_size", type=int, default=None,
                   help="--engine dask: images per task (default: 16)")


def engine_usage_error(args: argparse.Namespace) -> str | None:
    """What is wrong with the engine options, or ``None``."""
    if args.engine != "dask":
        for name in ("scheduler", "workers", "chunk_size"):
            if getattr(args, name) is not None:
                return f"--{name.replace('_', '-')} needs --engine dask"
        return None
    if args.scheduler is not None and args.workers is not None:
        return "--workers sizes a local cluster: give --scheduler or --workers, not both"
    if args.workers is not None and args.workers < 1:
        return "--workers must be >= 1"
    if args.chunk_size is not None and args.chunk_size < 1:
        return "--chunk-size must be >= 1"
    return None


def engine_command(args: argparse.Namespace) -> list[str]:
    """The engine options as command-line words (empty for the local engine)."""
    if args.engine != "dask":
        return []
    words = ["--engine", "dask"]
    for name in ("scheduler", "workers", "chunk_size"):
        v = getattr(args, name)
        if v is not None:
            words += [f"--{name.replace('_', '-')}", str(v)]
    return words


def dask_scorer(args: argparse.Namespace, **spec: object):
    """A :class:`facelive.distributed.DaskScorer` for ``args``; ``spec``: the
    :class:`facelive.distributed.PipelineSpec` fields (the models folder is taken from
    ``--models``/``FACELIVE_MODELS``)."""
    import os

    from facelive.distributed import DEFAULT_CHUNK_SIZE, DaskScorer, PipelineSpec
    from facelive.modelstore import MODELS_ENV

    tests = spec.pop("tests", None)
    pipeline = PipelineSpec(tests=tuple(tests) if tests else None,  # type: ignore[arg-type]
                            models=os.environ.get(MODELS_ENV), **spec)  # type: ignore[arg-type]
    return DaskScorer(pipeline, scheduler=args.scheduler, workers=args.workers,
                      chunk_size=args.chunk_size or DEFAULT_CHUNK_SIZE)
