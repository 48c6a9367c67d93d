"""Physical checks of a challenge clip: does the face move like a head, and does the screen's light
fall on it the way light from a screen a few tens of centimetres away does?

The colour check (:func:`facelive.challenge.verify.colour_response`) asks whether the face's colour
follows the issued sequence in time. A client that receives the sequence before filming can
satisfy it by tinting any picture in time with the colours. The checks here ask what such a tint
gets wrong when it is not rendered with the physics of the scene:

* :func:`face_motion` (**motion**): a head is a 3D body that moves; when it turns by a fraction
  of a degree the nose moves against the cheeks (parallax), and eyes blink, so the face's motion
  between two frames seconds apart is not a homography. A still photo, re-encoded, tinted,
  shifted, rotated, scaled or put in perspective as a whole, is a plane: its motion is a
  homography up to the measurement's noise. The motion is dense optical flow on the face's
  texture (high-passed and contrast-normalised, so the screen's light does not move it), which
  resolves a tenth of a pixel where Face Mesh's landmarks jitter by more than the motion.
* :func:`screen_falloff` (**falloff**): the screen's irradiance falls with the square of the
  distance (inverse-square law); the face sits 20-50 cm from the screen, the room behind it a metre
  or more. The face's response to the screen's colours (its *screen share*: the screen's light
  relative to the ambient light, measured in chromaticity so that auto exposure cancels) must be
  several times the background's. A whole-frame tint gives both the same share.
* :func:`shading_response` (**shape**): a diffuse (Lambertian) surface receives irradiance
  ``E cos(theta)``, with ``theta`` the angle between its normal and the direction of the screen
  (beside the camera); surfaces facing the screen (forehead, nose, cheeks' fronts) answer more
  than those turned away (the sides of the face, under the jaw). The per-vertex screen share must
  correlate with the mesh normal's component towards the camera. A tint that is uniform over
  the face (``simulate_clip``'s ellipse) does not.

All three take what :func:`facelive.challenge.verify.verify_challenge` has already computed
(frames, face boxes, Face Mesh landmarks in image pixels, the screen's linear RGB at each frame's
time minus the latency the colour check estimated) and return a dict with the statistic,
``passed`` (``None`` when it cannot be measured) and ``status``. Thresholds are fields of
:class:`facelive.challenge.verify.VerifyParams`; the measured trade-offs are in
``docs/challenge.md`` ("Injection attacks").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from facelive.challenge.sequence import srgb_to_linear

if TYPE_CHECKING:
    from facelive.types import FaceBox

__all__ = ["face_motion", "flow_residual", "screen_falloff", "shading_response", "screen_share",
           "vertex_normals", "facing", "background_mask"]

# Face Mesh vertex indices of the eye corners (MediaPipe canonical mesh): inter-ocular distance.
_EYE_OUTER = (33, 263)

_LUT = np.array([srgb_to_linear(v) for v in range(256)], np.float32)


def _iod(pts: np.ndarray) -> float:
    a, b = _EYE_OUTER
    return float(np.linalg.norm(pts[a, :2] - pts[b, :2])) or 1.0


# -- geometry ----------------------------------------------------------------------------------

def vertex_normals(vertices: np.ndarray) -> np.ndarray:
    """Unit normals ``(V, 3)`` of the Face Mesh at each vertex (area-weighted mean of the adjacent
    triangles' normals), oriented towards the camera (negative ``z``, MediaPipe's convention)."""
    from facelive.face.mesh import mesh_triangles

    v = np.asarray(vertices, np.float64)
    tri = mesh_triangles()
    a, b, c = v[tri[:, 0]], v[tri[:, 1]], v[tri[:, 2]]
    fn = np.cross(b - a, c - a)
    # orient every triangle towards the camera side before summing (the list has no winding)
    fn[fn[:, 2] > 0] *= -1.0
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, tri[:, k], fn)
    return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)


def facing(vertices: np.ndarray) -> np.ndarray:
    """``cos(theta)`` per vertex, ``(V,)``: the normal's component towards the camera (and the
    screen beside it), clipped at 0 (a surface turned away receives nothing: Lambert's law)."""
    return np.clip(-vertex_normals(vertices)[:, 2], 0.0, 1.0)


def _texture(image_bgr: np.ndarray, sigma: float) -> np.ndarray:
    """Grey level with its smooth part removed and its local contrast normalised, ``uint8``: the
    face's texture, unchanged when the screen's light changes the shading (what optical flow
    must follow)."""
    g = cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY).astype(np.float32)
    hp = g - cv2.GaussianBlur(g, (0, 0), sigma)
    sd = np.sqrt(cv2.GaussianBlur(hp * hp, (0, 0), sigma)) + 1.0
    return np.clip(128.0 + 40.0 * hp / sd, 0, 255).astype(np.uint8)


