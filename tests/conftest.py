"""Shared fixtures.

Layout: ``tests/<subpackage>/`` holds the tests of ``facelive.<subpackage>`` (``server``,
``challenge``, ``iqa``, ``liveness``, ``face``, ``datasets``, ``evaluation``, ``training``,
``commands``), ``tests/benchmarks/`` those of ``benchmarks/``; the top level holds the tests of
``facelive``'s top-level modules and the checks of the whole repository (architecture, docs,
golden values). Test file names are unique across the folders (pytest imports them by their base
name). The stand-ins the tests share (a pipeline without models, a constant-score test, a fixed
detector, a fake clock, the challenge-session flow, the browser helpers) are in ``helpers``,
importable from every test module because this file puts ``tests/`` on ``sys.path``.

Tests that need the research data (``../shared/data`` beside the repository, or the folder in the
``FACELIVE_DATA`` environment variable) use the ``shared_data`` fixture, which skips with the reason
when the data is absent.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
if str(TESTS) not in sys.path:  # pytest's default import mode has done it; --import-mode=importlib
    sys.path.insert(0, str(TESTS))  # has not


REPO = TESTS.parent
DATA = Path(os.environ.get("FACELIVE_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (DATA / "nuaa").is_dir() or not (DATA / "replay-attack").is_dir():
        pytest.skip(f"research data not found at {DATA} (set FACELIVE_DATA)")
    return DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``redis-server`` on a free loopback port for the whole test session (no
    persistence); skips with the reason where the Debian package is not installed."""
    from helpers.redis_server import redis_server

    with redis_server(tmp_path_factory.mktemp("redis")) as (url, _):
        yield url
