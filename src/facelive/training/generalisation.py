"""The generalisation protocols of :mod:`facelive.evaluation.protocols`, run end to end.

For every protocol split each test's model is trained on the split's source *train* part, its
threshold is the EER point on the source *threshold* part, and the fusion of the retrained tests
is fitted and thresholded on the source threshold part too; the target is then scored once at
those thresholds. The CNN is retrained per source only with ``cnn_recipe`` (a CPU recipe of
:mod:`facelive.training.cnn.protocol`, minutes per split); without it the CNN is left out, since
the shipped one was trained on NUAA and Replay-Attack together and has no honest score on any
split.

Two recipes are compared: ``before`` (the recipes of the models shipped before issue 11: LDA
quality model, LDA fusion, the security-first operating point) and ``after`` (what issue 11
kept, see :data:`RECIPES`). Per-image inputs (quality features, face meshes, CNN scores) and the
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

    def fused(self, tests: Sequence[str]) -> tuple[str, ...]:
        """The tests of ``tests`` this recipe fuses."""
        return tuple(t for t in tests if t != "face3d" or self.face3d)

    def describe(self) -> dict[str, str]:
        tests = [t for t, on in (("quality", True), ("probe", self.probe),
                                 ("face3d", self.face3d)) if on]
        fusion = self.fusion + (f" (L2 {self.fusion_l2:g})" if self.fusion == "nonneg" else "")
        return {"quality": self.quality.describe(), "fusion": fusion,
                "fusion_threshold": self.fusion_threshold, "tests": ", ".join(tests)}


RECIPES = {
    "before": Recipe("before"),
    "after": Recipe("after", quality=SHIPPED, fusion="nonneg",
                    fusion_threshold="domain-minimax", probe=True),
    # the default decision since session 7: face3d left the default set (inverted or at chance
    # wherever it is trained on NUAA), so the fusion is fitted without it
    "after-2d": Recipe("after-2d", quality=SHIPPED, fusion="nonneg",
                       fusion_threshold="domain-minimax", probe=True, face3d=False,
                       fusion_l2=SHIPPED_FUSION_L2),
}


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
              augmented: bool = False) -> UniverseData:
    """Quality features (and those of augmented copies), face meshes and shipped-CNN scores of
    every sample (cached)."""
    from facelive.training.face3d.data import extract_meshes
    from facelive.training.fusion import score_tests
    from facelive.training.quality import extract_features, universe_features

    feats, verts, inten, status, cnn_scores = [], [], [], [], []
    for part in PARTS:
        samples = universe.samples[universe.part_slice(part)]
        name = CACHE_NAMES[part]
        feats.append(extract_features(samples, workers=workers, name=name))
        m = extract_meshes(samples, name=name)
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
                 cnn: np.ndarray | None = None, probe: np.ndarray | None = None
                 ) -> dict[str, Any]:
    """Train the tests of ``recipe`` on ``split``'s source; return their scores on the whole
    universe, their source thresholds, and the quality model (for calibration)."""
    y = universe.is_live
    tr = split.train
    qmodel = fit_recipe(data.features[tr], y[tr], universe.domain[tr], recipe.quality,
                        None if data.augmented is None else data.augmented[tr])
    feats = data.features
    scores = {"quality": quality_predict(qmodel, feats)}
    if cnn is not None:
        scores["cnn"] = cnn
    if probe is not None:
        scores["probe"] = probe
    if face3d is None:
        face3d = face3d_scores(universe, data, split.train, epochs=epochs,
                               desc=f"face3d ({split.name})")
    scores["face3d"] = face3d
    thresholds = {t: eer_thr(s[split.devel], y[split.devel]) for t, s in scores.items()}
    return {"scores": scores, "thresholds": thresholds, "quality_model": qmodel}


def _fused(universe: Universe, split: ProtocolSplit, scores: dict[str, np.ndarray],
           recipe: Recipe, tests: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """Fusion of ``tests`` fitted and thresholded on the source threshold part (out-of-fold,
    subject-disjoint folds); returns the fitted :class:`LinearFusion` of all ``tests`` and the
    fitting report."""
    from facelive.training.fusion import fit_subsets

    dv = split.devel
    samples = universe.select(dv)
    folds = min(5, len(set(universe.subject[dv])))
    models, rep = fit_subsets({t: scores[t][dv] for t in tests}, samples, tests, folds=folds,
                              method=recipe.fusion, threshold_rule=recipe.fusion_threshold,
                              domains=[_database(p) for p in universe.part[dv]],
                              groups=list(universe.subject[dv]), l2=recipe.fusion_l2)
    return models[tuple(sorted(tests))], rep["+".join(sorted(tests))]


def _database(part: str) -> str:
    return "nuaa" if part == "nuaa" else "replay-attack"


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
    data = load_data(universe, workers=workers, cnn=False,  # the CNN is not applicable here
                     augmented=any(RECIPES[r].quality.augment for r in recipes))
    y = universe.is_live
    from facelive import modelstore
    from facelive.liveness.face3d import CARD_FILE, MODEL_FILE

    card = modelstore.read_json(CARD_FILE, modelstore.find_folder(MODEL_FILE))
    shipped_ra_only = list(card.get("trained_on", [])) == ["Replay-Attack train"]
    shipped3d = shipped_face3d_scores(data.vertices, data.intensity, data.mesh_ok)
    with_probe = any(RECIPES[r].probe for r in recipes)
    tests = tuple(t for t, on in (("quality", True), ("cnn", bool(cnn_recipe)),
                                  ("probe", with_probe), ("face3d", True)) if on)
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
    for name in protocols:
        split = protocol_split(name, universe)
        entry: dict[str, Any] = {
            "description": split.description, "source": split.source,
            "target": split.target_name,
            "counts": {k: {"live": int(np.sum(m & y)), "attack": int(np.sum(m & ~y))}
                       for k, m in (("train", split.train), ("devel", split.devel),
                                    ("target", split.target))},
            "recipes": {},
        }
        if name == "ra-to-nuaa" and shipped_ra_only:
            f3d = shipped3d
            entry["face3d_source_model"] = "the shipped face3d model (trained on RA train)"
        else:
            f3d = face3d_scores(universe, data, split.train, epochs=epochs,
                                desc=f"face3d ({name})")
        if name == "cross-session" and shipped_ra_only:  # never saw NUAA: an honest check too
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
        for rname in recipes:
            recipe = RECIPES[rname]
            res = split_scores(universe, data, split, recipe, face3d=f3d, epochs=epochs, cnn=cnn,
                               probe=probe if recipe.probe else None)
            sc = res["scores"]
            fused_tests = recipe.fused(tuple(t for t in tests if t in sc))
            out: dict[str, Any] = {"tests": {}, "fused_tests": list(fused_tests)}
            for t in (t for t in tests if t in sc):
                thr = res["thresholds"][t]
                out["tests"][t] = {"threshold": thr,
                                   "devel": _metrics(universe, split.devel, sc[t], thr),
                                   "target": _metrics(universe, split.target, sc[t], thr)}
            fmodel, frep = _fused(universe, split, sc, recipe, fused_tests)
            fs = fused_scores(fmodel, sc)
            out["fused"] = {"threshold": fmodel.threshold, "weights": frep["weights"],
                            "devel_out_of_fold": frep["out_of_fold"],
                            "target": _metrics(universe, split.target, fs, fmodel.threshold)}
            if name in CROSS_DATABASE:
                out["calibration"] = _calibration(
                    universe, data, split, res, fmodel, recipe, target_bpcer,
                    threshold_for_bpcer, subject_halves)
            entry["recipes"][rname] = out
        report["splits"][name] = entry
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
    lines = ["# Generalisation protocols (issue 11)", ""]
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