def flow_residual(a_bgr: np.ndarray, b_bgr: np.ndarray, points: np.ndarray,
                  sigma: float) -> float:
    """How far the motion of ``points`` (``(V, 2)`` pixels of ``a``) from image ``a`` to ``b`` is
    from a homography: RMS of the residual after the least-squares homography, pixels.

    The motion is dense optical flow (DIS, Kroeger et al., ECCV 2016) between the two images'
    texture (:func:`_texture`), sampled at the points.
    """
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(_texture(a_bgr, sigma), _texture(b_bgr, sigma), None)
    p = np.ascontiguousarray(points[:, :2], np.float32)
    fx = cv2.remap(flow[..., 0], p[:, 0:1], p[:, 1:2], cv2.INTER_LINEAR)[:, 0]
    fy = cv2.remap(flow[..., 1], p[:, 0:1], p[:, 1:2], cv2.INTER_LINEAR)[:, 0]
    src = p.astype(np.float64)
    dst = src + np.c_[fx, fy]
    h, _ = cv2.findHomography(src, dst, 0)
    if h is None:
        return float("nan")
    proj = cv2.perspectiveTransform(src.reshape(-1, 1, 2), h).reshape(-1, 2)
    return float(np.sqrt(((proj - dst) ** 2).sum(1).mean()))


def face_motion(images: Sequence[np.ndarray], marks: Sequence[np.ndarray | None],
                times_ms: Sequence[float], *, lag_ms: float = 2000.0, pairs: int = 6,
                min_residual: float = 0.0015) -> dict[str, Any]:
    """Does the face move like a 3D head over the clip, beyond what a plane can do?

    Physics: a rigid plane (a photo, a screen), whatever it or the camera does, maps between two
    views by a homography; a live head does not: when it turns by a fraction of a degree the nose
    moves against the cheeks (parallax; the nose tip stands about a third of an inter-ocular
    distance in front of the eye corners), and the eyes blink, the mouth and the cheeks move. Over
    ``pairs`` frame pairs at least ``lag_ms`` apart, the face's motion (:func:`flow_residual` at
    the Face Mesh landmarks of the earlier frame) is fitted by a homography; the statistic is the
    median RMS residual in inter-ocular distances. A still photo, re-encoded, tinted, shifted,
    rotated or warped in perspective as a whole, leaves only the flow's noise.

    Parameters
    ----------
    images : sequence of BGR uint8 arrays
    marks : sequence of (V, 3) arrays or None
        Face Mesh landmarks per frame, image pixels.
    times_ms : sequence of float
        The frames' times.
    lag_ms : float
        Each pair spans at least this long (motion accumulates; the flow's noise does not).
    pairs : int
        Pairs measured (earlier frames spread over the clip).
    min_residual : float
        ``live`` needs a median residual at least this (inter-ocular distances).

    Returns
    -------
    dict
        ``residual`` (median), ``residuals`` (per pair), ``pairs``, ``passed``, ``status``.
    """
    t = np.asarray(times_ms, np.float64)
    idx = [i for i, m in enumerate(marks) if m is not None]
    out: dict[str, Any] = {"residual": None, "residuals": [], "pairs": 0, "lag_ms": lag_ms,
                           "min_residual": min_residual, "passed": None,
                           "status": "too_few_frames"}
    starts = [i for i in idx if any(t[j] - t[i] >= lag_ms for j in idx)]
    if not starts:
        return out
    pick = np.unique(np.linspace(0, len(starts) - 1, min(pairs, len(starts))).round().astype(int))
    res = []
    for k in pick:
        a = starts[int(k)]
        b = next(j for j in idx if t[j] - t[a] >= lag_ms)
        pts = np.asarray(marks[a], np.float64)
        iod = _iod(pts)
        r = flow_residual(images[a], images[b], pts, sigma=max(2.0, 0.06 * iod))
        if np.isfinite(r):
            res.append(r / iod)
    if not res:
        return out
    med = float(np.median(res))
    out.update(residual=round(med, 5), residuals=[round(float(r), 5) for r in res],
               pairs=len(res), status="ok", passed=bool(med >= min_residual))
    return out


