"""Score a dataset split with a liveness pipeline and report ISO/IEC 30107-3 metrics.

:func:`evaluate_scores` turns precomputed scores into the ``metrics.json`` structure (frame level
and, where samples share a recording, video level = mean score of the group's decided frames);
:func:`score_sample` scores one sample (the unit a distributed engine runs on its workers,
:mod:`facelive.distributed`) and :func:`score_samples` every sample here, with a progress bar;
:func:`run_evaluation` does both (with any scorer), picks the threshold (given, EER on a devel
split, or the pipeline's shipped one) and writes ``metrics.json``, ``report.md``, ``scores.csv``
and PNG plots.
"""

from __future__ import annotations

import csv
import json
import math
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facelive.datasets.base import Dataset, Sample
from facelive.encoding import json_default
from facelive.errors import DatasetError, FaceliveError
from facelive.evaluation.metrics import compute_metrics

LEVELS = ("frame", "video")


class _Pipeline(Protocol):
    threshold: float

    def check(self, source: Any) -> dict[str, Any]: ...


def video_scores(scores: Sequence[float | None], samples: Sequence[Sample]
                 ) -> tuple[list[float | None], list[str], list[str | None], list[str]]:
    """Mean score per group over its decided frames (``None`` when no frame was decided).

    Returns ``(scores, labels, attack_types, groups)`` with one entry per group, in first-seen
    order. A group mixing labels or attack types raises ``ValueError``.
    """
    acc: dict[str, list[float]] = {}
    info: dict[str, tuple[str, str | None]] = {}
    for s, smp in zip(scores, samples, strict=True):
        key = (smp.label, smp.attack_type)
        if info.setdefault(smp.group, key) != key:
            raise ValueError(f"group {smp.group!r} mixes labels or attack types")
        lst = acc.setdefault(smp.group, [])
        if s is not None:
            lst.append(float(s))
    groups = list(acc)
    return ([float(np.mean(acc[g])) if acc[g] else None for g in groups],
            [info[g][0] for g in groups], [info[g][1] for g in groups], groups)


