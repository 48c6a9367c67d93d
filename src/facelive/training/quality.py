"""Training the quality test: features of the shared databases -> LDA -> devel threshold.

``facelive train quality --nuaa PATH --replay-attack PATH`` reproduces the shipped model
(``models/quality.json``) and its model card numbers. Per-image features are cached outside the
repository (``~/.cache/facelive``, or ``$FACELIVE_CACHE``) because they are derived from
research-only images and must never be committed; the cache is keyed by the measure code's hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelive.arraycache import cached_arrays, digest
from facelive.datasets import Sample
from facelive.errors import FaceliveError

VERSION = "2"


FEATURES_VERSION = "1"
"""Version of the quality features (the measures of :mod:`facelive.iqa`, the working resolution
of :func:`facelive.liveness.quality.canonical_frame`, :func:`~facelive.liveness.quality.
quality_features`): part of the feature cache's key. Bump it with any change that alters a
feature value; changes that keep every value (refactoring, docstrings) keep the cache."""


def code_hash() -> str:
    """The feature cache's key part: :data:`FEATURES_VERSION`, the working resolution and the
    NIQE/BIQI model files the measures read."""
    from facelive.liveness import quality

    pkg = Path(__file__).resolve().parents[1]
    files = sorted((pkg / "models").glob("niqe*")) + sorted((pkg / "models").glob("biqi*"))
    parts: list[bytes | str] = [f.read_bytes() for f in files]
    parts += [FEATURES_VERSION, str(quality.CANONICAL_SHORT_SIDE)]
    return digest(parts)


AUGMENT_RECIPE = "1"
"""Bump when :func:`capture_chain` changes (the augmented-feature cache key includes it)."""


def capture_chain(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random capture/transmission chain applied to a BGR ``uint8`` frame: rescaling (0.5x to
    1.5x), exposure and white balance, gamma, blur, sensor noise and JPEG re-encoding (quality
    40-95), each with some probability. Used to widen the quality test's training frames."""
    import cv2

    img = image
    if rng.random() < 0.7:
        s = float(np.exp(rng.uniform(np.log(0.5), np.log(1.5))))
        h, w = img.shape[:2]
        img = cv2.resize(img, (max(32, round(w * s)), max(32, round(h * s))),
                         interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    x = img.astype(np.float32) / 255.0
    if rng.random() < 0.5:
        x = x * rng.uniform(0.8, 1.2) * rng.uniform(0.92, 1.08, size=3).astype(np.float32)
    if rng.random() < 0.5:
        x = np.clip(x, 0, 1) ** rng.uniform(0.7, 1.4)
    if rng.random() < 0.3:
        x = cv2.GaussianBlur(x, (0, 0), rng.uniform(0.3, 1.2))
    if rng.random() < 0.4:
        x = x + rng.normal(0, rng.uniform(1, 5) / 255, x.shape).astype(np.float32)
    img = np.clip(x * 255 + 0.5, 0, 255).astype(np.uint8)
    if rng.random() < 0.7:
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(40, 96))])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    return img


def _features_of(sample: Sample, augment_seed: int | None = None) -> np.ndarray:
    import cv2

    from facelive.liveness.quality import quality_features

    cv2.setNumThreads(1)
    try:
        image = sample.load()
        if augment_seed is not None:
            seed = int(digest([sample.key, str(augment_seed)], 8), 16)
            image = capture_chain(image, np.random.default_rng(seed))
        return quality_features(image)
    except FaceliveError:  # unreadable or unusable image: the caller reports a NaN row
        return np.full(25, np.nan)


def _augmented_features_of(args: tuple[Sample, int]) -> np.ndarray:
    return _features_of(*args)


