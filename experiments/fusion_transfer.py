"""A fusion fitted on cross-database scores: does it weigh the tests by how they transfer?

The protocols fit the fusion on the source's own held-out subjects, where every test has seen
the capture domain: a test at chance across databases (the CPU-recipe CNN) gets as much weight as
one that transfers (the probe). With two databases a fusion can be fitted on cross-database
scores and still be judged honestly: fitted on one direction's target (tests trained on NUAA,
scoring Replay-Attack devel, with its labels), scored on the other direction's target (tests
trained on Replay-Attack, scoring NUAA), and the reverse. The tests' per-source scores are
exactly those of ``facelive evaluate --protocol ... --recipes after --cnn-recipe cpu`` (recipe
``after``; cached). Fusion: the shipped estimator (non-negative weights on standardised logits,
classes weighted equally); threshold: the EER point on the fitting direction.

    python experiments/fusion_transfer.py --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack
"""

from __future__ import annotations

import argparse

import numpy as np

from facelive.evaluation.metrics import compute_metrics, eer_threshold
from facelive.evaluation.protocols import CROSS_DATABASE, Universe, protocol_split
from facelive.fusion.model import balanced_weights, fit_nonneg, fused_scores
from facelive.training import generalisation as gen

TESTS = ("quality", "cnn", "probe", "face3d")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nuaa", required=True)
    ap.add_argument("--replay-attack", required=True)
    ap.add_argument("--cnn-recipe", default="cpu")
    args = ap.parse_args()
    from facelive.training.cnn.protocol import protocol_scores as cnn_scores
    from facelive.training.face3d.data import shipped_face3d_scores
    from facelive.training.probe import protocol_scores as probe_scores

    u = Universe.load(args.nuaa, args.replay_attack)
    recipe = gen.RECIPES["after"]
    data = gen.load_data(u, cnn=False, augmented=recipe.quality.augment)
    y = u.is_live
    per: dict[str, tuple[dict[str, np.ndarray], np.ndarray]] = {}
    for name in CROSS_DATABASE:
        split = protocol_split(name, u)
        f3d = (shipped_face3d_scores(data.vertices, data.intensity, data.mesh_ok)
               if name == "ra-to-nuaa" else
               gen.face3d_scores(u, data, split.train, desc=f"face3d ({name})"))
        res = gen.split_scores(u, data, split, recipe, face3d=f3d,
                               cnn=cnn_scores(u, split.train, recipe=args.cnn_recipe,
                                              desc=f"cnn ({name})"),
                               probe=probe_scores(u, split.train))
        per[name] = (res["scores"], split.target)
    print("| fitted on the target of | scored on the target of | weights "
          + " / ".join(TESTS) + " | EER | AUC | ACER at the fitting side's EER threshold |")
    print("|---|---|---|---|---|---|")
    for fit_on in per:
        fs, fm = per[fit_on]
        x = np.column_stack([fs[t][fm] for t in TESTS])
        ok = np.all(np.isfinite(x), axis=1)
        model = fit_nonneg(x[ok], y[fm][ok], TESTS,
                           sample_weight=balanced_weights(y[fm][ok].astype(str)))
        own = fused_scores(model, {t: fs[t][fm] for t in TESTS})
        thr = eer_threshold(own[y[fm] & np.isfinite(own)], own[~y[fm] & np.isfinite(own)])
        for score_on in per:
            if score_on == fit_on:
                continue
            ss, sm = per[score_on]
            p = fused_scores(model, {t: ss[t][sm] for t in TESTS})
            samples = u.select(sm)
            m = compute_metrics([None if not np.isfinite(v) else float(v) for v in p],
                                [s.label for s in samples], [s.attack_type for s in samples],
                                thr)
            w = " / ".join(f"{v:.2f}" for v in model.model.coef)
            print(f"| {fit_on} | {score_on} | {w} | {100 * m['EER']:.1f}% | {m['AUC']:.3f} | "
                  f"{100 * m['ACER']:.1f}% |", flush=True)


if __name__ == "__main__":
    main()
