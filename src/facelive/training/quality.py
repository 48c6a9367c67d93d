"""Training the quality test: features of the shared databases -> LDA -> devel threshold.

``facelive train quality --nuaa PATH --replay-attack PATH`` reproduces the shipped model
(``models/quality.json``) and its model card numbers. Per-image features are cached outside the
repository (``~/.cache/facelive``, or ``$FACELIVE_CACHE``) because they are derived from
research-only images and must never be committed; the cache is keyed by the measure code's hash.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from facelive.datasets import Sample
from facelive.diskcache import cached_arrays, digest

VERSION = "1"


def code_hash() -> str:
    """Digest of the measure code (``facelive/iqa/``, ``facelive/liveness/quality.py``) and the
    NIQE/BIQI models: cached features depend on them."""
    pkg = Path(__file__).resolve().parents[1]
    files = sorted((pkg / "iqa").glob("*.py")) + [pkg / "liveness" / "quality.py"]
    files += sorted((pkg / "models").glob("niqe*"))
    files += sorted((pkg / "models").glob("biqi*"))
    return digest(f.read_bytes() for f in files)


def _features_of(sample: Sample) -> np.ndarray:
    import cv2

    from facelive.liveness.quality import quality_features

    cv2.setNumThreads(1)
    try:
        return quality_features(sample.load())
    except Exception:  # an unreadable image is reported by the caller as NaN row
        return np.full(25, np.nan)


def extract_features(samples: Sequence[Sample], *, workers: int = 1, name: str = "features",
                     use_cache: bool = True) -> np.ndarray:
    """Quality features of ``samples`` ((n, 25) float64), with a progress bar and a disk cache."""
    from rich.progress import Progress

    def compute() -> dict[str, np.ndarray]:
        out = np.empty((len(samples), 25))
        with Progress() as progress:
            task = progress.add_task(f"quality features: {name}", total=len(samples))
            if workers > 1:
                with ProcessPoolExecutor(workers) as pool:
                    for i, f in enumerate(pool.map(_features_of, samples, chunksize=16)):
                        out[i] = f
                        progress.advance(task)
            else:
                for i, s in enumerate(samples):
                    out[i] = _features_of(s)
                    progress.advance(task)
        return {"features": out}

    tag = digest(["\n".join(s.key for s in samples)], 12)
    return cached_arrays(f"quality-{name}-{tag}-{code_hash()}", compute,
                         use_cache=use_cache)["features"]


def _valid(features: np.ndarray) -> np.ndarray:
    return np.all(np.isfinite(features), axis=1)


def train_quality(nuaa_root: str | Path, replay_root: str | Path, *, workers: int = 1,
                  out_model: Path | None = None, threshold_rule: str = "eer",
                  target_apcer: float = 0.1) -> dict[str, Any]:
    """Train the shipped quality model; returns the report (metrics in-domain and cross-dataset).

    Train: NUAA train + Replay-Attack train. Threshold: Replay-Attack devel, at the EER point
    (``threshold_rule="eer"``) or at the lowest threshold whose APCER <= ``target_apcer``.
    """
    from facelive import modelstore
    from facelive.datasets import open_dataset
    from facelive.datasets.nuaa import nuaa_subject_split
    from facelive.evaluation import eer_threshold, evaluate_scores, threshold_for_apcer
    from facelive.liveness.quality import MODEL_FILE, QualityModel
    from facelive.training.report import jsonable

    nuaa = open_dataset("nuaa", nuaa_root, split="train").samples()
    ra_train = open_dataset("replay-attack", replay_root, split="train").samples()
    ra_devel = open_dataset("replay-attack", replay_root, split="devel").samples()
    f_nuaa = extract_features(nuaa, workers=workers, name="nuaa-train")
    f_rtr = extract_features(ra_train, workers=workers, name="ra-train")
    f_rdv = extract_features(ra_devel, workers=workers, name="ra-devel")

    def fit(feats: np.ndarray, samples: Sequence[Sample]) -> QualityModel:
        ok = _valid(feats)
        y = np.array([s.is_live for s in samples])
        return QualityModel.fit(feats[ok], y[ok])

    def scores(model: QualityModel, feats: np.ndarray) -> list[float | None]:
        p = model.predict_proba(np.nan_to_num(feats))
        return [None if not v else float(x) for x, v in zip(p, _valid(feats), strict=True)]

    report: dict[str, Any] = {}
    # --- shipped model: NUAA train + RA train, threshold on RA devel -------------------------
    model = fit(np.vstack([f_nuaa, f_rtr]), list(nuaa) + list(ra_train))
    s_dev = scores(model, f_rdv)
    live = np.array([s.is_live for s in ra_devel])
    sd = np.array([np.nan if v is None else v for v in s_dev])
    if threshold_rule == "eer":
        thr = eer_threshold(sd[live & np.isfinite(sd)], sd[~live & np.isfinite(sd)])
    else:
        thr = threshold_for_apcer(sd[live & np.isfinite(sd)], sd[~live & np.isfinite(sd)],
                                  target_apcer)
    model.threshold = float(thr)
    report["devel"] = evaluate_scores(s_dev, ra_devel, threshold=model.threshold)
    report["train_counts"] = {"nuaa": len(nuaa), "replay_attack_train": len(ra_train)}

    # --- cross-dataset checks ----------------------------------------------------------------
    train_subj, held_subj = nuaa_subject_split(sorted({s.subject for s in nuaa}))
    nuaa_tr_mask = np.array([s.subject in set(train_subj) for s in nuaa])
    nuaa_held = [s for s, m in zip(nuaa, nuaa_tr_mask, strict=True) if not m]
    # NUAA only -> Replay-Attack devel (threshold: EER point of NUAA's own training scores)
    m_n = fit(f_nuaa, nuaa)
    tr_n = np.array(scores(m_n, f_nuaa), dtype=float)
    lv_n = np.array([s.is_live for s in nuaa])
    thr_n = eer_threshold(tr_n[lv_n], tr_n[~lv_n])
    report["cross_nuaa_to_ra_devel"] = evaluate_scores(scores(m_n, f_rdv), ra_devel,
                                                       threshold=float(thr_n))
    # Replay-Attack only -> held-back NUAA subjects (threshold from RA devel)
    m_r = fit(f_rtr, ra_train)
    sr_dev = np.array(scores(m_r, f_rdv), dtype=float)
    thr_r = eer_threshold(sr_dev[live], sr_dev[~live])
    report["cross_ra_to_nuaa_heldout"] = evaluate_scores(
        scores(m_r, f_nuaa[~nuaa_tr_mask]), nuaa_held, threshold=float(thr_r))
    report["in_domain_ra_only_devel"] = evaluate_scores(list(sr_dev), ra_devel,
                                                        threshold=float(thr_r))
    report["nuaa_heldout_subjects"] = sorted(set(held_subj))

    model.info = {
        "version": VERSION,
        "trained_on": ["NUAA train (official list)", "Replay-Attack train"],
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
    return jsonable(report)


def card_markdown(report: dict[str, Any], command: str) -> str:
    """The quality model card (Markdown), every number taken from ``report``."""
    from facelive.evaluation import comparison_table as metrics_table
    from facelive.liveness.quality import CANONICAL_SHORT_SIDE

    rows = [
        ("shipped: NUAA+RA train -> RA devel (threshold: devel EER)", report["devel"]),
        ("in-domain: RA train -> RA devel (threshold: devel EER)",
         report["in_domain_ra_only_devel"]),
        ("cross: NUAA train -> RA devel (threshold: NUAA train EER)",
         report["cross_nuaa_to_ra_devel"]),
        ("cross: RA train -> NUAA held-out subjects (threshold: RA devel EER)",
         report["cross_ra_to_nuaa_heldout"]),
    ]
    m = report["model"]
    return f"""# Model card: quality test (W-IQA), `models/quality.json`

