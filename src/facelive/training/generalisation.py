"""The generalisation protocols of :mod:`facelive.evaluation.protocols`, run end to end.

For every protocol split each test's model is trained on the split's source *train* part, its
threshold is the EER point on the source *threshold* part, and the fusion of the retrained tests
is fitted and thresholded on the source threshold part too; the target is then scored once at
those thresholds. The CNN is retrained per source only with ``cnn_recipe`` (a CPU recipe of
:mod:`facelive.training.cnn.protocol`, minutes per split); without it the CNN is left out, since
the shipped one was trained on NUAA and Replay-Attack together and has no honest score on any
split.

Recipes (:data:`RECIPES`): ``before`` (the first shipped recipes: LDA quality model, LDA
fusion, the security-first operating point), ``after`` and ``after-2d`` (per-domain quality
model, the probe test, a monotone fusion fitted on the source), and ``transfer`` (the shipped
decision: the MiniFAS test joins, the fusion is fitted where every trainable test is out of its
training domain). Per-image inputs (quality features, face meshes, CNN scores) and the
scores of every trained VoxNet are cached in ``$FACELIVE_CACHE`` (derived from research-only
data: never committed).

Calibration (``facelive calibrate``) is measured on the cross-database splits: the target's
subjects are split in two halves (:func:`facelive.evaluation.protocols.subject_halves`), the
live frames of the first half set the thresholds (target BPCER) and the quality test's domain
statistics, and the second half is scored with and without that calibration.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelive.evaluation.protocols import PARTS, ProtocolSplit, Universe
from facelive.fusion.model import fused_scores
from facelive.training.face3d.data import shipped_face3d_scores
from facelive.training.fusion import L2 as SHIPPED_FUSION_L2
from facelive.training.fusion import FusionFrames
from facelive.training.quality import BEFORE, SHIPPED, QualityRecipe, fit_recipe, quality_predict

CACHE_NAMES = {"nuaa": "nuaa-train", "ra-train": "ra-train", "ra-devel": "ra-devel"}
"""Cache names of the universe's parts (shared with ``facelive train quality/face3d``)."""


@dataclass(frozen=True)
class Recipe:
    """How each test and the fusion are built from a source."""

    name: str
    quality: QualityRecipe = BEFORE
    fusion: str = "lda"
    """``lda`` (unconstrained) or ``nonneg`` (non-negative weights, domain-balanced)."""
    fusion_threshold: str = "operating-point"
    """``operating-point`` (stricter of EER and worst-type APCER <= 5%) or ``domain-minimax``
    (lowest worst-database ACER; :func:`facelive.training.fusion.domain_minimax_threshold`)."""
    probe: bool = False
    """Include the probe test (:mod:`facelive.training.probe`, its shipped recipe)."""
    face3d: bool = True
    """Fuse the 3D test (its per-test rows are reported either way)."""
    fusion_l2: float = 1e-2
    """L2 penalty of the ``nonneg`` fusion (:func:`facelive.training.fusion.fit_subsets`; 1e-2
    is what recipe ``after`` used, the shipped fusion's is ``facelive.training.fusion.L2``)."""
    minifas: bool = False
    """Include the MiniFAS test (:mod:`facelive.liveness.minifas`, trained on CelebA-Spoof, on
    neither database: scored as shipped, an honest score on every split)."""
    cnn: bool = True
    """Fuse the CNN when it is retrained per source (``--cnn-recipe``)."""
    quality_fused: bool = True
    """Fuse the quality test (its per-test rows are reported either way)."""
    fusion_fit: str = "source"
    """Where the fusion is fitted: ``source`` (the source's threshold part, where every
    trainable test is in its training domain), ``cross-database`` (the target of the other
    cross-database direction, :data:`FUSION_FIT_FROM`: every trainable test scored on the
    database it was not trained on; never the split's own target) or ``source+cross-database``
    (both pooled, each part's databases weighted equally: weights that hold on known cameras and
    on new ones)."""
    target_apcer: float = 0.05
    """APCER bound of the ``domain-apcer`` threshold rule."""

    def fused(self, tests: Sequence[str]) -> tuple[str, ...]:
        """The tests of ``tests`` this recipe fuses."""
        return tuple(t for t in tests if (t != "face3d" or self.face3d)
                     and (t != "quality" or self.quality_fused)
                     and (t != "cnn" or self.cnn) and (t != "minifas" or self.minifas)
                     and (t != "probe" or self.probe))

    def describe(self) -> dict[str, str]:
        tests = [t for t, on in (("quality", self.quality_fused), ("cnn", self.cnn),
                                 ("probe", self.probe),
                                 ("minifas", self.minifas), ("face3d", self.face3d)) if on]
        fusion = self.fusion + (f" (L2 {self.fusion_l2:g})" if self.fusion == "nonneg" else "")
        where = {"source": "source", "cross-database": "other direction",
                 "source+cross-database": "source + other direction"}[self.fusion_fit]
        fusion += f", fitted on the {where}"
        rule = self.fusion_threshold + (f" {100 * self.target_apcer:g}%"
                                        if self.fusion_threshold == "domain-apcer" else "")
        return {"quality": self.quality.describe(), "fusion": fusion,
                "fusion_threshold": rule, "tests": ", ".join(tests)}


