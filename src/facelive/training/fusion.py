"""Training the score fusion on Replay-Attack devel, with cross-validation inside devel.

The tests were trained on the *train* splits, so their devel scores are unseen data for them;
the fusion is fitted on those devel scores. To report honest numbers for a model fitted on devel,
devel is split into subject-disjoint folds (GroupKFold by client): every devel frame is scored by a
fusion fitted on the other clients (out-of-fold scores). The operating point is chosen on the
out-of-fold scores by :func:`operating_point` (worst-type APCER at most a target, security first),
and the shipped model is then fitted on all of devel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facelive.datasets import Sample
from facelive.diskcache import cached_arrays, digest
from facelive.fusion.model import FusionModel, LinearFusion, all_subsets, fit_linear


def operating_point(live_scores: np.ndarray, attack_scores: np.ndarray,
                    attack_types: Sequence[str | None], target_apcer: float) -> float:
    """Security-first operating point: the stricter of the EER threshold and the lowest threshold
    whose worst-type APCER is <= ``target_apcer``.

    ``target_apcer`` is an upper bound on APCER, not a goal: where the EER point already accepts
    fewer attacks (well-separated scores) it is kept, so attacks are never let through just to
    reach the target.
    """
    from facelive.evaluation import eer_threshold, threshold_for_apcer

    t_apcer = threshold_for_apcer(live_scores, attack_scores, target_apcer, attack_types)
    t_eer = eer_threshold(live_scores, attack_scores)
    finite = [t for t in (t_apcer, t_eer) if np.isfinite(t)]
    return float(max(finite)) if finite else 0.5


def score_tests(samples: Sequence[Sample], tests: Sequence[str], *, name: str,
                use_cache: bool = True) -> dict[str, np.ndarray]:
    """Each test's P(live) on each sample (NaN where the test gave no score), cached on disk."""
    from rich.progress import Progress

    from facelive import modelstore
    from facelive.pipeline import Pipeline
    from facelive.training.quality import code_hash

    parts: list[bytes | str] = ["\n".join(s.key for s in samples)]
    pkg = Path(modelstore.__file__).resolve().parent
    sources = {"cnn": ("liveness/cnn.py", "face/detection.py"),
               "face3d": ("liveness/face3d/__init__.py", "liveness/face3d/voxel.py",
                          "face/mesh.py", "face/detection.py")}
    for t in sorted(tests):  # the model files each test would load (see modelstore.find_folder)
        names = sorted({f.name for d in modelstore.model_dirs() for f in d.glob(f"{t}*")})
        parts += [modelstore.model_path(n).read_bytes() for n in names]
        parts += [(pkg / f).read_bytes() for f in sources.get(t, ())]  # and the code scoring
        if t == "quality":
            parts.append(code_hash())

    def compute() -> dict[str, np.ndarray]:
        out = {t: np.full(len(samples), np.nan) for t in tests}
        with Pipeline(list(tests), fusion=None) as pipe, Progress() as progress:
            task = progress.add_task(f"scoring {name} with {', '.join(tests)}",
                                     total=len(samples))
            for i, s in enumerate(samples):
                try:
                    r = pipe.check_frame(s.load())
                    for t in tests:
                        v = r.tests[t].score
                        out[t][i] = np.nan if v is None else v
                except Exception:  # unreadable sample: no scores
                    pass
                progress.advance(task)
        return out

    key = f"scores-{name}-{'-'.join(sorted(tests))}-{digest(parts)}"
    return cached_arrays(key, compute, use_cache=use_cache)


def _oof_scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray, tests: Sequence[str],
                folds: int) -> np.ndarray:
    from sklearn.model_selection import GroupKFold

    oof = np.full(len(y), np.nan)
    for tr, te in GroupKFold(n_splits=folds).split(x, y, groups):
        m = fit_linear(x[tr], y[tr], tests)
        oof[te] = m.predict_proba(x[te])
    return oof


