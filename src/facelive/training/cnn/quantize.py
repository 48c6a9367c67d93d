"""INT8 quantisation of the CNN test's network: ``facelive train cnn-int8``.

ONNX Runtime's static quantisation (``onnxruntime.quantization``; no torch needed):

1. calibration set: face crops of Replay-Attack **devel** computed at run time (every
   ``step``-th frame of the sorted devel listing, detected and cut exactly as the test does); the
   crops are never written to disk;
2. ``quant_pre_process`` (shape inference, constant folding: the exporter's ``Pad`` nodes fold into
   the convolutions), then ``quantize_static``: QDQ format, per-channel int8 weights, uint8
   activations, MinMax calibration, **reduce_range** (7-bit weights: on x86 CPUs without VNNI,
   which ONNX Runtime runs with ``vpmaddubsw``, full 8-bit weights saturate the int16
   intermediate sums; without it the RA devel EER went from 0% to 2.5%); left in float: the
   pooled head (global pooling, dense layers, batch norm, softmax: a negligible share of the
   time; P(live) is not rounded to steps of 1/255) and the stem and first block
   (:data:`FLOAT_PREFIXES`);
3. the graph optimised offline by ONNX Runtime (``ORT_ENABLE_EXTENDED``: QDQ pairs fused into
   ``QLinearConv`` and friends, no CPU-specific layout) and saved, so a process does not redo it
   at every load;
4. the operating point: :func:`facelive.training.cnn.threshold.train_cnn_threshold` on the int8
   model (the RA devel EER point, as for the float model).

Writes the int8 network as ``cnn.onnx`` with its card ``cnn.json`` (the float card plus
``precision`` and ``quantization``) and keeps the float files as ``cnn_fp32.onnx`` /
``cnn_fp32.json``, all with their checksums, in the output folder (default: the float model's):
``FACELIVE_CNN_PRECISION=fp32`` (or ``CNNTest(precision="fp32")``) uses the float one.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from facelive.datasets import Sample

HEAD_OPS = ("GlobalAveragePool", "Flatten", "Gemm", "BatchNormalization", "LeakyRelu", "Softmax")
"""Operators kept in float: the pooled head of the network (see the module docstring)."""
FLOAT_PREFIXES = ("/net/_conv_stem/", "/net/_blocks.0/")
"""Nodes kept in float by name: the stem convolution and the first block (depthwise +
projection, 112x112 x 32 channels). Quantised, the stem alone moved the NUAA held-back EER from
0% to 0.88% (ACER 4.3% at the RA devel threshold); in float these layers cost nothing measurable
(7.8 ms per crop either way) since the input then needs no quantisation step."""
DEFAULT_STEP = 9
"""Every 9th Replay-Attack devel frame: 200 calibration crops."""


def calibration_samples(replay_root: str | Path, step: int = DEFAULT_STEP) -> list[Sample]:
    """Every ``step``-th Replay-Attack devel sample, in the devel listing's (sorted) order."""
    from facelive.training.cnn.threshold import devel_samples

    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    return devel_samples(replay_root)[::step]


def face_crops(samples: Sequence[Sample], context: float, size: int,
               detector: Any | None = None) -> np.ndarray:
    """``(N, size, size, 3)`` uint8 BGR crops of the samples' faces (frames without a face are
    skipped), cut as :class:`facelive.liveness.cnn.CNNTest` cuts them."""
    from facelive.face.detection import FaceDetector, square_crop

    own = detector is None
    det = FaceDetector() if own else detector
    try:
        crops = []
        for smp in samples:
            img = smp.load()
            box = det.detect(img)
            if box is not None:
                crops.append(square_crop(img, box, context, size))
    finally:
        if own:
            det.close()
    if not crops:
        raise ValueError("no face found in any calibration frame")
    return np.stack(crops)


def quantize_onnx(float_model: str | Path, batches: Callable[[], Iterator[dict[str, np.ndarray]]],
                  *, exclude_ops: Sequence[str] = (), exclude_prefixes: Sequence[str] = (),
                  optimise: bool = True) -> bytes:
    """Statically quantised (QDQ, per-channel, reduce_range, MinMax) bytes of ``float_model``.

    ``batches`` returns a fresh iterator of ONNX Runtime input dicts (the calibration data);
    nodes whose operator is in ``exclude_ops`` or whose name starts with one of
    ``exclude_prefixes`` stay float. With ``optimise``, the result is the
    graph ONNX Runtime optimised at ``ORT_ENABLE_EXTENDED`` (see the module docstring).
    Shared by the CNN (``facelive train cnn-int8``) and the VoxNet measurement
    (``benchmarks/bench_face3d.py --int8``).
    """
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = batches()

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    with tempfile.TemporaryDirectory(prefix="facelive-int8-") as tmp:
        pre, q8, opt = Path(tmp) / "pre.onnx", Path(tmp) / "int8.onnx", Path(tmp) / "opt.onnx"
        quant_pre_process(str(float_model), str(pre))
        excluded = []
        if exclude_ops or exclude_prefixes:
            import onnx

            excluded = [n.name for n in onnx.load(str(pre)).graph.node
                        if n.op_type in exclude_ops or n.name.startswith(tuple(exclude_prefixes))]
        quantize_static(str(pre), str(q8), Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, reduce_range=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                        nodes_to_exclude=excluded)
        if not optimise:
            return q8.read_bytes()
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        opts.optimized_model_filepath = str(opt)
        opts.log_severity_level = 3
        ort.InferenceSession(str(q8), opts, providers=["CPUExecutionProvider"])
        return opt.read_bytes()