RECIPES = {
    "before": Recipe("before"),
    "after": Recipe("after", quality=SHIPPED, fusion="nonneg",
                    fusion_threshold="domain-minimax", probe=True),
    # as "after" without face3d (inverted or at chance wherever it is trained on NUAA)
    "after-2d": Recipe("after-2d", quality=SHIPPED, fusion="nonneg",
                       fusion_threshold="domain-minimax", probe=True, face3d=False,
                       fusion_l2=SHIPPED_FUSION_L2),
    # the default tests (cnn, probe, minifas), the fusion fitted where every trainable test is
    # out of its training domain (alone, or pooled with the source), APCER <= 5% there
    "transfer": Recipe("transfer", quality=SHIPPED, fusion="nonneg",
                       fusion_threshold="domain-apcer", probe=True, face3d=False,
                       minifas=True, fusion_l2=SHIPPED_FUSION_L2, fusion_fit="cross-database",
                       quality_fused=False),
    "transfer-pooled": Recipe("transfer-pooled", quality=SHIPPED, fusion="nonneg",
                              fusion_threshold="domain-apcer", probe=True, face3d=False,
                              minifas=True, fusion_l2=SHIPPED_FUSION_L2,
                              fusion_fit="source+cross-database", quality_fused=False),
}

FUSION_FIT_FROM = {"nuaa-to-ra": "ra-to-nuaa", "ra-to-nuaa": "nuaa-to-ra",
                   "cross-session": "nuaa-to-ra"}
"""Recipes with ``fusion_fit="cross-database"``: the split whose target scores fit the fusion of
a split. Each cross-database direction is fitted on the other (the honest check: the shipped
fusion is fitted on both pooled); cross-session on NUAA -> Replay-Attack, whose target holds no
NUAA frame."""


# --- per-image inputs --------------------------------------------------------------------------
@dataclass
class UniverseData:
    """Per-sample inputs over a :class:`Universe` (NaN where none)."""

    features: np.ndarray  # (n, 25) quality features
    augmented: np.ndarray | None  # (n, 25) features of a capture-chain copy, when computed
    vertices: np.ndarray  # (n, 468, 3) face mesh
    intensity: np.ndarray  # (n, 468)
    mesh_ok: np.ndarray  # (n,) bool
    cnn: np.ndarray  # (n,) shipped CNN P(live)


def load_data(universe: Universe, *, workers: int = 1, cnn: bool = True,
              augmented: bool = False, meshes: bool = True) -> UniverseData:
    """Quality features (and those of augmented copies), face meshes (``meshes``: else empty
    arrays, every mesh missing) and shipped-CNN scores of every sample (cached)."""
    from facelive.training.face3d.data import extract_meshes
    from facelive.training.fusion import score_tests
    from facelive.training.quality import extract_features, universe_features

    feats, verts, inten, status, cnn_scores = [], [], [], [], []
    for part in PARTS:
        samples = universe.samples[universe.part_slice(part)]
        name = CACHE_NAMES[part]
        feats.append(extract_features(samples, workers=workers, name=name))
        if meshes:
            m = extract_meshes(samples, name=name)
        else:
            m = {"vertices": np.zeros((len(samples), 0, 3), np.float32),
                 "intensity": np.zeros((len(samples), 0), np.float32),
                 "status": np.ones(len(samples), int)}
        verts.append(m["vertices"])
        inten.append(m["intensity"])
        status.append(m["status"])
        cnn_scores.append(score_tests(samples, ["cnn"], name=name)["cnn"] if cnn
                          else np.full(len(samples), np.nan))
    aug = universe_features(universe, workers=workers, augmented=True) if augmented else None
    return UniverseData(np.vstack(feats), aug, np.concatenate(verts), np.concatenate(inten),
                        np.concatenate(status) == 0, np.concatenate(cnn_scores))