def evaluate_scores(scores: Sequence[float | None], samples: Sequence[Sample],
                    threshold: float, *, video: bool | None = None) -> dict[str, Any]:
    """Metrics of precomputed scores (higher = more live; ``None`` = no decision).

    Returns ``{"threshold", "frame": {...}, "video": {...} | None}`` (the keys of
    :func:`facelive.evaluation.metrics.compute_metrics`). ``video=None`` adds the video level when
    some group holds more than one sample.
    """
    if len(scores) != len(samples):
        raise ValueError(f"{len(scores)} scores for {len(samples)} samples")
    if threshold is None or not math.isfinite(float(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold!r}")
    thr = float(threshold)
    out: dict[str, Any] = {
        "threshold": thr,
        "frame": compute_metrics(list(scores), [s.label for s in samples],
                                 [s.attack_type for s in samples], thr),
        "video": None,
    }
    if video is None:
        video = len({s.group for s in samples}) < len(samples)
    if video:
        vs, vl, vt, _ = video_scores(scores, samples)
        out["video"] = compute_metrics(vs, vl, vt, thr)
    return out


@dataclass(frozen=True)
class SampleScore:
    """What scoring one sample gives (:func:`score_sample`); a plain, picklable record."""

    score: float | None
    decision: str
    error: str | None
    """Error code or reason when ``score`` is ``None``."""
    load_ms: float
    """Reading + decoding the sample."""
    check_ms: float | None = None
    """Pipeline time on the decoded image; ``None`` when the sample could not be loaded."""
    tests: dict[str, float | None] | None = None
    """Each test's score, in the pipeline's order; ``None`` when the sample could not be loaded."""


def score_sample(pipe: _Pipeline, smp: Sample) -> SampleScore:
    """Decode ``smp`` (:meth:`Sample.load`) and run ``pipe.check`` on the image; never raises on
    bad input.

    A sample that cannot be loaded, or that the pipeline leaves undecided, gets score ``None`` and
    its error code or reason in :attr:`SampleScore.error`.
    """
    t0 = time.perf_counter()
    try:
        image = smp.load()
    except FaceliveError as exc:
        return SampleScore(None, "unknown", exc.code, (time.perf_counter() - t0) * 1e3)
    load_ms = (time.perf_counter() - t0) * 1e3
    t1 = time.perf_counter()
    res = pipe.check(image)
    check_ms = (time.perf_counter() - t1) * 1e3
    score = None if res.score is None else float(res.score)
    err = res.error_code or res.error or (res.reason if score is None else None)
    if score is None and not err:
        err = "no_decision"
    tests = {t: None if r is None or r.score is None else float(r.score)
             for t, r in (getattr(res, "tests", None) or {}).items()}
    return SampleScore(score, res.decision, err, load_ms, check_ms, tests)


@dataclass
class ScoreRun:
    """Outcome of scoring samples: one entry per sample, in order."""

    samples: list[Sample]
    scores: list[float | None] = field(default_factory=list)
    decisions: list[str] = field(default_factory=list)
    errors: list[str | None] = field(default_factory=list)  # error code / reason, if any
    check_ms: list[float] = field(default_factory=list)  # pipeline time per decoded image
    load_ms: list[float] = field(default_factory=list)  # reading + decoding the sample
    test_scores: dict[str, list[float | None]] = field(default_factory=dict)  # per test

    def add(self, s: SampleScore) -> None:
        """Append the next sample's :class:`SampleScore` (samples are added in order)."""
        self.load_ms.append(s.load_ms)
        self.scores.append(s.score)
        self.decisions.append(s.decision)
        self.errors.append(s.error)
        if s.check_ms is not None:
            self.check_ms.append(s.check_ms)
        n = len(self.scores) - 1
        for t in s.tests or {}:
            self.test_scores.setdefault(t, [None] * n)
        for t, lst in self.test_scores.items():
            lst.append((s.tests or {}).get(t))

    def error_counts(self) -> dict[str, int]:
        return dict(Counter(e for e in self.errors if e))

    def timing(self) -> dict[str, Any]:
        ms = np.asarray(self.check_ms, dtype=float)
        ld = np.asarray(self.load_ms, dtype=float)

        def pct(a: np.ndarray, q: float) -> float | None:
            return round(float(np.percentile(a, q)), 3) if a.size else None

        return {"per_image_ms_p50": pct(ms, 50), "per_image_ms_p90": pct(ms, 90),
                "per_image_ms_mean": round(float(ms.mean()), 3) if ms.size else None,
                "load_ms_p50": pct(ld, 50), "n_timed": int(ms.size)}


class SampleScorer(Protocol):
    """Scores samples in order: :func:`score_samples` bound to a pipeline, or another engine
    (``facelive.distributed.DaskScorer.score_samples`` scores them on a Dask cluster)."""

    def __call__(self, samples: Sequence[Sample], *, progress: bool = True,
                 description: str = "scoring") -> ScoreRun: ...


def progress_bar(enabled: bool = True, console: Any = None) -> Any:
    """The ``rich`` progress bar the scoring loops show (description, bar, n/total, elapsed,
    remaining); ``enabled=False`` gives one that draws nothing."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cols = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TimeRemainingColumn())
    return Progress(*cols, disable=not enabled, transient=False, console=console)


def score_samples(pipe: _Pipeline, samples: Sequence[Sample], *, progress: bool = True,
                  description: str = "scoring") -> ScoreRun:
    """Run :func:`score_sample` on every sample, in this process, with a progress bar.

    A sample that cannot be loaded, or that the pipeline leaves undecided, gets score ``None``
    and its error code or reason in :attr:`ScoreRun.errors`; nothing here raises on bad input.
    """
    run = ScoreRun(samples=list(samples))
    with progress_bar(progress) as bar:
        task = bar.add_task(description, total=len(run.samples))
        for smp in run.samples:
            run.add(score_sample(pipe, smp))
            bar.advance(task)
    return run


def _fmt(v: Any, pct: bool = True) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{100 * v:.2f}" if pct else f"{v:.4f}"
    return str(v)


def _table(levels: dict[str, dict[str, Any] | None]) -> list[str]:
    levels = {k: v for k, v in levels.items() if v}
    types = sorted({t for m in levels.values() for t in m["APCER"]})
    head = "| metric | " + " | ".join(levels) + " |"
    rows = [head, "|---|" + "---:|" * len(levels)]

    def row(name: str, get, pct: bool = True) -> None:
        rows.append(f"| {name} | " + " | ".join(_fmt(get(m), pct) for m in levels.values()) + " |")

    for t in types:
        row(f"APCER {t} (%)", lambda m, t=t: m["APCER"].get(t))
    for key in ("APCER_max", "BPCER", "ACER", "HTER", "EER"):
        row(f"{key} (%)", lambda m, k=key: m[k])
    row("AUC", lambda m: m["AUC"], pct=False)
    row("EER threshold", lambda m: m["EER_threshold"], pct=False)
    row("accuracy (%)", lambda m: m["accuracy"])
    for k in ("true_positive", "false_positive", "true_negative", "false_negative"):
        row(f"{k.replace('_', ' ')} (% of decided)",
            lambda m, k=k: None if m["confusion_pct"][k] is None
            else f"{m['confusion_pct'][k]:.2f}")
    for k in ("n_live", "n_spoof", "n_no_decision"):
        row(k, lambda m, k=k: m[k])
    return rows


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * float(v):.1f}%"


def comparison_table(rows: Sequence[tuple[str, dict[str, Any]]], level: str = "frame", *,
                     show_threshold: bool = False, show_no_decision: bool = False) -> str:
    """A Markdown table comparing evaluations, one row per ``(label, result)``, where ``result``
    is an :func:`evaluate_scores` result or a ``metrics.json`` (rows without ``level`` are
    skipped): APCER per attack type, worst APCER, BPCER, ACER, EER, AUC, live/spoof counts."""
    types = sorted({t for _, r in rows for t in (r.get(level) or {}).get("APCER", {})})
    head = ["evaluation", *(["threshold"] if show_threshold else []),
            *[f"APCER {t}" for t in types], "APCER max", "BPCER", "ACER", "EER", "AUC",
            "live/spoof", *(["no decision"] if show_no_decision else [])]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for label, r in rows:
        m = r.get(level)
        if not m:
            continue
        cells = [label, *([f"{r['threshold']:.4f}"] if show_threshold else []),
                 *[_pct(m["APCER"].get(t)) for t in types], _pct(m["APCER_max"]),
                 _pct(m["BPCER"]), _pct(m["ACER"]), _pct(m["EER"]),
                 "n/a" if m["AUC"] is None else f"{m['AUC']:.3f}", f"{m['n_live']}/{m['n_spoof']}",
                 *([str(m["n_no_decision"])] if show_no_decision else [])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(result: dict[str, Any], out: Path) -> Path:
    """Write ``report.md`` for a :func:`run_evaluation` result."""
    lines = [
        f"# facelive evaluation: {result.get('dataset')} / {result.get('split') or 'all splits'}",
        "",
        *([f"- command: `{result['command']}`"] if result.get("command") else []),
        f"- tests: {', '.join(result.get('tests') or [])}; protocol: {result.get('protocol')}",
        f"- threshold: {result['threshold']:.6f} ({result.get('threshold_source')}); "
        "a sample is accepted as live when score >= threshold",
        f"- samples: {result.get('n_samples')}; groups (videos): {result.get('n_groups')}",
        "",
        "Rates in %. APCER per attack type, APCER_max = worst type, ACER = (APCER_max + BPCER)/2,",
        "HTER = (FAR + FRR)/2 at the threshold; EER interpolated on the ROC; samples without a",
        "decision are counted in n_no_decision and excluded from the rates. Video level = mean",
        "score of each video's decided frames.",
        "",
        *_table({"frame": result["frame"], "video": result.get("video")}),
        "",
    ]
    t = result.get("timing") or {}
    if t:
        lines += ["## Timing", "",
                  f"- model load: {_fmt(t.get('model_load_s'), False)} s",
                  f"- per image (pipeline, decoded image): p50 {t.get('per_image_ms_p50')} ms, "
                  f"p90 {t.get('per_image_ms_p90')} ms over {t.get('n_timed')} images",
                  f"- reading + decoding a sample: p50 {t.get('load_ms_p50')} ms", ""]
    if result.get("errors"):
        lines += ["## Samples without a decision", "",
                  *(f"- {k}: {v}" for k, v in sorted(result["errors"].items())), ""]
    if result.get("threshold_from"):
        d = result["threshold_from"]
        lines += ["## Threshold", "",
                  f"EER threshold of {d['split']} ({d['n_samples']} samples, frame level): "
                  f"{d['threshold']:.6f}; {d['split']} EER {_fmt(d['EER'])} %.", ""]
    if result.get("plots"):
        lines += ["## Plots", "", *(f"![{p}]({p})" for p in result["plots"]), ""]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _plots(result: dict[str, Any], run: ScoreRun, samples: list[Sample], out: Path) -> list[str]:
    from facelive.evaluation import plots

    thr = result["threshold"]
    made: list[str] = []
    levels = [("frame", run.scores, [s.label for s in samples], [s.attack_type for s in samples])]
    if result.get("video"):
        vs, vl, vt, _ = video_scores(run.scores, samples)
        levels.append(("video", vs, vl, vt))
    for level, sc, lab, typ in levels:
        suffix = "" if level == "frame" else "_video"
        for name, fn, kw in (("roc", plots.plot_roc, {}), ("det", plots.plot_det, {}),
                             ("hist", plots.plot_histograms, {"threshold": thr})):
            p = fn(out / f"{name}{suffix}.png", sc, lab, typ, title=f"{name.upper()} ({level})",
                   **kw)
            if p is not None:
                made.append(p.name)
    return made


def run_evaluation(dataset: Dataset, pipe: _Pipeline, out: str | Path, *,
                   threshold: float | None = None, threshold_from: Dataset | None = None,
                   progress: bool = True, plots: bool = True, limit: int | None = None,
                   extra: dict[str, Any] | None = None,
                   scorer: SampleScorer | None = None) -> dict[str, Any]:
    """Score ``dataset`` with ``pipe``, choose the threshold, write the report into ``out``.

    Threshold: ``threshold`` if given; else the frame-level EER threshold of ``threshold_from``
    (scored with the same pipeline; reused when it is the same split); else ``pipe.threshold``.
    ``limit`` keeps about that many samples, as whole, evenly spaced videos (quick checks).
    ``scorer`` scores the samples (default: :func:`score_samples` with ``pipe``, in this
    process); ``pipe`` then only gives ``threshold``, ``test_names`` and ``load_ms``. Everything
    after the scores (threshold, metrics, plots, report) is the same for every scorer.
    """
    if scorer is None:
        def scorer(samples: Sequence[Sample], *, progress: bool = True,
                   description: str = "scoring") -> ScoreRun:
            return score_samples(pipe, samples, progress=progress, description=description)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    samples = _subset(dataset.samples(), limit)
    if not samples:
        raise DatasetError(f"{dataset.name}: no samples in {dataset.root} "
                           f"(split {dataset.split}, protocol {dataset.protocol})")
    run = scorer(samples, progress=progress,
                 description=f"{dataset.name} {dataset.split or ''}".strip())
    result: dict[str, Any] = {"dataset": dataset.name, "root": str(dataset.root),
                              "split": dataset.split, "protocol": dataset.protocol}
    if threshold is not None:
        thr, source = float(threshold), "given"
    elif threshold_from is not None:
        same = (threshold_from.split == dataset.split and threshold_from.root == dataset.root
                and limit is None)
        if same:
            d_samples, d_scores = samples, run.scores
        else:
            d_samples = _subset(threshold_from.samples(), limit)
            d_scores = scorer(d_samples, progress=progress,
                              description=f"{threshold_from.split} (threshold)").scores
        d = evaluate_scores(d_scores, d_samples, 0.5, video=False)["frame"]
        if d["EER_threshold"] is None:
            raise DatasetError(f"cannot compute an EER threshold on {threshold_from.split}: "
                               f"{d['n_live']} live and {d['n_spoof']} scored attack samples")
        thr, source = d["EER_threshold"], f"EER threshold of {threshold_from.split}"
        result["threshold_from"] = {"split": threshold_from.split, "threshold": thr,
                                    "EER": d["EER"], "n_samples": len(d_samples)}
    else:
        thr, source = float(pipe.threshold), "shipped"
    result.update(evaluate_scores(run.scores, samples, thr,
                                  video=dataset.has_videos or None))
    result.update({
        "threshold_source": source,
        "n_samples": len(samples),
        "n_groups": len({s.group for s in samples}),
        "timing": {"model_load_s": (round(pipe.load_ms / 1e3, 4)
                                    if isinstance(getattr(pipe, "load_ms", None), float) else None),
                   **run.timing()},
        "errors": run.error_counts(),
        "tests": list(getattr(pipe, "test_names", [])),
        "command": "",
        "missing": len(dataset.missing),
        "skipped": len(dataset.skipped),
    })
    if extra:
        extra = dict(extra)
        result["timing"].update(extra.pop("timing", {}))
        result.update(extra)
    result["plots"] = _plots(result, run, samples, out) if plots else []
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["key", "split", "label", "attack_type", "subject", "group", "score",
                    "decision", "error"])
        for smp, sc, dec, err in zip(samples, run.scores, run.decisions, run.errors, strict=True):
            w.writerow([smp.key, smp.split, smp.label, smp.attack_type or "", smp.subject,
                        smp.group, "" if sc is None else f"{sc:.6f}", dec, err or ""])
    (out / "metrics.json").write_text(json.dumps(result, indent=2, default=json_default),
                                      encoding="utf-8")
    write_report(result, out)
    return result


def _subset(samples: list[Sample], limit: int | None) -> list[Sample]:
    """About ``limit`` samples made of whole, evenly spaced groups (videos) of ``samples``."""
    if limit is None or limit >= len(samples):
        return samples
    if limit < 1:
        raise DatasetError("limit must be >= 1")
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.group, []).append(s)
    keys = list(groups)
    n_keep = min(len(keys), max(1, round(limit * len(keys) / len(samples))))
    idx = np.unique(np.linspace(0, len(keys) - 1, n_keep).round().astype(int))
    return [s for i in idx for s in groups[keys[i]]]
