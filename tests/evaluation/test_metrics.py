"""Metric functions on hand-computed cases (ties, empty classes, None scores)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from facelive.evaluation.metrics import (
    apcer,
    auc,
    bpcer,
    compute_metrics,
    eer,
    eer_threshold,
    roc,
    threshold_for_apcer,
)


def test_rates_at_threshold_count_ties_as_accepted() -> None:
    assert bpcer([0.2, 0.5, 0.9], 0.5) == pytest.approx(1 / 3)  # only 0.2 rejected
    assert apcer([0.5, 0.1, 0.7, 0.3], 0.5) == pytest.approx(0.5)  # 0.5 and 0.7 accepted
    assert math.isnan(bpcer([], 0.5)) and math.isnan(apcer([], 0.5))


def test_roc_points() -> None:
    t, far, frr = roc([0.6, 0.8, 0.9], [0.1, 0.3, 0.7])
    assert t[0] == np.inf
    assert t[1:].tolist() == [0.9, 0.8, 0.7, 0.6, 0.3, 0.1]
    assert far.tolist() == pytest.approx([0, 0, 0, 1 / 3, 1 / 3, 2 / 3, 1])
    assert frr.tolist() == pytest.approx([1, 2 / 3, 1 / 3, 1 / 3, 0, 0, 0])


def test_eer_exact_crossing() -> None:
    # at t = 0.7: FAR = 1/3 (0.7 accepted), FRR = 1/3 (0.6 rejected)
    assert eer([0.6, 0.8, 0.9], [0.1, 0.3, 0.7]) == pytest.approx(1 / 3)
    # FAR == FRR only at 0.7; the threshold is the midpoint to the next lower score, 0.6
    thr = eer_threshold([0.6, 0.8, 0.9], [0.1, 0.3, 0.7])
    assert thr == pytest.approx((0.7 + 0.6) / 2)


def test_eer_interpolated_with_ties() -> None:
    live, att = [0.5, 0.5], [0.5, 0.1]
    # ROC: t=inf (FAR 0, FRR 1); t=0.5 (FAR 1/2, FRR 0): d goes 1 -> -1/2, crossing at a = 2/3
    assert eer(live, att) == pytest.approx(1 / 3)
    # pairs: (0.5,0.5) tie x2 -> 0.5 each, (0.5,0.1) win x2 -> AUC = 3/4
    assert auc(live, att) == pytest.approx(0.75)
    assert eer_threshold(live, att) == pytest.approx(0.3)


def test_perfect_and_inverted_separation() -> None:
    assert eer([0.8, 0.9], [0.1, 0.2]) == 0.0
    assert auc([0.8, 0.9], [0.1, 0.2]) == 1.0
    assert eer_threshold([0.8, 0.9], [0.1, 0.2]) == pytest.approx(0.5)
    assert auc([0.1], [0.9]) == 0.0
    assert eer([0.1], [0.9]) == pytest.approx(1.0)
    assert auc([0.4, 0.4], [0.4]) == 0.5


def test_empty_class_gives_nan() -> None:
    assert math.isnan(eer([], [0.1])) and math.isnan(auc([0.3], []))
    assert math.isnan(eer_threshold([0.2], []))


def test_compute_metrics_hand_case() -> None:
    scores = [0.9, 0.4, 0.8, None, 0.6, 0.2, 0.7, 0.1, None]
    labels = ["live", "live", "live", "live", "spoof", "spoof", "spoof", "spoof", "spoof"]
    types = [None, None, None, None, "print", "print", "mobile", "mobile", "mobile"]
    m = compute_metrics(scores, labels, types, threshold=0.5)
    assert m["n_live"] == 3 and m["n_spoof"] == 4 and m["n_no_decision"] == 2
    assert m["n_no_decision_live"] == 1 and m["n_no_decision_spoof"] == 1
    assert m["n_per_type"] == {"mobile": 2, "print": 2}
    assert m["APCER"] == {"mobile": 0.5, "print": 0.5}
    assert m["APCER_max"] == 0.5
    assert m["BPCER"] == pytest.approx(1 / 3)
    assert m["ACER"] == pytest.approx((0.5 + 1 / 3) / 2)
    assert m["FAR"] == 0.5 and m["HTER"] == pytest.approx((0.5 + 1 / 3) / 2)
    # tp: 0.9, 0.8; fn: 0.4; fp: 0.6, 0.7; tn: 0.2, 0.1 -> accuracy 4/7
    assert m["confusion"] == {"tp": 2, "fp": 2, "tn": 2, "fn": 1}
    assert m["accuracy"] == pytest.approx(4 / 7)
    assert m["confusion_pct"]["false_negative"] == pytest.approx(100 / 7, abs=1e-3)
    # live {0.4,0.8,0.9} vs attack {0.1,0.2,0.6,0.7}: wins 0.4>0.1,0.2; 0.8,0.9 > all -> 10/12
    assert m["AUC"] == pytest.approx(10 / 12)


def test_compute_metrics_worst_type_and_empty_classes() -> None:
    m = compute_metrics([0.9, 0.6, 0.1], ["live", "spoof", "spoof"],
                        [None, "highdef", "print"], 0.5)
    assert m["APCER"] == {"highdef": 1.0, "print": 0.0} and m["APCER_max"] == 1.0
    assert m["ACER"] == 0.5 and m["FAR"] == 0.5
    only_live = compute_metrics([0.9, 0.1], ["live", "live"], [None, None], 0.5)
    assert only_live["APCER"] == {} and only_live["APCER_max"] is None
    assert only_live["ACER"] is None and only_live["EER"] is None and only_live["AUC"] is None
    assert only_live["BPCER"] == 0.5
    # an attack type whose every sample got no decision: listed with APCER None
    m = compute_metrics([0.9, None], ["live", "spoof"], [None, "mask"], 0.5)
    assert m["APCER"] == {"mask": None} and m["APCER_max"] is None and m["n_spoof"] == 0
    empty = compute_metrics([], [], [], 0.5)
    assert empty["accuracy"] is None and empty["n_live"] == 0


def test_compute_metrics_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        compute_metrics([0.1], ["real"], [None], 0.5)
    with pytest.raises(ValueError):
        compute_metrics([0.1, 0.2], ["live"], [None], 0.5)
    with pytest.raises(ValueError):
        eer([float("nan")], [0.1])


def test_threshold_for_apcer() -> None:
    live, att = [0.9, 0.8, 0.2], [0.7, 0.6, 0.1, 0.05]
    t = threshold_for_apcer(live, att, 0.25)  # one of four attacks may pass: above 0.6
    assert t == pytest.approx(0.65) and apcer(att, t) == 0.25
    assert threshold_for_apcer(live, att, 0.0) == pytest.approx(0.75)  # above 0.7, below 0.8
    assert threshold_for_apcer(live, att, 1.0) == 0.05
    t = threshold_for_apcer([0.1], [0.5, 0.5], 0.0)  # ties, nothing higher: just above 0.5
    assert t > 0.5 and apcer([0.5, 0.5], t) == 0.0
    assert math.isnan(threshold_for_apcer([0.1], [], 0.1))
    with pytest.raises(ValueError):
        threshold_for_apcer([0.1], [0.2], 1.5)


def test_threshold_for_apcer_worst_type() -> None:
    live = [0.9]
    att = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]
    types = ["print"] * 4 + ["mobile"] * 2
    # pooled: 1 of 6 may pass -> above 0.5, midpoint to 0.6
    assert threshold_for_apcer(live, att, 0.25) == pytest.approx(0.55)
    # per type: print may pass 1 of 4 (above 0.3: 0.35), mobile 0 of 2 (above 0.6: midpoint to
    # the live 0.9 = 0.75); the worst type decides
    assert threshold_for_apcer(live, att, 0.25, types) == pytest.approx(0.75)
    assert threshold_for_apcer(live, att[:4], 0.25, types[:4]) == pytest.approx(0.35)
    with pytest.raises(ValueError):
        threshold_for_apcer(live, att, 0.25, types[:3])


def test_evaluate_scores_reexported() -> None:
    from facelive.datasets import Sample
    from facelive.evaluation import evaluate_scores

    smp = [Sample(key="a", label="live", attack_type=None, subject="s", group="a", split="devel")]
    assert evaluate_scores([0.7], smp, threshold=0.5)["frame"]["BPCER"] == 0.0


def test_threshold_for_bpcer() -> None:
    from facelive.evaluation import bpcer, threshold_for_bpcer

    live = [0.9, 0.1, 0.5, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6, 0.35]
    # 10 live frames, 10% may be rejected: the lowest one, threshold midway to the next
    t = threshold_for_bpcer(live, 0.1)
    assert t == pytest.approx(0.15) and bpcer(live, t) == 0.1
    assert threshold_for_bpcer(live, 0.0) == 0.1 and bpcer(live, 0.1) == 0.0
    t = threshold_for_bpcer(live, 0.25)  # floor(2.5) = 2 may be rejected
    assert bpcer(live, t) == 0.2 and t == pytest.approx(0.25)
    assert bpcer([0.5, 0.5, 0.5, 0.9], threshold_for_bpcer([0.5, 0.5, 0.5, 0.9], 0.3)) == 0.0
    assert math.isnan(threshold_for_bpcer([], 0.1))
    with pytest.raises(ValueError):
        threshold_for_bpcer(live, 1.0)