def fit_subsets(scores: dict[str, np.ndarray], samples: Sequence[Sample], tests: Sequence[str],
                *, target_apcer: float = 0.05, folds: int = 5
                ) -> tuple[dict[tuple[str, ...], LinearFusion], dict[str, Any]]:
    """Fit a fusion for every subset of ``tests`` on ``scores`` (P(live) per sample, NaN =
    missing) and measure it out-of-fold (client-disjoint folds).

    Returns the models (fitted on all samples; threshold from :func:`operating_point` on the
    out-of-fold scores) and a report ``{"A+B": {"out_of_fold", "in_sample", "threshold"}}``.
    Single-test subsets get the same treatment, so they compare fairly with the fused ones.
    """
    from facelive.evaluation.metrics import compute_metrics, eer_threshold

    y = np.array([s.is_live for s in samples])
    subjects = np.array([s.subject for s in samples])
    labels = [s.label for s in samples]
    types = [s.attack_type for s in samples]

    def metrics(sc: np.ndarray, thr: float) -> dict[str, Any]:
        return compute_metrics([None if not np.isfinite(v) else float(v) for v in sc],
                               labels, types, thr)

    models: dict[tuple[str, ...], LinearFusion] = {}
    report: dict[str, Any] = {}
    for sub in all_subsets(tests):
        x = np.column_stack([scores[t] for t in sub])
        ok = np.all(np.isfinite(x), axis=1)
        oof = np.full(len(y), np.nan)
        oof[ok] = _oof_scores(x[ok], y[ok], subjects[ok], sub, folds)
        thr = operating_point(oof[ok & y], oof[ok & ~y],
                              [types[i] for i in np.flatnonzero(ok & ~y)], target_apcer)
        model = fit_linear(x[ok], y[ok], sub)
        model.threshold = thr
        m_oof = metrics(oof, thr)
        m_in = metrics(np.where(ok, model.predict_proba(np.nan_to_num(x, nan=0.5)), np.nan), thr)
        model.metrics = {
            "devel_out_of_fold": {k: m_oof[k] for k in ("APCER", "APCER_max", "BPCER", "ACER",
                                                        "EER", "AUC")},
            "eer_threshold_oof": eer_threshold(oof[ok & y], oof[ok & ~y]),
        }
        models[sub] = model
        report["+".join(sub)] = {"out_of_fold": m_oof, "in_sample": m_in, "threshold": thr,
                                 "weights": dict(zip(sub, model.model.coef.tolist(),
                                                     strict=True))}
    return models, report


def train_fusion(replay_root: str | Path, tests: Sequence[str], *, target_apcer: float = 0.05,
                 missing: str = "abstain", folds: int = 5, out_model: Path | None = None
                 ) -> dict[str, Any]:
    """Fit the fusion on Replay-Attack devel scores; write ``models/fusion.json``; report."""
    from facelive import modelstore
    from facelive.datasets import open_dataset
    from facelive.evaluation.metrics import compute_metrics
    from facelive.liveness.registry import load_test
    from facelive.pipeline import FUSION_MODEL
    from facelive.training.report import jsonable

    samples = open_dataset("replay-attack", replay_root, split="devel").samples()
    scores = score_tests(samples, tests, name="ra-devel")
    y = np.array([s.is_live for s in samples])
    labels = [s.label for s in samples]
    types = [s.attack_type for s in samples]
    report: dict[str, Any] = {"tests": list(tests), "target_apcer": target_apcer,
                              "missing": missing, "folds": folds, "subsets": {}, "single": {}}

    def metrics(sc: np.ndarray, thr: float) -> dict[str, Any]:
        vals = [None if not np.isfinite(v) else float(v) for v in sc]
        return compute_metrics(vals, labels, types, thr)

    # single tests at their own shipped thresholds and at the same APCER target, for comparison
    for t in tests:
        sc = scores[t]
        ok = np.isfinite(sc)
        thr_apcer = operating_point(sc[ok & y], sc[ok & ~y],
                                    [types[i] for i in np.flatnonzero(ok & ~y)], target_apcer)
        report["single"][t] = {
            "shipped_threshold": metrics(sc, load_test(t).threshold),
            "at_target_apcer": metrics(sc, thr_apcer),
        }
    subsets, report["subsets"] = fit_subsets(scores, samples, tests, target_apcer=target_apcer,
                                             folds=folds)
    fusion = FusionModel(tuple(sorted(tests)), subsets, missing, info={
        "trained_on": "Replay-Attack devel (scores of tests trained on the train splits)",
        "estimator": "LDA(solver=eigen, shrinkage=auto) on standardised logits",
        "operating_point": f"worst-type APCER <= {target_apcer} on out-of-fold devel scores",
        "licence": "derived from research-only data (Replay-Attack): research use only",
    })
    if out_model is None:
        modelstore.write_json(FUSION_MODEL, fusion.to_dict())
    else:
        modelstore.write_json(out_model.name, fusion.to_dict(), out_model.parent)
    full = "+".join(sorted(tests))
    keys = ("APCER_max", "BPCER", "ACER", "EER", "AUC")
    report["summary"] = {
        "fused_out_of_fold": {k: report["subsets"][full]["out_of_fold"][k] for k in keys},
        **{f"{t}_at_target_apcer": {k: report["single"][t]["at_target_apcer"][k] for k in keys}
           for t in tests},
        "threshold": subsets[tuple(sorted(tests))].threshold,
    }
    return jsonable(report)


