"""The injection attack suite pinned with a few sessions per tier: a still photo tinted as a
whole and ``simulate_clip`` of a still photo (what got ``live`` before the physical checks) and a
recording under another challenge never come out live; the realistic live simulation does. The
tiers that sometimes pass, ``video`` and ``informed``, are measured, not pinned: the full table (20
sessions a tier) is in ``docs/challenge.md`` with its command."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest

from facelive.challenge import attacks

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tools():
    from facelive.face.detection import FaceDetector
    from facelive.face.mesh import FaceMesher

    det, mesher = FaceDetector(), FaceMesher()
    yield det, mesher, attacks.load_sources(det, mesher)
    det.close()
    mesher.close()


@pytest.mark.parametrize("tier,sessions", [("tint", 2), ("still", 2), ("recorded", 1)])
def test_injection_tiers_fail(tools, tier: str, sessions: int) -> None:
    det, mesher, sources = tools
    res = attacks.run_tier(tier, sessions, sources, detector=det, mesher=mesher, seed=1)
    assert res.live == 0, res.to_dict()
    if tier in ("tint", "still"):  # the colour follows the sequence: the physics catches them
        assert "the face does not move like a head (a still picture?)" in res.reasons
    if tier == "tint":
        assert res.reasons[
            "the background answers the screen like the face (a tint of the whole frame?)"] == 2


def test_live_simulation_passes(tools) -> None:
    det, mesher, sources = tools
    res = attacks.run_tier("live", 3, sources, detector=det, mesher=mesher, seed=1)
    assert res.live == 3, res.to_dict()


def test_attack_command_prints_the_table(capsys) -> None:
    from facelive.cli import main
    from facelive.commands.challenge import ATTACK_TIERS

    assert ATTACK_TIERS == attacks.TIERS
    with redirect_stderr(io.StringIO()):
        assert main(["challenge", "attack", "--tier", "tint", "--sessions", "1", "--json",
                     "--image", str(attacks.EXAMPLE)]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert [(r["tier"], r["live"], r["sessions"]) for r in rows] == [("tint", 0, 1)]
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()):
        assert main(["challenge", "attack", "--sessions", "0"]) == 2
        assert main(["challenge", "attack", "--data", "/nonexistent"]) == 2
        assert main(["challenge", "attack", "--image", "/nonexistent.jpg"]) == 1  # no face


@pytest.mark.data
def test_real_webcam_faces(shared_data, tools) -> None:
    """Replay-Attack devel live frames (320 x 240, a real webcam) as the source faces."""
    det, mesher, _ = tools
    sources = attacks.load_sources(det, mesher, shared_data, limit=4)[1:]  # without the example
    assert len(sources) == 3
    assert attacks.run_tier("still", 2, sources, detector=det, mesher=mesher, seed=2).live == 0
    assert attacks.run_tier("live", 3, sources, detector=det, mesher=mesher, seed=2).live == 3