# --- the tests' source models ------------------------------------------------------------------
def face3d_scores(universe: Universe, data: UniverseData, train_mask: np.ndarray, *,
                  epochs: int = 12, seed: int = 0, desc: str = "voxnet") -> np.ndarray:
    """P(live) of every sample from a VoxNet trained on ``train_mask``
    (:func:`facelive.training.face3d.train.protocol_scores`; cached; needs torch)."""
    from facelive.training.face3d.train import protocol_scores

    return protocol_scores(universe, data.vertices, data.intensity, data.mesh_ok, train_mask,
                           epochs=epochs, seed=seed, desc=desc)


def shipped_face3d_is_ra_only() -> bool:
    """Whether the shipped face3d model was trained on Replay-Attack train only (then it has an
    honest score on NUAA, and the RA -> NUAA split uses it as its source model)."""
    from facelive import modelstore
    from facelive.liveness.face3d import CARD_FILE, MODEL_FILE

    card = modelstore.read_json(CARD_FILE, modelstore.find_folder(MODEL_FILE))
    return list(card.get("trained_on", [])) == ["Replay-Attack train"]


def face3d_source_scores(universe: Universe, data: UniverseData, split: ProtocolSplit, *,
                         epochs: int = 12) -> np.ndarray:
    """face3d's P(live) on every sample from the split's source model: the shipped model for
    RA -> NUAA when it was trained on Replay-Attack train only, else a VoxNet trained on the
    source (:func:`face3d_scores`)."""
    if split.name == "ra-to-nuaa" and shipped_face3d_is_ra_only():
        return shipped_face3d_scores(data.vertices, data.intensity, data.mesh_ok)
    return face3d_scores(universe, data, split.train, epochs=epochs, desc=f"face3d ({split.name})")


def eer_thr(scores: np.ndarray, is_live: np.ndarray) -> float:
    """The EER threshold of the finite ``scores``."""
    from facelive.evaluation import eer_threshold

    f = np.isfinite(scores)
    return float(eer_threshold(scores[f & is_live], scores[f & ~is_live]))


def as_scores(p: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else float(v) for v in p]


def _metrics(universe: Universe, mask: np.ndarray, p: np.ndarray, thr: float
             ) -> dict[str, Any]:
    from facelive.evaluation import evaluate_scores

    return evaluate_scores(as_scores(p[mask]), universe.select(mask), thr)


def split_scores(universe: Universe, data: UniverseData, split: ProtocolSplit, recipe: Recipe,
                 *, face3d: np.ndarray | None = None, epochs: int = 12,
                 cnn: np.ndarray | None = None, probe: np.ndarray | None = None,
                 minifas: np.ndarray | None = None) -> dict[str, Any]:
    """Train the tests of ``recipe`` on ``split``'s source; return their scores on the whole
    universe, their source thresholds, and the quality model (for calibration). Tests given as
    arrays (``cnn``, ``probe``, ``minifas``, ``face3d``) are taken as they are."""
    y = universe.is_live
    tr = split.train
    qmodel = fit_recipe(data.features[tr], y[tr], universe.domain[tr], recipe.quality,
                        None if data.augmented is None else data.augmented[tr])
    feats = data.features
    scores = {"quality": quality_predict(qmodel, feats)}
    for name, value in (("cnn", cnn), ("probe", probe), ("minifas", minifas)):
        if value is not None:
            scores[name] = value
    if face3d is None and recipe.face3d:
        face3d = face3d_scores(universe, data, split.train, epochs=epochs,
                               desc=f"face3d ({split.name})")
    if face3d is not None:
        scores["face3d"] = face3d
    thresholds = {t: eer_thr(s[split.devel], y[split.devel]) for t, s in scores.items()}
    return {"scores": scores, "thresholds": thresholds, "quality_model": qmodel}


