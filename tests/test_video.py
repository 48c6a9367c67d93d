"""Decision smoothing over the frames of a stream."""

from __future__ import annotations

import pytest

from facelive.video import DecisionSmoother


def test_moving_average_over_the_last_k_frames():
    sm = DecisionSmoother(3, threshold=0.5, margin=0.0)
    assert sm.update(None).live is None
    d = [sm.update(s) for s in (0.9, 0.8, 0.1, 0.2, 0.1)]
    assert d[0].value == pytest.approx(0.9) and d[0].live is True
    assert d[2].value == pytest.approx(0.6) and d[2].live is True
    assert d[3].value == pytest.approx(0.3667, abs=1e-3) and d[3].live is False
    assert d[4].frames == 3


def test_one_flickering_frame_does_not_flip_the_decision():
    sm = DecisionSmoother(5, threshold=0.5)
    raw, smooth = [], []
    for s in (0.9, 0.8, 0.2, 0.9, 0.85, 0.3, 0.9):
        raw.append(s >= 0.5)
        smooth.append(sm.update(s).live)
    assert raw.count(False) == 2
    assert all(smooth)


def test_hysteresis_needs_the_margin_to_switch():
    sm = DecisionSmoother(1, threshold=0.5, margin=0.1)
    assert sm.update(0.7).live is True
    assert sm.update(0.45).live is True  # inside the band: stays live
    assert sm.update(0.35).live is False
    assert sm.update(0.55).live is False  # inside the band: stays spoof
    assert sm.update(0.65).live is True


def test_majority_vote_and_min_frames():
    sm = DecisionSmoother(4, threshold=0.6, mode="majority", margin=0.0, min_frames=3)
    assert sm.update(0.9).live is None
    assert sm.update(0.1).live is None
    d = sm.update(0.7)
    assert d.value == pytest.approx(2 / 3) and d.live is True
    d = sm.update(0.2)
    assert d.value == pytest.approx(0.5) and d.live is True  # 2 of 4: not below 0.5
    assert sm.update(0.3).live is False  # votes 0,1,0,0


def test_missing_scores_are_skipped_and_reset_clears():
    sm = DecisionSmoother(2)
    sm.update(0.9)
    d = sm.update(float("nan"))
    assert d.frames == 1 and d.live is True
    sm.reset()
    assert sm.live is None and sm.update(None).frames == 0


@pytest.mark.parametrize("kw", [{"k": 0}, {"k": 3, "mode": "median"}, {"k": 3, "margin": -1},
                                {"k": 3, "min_frames": 4}])
def test_bad_arguments(kw):
    with pytest.raises(ValueError):
        DecisionSmoother(**kw)
