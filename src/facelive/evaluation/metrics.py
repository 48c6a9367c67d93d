"""Presentation-attack-detection error rates (ISO/IEC 30107-3) and ROC summaries.

Score convention: higher = more live; a sample is **accepted as live when score >= threshold**.

- APCER(type) = share of that attack type's samples accepted (ISO/IEC 30107-3, clause 13);
  ``APCER_max`` is the worst type (the standard reports the maximum over PAI species).
- BPCER = share of bona fide (live) samples rejected.
- ACER = (APCER_max + BPCER) / 2 (the "average classification error rate" of the ISO/IEC 30107-3
  draft used by most papers, e.g. Boulkenafet et al., OULU-NPU, FG 2017).
- FAR = share of all attack samples accepted (pooled over types), FRR = BPCER,
  HTER = (FAR + FRR) / 2 at a threshold fixed beforehand (Chingovska et al., BIOSIG 2012).
- EER: the ROC is the step curve of (FAR(t), FRR(t)) over every distinct score t (plus t = +inf);
  the EER is where the straight segment between the two ROC points on either side of FAR = FRR
  crosses that line (linear interpolation between adjacent operating points).
- :func:`eer_threshold`: the operating point where FAR and FRR are closest, returned as the
  midpoint between that score and the next lower distinct score (so it keeps that operating point
  on the data it was computed from and does not sit exactly on a sample's score).
- AUC = P(live score > attack score) + 0.5 P(tie) (Mann-Whitney U / (n_live n_attack)).

Empty classes: a rate whose denominator is zero is NaN in the array functions and ``None`` (JSON
null) in :func:`compute_metrics`. Samples whose score is ``None`` (no decision: no face, error,
timeout) are counted in ``n_no_decision`` and excluded from every rate.

>>> live, attacks = [0.9, 0.8, 0.7, 0.4], [0.1, 0.3, 0.5, 0.75]
>>> bpcer(live, 0.6), apcer(attacks, 0.6)      # one live rejected, one attack accepted
(0.25, 0.25)
>>> eer(live, attacks), eer_threshold(live, attacks), auc(live, attacks)
(0.25, 0.6, 0.8125)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy.stats import rankdata

ArrayLike = Sequence[float] | np.ndarray


def _arr(x: ArrayLike) -> np.ndarray:
    a = np.asarray(x, dtype=np.float64).ravel()
    if a.size and not np.all(np.isfinite(a)):
        raise ValueError("scores must be finite")
    return a


def bpcer(live_scores: ArrayLike, threshold: float) -> float:
    """Share of live samples rejected (score < threshold): BPCER, also FRR.

    Parameters
    ----------
    live_scores : array_like
        Scores of the bona fide (live) samples, P(live) or any score where higher = more live.
    threshold : float
        Accepted as live when score >= threshold.

    Returns
    -------
    float
        In [0, 1]; NaN without live samples.
    """
    a = _arr(live_scores)
    return float(np.mean(a < threshold)) if a.size else math.nan


def apcer(attack_scores: ArrayLike, threshold: float) -> float:
    """Share of attack samples accepted (score >= threshold): APCER of one type, or FAR pooled.

    Parameters
    ----------
    attack_scores : array_like
        Scores of the attack samples.
    threshold : float
        Accepted as live when score >= threshold.

    Returns
    -------
    float
        In [0, 1]; NaN without attack samples.
    """
    a = _arr(attack_scores)
    return float(np.mean(a >= threshold)) if a.size else math.nan


def roc(live_scores: ArrayLike, attack_scores: ArrayLike
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ROC as operating points at +inf and at every distinct score.

    Parameters
    ----------
    live_scores : array_like
        Scores of the bona fide (live) samples, P(live) or any score where higher = more live.
    attack_scores : array_like
        Scores of the attack samples.

    Returns
    -------
    thresholds : numpy.ndarray
        +inf, then every distinct score, descending.
    far : numpy.ndarray
        Share of attacks accepted at each threshold (NaN without attacks).
    frr : numpy.ndarray
        Share of live samples rejected at each threshold (NaN without live samples).
    """
    live, att = np.sort(_arr(live_scores)), np.sort(_arr(attack_scores))
    t = np.unique(np.concatenate([live, att]))[::-1]
    t = np.concatenate([[np.inf], t])
    far = (att.size - np.searchsorted(att, t, side="left")) / max(att.size, 1)
    frr = np.searchsorted(live, t, side="left") / max(live.size, 1)
    if not att.size:
        far = np.full_like(t, np.nan)
    if not live.size:
        frr = np.full_like(t, np.nan)
    return t, far, frr


