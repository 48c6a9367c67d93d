"""Error rates per capture condition: the same evaluation re-run on re-encoded or rescaled frames.

A web service receives frames that went through a client's encoder, at whatever resolution the
camera and the client chose. :func:`run_conditions` scores a dataset once per condition of
:data:`CONDITIONS` (each sample transformed after decoding, before the pipeline) at one fixed
threshold and writes a table (``conditions.md``), ``conditions.json`` and a plot
(``conditions.png``).

Conditions:

- ``original``: the frames as stored;
- ``jpeg95``, ``jpeg85``, ``jpeg70``: re-encoded as JPEG at that quality (OpenCV / libjpeg);
- ``scale0.5``, ``scale2``: resampled to half size (area) or twice the size (bilinear);
- ``web``: what the browser client (``server/static/app.js``) sends: scaled down to at most
  640 px on the longer side (bilinear, as a canvas draws), then JPEG quality 85
  (``canvas.toBlob(..., "image/jpeg", 0.85)``), decoded by the server;
- ``phone``: a phone camera's file of the same scene: upscaled (bicubic) to 1920 px on the
  longer side, camera JPEG (quality 92);
- ``phone-portrait``: a portrait phone capture: the centred 9:16 column of the frame, upscaled
  (bicubic) to 1080 x 1920, stored as a camera does it: pixels rotated a quarter turn and an
  EXIF orientation tag (6) that turns them back, JPEG quality 92, decoded by facelive's decoder
  (which applies the tag).

Besides the error rates, every condition reports, per test and for the decision, the share of
frames whose decision differs from the decision on the original frame (``flips``): a test whose
decision moves with resolution or framing alone is a defect.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from facelive.datasets.base import Sample
from facelive.imageio import decode_image

WEB_MAX_SIDE = 640
WEB_JPEG_QUALITY = 85


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """``image`` encoded as JPEG at ``quality`` and decoded again (by facelive's decoder)."""
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return decode_image(buf.tobytes())


def rescale(image: np.ndarray, factor: float) -> np.ndarray:
    h, w = image.shape[:2]
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1
                      else cv2.INTER_LINEAR)


def web_client(image: np.ndarray) -> np.ndarray:
    """The browser client's pipeline: at most 640 px on the long side, JPEG quality 85."""
    h, w = image.shape[:2]
    s = min(1.0, WEB_MAX_SIDE / max(h, w))
    if s < 1.0:
        image = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_LINEAR)
    return jpeg(image, WEB_JPEG_QUALITY)


PHONE_LONG_SIDE = 1920
PHONE_JPEG_QUALITY = 92


def phone(image: np.ndarray) -> np.ndarray:
    """``image`` upscaled (bicubic) to :data:`PHONE_LONG_SIDE` on its longer side, camera JPEG."""
    h, w = image.shape[:2]
    s = PHONE_LONG_SIDE / max(h, w)
    image = cv2.resize(image, (round(w * s), round(h * s)), interpolation=cv2.INTER_CUBIC)
    return jpeg(image, PHONE_JPEG_QUALITY)


