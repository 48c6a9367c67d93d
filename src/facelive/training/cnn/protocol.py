"""The CNN test trained per generalisation-protocol source, on the CPU.

:mod:`facelive.training.generalisation` trains every test on a protocol split's source and
scores the target at the source's threshold. For the CNN that needs a recipe that a 2-core CPU
trains in minutes: :data:`CPU_RECIPE` (128-pixel input, 4 passes over the source, capture-chain
augmentation; variants add resolution loss and synthesised attacks, see
:mod:`facelive.training.cnn.synth`, and pseudo-depth supervision, see
:mod:`facelive.training.cnn.depth`). Crops come from a crop cache of every protocol sample
(:func:`facelive.training.cnn.data.build_crop_cache`: the pipeline's detector and square crop,
stored as JPEG q85) and the scores of each trained network are cached on disk
(``$FACELIVE_CACHE``), keyed by the training samples, the recipe and the code. Both hold data
derived from research-only images: never commit them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from facelive.training.cnn.train import TrainConfig

CPU_RECIPE = TrainConfig(epochs=4, batch_size=32, input_size=128, aug=1.0)
"""The CPU recipe: what ``facelive evaluate --protocol`` trains per source by default."""

RECIPES = {
    "cpu": CPU_RECIPE,
    "cpu-rescale": dataclasses.replace(CPU_RECIPE, rescale=0.3),
    "cpu-synth": dataclasses.replace(CPU_RECIPE, synth=0.3),
    "cpu-rescale-synth": dataclasses.replace(CPU_RECIPE, rescale=0.3, synth=0.3),
    "cpu-depth": dataclasses.replace(CPU_RECIPE, depth=1.0),
    "cpu-depth-synth": dataclasses.replace(CPU_RECIPE, depth=1.0, synth=0.3),
    "cpu-gentle": dataclasses.replace(CPU_RECIPE, lr=2e-5, freeze_bn=True),
    "cpu-frozen": dataclasses.replace(CPU_RECIPE, freeze_backbone=True),
    "cpu-lpft": dataclasses.replace(CPU_RECIPE, lp_init=1e-4, lr=1e-5, head_lr=1e-5,
                                    freeze_bn=True, epochs=2),
    "cpu-lpft-1e-4": dataclasses.replace(CPU_RECIPE, lp_init=1e-4, lr=1e-4, head_lr=1e-4,
                                         freeze_bn=True, epochs=2),
    # the shipped CNN's own recipe (224 px, 8 passes, batch 64, the defaults of TrainConfig):
    # on a GPU seconds per split; on a 2-core CPU 40-90 min for the three splits
    "shipped": TrainConfig(epochs=8),
}
"""Named CNN recipes compared on the protocols (``--cnn-recipe``)."""

DEFAULT_CACHE = Path("runs/cnn/crops-all")
"""Crop cache of every protocol sample (NUAA train list, Replay-Attack train and devel)."""


CODE_VERSION = "1"
"""Version of the code a trained network's scores depend on (augmentation, pseudo-depth targets,
model, synthesised attacks, training): part of the score caches' keys. Bump it with any change
that alters a trained network or a depth target."""


def _code() -> str:
    return CODE_VERSION


def crop_cache_depth(manifest: dict, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-depth targets of every crop of a crop cache
    (:func:`facelive.training.cnn.depth.depth_targets`), cached on disk."""
    import json

    from facelive.arraycache import cached_arrays, digest
    from facelive.training.cnn import depth

    labels = np.array([int(r["label"]) for r in manifest["records"]])

    def compute() -> dict[str, np.ndarray]:
        from rich.progress import Progress

        with Progress() as prog:
            task = prog.add_task("pseudo-depth (Face Mesh)", total=len(crops))
            maps, valid = depth.depth_targets(
                crops, labels, progress=lambda i, n: prog.update(task, completed=i))
        return {"maps": maps, "valid": valid}

    key = digest([json.dumps(manifest["records"], sort_keys=True), CODE_VERSION])
    d = cached_arrays(f"cnn-depth-{key}", compute)
    return d["maps"], d["valid"]


def ensure_crop_cache(universe: Any, cache: Path,
                      progress: Callable[[int, int], None] | None = None) -> tuple[dict, Any]:
    """Load the crop cache at ``cache``; (re)build it over the universe's samples first when it
    is missing or lacks some of them."""
    import json

    from facelive.training.cnn.data import build_crop_cache, load_crop_cache, with_dataset

    mf = Path(cache) / "manifest.json"
    if mf.is_file():
        manifest = json.loads(mf.read_text())
        have = {r["key"] for r in manifest["records"]} | set(manifest["no_face"])
        if all(s.key in have or str(s.path) in have for s in universe.samples):
            return load_crop_cache(cache)
    tagged = [with_dataset(s, "nuaa" if p == "nuaa" else "replay-attack")
              for s, p in zip(universe.samples, universe.part, strict=True)]
    build_crop_cache(tagged, cache, context=2.0, size=224, quality=85, progress=progress)
    return load_crop_cache(cache)


def protocol_scores(universe: Any, train_mask: np.ndarray, *, recipe: str = "cpu",
                    cache: Path = DEFAULT_CACHE, seed: int = 0, desc: str = "cnn",
                    device: str = "cpu") -> np.ndarray:
    """P(live) of every sample of a :class:`facelive.evaluation.protocols.Universe` (NaN where
    no face was found) from a CNN trained with ``RECIPES[recipe]`` on ``train_mask``; batches
    balanced over capture domain x label. Cached on disk."""
    from facelive.arraycache import cached_arrays, digest

    cfg = dataclasses.replace(RECIPES[recipe], seed=seed)
    keys = "\n".join(s.key for s in universe.select(train_mask))

    def compute() -> dict[str, np.ndarray]:
        from rich.progress import Progress

        from facelive.training.cnn.train import predict, recrop, train_model

        with Progress() as prog:
            task = prog.add_task("detect + crop (cache)", total=len(universe))
            manifest, crops = ensure_crop_cache(
                universe, cache, lambda i, n: prog.update(task, completed=i))
        index = {r["key"]: i for i, r in enumerate(manifest["records"])}
        at = np.array([index.get(s.key, -1) for s in universe.samples])
        maps = valid = None
        if cfg.depth > 0:
            maps, valid = crop_cache_depth(manifest, crops)
        view = recrop(crops, float(manifest["context"]), cfg.context, cfg.input_size)
        del crops
        m = train_mask & (at >= 0)
        y = universe.is_live[m].astype(int)
        strata = np.array([f"{d}/{t}" for d, t in zip(universe.domain[m], y, strict=True)])
        lines: list[str] = []
        net, history = train_model(
            view[at[m]], y, strata, cfg, device=device,
            log=lambda s: lines.append(f"{desc}: {s}") or print(lines[-1]),
            depth=None if maps is None else maps[at[m]],
            depth_valid=None if valid is None else valid[at[m]])
        p = np.full(len(universe), np.nan)
        ok = at >= 0
        p[ok] = predict(net.cpu().float(), view[at[ok]])
        return {"p": p, "epoch_seconds": np.array([h["seconds"] for h in history])}

    key = f"cnn-protocol-{recipe}-{digest([keys, repr(cfg), _code()])}"
    return cached_arrays(key, compute)["p"]
