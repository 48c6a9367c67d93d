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


def _gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, int(round(2.5 * sigma)))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
                 groups=c)
    kv = k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), kv, groups=c)


def augment(batch_bgr: torch.Tensor, strength: float, gen: torch.Generator,
            jpeg_bgr: torch.Tensor | None = None) -> torch.Tensor:
    """Random flip, scale/shift, colour, blur, noise and JPEG; returns the network input."""
    n = batch_bgr.shape[0]
    dev = batch_bgr.device

    def u(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return torch.rand(*(shape or (n,)), generator=gen, device=dev) * (hi - lo) + lo

    if jpeg_bgr is not None and strength > 0:
        pick = u(0, 1) < 0.35 * min(1.0, strength)
        batch_bgr = torch.where(pick.view(n, 1, 1, 1), jpeg_bgr, batch_bgr)
    x = batch_bgr.flip(-1).permute(0, 3, 1, 2).float().div_(255.0)  # RGB in [0, 1]
    flip = u(0, 1) < 0.5
    x = torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x)
    if strength > 0:
        s = strength
        # scale (zoom 0.85-1.15 at strength 1) and shift, border pixels replicated
        zoom = torch.exp(u(-0.15 * s, 0.15 * s))
        theta = torch.zeros(n, 2, 3, device=dev)
        theta[:, 0, 0] = 1 / zoom
        theta[:, 1, 1] = 1 / zoom
        theta[:, 0, 2] = u(-0.06 * s, 0.06 * s)
        theta[:, 1, 2] = u(-0.06 * s, 0.06 * s)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        # replicated border strips on random samples of both classes, so that the padding of
        # crops cut at the image border (more frequent for attacks) is no label shortcut
        pick = (u(0, 1) < 0.4 * min(1.0, s)).float()

        def strip() -> torch.Tensor:  # normalised width of one replicated strip (or none)
            return (u(0, 0.5) * (u(0, 1) < 0.5).float() * pick).view(n, 1, 1)

        gx = grid[..., 0].clamp(-1 + strip(), 1 - strip())
        gy = grid[..., 1].clamp(-1 + strip(), 1 - strip())
        grid = torch.stack([gx, gy], dim=-1)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        # colour: brightness, contrast, saturation, per-channel gain, gamma
        x = x * u(1 - 0.25 * s, 1 + 0.25 * s).view(n, 1, 1, 1)
        m = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - m) * u(1 - 0.25 * s, 1 + 0.25 * s).view(n, 1, 1, 1) + m
        g = x.mean(dim=1, keepdim=True)
        x = (x - g) * u(1 - 0.3 * s, 1 + 0.3 * s).view(n, 1, 1, 1) + g
        x = x * u(1 - 0.06 * s, 1 + 0.06 * s, n, 3).view(n, 3, 1, 1)
        x = x.clamp(0, 1) ** torch.exp(u(-0.2 * s, 0.2 * s)).view(n, 1, 1, 1)
        # blur a random subset with one sigma per batch
        pick = u(0, 1) < 0.25 * min(1.0, s)
        if bool(pick.any()):
            sigma = float(u(0.4, 0.4 + 1.1 * s, 1).item())
            x = torch.where(pick.view(n, 1, 1, 1), _gaussian_blur(x, sigma), x)
        x = x + torch.randn(x.shape, generator=gen, device=dev) * (0.012 * s) * (
            u(0, 1) < 0.3
        ).view(n, 1, 1, 1)
        x = x.clamp(0, 1)
    mean = torch.tensor(MEAN, device=dev).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=dev).view(1, 3, 1, 1)
    return (x - mean) / std