def extract_features(samples: Sequence[Sample], *, workers: int = 1, name: str = "features",
                     use_cache: bool = True, augment_seed: int | None = None) -> np.ndarray:
    """Quality features of ``samples`` ((n, 25) float64), with a progress bar and a disk cache.

    ``augment_seed``: features of a :func:`capture_chain` copy of each frame instead (the chain
    drawn from the sample's key and the seed, so it is reproducible)."""
    from rich.progress import Progress

    def compute() -> dict[str, np.ndarray]:
        out = np.empty((len(samples), 25))
        jobs = [(s, augment_seed) for s in samples]
        with Progress() as progress:
            task = progress.add_task(f"quality features: {name}", total=len(samples))
            if workers > 1:
                with ProcessPoolExecutor(workers) as pool:
                    for i, f in enumerate(pool.map(_augmented_features_of, jobs, chunksize=16)):
                        out[i] = f
                        progress.advance(task)
            else:
                for i, job in enumerate(jobs):
                    out[i] = _augmented_features_of(job)
                    progress.advance(task)
        return {"features": out}

    tag = digest(["\n".join(s.key for s in samples)], 12)
    aug = "" if augment_seed is None else (
        f"-aug{augment_seed}-" + digest([AUGMENT_RECIPE], 8))
    return cached_arrays(f"quality-{name}{aug}-{tag}-{code_hash()}", compute,
                         use_cache=use_cache)["features"]


def _valid(features: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(features), axis=1)


@dataclass(frozen=True)
class QualityRecipe:
    """How a quality model is fitted (see :meth:`facelive.liveness.quality.QualityModel.fit`)."""

    method: str = "lda"
    """``lda`` or ``sign-constrained``."""
    l2: float = 1.0
    """L2 penalty of ``sign-constrained``."""
    domains: bool = False
    """Standardise each capture domain (NUAA session, Replay-Attack) on its live frames."""
    augment: bool = False
    """Add one capture-chain augmented copy (:func:`capture_chain`) of every training frame."""

    def describe(self) -> str:
        m = ("LDA" if self.method == "lda"
             else f"sign-constrained logistic regression (L2 {self.l2:g})")
        return (m + (", per-domain live standardisation" if self.domains else "")
                + (", capture-chain augmentation" if self.augment else ""))


BEFORE = QualityRecipe()
"""The recipe of the first shipped quality model (LDA on the raw measures)."""
SHIPPED = QualityRecipe(method="sign-constrained", l2=1.0, domains=True)
"""The shipped recipe: measures standardised per capture domain on its live frames,
each measure allowed to count only in the direction it points in every training domain."""


TRIED = {
    "LDA + capture-chain augmentation": QualityRecipe(augment=True),
    "sign-constrained, L2 0.1": QualityRecipe(method="sign-constrained", l2=0.1, domains=True),
    "sign-constrained, L2 1, augmentation": QualityRecipe(method="sign-constrained", l2=1.0,
                                                          domains=True, augment=True),
}
"""Recipes measured against the shipped one in the model card (kept out where they did not
help)."""


def fit_recipe(features: np.ndarray, is_live: np.ndarray, domains: np.ndarray,
               recipe: QualityRecipe, augmented: np.ndarray | None = None) -> Any:
    """A :class:`~facelive.liveness.quality.QualityModel` fitted by ``recipe`` on the rows with
    finite features (``augmented``: the augmented copies' features, same rows)."""
    from facelive.liveness.quality import QualityModel

    x, y, d = features, np.asarray(is_live, bool), np.asarray(domains, dtype=object)
    if recipe.augment:
        if augmented is None:
            raise ValueError("this recipe needs the augmented copies' features")
        x, y, d = np.vstack([x, augmented]), np.concatenate([y, y]), np.concatenate([d, d])
    ok = _valid(x)
    return QualityModel.fit(x[ok], y[ok], d[ok] if recipe.domains else None,
                            method=recipe.method, l2=recipe.l2)


def quality_predict(model: Any, features: np.ndarray) -> np.ndarray:
    """P(live) per row, NaN where a feature is missing."""
    ok = _valid(features)
    out = np.full(len(features), np.nan)
    if ok.any():
        out[ok] = model.predict_proba(features[ok])
    return out


