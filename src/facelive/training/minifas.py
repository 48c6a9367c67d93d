"""Installing the MiniFAS test (:mod:`facelive.liveness.minifas`): the upstream CelebA-Spoof
MiniFASNetV2-SE graph, checked, measured, its threshold set, its card written.

Nothing is trained: the network was trained upstream on CelebA-Spoof (Zhang et al., ECCV 2020)
and never saw NUAA or Replay-Attack, so its scores on both are out of its training domain.
:func:`install_minifas` checks the upstream files against :data:`UPSTREAM_SHA256`, scores every
frame of Replay-Attack devel (and, given them, Replay-Attack train and the NUAA training list)
through the pipeline with both upstream precisions (FP32 and INT8, cached on disk under
``$FACELIVE_CACHE``: derived from research-only images, never committed), times both graphs on
face crops, writes the chosen graph as ``minifas.onnx`` with its card ``minifas.json``
(threshold: the EER point on Replay-Attack devel) and the upstream licence as
``minifas.LICENSE``, and returns the report the model card is written from.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

UPSTREAM_SHA256 = {
    "fp32": ("model_fp32.onnx",
             "af2381b88f38769222ed93379e12444e2a50814575de1c46170de570c55a42b6"),
    "int8": ("model_int8.onnx",
             "fde20585635cae62ed1d41796f76b6f8bc4b92cd91ec1cf0f1bc6485d2d587a9"),
}
"""The upstream graphs (``face-antispoof-onnx``, ``models/best/98.20/``) by precision: file name
and SHA-256."""

UPSTREAM = {
    "project": "face-antispoof-onnx by johnraivenolazo (suriAI/face-antispoof-onnx, later "
               "facenox/face-antispoof-onnx)",
    "commit": "2b9830bb0eccafddcf0abcedf5c6ad506f0a1142",
    "folder": "models/best/98.20/",
    "licence": "Apache-2.0 (code and weights); CelebA-Spoof, its training data, is released for "
               "non-commercial research only",
    "validation": "CelebA-Spoof validation split (71,338 images): accuracy 98.2%, ROC AUC 0.9984 "
                  "(upstream's figures)",
}

CARD = {"input_size": 128, "channels": "rgb", "scale": 1.0 / 255.0, "live_index": 0}
"""The input convention the network was trained with (the card's fixed fields)."""

UPSTREAM_CONTEXT = 1.5
"""The crop side over the face box's longer side that the network was trained with, around
upstream's face boxes."""

CONTEXT = 2.1
"""The crop side over the longer side of *facelive's* face box (MediaPipe BlazeFace): chosen on
Replay-Attack devel among 1.5, 1.8, 2.1, 2.4 and 2.7 by AUC (the threshold-free ranking) with
``experiments/minifas_crop.py``. BlazeFace's box is tighter than upstream's, so upstream's 1.5
cuts off context the network learnt from (Replay-Attack devel EER 16.0% at 1.5, 11.0% at 2.1;
the NUAA list, not used in the choice, 8.9% and 3.4%)."""

LICENCE_FILE = "minifas.LICENSE"


def _verified(upstream: Path, precision: str) -> bytes:
    from facelive.errors import ModelError
    from facelive.modelstore import sha256_bytes

    name, digest = UPSTREAM_SHA256[precision]
    data = (upstream / name).read_bytes()
    if sha256_bytes(data) != digest:
        raise ModelError(f"{upstream / name} is not the upstream graph (SHA-256 differs)")
    return data


def _write_model(folder: Path, graph: bytes, precision: str, threshold: float,
                 context: float) -> None:
    from facelive import modelstore

    modelstore.write_bytes("minifas.onnx", graph, folder)
    modelstore.write_json("minifas.json", {
        **CARD, "context": float(context), "upstream_context": UPSTREAM_CONTEXT,
        "threshold": float(threshold), "version": f"celeba-spoof-98.20-{precision}",
        "precision": precision, "upstream": UPSTREAM}, folder)


def crop_milliseconds(folder: Path, crops: np.ndarray, repeats: int = 3) -> float:
    """Median milliseconds per crop of the test in ``folder`` (one thread, batch 1)."""
    from facelive.liveness.minifas import MiniFASTest

    test = MiniFASTest(folder / "minifas.onnx")
    times = []
    for _ in range(repeats):
        for c in crops:
            t0 = time.perf_counter()
            test.predict_crops(c)
            times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def install_minifas(upstream: str | Path, replay_root: str | Path, *,
                    nuaa_root: str | Path | None = None, precision: str = "auto",
                    out: Path | None = None, max_eer_cost: float = 0.005,
                    context: float = CONTEXT) -> dict[str, Any]:
    """Install the upstream graph of ``precision`` (``auto``: INT8 when its EER on every scored
    part is within ``max_eer_cost`` of FP32's and it is faster, else FP32) into ``out`` (default:
    the shipped model folder) with the crop ``context`` (:data:`CONTEXT`); return the
    measurements."""
    from facelive import modelstore
    from facelive.datasets import open_dataset
    from facelive.evaluation import eer_threshold, evaluate_scores
    from facelive.face.detection import FaceDetector
    from facelive.training.fusion import score_tests

    upstream = Path(upstream)
    out = Path(out) if out is not None else modelstore.MODEL_DIR
    parts: dict[str, list[Any]] = {
        "ra-devel": open_dataset("replay-attack", replay_root, split="devel").samples()}
    if nuaa_root is not None:
        parts["ra-train"] = open_dataset("replay-attack", replay_root, split="train").samples()
        parts["nuaa-train"] = open_dataset("nuaa", nuaa_root).samples()
    report: dict[str, Any] = {"upstream": UPSTREAM, "card": {**CARD, "context": context},
                              "precisions": {}}
    graphs = {p: _verified(upstream, p) for p in UPSTREAM_SHA256}
    with FaceDetector() as detector:  # 200 Replay-Attack devel face crops for the timing
        from facelive.face.detection import centred_square_crop

        crops = []
        for s in parts["ra-devel"][::9][:200]:
            image = s.load()
            face = detector.detect(image)
            if face is not None:
                crops.append(centred_square_crop(image, face, context, CARD["input_size"]))
    import os

    for p, graph in graphs.items():
        with tempfile.TemporaryDirectory() as tmp:
            _write_model(Path(tmp), graph, p, 0.5, context)
            saved = os.environ.get(modelstore.MODELS_ENV)
            os.environ[modelstore.MODELS_ENV] = tmp
            try:
                scores = {k: score_tests(v, ["minifas"], name=k)["minifas"]
                          for k, v in parts.items()}
            finally:
                if saved is None:
                    os.environ.pop(modelstore.MODELS_ENV, None)
                else:
                    os.environ[modelstore.MODELS_ENV] = saved
            ms = crop_milliseconds(Path(tmp), np.asarray(crops))
        y = np.array([s.is_live for s in parts["ra-devel"]])
        d = scores["ra-devel"]
        f = np.isfinite(d)
        thr = float(eer_threshold(d[f & y], d[f & ~y]))
        report["precisions"][p] = {
            "threshold": thr, "ms_per_crop": ms,
            "parts": {k: evaluate_scores([None if not np.isfinite(v) else float(v) for v in sc],
                                         parts[k], thr) for k, sc in scores.items()}}
    eer = {p: {k: r["parts"][k]["frame"]["EER"] for k in parts}
           for p, r in report["precisions"].items()}
    int8_ok = (all(eer["int8"][k] <= eer["fp32"][k] + max_eer_cost for k in parts)
               and report["precisions"]["int8"]["ms_per_crop"]
               < report["precisions"]["fp32"]["ms_per_crop"])
    chosen = precision if precision != "auto" else ("int8" if int8_ok else "fp32")
    report["chosen"] = chosen
    report["rule"] = (f"INT8 when its EER on every part is within {100 * max_eer_cost:g} points "
                      f"of FP32's and it is faster per crop" if precision == "auto"
                      else f"precision {precision} requested")
    _write_model(out, graphs[chosen], chosen, report["precisions"][chosen]["threshold"], context)
    licence = upstream / "LICENSE"
    modelstore.write_bytes(LICENCE_FILE, licence.read_bytes(), out)
    report["threshold"] = report["precisions"][chosen]["threshold"]
    return report


def card_markdown(report: dict[str, Any], command: str = "") -> str:
    """The MiniFAS test's model card (Markdown)."""
    def pct(v: Any) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    up, chosen = report["upstream"], report["chosen"]
    c = report["card"]
    part_names = {"ra-devel": "Replay-Attack devel", "ra-train": "Replay-Attack train",
                  "nuaa-train": "NUAA training list (sessions 01 and 02)"}
    lines = [
        "# Model card: MiniFAS test (`minifas.onnx`)", "",
        "MiniFASNetV2 with squeeze-and-excitation blocks (the MiniFASNet family of Minivision's "
        "Silent-Face project, about 0.7 M parameters) trained on **CelebA-Spoof** (Zhang et al., "
        "ECCV 2020: 625k images of 10,177 subjects, 8 scenes, 3 illuminations, 10+ capture "
        "devices; print, replay and paper-mask attacks), run by "
        "[`facelive.liveness.minifas`](../../src/facelive/liveness/minifas.py). Installed, "
        "measured and carded by:", "",
        f"    {command}" if command else "", "",
        "## Provenance, credit and licence", "",
        f"- Source: {up['project']}, commit `{up['commit']}`, folder `{up['folder']}`; the graph "
        "ships unchanged (its SHA-256 is checked against "
        "`facelive.training.minifas.UPSTREAM_SHA256` before it is installed).",
        f"- Licence: {up['licence']}. The upstream licence ships beside the model as "
        f"`src/facelive/models/{LICENCE_FILE}`. Because of the training data's terms, treat "
        "this model like the rest of facelive's models: **research use**.",
        f"- Upstream's figures: {up['validation']}.", "",
        "## Input convention (as the network was trained; `minifas.json`)", "",
        "1. facelive's face box (MediaPipe BlazeFace, the largest face); its longer side `m` "
        "and its centre.",
        f"2. A square of side {c['context']:g} x `m` centred on the box, never shifted; outside "
        "the image, reflected pixels (OpenCV `BORDER_REFLECT_101`): "
        "`facelive.face.detection.centred_square_crop`. Upstream's convention is "
        f"{UPSTREAM_CONTEXT:g} x the side of *its* detector's box; facelive's BlazeFace box is "
        f"tighter, and {c['context']:g} was chosen on Replay-Attack devel (AUC) among "
        "1.5-2.7 by `python experiments/minifas_crop.py --nuaa ../shared/data/nuaa "
        "--replay-attack ../shared/data/replay-attack` (table in "
        "[docs/results.md](../results.md#the-celeba-spoof-test-minifas)).",
        f"3. Resized to {c['input_size']} x {c['input_size']} (area interpolation when "
        "shrinking, Lanczos when enlarging).",
        f"4. {c['channels'].upper()}, float32, scaled by 1/255 (0..1, no mean or std), CHW.",
        "5. Output: logits `[real, spoof]`; P(live) = logistic(real - spoof).", "",
        "`tests/liveness/test_minifas.py` checks the crop, the channel order and a golden score "
        "on `examples/astronaut.jpg`.", "",
        "## Precision: FP32 or INT8 (measured)", "",
        f"Both upstream graphs scored every frame through the pipeline; threshold: each graph's "
        f"EER point on Replay-Attack devel; time: median per face crop, one thread, batch 1, "
        f"200 Replay-Attack devel crops. Rule: {report['rule']}. **Shipped: {chosen.upper()}**.",
        "",
        "| precision | ms per crop | threshold | " + " | ".join(
            f"{part_names[k]} EER / AUC" for k in report["precisions"][chosen]["parts"]) + " |",
        "|---|---|---|" + "---|" * len(report["precisions"][chosen]["parts"]),
    ]
    for p, r in report["precisions"].items():
        cells = [f"{pct(m['frame']['EER'])} / {m['frame']['AUC']:.3f}"
                 for m in r["parts"].values()]
        lines.append(f"| {p.upper()} | {r['ms_per_crop']:.2f} | {r['threshold']:.4f} | "
                     + " | ".join(cells) + " |")
    r = report["precisions"][chosen]
    lines += [
        "", "## Our measurements (shipped precision, threshold above)", "",
        "Neither database was seen in training: every row is out of the network's training "
        "domain. The threshold was chosen on Replay-Attack devel, so only the EER and AUC of "
        "the other rows are free of any choice made on them.", "",
        "| part | APCER (worst type) | BPCER | ACER | EER | AUC | APCER per attack type | "
        "no face |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for k, m in r["parts"].items():
        f = m["frame"]
        types = ", ".join(f"{t} {pct(v)}" for t, v in sorted(f["APCER"].items()))
        lines.append(f"| {part_names[k]} | {pct(f['APCER_max'])} | {pct(f['BPCER'])} | "
                     f"{pct(f['ACER'])} | {pct(f['EER'])} | {f['AUC']:.3f} | {types} | "
                     f"{f['n_no_decision']} |")
    lines += [
        "", "## Use in facelive", "",
        "- Built-in test `minifas`; in the default decision, fused with the other tests by a "
        "fusion fitted on scores where every trainable test is out of its training domain "
        "([fusion card](fusion.md)); the generalisation protocols score it as shipped (it never "
        "saw either database, so its protocol numbers need no retraining): README, "
        "\"Generalisation\".",
        "- Fine-tuning on NUAA or Replay-Attack: not shipped; see the README's generalisation "
        "section for what was measured.",
        "- Limits: the network sees a 128-pixel crop, so a face far from the camera is "
        "upscaled; CelebA-Spoof's attacks are prints, replays and paper masks, not 3D masks or "
        "injected video.", ""]
    return "\n".join(lines)