# -- light -------------------------------------------------------------------------------------

def screen_share(y: np.ndarray, x: np.ndarray) -> float | None:
    """The screen's share of a surface's light, from its chromaticity over the frames.

    A diffuse surface of albedo ``rho`` under ambient light ``A`` and the screen's ``k x`` shows
    ``y = rho (A + k x)``; its chromaticity ``y / mean(y)`` moves, to first order, by
    ``s (x - mean(x))`` with ``s = k / A`` the screen's share (for a near-grey ``rho``). The least
    squares slope of the observed chromaticity deviations on the screen's (each centred over time,
    all channels stacked) estimates ``s``. A global gain (auto exposure) cancels in chromaticity.

    Parameters
    ----------
    y : (N, 3) array
        The surface's linear RGB per frame (NaN rows skipped).
    x : (N, 3) array
        The screen's linear RGB at each frame's time minus the latency.

    Returns
    -------
    float or None
        ``s`` (None when fewer than 5 usable frames or no chromatic change on the screen).
    """
    ok = np.all(np.isfinite(y), 1) & np.all(np.isfinite(x), 1) & (y.mean(1) > 1e-6)
    if ok.sum() < 5:
        return None
    yy, xx = y[ok], x[ok]
    c = yy / yy.mean(1, keepdims=True)
    e = xx - xx.mean(1, keepdims=True)
    c = c - c.mean(0)
    e = e - e.mean(0)
    den = float((e * e).sum())
    if den < 1e-9:
        return None
    return float((c * e).sum() / den)


def background_mask(shape: tuple[int, ...], box: FaceBox, margin: float = 0.5,
                    above: float = 0.6) -> np.ndarray:
    """Where the room behind the head shows, ``(H, W)`` bool: above the chin's level, and more
    than ``margin`` face widths beside the face box or ``above`` face heights above it (hair,
    ears and shoulders, a few centimetres from the face, are left out)."""
    h, w = int(shape[0]), int(shape[1])
    m = np.zeros((h, w), bool)
    chin = int(np.clip(box.y + box.h, 0, h))
    m[:chin] = True
    x0 = int(np.clip(box.x - margin * box.w, 0, w))
    x1 = int(np.clip(box.x + box.w + margin * box.w, 0, w))
    y0 = int(np.clip(box.y - above * box.h, 0, h))
    m[y0:chin, x0:x1] = False
    return m


