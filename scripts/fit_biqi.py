"""Fit BIQI's distortion classifier and per-type regressors; store models/biqi.json.

Moorthy & Bovik, IEEE SPL 17(5), 2010 trained SVMs on the LIVE database (DMOS targets). Here: clean
scikit-image public-domain / CC0 samples (facelive.iqa._samples), each as two 240-row bases
(resized to 240 rows; a native-resolution crop), both at most 320 wide, distorted at 6 strengths
by 5 synthetic distortions: JPEG (OpenCV), JPEG2000 (OpenCV/OpenJPEG), white Gaussian noise,
Gaussian blur, and "fast fading" approximated as JPEG2000 plus lost packets (8x8 tiles of wavelet
detail coefficients zeroed). Target quality = strength level on 0 (clean) .. 100 (strongest).
Classifier: multinomial logistic regression on standardised features; regressors: ridge, one per
type, each also trained on the clean bases (target 0). Scikit-learn fits, JSON stores the numbers.
Prints a leave-images-out (3-fold grouped) check before the final fit on everything.

Usage: PYTHONPATH=src python scripts/fit_biqi.py [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

LEVELS = {
    "jpeg": (80, 50, 30, 18, 10, 5),  # JPEG quality
    "jp2k": (200, 100, 50, 25, 12, 6),  # OpenCV JPEG2000 compression ratio x1000
    "white_noise": (3.0, 6.0, 10.0, 15.0, 22.0, 30.0),  # noise sigma (grey levels)
    "blur": (0.7, 1.1, 1.6, 2.3, 3.2, 4.5),  # Gaussian sigma (pixels)
    "fast_fading": ((150, 0.02), (100, 0.04), (60, 0.08), (40, 0.12), (25, 0.18), (15, 0.25)),
}
SEED = 0


def _codec(img: np.ndarray, ext: str, params: list[int]) -> np.ndarray:
    ok, buf = cv2.imencode(ext, img, params)
    if not ok:
        raise RuntimeError(f"OpenCV cannot encode {ext}")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)


def _packet_loss(img: np.ndarray, p: float, rng: np.random.Generator) -> np.ndarray:
    import pywt

    out = np.empty_like(img)
    for ch in range(3):
        coeffs = pywt.wavedec2(img[:, :, ch].astype(np.float64), "bior4.4", level=3,
                               mode="periodization")
        for details in coeffs[1:]:
            for band in details:
                th, tw = -(-band.shape[0] // 8), -(-band.shape[1] // 8)
                lost = rng.random((th, tw)) < p
                mask = np.kron(lost, np.ones((8, 8), bool))[: band.shape[0], : band.shape[1]]
                band[mask] = 0.0
        rec = pywt.waverec2(coeffs, "bior4.4", mode="periodization")
        out[:, :, ch] = np.clip(np.rint(rec[: img.shape[0], : img.shape[1]]), 0, 255)
    return out


def distort(img: np.ndarray, kind: str, level: object, rng: np.random.Generator) -> np.ndarray:
    """One synthetic distortion of a BGR uint8 image."""
    if kind == "jpeg":
        return _codec(img, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, int(level)])
    if kind == "jp2k":
        return _codec(img, ".jp2", [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, int(level)])
    if kind == "white_noise":
        noisy = img.astype(np.float64) + rng.normal(0.0, float(level), img.shape)
        return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)
    if kind == "blur":
        return cv2.GaussianBlur(img, (0, 0), float(level), borderType=cv2.BORDER_REFLECT)
    if kind == "fast_fading":
        ratio, p = level
        return _packet_loss(_codec(img, ".jp2", [cv2.IMWRITE_JPEG2000_COMPRESSION_X1000, ratio]),
                            p, rng)
    raise ValueError(kind)


def bases(img: np.ndarray) -> list[np.ndarray]:
    """Two clean 240-row bases of at most 320 columns: resized, and a native-resolution crop."""
    h, w = img.shape[:2]
    s = 240 / h
    small = cv2.resize(img, (round(w * s), 240), interpolation=cv2.INTER_AREA)
    out = [small]
    if h >= 240:
        y0 = (h - 240) // 2
        x0 = max(0, (w - 320) // 2)
        out.append(img[y0 : y0 + 240, x0 : x0 + 320])
    return [np.ascontiguousarray(b[:, : min(320, b.shape[1])]) for b in out]


def build_dataset() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features, class index (-1 = clean), target quality, group = image index)."""
    from rich.progress import track

    from facelive.iqa._common import to_grey
    from facelive.iqa._samples import pristine_images
    from facelive.iqa.biqi_model import CLASSES, biqi_features

    rng = np.random.default_rng(SEED)
    X, y, q, g = [], [], [], []
    images = list(pristine_images().items())
    for gi, (_, img) in enumerate(track(images, description="distorting")):
        for base in bases(img):
            X.append(biqi_features(to_grey(base)))
            y.append(-1)
            q.append(0.0)
            g.append(gi)
            for ci, kind in enumerate(CLASSES):
                levels = LEVELS[kind]
                for li, level in enumerate(levels):
                    X.append(biqi_features(to_grey(distort(base, kind, level, rng))))
                    y.append(ci)
                    q.append(100.0 * (li + 1) / len(levels))
                    g.append(gi)
    return np.array(X), np.array(y), np.array(q), np.array(g)


