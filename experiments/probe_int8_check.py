"""Does INT8 quantisation of the probe's backbone cost accuracy, in-domain or across databases?

Issue 13 accepts INT8 only where devel and the cross-database protocol do not get worse by more
than 0.5 points of EER. The probe's frozen feature extractor (EfficientNet-Lite0, ImageNet) is
exported alone and quantised with the CNN's settings
(:func:`facelive.training.probe.quantize_probe_graph`: 200 Replay-Attack devel face crops,
stem, first block and pooling in float). Every crop of the protocol crop cache is then
featurised by both graphs and the probe's linear model is fitted per protocol source on each, as
``facelive evaluate --protocol`` fits it; row ``in-domain``: the shipped probe's training data,
scored on Replay-Attack devel (the frame's cached crop, not end to end).

    python experiments/probe_int8_check.py --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
from sklearn.metrics import roc_auc_score

from facelive.evaluation.metrics import eer
from facelive.evaluation.protocols import PROTOCOLS, Universe, protocol_split
from facelive.liveness.probe import ProbeTest
from facelive.training.linear_probe import fit_linear, predict_linear
from facelive.training.probe import (
    SHIPPED,
    ProbeFeatures,
    calibration_crops,
    crop_cache_features,
    export_onnx,
    quantize_probe_graph,
    shipped_training_mask,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nuaa", required=True)
    ap.add_argument("--replay-attack", required=True)
    args = ap.parse_args()
    from facelive.training.cnn.protocol import DEFAULT_CACHE, ensure_crop_cache
    from facelive.training.cnn.train import recrop

    u = Universe.load(args.nuaa, args.replay_attack)
    f32, at = crop_cache_features(u, SHIPPED)
    manifest, crops = ensure_crop_cache(u, DEFAULT_CACHE)
    crops = recrop(crops, float(manifest["context"]), SHIPPED.context, SHIPPED.input_size)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "features.onnx"
        path.write_bytes(export_onnx(ProbeFeatures(SHIPPED.input_size), SHIPPED.input_size,
                                     output="features"))
        preprocess = ProbeTest().preprocess  # the shipped probe's input normalisation
        data = quantize_probe_graph(path, calibration_crops(args.replay_attack), preprocess,
                                    prefix="/")
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    f8 = np.concatenate([sess.run(None, {"input": preprocess(crops[i:i + 64])})[0]
                         for i in range(0, len(crops), 64)])
    y, ok = u.is_live, at >= 0
    print(f"feature |int8 - fp32| / |fp32|: median "
          f"{np.median(np.abs(f8 - f32) / (np.abs(f32) + 1e-3)):.4f}")
    for name in (*PROTOCOLS, "in-domain"):
        if name == "in-domain":
            tr, tg = shipped_training_mask(u) & ok, (u.part == "ra-devel") & ok
        else:
            split = protocol_split(name, u)
            tr, tg = split.train & ok, split.target & ok
        strata = [f"{d}/{t}" for d, t in zip(u.domain[tr], y[tr], strict=True)]
        cells = []
        for label, f in (("fp32", f32), ("int8", f8)):
            w, b = fit_linear(f[at[tr]], y[tr], strata, SHIPPED.C)
            p = np.full(len(u), np.nan)
            p[ok] = predict_linear(f[at[ok]], w, b)
            cells.append(f"{label} target EER {eer(p[tg & y], p[tg & ~y]):.3f} "
                         f"AUC {roc_auc_score(y[tg], p[tg]):.3f}")
        print(f"{name}: " + "; ".join(cells), flush=True)


if __name__ == "__main__":
    main()