def universe_features(universe: Any, *, workers: int = 1, augmented: bool = False
                      ) -> np.ndarray:
    """Quality features over a :class:`facelive.evaluation.protocols.Universe` (cached per
    part); ``augmented``: of one capture-chain copy of each frame (seed 1)."""
    from facelive.evaluation.protocols import PARTS

    names = {"nuaa": "nuaa-train", "ra-train": "ra-train", "ra-devel": "ra-devel"}
    return np.vstack([extract_features(universe.samples[universe.part_slice(p)],
                                       workers=workers, name=names[p],
                                       augment_seed=1 if augmented else None) for p in PARTS])


def protocol_results(universe: Any, features: np.ndarray, augmented: np.ndarray | None,
                     recipes: dict[str, QualityRecipe]) -> dict[str, Any]:
    """The quality test on every generalisation protocol split, per recipe: trained on the
    source's train part, threshold at the EER point of its threshold part, target scored."""
    from facelive.evaluation import eer_threshold, evaluate_scores
    from facelive.evaluation.protocols import PROTOCOLS, protocol_split

    y = universe.is_live
    out: dict[str, Any] = {}
    for name in PROTOCOLS:
        split = protocol_split(name, universe)
        out[name] = {"description": split.description}
        for rname, recipe in recipes.items():
            tr = split.train
            model = fit_recipe(features[tr], y[tr], universe.domain[tr], recipe,
                               None if augmented is None else augmented[tr])
            p = quality_predict(model, features)
            dv = split.devel & np.isfinite(p)
            thr = float(eer_threshold(p[dv & y], p[dv & ~y]))
            out[name][rname] = {
                "threshold": thr,
                "target": evaluate_scores([None if not np.isfinite(v) else float(v)
                                           for v in p[split.target]],
                                          universe.select(split.target), thr)}
    return out


def refit_without(nuaa_root: str | Path, replay_root: str | Path, held: np.ndarray
                  ) -> np.ndarray:
    """Scores on every NUAA train-list image from a model fitted with the shipped model's
    recipe (read from its ``info``) on NUAA minus the ``held`` rows plus Replay-Attack train:
    out-of-sample scores for the held rows (used to fit the fusion)."""
    from facelive.evaluation.protocols import Universe
    from facelive.liveness.quality import QualityModel

    info = QualityModel.load().info.get("recipe") or {}
    recipe = QualityRecipe(**{k: v for k, v in info.items()
                              if k in QualityRecipe.__dataclass_fields__})
    universe = Universe.load(nuaa_root, replay_root)
    feats = universe_features(universe)
    aug = universe_features(universe, augmented=True) if recipe.augment else None
    nuaa = universe.part == "nuaa"
    train = (nuaa & ~np.concatenate([held, np.zeros(len(universe) - len(held), bool)])) | (
        universe.part == "ra-train")
    model = fit_recipe(feats[train], universe.is_live[train], universe.domain[train], recipe,
                       None if aug is None else aug[train])
    return quality_predict(model, feats[nuaa])


