"""How the shipped tests and the fusion hold up when frames arrive as the browser client sends
them: re-encoded as JPEG (canvas.toBlob quality 0.85 in `server/static/app.js`).

    python experiments/eval_web_jpeg.py --replay-attack ../shared/data/replay-attack [--quality 85]

Scores Replay-Attack devel twice (original frames, re-encoded frames) with every test and the
fusion at their shipped thresholds and prints a Markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--replay-attack", type=Path, required=True)
    ap.add_argument("--quality", type=int, default=85)
    args = ap.parse_args()
    from rich.progress import track

    from facelive.datasets import open_dataset
    from facelive.evaluation.metrics import compute_metrics
    from facelive.imageio import decode_image
    from facelive.pipeline import Pipeline

    samples = open_dataset("replay-attack", args.replay_attack, split="devel").samples()
    labels = [s.label for s in samples]
    types = [s.attack_type for s in samples]
    pipe = Pipeline()
    thr = {t.name: t.threshold for t in pipe.tests}
    rows = []
    for name, q in (("original frames", None), (f"re-encoded JPEG q{args.quality}", args.quality)):
        scores: dict[str, list[float | None]] = {t: [] for t in [*pipe.test_names, "fused"]}
        for s in track(samples, description=name):
            img = s.load()
            if q is not None:
                ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
                img = decode_image(buf.tobytes())
            r = pipe.check_frame(img)
            for t in pipe.test_names:
                scores[t].append(r.tests[t].score)
            scores["fused"].append(r.score)
        for t, th in [*thr.items(), ("fused", pipe.threshold)]:
            m = compute_metrics(scores[t], labels, types, th)
            rows.append((name, t, m))
    print("| frames | test | APCER max % | BPCER % | ACER % | EER % | AUC |")
    print("|---|---|---|---|---|---|---|")
    for name, t, m in rows:
        print(f"| {name} | {t} | {100 * m['APCER_max']:.1f} | {100 * m['BPCER']:.1f} | "
              f"{100 * m['ACER']:.1f} | {100 * m['EER']:.1f} | {m['AUC']:.3f} |")


if __name__ == "__main__":
    main()