def time_per_crop(tests: dict[str, Any], crop: np.ndarray, repeat: int = 30
                  ) -> dict[str, dict[str, float]]:
    """Thread CPU ms of ``predict_crops`` on one crop, per test, runs interleaved across the
    tests (so machine load hits them alike): median, p10, p90."""
    out: dict[str, list[float]] = {name: [] for name in tests}
    for t in tests.values():
        for _ in range(3):
            t.predict_crops(crop)
    for _ in range(repeat):
        for name, t in tests.items():
            c0 = time.thread_time()
            t.predict_crops(crop)
            out[name].append((time.thread_time() - c0) * 1e3)
    return {name: {"median": float(np.median(v)), "p10": float(np.percentile(v, 10)),
                   "p90": float(np.percentile(v, 90))} for name, v in out.items()}


def train_cnn_int8(replay_root: str | Path, *, model: Path | None = None,
                   out_dir: Path | None = None, step: int = DEFAULT_STEP,
                   nuaa_root: str | Path | None = None, progress: bool = True
                   ) -> dict[str, Any]:
    """Quantise the float CNN and make the int8 network the folder's ``cnn.onnx``.

    ``model``: the float ``.onnx`` (its ``.json`` card beside it); default: the float model the
    runtime would load (:func:`facelive.liveness.cnn.default_model_path` ``("fp32")``). Writes
    into ``out_dir`` (default: that model's folder) ``cnn.onnx`` + ``cnn.json`` (int8) and
    ``cnn_fp32.onnx`` + ``cnn_fp32.json`` (the float files, byte for byte), all checksummed;
    sets the int8 model's threshold at its RA devel EER point; scores RA devel (and, with
    ``nuaa_root``, the NUAA held-back subjects 0003, 0006, 0009) with both networks at their own
    thresholds, and times both; returns the report.
    """
    from facelive import modelstore
    from facelive.errors import ModelError
    from facelive.face.detection import FaceDetector
    from facelive.liveness.cnn import (
        CARD_FILE,
        FP32_CARD_FILE,
        FP32_MODEL_FILE,
        MODEL_FILE,
        CNNTest,
        default_model_path,
    )
    from facelive.training.cnn.evaluate import report as metrics_report
    from facelive.training.cnn.evaluate import score_samples_e2e
    from facelive.training.cnn.threshold import devel_samples, train_cnn_threshold

    src = Path(model) if model is not None else default_model_path("fp32")
    folder, onnx_name, card_name = src.parent, src.name, src.with_suffix(".json").name
    float_onnx = modelstore.read_bytes(onnx_name, folder)  # checksum-verified
    float_card = modelstore.read_bytes(card_name, folder)
    card = modelstore.read_json(card_name, folder)
    if card.get("precision", "fp32") != "fp32":
        raise ModelError(f"{src} is not a float model (precision {card.get('precision')})")
    target = Path(out_dir) if out_dir is not None else folder
    fp32 = CNNTest(src, precision="fp32")
    calib = calibration_samples(replay_root, step)
    t0 = time.perf_counter()
    with FaceDetector() as det:
        crops = face_crops(calib, fp32.context, fp32.size, det)

    def batches() -> Iterator[dict[str, np.ndarray]]:
        for i in range(len(crops)):
            yield {fp32.input_name: fp32.preprocess(crops[i:i + 1])}

    data = quantize_onnx(src, batches, exclude_ops=HEAD_OPS, exclude_prefixes=FLOAT_PREFIXES)
    quant_s = time.perf_counter() - t0
    card.pop("onnx_max_abs_diff_vs_torch", None)  # the float export's check, not this file's
    card.update(
        precision="int8",
        quantization={
            "tool": "onnxruntime.quantization.quantize_static " + _ort_version(),
            "format": "QDQ, per-channel int8 weights (reduce_range), uint8 activations",
            "calibration": f"MinMax on {len(crops)} Replay-Attack devel face crops "
                           f"(every {step}th devel frame, computed at run time)",
            "float_ops": list(HEAD_OPS),
            "float_nodes": [f"{p}*" for p in FLOAT_PREFIXES],
            "graph": "optimised offline by ONNX Runtime (ORT_ENABLE_EXTENDED)",
            "float_model": FP32_MODEL_FILE,
            "float_model_sha256": modelstore.sha256_bytes(float_onnx),
            "float_threshold": card.get("threshold"),
        })
    modelstore.write_bytes(FP32_MODEL_FILE, float_onnx, target)
    modelstore.write_bytes(FP32_CARD_FILE, float_card, target)
    modelstore.write_bytes(MODEL_FILE, data, target)
    modelstore.write_json(CARD_FILE, card, target)
    devel = devel_samples(replay_root)
    rep = train_cnn_threshold(samples=devel, model=target / MODEL_FILE, progress=progress)
    int8 = CNNTest(target / MODEL_FILE)
    fp32 = CNNTest(target / FP32_MODEL_FILE)
    with FaceDetector() as det:
        f_scores = score_samples_e2e(devel, fp32, det)
        i_scores = score_samples_e2e(devel, int8, det)
        nuaa = None
        if nuaa_root is not None:
            from facelive.datasets import nuaa_subject_split
            from facelive.training.cnn.data import list_samples

            nuaa = list_samples(Path(nuaa_root), None,
                                nuaa_subjects=nuaa_subject_split(Path(nuaa_root))[1])
            fn_scores = score_samples_e2e(nuaa, fp32, det)
            in_scores = score_samples_e2e(nuaa, int8, det)
    diff = np.abs(np.nan_to_num(i_scores) - np.nan_to_num(f_scores))
    out: dict[str, Any] = {
        "model": "cnn-int8",
        "onnx": str(target / MODEL_FILE),
        "card": str(target / CARD_FILE),
        "float_onnx": str(target / FP32_MODEL_FILE),
        "calibration_crops": int(len(crops)),
        "quantization_seconds": round(quant_s, 1),
        "threshold": rep["threshold"],
        "float_threshold": fp32.threshold,
        "threshold_from": rep["threshold_from"],
        "face_min_confidence": rep["face_min_confidence"],
        "ra_devel": {"int8": rep["ra_devel"],
                     "fp32": metrics_report(devel, f_scores, fp32.threshold)},
        "score_abs_diff": {"median": float(np.median(diff)),
                           "p99": float(np.percentile(diff, 99)), "max": float(diff.max())},
        "decisions_changed_ra_devel": int(np.sum(
            (np.nan_to_num(i_scores) >= int8.threshold)
            != (np.nan_to_num(f_scores) >= fp32.threshold))),
        "ms_per_crop": time_per_crop({"fp32": fp32, "int8": int8}, crops[:1]),
        "bytes": {"fp32": len(float_onnx), "int8": len(data)},
        "info": rep["info"],
    }
    if nuaa is not None:
        out["nuaa_heldout"] = {"int8": metrics_report(nuaa, in_scores, int8.threshold),
                               "fp32": metrics_report(nuaa, fn_scores, fp32.threshold)}
    return out


