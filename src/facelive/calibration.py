"""Calibration on the deployment's own camera, from bona fide (live) frames only.

Every site can collect live frames of its own users or staff through its own client; attacks are
harder to come by. :func:`calibrate` scores such frames with the current models (the shipped ones
or those of ``--models`` / ``FACELIVE_MODELS``) and writes a model folder in which:

- the quality test's **domain statistics** (the live frames' per-measure mean and scale, see
  :class:`facelive.liveness.quality.DomainStats`) come from these frames, when the quality model
  was fitted with per-domain standardisation;
- every **threshold** (each built-in test's, and the fusion's for every subset of tests) is set
  so that the share of these live frames rejected (BPCER) is at most ``target_bpcer``.

Weights and networks are unchanged (ONNX graphs are copied as they are). The folder has its own
``SHA256SUMS`` and is used with ``facelive --models DIR`` or ``FACELIVE_MODELS=DIR``.

What it cannot do: it sees no attack, so it cannot tell how many attacks the new thresholds
accept; the generalisation protocol (``facelive evaluate --protocol``) measures that on held-out
subjects of other databases.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from facelive import modelstore
from facelive.errors import FaceliveError
from facelive.evaluation.metrics import bpcer, threshold_for_bpcer
from facelive.fusion.model import fused_scores

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
MIN_FRAMES = 20
"""Fewer scored live frames than this is refused (a threshold from a handful of frames is
noise)."""
CALIBRATION_FILE = "calibration.json"


def live_images(folder: str | Path) -> list[Path]:
    """Image files below ``folder`` (recursive, sorted)."""
    root = Path(folder)
    if not root.is_dir():
        raise FaceliveError(f"{root} is not a folder", code="usage")
    return sorted(p for p in root.rglob("*") if p.is_file()
                  and p.suffix.lower() in IMAGE_SUFFIXES)


def _score_frames(images: Sequence[Any], tests: Sequence[str] | None,
                  progress: Callable[[int, int], None] | None
                  ) -> tuple[list[str], dict[str, np.ndarray], np.ndarray, dict[str, int]]:
    """Per-test P(live) of every image (NaN = no score) and the quality features."""
    from facelive.imageio import load_image
    from facelive.liveness.quality import quality_features
    from facelive.pipeline import Pipeline

    with Pipeline(tests, fusion=None) as pipe:
        names = pipe.test_names
        scores = {t: np.full(len(images), np.nan) for t in names}
        feats = np.full((len(images), 25), np.nan)
        status: dict[str, int] = {}
        for i, src in enumerate(images):
            try:
                img = load_image(src)
            except FaceliveError as exc:
                status[exc.code] = status.get(exc.code, 0) + 1
                continue
            r = pipe.check_frame(img)
            for t in names:
                v = r.tests[t].score
                if v is not None:
                    scores[t][i] = v
            if "quality" in names:
                feats[i] = quality_features(img)
            key = "ok" if all(r.tests[t].score is not None for t in names) else (
                r.reason or "partial")
            status[key] = status.get(key, 0) + 1
            if progress is not None:
                progress(i + 1, len(images))
    return names, scores, feats, status


def _thr(live: np.ndarray, target: float) -> float | None:
    live = live[np.isfinite(live)]
    return None if live.size < MIN_FRAMES else threshold_for_bpcer(live, target)


def calibrate(images: Sequence[Any], out: str | Path, *, target_bpcer: float = 0.05,
              tests: Sequence[str] | None = None, source: str = "",
              progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """Calibrate on live ``images`` (paths, bytes or arrays) and write the model folder ``out``.

    Returns the report also written to ``out/calibration.json`` (counts, every threshold before
    and after, the live frames' BPCER at each). Raises :class:`FaceliveError` when fewer than
    :data:`MIN_FRAMES` frames get a score, or when ``out`` is the shipped model folder.
    """
    from facelive.fusion import load_fusion
    from facelive.liveness.face3d import CARD_FILE as FACE3D_CARD
    from facelive.liveness.face3d import MODEL_FILE as FACE3D_MODEL
    from facelive.liveness.minifas import CARD_FILE as MINIFAS_CARD
    from facelive.liveness.minifas import MODEL_FILE as MINIFAS_MODEL
    from facelive.liveness.probe import CARD_FILE as PROBE_CARD
    from facelive.liveness.probe import MODEL_FILE as PROBE_MODEL
    from facelive.liveness.quality import MODEL_FILE as QUALITY_MODEL
    from facelive.liveness.quality import QualityModel

    if not 0.0 <= target_bpcer < 0.5:
        raise FaceliveError(f"target BPCER must be in [0, 0.5), got {target_bpcer}", code="usage")
    out = Path(out)
    if out.resolve() == modelstore.MODEL_DIR.resolve():
        raise FaceliveError("refusing to overwrite the shipped models; choose another --out",
                            code="usage")
    t0 = time.perf_counter()
    names, scores, feats, status = _score_frames(images, tests, progress)
    report: dict[str, Any] = {"source": source, "n_images": len(images), "status": status,
                              "target_bpcer": target_bpcer, "tests": {}, "fusion": {}}
    if max((int(np.isfinite(s).sum()) for s in scores.values()), default=0) < MIN_FRAMES:
        raise FaceliveError(f"calibration needs at least {MIN_FRAMES} live frames with a score; "
                            f"got {status}", code="usage")
    out.mkdir(parents=True, exist_ok=True)
    # 1. the quality test: domain statistics from these frames, then its scores again
    if "quality" in names:
        qm = QualityModel.load()
        ok = np.all(np.isfinite(feats), axis=1)
        if qm.domain is not None and ok.sum() >= MIN_FRAMES:
            qm = qm.with_domain(feats[ok], source=source or "calibration")
            scores["quality"] = np.where(ok, qm.predict_proba(np.nan_to_num(feats)), np.nan)
            report["quality_domain"] = {"n": int(ok.sum()), "restandardised": True}
        else:
            report["quality_domain"] = {"restandardised": False, "reason": (
                "model fitted without domain statistics" if qm.domain is None
                else "too few frames")}
        before = qm.threshold
        thr = _thr(scores["quality"], target_bpcer)
        if thr is not None:
            qm.threshold = thr
        qm.info = {**qm.info, "calibration": {"source": source, "target_bpcer": target_bpcer,
                                              "n_live": int(np.isfinite(scores["quality"]).sum()),
                                              "previous_threshold": before}}
        modelstore.write_json(QUALITY_MODEL, qm.to_dict(), out)
        report["tests"]["quality"] = _entry(scores["quality"], before, qm.threshold)
    # 2. tests whose threshold lives in an ONNX model's JSON card: copy the graph, edit the card
    for t, onnx_name, card_name in (("cnn", "cnn.onnx", "cnn.json"),
                                    ("probe", PROBE_MODEL, PROBE_CARD),
                                    ("minifas", MINIFAS_MODEL, MINIFAS_CARD),
                                    ("face3d", FACE3D_MODEL, FACE3D_CARD)):
        if t not in names:
            continue
        folder = modelstore.find_folder(onnx_name)
        card = modelstore.read_json(card_name, folder)
        before = float(card["threshold"])
        thr = _thr(scores[t], target_bpcer)
        card["threshold"] = before if thr is None else thr
        card["calibration"] = {"source": source, "target_bpcer": target_bpcer,
                               "n_live": int(np.isfinite(scores[t]).sum()),
                               "previous_threshold": before}
        modelstore.write_bytes(onnx_name, modelstore.read_bytes(onnx_name, folder), out)
        modelstore.write_json(card_name, card, out)
        report["tests"][t] = _entry(scores[t], before, card["threshold"])
    # 3. the fusion: every subset's threshold from its fused scores on these frames
    fusion = load_fusion()
    if fusion is not None and len(names) > 1 and fusion.covers(names):
        for sub, model in fusion.subsets.items():
            if not set(sub) <= set(names):
                continue
            fs = fused_scores(model, scores)
            before = model.threshold
            thr = _thr(fs, target_bpcer)
            if thr is not None:
                model.threshold = thr
            report["fusion"]["+".join(sub)] = _entry(fs, before, model.threshold)
        fusion.info = {**fusion.info, "calibration": {"source": source,
                                                      "target_bpcer": target_bpcer}}
        from facelive.fusion import FUSION_MODEL

        modelstore.write_json(FUSION_MODEL, fusion.to_dict(), out)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    (out / CALIBRATION_FILE).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def _entry(scores: np.ndarray, before: float, after: float) -> dict[str, Any]:
    live = scores[np.isfinite(scores)]
    return {"n_live": int(live.size), "threshold_before": float(before),
            "threshold_after": float(after),
            "bpcer_before": float(bpcer(live, before)) if live.size else None,
            "bpcer_after": float(bpcer(live, after)) if live.size else None}
