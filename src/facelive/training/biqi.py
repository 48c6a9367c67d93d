"""Fitting BIQI's distortion classifier and per-type regressors: ``facelive train biqi`` ->
``models/biqi.json``.

Moorthy & Bovik, IEEE SPL 17(5), 2010 trained SVMs on the LIVE database (DMOS targets). Here: clean
scikit-image public-domain / CC0 samples (facelive.iqa._samples), each as two 240-row bases
(resized to 240 rows; a native-resolution crop), both at most 320 wide, distorted at 6 strengths
by 5 synthetic distortions: JPEG (OpenCV), JPEG2000 (OpenCV/OpenJPEG), white Gaussian noise,
Gaussian blur, and "fast fading" approximated as JPEG2000 plus lost packets (8x8 tiles of wavelet
detail coefficients zeroed). Target quality = strength level on 0 (clean) .. 100 (strongest).
Classifier: multinomial logistic regression on standardised features; regressors: ridge, one per
type, each also trained on the clean bases (target 0). Scikit-learn fits, JSON stores the numbers.
:func:`train_biqi` reports a leave-images-out (3-fold grouped) check before the final fit on
everything. No research-only data is involved.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

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
TRAINING = "facelive train biqi: synthetic distortions of scikit-image samples"
"""Provenance stored in the model's ``training`` field."""


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


def build_dataset(images: Mapping[str, np.ndarray] | None = None
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(features, class index (-1 = clean), target quality, group = image index) of the clean
    ``images`` (name -> BGR uint8; default: the scikit-image samples) and their distortions."""
    from rich.progress import track

    from facelive.iqa._common import to_grey
    from facelive.iqa._samples import pristine_images
    from facelive.iqa.biqi_model import CLASSES, biqi_features

    rng = np.random.default_rng(SEED)
    X, y, q, g = [], [], [], []
    items = list((pristine_images() if images is None else images).items())
    for gi, (_, img) in enumerate(track(items, description="distorting")):
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
    from facelive.linear import standardise

    # only a constant column (standard deviation exactly 0) is left unscaled
    mean, scale = standardise(X, min_scale=np.finfo(np.float64).smallest_subnormal)
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
        "training": TRAINING,
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


def held_out_check(X: np.ndarray, y: np.ndarray, q: np.ndarray, g: np.ndarray,
                   folds: int = 3) -> dict[str, Any]:
    """Leave-images-out check: ``folds`` folds over the image index ``g`` (image ``i`` in fold
    ``i % folds``); type accuracy on the distorted samples and Spearman(BIQI, strength)."""
    from scipy.stats import spearmanr

    acc, rho = [], []
    for fold in range(folds):
        test = g % folds == fold
        m = fit(X[~test], y[~test], q[~test])
        pred, score = _score(m, X[test])
        dist = y[test] >= 0
        acc.append(float(np.mean(pred[dist] == y[test][dist])))
        rho.append(float(spearmanr(score, q[test]).statistic))
    return {"folds": folds, "type_accuracy": float(np.mean(acc)),
            "spearman": float(np.mean(rho)), "type_accuracy_per_fold": acc,
            "spearman_per_fold": rho}


def train_biqi(out_dir: Path | None = None, *, images: Mapping[str, np.ndarray] | None = None,
               folds: int = 3, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Fit BIQI on synthetic distortions of ``images`` (default: the shipped model's scikit-image
    samples), after a leave-images-out check (``folds`` folds; skipped when there are fewer
    images than 2 folds need), and write ``biqi.json`` (+ ``SHA256SUMS``) into ``out_dir``
    (default: the package's ``models/``). Returns the report."""
    from facelive import modelstore
    from facelive.iqa.biqi_model import CLASSES, MODEL_FILE

    X, y, q, g = build_dataset(images)
    n_images = int(len(np.unique(g)))
    check = None
    if min(folds, n_images) >= 2:
        check = held_out_check(X, y, q, g, min(folds, n_images))
        log(f"{len(X)} samples; held-out images ({check['folds']} folds): type accuracy "
            f"{check['type_accuracy']:.3f}, Spearman(BIQI, strength) {check['spearman']:.3f}")
    model = fit(X, y, q)
    path = modelstore.write_json(MODEL_FILE, model, out_dir)
    log(f"-> {path}")
    return {
        "model": "biqi",
        "file": str(path),
        "sha256": modelstore.sha256_bytes(path.read_bytes()),
        "n_images": n_images,
        "n_samples": int(len(X)),
        "classes": list(CLASSES),
        "levels": model["levels"],
        "seed": SEED,
        "held_out": check,
    }


def card_markdown(report: dict[str, Any], command: str) -> str:
    """The BIQI model's card (Markdown); every number comes from ``report``."""
    h = report["held_out"]
    check = ("no held-out check (too few images)" if h is None else
             f"distortion type accuracy **{h['type_accuracy']:.3f}** (chance "
             f"{1 / len(report['classes']):.2f}), Spearman correlation of BIQI with the "
             f"distortion strength **{h['spearman']:.3f}**")
    levels = "\n".join(f"| {k} | {', '.join(str(v) for v in lv)} |"
                       for k, lv in report["levels"].items())
    return f"""# Model card: BIQI model, `models/biqi.json`

**What it is.** BIQI's two steps (Moorthy & Bovik, IEEE SPL 2010) for the quality test's BIQI
measure (`facelive.iqa.biqi_model`): a multinomial logistic classifier of the distortion type
({", ".join(report["classes"])}) and one ridge regressor per type of the distortion strength
(0 clean .. 100 strongest), on 18 wavelet features. Not the published LIVE-trained SVMs: fitted on
{report["n_samples"]} samples, synthetic distortions of {report["n_images"]} public-domain / CC0
scikit-image sample images (two 240-row bases each; seed {report["seed"]}). No research-only
data; see `docs/quality-measures.md`.

**Reproduce** (seconds):

    {command}

**Held-out images** ({h["folds"] if h else 0} folds over the images, before the final fit on
everything): {check}.

| distortion | strength levels |
|---|---|
{levels}
"""
