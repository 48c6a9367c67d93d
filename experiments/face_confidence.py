"""How many real frames and synthetic non-faces pass the face detector at each confidence cut.

    python experiments/face_confidence.py --data ../shared/data \
        [--cuts 0.5,0.6,0.7] [--synthetic 300] [--out runs/face_confidence.json]

One pass over every frame of the shared data (NUAA train list, Replay-Attack train + devel) records
the top BlazeFace confidence of the short-range and of the full-range model (both run on every
image, with MediaPipe's own cut lowered to 0.1). :class:`facelive.face.detection.FaceDetector` finds
a face at cut ``t`` exactly when one of the two tops is ``>= t`` (short-range first, full-range
fallback), so every cut is evaluated from the one pass. Synthetic non-faces: uniform and Gaussian
white noise, blurred noise (random texture at several scales), flat colours, gradients and
checkerboards, seeded. Prints a markdown table; ``--out`` keeps the per-frame tops (no images).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def synthetic_images(n: int, seed: int = 0) -> list[tuple[str, object]]:
    """``n`` seeded non-face images (BGR uint8), spread over six kinds; ``(kind, image)`` pairs."""
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = [(480, 640), (240, 320), (720, 1280), (256, 256)]
    kinds = ["uniform noise", "gaussian noise", "blurred noise", "flat", "gradient",
             "checkerboard"]
    out = []
    for i in range(n):
        kind = kinds[i % len(kinds)]
        h, w = sizes[(i // len(kinds)) % len(sizes)]
        if kind == "uniform noise":
            img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        elif kind == "gaussian noise":
            img = np.clip(rng.normal(128, rng.uniform(20, 80), (h, w, 3)), 0, 255).astype(np.uint8)
        elif kind == "blurred noise":
            sigma = float(rng.choice([1.0, 2.0, 4.0, 8.0, 16.0]))
            f = cv2.GaussianBlur(rng.normal(0, 1, (h, w, 3)).astype(np.float32), (0, 0), sigma)
            f = (f - f.mean()) / (f.std() + 1e-6)
            img = np.clip(128 + 50 * f, 0, 255).astype(np.uint8)
        elif kind == "flat":
            img = np.empty((h, w, 3), np.uint8)
            img[:] = rng.integers(0, 256, 3, dtype=np.uint8)
        elif kind == "gradient":
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            a = rng.uniform(0, 2 * np.pi)
            g = (np.cos(a) * xx / w + np.sin(a) * yy / h)
            g = (g - g.min()) / (np.ptp(g) + 1e-6)
            c0, c1 = rng.integers(0, 256, (2, 3))
            img = (c0 + g[..., None] * (c1 - c0)).astype(np.uint8)
        else:
            cell = int(rng.integers(4, 64))
            yy, xx = np.mgrid[0:h, 0:w]
            img = np.repeat((((yy // cell + xx // cell) % 2) * 255).astype(np.uint8)[..., None],
                            3, axis=2)
        out.append((kind, img))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Face detector confidence cuts: real vs non-faces.")
    ap.add_argument("--data", type=Path, default=Path("../shared/data"))
    ap.add_argument("--cuts", default="0.5,0.6,0.7")
    ap.add_argument("--synthetic", type=int, default=300, help="number of generated non-faces")
    ap.add_argument("--out", type=Path, default=None, help="JSON with the per-frame tops")
    args = ap.parse_args(argv)
    cuts = [float(c) for c in args.cuts.split(",")]

    import cv2
    import numpy as np
    from rich.progress import Progress

    from facelive.datasets import open_dataset
    from facelive.face.detection import FaceDetector

    samples = {"nuaa": open_dataset("nuaa", args.data / "nuaa", split="train").samples()}
    for sp in ("train", "devel"):
        samples[f"ra_{sp}"] = open_dataset("replay-attack", args.data / "replay-attack",
                                           split=sp).samples()
    synth = synthetic_images(args.synthetic)
    det = FaceDetector(min_confidence=0.1)

    def tops(image: np.ndarray) -> tuple[float, float]:
        # the detector's own steps (downscale, RGB, both models), without its fallback logic
        h, w = image.shape[:2]
        scale = min(1.0, det.detect_side / max(h, w))
        small = image if scale >= 1.0 else cv2.resize(
            image, (max(1, round(w * scale)), max(1, round(h * scale))),
            interpolation=cv2.INTER_AREA)
        rgb = np.ascontiguousarray(small[:, :, ::-1])
        return tuple(max((b.confidence for b in det._boxes(det._model(m).process(rgb), w, h)),
                         default=0.0) for m in (0, 1))  # type: ignore[return-value]

    res: dict[str, dict] = {}
    t0 = time.perf_counter()
    n_img = 0
    with Progress() as prog:
        for name, smp in samples.items():
            task = prog.add_task(name, total=len(smp))
            rows = []
            for s in smp:
                rows.append(tops(s.load()))
                prog.advance(task)
            n_img += len(smp)
            res[name] = {"keys": [s.key for s in smp], "labels": [s.label for s in smp],
                         "tops": rows}
        task = prog.add_task("synthetic", total=len(synth))
        rows = []
        for _, img in synth:
            rows.append(tops(img))
            prog.advance(task)
        res["synthetic"] = {"kinds": [k for k, _ in synth], "tops": rows}
    secs = time.perf_counter() - t0
    det.close()

    def found(rows: list, t: float) -> np.ndarray:
        a = np.asarray(rows, np.float64).reshape(-1, 2)
        return (a >= t).any(axis=1)

    real_rows = [r for k in samples for r in res[k]["tops"]]
    print(f"{n_img} real frames + {len(synth)} synthetic images in {secs:.1f} s "
          f"({1e3 * secs / (n_img + len(synth)):.1f} ms per image, both models on every image)")
    hdr = "| min_confidence | " + " | ".join(
        [f"no face: {k} (n={len(samples[k])})" for k in samples]
        + [f"no face: all real (n={len(real_rows)})", f"false face: synthetic (n={len(synth)})"])
    print(hdr + " |")
    print("|---" * (len(samples) + 3) + "|")
    kinds = sorted(set(res["synthetic"]["kinds"]))
    for t in cuts:
        cells = []
        for k in [*samples, "all"]:
            rows = real_rows if k == "all" else res[k]["tops"]
            miss = int((~found(rows, t)).sum())
            cells.append(f"{miss} ({100 * miss / len(rows):.2f}%)")
        ff = found(res["synthetic"]["tops"], t)
        cells.append(f"{int(ff.sum())} ({100 * ff.mean():.1f}%)")
        print(f"| {t:.2f} | " + " | ".join(cells) + " |")
    print("\nfalse faces per synthetic kind:")
    sk = np.array(res["synthetic"]["kinds"])
    for t in cuts:
        ff = found(res["synthetic"]["tops"], t)
        print(f"  {t:.2f}: " + ", ".join(f"{k} {int(ff[sk == k].sum())}/{int((sk == k).sum())}"
                                         for k in kinds))
    best = np.asarray(real_rows).max(axis=1)
    print("\nreal frames, top confidence quantiles (0.1%, 0.3%, 1%, 5%): "
          + ", ".join(f"{q:.3f}" for q in np.quantile(best, [0.001, 0.003, 0.01, 0.05])))
    sbest = np.asarray(res["synthetic"]["tops"]).max(axis=1)
    print(f"synthetic, highest top confidence: {sbest.max():.3f}")
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res))
        print(f"written {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
