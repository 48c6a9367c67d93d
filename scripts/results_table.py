"""Print a Markdown table of `facelive evaluate` results (metrics.json files), one row each.

    python scripts/results_table.py LABEL=DIR [LABEL=DIR ...] [--level frame|video]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+", help="LABEL=DIR, DIR holding metrics.json")
    ap.add_argument("--level", choices=("frame", "video"), default="frame")
    args = ap.parse_args()
    rows = []
    for item in args.runs:
        label, _, folder = item.partition("=")
        data = json.loads((Path(folder) / "metrics.json").read_text())
        rows.append((label, data["threshold"], data[args.level]))
    types = sorted({t for _, _, m in rows for t in m["APCER"]})
    head = ["tests", "threshold", *[f"APCER {t} %" for t in types], "APCER max %", "BPCER %",
            "ACER %", "EER %", "AUC", "no decision"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for label, thr, m in rows:
        cells = [label, f"{thr:.4f}", *[_pct(m["APCER"].get(t)) for t in types],
                 _pct(m["APCER_max"]), _pct(m["BPCER"]), _pct(m["ACER"]), _pct(m["EER"]),
                 f"{m['AUC']:.3f}", str(m["n_no_decision"])]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
