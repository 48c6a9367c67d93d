"""Evaluation plots (matplotlib, Agg backend): ROC, DET and score histograms per attack type."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facelive.evaluation.metrics import roc


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _split(scores: Sequence[float | None], labels: Sequence[str],
           types: Sequence[str | None]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    live = np.array([s for s, lb in zip(scores, labels, strict=True)
                     if s is not None and lb == "live"], dtype=float)
    by: dict[str, list[float]] = {}
    for s, lb, t in zip(scores, labels, types, strict=True):
        if s is not None and lb == "spoof":
            by.setdefault(t or "unknown", []).append(s)
    return live, {k: np.array(v, dtype=float) for k, v in sorted(by.items())}


def plot_roc(path: Path, scores, labels, types, title: str = "ROC") -> Path | None:
    """ROC (1 - BPCER against APCER) for all attacks pooled and per attack type."""
    live, by = _split(scores, labels, types)
    if not live.size or not by:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    pooled = np.concatenate(list(by.values()))
    curves = [("all attacks", pooled), *by.items()] if len(by) > 1 else [("attacks", pooled)]
    for name, att in curves:
        _, far, frr = roc(live, att)
        ax.plot(far, 1 - frr, label=name, lw=2 if name in ("all attacks", "attacks") else 1)
    ax.plot([0, 1], [0, 1], "k:", lw=0.8)
    ax.set(xlabel="APCER (attacks accepted)", ylabel="1 - BPCER (live accepted)", title=title,
           xlim=(0, 1), ylim=(0, 1.01))
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_det(path: Path, scores, labels, types, title: str = "DET") -> Path | None:
    """DET curve: BPCER against APCER on normal-deviate axes (Martin et al., Eurospeech 1997)."""
    from scipy.stats import norm

    live, by = _split(scores, labels, types)
    if not live.size or not by:
        return None
    plt = _plt()
    eps = 1e-3
    fig, ax = plt.subplots(figsize=(5, 5))
    pooled = np.concatenate(list(by.values()))
    curves = [("all attacks", pooled), *by.items()] if len(by) > 1 else [("attacks", pooled)]
    for name, att in curves:
        _, far, frr = roc(live, att)
        ax.plot(norm.ppf(np.clip(far, eps, 1 - eps)), norm.ppf(np.clip(frr, eps, 1 - eps)),
                label=name)
    ticks = np.array([0.001, 0.01, 0.05, 0.2, 0.5, 0.8, 0.95, 0.99])
    ax.set_xticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{100 * t:g}" for t in ticks])
    lim = norm.ppf([eps, 1 - eps])
    ax.set(xlim=lim, ylim=lim, xlabel="APCER (%)", ylabel="BPCER (%)", title=title)
    ax.grid(True, lw=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_histograms(path: Path, scores, labels, types, threshold: float,
                    title: str = "Scores") -> Path | None:
    """Score histograms of live samples and of each attack type, with the threshold."""
    live, by = _split(scores, labels, types)
    if not live.size and not by:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    bins = np.linspace(0, 1, 41)
    lo = min([0.0, *(a.min() for a in [live, *by.values()] if a.size)])
    hi = max([1.0, *(a.max() for a in [live, *by.values()] if a.size)])
    if lo < 0 or hi > 1:
        bins = np.linspace(lo, hi, 41)
    if live.size:
        ax.hist(live, bins=bins, alpha=0.6, label=f"live (n={live.size})", density=True)
    for name, att in by.items():
        ax.hist(att, bins=bins, histtype="step", lw=1.5, label=f"{name} (n={att.size})",
                density=True)
    ax.axvline(threshold, color="k", ls="--", lw=1, label=f"threshold {threshold:.3f}")
    ax.set(xlabel="score (P(live))", ylabel="density", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_grouped_bars(path: Path, groups: Sequence[str], series: dict[str, Sequence[float | None]],
                      *, ylabel: str = "EER (%)", title: str = "", chance: float | None = 50.0
                      ) -> Path | None:
    """Grouped bar chart: one group per ``groups`` entry, one bar per series (values in the
    unit of ``ylabel``; ``None`` leaves a gap); a dotted line at ``chance``. Used for the
    generalisation protocols and the capture conditions."""
    if not groups or not series:
        return None
    plt = _plt()
    n = len(series)
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(6.0, 1.2 * len(groups) * max(1, n / 3)), 4))
    x = np.arange(len(groups))
    for i, (name, vals) in enumerate(series.items()):
        v = np.array([np.nan if a is None else float(a) for a in vals])
        bars = ax.bar(x - 0.4 + width * (i + 0.5), v, width, label=name)
        for b, val in zip(bars, v, strict=True):
            if np.isfinite(val):
                ax.annotate(f"{val:.1f}", (b.get_x() + b.get_width() / 2, val), ha="center",
                            va="bottom", fontsize=6)
    if chance is not None:
        ax.axhline(chance, color="k", ls=":", lw=0.8)
    top = max([float(a) for v in series.values() for a in v if a is not None] + [chance or 0, 1])
    ax.set_ylim(0, top * 1.35)  # room for the legend above the bars
    ax.set_xticks(x, groups, fontsize=8)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize=7, ncol=3, loc="upper center")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
