"""Fine-tuning the CNN liveness network on a face-crop cache
(see :mod:`facelive.training.cnn.data`).

Training (2019 thesis recipe, adapted): softmax cross-entropy, Adam, the whole network fine-tuned
(backbone at a lower learning rate than the head, cosine decay), batches balanced over
(dataset, label) cells so that neither class nor database dominates (the thesis's near-constant
"spoof" classifier came from class imbalance), augmentation from
:mod:`facelive.training.cnn.augment`. With ``depth > 0`` the network also regresses pseudo-depth
maps (:mod:`facelive.training.cnn.depth`; Liu, Jourabloo & Liu, CVPR 2018): loss = cross-entropy
+ ``depth`` x mean squared depth error. With ``lp_init`` the run is LP-FT (Kumar, Raghunathan,
Jones, Ma & Liang, "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution", ICLR 2022): the thesis head is replaced by one linear layer initialised with
a linear probe fitted on the frozen ImageNet features
(:func:`facelive.training.linear_probe.fit_linear`), then the whole network is fine-tuned, so that
the first gradients do not come from a random head.
Runs on CUDA when available (bf16 autocast), else on CPU.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from facelive.evaluation.metrics import eer
from facelive.training.cnn.augment import augment_with_depth, jpeg_copies, to_input
from facelive.training.cnn.model import DEPTH_STRIDE, LivenessNet, build_model


@dataclass
class TrainConfig:
    """Hyper-parameters of one training run."""

    epochs: int = 6
    batch_size: int = 64
    lr: float = 2e-4  # backbone
    head_lr: float = 1e-3
    weight_decay: float = 1e-5
    aug: float = 1.0  # augmentation strength (0: flips only)
    rescale: float = 0.0  # probability of a down-and-up resampling (resolution loss)
    synth: float = 0.0  # probability that a live crop becomes a synthesised print/screen attack
    depth: float = 0.0  # weight of the auxiliary pseudo-depth loss (0: no depth head)
    context: float = 2.0  # crop context; <= the cache's (smaller ones are centre-cropped)
    input_size: int = 224
    freeze_backbone: bool = False
    freeze_bn: bool = False  # keep the backbone's ImageNet batch-norm statistics and scales
    lp_init: float | None = None  # LP-FT: C of the linear probe that initialises a linear head
    seed: int = 0
    steps_per_epoch: int | None = None  # default: one pass over the training set

    def as_dict(self) -> dict:
        return asdict(self)


def recrop(crops: np.ndarray, cache_context: float, context: float, size: int) -> np.ndarray:
    """Centre-crop cached crops (context ``cache_context``) down to ``context`` and resize."""
    import cv2

    if context > cache_context + 1e-6:
        raise ValueError(f"context {context} exceeds the cache's {cache_context}")
    s = crops.shape[1]
    if abs(context - cache_context) < 1e-6 and s == size:
        return crops
    side = int(round(s * context / cache_context))
    o = (s - side) // 2
    out = np.empty((len(crops), size, size, 3), np.uint8)
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    for i, c in enumerate(crops):
        out[i] = cv2.resize(c[o:o + side, o:o + side], (size, size), interpolation=interp)
    return out


@torch.no_grad()
def predict(net: LivenessNet, crops: np.ndarray, device: str = "cpu",
            batch: int = 128) -> np.ndarray:
    """P(live) for uint8 BGR crops ``(N, S, S, 3)``."""
    net.eval()
    out = []
    for i in range(0, len(crops), batch):
        x = to_input(torch.from_numpy(crops[i:i + batch]).to(device))
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
            logits = net(x)
        out.append(torch.softmax(logits.float(), 1)[:, 1].cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


@torch.no_grad()
def linear_probe_head(net: LivenessNet, crops: np.ndarray, labels: np.ndarray,
                      strata: np.ndarray, C: float, device: str = "cpu",
                      batch: int = 128) -> torch.nn.Linear:
    """A 2-logit linear head equal to a linear probe of ``net``'s frozen pooled features on
    ``crops`` (no augmentation; :func:`facelive.training.linear_probe.fit_linear`): logits
    ``[0, z]`` with ``z`` the probe's logit, so the softmax is the probe's P(live)."""
    from facelive.training.linear_probe import fit_linear

    net.eval()
    feats = []
    for i in range(0, len(crops), batch):
        x = to_input(torch.from_numpy(crops[i:i + batch]).to(device))
        feats.append(net.pool(net.backbone.extract_features(x)).flatten(1).float().cpu().numpy())
    w, b = fit_linear(np.concatenate(feats), np.asarray(labels), strata, C)
    head = torch.nn.Linear(w.size, 2).to(device)
    head.weight.zero_()
    head.bias.zero_()
    head.weight[1] = torch.as_tensor(w, dtype=torch.float32, device=device)
    head.bias[1] = float(b)
    return head


def _batch_norms(module: torch.nn.Module) -> list[torch.nn.Module]:
    """The batch-normalisation layers inside ``module``."""
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def train_model(
    crops: np.ndarray,
    labels: np.ndarray,
    strata: np.ndarray,
    cfg: TrainConfig,
    *,
    device: str = "cpu",
    weights: str | None = None,
    eval_sets: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    log: Callable[[str], None] = print,
    on_epoch: Callable[[LivenessNet, int], None] | None = None,
    depth: np.ndarray | None = None,
    depth_valid: np.ndarray | None = None,
) -> tuple[LivenessNet, list[dict]]:
    """Fine-tune a fresh network; returns it and per-epoch history (loss, EER on ``eval_sets``).

    ``strata`` gives each training sample's cell (e.g. dataset x label); every batch draws the
    cells equally often. ``eval_sets`` maps a name to ``(crops, labels)`` evaluated each epoch;
    ``on_epoch(net, epoch)`` is called after each epoch (e.g. to keep a snapshot).
    ``depth`` ``(N, h, w)``: pseudo-depth targets, needed when ``cfg.depth > 0``; ``depth_valid``
    ``(N,)`` marks the samples that have one (default: all).
    """
    if cfg.depth > 0 and depth is None:
        raise ValueError("cfg.depth > 0 needs depth targets")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device)
    gen.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    net = build_model(pretrained=True, weights=weights, image_size=cfg.input_size,
                      depth_head=cfg.depth > 0).to(device)
    if cfg.lp_init is not None:
        net.head = linear_probe_head(net, crops, labels, strata, cfg.lp_init, device)
    if device.startswith("cuda"):
        net = net.to(memory_format=torch.channels_last)
    if cfg.freeze_backbone:
        for p in net.backbone.parameters():
            p.requires_grad_(False)
    frozen_bn = _batch_norms(net.backbone) if cfg.freeze_bn and not cfg.freeze_backbone else []
    for mod in frozen_bn:
        for p in mod.parameters():
            p.requires_grad_(False)
    head = list(net.head.parameters())
    if net.depth is not None:
        head += list(net.depth.parameters())
    groups = [{"params": head, "lr": cfg.head_lr}]
    if not cfg.freeze_backbone:
        groups.append({"params": net.backbone.parameters(), "lr": cfg.lr})
    opt = torch.optim.Adam(groups, weight_decay=cfg.weight_decay)
    base_lrs = [g["lr"] for g in opt.param_groups]

    data = torch.from_numpy(crops).to(device)
    jpeg = torch.from_numpy(jpeg_copies(crops, seed=cfg.seed)).to(device) if cfg.aug > 0 else None
    y_all = torch.from_numpy(np.asarray(labels, np.int64)).to(device)
    if cfg.depth > 0:
        d_all = torch.from_numpy(np.asarray(depth, np.float32)).unsqueeze(1).to(device)
        ok = np.ones(len(crops), bool) if depth_valid is None else np.asarray(depth_valid, bool)
        ok_all = torch.from_numpy(ok).to(device)
        grid = cfg.input_size // DEPTH_STRIDE
    cells = [np.flatnonzero(strata == c) for c in np.unique(strata)]
    steps = cfg.steps_per_epoch or max(1, len(crops) // cfg.batch_size)
    total = steps * cfg.epochs
    history: list[dict] = []
    step = 0
    for epoch in range(cfg.epochs):
        net.train()
        if cfg.freeze_backbone:
            net.backbone.eval()
        for mod in frozen_bn:  # ImageNet statistics, not the source's
            mod.eval()
        t0 = time.perf_counter()
        losses = []
        for _ in range(steps):
            per = [cfg.batch_size // len(cells)] * len(cells)
            for j in range(cfg.batch_size - sum(per)):
                per[j] += 1
            idx = np.concatenate([rng.choice(c, k, replace=len(c) < k)
                                  for c, k in zip(cells, per, strict=True)])
            it = torch.from_numpy(idx).to(device)
            x, y, d = augment_with_depth(data[it], y_all[it],
                                         d_all[it] if cfg.depth > 0 else None, cfg.aug, gen,
                                         jpeg[it] if jpeg is not None else None,
                                         rescale=cfg.rescale, synth=cfg.synth)
            if device.startswith("cuda"):
                x = x.contiguous(memory_format=torch.channels_last)
            frac = step / max(1, total)
            for g, lr in zip(opt.param_groups, base_lrs, strict=True):
                g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * frac))
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.startswith("cuda")):
                if cfg.depth > 0:
                    logits, pred = net.forward_with_depth(x)
                else:
                    logits = net(x)
            loss = F.cross_entropy(logits.float(), y)
            if cfg.depth > 0:
                target = F.interpolate(d, size=(grid, grid), mode="area")
                w = ok_all[it].float().view(-1, 1, 1, 1)
                err = (pred.float() - target) ** 2 * w
                loss = loss + cfg.depth * err.sum() / (w.sum() * grid * grid).clamp(min=1.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            step += 1
        rec: dict = {"epoch": epoch + 1, "loss": float(np.mean(losses)),
                     "seconds": round(time.perf_counter() - t0, 2)}
        for name, (ec, el) in (eval_sets or {}).items():
            s, live = predict(net, ec, device), np.asarray(el) == 1
            rec[f"eer_{name}"] = round(eer(s[live], s[~live]), 4)
        history.append(rec)
        if on_epoch is not None:
            on_epoch(net, epoch + 1)
        log(" ".join(f"{k}={v}" for k, v in rec.items()))
    net.eval()
    return net, history
