"""Linear probe of frozen ImageNet features on the generalisation-protocol splits (issue 11).

Does the fine-tuning make the CNN learn each database's capture domain? The ImageNet
EfficientNet-Lite0 backbone (no fine-tuning) gives each face crop of the protocol crop cache a
pooled 1,280-d feature vector; an L2-regularised logistic regression, classes and capture domains
weighted equally, is fitted on a split's source, and the target is scored as in
``experiments/cnn_protocol_variants.py`` (EER on the source's threshold part, target EER / AUC).
Row ``in-domain``: trained on the shipped CNN's data (NUAA without the held-back subjects
0003/0006/0009, Replay-Attack train); "threshold part" = Replay-Attack devel, "target" = the
held-back NUAA subjects (same sessions: in-domain).

    python experiments/cnn_linear_probe.py --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack --size 128 --context 2.0
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from facelive.evaluation.metrics import eer
from facelive.evaluation.protocols import PROTOCOLS, Universe, protocol_split
from facelive.training.cnn.protocol import DEFAULT_CACHE, ensure_crop_cache

TAPS = (4, 7, 10, 14, 15)
"""Backbone blocks whose outputs ``--features taps`` pools besides the head: the last block of
each stage from stride 8 on (40, 80, 112, 192 and 320 channels)."""


def features(crops: np.ndarray, kind: str = "head", batch: int = 64) -> np.ndarray:
    """ImageNet features of uint8 BGR crops: ``head`` the pooled 1,280-d head output; ``taps``
    also the pooled outputs of the :data:`TAPS` blocks; ``taps-std`` also their per-channel
    standard deviations (texture statistics)."""
    import torch

    from facelive.training.cnn.augment import to_input
    from facelive.training.cnn.model import build_model

    net = build_model(pretrained=True, image_size=crops.shape[1]).eval()
    b = net.backbone
    out = []
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            h = b._swish(b._bn0(b._conv_stem(to_input(torch.from_numpy(crops[i:i + batch])))))
            maps = []
            for idx, block in enumerate(b._blocks):
                h = block(h, drop_connect_rate=0.0)
                if idx in TAPS and kind != "head":
                    maps.append(h)
            maps.append(b._swish(b._bn1(b._conv_head(h))))
            f = [m.mean((2, 3)) for m in maps]
            if kind == "taps-std":
                f += [m.std((2, 3)) for m in maps[:-1]]
            out.append(torch.cat(f, 1).numpy())
    return np.concatenate(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nuaa", required=True)
    ap.add_argument("--replay-attack", required=True)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--context", type=float, default=2.0)
    ap.add_argument("--features", choices=("head", "taps", "taps-std"), default="head")
    ap.add_argument("--C", type=float, nargs="+", default=[0.001, 0.01, 0.1])
    args = ap.parse_args()
    from facelive.arraycache import cached_arrays, digest
    from facelive.training.cnn.train import recrop

    u = Universe.load(args.nuaa, args.replay_attack)
    manifest, crops = ensure_crop_cache(u, DEFAULT_CACHE)
    index = {r["key"]: i for i, r in enumerate(manifest["records"])}
    at = np.array([index.get(s.key, -1) for s in u.samples])
    key = digest([str(sorted(index.items())), str(args.size), str(args.context)])
    if args.features != "head":
        key = digest([key, args.features, str(TAPS)])
    f = cached_arrays(f"cnn-probe-{key}", lambda: {"f": features(
        recrop(crops, float(manifest["context"]), args.context, args.size), args.features)})["f"]
    y, ok = u.is_live, at >= 0
    from facelive.training.cnn.data import nuaa_heldout_subjects

    held = np.array([p == "nuaa" and s.subject in nuaa_heldout_subjects()
                     for s, p in zip(u.samples, u.part, strict=True)])
    both = ((u.part == "nuaa") & ~held) | (u.part == "ra-train")  # the shipped CNN's data
    for name in (*PROTOCOLS, "in-domain"):
        if name == "in-domain":  # trained like the shipped CNN; RA devel and held-back NUAA
            tr, dv, tg = both & ok, (u.part == "ra-devel") & ok, held & ok
        else:
            split = protocol_split(name, u)
            tr, dv, tg = split.train & ok, split.devel & ok, split.target & ok
        cells = [f"{d}/{t}" for d, t in zip(u.domain[tr], y[tr], strict=True)]
        _, inv, cnt = np.unique(cells, return_inverse=True, return_counts=True)
        w = 1.0 / cnt[inv]
        for c in args.C:
            clf = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
            clf.fit(f[at[tr]], y[tr], logisticregression__sample_weight=w * len(w) / w.sum())
            p = np.full(len(u), np.nan)
            p[ok] = clf.predict_proba(f[at[ok]])[:, 1]
            print(f"{name} {args.features} size {args.size} context {args.context} C {c}: "
                  f"threshold-part EER "
                  f"{eer(p[dv & y], p[dv & ~y]):.3f}, target EER {eer(p[tg & y], p[tg & ~y]):.3f},"
                  f" AUC {roc_auc_score(y[tg], p[tg]):.3f}", flush=True)


if __name__ == "__main__":
    main()
