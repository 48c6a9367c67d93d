"""Batch augmentation on the training device (CPU or GPU), in torch.

Works on a batch of uint8 BGR crops ``(N, S, S, 3)`` and returns normalised RGB ``(N, 3, S, S)``
float tensors. ``strength`` scales every perturbation (0: horizontal flip only). Colour jitter,
blur, noise and scale follow common presentation-attack-detection practice (e.g. George & Marcel,
"Deep Pixel-wise Binary Supervision for Face PAD", ICB 2019); JPEG re-compression is done once,
ahead of training, by :func:`jpeg_copies` and picked per sample here.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from facelive.training.cnn.model import MEAN, STD
from facelive.training.cnn.synth import gaussian_blur, synthesise


def jpeg_copies(crops: np.ndarray, seed: int = 0, qmin: int = 30, qmax: int = 80) -> np.ndarray:
    """Each crop re-compressed once as JPEG at a random quality in ``[qmin, qmax]``."""
    import cv2

    rng = np.random.default_rng(seed)
    out = np.empty_like(crops)
    for i, c in enumerate(crops):
        q = int(rng.integers(qmin, qmax + 1))
        ok, buf = cv2.imencode(".jpg", c, [cv2.IMWRITE_JPEG_QUALITY, q])
        out[i] = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else c
    return out


def to_input(batch_bgr: torch.Tensor) -> torch.Tensor:
    """uint8 BGR ``(N, H, W, 3)`` -> normalised float RGB ``(N, 3, H, W)``."""
    x = batch_bgr.flip(-1).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def augment(batch_bgr: torch.Tensor, strength: float, gen: torch.Generator,
            jpeg_bgr: torch.Tensor | None = None, *, rescale: float = 0.0) -> torch.Tensor:
    """Random flip, scale/shift, colour, blur, noise and JPEG; returns the network input.

    ``rescale``: probability of a down-and-up resampling (0.35-0.9x), the resolution loss of a
    smaller or farther camera.
    """
    x, _ = _rgb01(batch_bgr, strength, gen, jpeg_bgr)
    return _normalise(_capture_chain(x, strength, gen, rescale)[0])


def augment_with_attacks(batch_bgr: torch.Tensor, labels: torch.Tensor, strength: float,
                         gen: torch.Generator, jpeg_bgr: torch.Tensor | None = None, *,
                         rescale: float = 0.0, synth: float = 0.0
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`augment`, after turning live crops into synthetic attacks with probability
    ``synth`` (:func:`facelive.training.cnn.synth.synthesise`); returns input and labels."""
    x, labels, _ = augment_with_depth(batch_bgr, labels, None, strength, gen, jpeg_bgr,
                                      rescale=rescale, synth=synth)
    return x, labels