def train_quality(nuaa_root: str | Path, replay_root: str | Path, *, workers: int = 1,
                  out_model: Path | None = None, threshold_rule: str = "eer",
                  target_apcer: float = 0.1, recipe: QualityRecipe = SHIPPED) -> dict[str, Any]:
    """Train the shipped quality model; returns the report (Replay-Attack devel, and every
    generalisation protocol split for this recipe and the one it replaced).

    Train: NUAA train + Replay-Attack train (capture domains: NUAA s01, NUAA s02,
    Replay-Attack). Threshold: Replay-Attack devel, at the EER point (``threshold_rule="eer"``)
    or at the lowest threshold whose APCER <= ``target_apcer``.
    """
    from dataclasses import asdict

    from facelive import modelstore
    from facelive.evaluation import eer_threshold, evaluate_scores, threshold_for_apcer
    from facelive.evaluation.protocols import Universe
    from facelive.liveness.quality import MODEL_FILE
    from facelive.training.report import jsonable

    universe = Universe.load(nuaa_root, replay_root)
    feats = universe_features(universe, workers=workers)
    aug = universe_features(universe, workers=workers, augmented=True) if recipe.augment \
        else None
    y = universe.is_live
    train = universe.part != "ra-devel"
    dev = universe.part == "ra-devel"
    ra_devel = universe.select(dev)

    report: dict[str, Any] = {"recipe": asdict(recipe), "recipe_text": recipe.describe()}
    model = fit_recipe(feats[train], y[train], universe.domain[train], recipe,
                       None if aug is None else aug[train])
    sd = quality_predict(model, feats[dev])
    live = y[dev]
    f = np.isfinite(sd)
    if threshold_rule == "eer":
        thr = eer_threshold(sd[live & f], sd[~live & f])
    else:
        thr = threshold_for_apcer(sd[live & f], sd[~live & f], target_apcer)
    model.threshold = float(thr)
    report["devel"] = evaluate_scores([None if not np.isfinite(v) else float(v) for v in sd],
                                      ra_devel, threshold=model.threshold)
    report["train_counts"] = {"nuaa": universe.sizes["nuaa"],
                              "replay_attack_train": universe.sizes["ra-train"]}
    # --- generalisation protocols: this recipe, the one it replaced and what else was tried ---
    recipes = {"before (LDA)": BEFORE, **TRIED, "shipped recipe": recipe}
    if any(r.augment for r in recipes.values()) and aug is None:
        aug = universe_features(universe, workers=workers, augmented=True)
    report["protocols"] = protocol_results(universe, feats, aug, recipes)
    report["devel_eer_by_recipe"] = {}
    for rname, r in recipes.items():
        m = fit_recipe(feats[train], y[train], universe.domain[train], r,
                       None if aug is None else aug[train])
        p = quality_predict(m, feats[dev])
        f = np.isfinite(p)
        report["devel_eer_by_recipe"][rname] = evaluate_scores(
            [float(v) if ok else None for v, ok in zip(p, f, strict=True)], ra_devel,
            threshold=0.5)["frame"]["EER"]
    model.info = {
        "version": VERSION,
        "trained_on": ["NUAA train (official list)", "Replay-Attack train"],
        "recipe": asdict(recipe),
        "domains": "NUAA s01, NUAA s02, Replay-Attack (live frames)"
        if recipe.domains else None,
        "threshold_rule": threshold_rule if threshold_rule == "eer" else f"apcer<={target_apcer}",
        "threshold_from": "Replay-Attack devel",
        "licence": "derived from research-only databases (NUAA, Replay-Attack): research use only",
        "devel": {k: report["devel"]["frame"][k] for k in ("APCER_max", "BPCER", "ACER", "EER")},
    }
    if out_model is None:
        modelstore.write_json(MODEL_FILE, model.to_dict())
    else:
        modelstore.write_json(out_model.name, model.to_dict(), out_model.parent)
    report["model"] = model.to_dict()
    report["weights"] = dict(zip(model.feature_names, model.linear.coef.tolist(), strict=True))
    return jsonable(report)


