"""Presentation attacks synthesised from live face crops, to widen the attack side of training.

A database with only printed-photo attacks (NUAA) teaches a network nothing about screens, and
one with a single print process teaches it one kind of paper. Following the idea of
synthesising attacks (and the recapture artefacts described by Patel, Han & Jain, "Secure Face
Unlock: Spoof Detection on Smartphones", IEEE TIFS 2016: moire, colour and contrast changes of
a re-captured screen or print), a random subset of a batch's live crops is turned into a
**print** (gamut and contrast loss towards the paper, halftone dots, paper texture, slight blur)
or a **screen** replay (pixel grid, moire interference, colour cast and gamma of a display,
glare) and labelled attack. Everything here works on RGB batches in ``[0, 1]``, ``(N, 3, H, W)``
torch tensors, on the training device, before the capture-chain augmentation (so a synthetic
attack is re-captured like a real one).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _u(gen: torch.Generator, n: int, lo: float, hi: float, dev: torch.device,
       *shape: int) -> torch.Tensor:
    return torch.rand(n, *shape, generator=gen, device=dev) * (hi - lo) + lo


def _coords(n: int, h: int, w: int, gen: torch.Generator, dev: torch.device
            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates rotated by a random angle per sample: ``(N, 1, H, W)`` each."""
    yy, xx = torch.meshgrid(torch.arange(h, device=dev, dtype=torch.float32),
                            torch.arange(w, device=dev, dtype=torch.float32), indexing="ij")
    a = _u(gen, n, 0, math.pi, dev).view(n, 1, 1, 1)
    c, s = torch.cos(a), torch.sin(a)
    return xx * c - yy * s, xx * s + yy * c


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of ``(N, C, H, W)`` with replicated borders."""
    r = max(1, int(round(2.5 * sigma)))
    t = torch.arange(-r, r + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.view(1, 1, 1, -1).repeat(c, 1, 1, 1),
                 groups=c)
    kv = k.view(1, 1, -1, 1).repeat(c, 1, 1, 1)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="replicate"), kv, groups=c)


def _smooth_noise(n: int, h: int, w: int, cells: int, gen: torch.Generator,
                  dev: torch.device) -> torch.Tensor:
    """Low-frequency noise ``(N, 1, H, W)`` in about [-1, 1] (bilinear upsampled grid)."""
    g = torch.rand(n, 1, cells, cells, generator=gen, device=dev) * 2 - 1
    return F.interpolate(g, size=(h, w), mode="bicubic", align_corners=False)


def synth_print(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A printed photo of each crop of ``x`` (RGB ``[0, 1]``)."""
    n, _, h, w = x.shape
    dev = x.device
    # gamut and contrast loss: ink cannot be black nor saturated, paper is not pure white
    g = x.mean(dim=1, keepdim=True)
    x = g + (x - g) * _u(gen, n, 0.45, 0.85, dev).view(n, 1, 1, 1)
    black = _u(gen, n, 0.05, 0.2, dev).view(n, 1, 1, 1)
    paper = _u(gen, n, 0.75, 0.97, dev).view(n, 1, 1, 1) * (
        1 + _u(gen, n, -0.04, 0.04, dev, 3).view(n, 3, 1, 1))  # paper tint
    x = black + (paper - black) * x
    # halftone dots (period 2.5-5 px at a random screen angle)
    u, v = _coords(n, h, w, gen, dev)
    period = _u(gen, n, 2.5, 5.0, dev).view(n, 1, 1, 1)
    dots = 0.25 * (torch.cos(2 * math.pi * u / period) + torch.cos(2 * math.pi * v / period))
    x = x * (1 + _u(gen, n, 0.03, 0.12, dev).view(n, 1, 1, 1) * dots)
    # paper texture and uneven lighting of the sheet
    x = x * (1 + 0.03 * _smooth_noise(n, h, w, 24, gen, dev)
             + 0.1 * _smooth_noise(n, h, w, 3, gen, dev))
    return gaussian_blur(x.clamp(0, 1), float(_u(gen, 1, 0.3, 1.0, dev).item()))


def synth_screen(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """A photo of each crop of ``x`` (RGB ``[0, 1]``) shown on a screen and re-captured."""
    n, _, h, w = x.shape
    dev = x.device
    # display gamma, colour cast (often bluish) and a raised black level
    x = x.clamp(0, 1) ** _u(gen, n, 0.75, 1.3, dev).view(n, 1, 1, 1)
    cast = torch.stack([_u(gen, n, 0.88, 1.02, dev), _u(gen, n, 0.95, 1.03, dev),
                        _u(gen, n, 1.0, 1.15, dev)], dim=1).view(n, 3, 1, 1)
    x = _u(gen, n, 0.02, 0.12, dev).view(n, 1, 1, 1) + x * cast
    # pixel grid (sub-pixel stripes) at a period of 2-4 px
    period = _u(gen, n, 2.0, 4.0, dev).view(n, 1, 1, 1)
    yy, xx = torch.meshgrid(torch.arange(h, device=dev, dtype=torch.float32),
                            torch.arange(w, device=dev, dtype=torch.float32), indexing="ij")
    grid = (torch.cos(2 * math.pi * xx / period) + torch.cos(2 * math.pi * yy / period)) / 2
    x = x * (1 - _u(gen, n, 0.02, 0.1, dev).view(n, 1, 1, 1) * (0.5 + 0.5 * grid))
    # moire: interference of the pixel grid with the camera sensor, coloured (phase per channel)
    u, _ = _coords(n, h, w, gen, dev)
    freq = _u(gen, n, 0.05, 0.35, dev).view(n, 1, 1, 1)
    phase = _u(gen, n, 0, 2 * math.pi, dev, 3).view(n, 3, 1, 1)
    bend = 6 * _smooth_noise(n, h, w, 3, gen, dev)  # curved fringes
    x = x + _u(gen, n, 0.015, 0.07, dev).view(n, 1, 1, 1) * torch.sin(
        2 * math.pi * freq * (u + bend) + phase)
    # glare: a soft bright blob on some screens
    cy, cx = _u(gen, n, 0, h, dev).view(n, 1, 1, 1), _u(gen, n, 0, w, dev).view(n, 1, 1, 1)
    rad = _u(gen, n, 0.15, 0.5, dev).view(n, 1, 1, 1) * h
    on = (_u(gen, n, 0, 1, dev) < 0.4).float().view(n, 1, 1, 1)
    blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rad**2))
    x = x + on * _u(gen, n, 0.1, 0.35, dev).view(n, 1, 1, 1) * blob
    return gaussian_blur(x.clamp(0, 1), float(_u(gen, 1, 0.3, 0.9, dev).item()))


def synthesise(x: torch.Tensor, labels: torch.Tensor, prob: float, gen: torch.Generator
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn each live crop (label 1) of ``x`` into a print or a screen attack (label 0) with
    probability ``prob`` (half of them each); returns the new batch and labels."""
    if prob <= 0:
        return x, labels
    n = x.shape[0]
    pick = (torch.rand(n, generator=gen, device=x.device) < prob) & (labels == 1)
    if not bool(pick.any()):
        return x, labels
    idx = torch.nonzero(pick).flatten()
    kind = torch.rand(len(idx), generator=gen, device=x.device) < 0.5
    out = x.clone()
    if bool(kind.any()):
        out[idx[kind]] = synth_print(x[idx[kind]], gen)
    if bool((~kind).any()):
        out[idx[~kind]] = synth_screen(x[idx[~kind]], gen)
    return out, torch.where(pick, torch.zeros_like(labels), labels)