def eer(live_scores: ArrayLike, attack_scores: ArrayLike) -> float:
    """Equal error rate, linearly interpolated on the ROC (see the module docstring).

    Parameters
    ----------
    live_scores : array_like
        Scores of the bona fide (live) samples, P(live) or any score where higher = more live.
    attack_scores : array_like
        Scores of the attack samples.

    Returns
    -------
    float
        In [0, 1]; NaN when a class is empty.
    """
    _, far, frr = roc(live_scores, attack_scores)
    if np.isnan(far[0]) or np.isnan(frr[0]):
        return math.nan
    d = frr - far  # non-increasing: from 1 at t = +inf to -1..0 at the lowest score
    k = int(np.argmax(d <= 0))
    if d[k] == 0 or k == 0:
        return float(far[k])
    a = d[k - 1] / (d[k - 1] - d[k])
    return float(far[k - 1] + a * (far[k] - far[k - 1]))


def eer_threshold(live_scores: ArrayLike, attack_scores: ArrayLike) -> float:
    """Threshold where FAR and FRR are closest (ties: lowest FAR + FRR, then the highest score).

    Parameters
    ----------
    live_scores : array_like
        Scores of the bona fide (live) samples, P(live) or any score where higher = more live.
    attack_scores : array_like
        Scores of the attack samples.

    Returns
    -------
    float
        The midpoint between that score and the next lower distinct score (so it keeps that
        operating point on these scores); NaN when a class is empty.
    """
    t, far, frr = roc(live_scores, attack_scores)
    if t.size == 1 or np.isnan(far[0]) or np.isnan(frr[0]):
        return math.nan
    t, far, frr = t[1:], far[1:], frr[1:]
    order = np.lexsort((-t, far + frr, np.abs(far - frr)))
    k = int(order[0])
    return float((t[k] + t[k + 1]) / 2) if k + 1 < t.size else float(t[k])


def threshold_for_apcer(live_scores: ArrayLike, attack_scores: ArrayLike,
                        target_apcer: float,
                        attack_types: Sequence[str | None] | None = None) -> float:
    """Lowest threshold whose APCER is <= ``target_apcer``: attacks pooled, or, with
    ``attack_types``, for every attack type (the worst-type APCER of ISO/IEC 30107-3).

    With the attack scores sorted in decreasing order a_1 >= a_2 >= ..., at most
    k = floor(target * n) attacks may be accepted, so the threshold must lie above a_(k+1); it is
    returned as the midpoint between a_(k+1) and the next higher distinct score (live or attack),
    or just above a_(k+1) when none is higher. ``target_apcer >= 1`` gives the lowest score.
    Per type, the answer is the largest of the per-type thresholds.

    Parameters
    ----------
    live_scores : array_like
        Scores of the bona fide (live) samples, P(live) or any score where higher = more live.
    attack_scores : array_like
        Scores of the attack samples.
    target_apcer : float
        The largest APCER allowed, in [0, 1].
    attack_types : sequence of str or None, optional
        The attack type of each attack score (``None`` counts as ``"unknown"``); given, the
        target holds for every type.

    Returns
    -------
    float
        The threshold; NaN without attack samples.

    Raises
    ------
    ValueError
        When ``target_apcer`` is outside [0, 1] or ``attack_types`` has the wrong length.
    """
    if not 0.0 <= target_apcer <= 1.0:
        raise ValueError(f"target_apcer must be in [0, 1], got {target_apcer}")
    if attack_types is not None:
        att_all = _arr(attack_scores)
        types = np.array([t or "unknown" for t in attack_types], dtype=object)
        if types.size != att_all.size:
            raise ValueError("attack_types must have one entry per attack score")
        per_type = [threshold_for_apcer(live_scores, att_all[types == t], target_apcer)
                    for t in sorted(set(types))]
        return max(per_type) if per_type else math.nan
    live, att = _arr(live_scores), np.sort(_arr(attack_scores))[::-1]
    if not att.size:
        return math.nan
    every = np.unique(np.concatenate([live, att]))
    k = int(np.floor(target_apcer * att.size + 1e-9))
    if k >= att.size:
        return float(every[0])
    a = att[k]
    higher = every[every > a]
    return float((a + higher[0]) / 2) if higher.size else float(np.nextafter(a, np.inf))

def threshold_for_bpcer(live_scores: ArrayLike, target_bpcer: float) -> float:
    """Highest threshold whose BPCER on ``live_scores`` is <= ``target_bpcer`` (calibration on
    bona fide frames only).

    With the live scores sorted increasingly l_1 <= l_2 <= ..., at most k = floor(target * n) may
    be rejected, so the threshold is the midpoint between l_k and l_(k+1) (l_1 itself when k = 0;
    ties can only lower the BPCER).

    Parameters
    ----------
    live_scores : array_like
        Scores of the bona fide (live) samples, P(live) or any score where higher = more live.
    target_bpcer : float
        The largest BPCER allowed, in [0, 1).

    Returns
    -------
    float
        The threshold; NaN without live scores.

    Raises
    ------
    ValueError
        When ``target_bpcer`` is outside [0, 1).
    """
    if not 0.0 <= target_bpcer < 1.0:
        raise ValueError(f"target_bpcer must be in [0, 1), got {target_bpcer}")
    live = np.sort(_arr(live_scores))
    if not live.size:
        return math.nan
    k = int(np.floor(target_bpcer * live.size + 1e-9))
    if k == 0:
        return float(live[0])
    return float((live[k - 1] + live[k]) / 2)


