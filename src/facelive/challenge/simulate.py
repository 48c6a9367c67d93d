"""Synthetic challenge clips from a still face image, for tests and for evaluating the verifier.

:func:`simulate_clip` films a still image "in front of" a screen that plays a
:class:`~facelive.challenge.sequence.Challenge`: the screen's light is added to the face region in
linear light, in proportion to the face's own albedo (a diffuse, Lambertian reflection: the pixel
becomes ``albedo * (ambient + strength * screen)``), delayed by a camera latency, integrated over
a short exposure, with sensor noise and optional JPEG encoding, at a jittered frame rate. It models
the live case of Tang et al. (NDSS 2018); a replayed video is :func:`simulate_clip` with another
challenge (or ``strength=0``: no response).

It is a model, not a camera: no auto exposure, no white balance, no specular highlights (Ebihara
et al., IJCB 2020, show that a flash's reflection off a screen is mostly specular, off a print
diffuse, off a face in between). Use it to test the protocol's logic, not to claim accuracy.
"""

from __future__ import annotations

import cv2
import numpy as np

from facelive.challenge.sequence import Challenge
from facelive.types import FaceBox

__all__ = ["simulate_clip", "tint_frame", "srgb_to_linear_array", "linear_to_srgb_array",
           "face_mask", "frame_times"]


def srgb_to_linear_array(img: np.ndarray) -> np.ndarray:
    """uint8 sRGB (any channel order) to float32 linear light in [0, 1]."""
    c = img.astype(np.float32) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


def linear_to_srgb_array(lin: np.ndarray) -> np.ndarray:
    """float linear light to uint8 sRGB (clipped)."""
    c = np.clip(lin, 0.0, 1.0)
    s = np.where(c <= 0.0031308, c * 12.92, 1.055 * np.power(c, 1 / 2.4) - 0.055)
    return np.clip(np.round(s * 255.0), 0, 255).astype(np.uint8)


def face_mask(shape: tuple[int, ...], box: FaceBox, background: float = 0.1) -> np.ndarray:
    """Where the screen's light falls, ``(H, W)`` float32: 1 on an ellipse around the face box
    (feathered), ``background`` elsewhere (walls are further from the screen)."""
    h, w = int(shape[0]), int(shape[1])
    m = np.zeros((h, w), np.float32)
    centre = (int(round(box.x + box.w / 2)), int(round(box.y + box.h / 2)))
    axes = (max(1, int(round(box.w * 0.65))), max(1, int(round(box.h * 0.8))))
    cv2.ellipse(m, centre, axes, 0, 0, 360, 1.0, -1)
    m = cv2.GaussianBlur(m, (0, 0), max(1.0, box.w * 0.08))
    return np.maximum(m, np.float32(background))


def frame_times(duration_ms: float, fps: float, jitter_ms: float,
                rng: np.random.Generator, start_ms: float = 0.0) -> list[float]:
    """Increasing timestamps from ``start_ms`` to ``duration_ms`` at ``fps``, uniform jitter."""
    step = 1000.0 / fps
    n = int(np.floor((duration_ms - start_ms) / step)) + 1
    t = start_ms + np.arange(n) * step + rng.uniform(-jitter_ms, jitter_ms, n)
    t[0] = max(t[0], start_ms)
    t = np.maximum.accumulate(t)
    for i in range(1, n):  # keep them strictly increasing
        t[i] = max(t[i], t[i - 1] + 1.0)
    return [round(float(v), 3) for v in t]


def _screen_linear(challenge: Challenge, t_ms: float, exposure_ms: float) -> np.ndarray:
    """Mean linear RGB of the screen over the exposure ending at ``t_ms`` (black before it
    started)."""
    ts = np.linspace(t_ms - exposure_ms, t_ms, 5)
    acc = np.zeros(3, np.float32)
    for t in ts:
        c = challenge.colour_at(float(t))
        if c is not None:
            acc += srgb_to_linear_array(np.array(c, np.uint8))
    return acc / len(ts)


def tint_frame(image_bgr: np.ndarray, mask: np.ndarray, screen_rgb_linear: np.ndarray,
               strength: float) -> np.ndarray:
    """Add the screen's diffuse reflection: linear pixel ``x * (1 + strength * mask * screen) /
    (1 + strength / 2)`` (the division keeps the mean brightness near the input's)."""
    lin = srgb_to_linear_array(image_bgr)
    screen_bgr = np.asarray(screen_rgb_linear, np.float32)[::-1]
    gain = 1.0 + strength * mask[..., None] * screen_bgr[None, None, :]
    return linear_to_srgb_array(lin * gain / (1.0 + strength / 2.0))


def simulate_clip(
    image_bgr: np.ndarray,
    box: FaceBox,
    challenge: Challenge,
    *,
    fps: float = 12.0,
    latency_ms: float = 150.0,
    strength: float = 0.35,
    noise: float = 2.0,
    exposure_ms: float = 30.0,
    jitter_ms: float = 4.0,
    jpeg_quality: int | None = 85,
    drift_px: float = 0.0,
    rng: np.random.Generator | None = None,
) -> tuple[list[np.ndarray], list[float]]:
    """Frames and timestamps of a still face filmed while the screen plays ``challenge``.

    Parameters
    ----------
    image_bgr : numpy.ndarray
        The still face, BGR ``uint8``.
    box : FaceBox
        Its face box (where the screen's light falls).
    challenge : Challenge
        Played from 0 to its ``capture_ms``.
    fps : float, optional
        Mean frame rate.
    latency_ms : float, optional
        The camera's delay (a frame stamped ``t`` shows the screen at ``t - latency``).
    strength : float, optional
        The screen light's share at the face (0: no response, a static image).
    noise : float, optional
        Gaussian sensor noise (grey levels).
    exposure_ms : float, optional
        Each frame integrates the screen over this long.
    jitter_ms : float, optional
        Uniform jitter of the frame times.
    jpeg_quality : int or None, optional
        Encode and decode each frame as JPEG at this quality (``None``: no encoding).
    drift_px : float, optional
        A slow random walk of the whole image (standard deviation per frame, pixels), so the
        face moves a little.
    rng : numpy.random.Generator, optional
        For reproducible clips.

    Returns
    -------
    frames : list of numpy.ndarray
        BGR ``uint8`` frames.
    timestamps_ms : list of float
        ms since the challenge started, one per frame.
    """
    rng = rng or np.random.default_rng()
    times = frame_times(challenge.capture_ms, fps, jitter_ms, rng)
    mask = face_mask(image_bgr.shape, box)
    h, w = image_bgr.shape[:2]
    frames: list[np.ndarray] = []
    dx = dy = 0.0
    for t in times:
        screen = _screen_linear(challenge, t - latency_ms, exposure_ms)
        img = tint_frame(image_bgr, mask, screen, strength) if strength > 0 else image_bgr.copy()
        if drift_px > 0:
            dx += float(rng.normal(0, drift_px))
            dy += float(rng.normal(0, drift_px))
            mat = np.float32([[1, 0, dx], [0, 1, dy]])
            img = cv2.warpAffine(img, mat, (w, h), borderMode=cv2.BORDER_REPLICATE)
        if noise > 0:
            img = np.clip(img.astype(np.float32) + rng.normal(0, noise, img.shape), 0, 255)
            img = img.astype(np.uint8)
        if jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            if ok:
                img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        frames.append(img)
    return frames, times