def _reading(report: dict[str, Any]) -> str:
    """One data-driven sentence: the fusion against the best single test (out-of-fold EER)."""
    subsets = report["subsets"]
    full = "+".join(sorted(report["tests"]))
    singles = {k: v["out_of_fold"]["EER"] for k, v in subsets.items() if "+" not in k}
    best = min(singles, key=singles.get)
    f, b = subsets[full]["out_of_fold"]["EER"], singles[best]
    if f < b:
        verdict = f"beats the best single test, {best} ({100 * b:.1f}%)"
    elif f == b:
        verdict = f"ties with the best single test, {best} ({100 * b:.1f}%)"
    else:
        verdict = f"is worse than the best single test, {best} ({100 * b:.1f}%)"
    text = f"Out of fold, the fusion of all tests (EER {100 * f:.1f}%) {verdict}."
    if b == 0:
        text += (f" {best} alone already makes no error on devel, so no fusion can do better"
                 " there; the fusion's value is a second opinion where one test is unsure.")
    return text


def card_markdown(report: dict[str, Any], command: str) -> str:
    """The fusion model card (Markdown); every number comes from ``report``."""
    from facelive.evaluation import comparison_table as metrics_table

    tests = report["tests"]
    full = "+".join(sorted(tests))
    rows = [(f"fused {full}: out-of-fold (honest)", {"frame": report["subsets"][full]["out_of_fold"]}),
            (f"fused {full}: in-sample (fitted on these scores)",
             {"frame": report["subsets"][full]["in_sample"]})]
    for t in tests:
        rows.append((f"{t} alone, same APCER target", {"frame": report["single"][t]["at_target_apcer"]}))
        rows.append((f"{t} alone, its shipped threshold", {"frame": report["single"][t]["shipped_threshold"]}))
    subset_rows = [(f"subset {k} (out-of-fold)", {"frame": v["out_of_fold"]})
                   for k, v in report["subsets"].items()]
    return f"""# Model card: score fusion, `models/fusion.json`

**What it is.** One liveness decision from the tests' scores ({", ".join(tests)}): each P(live) is
mapped to its logit, standardised, and combined by two-class LDA (solver `eigen`, shrinkage `auto`;
the 2019 thesis's choice; any scikit-learn linear classifier can be swapped in with
`facelive.fusion.model.fit_linear(..., estimator=...)`). A model is stored for every subset of the tests, so
the missing-score policy can fall back to the tests that scored: shipped policy
**`{report.get("missing", "abstain")}`** (`abstain`: a frame where any test has no score, such as
no face, gets no decision; `available`: fuse the tests that scored). Change it with
`facelive check --missing available` or `FACELIVE_MISSING=available` for the server.

**Training data.** Replay-Attack `devel` (300 live / 1,500 attack frames, 15 clients): the
tests were trained on the *train* splits, so these scores are unseen data for them. Devel is then
used twice (fit and operating point), so the honest numbers are **out-of-fold**: devel is split
into {report["folds"]} client-disjoint folds and every frame is scored by a fusion fitted on the
other clients. The operating point on the out-of-fold scores is the stricter of the EER point
and the lowest threshold whose worst-type APCER is <= {100 * report["target_apcer"]:.0f}% (security
first: an accepted attack is worse than a live user asked to retry); threshold **{report["summary"]["threshold"]:.4f}**.
LDA weights of the full fusion, per standardised test logit (larger = more say):
{", ".join(f"{t} {w:+.2f}" for t, w in report["subsets"][full]["weights"].items())}.
**Licence: derived from research-only data (Replay-Attack): research use only.**

**Reproduce** (scores are cached in `~/.cache/facelive`):

    {command}

## Replay-Attack devel, frame level

{metrics_table(rows)}

Every subset (the fallbacks used by the `available` policy):

{metrics_table(subset_rows)}

**Reading the numbers.** {_reading(report)} The tests' devel scores come from
models trained on other data (the train splits), but every model here, the fusion included, has
seen Replay-Attack's cameras and sessions; how a fusion fitted on a target's own devel data helps
models that never saw that target is measured in the README ("Does the fusion help?").
Independent test data (other subjects, sessions and cameras) decides the real error rates.
"""