def augment_with_depth(batch_bgr: torch.Tensor, labels: torch.Tensor, depth: torch.Tensor | None,
                       strength: float, gen: torch.Generator,
                       jpeg_bgr: torch.Tensor | None = None, *, rescale: float = 0.0,
                       synth: float = 0.0
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """:func:`augment_with_attacks` that also carries pseudo-depth maps ``(N, 1, h, w)`` through
    the same flips, zooms and shifts; a live crop turned into a synthetic attack gets a flat map.
    The image output is identical to :func:`augment_with_attacks`'s for the same generator."""
    x, depth = _rgb01(batch_bgr, strength, gen, jpeg_bgr, depth)
    x, new_labels = synthesise(x, labels, synth, gen)
    if depth is not None:
        depth = depth * new_labels.view(-1, 1, 1, 1).to(depth.dtype)
    x, depth = _capture_chain(x, strength, gen, rescale, depth)
    return _normalise(x), new_labels, depth


def _normalise(x: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _rgb01(batch_bgr: torch.Tensor, strength: float, gen: torch.Generator,
           jpeg_bgr: torch.Tensor | None, aux: torch.Tensor | None = None
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """JPEG copy picked for some samples, then BGR uint8 -> RGB float in [0, 1], random flip
    (of ``aux`` maps too)."""
    n = batch_bgr.shape[0]
    dev = batch_bgr.device
    if jpeg_bgr is not None and strength > 0:
        pick = torch.rand(n, generator=gen, device=dev) < 0.35 * min(1.0, strength)
        batch_bgr = torch.where(pick.view(n, 1, 1, 1), jpeg_bgr, batch_bgr)
    x = batch_bgr.flip(-1).permute(0, 3, 1, 2).float().div_(255.0)  # RGB in [0, 1]
    flip = torch.rand(n, generator=gen, device=dev) < 0.5
    if aux is not None:
        aux = torch.where(flip.view(n, 1, 1, 1), aux.flip(-1), aux)
    return torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x), aux


def _capture_chain(x: torch.Tensor, strength: float, gen: torch.Generator,
                   rescale: float = 0.0, aux: torch.Tensor | None = None
                   ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Geometry, colour, resolution, blur and noise perturbations of RGB ``[0, 1]`` crops; the
    geometry also moves ``aux`` maps (any resolution)."""
    n = x.shape[0]
    dev = x.device

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(*(shape or (n,)), generator=gen, device=dev) * (hi - lo) + lo

    if strength > 0:
        s = strength
        # scale (zoom 0.85-1.15 at strength 1) and shift, border pixels replicated
        zoom = torch.exp(u(-0.15 * s, 0.15 * s))
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0] = 1 / zoom
        theta[:, 1, 1] = 1 / zoom
        theta[:, 0, 2] = u(-0.06 * s, 0.06 * s)
        theta[:, 1, 2] = u(-0.06 * s, 0.06 * s)
        # replicated border strips on random samples of both classes, so that the padding of
        # crops cut at the image border (more frequent for attacks) is no label shortcut
        pick = (u(0, 1) < 0.4 * min(1.0, s)).float()

        def strip() -> torch.Tensor:  # normalised width of one replicated strip (or none)
            return (u(0, 0.5) * (u(0, 1) < 0.5).float() * pick).view(n, 1, 1)

        sx0, sx1, sy0, sy1 = strip(), strip(), strip(), strip()

        def warp(t: torch.Tensor) -> torch.Tensor:
            grid = F.affine_grid(theta, list(t.shape), align_corners=False)
            gx = grid[..., 0].clamp(-1 + sx0, 1 - sx1)
            gy = grid[..., 1].clamp(-1 + sy0, 1 - sy1)
            return F.grid_sample(t, torch.stack([gx, gy], dim=-1), mode="bilinear",
                                 padding_mode="border", align_corners=False)

        x = warp(x)
        if aux is not None:
            aux = warp(aux)
        # colour: brightness, contrast, saturation, per-channel gain, gamma
        x = x * u(1 - 0.25 * s, 1 + 0.25 * s).view(n, 1, 1, 1)
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - m) * u(1 - 0.25 * s, 1 + 0.25 * s).view(n, 1, 1, 1) + m
        g = x.mean(dim=1, keepdim=True)
        x = (x - g) * u(1 - 0.3 * s, 1 + 0.3 * s).view(n, 1, 1, 1) + g
        x = x * u(1 - 0.06 * s, 1 + 0.06 * s, n, 3).view(n, 3, 1, 1)
        x = x.clamp(0, 1) ** torch.exp(u(-0.2 * s, 0.2 * s)).view(n, 1, 1, 1)
        if rescale > 0:  # resolution loss: down-and-up resampling of a random subset
            pick = u(0, 1) < rescale
            if bool(pick.any()):
                h, w = x.shape[-2:]
                f = float(u(0.35, 0.9, 1).item())
                small = F.interpolate(x, size=(max(8, int(h * f)), max(8, int(w * f))),
                                      mode="area")
                back = F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)
                x = torch.where(pick.view(n, 1, 1, 1), back, x)
        # blur a random subset with one sigma per batch
        pick = u(0, 1) < 0.25 * min(1.0, s)
        if bool(pick.any()):
            sigma = float(u(0.4, 0.4 + 1.1 * s, 1).item())
            x = torch.where(pick.view(n, 1, 1, 1), gaussian_blur(x, sigma), x)
        x = x + torch.randn(x.shape, generator=gen, device=dev) * (0.012 * s) * (
            u(0, 1) < 0.3
        ).view(n, 1, 1, 1)
        x = x.clamp(0, 1)
    return x, aux