def _linear_mean(image_bgr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean linear RGB of the masked pixels (NaN when none)."""
    if not mask.any():
        return np.full(3, np.nan)
    lin = cv2.LUT(image_bgr, _LUT)
    return np.asarray(cv2.mean(lin, mask.astype(np.uint8))[:3][::-1], np.float64)


def screen_falloff(images: Sequence[np.ndarray], boxes: Sequence[FaceBox | None],
                   face_means: np.ndarray, screen: np.ndarray, *, max_ratio: float = 0.4,
                   min_background: float = 0.03, min_face_share: float = 0.005
                   ) -> dict[str, Any]:
    """Does the face answer the screen far more than the room behind it?

    Physics: a screen's irradiance falls with the square of the distance (a small source seen from
    a few tens of centimetres); the face sits 20-50 cm from it, a wall behind it typically a metre
    or more, so the room's screen share (:func:`screen_share`) is a small fraction of the face's:
    ``(0.35 / 1.5)^2`` = 0.05 for a face at 35 cm and a wall at 1.5 m. A tint applied to the whole
    frame gives every region the same share (ratio 1).

    Parameters
    ----------
    images : sequence of BGR uint8 arrays
    boxes : sequence of FaceBox or None
        The face per frame.
    face_means : (N, 3) array
        The face region's linear RGB per frame (the colour check's), NaN without a face.
    screen : (N, 3) array
        The screen's linear RGB per frame at the estimated latency.
    max_ratio : float
        ``live`` needs ``background share / face share <= max_ratio``.
    min_background : float
        The background region must cover this share of the frame (else not measured).
    min_face_share : float
        The face's share must be at least this (else the ratio means nothing: not measured; the
        colour check already fails such a clip).

    Returns
    -------
    dict
        ``face_share``, ``background_share``, ``ratio``, ``background_fraction``, ``passed``,
        ``status``.
    """
    out: dict[str, Any] = {"face_share": None, "background_share": None, "ratio": None,
                           "background_fraction": None, "max_ratio": max_ratio,
                           "passed": None, "status": "no_face"}
    ref = next((b for b in boxes if b is not None), None)
    if ref is None:
        return out
    bg = np.full((len(images), 3), np.nan)
    fractions = []
    for i, (im, b) in enumerate(zip(images, boxes, strict=True)):
        if b is None:
            continue
        m = background_mask(im.shape, b)
        fractions.append(float(m.mean()))
        if m.mean() >= min_background:
            bg[i] = _linear_mean(im, m)
    frac = float(np.median(fractions)) if fractions else 0.0
    out["background_fraction"] = round(frac, 4)
    face_s = screen_share(np.asarray(face_means, np.float64), screen)
    bg_s = screen_share(bg, screen)
    out["face_share"] = None if face_s is None else round(face_s, 5)
    out["background_share"] = None if bg_s is None else round(bg_s, 5)
    if frac < min_background or bg_s is None:
        out["status"] = "too_little_background"
        return out
    if face_s is None or face_s < min_face_share:
        out["status"] = "no_face_response"
        return out
    ratio = bg_s / face_s
    out.update(ratio=round(ratio, 4), status="ok", passed=bool(ratio <= max_ratio))
    return out


def _vertex_colours(image_bgr: np.ndarray, pts: np.ndarray, sigma: float) -> np.ndarray:
    """Linear RGB ``(V, 3)`` of the (Gaussian-smoothed) image under each landmark."""
    h, w = image_bgr.shape[:2]
    pad = int(np.ceil(3 * sigma)) + 2
    x0, y0 = (max(0, int(np.floor(v)) - pad) for v in pts[:, :2].min(0))
    x1 = min(w, int(np.ceil(pts[:, 0].max())) + pad + 1)
    y1 = min(h, int(np.ceil(pts[:, 1].max())) + pad + 1)
    if x1 <= x0 or y1 <= y0:
        return np.full((len(pts), 3), np.nan)
    lin = cv2.LUT(np.ascontiguousarray(image_bgr[y0:y1, x0:x1]), _LUT)
    if sigma > 0:
        lin = cv2.GaussianBlur(lin, (0, 0), sigma)
    mx = np.ascontiguousarray(pts[:, 0:1] - x0, np.float32)
    my = np.ascontiguousarray(pts[:, 1:2] - y0, np.float32)
    out = cv2.remap(lin, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out[:, 0, ::-1].astype(np.float64)


def shading_response(images: Sequence[np.ndarray], marks: Sequence[np.ndarray | None],
                     screen: np.ndarray, *, min_correlation: float = 0.25,
                     min_frames: int = 10) -> dict[str, Any]:
    """Does the screen's light follow the face's 3D shape (Lambert's cosine law)?

    Physics: a diffuse surface receives ``E cos(theta)`` from a source in direction ``l``, where
    ``cos(theta) = n . l``; the screen is beside the camera, so ``l`` is close to the viewing
    direction and :func:`facing` (the Face Mesh normal's component towards the camera) predicts
    each vertex's screen share up to a constant. The statistic is the Pearson correlation, over
    the mesh's vertices, between the per-vertex screen share (:func:`screen_share` of the image
    under the vertex, following the vertex from frame to frame) and the vertex's mean facing.
    Shares are relative to each vertex's ambient light, so albedo cancels; the ambient's own
    shading does not (a face lit from the front by the room looks more evenly lit by the screen:
    see ``docs/challenge.md``).

    Parameters
    ----------
    images : sequence of BGR uint8 arrays
    marks : sequence of (V, 3) arrays or None
        Face Mesh landmarks per frame in image pixels (``z`` scaled like ``x``).
    screen : (N, 3) array
        The screen's linear RGB per frame at the estimated latency.
    min_correlation : float
        ``live`` needs a correlation at least this.
    min_frames : int
        Fewer usable frames: not measured.

    Returns
    -------
    dict
        ``correlation``, ``lambert_fraction`` (``b / (a + b)`` of the least-squares line
        ``share = a + b cos``: the part of a frontal vertex's share that Lambert's law explains;
        reported), ``frontal_share`` and ``oblique_share`` (mean share of the vertices facing the
        screen, ``cos > 0.9``, and turned away, ``cos < 0.6``), ``passed``, ``status``.
    """
    out: dict[str, Any] = {"correlation": None, "frontal_share": None, "oblique_share": None,
                           "min_correlation": min_correlation, "passed": None,
                           "status": "too_few_frames"}
    idx = [i for i, m in enumerate(marks)
           if m is not None and np.all(np.isfinite(screen[i]))]
    if len(idx) < min_frames:
        return out
    cols = []
    cosines = []
    for i in idx:
        pts = np.asarray(marks[i], np.float64)
        sigma = max(1.0, 0.06 * _iod(pts))  # Lambert's pattern is smooth; the noise is not
        cols.append(_vertex_colours(images[i], pts, sigma))
        cosines.append(facing(pts))
    cols_a = np.asarray(cols)  # (T, V, 3)
    cos = np.asarray(cosines).mean(0)
    x = screen[idx]
    shares = np.array([screen_share(cols_a[:, v], x) or np.nan
                       for v in range(cols_a.shape[1])])
    ok = np.isfinite(shares)
    if ok.sum() < 50:
        out["status"] = "no_response"
        return out
    s, c = shares[ok], cos[ok]
    # robust to a few vertices on hair or specular highlights: clip the shares' tails
    lo, hi = np.percentile(s, [2, 98])
    s = np.clip(s, lo, hi)
    sa, ca = s - s.mean(), c - c.mean()
    den = float(np.sqrt((sa * sa).sum() * (ca * ca).sum()))
    r = float((sa * ca).sum() / den) if den > 1e-12 else 0.0
    # share = a + b cos (least squares): the part of the frontal share that Lambert explains
    b, a = np.polyfit(c, s, 1)
    fraction = float(b / (a + b)) if abs(a + b) > 1e-9 else 0.0
    front = s[c > 0.9]
    side = s[c < 0.6]
    out.update(correlation=round(r, 4), lambert_fraction=round(fraction, 4),
               frontal_share=round(float(front.mean()), 5) if front.size else None,
               oblique_share=round(float(side.mean()), 5) if side.size else None,
               status="ok", passed=bool(r >= min_correlation))
    return out
