"""Fixtures of the session-API tests: one constant-score pipeline per module, the astronaut
frame, a fake clock and ``make(**settings)``, an app with API keys and a signing key file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from facelive.pipeline import Pipeline
from facelive.server.app import create_app
from facelive.server.settings import Settings
from helpers import ConstantTest, FakeClock
from helpers.sessions import DIGESTS, load_astronaut


@pytest.fixture(scope="module")
def pipeline() -> Iterator[Pipeline]:
    p = Pipeline([ConstantTest()])
    yield p
    p.close()


@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, Any]:
    return load_astronaut()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make(pipeline: Pipeline, clock: FakeClock, tmp_path: Path):
    """``make(**settings)`` -> a TestClient context (API keys and a signing key file set)."""

    def _make(**kw: Any) -> TestClient:
        kw.setdefault("api_keys", DIGESTS)
        kw.setdefault("signing_key", str(tmp_path / "signing.pem"))
        return TestClient(create_app(Settings(**kw), pipeline, clock=clock))

    return _make
