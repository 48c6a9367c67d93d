"""CNN recipes compared on generalisation-protocol splits (issue 11).

Trains the CNN of each ``RECIPE:SPLIT`` pair on the split's source
(:func:`facelive.training.cnn.protocol.protocol_scores`, cached in ``$FACELIVE_CACHE``, the same
cache ``facelive evaluate --protocol ... --cnn-recipe RECIPE`` uses) and prints the EER on the
source's threshold part, and the EER and AUC on the target, overall and per attack type.

    python experiments/cnn_protocol_variants.py --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack \\
        cpu-synth:nuaa-to-ra cpu-rescale-synth:nuaa-to-ra
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.metrics import roc_auc_score

from facelive.evaluation.metrics import eer
from facelive.evaluation.protocols import Universe, protocol_split
from facelive.training.cnn.protocol import protocol_scores


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nuaa", required=True)
    ap.add_argument("--replay-attack", required=True)
    ap.add_argument("--seed", type=int, default=0, help="training seed (0: the protocols' own)")
    ap.add_argument("pairs", nargs="+", help="RECIPE:SPLIT, e.g. cpu-synth:nuaa-to-ra")
    args = ap.parse_args()
    u = Universe.load(args.nuaa, args.replay_attack)
    y = u.is_live
    kind = np.array([s.attack_type or "live" for s in u.samples])
    for pair in args.pairs:
        recipe, name = pair.split(":")
        split = protocol_split(name, u)
        p = protocol_scores(u, split.train, recipe=recipe, seed=args.seed,
                            desc=f"{recipe} ({name}, seed {args.seed})")
        ok = np.isfinite(p)
        dv, tg = split.devel & ok, split.target & ok
        per = {t: round(roc_auc_score(y[tg & ((kind == t) | y)], p[tg & ((kind == t) | y)]), 3)
               for t in sorted(set(kind[tg & ~y]))}
        print(f"{recipe} {name} seed {args.seed}: threshold-part EER "
              f"{eer(p[dv & y], p[dv & ~y]):.3f}, target EER {eer(p[tg & y], p[tg & ~y]):.3f}, "
              f"AUC {roc_auc_score(y[tg], p[tg]):.3f}, "
              f"AUC per attack type {per}", flush=True)


if __name__ == "__main__":
    main()
