"""Challenge sequences: random, JSON-able, photosensitive-safe (WCAG 2.3.1)."""

from __future__ import annotations

import json
import random

import pytest

from facelive.challenge.sequence import (
    MAX_CHANGES_PER_SECOND,
    MAX_RED_RATIO,
    MIN_STEP_MS,
    PALETTE,
    Challenge,
    ChallengeError,
    check_photosensitive,
    new_challenge,
    red_ratio,
)


def _changes_in_any_second(ch: Challenge) -> int:
    starts = [s.start_ms for p, s in zip(ch.steps, ch.steps[1:], strict=False)
              if s.colour != p.colour]
    return max((sum(1 for c in starts if a <= c <= a + 1000) for a in starts), default=0)


@pytest.mark.parametrize("seed", range(50))
def test_new_challenge_is_safe_and_well_formed(seed: int) -> None:
    ch = new_challenge(rng=random.Random(seed))
    assert ch.mode == "flash" and len(ch.steps) == 10
    assert ch.steps[0].name == "dark" and ch.lead_ms == ch.steps[0].duration_ms
    assert all(s.duration_ms >= MIN_STEP_MS for s in ch.steps)
    assert _changes_in_any_second(ch) <= MAX_CHANGES_PER_SECOND
    assert all(red_ratio(s.colour) <= MAX_RED_RATIO for s in ch.steps)
    assert all(red_ratio(s.colour, linear=True) <= MAX_RED_RATIO for s in ch.steps)
    assert all(a.colour != b.colour for a, b in zip(ch.steps, ch.steps[1:], strict=False))
    names = [s.name for s in ch.steps[1:]]
    assert "white" in names and "dark" in names
    assert 4000 <= ch.total_ms <= 8000 and ch.capture_ms == ch.total_ms + ch.tail_ms
    t = 0
    for s in ch.steps:
        assert s.start_ms == t
        t = s.end_ms


def test_palette_has_no_saturated_red() -> None:
    # WCAG 2.2's working definition: a saturated red has R/(R+G+B) >= 0.8
    assert max(red_ratio(c) for c in PALETTE.values()) < 0.8
    assert max(red_ratio(c, linear=True) for c in PALETTE.values()) < 0.8


def test_challenges_are_unpredictable() -> None:
    a, b = new_challenge(), new_challenge()
    assert a.nonce != b.nonce and len(a.nonce) >= 22
    assert [s.to_dict() for s in a.steps] != [s.to_dict() for s in b.steps]


def test_json_round_trip() -> None:
    ch = new_challenge()
    back = Challenge.from_json(ch.to_json())
    assert back == ch
    d = json.loads(ch.to_json())
    assert set(d) >= {"nonce", "steps", "created_at", "mode", "total_ms", "capture_ms"}
    assert set(d["steps"][0]) == {"colour", "start_ms", "duration_ms", "name"}


def test_colour_at() -> None:
    ch = new_challenge(rng=random.Random(3))
    assert ch.colour_at(-1) is None
    assert ch.colour_at(0) == ch.steps[0].colour
    s = ch.steps[3]
    assert ch.colour_at(s.start_ms) == s.colour and ch.colour_at(s.end_ms - 1) == s.colour
    assert ch.colour_at(ch.total_ms + 100) == ch.steps[-1].colour  # kept during the tail


def _raw(steps: list[tuple[tuple[int, int, int], int]]) -> dict:
    out, t = [], 0
    for colour, dur in steps:
        out.append({"colour": list(colour), "start_ms": t, "duration_ms": dur})
        t += dur
    return {"nonce": "n", "steps": out, "created_at": 0}


def test_rejects_fast_changes() -> None:
    with pytest.raises(ChallengeError, match="at least 350 ms"):
        Challenge.from_dict(_raw([((255, 255, 255), 1000), ((40, 40, 40), 200)]))


def test_rejects_saturated_red() -> None:
    with pytest.raises(ChallengeError, match="too red"):
        Challenge.from_dict(_raw([((255, 255, 255), 1000), ((255, 0, 0), 500)]))
    with pytest.raises(ChallengeError, match="too red"):
        Challenge.from_dict(_raw([((255, 255, 255), 1000), ((255, 60, 40), 500)]))


def test_rejects_gaps_and_bad_shapes() -> None:
    d = _raw([((255, 255, 255), 1000), ((40, 40, 40), 500)])
    d["steps"][1]["start_ms"] = 1100
    with pytest.raises(ChallengeError, match="expected 1000"):
        Challenge.from_dict(d)
    with pytest.raises(ChallengeError):
        Challenge.from_dict({"nonce": "n", "steps": []})
    with pytest.raises(ChallengeError):
        Challenge.from_dict({"steps": [{"colour": [1, 2, 3], "start_ms": 0, "duration_ms": 400}]})
    with pytest.raises(ChallengeError):
        Challenge.from_dict(_raw([((256, 0, 0), 1000)]))
    with pytest.raises(ChallengeError):
        Challenge.from_json("not json")


def test_explicit_window_check() -> None:
    # 350 ms steps: the changes at 350, 700, 1050 fall in no closed one-second window together
    ok = Challenge.from_dict(_raw([((255, 255, 255), 350), ((40, 40, 40), 350),
                                   ((255, 255, 255), 350), ((40, 40, 40), 350)]))
    check_photosensitive(ok)


def test_steady_mode() -> None:
    ch = new_challenge(mode="steady")
    assert ch.mode == "steady" and len(ch.steps) == 1
    assert Challenge.from_dict(ch.to_dict()).mode == "steady"
    with pytest.raises(ChallengeError):
        new_challenge(mode="disco")  # type: ignore[arg-type]
