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
diffuse, off a face in between). Use it to test the protocol's logic, not to claim accuracy. Its
face does not move (``drift_px`` shifts the whole image): it is what an attacker animating a
still photo sends (``facelive.challenge.attacks``).

:func:`simulate_live_clip` is the realistic live case, for measuring what the checks cost bona
fide users: a real face image (a real camera's frame) whose head turns smoothly by a few degrees
in 3D (the Face Mesh vertices rotated about a centre behind the face, the image warped by the
mesh), lit by the screen with the physics of a screen a few tens of centimetres away (Lambert's
cosine law on the rotated mesh's normals, inverse-square falloff with each vertex's depth, the
room behind at a metre or more), a camera with auto exposure, latency, exposure, sensor noise
and JPEG.
"""

from __future__ import annotations

import cv2
import numpy as np

from facelive.challenge.sequence import Challenge
from facelive.types import FaceBox

__all__ = ["simulate_clip", "simulate_live_clip", "head_motion", "tint_frame",
           "srgb_to_linear_array", "linear_to_srgb_array", "face_mask", "frame_times"]


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


# -- the realistic live case -------------------------------------------------------------------

# Face Mesh's outer eye corners, and the adult outer canthal distance they span (about 9 cm):
# the scale that turns the mesh's pixels into centimetres for the inverse-square law.
_EYE_OUTER = (33, 263)
_IOD_CM = 9.0


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation matrix (radians) about the image's y (yaw), then x (pitch), then z (roll) axes
    (extrinsic: ``Rz @ Rx @ Ry``)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_euler("yxz", [yaw, pitch, roll]).as_matrix()


def head_motion(times_ms: list[float], motion_deg: float, rng: np.random.Generator
                ) -> np.ndarray:
    """A smooth head-pose trajectory, ``(N, 5)``: yaw, pitch, roll (radians) and x, y shifts
    (in inter-ocular distances) per frame.

    Each is a sum of three sinusoids of random frequency (0.1-0.7 Hz: sway and small turns, not
    tremor) and phase, scaled to a standard deviation of ``motion_deg`` for yaw and pitch, half of
    it for roll, and ``motion_deg / 40`` inter-ocular distances for the shifts.
    """
    t = np.asarray(times_ms, np.float64) / 1000.0
    out = np.zeros((t.size, 5))
    scales = np.deg2rad([motion_deg, motion_deg, motion_deg / 2]).tolist() + [motion_deg / 40] * 2
    for k, sd in enumerate(scales):
        f = rng.uniform(0.1, 0.7, 3)
        ph = rng.uniform(0, 2 * np.pi, 3)
        a = rng.uniform(0.5, 1.0, 3)
        x = (a[None, :] * np.sin(2 * np.pi * f[None, :] * t[:, None] + ph[None, :])).sum(1)
        x = x - x.mean()
        out[:, k] = x * sd / max(float(x.std()), 1e-9)
    return out


def _mesh_sampler(points: np.ndarray, depth: np.ndarray, shape: tuple[int, int], step: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise the Face Mesh's triangles (nearest last, so they hide what is behind them) on a
    grid of ``shape`` cells of ``step`` pixels: ``(inside (gh*gw,) bool, vertex indices (M, 3),
    barycentric weights (M, 3))`` of the cells the mesh covers."""
    from facelive.face.mesh import mesh_triangles

    tri = mesh_triangles()
    gh, gw = shape
    ids = np.full((gh, gw), -1, np.int32)
    pts = np.round(points / step * 16.0).astype(np.int32)  # 4 fractional bits
    order = np.argsort(-depth[tri].mean(1))  # far first (z grows away from the camera)
    for k in order:
        cv2.fillConvexPoly(ids, pts[tri[k]], int(k), lineType=cv2.LINE_8, shift=4)
    flat = ids.ravel()
    inside = flat >= 0
    cells = np.flatnonzero(inside)
    q = np.c_[cells % gw, cells // gw].astype(np.float64) * step
    simp = tri[flat[inside]]
    a, b, c = points[simp[:, 0]], points[simp[:, 1]], points[simp[:, 2]]
    v0, v1, v2 = b - a, c - a, q - a
    d00, d01, d11 = (v0 * v0).sum(1), (v0 * v1).sum(1), (v1 * v1).sum(1)
    d20, d21 = (v2 * v0).sum(1), (v2 * v1).sum(1)
    den = d00 * d11 - d01 * d01
    den = np.where(np.abs(den) < 1e-12, 1e-12, den)
    wb = (d11 * d20 - d01 * d21) / den
    wc = (d00 * d21 - d01 * d20) / den
    w = np.clip(np.c_[1.0 - wb - wc, wb, wc], 0.0, 1.0)
    return inside, simp, w / np.maximum(w.sum(1, keepdims=True), 1e-12)


def simulate_live_clip(
    image_bgr: np.ndarray,
    box: FaceBox,
    challenge: Challenge,
    vertices: np.ndarray,
    *,
    fps: float = 10.0,
    latency_ms: float = 150.0,
    strength: float = 0.3,
    face_distance_cm: float = 35.0,
    background_distance_cm: float = 150.0,
    screen_below: float = 0.25,
    motion_deg: float = 1.5,
    shading: str = "lambertian",
    auto_exposure: float = 0.3,
    noise: float = 2.0,
    exposure_ms: float = 30.0,
    jitter_ms: float = 4.0,
    jpeg_quality: int | None = 85,
    rng: np.random.Generator | None = None,
) -> tuple[list[np.ndarray], list[float]]:
    """Frames and timestamps of a live face, moving a little, filmed while the screen plays
    ``challenge`` a few tens of centimetres away.

    The image is taken as the face under the room's light alone (``albedo x ambient``, the ambient
    assumed even over the face). Per frame:

    1. **head motion** (:func:`head_motion`): the Face Mesh ``vertices`` are rotated about a
       centre behind the face (yaw, pitch, roll of ``motion_deg``) and shifted; the image is
       warped piecewise linearly over the mesh's triangulation (hair, ears and neck follow the
       mean shift, the room stays);
    2. **the screen's light** (``shading="lambertian"``): each rotated vertex receives
       ``cos(theta) (d0 / (d0 + dz))^2``: Lambert's cosine law for the screen's direction
       (towards the camera, ``screen_below`` lower: a screen under the camera) and the
       inverse-square law for the vertex's depth ``dz`` behind the nearest one
       (``face_distance_cm`` from the screen; the mesh's scale from a 9 cm outer canthal
       distance); interpolated over the triangles (Gouraud). Hair, ears and neck get
       ``0.35 (d0 / (d0 + 8 cm))^2``, the room ``(d0 / background_distance_cm)^2``. The pixel
       becomes ``x (1 + strength E screen)`` in linear light (``strength``: the screen's light at
       ``d0`` facing it, relative to the room's). ``shading="ellipse"`` uses
       :func:`simulate_clip`'s even ellipse instead (an attacker's tint of a moving face),
       ``"none"`` no light (a recording);
    3. **the camera**: a gain that undoes ``auto_exposure`` of the change in mean brightness with
       a 300 ms time constant, ``latency_ms``, ``exposure_ms``, Gaussian ``noise`` (grey levels),
       JPEG at ``jpeg_quality``, frame times jittered by ``jitter_ms``.

    Parameters
    ----------
    image_bgr : numpy.ndarray
        A real face image, BGR ``uint8``.
    box : FaceBox
        Its face box.
    challenge : Challenge
        Played from 0 to its ``capture_ms``.
    vertices : numpy.ndarray
        ``(468, 3)`` Face Mesh vertices of ``image_bgr`` in its pixels
        (:meth:`facelive.face.mesh.FaceMesher.to_image`).
    fps, latency_ms, exposure_ms, jitter_ms, noise, jpeg_quality : optional
        As for :func:`simulate_clip`.
    strength : float, optional
        The screen's light facing it at ``face_distance_cm``, relative to the room's light.
    face_distance_cm, background_distance_cm : float, optional
        The face's and the room's distance from the screen.
    screen_below : float, optional
        The screen's direction from the face, ``(0, screen_below, -1)`` normalised (y down).
    motion_deg : float, optional
        Standard deviation of the head's yaw and pitch (degrees); 0 holds it still.
    shading : {"lambertian", "ellipse", "none"}, optional
    auto_exposure : float, optional
        Share of a brightness change the camera's gain undoes (0: fixed exposure).
    rng : numpy.random.Generator, optional

    Returns
    -------
    frames : list of numpy.ndarray
        BGR ``uint8`` frames, the size of ``image_bgr``.
    timestamps_ms : list of float
    """
    from facelive.challenge.physics import vertex_normals

    if shading not in ("lambertian", "ellipse", "none"):
        raise ValueError(f"shading must be lambertian, ellipse or none, not {shading!r}")
    rng = rng or np.random.default_rng()
    times = frame_times(challenge.capture_ms, fps, jitter_ms, rng)
    pose = head_motion(times, motion_deg, rng)
    h, w = image_bgr.shape[:2]
    v0 = np.asarray(vertices, np.float64)
    iod = float(np.linalg.norm(v0[_EYE_OUTER[0], :2] - v0[_EYE_OUTER[1], :2])) or 1.0
    centre = v0.mean(0) + np.array([0.0, 0.0, 0.9 * iod])  # the head turns about its middle
    lin_src = srgb_to_linear_array(image_bgr)
    step = 4  # the warp and the light are computed on a coarse grid, then resized
    gy, gx = np.mgrid[0:h:step, 0:w:step]
    grid = np.c_[gx.ravel(), gy.ravel()].astype(np.float64)
    gh, gw = gy.shape
    # hair, ears and neck: a feathered ellipse around the face box, moving with the head
    head = np.zeros((h, w), np.float32)
    cx, cy = box.x + box.w / 2, box.y + box.h * 0.45
    cv2.ellipse(head, (int(round(cx)), int(round(cy))),
                (max(1, int(box.w * 0.8)), max(1, int(box.h * 0.95))), 0, 0, 360, 1.0, -1)
    head = cv2.GaussianBlur(head, (0, 0), max(1.0, box.w * 0.1))
    head_small = cv2.resize(head, (gw, gh), interpolation=cv2.INTER_AREA).ravel()
    light_dir = np.array([0.0, screen_below, -1.0])
    light_dir /= np.linalg.norm(light_dir)
    e_room = (face_distance_cm / background_distance_cm) ** 2
    e_head = 0.35 * (face_distance_cm / (face_distance_cm + 8.0)) ** 2
    _to_srgb = linear_to_srgb_array(np.arange(4096, dtype=np.float32) / 4095.0)
    frames: list[np.ndarray] = []
    gain = 1.0
    base_mean = None
    last_t = None
    for t, (yaw, pitch, roll, sx, sy) in zip(times, pose, strict=True):
        rot = _rotation(yaw, pitch, roll)
        v = (v0 - centre) @ rot.T + centre + np.array([sx * iod, sy * iod, 0.0])
        shift = (v - v0)[:, :2].mean(0)
        inside, simp, wts = _mesh_sampler(v[:, :2], v[:, 2], (gh, gw), step)
        # backward map: where each output pixel comes from
        src = grid - shift[None, :] * head_small[:, None]
        src[inside] = (wts[:, :, None] * v0[simp][:, :, :2]).sum(1)
        mapx = cv2.resize(src[:, 0].reshape(gh, gw).astype(np.float32), (w, h))
        mapy = cv2.resize(src[:, 1].reshape(gh, gw).astype(np.float32), (w, h))
        lin = cv2.remap(lin_src, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        screen = _screen_linear(challenge, t - latency_ms, exposure_ms)
        if shading == "lambertian" and strength > 0:
            cos = np.clip(vertex_normals(v) @ light_dir, 0.0, 1.0)  # Lambert
            dz_cm = (v[:, 2] - v[:, 2].min()) / iod * _IOD_CM
            e_v = cos * (face_distance_cm / (face_distance_cm + dz_cm)) ** 2
            e = e_room + (e_head - e_room) * head_small
            e[inside] = (wts * e_v[simp]).sum(1)
            emap = cv2.resize(e.reshape(gh, gw).astype(np.float32), (w, h))
            emap = cv2.GaussianBlur(emap, (0, 0), 1.5)
            lin = lin * (1.0 + strength * emap[..., None] * screen[::-1][None, None, :])
        elif shading == "ellipse" and strength > 0:
            moved = FaceBox(int(round(box.x + shift[0])), int(round(box.y + shift[1])), box.w,
                            box.h, box.confidence)
            m = face_mask(image_bgr.shape, moved)
            lin = lin * (1.0 + strength * m[..., None] * screen[::-1][None, None, :])
        if auto_exposure > 0:
            mean = float(lin.mean())
            base_mean = mean if base_mean is None else base_mean
            target = (base_mean / max(mean, 1e-6)) ** auto_exposure
            dt = 0.0 if last_t is None else t - last_t
            gain = target if last_t is None else gain + (target - gain) * (1 - np.exp(-dt / 300))
            lin = lin * gain
        last_t = t
        img = _to_srgb[np.clip(lin * 4095.0 + 0.5, 0, 4095).astype(np.int32)]
        if noise > 0:
            grain = np.empty(img.shape, np.float32)
            cv2.setRNGSeed(int(rng.integers(0, 2**31 - 1)))
            cv2.randn(grain, 0.0, float(noise))
            img = np.clip(img.astype(np.float32) + grain + 0.5, 0, 255).astype(np.uint8)
        if jpeg_quality is not None:
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)])
            if ok:
                img = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        frames.append(img)
    return frames, times