def auc(live_scores: ArrayLike, attack_scores: ArrayLike) -> float:
    """Area under the ROC: P(live > attack) + 0.5 P(tie) (Mann-Whitney U).

    Parameters
    ----------
    live_scores : array_like
        Scores of the bona fide (live) samples, P(live) or any score where higher = more live.
    attack_scores : array_like
        Scores of the attack samples.

    Returns
    -------
    float
        In [0, 1] (0.5: chance; below: inverted); NaN when a class is empty.
    """
    live, att = _arr(live_scores), _arr(attack_scores)
    if not live.size or not att.size:
        return math.nan
    ranks = rankdata(np.concatenate([live, att]))  # average ranks handle ties
    u = ranks[: live.size].sum() - live.size * (live.size + 1) / 2
    return float(u / (live.size * att.size))


def _none(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def compute_metrics(scores: Sequence[float | None], labels: Sequence[str],
                    attack_types: Sequence[str | None], threshold: float) -> dict[str, Any]:
    """All metrics of one level (frames or videos) at ``threshold``.

    Parameters
    ----------
    scores : sequence of float or None
        One score per sample; ``None`` for a sample without a decision (counted in
        ``n_no_decision``, excluded from every rate).
    labels : sequence of str
        ``"live"`` or ``"spoof"`` per sample.
    attack_types : sequence of str or None
        Each attack's PAI species (ignored for live samples; ``None`` for an attack counts as
        ``"unknown"``).
    threshold : float
        Accepted as live when score >= threshold.

    Returns
    -------
    dict
        Keys: APCER (per type), APCER_max, BPCER, ACER, FAR, FRR, HTER, EER, EER_threshold,
        AUC, n_live, n_spoof, n_no_decision (+ per class), n_per_type, accuracy and the
        thesis-style confusion percentages (positive = live, share of decided samples); an
        undefined rate is ``None``.

    Raises
    ------
    ValueError
        When the sequences differ in length or a label is neither ``"live"`` nor ``"spoof"``.

    Examples
    --------
    >>> m = compute_metrics([0.9, 0.8, None, 0.1, 0.7], ["live", "live", "live", "spoof", "spoof"],
    ...                     [None, None, None, "print", "mobile"], threshold=0.6)
    >>> m["APCER"], m["APCER_max"], m["BPCER"], m["ACER"], m["n_no_decision"]
    ({'mobile': 1.0, 'print': 0.0}, 1.0, 0.0, 0.5, 1)
    """
    if not (len(scores) == len(labels) == len(attack_types)):
        raise ValueError("scores, labels and attack_types must have the same length")
    bad = {lab for lab in labels if lab not in ("live", "spoof")}
    if bad:
        raise ValueError(f"unknown labels {sorted(bad)} (use 'live' or 'spoof')")
    decided = [i for i, s in enumerate(scores) if s is not None]
    sc = _arr([scores[i] for i in decided])
    lab = np.array([labels[i] for i in decided], dtype=object)
    typ = np.array([(attack_types[i] or "unknown") for i in decided], dtype=object)
    is_live = lab == "live"
    live, att = sc[is_live], sc[~is_live]
    types = sorted({(attack_types[i] or "unknown") for i, lb in enumerate(labels) if lb == "spoof"})
    per_type = {t: _none(apcer(att[typ[~is_live] == t], threshold)) for t in types}
    defined = [v for v in per_type.values() if v is not None]
    apcer_max = max(defined) if defined else None
    b = _none(bpcer(live, threshold))
    far = _none(apcer(att, threshold))
    tp = int(np.sum(live >= threshold))
    fn = int(live.size - tp)
    fp = int(np.sum(att >= threshold))
    tn = int(att.size - fp)
    n = sc.size

    def pct(k: int) -> float | None:
        return round(100.0 * k / n, 4) if n else None

    no_dec_live = sum(1 for s, lb in zip(scores, labels, strict=True) if s is None and lb == "live")
    return {
        "APCER": per_type,
        "APCER_max": apcer_max,
        "BPCER": b,
        "ACER": None if apcer_max is None or b is None else (apcer_max + b) / 2,
        "FAR": far,
        "FRR": b,
        "HTER": None if far is None or b is None else (far + b) / 2,
        "EER": _none(eer(live, att)),
        "EER_threshold": _none(eer_threshold(live, att)),
        "AUC": _none(auc(live, att)),
        "n_live": int(live.size),
        "n_spoof": int(att.size),
        "n_no_decision": len(scores) - n,
        "n_no_decision_live": no_dec_live,
        "n_no_decision_spoof": len(scores) - n - no_dec_live,
        "n_per_type": {t: int(np.sum(typ[~is_live] == t)) for t in types},
        "accuracy": None if not n else (tp + tn) / n,
        "confusion_pct": {"true_positive": pct(tp), "false_positive": pct(fp),
                          "true_negative": pct(tn), "false_negative": pct(fn)},
        "confusion": {"tp": tp, "fp": fp, "tn": tn, "fn": fn},
        "threshold": float(threshold),
    }
