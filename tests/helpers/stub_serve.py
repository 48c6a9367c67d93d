"""``facelive serve`` with the stand-in pipeline: ``python tests/helpers/stub_serve.py serve
--pipeline-workers 0 ...`` runs the real command (its flags, its checks, uvicorn and its
``--workers`` processes, the app of each) with :class:`helpers.StubPipeline` in place of the
models, so that a multi-process server starts in seconds.

uvicorn starts its worker processes with ``spawn``, which imports this file again in each of
them (as ``__mp_main__``): the replacement below runs there too. Start it with
:func:`helpers.subprocess_env` (``src/`` and ``tests/`` on ``PYTHONPATH``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import facelive.server.app as app_module  # noqa: E402
from helpers import StubPipeline  # noqa: E402


def load_stub(settings: Any) -> StubPipeline:
    """The stand-in for :func:`facelive.server.workers.load_pipeline`."""
    return StubPipeline()


app_module.load_pipeline = load_stub  # type: ignore[assignment]

if __name__ == "__main__":
    from facelive.cli import main

    sys.exit(main())
