"""PAD error rates used to choose and report the CNN's threshold."""

from __future__ import annotations

import numpy as np
import pytest

from facelive.training.metrics import eer_threshold, pad_metrics, video_scores


def test_perfect_separation_has_zero_eer_and_a_threshold_in_the_gap():
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    y = np.array([0, 0, 0, 1, 1])
    eer, thr = eer_threshold(s, y)
    assert eer == 0.0 and 0.3 < thr <= 0.8


def test_eer_of_overlapping_scores():
    s = np.array([0.1, 0.4, 0.6, 0.35, 0.7, 0.9])
    y = np.array([0, 0, 0, 1, 1, 1])
    eer, thr = eer_threshold(s, y)
    assert eer == pytest.approx(1 / 3)
    far = (s[y == 0] >= thr).mean()
    frr = (s[y == 1] < thr).mean()
    assert far == pytest.approx(frr)


def test_pad_metrics_per_attack_type():
    s = np.array([0.9, 0.8, 0.2, 0.7, 0.1, 0.1, 0.6, 0.3])
    y = np.array([1, 1, 1, 0, 0, 0, 0, 0])
    t = ["live", "live", "live", "print", "print", "mobile", "mobile", "mobile"]
    m = pad_metrics(s, y, t, 0.5)
    assert m["apcer_per_type"] == {"mobile": pytest.approx(1 / 3), "print": 0.5}
    assert m["apcer"] == 0.5 and m["bpcer"] == pytest.approx(1 / 3)
    assert m["acer"] == pytest.approx((0.5 + 1 / 3) / 2)
    with pytest.raises(ValueError):
        eer_threshold(s[:3], y[:3])


def test_video_scores_average_frames():
    vs, vy, vt = video_scores([0.2, 0.4, 0.9], ["a", "a", "b"], [0, 0, 1],
                              ["print", "print", "live"])
    np.testing.assert_allclose(vs, [0.3, 0.9])
    assert vy.tolist() == [0, 1] and vt == ["print", "live"]