**What it is.** 25 image-quality measures of the whole frame against a 3x3 Gaussian-blurred
copy of itself (Galbally, Marcel & Fierrez, IEEE TIP 2014; definitions in
`docs/quality-measures.md`), computed at a canonical working resolution (short side
{CANONICAL_SHORT_SIDE} px), standardised, classified by LDA (solver `eigen`, shrinkage `auto`).
Output: P(live); decision `live` when P(live) >= {m["threshold"]:.4f}.

**Training data.** NUAA Photograph Imposter Database, official training list
({report["train_counts"]["nuaa"]} images), and Replay-Attack `train`
({report["train_counts"]["replay_attack_train"]} frames, 5 per video). Threshold chosen on
Replay-Attack `devel` at the EER point. **Licence: both databases are research-only; this model
is derived from them and inherits research-use-only terms.** No test split was used (it is held
back); independent test numbers are therefore not known.

**Reproduce** (about 10 minutes on 2 cores; features cached in `~/.cache/facelive`):

    {command}

## Results (frame level; video level = mean score per video in `runs/quality/report.json`)

{metrics_table(rows)}

Video level:

{metrics_table(rows, "video")}

Cross-dataset rows fix the threshold on the training side (no peeking at the target).
NUAA held-out subjects: {", ".join(report["nuaa_heldout_subjects"])}
(every third subject; the other models in this card did see them, the RA-only model did not).

**Reading the numbers.** Whole-frame quality statistics capture the capture chain (camera, lighting,
JPEG settings) as much as the attack: trained on Replay-Attack alone the test separates
Replay-Attack devel well, but a model trained on NUAA alone ranks Replay-Attack devel
*worse than chance*, and the reverse transfer is weak too. Treat this test as a weak, domain-specific signal to fuse with the
face-based CNN test, not as a standalone defence, and re-fit it on captures from your own cameras
(`facelive train quality`, or the folder dataset) before relying on it.

**Limits.** Digitally upscaled input changes the sharpness statistics; native camera resolutions are
handled by the canonical resampling (tested at 320x240, 640x480 and 1280x720).
"""