def _fused(universe: Universe, parts: Sequence[tuple[np.ndarray, dict[str, np.ndarray], str]],
           recipe: Recipe, tests: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """Fusion of ``tests`` fitted and thresholded on ``parts`` (each: a sample mask, every
    sample's scores, a tag prefixed to the database as the sample's domain), out-of-fold with
    subject-disjoint folds; returns the fitted :class:`LinearFusion` of all ``tests`` and the
    fitting report."""
    from facelive.training.fusion import fit_subsets

    samples: list[Any] = []
    scores: dict[str, list[np.ndarray]] = {t: [] for t in tests}
    domains: list[str] = []
    groups: list[str] = []
    for mask, sc, tag in parts:
        samples += universe.select(mask)
        for t in tests:
            scores[t].append(sc[t][mask])
        dom = [f"{tag}{_database(p)}" for p in universe.part[mask]]
        domains += dom
        groups += [f"{d}/{s}" for d, s in zip(dom, universe.subject[mask], strict=True)]
    folds = min(5, len(set(groups)))
    models, rep = fit_subsets({t: np.concatenate(v) for t, v in scores.items()}, samples, tests,
                              folds=folds, method=recipe.fusion,
                              threshold_rule=recipe.fusion_threshold, domains=domains,
                              groups=groups, l2=recipe.fusion_l2,
                              target_apcer=recipe.target_apcer)
    return models[tuple(sorted(tests))], rep["+".join(sorted(tests))]


def _database(part: str) -> str:
    return "nuaa" if part == "nuaa" else "replay-attack"


def minifas_scores(universe: Universe) -> np.ndarray:
    """The shipped MiniFAS test's P(live) on every sample, through the pipeline (cached)."""
    from facelive.training.fusion import score_tests

    return np.concatenate([
        score_tests(universe.samples[universe.part_slice(part)], ["minifas"],
                    name=CACHE_NAMES[part])["minifas"] for part in PARTS])


def cross_database_frames(nuaa_root: str | Path, replay_root: str | Path,
                          tests: Sequence[str], *, cnn_recipe: str = "shipped"
                          ) -> FusionFrames:
    """The frames of both cross-database protocol targets (NUAA's training list, Replay-Attack
    devel) and each test's P(live) there from a model that never saw that database: quality and
    probe refitted on the other database with their shipped recipes, the CNN trained there with
    ``cnn_recipe`` (:mod:`facelive.training.cnn.protocol`), the MiniFAS test as shipped (trained
    on CelebA-Spoof only), face3d from its source model
    (:func:`face3d_source_scores`). Same return as
    :func:`facelive.training.fusion.fusion_frames`; every input cached on disk."""
    from facelive.evaluation.protocols import CROSS_DATABASE, protocol_split

    unknown = sorted(set(tests) - {"quality", "cnn", "probe", "minifas", "face3d"})
    if unknown:
        raise ValueError(f"no cross-database scores for {', '.join(unknown)}")
    universe = Universe.load(nuaa_root, replay_root)
    data = load_data(universe, cnn=False, meshes="face3d" in tests)
    minifas = minifas_scores(universe) if "minifas" in tests else None
    samples: list[Any] = []
    parts: dict[str, list[np.ndarray]] = {t: [] for t in tests}
    domains: list[str] = []
    for name in CROSS_DATABASE:
        split = protocol_split(name, universe)
        cnn = probe = None
        if "cnn" in tests:
            from facelive.training.cnn.protocol import protocol_scores

            cnn = protocol_scores(universe, split.train, recipe=cnn_recipe, desc=f"cnn ({name})")
        if "probe" in tests:
            from facelive.training.probe import protocol_scores as probe_scores

            probe = probe_scores(universe, split.train)
        f3d = (face3d_source_scores(universe, data, split) if "face3d" in tests
               else None)
        res = split_scores(universe, data, split, RECIPES["transfer"], cnn=cnn,
                               probe=probe, minifas=minifas, face3d=f3d)
        m = split.target
        samples += universe.select(m)
        for t in tests:
            parts[t].append(res["scores"][t][m])
        domains += [_database(p) for p in universe.part[m]]
    groups = [f"{d}/{s.subject}" for d, s in zip(domains, samples, strict=True)]
    described = ("both cross-database protocol targets, NUAA training list (scored by tests "
                 "trained on Replay-Attack train) + Replay-Attack devel (scored by tests trained "
                 f"on NUAA); CNN recipe `{cnn_recipe}`, MiniFAS as shipped")
    return samples, {t: np.concatenate(v) for t, v in parts.items()}, domains, groups, described


def run_protocols(nuaa_root: str | Path, replay_root: str | Path,
                  protocols: Sequence[str], *, recipes: Sequence[str] = ("before", "after"),
                  epochs: int = 12, target_bpcer: float = 0.05, workers: int = 1,
                  cnn_recipe: str | None = None) -> dict[str, Any]:
    """Every protocol split x recipe: per-test and fused metrics on the source threshold part
    and on the target (at the source thresholds), plus calibration on the cross-database
    targets. Returns a JSON-able report (rendered by :func:`report_markdown`)."""
    from facelive.evaluation import threshold_for_bpcer
    from facelive.evaluation.protocols import CROSS_DATABASE, protocol_split, subject_halves
    from facelive.training.report import jsonable

    universe = Universe.load(nuaa_root, replay_root)
    with_face3d = any(RECIPES[r].face3d for r in recipes)
    data = load_data(universe, workers=workers, cnn=False,  # the CNN is not applicable here
                     augmented=any(RECIPES[r].quality.augment for r in recipes),
                     meshes=with_face3d)
    y = universe.is_live
    shipped_ra_only, shipped3d = False, None
    if with_face3d:
        shipped_ra_only = shipped_face3d_is_ra_only()
        shipped3d = shipped_face3d_scores(data.vertices, data.intensity, data.mesh_ok)
    with_probe = any(RECIPES[r].probe for r in recipes)
    minifas = minifas_scores(universe) if any(RECIPES[r].minifas for r in recipes) else None
    tests = tuple(t for t, on in (("quality", True), ("cnn", bool(cnn_recipe)),
                                  ("probe", with_probe), ("minifas", minifas is not None),
                                  ("face3d", with_face3d)) if on)
    report: dict[str, Any] = {
        "protocols": list(protocols), "recipes": {r: RECIPES[r].describe() for r in recipes},
        "epochs": epochs, "target_bpcer": target_bpcer, "splits": {}, "tests": list(tests),
        "cnn_recipe": cnn_recipe, "not_applicable": {} if cnn_recipe else {
            "cnn": "the shipped CNN was trained on NUAA and Replay-Attack together (not "
                   "retrained here without --cnn-recipe): no honest score on any split"},
    }
    if cnn_recipe:
        from facelive.training.cnn.protocol import RECIPES as CNN_RECIPES

        report["cnn_config"] = CNN_RECIPES[cnn_recipe].as_dict()
    needed = list(protocols)
    if any(RECIPES[r].fusion_fit != "source" for r in recipes):
        needed += [FUSION_FIT_FROM[p] for p in protocols if FUSION_FIT_FROM[p] not in needed]
    splits: dict[str, ProtocolSplit] = {}
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for name in needed:  # every test trained on every needed source, scored everywhere
        split = splits[name] = protocol_split(name, universe)
        entry: dict[str, Any] = {
            "description": split.description, "source": split.source,
            "target": split.target_name,
            "counts": {k: {"live": int(np.sum(m & y)), "attack": int(np.sum(m & ~y))}
                       for k, m in (("train", split.train), ("devel", split.devel),
                                    ("target", split.target))},
            "recipes": {},
        }
        f3d = face3d_source_scores(universe, data, split, epochs=epochs) if with_face3d else None
        if with_face3d and name == "ra-to-nuaa" and shipped_ra_only:
            entry["face3d_source_model"] = "the shipped face3d model (trained on RA train)"
        if with_face3d and name == "cross-session" and shipped_ra_only:  # never saw NUAA
            thr = eer_thr(shipped3d[universe.part == "ra-devel"], y[universe.part == "ra-devel"])
            entry["shipped_face3d"] = {
                "threshold": thr, "threshold_from": "Replay-Attack devel EER",
                "target": _metrics(universe, split.target, shipped3d, thr)}
        cnn = None
        if cnn_recipe:
            from facelive.training.cnn.protocol import protocol_scores

            cnn = protocol_scores(universe, split.train, recipe=cnn_recipe, desc=f"cnn ({name})")
        probe = None
        if with_probe:
            from facelive.training.probe import protocol_scores as probe_protocol_scores

            probe = probe_protocol_scores(universe, split.train)
        results[name] = {}
        for rname in recipes:
            recipe = RECIPES[rname]
            results[name][rname] = split_scores(
                universe, data, split, recipe, face3d=f3d, epochs=epochs, cnn=cnn,
                probe=probe if recipe.probe else None,
                minifas=minifas if recipe.minifas else None)
        if name in protocols:
            report["splits"][name] = entry
    for name in protocols:  # fused per recipe, on the source or on the other direction
        split, entry = splits[name], report["splits"][name]
        for rname in recipes:
            recipe, res = RECIPES[rname], results[name][rname]
            sc = res["scores"]
            fused_tests = recipe.fused(tuple(t for t in tests if t in sc))
            out: dict[str, Any] = {"tests": {}, "fused_tests": list(fused_tests)}
            for t in (t for t in tests if t in sc):
                thr = res["thresholds"][t]
                out["tests"][t] = {"threshold": thr,
                                   "devel": _metrics(universe, split.devel, sc[t], thr),
                                   "target": _metrics(universe, split.target, sc[t], thr)}
            parts = []
            if recipe.fusion_fit in ("source", "source+cross-database"):
                parts.append((split.devel, sc, "source:"))
            if recipe.fusion_fit in ("cross-database", "source+cross-database"):
                fit_from = FUSION_FIT_FROM[name]
                parts.append((splits[fit_from].target, results[fit_from][rname]["scores"],
                              "cross:"))
                out["fusion_fitted_on"] = (
                    ("the source's threshold part + " if len(parts) > 1 else "")
                    + f"{fit_from} target ({splits[fit_from].target_name})")
            fmodel, frep = _fused(universe, parts, recipe, fused_tests)
            fs = fused_scores(fmodel, sc)
            out["fused"] = {"threshold": fmodel.threshold, "weights": frep["weights"],
                            "devel_out_of_fold": frep["out_of_fold"],
                            "target": _metrics(universe, split.target, fs, fmodel.threshold)}
            if name in CROSS_DATABASE:
                out["calibration"] = _calibration(
                    universe, data, split, res, fmodel, recipe, target_bpcer,
                    threshold_for_bpcer, subject_halves)
            entry["recipes"][rname] = out
    return jsonable(report)


def _calibration(universe: Universe, data: UniverseData, split: ProtocolSplit,
                 res: dict[str, Any], fmodel: Any, recipe: Recipe, target_bpcer: float,
                 threshold_for_bpcer: Any, subject_halves: Any) -> dict[str, Any]:
    """Calibrate on the live frames of half the target's subjects, score the other half."""
    y = universe.is_live
    calib, evaluation = subject_halves(universe, split.target)
    sc = dict(res["scores"])
    out: dict[str, Any] = {"calibration_subjects": sorted(set(universe.subject[calib])),
                           "evaluation_subjects": sorted(set(universe.subject[evaluation])),
                           "n_calibration_live": int(np.sum(calib & y)),
                           "uncalibrated": {}, "calibrated": {}}
    fs = fused_scores(fmodel, sc)
    for t in sc:
        out["uncalibrated"][t] = _metrics(universe, evaluation, sc[t], res["thresholds"][t])
    out["uncalibrated"]["fused"] = _metrics(universe, evaluation, fs, fmodel.threshold)
    qm = res["quality_model"]
    if qm.domain is not None:  # re-standardise the quality measures on the calibration frames
        live = calib & y & np.all(np.isfinite(data.features), axis=1)
        sc["quality"] = quality_predict(qm.with_domain(data.features[live]), data.features)
    fs = fused_scores(fmodel, sc)
    for t, s in (*sc.items(), ("fused", fs)):
        live = s[calib & y]
        thr = threshold_for_bpcer(live[np.isfinite(live)], target_bpcer)
        out["calibrated"][t] = _metrics(universe, evaluation, s, thr)
    return out


def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{100 * float(v):.1f}%"


def _row(cells: Sequence[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _fused_tests(report: dict[str, Any], recipe_result: dict[str, Any]) -> list[str]:
    """The tests a recipe's fusion used (reports before the probe: the report's tests)."""
    return list(recipe_result.get("fused_tests", report.get("tests", ("quality", "face3d"))))


def summary_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per split x decision x recipe: target APCER_max, BPCER, ACER, EER, AUC."""
    rows = []
    for name, e in report["splits"].items():
        for rname, r in e["recipes"].items():
            for t, v in (*r["tests"].items(), ("fused", r["fused"])):
                m = v["target"]["frame"]
                fused = "+".join(_fused_tests(report, r)) + " (fused)"
                rows.append({"split": name, "decision": fused if t == "fused" else t,
                             "recipe": rname,
                             "threshold": v["threshold"],
                             **{k: m[k] for k in ("APCER_max", "BPCER", "ACER", "EER", "AUC")}})
    return rows


def report_markdown(report: dict[str, Any], command: str = "") -> str:
    """The protocol report (``report.md``): per split, per test and fused, each recipe."""
    lines = ["# Generalisation protocols", ""]
    if command:
        lines += [f"Command: `{command}`", ""]
    lines += [
        "Each split: models trained on the source's train part, thresholds (EER point) and the "
        "fusion chosen on the source's threshold part, the target scored once at those "
        "thresholds. Frame level; rates on the target. "
        + (f"cnn: {report['not_applicable']['cnn']}." if report.get("not_applicable")
           else f"cnn: trained per source with the `{report.get('cnn_recipe')}` recipe "
                f"({report.get('cnn_config')})."), "",
        "Recipes: " + "; ".join(
            f"`{k}`: quality {v['quality']}; fusion {v['fusion']}, threshold "
            f"{v['fusion_threshold']}" for k, v in report["recipes"].items()) + ".", "",
        _row(["split", "decision", "recipe", "threshold", "APCER max", "BPCER", "ACER", "EER",
              "AUC"]),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary_rows(report):
        inv = " (inverted)" if r["AUC"] is not None and r["AUC"] < 0.5 else ""
        lines.append(_row([r["split"], r["decision"], r["recipe"], f"{r['threshold']:.4f}",
                           _pct(r["APCER_max"]), _pct(r["BPCER"]), _pct(r["ACER"]),
                           _pct(r["EER"]), f"{r['AUC']:.3f}{inv}"]))
    for name, e in report["splits"].items():
        if "shipped_face3d" in e:
            m = e["shipped_face3d"]["target"]["frame"]
            lines += ["", f"Shipped face3d (trained on Replay-Attack train only, threshold "
                      f"{e['shipped_face3d']['threshold']:.4f} from RA devel) on the {name} "
                      f"target ({e['target']}): APCER {_pct(m['APCER_max'])}, BPCER "
                      f"{_pct(m['BPCER'])}, ACER {_pct(m['ACER'])}, EER {_pct(m['EER'])}, "
                      f"AUC {m['AUC']:.3f}."]
    cal = [(n, e) for n, e in report["splits"].items()
           if any("calibration" in r for r in e["recipes"].values())]
    if cal:
        lines += ["", "## Calibration on the target's own live frames", "",
                  f"Target subjects split in two halves; the live frames of the first half "
                  f"set every threshold (BPCER {100 * report['target_bpcer']:.0f}% on them) "
                  "and, where the quality model is domain-standardised, its domain statistics; "
                  "rates on the second half.", "",
                  _row(["split", "decision", "recipe", "uncalibrated APCER / BPCER / ACER",
                        "calibrated APCER / BPCER / ACER", "EER uncal. / cal."]),
                  "|---|---|---|---|---|---|"]
        for name, e in cal:
            for rname, r in e["recipes"].items():
                c = r["calibration"]
                tests = _fused_tests(report, r)
                fused = "+".join(tests) + " (fused)"
                for t in (*tests, "fused"):
                    u, k = c["uncalibrated"][t]["frame"], c["calibrated"][t]["frame"]
                    lines.append(_row([
                        name, fused if t == "fused" else t, rname,
                        f"{_pct(u['APCER_max'])} / {_pct(u['BPCER'])} / {_pct(u['ACER'])}",
                        f"{_pct(k['APCER_max'])} / {_pct(k['BPCER'])} / {_pct(k['ACER'])}",
                        f"{_pct(u['EER'])} / {_pct(k['EER'])}"]))
    lines += ["", "## Counts (live / attack frames)", "",
              _row(["split", "source train", "source threshold part", "target"]),
              "|---|---|---|---|"]
    for name, e in report["splits"].items():
        c = e["counts"]
        lines.append(_row([name, *(f"{c[k]['live']} / {c[k]['attack']}"
                                   for k in ("train", "devel", "target"))]))
    return "\n".join(lines) + "\n"
