"""Shared fixtures.

Tests that need the research data (``../shared/data`` beside the repository, or the folder in the
``FACELIVE_DATA`` environment variable) use the ``shared_data`` fixture, which skips with the reason
when the data is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("FACELIVE_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (DATA / "nuaa").is_dir() or not (DATA / "replay-attack").is_dir():
        pytest.skip(f"research data not found at {DATA} (set FACELIVE_DATA)")
    return DATA


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
