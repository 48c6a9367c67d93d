"""Print a Markdown table of `facelive evaluate` results (metrics.json files), one row each.

    python experiments/results_table.py LABEL=DIR [LABEL=DIR ...] [--level frame|video]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facelive.evaluation import comparison_table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("runs", nargs="+", help="LABEL=DIR, DIR holding metrics.json")
    ap.add_argument("--level", choices=("frame", "video"), default="frame")
    args = ap.parse_args()
    rows = []
    for item in args.runs:
        label, _, folder = item.partition("=")
        rows.append((label, json.loads((Path(folder) / "metrics.json").read_text())))
    print(comparison_table(rows, args.level, show_threshold=True, show_no_decision=True))


if __name__ == "__main__":
    main()