def card_markdown(report: dict[str, Any], command: str) -> str:
    """The quality model card (Markdown), every number taken from ``report``."""
    from facelive.evaluation import comparison_table as metrics_table
    from facelive.liveness.quality import CANONICAL_SHORT_SIDE

    m = report["model"]
    rows = [("shipped: NUAA+RA train -> RA devel (threshold: devel EER)", report["devel"])]
    prot = []
    for name, e in report["protocols"].items():
        for rname, r in e.items():
            if rname == "description":
                continue
            prot.append((f"{name} ({e['description']}), {rname}", r["target"]))
    inverted = [label for label, r in prot if (r["frame"]["AUC"] or 0) < 0.5]
    shipped_inverted = [x for x in inverted if x.endswith("shipped recipe")]
    dev = report["devel_eer_by_recipe"]
    tried = "; ".join(f"{k} {100 * v:.1f}%" for k, v in dev.items())
    weights = ", ".join(f"{k} {v:+.2f}" for k, v in report["weights"].items() if v)
    dropped = ", ".join(k for k, v in report["weights"].items() if not v) or "none"
    return f"""# Model card: quality test (W-IQA), `models/quality.json`

**What it is.** 25 image-quality measures of the whole frame against a 3x3 Gaussian-blurred
copy of itself (Galbally, Marcel & Fierrez, IEEE TIP 2014; definitions in
`docs/quality-measures.md`), computed at a canonical working resolution (short side
{CANONICAL_SHORT_SIDE} px), then classified linearly. Recipe: **{report["recipe_text"]}**.
Output: P(live); decision `live` when P(live) >= {m["threshold"]:.4f}.

**Per-domain standardisation**. The measures describe the capture chain (camera,
optics, lighting, compression) more than the attack, so each training frame is first expressed
relative to the live frames of its own capture domain (NUAA s01, NUAA s02,
Replay-Attack): per measure, minus their mean, divided by their standard deviation. At run time
the model uses the average training domain (`"domain"` in the JSON); `facelive calibrate --live
DIR` replaces it with the statistics of a deployment's own live frames.

**Sign constraints.** Each measure may only count in the direction (live minus attack mean) it
points in *every* training domain; measures whose direction differs between domains get weight
0. Unconstrained LDA gives large opposite weights to correlated measures, a combination that
reverses on another database (NUAA -> Replay-Attack AUC below 0.5 in the table below). Weights
per standardised measure: {weights}. Weight 0: {dropped}.

**Training data.** NUAA Photograph Imposter Database, official training list
({report["train_counts"]["nuaa"]} images), and Replay-Attack `train`
({report["train_counts"]["replay_attack_train"]} frames, 5 per video). Threshold chosen on
Replay-Attack `devel` at the EER point. **Licence: both databases are research-only; this model
is derived from them and inherits research-use-only terms.** No test split was used (it is held
back); independent test numbers are therefore not known.

**Reproduce** (features cached in `~/.cache/facelive`; about 10 minutes on 2 cores without the
cache):

    {command}

## Replay-Attack devel (the shipped model; frame level)

{metrics_table(rows)}

Video level:

{metrics_table(rows, "video")}

## Generalisation protocols (docs/evaluation.md; frame level, target rates)

Each row: a model with this recipe trained on the split's source train part, its threshold at
the EER point of the source's threshold part, the target scored once.

{metrics_table(prot)}

Inverted (AUC < 0.5): {"; ".join(inverted) if inverted else "none"}. With the shipped recipe:
{"; ".join(shipped_inverted) if shipped_inverted else "none"}.

**What was kept.** Replay-Attack devel EER of each recipe (trained on NUAA + RA train, frame
level, in-domain): {tried}. The sign constraints remove the inversion on NUAA -> Replay-Attack
and lower the cross-database EER in both directions, at a cost in-domain and across NUAA's
sessions (rows above); they are kept because a test that reverses on a new camera is worse than
a weak one. Capture-chain augmentation of the training frames (one copy of each, rescaling,
exposure, gamma, blur, noise, JPEG 40-95; `facelive.training.quality.capture_chain`) made every
split worse with the constraints; without them it helped only NUAA -> Replay-Attack, which stayed
inverted. It is not used. The L2 strength was
chosen between 0.1 and 1 on these splits (so these rows flatter it somewhat); the per-domain
standardisation changes nothing by itself where the source has one capture domain and is kept
for calibration (`facelive calibrate`).

**Reading the numbers.** Whole-frame quality statistics capture the capture chain as much as the
attack: in-domain the test is fair, across sessions and databases it is weak. The sign
constraints keep it from reversing on the other database; its threshold and domain statistics
still belong to the training cameras, so calibrate on your own live frames (`facelive
calibrate`) and treat it as a weak signal to fuse with the face-based tests.

**Limits.** Digitally upscaled input changes the sharpness statistics; native camera resolutions are
handled by the canonical resampling (tested at 320x240, 640x480 and 1280x720).
"""