def _decisions(n: int) -> str:
    return f"{n} RA devel decision{'' if n == 1 else 's'} change{'s' if n == 1 else ''}"


def _ort_version() -> str:
    import onnxruntime as ort

    return ort.__version__


def card_markdown(report: dict[str, Any], command: str) -> str:
    """A CNN card section: the int8 model against the float one (devel, NUAA, time)."""
    from facelive.evaluation import comparison_table

    rows = [(f"fp32, RA devel (threshold {report['float_threshold']:.4f})",
             report["ra_devel"]["fp32"]),
            (f"int8, RA devel (threshold {report['threshold']:.4f})",
             report["ra_devel"]["int8"])]
    if "nuaa_heldout" in report:
        rows += [("fp32, NUAA held-back subjects", report["nuaa_heldout"]["fp32"]),
                 ("int8, NUAA held-back subjects", report["nuaa_heldout"]["int8"])]
    t = report["ms_per_crop"]
    d = report["score_abs_diff"]
    return f"""# Model card section: `cnn` int8 (`{Path(report["onnx"]).name}`)

Static INT8 quantisation of `{Path(report["float_onnx"]).name}` with ONNX Runtime
({report["calibration_crops"]} Replay-Attack devel calibration crops, computed at run time);
threshold {report["threshold"]:.4f} at the int8 model's RA devel EER point (fp32:
{report["float_threshold"]:.4f}). P(live) differs from the float model's by {d["median"]:.4f}
(median), {d["p99"]:.4f} (p99), {d["max"]:.4f} (max) on RA devel;
{_decisions(report["decisions_changed_ra_devel"])}. Network time per crop (1 thread,
thread CPU ms, interleaved runs): fp32 {t["fp32"]["median"]:.2f} (p10-p90
{t["fp32"]["p10"]:.2f}-{t["fp32"]["p90"]:.2f}), int8 {t["int8"]["median"]:.2f}
({t["int8"]["p10"]:.2f}-{t["int8"]["p90"]:.2f}). Size: {report["bytes"]["fp32"] / 1e6:.1f} MB ->
{report["bytes"]["int8"] / 1e6:.1f} MB.

**Reproduce:**

    {command}

{comparison_table(rows)}

Video level:

{comparison_table(rows, "video")}
"""
