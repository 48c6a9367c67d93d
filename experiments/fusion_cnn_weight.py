"""How much weight can the fine-tuned CNN get? The trade between in-domain and new cameras.

The shipped fusion (cnn + probe + minifas) gives the CNN a small weight because the CNN, trained
on one database, ranks the other database's frames at chance. This sweep keeps the shipped
fusion's means, scales, probe and minifas weights and intercept, multiplies the CNN's weight by
``k``, and reports on each of the four domains the fusion was fitted on (the two cross-database
protocol targets, where every trainable test never saw the database; the two in-domain held-out
sets, scored by the shipped tests) the EER, and at the security-first threshold of the shipped
rule (``domain-apcer``: the lowest threshold at which no domain accepts more than 5% of its
attacks) the BPCER and worst-type APCER of each domain. The CNN's cross-database scores come from
the CPU training recipe (``--cnn-recipe cpu``), as in the protocols. Writes a table (stdout and
``OUT/fusion_cnn_weight.md``) and a plot (``OUT/fusion_cnn_weight.png``).

    python experiments/fusion_cnn_weight.py --nuaa ../shared/data/nuaa \\
        --replay-attack ../shared/data/replay-attack --out runs/fusion-cnn-weight
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facelive.evaluation.metrics import apcer, bpcer, eer
from facelive.fusion.model import logit
from facelive.modelstore import read_json
from facelive.training.fusion import domain_apcer_threshold, fusion_frames, pooled_frames
from facelive.training.generalisation import cross_database_frames

TESTS = ("cnn", "minifas", "probe")


def shipped_subset(tests: tuple[str, ...]) -> dict:
    """The shipped fusion's fitted model for exactly ``tests``."""
    d = read_json("fusion.json")
    return next(s for s in d["subsets"] if tuple(s["tests"]) == tests)


def fused(scores: dict[str, np.ndarray], sub: dict, k: float) -> np.ndarray:
    """P(live) of the shipped subset with the CNN's weight multiplied by ``k``."""
    x = logit(np.column_stack([scores[t] for t in sub["tests"]]))
    coef = np.array(sub["coef"], dtype=np.float64)
    coef[sub["tests"].index("cnn")] *= k
    z = ((x - np.array(sub["mean"])) / np.array(sub["scale"])) @ coef + sub["intercept"]
    return 1.0 / (1.0 + np.exp(-z))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nuaa", required=True)
    ap.add_argument("--replay-attack", required=True)
    ap.add_argument("--cnn-recipe", default="cpu")
    ap.add_argument("--k", type=float, nargs="+", default=[0, 1, 2, 4, 8, 16])
    ap.add_argument("--target-apcer", type=float, default=0.05)
    ap.add_argument("--out", default="runs/fusion-cnn-weight")
    args = ap.parse_args()
    frames = pooled_frames(
        ("cross-database", cross_database_frames(args.nuaa, args.replay_attack, TESTS,
                                                 cnn_recipe=args.cnn_recipe)),
        ("in-domain", fusion_frames(args.replay_attack, TESTS, nuaa_root=args.nuaa)))
    samples, scores, domains, _, _ = frames
    y = np.array([s.is_live for s in samples])
    types = np.array([s.attack_type for s in samples], dtype=object)
    dom = np.array(domains, dtype=object)
    names = sorted(set(domains))
    sub = shipped_subset(TESTS)
    ok = np.all(np.isfinite(np.column_stack([scores[t] for t in TESTS])), axis=1)
    head = ["CNN weight (x shipped)", "threshold"] + [f"{n} EER / APCER / BPCER" for n in names]
    rows, curves = [], {n: [] for n in names}
    for k in args.k:
        p = fused(scores, sub, k)
        thr = domain_apcer_threshold(p[ok], y[ok], dom[ok].tolist(), args.target_apcer)
        cells = [f"{k:g} ({k * sub['coef'][sub['tests'].index('cnn')]:.2f})", f"{thr:.4f}"]
        for n in names:
            m = ok & (dom == n)
            live, att = p[m & y], p[m & ~y]
            worst = max(apcer(att[types[m & ~y] == t], thr) for t in set(types[m & ~y]))
            e = eer(live, att)
            curves[n].append(e)
            cells.append(f"{100 * e:.1f}% / {100 * worst:.1f}% / {100 * bpcer(live, thr):.1f}%")
        rows.append(cells)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = "\n".join(["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
                      + ["| " + " | ".join(r) + " |" for r in rows])
    print(table)
    (out / "fusion_cnn_weight.md").write_text(table + "\n")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for n in names:
        ax.plot(args.k, [100 * e for e in curves[n]], marker="o", label=n)
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlabel("CNN weight, multiple of the shipped weight")
    ax.set_ylabel("EER (%)")
    ax.set_title("In-domain accuracy bought with accuracy on new cameras")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fusion_cnn_weight.png", dpi=110)
    print(f"wrote {out / 'fusion_cnn_weight.md'} and {out / 'fusion_cnn_weight.png'}")


if __name__ == "__main__":
    main()