def fit(X: np.ndarray, y: np.ndarray, q: np.ndarray) -> dict:
    """Fit standardisation, classifier and regressors; return the JSON-able model."""
    from sklearn.linear_model import LogisticRegression, Ridge

    from facelive.iqa.biqi_model import CLASSES, MODEL_FORMAT, WAVELET

    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    Z = (X - mean) / scale
    dist = y >= 0
    clf = LogisticRegression(C=1.0, max_iter=5000).fit(Z[dist], y[dist])
    reg_coef, reg_int = [], []
    for ci in range(len(CLASSES)):
        sel = (y == ci) | (y == -1)
        r = Ridge(alpha=1.0).fit(Z[sel], q[sel])
        reg_coef.append(r.coef_.tolist())
        reg_int.append(float(r.intercept_))
    return {
        "format": MODEL_FORMAT,
        "wavelet": WAVELET,
        "classes": list(CLASSES),
        "features": "per subband (levels 1..3, H/V/D): GGD alpha, log10(variance + 1e-6)",
        "quality_scale": "0 clean .. 100 strongest synthetic distortion",
        "training": "scripts/fit_biqi.py: synthetic distortions of scikit-image samples",
        "levels": {k: [list(v) if isinstance(v, tuple) else v for v in lv]
                   for k, lv in LEVELS.items()},
        "n_samples": int(len(X)),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
        "classifier": {"coef": clf.coef_.tolist(), "intercept": clf.intercept_.tolist()},
        "regressors": {"coef": reg_coef, "intercept": reg_int},
    }


def _score(model: dict, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Z = (X - np.array(model["mean"])) / np.array(model["scale"])
    clf = model["classifier"]
    logits = Z @ np.array(clf["coef"]).T + np.array(clf["intercept"])
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    qs = np.clip(Z @ np.array(model["regressors"]["coef"]).T
                 + np.array(model["regressors"]["intercept"]), 0, 100)
    return p.argmax(axis=1), (p * qs).sum(axis=1)


def main(argv: list[str] | None = None) -> int:
    from scipy.stats import spearmanr

    from facelive import modelstore
    from facelive.iqa.biqi_model import MODEL_FILE

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out-dir", type=Path, default=None, help="model folder (default: shipped)")
    args = ap.parse_args(argv)

    X, y, q, g = build_dataset()
    acc, rho = [], []
    for fold in range(3):
        test = g % 3 == fold
        m = fit(X[~test], y[~test], q[~test])
        pred, score = _score(m, X[test])
        dist = y[test] >= 0
        acc.append(float(np.mean(pred[dist] == y[test][dist])))
        rho.append(float(spearmanr(score, q[test]).statistic))
    print(f"{len(X)} samples; held-out images (3 folds): type accuracy "
          f"{np.mean(acc):.3f}, Spearman(BIQI, strength) {np.mean(rho):.3f}")
    model = fit(X, y, q)
    path = modelstore.write_json(MODEL_FILE, model, args.out_dir)
    print(f"-> {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