def phone_portrait(image: np.ndarray) -> np.ndarray:
    """The centred 9:16 column of ``image`` at 1080 x 1920, written as a phone writes a portrait
    (pixels a quarter turn clockwise from upright, EXIF orientation 6) and decoded by
    :func:`facelive.imageio.decode_image`."""
    import io

    from PIL import Image

    h, w = image.shape[:2]
    cw = min(w, round(h * 9 / 16))
    x0 = (w - cw) // 2
    column = image[:, x0:x0 + cw]
    upright = cv2.resize(column, (PHONE_LONG_SIDE * 9 // 16, PHONE_LONG_SIDE),
                         interpolation=cv2.INTER_CUBIC)
    stored = cv2.rotate(upright, cv2.ROTATE_90_COUNTERCLOCKWISE)  # sensor (landscape) order
    pil = Image.fromarray(np.ascontiguousarray(stored[..., ::-1]))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buf = io.BytesIO()
    pil.save(buf, format="JPEG", quality=PHONE_JPEG_QUALITY, exif=exif.tobytes())
    return decode_image(buf.getvalue())


CONDITIONS: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {
    "original": None,
    "jpeg95": lambda im: jpeg(im, 95),
    "jpeg85": lambda im: jpeg(im, 85),
    "jpeg70": lambda im: jpeg(im, 70),
    "scale0.5": lambda im: rescale(im, 0.5),
    "scale2": lambda im: rescale(im, 2.0),
    "web": web_client,
    "phone": phone,
    "phone-portrait": phone_portrait,
}


def parse_conditions(text: str | None) -> list[str]:
    """``None``/``"all"``: every condition; else a comma-separated list (validated)."""
    if not text or text == "all":
        return list(CONDITIONS)
    names = [n.strip() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in CONDITIONS]
    if bad:
        raise ValueError(f"unknown condition(s) {', '.join(bad)}; available: "
                         f"{', '.join(CONDITIONS)}")
    return names


def transformed(samples: Sequence[Sample], condition: str) -> list[Sample]:
    """``samples`` whose :meth:`~Sample.load` applies ``condition`` after decoding."""
    fn = CONDITIONS[condition]
    if fn is None:
        return list(samples)

    def loader(s: Sample) -> Callable[[], np.ndarray]:
        return lambda: fn(s.load())

    return [dataclasses.replace(s, loader=loader(s)) for s in samples]


def run_conditions(samples: Sequence[Sample], pipe: Any, out: str | Path, *,
                   conditions: Sequence[str] | None = None, threshold: float | None = None,
                   progress: bool = True, plots: bool = True,
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score ``samples`` with ``pipe`` under every condition at one threshold (``threshold``,
    else the pipeline's); per test too (each at its own threshold). Writes ``conditions.json``,
    ``conditions.md`` and ``conditions.png`` into ``out``; returns the JSON object."""
    from facelive.evaluation.evaluate import evaluate_scores, score_samples

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(conditions) if conditions else list(CONDITIONS)
    thr = float(pipe.threshold if threshold is None else threshold)
    test_thr = {t.name: float(t.threshold) for t in getattr(pipe, "tests", [])}
    result: dict[str, Any] = {"threshold": thr, "test_thresholds": test_thr,
                              "conditions": {}, **(extra or {})}
    reference: dict[str, list[float | None]] | None = None
    for name in names:
        run = score_samples(pipe, transformed(samples, name), progress=progress,
                            description=f"condition {name}")
        entry = {"decision": evaluate_scores(run.scores, samples, thr)}
        scores = {"decision": run.scores}
        if len(test_thr) > 1:
            for t, tt in test_thr.items():
                scores[t] = run.test_scores.get(t, [None] * len(samples))
                entry[t] = evaluate_scores(scores[t], samples, tt)
        if name == "original" or reference is None and "original" not in names:
            reference = scores
        for dec, sc in scores.items():
            entry[dec]["flips"] = decision_flips(reference.get(dec, []), sc,
                                                 thr if dec == "decision" else test_thr[dec])
        entry["errors"] = run.error_counts()
        result["conditions"][name] = entry
    (out / "conditions.json").write_text(json.dumps(result, indent=1, default=float),
                                         encoding="utf-8")
    (out / "conditions.md").write_text(conditions_markdown(result), encoding="utf-8")
    if plots:
        from facelive.evaluation.plots import plot_grouped_bars

        decisions = list(next(iter(result["conditions"].values())))
        decisions = [d for d in decisions if d != "errors"]
        series = {("fused decision" if d == "decision" else d):
                  [None if c[d]["frame"]["ACER"] is None else 100 * c[d]["frame"]["ACER"]
                   for c in result["conditions"].values()] for d in decisions}
        p = plot_grouped_bars(out / "conditions.png", names, series, ylabel="ACER (%)",
                              title="ACER per capture condition (fixed thresholds)",
                              chance=None)
        result["plot"] = None if p is None else p.name
    return result


def decision_flips(reference: Sequence[float | None], scores: Sequence[float | None],
                   threshold: float) -> float | None:
    """Share of frames whose decision at ``threshold`` (live, spoof, or none where a score is
    missing) differs between ``reference`` and ``scores`` (``None`` without frames)."""
    if not len(reference) or len(reference) != len(scores):
        return None

    def decide(v: float | None) -> int:
        return -1 if v is None else int(v >= threshold)

    return float(np.mean([decide(a) != decide(b) for a, b in zip(reference, scores,
                                                                  strict=True)]))


def conditions_markdown(result: dict[str, Any]) -> str:
    """The conditions table: one row per condition x decision (frame level)."""

    def pct(v: Any) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}"

    lines = ["| condition | decision | threshold | APCER max % | BPCER % | ACER % | EER % | AUC "
             "| no decision | flips vs original % |", "|---|---|---|---|---|---|---|---|---|---|"]
    for name, entry in result["conditions"].items():
        for dec, r in entry.items():
            if dec == "errors":
                continue
            m = r["frame"]
            label = "decision (fused)" if dec == "decision" else dec
            auc = "n/a" if m["AUC"] is None else f"{m['AUC']:.3f}"
            lines.append(f"| {name} | {label} | {r['threshold']:.4f} | {pct(m['APCER_max'])} | "
                         f"{pct(m['BPCER'])} | {pct(m['ACER'])} | {pct(m['EER'])} | {auc} | "
                         f"{m['n_no_decision']} | {pct(r.get('flips'))} |")
    return "\n".join(lines) + "\n"
