"""Presentation-attack-detection error rates (ISO/IEC 30107-3) on P(live) scores.

A sample is accepted as live when ``score >= threshold``. APCER is the share of attacks accepted
(per attack type; the overall APCER is the worst type, as ISO/IEC 30107-3 prescribes), BPCER the
share of live samples rejected, ACER = (APCER + BPCER) / 2 (Chingovska et al. use HTER for the
same mean). EER is where the attack-accept and live-reject rates cross.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np


def eer_threshold(scores: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """``(eer, threshold)``: the threshold where attack-accept and live-reject rates are closest."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels).astype(bool)
    if y.all() or (~y).all():
        raise ValueError("EER needs both live and attack samples")
    cand = np.unique(np.concatenate([s, [np.inf]]))
    live = np.sort(s[y])
    att = np.sort(s[~y])
    frr = np.searchsorted(live, cand, side="left") / live.size  # live below threshold
    far = 1.0 - np.searchsorted(att, cand, side="left") / att.size  # attacks at/above threshold
    i = int(np.argmin(np.abs(far - frr)))
    # any threshold in (previous score, cand[i]] gives the same rates: take the midpoint
    t = float(cand[i]) if i == 0 else float((cand[i - 1] + min(cand[i], 1.0)) / 2.0)
    return float((far[i] + frr[i]) / 2.0), t


def pad_metrics(scores: np.ndarray, labels: np.ndarray, attack_types: list[str] | np.ndarray,
                threshold: float) -> dict:
    """APCER per attack type and overall (worst type), BPCER and ACER at ``threshold``, plus EER."""
    s = np.asarray(scores, np.float64)
    y = np.asarray(labels).astype(bool)
    types = np.asarray(attack_types)
    accept = s >= threshold
    per_type = {
        str(t): float(accept[(~y) & (types == t)].mean())
        for t in sorted(set(types[~y].tolist()))
    }
    apcer = max(per_type.values()) if per_type else float("nan")
    bpcer = float((~accept[y]).mean()) if y.any() else float("nan")
    out = {
        "threshold": float(threshold),
        "n_live": int(y.sum()),
        "n_attack": int((~y).sum()),
        "apcer": apcer,
        "apcer_per_type": per_type,
        "apcer_all_attacks": float(accept[~y].mean()) if (~y).any() else float("nan"),
        "bpcer": bpcer,
        "acer": (apcer + bpcer) / 2.0,
    }
    if y.any() and (~y).any():
        out["eer"], out["eer_threshold"] = eer_threshold(s, y)
    return out


def video_scores(scores: np.ndarray, groups: list[str], labels: np.ndarray,
                 attack_types: list[str]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Mean score per group (video); returns ``(scores, labels, attack_types)`` per group."""
    acc: dict[str, list[float]] = defaultdict(list)
    meta: dict[str, tuple[int, str]] = {}
    for s, g, y, t in zip(scores, groups, labels, attack_types, strict=True):
        acc[g].append(float(s))
        meta[g] = (int(y), str(t))
    keys = sorted(acc)
    return (np.array([np.mean(acc[k]) for k in keys]), np.array([meta[k][0] for k in keys]),
            [meta[k][1] for k in keys])
