"""Training the score fusion: monotone (non-negative weights), pooled over both databases.

Issue 11: a fusion fitted on Replay-Attack devel alone followed whatever that database rewarded,
including a test that is inverted on another capture domain. The shipped fusion is now fitted on
the frames that **no test saw in training**, pooled from both databases:

- Replay-Attack ``devel`` (every test was trained on the *train* splits);
- NUAA subjects 0003, 0006, 0009 (held back from the CNN's training; the 3D test never saw NUAA;
  the quality test is re-fitted with its shipped recipe without those subjects for this purpose).

Every subset of the tests gets a logistic regression on the standardised logits with **every
weight >= 0** (:func:`facelive.fusion.model.fit_nonneg`; a test's vote always points the same way)
and database x label cells weighted equally. Honest numbers are **out of fold**: the pooled frames
are split into subject-disjoint folds (GroupKFold) and every frame is scored by a fusion fitted on
the other subjects. The operating point on the out-of-fold scores is the threshold with the
**lowest worst-database ACER** (:func:`domain_minimax_threshold`: it holds on both at once; the
highest of the per-database EER thresholds, also available, let Replay-Attack's BPCER rise to
2.3% where NUAA's gap lies higher). The shipped model is then fitted on all pooled frames.

Without ``nuaa_root`` the fusion is fitted on Replay-Attack devel alone; ``method="lda"`` with
``threshold_rule="operating-point"`` reproduces the pre-issue-11 fusion (LDA, the stricter of the
EER point and worst-type APCER <= target).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facelive.arraycache import cached_arrays, digest
from facelive.datasets import Sample
from facelive.fusion.model import (
    FusionModel,
    LinearFusion,
    all_subsets,
    balanced_weights,
    fit_linear,
    fit_nonneg,
)

METHODS = ("nonneg", "lda")
THRESHOLD_RULES = ("domain-minimax", "domain-max-eer", "operating-point", "domain-apcer")


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


def domain_max_eer_threshold(scores: np.ndarray, is_live: np.ndarray,
                             domains: Sequence[str]) -> float:
    """The highest of the per-domain EER thresholds (domains with both classes): at it, no
    domain's attacks are accepted more often than at that domain's own EER point."""
    from facelive.evaluation import eer_threshold

    d = np.asarray(domains, dtype=object)
    thr = [eer_threshold(scores[(d == v) & is_live], scores[(d == v) & ~is_live])
           for v in sorted(set(d.tolist())) if ((d == v) & is_live).any()
           and ((d == v) & ~is_live).any()]
    thr = [t for t in thr if np.isfinite(t)]
    return float(max(thr)) if thr else 0.5


def domain_apcer_threshold(scores: np.ndarray, is_live: np.ndarray, domains: Sequence[str],
                           target_apcer: float) -> float:
    """The lowest threshold at which no domain accepts more than ``target_apcer`` of its attacks
    (attacks of a domain pooled, :func:`facelive.evaluation.threshold_for_apcer`): the
    security-first operating point that holds on every domain of the fitting scores at once,
    whatever the bona fide rejections cost."""
    from facelive.evaluation import threshold_for_apcer

    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(is_live, dtype=bool)
    d = np.asarray(domains, dtype=object)
    thr = [threshold_for_apcer(s[(d == v) & y], s[(d == v) & ~y], target_apcer)
           for v in sorted(set(d.tolist())) if ((d == v) & ~y).any()]
    thr = [t for t in thr if np.isfinite(t)]
    return float(max(thr)) if thr else 0.5


def domain_minimax_threshold(scores: np.ndarray, is_live: np.ndarray, domains: Sequence[str],
                             attack_types: Sequence[str | None]) -> float:
    """The threshold that minimises the worst domain's ACER (worst-type APCER + BPCER, halved):
    an operating point that holds on every domain at once. Candidates are the midpoints between
    consecutive distinct scores (and the ends); among the optimal ones the median is returned
    (away from the edges of the optimal range)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(is_live, dtype=bool)
    d = np.asarray(domains, dtype=object)
    typ = np.array([t or "unknown" for t in attack_types], dtype=object)
    u = np.unique(s)
    if u.size < 2:
        return float(u[0]) if u.size else 0.5
    cand = np.concatenate([[u[0]], (u[:-1] + u[1:]) / 2, [np.nextafter(u[-1], np.inf)]])
    worst = np.zeros(cand.size)
    for v in sorted(set(d.tolist())):
        live = np.sort(s[(d == v) & y])
        if not live.size or not ((d == v) & ~y).any():
            continue
        bp = np.searchsorted(live, cand, side="left") / live.size
        ap = np.zeros(cand.size)
        for t in sorted(set(typ[(d == v) & ~y].tolist())):
            att = np.sort(s[(d == v) & ~y & (typ == t)])
            ap = np.maximum(ap, 1 - np.searchsorted(att, cand, side="left") / att.size)
        worst = np.maximum(worst, (ap + bp) / 2)
    best = cand[worst <= worst.min() + 1e-12]
    return float(best[(best.size - 1) // 2])


SCORES_VERSION = "1"
"""Version of the scoring code (face detection, crops, each test's preprocessing): part of the
key of :func:`score_tests`' cache, with the model files. Bump it with any change that alters a
score."""


def _scoring_bytes(path: Path) -> bytes:
    """What a model file contributes to a score cache key: its bytes, but for a JSON card
    without its ``threshold`` (the operating point does not change P(live))."""
    data = path.read_bytes()
    if path.suffix == ".json":
        card = json.loads(data)
        if isinstance(card, dict):
            card.pop("threshold", None)
            return json.dumps(card, sort_keys=True).encode()
    return data


def score_tests(samples: Sequence[Sample], tests: Sequence[str], *, name: str,
                use_cache: bool = True) -> dict[str, np.ndarray]:
    """Each test's P(live) on each sample (NaN where the test gave no score), cached on disk."""
    from rich.progress import Progress

    from facelive import modelstore
    from facelive.pipeline import Pipeline
    from facelive.training.quality import code_hash

    parts: list[bytes | str] = ["\n".join(s.key for s in samples)]
    for t in sorted(tests):  # the model files each test would load (see modelstore.find_folder)
        names = sorted({f.name for d in modelstore.model_dirs() for f in d.glob(f"{t}*")
                        if f.suffix in (".onnx", ".json", ".npz")})
        parts += [_scoring_bytes(modelstore.model_path(n)) for n in names]
        if t == "quality":
            parts.append(code_hash())
    parts.append(SCORES_VERSION)

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


L2 = 1e-3
"""L2 penalty of the shipped ``nonneg`` fusion (on the standardised logits' weights). Session 7
lowered it from 1e-2 when face3d left the default tests: at 1e-2 the quality + cnn + probe fusion
gave 1.1% ACER on Replay-Attack devel (the bound is 1%), at 1e-3 0.4%; on the
generalisation protocols the change moved the fused target EER by -0.7 to +2.0 points (recipe
``after-2d`` of :mod:`facelive.training.generalisation`, README "Generalisation")."""


def _fit(x: np.ndarray, y: np.ndarray, tests: Sequence[str], method: str,
         weights: np.ndarray | None, l2: float = L2) -> LinearFusion:
    if method == "lda":
        return fit_linear(x, y, tests)
    if method == "nonneg":
        return fit_nonneg(x, y, tests, sample_weight=weights, l2=l2)
    raise ValueError(f"unknown fusion method {method!r} (use {', '.join(METHODS)})")


def _oof_scores(x: np.ndarray, y: np.ndarray, groups: np.ndarray, tests: Sequence[str],
                folds: int, method: str = "lda", weights: np.ndarray | None = None,
                l2: float = L2) -> np.ndarray:
    from sklearn.model_selection import GroupKFold

    oof = np.full(len(y), np.nan)
    for tr, te in GroupKFold(n_splits=folds).split(x, y, groups):
        m = _fit(x[tr], y[tr], tests, method, None if weights is None else weights[tr], l2)
        oof[te] = m.predict_proba(x[te])
    return oof


def fit_subsets(scores: dict[str, np.ndarray], samples: Sequence[Sample], tests: Sequence[str],
                *, target_apcer: float = 0.05, folds: int = 5, method: str = "lda",
                threshold_rule: str = "operating-point",
                domains: Sequence[str] | None = None, groups: Sequence[str] | None = None,
                l2: float = L2) -> tuple[dict[tuple[str, ...], LinearFusion], dict[str, Any]]:
    """Fit a fusion for every subset of ``tests`` on ``scores`` (P(live) per sample, NaN =
    missing) and measure it out-of-fold (subject-disjoint folds).

    ``method``: ``lda`` or ``nonneg`` (non-negative weights; cells ``domain x label`` weighted
    equally). ``threshold_rule``: ``operating-point`` (:func:`operating_point`),
    ``domain-minimax`` (:func:`domain_minimax_threshold` over ``domains``),
    ``domain-max-eer`` (:func:`domain_max_eer_threshold` over ``domains``) or ``domain-apcer``
    (:func:`domain_apcer_threshold`: APCER <= ``target_apcer`` on every domain), on the out-of-fold
    scores. ``l2``: the ``nonneg`` fit's penalty (smaller: the weights follow the fitting data
    more, e.g. the test that is best on it). ``domains``: one capture domain per sample (default: one domain); ``groups``: the fold
    groups (default: the samples' subjects).
    Returns the models (fitted on all samples) and a report ``{"A+B": {"out_of_fold",
    "in_sample", "threshold", "weights", "per_domain"}}``. Single-test subsets get the same
    treatment, so they compare fairly with the fused ones.
    """
    from facelive.evaluation.metrics import compute_metrics, eer_threshold

    if threshold_rule not in THRESHOLD_RULES:
        raise ValueError(f"unknown threshold rule {threshold_rule!r}")
    y = np.array([s.is_live for s in samples])
    subjects = np.array(list(groups) if groups is not None else [s.subject for s in samples])
    dom = np.array(list(domains) if domains is not None else [""] * len(samples), dtype=object)
    labels = [s.label for s in samples]
    types = [s.attack_type for s in samples]
    cells = np.array([f"{d}/{int(v)}" for d, v in zip(dom, y, strict=True)], dtype=object)

    def metrics(sc: np.ndarray, thr: float, mask: np.ndarray | None = None) -> dict[str, Any]:
        idx = range(len(sc)) if mask is None else np.flatnonzero(mask)
        return compute_metrics([None if not np.isfinite(sc[i]) else float(sc[i]) for i in idx],
                               [labels[i] for i in idx], [types[i] for i in idx], thr)

    models: dict[tuple[str, ...], LinearFusion] = {}
    report: dict[str, Any] = {}
    for sub in all_subsets(tests):
        x = np.column_stack([scores[t] for t in sub])
        ok = np.all(np.isfinite(x), axis=1)
        w = balanced_weights(cells[ok]) if method == "nonneg" else None
        oof = np.full(len(y), np.nan)
        oof[ok] = _oof_scores(x[ok], y[ok], subjects[ok], sub, folds, method, w, l2)
        if threshold_rule == "operating-point":
            thr = operating_point(oof[ok & y], oof[ok & ~y],
                                  [types[i] for i in np.flatnonzero(ok & ~y)], target_apcer)
        elif threshold_rule == "domain-apcer":
            thr = domain_apcer_threshold(oof[ok], y[ok], dom[ok], target_apcer)
        elif threshold_rule == "domain-minimax":
            thr = domain_minimax_threshold(oof[ok], y[ok], dom[ok],
                                           [types[i] for i in np.flatnonzero(ok)])
        else:
            thr = domain_max_eer_threshold(oof[ok], y[ok], dom[ok])
        model = _fit(x[ok], y[ok], sub, method, w, l2)
        model.threshold = thr
        m_oof = metrics(oof, thr)
        m_in = metrics(np.where(ok, model.predict_proba(np.nan_to_num(x, nan=0.5)), np.nan), thr)
        per_domain = {d: metrics(oof, thr, dom == d) for d in sorted(set(dom.tolist()))} \
            if len(set(dom.tolist())) > 1 else {}
        model.metrics = {
            "out_of_fold": {k: m_oof[k] for k in ("APCER", "APCER_max", "BPCER", "ACER",
                                                  "EER", "AUC")},
            "eer_threshold_oof": eer_threshold(oof[ok & y], oof[ok & ~y]),
            **({"out_of_fold_per_domain": {
                d: {k: m[k] for k in ("APCER_max", "BPCER", "ACER", "EER", "AUC")}
                for d, m in per_domain.items()}} if per_domain else {}),
        }
        models[sub] = model
        report["+".join(sub)] = {"out_of_fold": m_oof, "in_sample": m_in, "threshold": thr,
                                 "weights": dict(zip(sub, model.model.coef.tolist(),
                                                     strict=True)),
                                 "per_domain": per_domain}
    return models, report


def shipped_test_scores(samples: Sequence[Sample], tests: Sequence[str], *, name: str
                        ) -> dict[str, np.ndarray]:
    """Each shipped test's P(live) on ``samples`` (NaN = no score), reusing the training caches:
    quality from the cached features and ``quality.json``, face3d from the cached face meshes
    and ``face3d.onnx`` (the largest face), any other test through the pipeline
    (:func:`score_tests`)."""
    out: dict[str, np.ndarray] = {}
    rest = [t for t in tests if t not in ("quality", "face3d")]
    if "quality" in tests:
        from facelive.liveness.quality import QualityModel
        from facelive.training.quality import extract_features, quality_predict

        out["quality"] = quality_predict(QualityModel.load(),
                                         extract_features(samples, name=name))
    if "face3d" in tests:
        from facelive.training.face3d.data import extract_meshes, shipped_face3d_scores

        m = extract_meshes(samples, name=name)
        out["face3d"] = shipped_face3d_scores(m["vertices"], m["intensity"], m["status"] == 0)
    if rest:
        out.update(score_tests(samples, rest, name=name))
    return out


def fusion_frames(replay_root: str | Path, tests: Sequence[str],
                  nuaa_root: str | Path | None = None
                  ) -> tuple[list[Sample], dict[str, np.ndarray], list[str], list[str], str]:
    """The frames the shipped fusion is fitted on and the shipped tests' P(live) there: samples,
    scores per test, the database of each frame, its fold group (database/subject) and a
    description. Replay-Attack devel, plus NUAA's held-back subjects with ``nuaa_root``."""
    from facelive.datasets import open_dataset

    samples = open_dataset("replay-attack", replay_root, split="devel").samples()
    scores = shipped_test_scores(samples, tests, name="ra-devel")
    domains = ["replay-attack"] * len(samples)
    trained_on = "Replay-Attack devel (scores of tests trained on the train splits)"
    if nuaa_root is not None:
        held, held_scores = _nuaa_heldout_scores(nuaa_root, replay_root, tests)
        samples = [*samples, *held]
        scores = {t: np.concatenate([scores[t], held_scores[t]]) for t in tests}
        domains += ["nuaa"] * len(held)
        trained_on = ("Replay-Attack devel + NUAA subjects 0003, 0006, 0009 (frames no test "
                      "was trained on; quality re-fitted without those subjects)")
    groups = [f"{d}/{s.subject}" for d, s in zip(domains, samples, strict=True)]
    return samples, scores, domains, groups, trained_on


FusionFrames = tuple[list[Sample], dict[str, np.ndarray], list[str], list[str], str]
"""Fitting frames: samples, each test's P(live) per sample, each sample's database, its fold group
and a description (:func:`fusion_frames`)."""

def pooled_frames(*parts: tuple[str, FusionFrames]) -> FusionFrames:
    """Fitting frames pooled from several sources, each ``(tag, frames)``: the tag is prefixed to
    every frame's database (its domain: each domain x label cell weighs the same in the fit) and
    fold group."""
    samples: list[Sample] = []
    scores: dict[str, list[np.ndarray]] = {}
    domains: list[str] = []
    groups: list[str] = []
    described = []
    for tag, (smp, sc, dom, grp, text) in parts:
        samples += smp
        for t, v in sc.items():
            scores.setdefault(t, []).append(v)
        domains += [f"{tag}:{d}" for d in dom]
        groups += [f"{tag}:{g}" for g in grp]
        described.append(f"{tag}: {text}")
    return samples, {t: np.concatenate(v) for t, v in scores.items()}, domains, groups, \
        "; ".join(described)


FIT_ON = ("cross-database+in-domain", "cross-database", "in-domain")
"""Where :func:`train_fusion` fits: ``cross-database``
(:func:`facelive.training.generalisation.cross_database_frames`, the shipped fusion) or ``in-domain`` (:func:`fusion_frames`: the shipped tests' scores on frames of
the databases they were trained on, subjects held out)."""


def train_fusion(replay_root: str | Path, tests: Sequence[str], *, target_apcer: float = 0.05,
                 missing: str = "abstain", folds: int = 5, out_model: Path | None = None,
                 nuaa_root: str | Path | None = None, method: str = "nonneg",
                 threshold_rule: str = "domain-apcer", l2: float = L2,
                 fit_on: str = "cross-database", cnn_recipe: str | None = None,
                 frames: FusionFrames | None = None) -> dict[str, Any]:
    """Fit the fusion (see the module docstring); write ``models/fusion.json``; report.

    ``fit_on`` says where the fitting frames come from: ``cross-database`` needs them given as
    ``frames`` (:func:`facelive.training.generalisation.cross_database_frames`, which the
    ``facelive train fusion`` command calls), ``in-domain`` computes them
    (:func:`fusion_frames`). ``cnn_recipe`` is recorded in the report."""
    from facelive import modelstore
    from facelive.evaluation.metrics import compute_metrics
    from facelive.fusion import FUSION_MODEL
    from facelive.liveness.registry import load_test
    from facelive.training.report import jsonable

    if fit_on not in FIT_ON:
        raise ValueError(f"fit_on must be one of {', '.join(FIT_ON)}")
    if fit_on != "in-domain":
        if frames is None:
            raise ValueError("a cross-database fusion needs its frames (cross_database_frames)")
        samples, scores, domains, groups, trained_on = frames
    else:
        samples, scores, domains, groups, trained_on = fusion_frames(replay_root, tests,
                                                                     nuaa_root)
    y = np.array([s.is_live for s in samples])
    dom = np.array(domains, dtype=object)
    labels = [s.label for s in samples]
    types = [s.attack_type for s in samples]
    report: dict[str, Any] = {"tests": list(tests), "target_apcer": target_apcer,
                              "fit_on": fit_on,
                              **({"cnn_recipe": cnn_recipe} if cnn_recipe else {}),
                              "missing": missing, "folds": folds, "method": method,
                              "threshold_rule": threshold_rule, "trained_on": trained_on,
                              **({"l2": l2} if method == "nonneg" else {}),
                              "counts": {d: {"live": int(np.sum((dom == d) & y)),
                                             "attack": int(np.sum((dom == d) & ~y))}
                                         for d in sorted(set(domains))},
                              "subsets": {}, "single": {}}

    def metrics(sc: np.ndarray, thr: float, mask: np.ndarray | None = None) -> dict[str, Any]:
        idx = range(len(sc)) if mask is None else np.flatnonzero(mask)
        return compute_metrics([None if not np.isfinite(sc[i]) else float(sc[i]) for i in idx],
                               [labels[i] for i in idx], [types[i] for i in idx], thr)

    # single tests at their own shipped thresholds, per domain, for comparison
    for t in tests:
        thr_t = load_test(t).threshold
        report["single"][t] = {"shipped_threshold": metrics(scores[t], thr_t),
                               "per_domain": {d: metrics(scores[t], thr_t, dom == d)
                                              for d in sorted(set(domains))}}
    subsets, report["subsets"] = fit_subsets(
        scores, samples, tests, target_apcer=target_apcer, folds=folds, method=method,
        threshold_rule=threshold_rule, domains=domains, groups=groups, l2=l2)
    estimator = ("logistic regression on standardised logits, every weight >= 0 (L-BFGS-B), "
                 f"L2 penalty {l2:g}, database x label cells weighted equally"
                 if method == "nonneg"
                 else "LDA(solver=eigen, shrinkage=auto) on standardised logits")
    rule = {"domain-minimax": "lowest worst-database ACER on out-of-fold scores",
            "domain-max-eer": "highest per-database EER threshold on out-of-fold scores",
            "operating-point": f"worst-type APCER <= {target_apcer} on out-of-fold scores",
            "domain-apcer": f"APCER <= {target_apcer} on every database's out-of-fold scores",
            }[threshold_rule]
    fusion = FusionModel(tuple(sorted(tests)), subsets, missing, info={
        "trained_on": trained_on, "estimator": estimator, "operating_point": rule,
        "licence": "derived from research-only data (NUAA, Replay-Attack): research use only",
    })
    if out_model is None:
        modelstore.write_json(FUSION_MODEL, fusion.to_dict())
    else:
        modelstore.write_json(out_model.name, fusion.to_dict(), out_model.parent)
    full = "+".join(headline_tests(tests))
    keys = ("APCER_max", "BPCER", "ACER", "EER", "AUC")
    report["summary"] = {
        "fused_out_of_fold": {k: report["subsets"][full]["out_of_fold"][k] for k in keys},
        **{f"fused_out_of_fold_{d}": {k: m[k] for k in keys}
           for d, m in report["subsets"][full]["per_domain"].items()},
        "tests": full,
        "threshold": subsets[tuple(headline_tests(tests))].threshold,
        "weights": report["subsets"][full]["weights"],
    }
    return jsonable(report)


def _nuaa_heldout_scores(nuaa_root: str | Path, replay_root: str | Path, tests: Sequence[str]
                         ) -> tuple[list[Sample], dict[str, np.ndarray]]:
    """NUAA's held-back subjects and each test's scores on them from a model that never saw
    them: the shipped CNN (trained without them) and 3D test (Replay-Attack only); quality
    re-fitted with the shipped model's recipe on the other NUAA subjects + Replay-Attack train."""
    from facelive.datasets import open_dataset
    from facelive.datasets.nuaa import nuaa_subject_split
    from facelive.training.quality import refit_without

    nuaa = open_dataset("nuaa", nuaa_root, split="train").samples()
    scores = shipped_test_scores(nuaa, [t for t in tests if t != "quality"], name="nuaa-train")
    _, held_ids = nuaa_subject_split(sorted({s.subject for s in nuaa}))
    held = np.array([s.subject in set(held_ids) for s in nuaa])
    if "quality" in tests:
        scores["quality"] = refit_without(nuaa_root, replay_root, held)
    return ([s for s, h in zip(nuaa, held, strict=True) if h],
            {t: v[held] for t, v in scores.items()})


def headline_tests(tests: Sequence[str]) -> list[str]:
    """The subset of ``tests`` a card and a summary lead with: the default tests where all of
    them were fitted (what ``facelive check`` fuses), else all of ``tests``."""
    from facelive.liveness.registry import DEFAULT_TESTS

    return sorted(DEFAULT_TESTS) if set(DEFAULT_TESTS) <= set(tests) else sorted(tests)


def _reading(report: dict[str, Any]) -> str:
    """One data-driven sentence: the fusion against the best single test (out-of-fold EER)."""
    subsets = report["subsets"]
    full = "+".join(headline_tests(report["tests"]))
    singles = {k: v["out_of_fold"]["EER"] for k, v in subsets.items() if "+" not in k}
    best = min(singles, key=singles.get)
    f, b = subsets[full]["out_of_fold"]["EER"], singles[best]
    if f < b:
        verdict = f"beats the best single test, {best} ({100 * b:.1f}%)"
    elif f == b:
        verdict = f"ties with the best single test, {best} ({100 * b:.1f}%)"
    else:
        verdict = f"is worse than the best single test, {best} ({100 * b:.1f}%)"
    text = f"Out of fold, the fusion of the default tests (EER {100 * f:.1f}%) {verdict}."
    if b == 0:
        text += (f" {best} alone already makes no error on these frames, so no fusion can do better"
                 " there; the fusion's value is a second opinion where one test is unsure.")
    return text


def card_markdown(report: dict[str, Any], command: str) -> str:
    """The fusion model card (Markdown); every number comes from ``report``."""
    from facelive.evaluation import comparison_table as metrics_table

    tests = report["tests"]
    default = headline_tests(tests)
    full = "+".join(default)
    sub = report["subsets"][full]
    rows = [(f"fused {full}: out-of-fold, all", {"frame": sub["out_of_fold"]})]
    rows += [(f"fused {full}: out-of-fold, {d}", {"frame": m})
             for d, m in sub["per_domain"].items()]
    rows.append((f"fused {full}: in-sample (fitted on these scores)", {"frame": sub["in_sample"]}))
    for t in tests:
        for d, m in report["single"][t]["per_domain"].items():
            rows.append((f"{t} alone, its shipped threshold, {d}"
                         + (" (cross-database model)" if report.get("fit_on") == "cross-database"
                            and t not in ("minifas",) else ""), {"frame": m}))
    subset_rows = []
    for k, v in report["subsets"].items():
        subset_rows.append((f"subset {k} (out-of-fold, all)", {"frame": v["out_of_fold"]}))
        subset_rows += [(f"subset {k} (out-of-fold, {d})", {"frame": m})
                        for d, m in v["per_domain"].items()]
    counts = "; ".join(f"{d}: {c['live']} live / {c['attack']} attack frames"
                       for d, c in report["counts"].items())
    nonneg = report.get("method", "lda") == "nonneg"
    estimator = ("logistic regression on the standardised logits with **every weight >= 0** "
                 f"(L-BFGS-B under bounds, L2 {report.get('l2', 0.01):g}; "
                 "`facelive.fusion.model.fit_nonneg`), each "
                 "database x label cell weighted equally" if nonneg else
                 "two-class LDA (solver `eigen`, shrinkage `auto`) on the standardised logits")
    rule = {
        "domain-minimax": "the threshold with the **lowest worst-database ACER** (the median of "
                          "the optimal ones), so that it holds on both databases at once",
        "domain-max-eer": "the highest of the per-database EER thresholds",
        "domain-apcer": f"the lowest threshold at which **each database accepts at most "
                        f"{100 * report['target_apcer']:.0f}% of its attacks** (security first: "
                        "the bona fide rejections it costs are in the table)",
    }.get(report.get("threshold_rule", ""),
          f"the stricter of the EER point and the lowest threshold whose worst-type APCER is "
          f"<= {100 * report['target_apcer']:.0f}%")
    weights = ", ".join(f"{t} {w:+.2f}" for t, w in sub["weights"].items())
    return f"""# Model card: score fusion, `models/fusion.json`

**What it is.** One liveness decision from the tests' scores (the default tests
{", ".join(default)}; every subset of {", ".join(tests)} when tests are named): each P(live) is
mapped to its logit, standardised, and combined by {estimator}. A monotone fusion cannot
give a test a negative vote: raising any test's P(live) never lowers the fused P(live). (Before
the monotone fusion it was LDA fitted on Replay-Attack devel alone; a test that is anti-correlated
with the label *given the others* in one database then gets a negative weight, a quirk of that
database that reverses on another.) A model is stored for every subset of the tests, so the
missing-score policy can fall back to the tests that scored: shipped policy
**`{report.get("missing", "abstain")}`** (`abstain`: a frame where any test has no score, such as
no face, gets no decision; `available`: fuse the tests that scored). Change it with
`facelive check --missing available` or `FACELIVE_MISSING=available` for the server.

**Training data.** {report.get("trained_on", "")}: {counts}. {_provenance(report)} The honest
numbers are **out-of-fold**: the frames are split into {report["folds"]} subject-disjoint folds
and every frame is scored by a fusion fitted on the other subjects. Operating point on the
out-of-fold scores: {rule}; threshold of the default tests' fusion
**{report["summary"]["threshold"]:.4f}**. Its weights per standardised test logit: {weights}.
**Licence: derived from research-only data (NUAA, Replay-Attack): research use only.**

**Reproduce** (scores are cached in `~/.cache/facelive`):

    {command}

## Frame level, per database

{metrics_table(rows)}

Every subset (the fallbacks used by the `available` policy):

{metrics_table(subset_rows)}

**Reading the numbers.** {_reading(report)} {_scope(report)}
"""


def _provenance(report: dict[str, Any]) -> str:
    if report.get("fit_on") == "cross-database":
        return ("Every trainable test's score comes from a model trained on the *other* database "
                "(its shipped recipe), and the MiniFAS test never saw either, so the fusion's "
                "weights follow how each test transfers to a camera it never saw, not how well it "
                "fits its own training domain (where the fine-tuned CNN looks perfect).")
    return ("None of these frames was used to train the tests (the CNN's NUAA frames are other "
            "subjects of the same sessions).")


def _scope(report: dict[str, Any]) -> str:
    if report.get("fit_on") == "cross-database":
        return ("These are cross-database frames, the same ones the shipped weights and threshold "
                "were chosen on (out of fold only across subjects), so they are not an independent "
                "test: the honest check fits on one direction and scores the other (recipe "
                "`transfer` of `facelive evaluate --protocol all`, README \"Generalisation\"); "
                "the in-domain check is Replay-Attack devel with the shipped tests "
                "(`facelive evaluate --dataset replay-attack --split devel`).")
    return ("These frames come from the two databases the tests were trained on (other subjects "
            "and, for the CNN, the same sessions), so they are in-domain numbers; the "
            "generalisation protocols (`facelive evaluate --protocol all`, README "
            "\"Generalisation\") measure the same recipe on sessions and databases the models "
            "never saw.")
