"""The fusion's L2 penalty: in-domain (the shipped tests' fusion) against the protocols.

For each L2 value, the quality + cnn + probe fusion is fitted as ``facelive train fusion`` fits
it (Replay-Attack devel + the held-back NUAA subjects, monotone, domain-minimax threshold) and
scored in sample on Replay-Attack devel (what ``facelive evaluate --split devel`` reports) and
out of fold per database; then the protocol recipe ``after-2d`` is re-run with that L2 (the CNN
retrained per source with ``--cnn-recipe``; every input cached by earlier protocol runs).

    python experiments/fusion_l2.py --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack --l2 0.01 0.003 0.001 0.0001

Backs: ``facelive.training.fusion.L2`` (the shipped 1e-3) and the README generalisation section.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

TESTS = ("cnn", "probe", "quality")


def in_domain(nuaa: str, replay: str, l2: float) -> dict:
    """The default tests' fusion at ``l2``: weights, threshold, out-of-fold ACER/EER per
    database, and in-sample ACER/EER on Replay-Attack devel."""
    from facelive.evaluation.metrics import compute_metrics
    from facelive.training.fusion import fit_subsets, fusion_frames

    samples, scores, domains, groups, _ = fusion_frames(replay, TESTS, nuaa)
    models, rep = fit_subsets(scores, samples, TESTS, method="nonneg",
                              threshold_rule="domain-minimax", domains=domains, groups=groups,
                              l2=l2)
    model, r = models[TESTS], rep["+".join(TESTS)]
    ra = [s for s, d in zip(samples, domains, strict=True) if d == "replay-attack"]
    p = model.predict_proba(np.column_stack([scores[t] for t in model.tests]))[: len(ra)]
    m = compute_metrics([float(v) for v in p], [s.label for s in ra],
                        [s.attack_type for s in ra], model.threshold)
    return {"weights": r["weights"], "threshold": model.threshold,
            "out_of_fold": {d: {k: v[k] for k in ("ACER", "EER")}
                            for d, v in r["per_domain"].items()},
            "ra_devel_in_sample": {k: m[k] for k in ("ACER", "EER")}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nuaa", required=True)
    ap.add_argument("--replay-attack", dest="replay_attack", required=True)
    ap.add_argument("--l2", type=float, nargs="+", default=[0.01, 0.003, 0.001, 0.0001])
    ap.add_argument("--cnn-recipe", default="cpu")
    ap.add_argument("--out", type=Path, default=Path("runs/fusion-l2.json"))
    args = ap.parse_args()

    from facelive.training import generalisation as G

    names = []
    for l2 in args.l2:
        name = f"after-2d (L2 {l2:g})"
        G.RECIPES[name] = dataclasses.replace(G.RECIPES["after-2d"], name=name, fusion_l2=l2)
        names.append(name)
    report = G.run_protocols(args.nuaa, args.replay_attack,
                             ["cross-session", "nuaa-to-ra", "ra-to-nuaa"], recipes=names,
                             cnn_recipe=args.cnn_recipe)
    print("| L2 | weights cnn / probe / quality | RA devel ACER / EER (in sample) | "
          "out of fold ACER RA / NUAA | cross-session | nuaa-to-ra | ra-to-nuaa |")
    print("|---|---|---|---|---|---|---|")
    out = {}
    for l2, name in zip(args.l2, names, strict=True):
        d = in_domain(args.nuaa, args.replay_attack, l2)
        prot = {s: e["recipes"][name]["fused"]["target"]["frame"]
                for s, e in report["splits"].items()}
        out[str(l2)] = {"in_domain": d, "protocols": prot}
        w = " / ".join(f"{d['weights'][t]:.2f}" for t in TESTS)
        ins, oof = d["ra_devel_in_sample"], d["out_of_fold"]
        cells = [f"{100 * m['EER']:.1f}% / {m['AUC']:.3f}" for m in prot.values()]
        print(f"| {l2:g} | {w} | {100 * ins['ACER']:.2f}% / {100 * ins['EER']:.2f}% | "
              f"{100 * oof['replay-attack']['ACER']:.2f}% / {100 * oof['nuaa']['ACER']:.2f}% | "
              + " | ".join(cells) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1, default=float) + "\n")
    print(f"(target EER / AUC on the protocol splits; {args.out})")


if __name__ == "__main__":
    main()
