"""Does fine-tuning the CelebA-Spoof MiniFAS test on one database help on the other?

Head-only fine-tuning: the network's 128-d embedding (``/bn/BatchNormalization_output_0``, the
input of its last linear layer) of every protocol frame, computed once with the model's crop
convention on the pipeline detector's boxes (those stored in the protocol crop cache,
``runs/cnn/crops-all``), and a new logistic-regression head fitted per protocol source (capture
domain x label weighted equally, the probe's recipe, :func:`facelive.training.linear_probe`),
alone or with the shipped live logit as an extra feature (``head+logit``: the network's own
decision plus what the source adds). Compared with the network as shipped on every protocol
target (EER / AUC). A fine-tuned head ships only if it beats the shipped network on both
cross-database targets and keeps cross-session.

    python experiments/minifas_finetune.py --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from facelive import modelstore
from facelive.arraycache import cached_arrays, digest
from facelive.evaluation.metrics import auc, eer
from facelive.evaluation.protocols import PROTOCOLS, Universe, protocol_split
from facelive.face.detection import centred_square_crop
from facelive.liveness.minifas import MiniFASTest
from facelive.training.linear_probe import fit_linear, predict_linear
from facelive.types import FaceBox

EMBEDDING = "/bn/BatchNormalization_output_0"


def embeddings(universe: Universe, cache: Path) -> dict[str, np.ndarray]:
    """128-d embedding and shipped live logit of every sample (NaN without a face box)."""
    graph = modelstore.read_bytes("minifas.onnx")
    manifest = json.loads((cache / "manifest.json").read_text())
    boxes = {r["key"]: r["box"] for r in manifest["records"]}

    def compute() -> dict[str, np.ndarray]:
        model = onnx.load_from_string(graph)
        model.graph.output.append(onnx.helper.make_tensor_value_info(
            EMBEDDING, onnx.TensorProto.FLOAT, None))
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        session = ort.InferenceSession(model.SerializeToString(), opts,
                                       providers=["CPUExecutionProvider"])
        test = MiniFASTest()
        emb = np.full((len(universe), 128), np.nan, np.float32)
        logit = np.full(len(universe), np.nan)
        for i, s in enumerate(universe.samples):
            box = boxes.get(s.key)
            if box is None:
                continue
            crop = centred_square_crop(s.load(), FaceBox(*box, 1.0), test.context, test.size)
            out, e = session.run(None, {"input": test.preprocess(crop[None])})
            emb[i], logit[i] = e[0], out[0, 0] - out[0, 1]
            if i % 1000 == 0:
                print(f"embeddings {i}/{len(universe)}", flush=True)
        return {"embedding": emb, "logit": logit}

    key = digest(["\n".join(s.key for s in universe.samples), graph,
                  json.dumps(boxes, sort_keys=True)])
    return cached_arrays(f"minifas-embedding-{key}", compute)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nuaa", required=True)
    ap.add_argument("--replay-attack", required=True)
    ap.add_argument("--crop-cache", type=Path, default=Path("runs/cnn/crops-all"))
    ap.add_argument("--C", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2])
    args = ap.parse_args()
    universe = Universe.load(args.nuaa, args.replay_attack)
    from facelive.training.cnn.protocol import ensure_crop_cache

    ensure_crop_cache(universe, args.crop_cache)  # the detector's boxes
    d = embeddings(universe, args.crop_cache)
    emb, logit = d["embedding"], d["logit"]
    ok = np.isfinite(logit)
    y = universe.is_live
    rows = {"shipped (no fine-tuning)": {}}
    for name in PROTOCOLS:
        split = protocol_split(name, universe)
        t = split.target & ok
        rows["shipped (no fine-tuning)"][name] = (eer(logit[t & y], logit[t & ~y]),
                                                  auc(logit[t & y], logit[t & ~y]))
        tr = split.train & ok
        strata = [f"{a}/{b}" for a, b in zip(universe.domain[tr], y[tr], strict=True)]
        for kind, x in (("head", emb), ("head+logit", np.column_stack([emb, logit]))):
            for c in args.C:
                w, b = fit_linear(x[tr], y[tr], strata, c)
                p = predict_linear(x[t], w, b)
                rows.setdefault(f"{kind} C={c:g}", {})[name] = (eer(p[y[t]], p[~y[t]]),
                                                                auc(p[y[t]], p[~y[t]]))
    print("\n| MiniFAS | " + " | ".join(f"{n} EER / AUC" for n in PROTOCOLS) + " |")
    print("|---|" + "---|" * len(PROTOCOLS))
    for r, v in rows.items():
        print(f"| {r} | " + " | ".join(f"{100 * v[n][0]:.1f}% / {v[n][1]:.3f}"
                                       for n in PROTOCOLS) + " |")


if __name__ == "__main__":
    main()
