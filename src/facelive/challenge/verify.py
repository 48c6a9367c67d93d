"""Verify a challenge clip: timing, one continuous face, the colour response, the passive tests.

:func:`verify_challenge` takes the frames a client filmed while it played a
:class:`~facelive.challenge.sequence.Challenge`, their timestamps (ms since the challenge started)
and the challenge, and returns a :class:`ChallengeReport` with every check and the decision. The
decision is ``live`` only when every required check passes; ``unknown`` when the clip cannot be
attributed to one person (more than one face in a frame, or too many frames without a face);
``spoof`` otherwise. Each check's parameters are fields of :class:`VerifyParams` (defaults
documented there and in ``docs/challenge.md``).

The checks
----------
1. **Timing** (:func:`check_timing`): enough frames, strictly increasing timestamps with no gap
   longer than a step could hide in, a plausible frame rate, a clip that covers the whole sequence
   and does not run far past it, and (when the server passes ``elapsed_ms``, its own clock between
   handing out the challenge and receiving the frames) no more clip time than wall time.
2. **One person** (:func:`check_faces`): every frame is searched with the face detector at its
   threshold; a frame with more than one face fails with reason ``"multiple faces"`` (a live face
   beside a photo), too many frames without a face give no decision.
3. **Continuity**: the face box and the face mesh must move continuously: between consecutive
   frames the box centre may move at most ``max_jump`` box widths and change size by at most
   ``max_scale_jump``, and the similarity-aligned landmark shape may change by at most
   ``max_shape_jump`` (a cut or a swapped face fails with reason ``"face jumps between frames"``).
4. **Colour response** (:func:`colour_response`), the challenge proper, after Tang et al., "Face
   Flashing: a Secure Liveness Detection Protocol based on Light Reflections", NDSS 2018: the light
   of the screen reflects off the face, so the face region's colour must follow the issued colours
   in time. Per frame, the mean linear RGB ``y`` of an ellipse inside the face box (and of its
   "skin": the ellipse's pixels between the 15th and 85th luminance percentiles, which drops eyes,
   nostrils, hair and specular highlights) is compared with the screen's linear RGB ``x`` at the
   frame's time minus a latency ``L``. For a diffuse (Lambertian) surface of albedo ``rho`` lit by
   ambient light plus the screen, ``y = rho * (A + k x)``; so the chromaticity ``y / mean(y)``
   moves, to first order, along ``rho * (x - mean(rho * x))`` and the brightness along
   ``mean(rho * x)``, where ``rho`` is the face's own mean chromaticity. The colour score is the
   smaller of two Pearson correlations over the frames (chromaticity, all channels stacked; and
   brightness), maximised over ``L`` in ``[latency_min_ms, latency_max_ms]``: the server
   estimates the camera's latency and reports it. Correlation is free of the unknown gain ``k``
   and offset ``A``. Ebihara et al., "Specular- and Diffuse-reflection-based Face Spoofing
   Detection for Mobile Devices", IJCB 2020, show that a screen replaying a face reflects a flash
   mostly specularly and a print diffusely, a face in between; the skin trimming keeps the diffuse
   part. A recorded video (a static response, another sequence or a shifted one) scores near
   zero, a live face under the screen high.
5. **Passive tests pooled over the clip**: the pipeline's fused P(live) on up to
   ``passive_frames`` frames taken from the dark steps (the screen dark: the face under ambient
   light only; ``neutral_guard_ms`` away from transitions; the white steps too, then every frame,
   when there are fewer than 3), pooled by the median, against the pipeline's threshold.
   ``experiments/challenge_tint.py`` measured why: on Replay-Attack devel a dark screen changes
   no decision, a white one flips 2 of 60 (the CNN is tint-sensitive).
6. **Planarity of the landmark motion** (reported; in the decision only with
   ``use_planarity``): a flat print or screen moves as a plane, so the face mesh's 2D landmarks
   in two frames are related by a homography; a real head's are not exactly. The statistic is the
   median over frame pairs with enough motion of the homography's RMS reprojection error in units
   of the inter-ocular distance. ``experiments/challenge_planarity.py`` measured it on
   Replay-Attack devel (5 frames per video): see ``docs/challenge.md`` for why it is off by
   default.
7. **Physical checks** (:mod:`facelive.challenge.physics`, ``report.physics``), against a client
   that knows the sequence (it always does) and tints a picture in time with it: **motion** (the
   face's optical flow between frames seconds apart is not a homography: a head, not a photo;
   every mode), **falloff** (the face's screen share is several times the background's:
   inverse-square law; flash mode) and **shape** (the per-vertex screen share follows Lambert's
   cosine on the Face Mesh normals; flash mode). Each is in the decision (``use_motion``,
   ``use_falloff``, ``use_shape``) when it could be measured.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from facelive.challenge.sequence import NEUTRAL, PALETTE, Challenge, srgb_to_linear
from facelive.encoding import sha256_hex
from facelive.imageio import MAX_ASPECT_RATIO

if TYPE_CHECKING:
    from facelive.face.detection import FaceDetector
    from facelive.face.mesh import FaceMesher
    from facelive.pipeline import Pipeline
    from facelive.types import FaceBox

__all__ = ["ChallengeReport", "VerifyParams", "verify_challenge", "check_timing",
           "colour_response", "region_means", "homography_residual", "shape_distance",
           "decode_frames", "prechecks", "Budget", "OverBudget"]

# Face Mesh vertex indices of the eye corners (MediaPipe canonical mesh): inter-ocular distance.
_EYE_OUTER = (33, 263)


@dataclass(frozen=True)
class VerifyParams:
    """The verifier's bounds and thresholds (all documented in ``docs/challenge.md``)."""

    # timing
    min_frames: int = 12
    max_frames: int = 150
    max_duplicate_share: float = 0.5  # share of frames byte-identical to an earlier one
    min_fps: float = 5.0
    max_fps: float = 60.0
    min_gap_ms: float = 5.0
    max_gap_ms: float = 300.0  # below the shortest step (350 ms): every step gets a frame
    start_slack_ms: float = 300.0  # the first frame at most this long after the start
    end_slack_ms: float = 0.0  # the last frame at least at the sequence's end minus this
    max_overrun_ms: float = 1500.0  # the last frame at most this long after capture_ms
    clock_slack_ms: float = 500.0  # clip time may exceed the server's elapsed time by this
    # faces
    max_missing_face: float = 0.1  # share of frames allowed without a face
    max_jump: float = 0.5  # box centre shift between consecutive frames, in box widths
    max_scale_jump: float = 1.4  # box size ratio between consecutive frames
    max_shape_jump: float = 0.045  # similarity-aligned landmark shape change (RMS / IOD)
    # colour response
    latency_min_ms: float = 0.0
    latency_max_ms: float = 500.0
    latency_step_ms: float = 10.0
    exposure_ms: float = 30.0
    colour_threshold: float = 0.5
    min_colour_frames: int = 10
    min_steps_covered: float = 0.75
    # passive tests
    passive_frames: int = 6
    neutral_guard_ms: float = 120.0
    # planarity
    use_planarity: bool = False
    planar_pairs: int = 8  # frames sampled for the pairwise statistic
    planar_min_motion: float = 0.0  # pairs whose landmarks moved less (RMS / IOD) are skipped
    planar_threshold: float = 0.0  # live needs residual >= this (only with use_planarity)
    # physics (facelive.challenge.physics; docs/challenge.md, "Injection attacks")
    use_motion: bool = True
    motion_lag_ms: float = 2000.0  # frame pairs at least this far apart
    motion_pairs: int = 6
    motion_min_residual: float = 0.0015  # median non-homography flow, inter-ocular distances
    use_falloff: bool = True
    falloff_max_ratio: float = 0.4  # background screen share / face screen share
    falloff_min_background: float = 0.03  # share of the frame; less: not measured
    use_shape: bool = True
    shape_min_correlation: float = 0.25  # per-vertex screen share vs Lambert's cosine


@dataclass
class ChallengeReport:
    """The verifier's outcome: the decision, the reasons against ``live``, and every check.

    Parameters
    ----------
    decision : {"live", "spoof", "unknown"}
        ``live`` only when every required check passes.
    reasons : list of str
        Why the decision is not ``live`` (empty when it is).
    mode : {"flash", "steady"}
        The challenge's mode.
    weak : bool
        True for the steady mode (no colour response to check).
    nonce : str
        The challenge's nonce.
    frames : int
        The number of frames received.
    timing, faces, continuity, colour, passive, planarity : dict
        Each check's measurements, ``passed`` and problems (see ``docs/challenge.md``).
    frames_sha256 : list of str, optional
        One hex digest per encoded frame (empty when arrays were given).
    params : dict, optional
        The :class:`VerifyParams` used.
    ms : float, optional
        The verification's duration.
    physics : dict, optional
        The physical checks (:mod:`facelive.challenge.physics`): ``motion``, ``falloff``,
        ``shape``, each with its statistic, ``passed`` (``None``: not measurable),
        ``used_in_decision`` and ``status``.
    stopped : str, optional
        The decisive check that ended the verification before every check ran (``"timing"``,
        ``"duplicate_frames"``: before any frame was decoded; ``"budget"``: the wall-clock budget
        ran out), ``None`` when every check ran; the checks not run say ``"status":
        "not_run"``.
    """

    decision: str
    reasons: list[str]
    mode: str
    weak: bool
    nonce: str
    frames: int
    timing: dict[str, Any]
    faces: dict[str, Any]
    continuity: dict[str, Any]
    colour: dict[str, Any]
    passive: dict[str, Any]
    planarity: dict[str, Any]
    frames_sha256: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    ms: float = 0.0
    stopped: str | None = None
    physics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The whole report as JSON-able data."""
        return {
            "decision": self.decision,
            "reasons": list(self.reasons),
            "mode": self.mode,
            "weak": self.weak,
            "nonce": self.nonce,
            "frames": self.frames,
            "timing": self.timing,
            "faces": self.faces,
            "continuity": self.continuity,
            "colour": self.colour,
            "passive": self.passive,
            "planarity": self.planarity,
            "frames_sha256": list(self.frames_sha256),
            "params": self.params,
            "ms": round(self.ms, 3),
            "stopped": self.stopped,
            "physics": self.physics,
        }

    def scores(self) -> dict[str, float | None]:
        """Each check's score, flat (for the signed record): ``colour``, ``passive`` (pooled
        fused P(live)), ``passive.<test>`` (pooled per test), ``planarity``, and the physical
        checks' statistics ``motion``, ``falloff``, ``shape`` when they ran."""
        out: dict[str, float | None] = {
            "colour": self.colour.get("score"),
            "passive": self.passive.get("score"),
        }
        for name, s in (self.passive.get("tests") or {}).items():
            out[f"passive.{name}"] = s
        out["planarity"] = self.planarity.get("residual")
        for name, key in (("motion", "residual"), ("falloff", "ratio"), ("shape", "correlation")):
            if name in self.physics:
                out[name] = self.physics[name].get(key)
        return out

    def checks(self) -> dict[str, bool | None]:
        """Each check's pass/fail (``None``: not run, not applicable, not measurable or not in
        the decision) and ``weak``."""
        return {
            "timing": _passed(self.timing),
            "faces": _passed(self.faces),
            "continuity": _passed(self.continuity),
            "colour": self.colour.get("passed"),
            "passive": self.passive.get("passed"),
            "planarity": (self.planarity.get("passed")
                          if self.planarity.get("used_in_decision") else None),
            **{name: (c.get("passed") if c.get("used_in_decision") else None)
               for name, c in self.physics.items()},
            "weak": self.weak,
        }

    def outcome(self, threshold: float | None = None) -> dict[str, Any]:
        """What this report decides of the signed result's claims, in one place for the library
        (:meth:`claims`) and the service (which signs them in another process).

        Parameters
        ----------
        threshold : float, optional
            The passive tests' threshold to give when they were not run.

        Returns
        -------
        dict
            ``decision``, ``reasons``, ``scores`` (:meth:`scores`), ``checks``
            (:meth:`checks`) and ``threshold`` (the passive tests').
        """
        return {"decision": self.decision, "reasons": list(self.reasons),
                "scores": self.scores(), "checks": self.checks(),
                "threshold": self.passive.get("threshold", threshold)}

    def claims(self, session_id: str, challenge: Challenge | dict[str, Any],
               models: dict[str, Any] | None = None, issuer: str = "facelive"
               ) -> dict[str, Any]:
        """The claims of the signed result (:func:`facelive.audit.result_claims`) for this report.

        Parameters
        ----------
        session_id : str
            The session the clip belongs to.
        challenge : Challenge or dict
            The issued challenge.
        models : dict, optional
            The tests' and models' versions, typically ``pipeline.info()``.
        issuer : str, optional
            The ``iss`` claim.

        Returns
        -------
        dict
            Ready for :meth:`facelive.audit.ResultSigner.sign_result`.
        """
        from facelive.audit import result_claims

        ch = challenge.to_dict() if isinstance(challenge, Challenge) else dict(challenge)
        return result_claims(session_id=session_id, nonce=self.nonce, challenge=ch,
                             frames_sha256=self.frames_sha256, models=models or {},
                             issuer=issuer, **self.outcome())


# -- inputs ------------------------------------------------------------------------------------

class OverBudget(Exception):
    """The verification's wall-clock budget ran out; ``stage`` names what it was doing."""

    def __init__(self, stage: str, budget_s: float) -> None:
        super().__init__(f"verification stopped at its {budget_s:g} s budget ({stage})")
        self.stage = stage


class Budget:
    """A wall-clock budget of ``seconds`` (``None``: unlimited) from its creation; :meth:`check`
    raises :class:`OverBudget` once it has run out."""

    def __init__(self, seconds: float | None, clock: Any = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = None if seconds is None else clock() + float(seconds)

    def check(self, stage: str) -> None:
        if self._end is not None and self._clock() > self._end:
            raise OverBudget(stage, float(self.seconds or 0.0))


def _encoded(frames: Sequence[Any]) -> list[Any]:
    """Frames given as paths read to bytes (arrays and bytes kept as they are)."""
    out = []
    for f in frames:
        if isinstance(f, (np.ndarray, bytes)):
            out.append(f)
        elif isinstance(f, (bytearray, memoryview)):
            out.append(bytes(f))
        else:
            with open(os.fspath(f), "rb") as fh:
                out.append(fh.read())
    return out


def decode_frames(frames: Sequence[Any], *, max_pixels: int | None = None,
                  max_aspect_ratio: float | None = MAX_ASPECT_RATIO,
                  budget: Budget | None = None) -> tuple[list[np.ndarray], list[str]]:
    """Decode frames given as BGR arrays, encoded bytes or paths; returns the images and the
    SHA-256 of each encoded frame (empty when arrays were given).

    With ``max_pixels`` every encoded frame is decoded at most that large: a larger JPEG at 1/2,
    1/4 or 1/8 of its size (DCT scaling, never in memory at full size), any other larger image
    refused (:func:`facelive.imageio.decode_image`'s ``fit_pixels``); ``max_aspect_ratio``
    applies to the declared size. ``budget`` is checked before each frame (:class:`OverBudget`).
    Raises :class:`facelive.errors.ImageError` on an unreadable or refused frame."""
    from facelive.imageio import MAX_PIXELS, decode_image

    images, hashes = [], []
    for i, f in enumerate(_encoded(frames)):
        if budget is not None:
            budget.check("decoding the frames")
        if isinstance(f, np.ndarray):
            images.append(f)
            continue
        hashes.append(sha256_hex(f))
        if max_pixels is None:
            images.append(decode_image(f, max_pixels=MAX_PIXELS, name=f"frame {i}"))
        else:  # up to 1/8 per side: 64 times the decoded size may be declared (JPEG only)
            images.append(decode_image(f, max_pixels=64 * max_pixels, fit_pixels=max_pixels,
                                       max_aspect_ratio=max_aspect_ratio, name=f"frame {i}"))
    if hashes and len(hashes) != len(images):
        hashes = []  # mixed input: no complete record
    return images, hashes


def _declared_size(frame: Any, name: str) -> tuple[int, int]:
    """``(width, height)`` of an array, or of an encoded frame as its header declares it (after
    the EXIF orientation; nothing decoded). Raises :class:`facelive.errors.ImageError` when the
    header is not an image's."""
    if isinstance(frame, np.ndarray):
        return int(frame.shape[1]), int(frame.shape[0])
    from PIL import Image, UnidentifiedImageError

    from facelive.errors import EmptyImageError, UnsupportedImageError

    if not frame:
        raise EmptyImageError(f"{name}: empty file")
    try:
        with Image.open(io.BytesIO(frame)) as img:
            w, h = img.size
            if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # rotated a quarter turn
                w, h = h, w
            return int(w), int(h)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise UnsupportedImageError(f"{name}: not a recognised image file") from None


def prechecks(frames: Sequence[Any], ts: np.ndarray, challenge: Challenge,
              params: VerifyParams, elapsed_ms: float | None = None
              ) -> tuple[dict[str, Any], str | None]:
    """The checks made before any frame is decoded: the timing (:func:`check_timing`: frame
    count, spacing, rate, coverage, the server's clock), frames repeated byte for byte within
    the clip (more than ``max_duplicate_share`` of them) and the declared frame sizes (one size
    for the whole clip; an unreadable header raises :class:`facelive.errors.ImageError`).

    Returns
    -------
    timing : dict
        :func:`check_timing`'s result with ``duplicate_frames`` and, for a size change, the
        problem ``"the frame size changes within the clip"``.
    stopped : str or None
        The first decisive failure (``"timing"``, ``"duplicate_frames"``, ``"frame_size"``),
        ``None`` when the clip may be decoded.
    """
    timing = check_timing(ts, challenge, params, elapsed_ms)
    if not timing["passed"]:
        return timing, "timing"
    seen: set[str] = set()
    repeated = 0
    for f in frames:
        digest = sha256_hex(f.tobytes() + repr(f.shape).encode()
                            if isinstance(f, np.ndarray) else f)
        repeated += digest in seen
        seen.add(digest)
    timing["duplicate_frames"] = repeated
    if repeated > params.max_duplicate_share * len(frames):
        timing["problems"].append(f"{repeated} of {len(frames)} frames repeat an earlier frame "
                                  f"byte for byte (at most {params.max_duplicate_share:.0%})")
        timing["passed"] = False
        return timing, "duplicate_frames"
    sizes = {_declared_size(f, f"frame {i}") for i, f in enumerate(frames)}
    if len(sizes) > 1:
        timing["problems"].append("the frame size changes within the clip")
        timing["passed"] = False
        return timing, "frame_size"
    return timing, None


def _passed(check: dict[str, Any]) -> bool | None:
    """A check's ``passed`` as a bool, ``None`` when it was not run."""
    return None if check.get("status") == "not_run" else bool(check.get("passed"))


# -- timing ------------------------------------------------------------------------------------

def check_timing(timestamps_ms: Sequence[float], challenge: Challenge, params: VerifyParams,
                 elapsed_ms: float | None = None) -> dict[str, Any]:
    """Frame count, spacing, frame rate, coverage of the sequence and (with ``elapsed_ms``) the
    server's clock; returns the measurements, ``passed`` and ``problems``."""
    t = np.asarray(timestamps_ms, np.float64)
    problems: list[str] = []
    out: dict[str, Any] = {"frames": int(t.size)}
    if t.size < params.min_frames:
        problems.append(f"{t.size} frames (at least {params.min_frames})")
    if t.size > params.max_frames:
        problems.append(f"{t.size} frames (at most {params.max_frames})")
    if t.size >= 2:
        gaps = np.diff(t)
        fps = 1000.0 / float(np.median(gaps)) if np.median(gaps) > 0 else float("inf")
        out.update(first_ms=float(t[0]), last_ms=float(t[-1]), fps=round(fps, 3),
                   min_gap_ms=round(float(gaps.min()), 3), max_gap_ms=round(float(gaps.max()), 3))
        if not np.all(np.isfinite(t)):
            problems.append("non-finite timestamps")
        if np.any(gaps < params.min_gap_ms):
            problems.append(f"timestamps not increasing by at least {params.min_gap_ms} ms")
        if np.any(gaps > params.max_gap_ms):
            problems.append(f"a gap of {gaps.max():.0f} ms (at most {params.max_gap_ms:.0f})")
        if not params.min_fps <= fps <= params.max_fps:
            problems.append(f"{fps:.1f} fps (plausible: {params.min_fps}-{params.max_fps})")
        if t[0] < 0 or t[0] > params.start_slack_ms:
            problems.append(f"first frame at {t[0]:.0f} ms (0-{params.start_slack_ms:.0f})")
        if t[-1] < challenge.total_ms - params.end_slack_ms:
            problems.append(f"clip ends at {t[-1]:.0f} ms, before the sequence's end "
                            f"({challenge.total_ms} ms)")
        if t[-1] > challenge.capture_ms + params.max_overrun_ms:
            problems.append(f"clip runs to {t[-1]:.0f} ms, past {challenge.capture_ms} ms + "
                            f"{params.max_overrun_ms:.0f} ms")
        if elapsed_ms is not None:
            out["elapsed_ms"] = float(elapsed_ms)
            if t[-1] - min(t[0], 0.0) > float(elapsed_ms) + params.clock_slack_ms:
                problems.append(f"clip spans {t[-1]:.0f} ms but only {elapsed_ms:.0f} ms passed "
                                "on the server")
    out["problems"] = problems
    out["passed"] = not problems
    return out


# -- geometry ----------------------------------------------------------------------------------

def _iod(pts: np.ndarray) -> float:
    a, b = _EYE_OUTER
    return float(np.linalg.norm(pts[a, :2] - pts[b, :2])) or 1.0


def shape_distance(a: np.ndarray, b: np.ndarray) -> float:
    """RMS distance between two landmark sets after the best similarity transform of ``a`` onto
    ``b`` (Procrustes), in units of ``b``'s inter-ocular distance."""
    pa, pb = a[:, :2].astype(np.float64), b[:, :2].astype(np.float64)
    ca, cb = pa - pa.mean(0), pb - pb.mean(0)
    u, s, vt = np.linalg.svd(ca.T @ cb)
    d = np.sign(np.linalg.det(u @ vt)) or 1.0
    rot = u @ np.diag([1.0, d]) @ vt
    scale = (s[0] + d * s[1]) / max((ca ** 2).sum(), 1e-12)
    res = scale * ca @ rot - cb
    return float(np.sqrt((res ** 2).sum(1).mean()) / _iod(b))


def homography_residual(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``(residual, motion)`` for two landmark sets: the RMS reprojection error of the
    least-squares homography from ``a`` to ``b`` and the RMS landmark displacement after removing
    the mean translation, both in units of ``b``'s inter-ocular distance."""
    pa = a[:, :2].astype(np.float64)
    pb = b[:, :2].astype(np.float64)
    iod = _iod(b)
    motion = float(np.sqrt((((pb - pb.mean(0)) - (pa - pa.mean(0))) ** 2).sum(1).mean()) / iod)
    h, _ = cv2.findHomography(pa, pb, 0)
    if h is None:
        return float("nan"), motion
    proj = cv2.perspectiveTransform(pa.reshape(-1, 1, 2), h).reshape(-1, 2)
    return float(np.sqrt(((proj - pb) ** 2).sum(1).mean()) / iod), motion


# -- colour ------------------------------------------------------------------------------------

def _linear(img: np.ndarray) -> np.ndarray:
    lut = np.array([srgb_to_linear(v) for v in range(256)], np.float32)
    return lut[img]


def region_means(image_bgr: np.ndarray, box: FaceBox) -> tuple[np.ndarray, np.ndarray]:
    """Mean linear RGB of the face ellipse and of its skin (pixels between the ellipse's 15th
    and 85th luminance percentiles), each a ``(3,)`` array in R, G, B order."""
    h, w = image_bgr.shape[:2]
    mask = np.zeros((h, w), np.uint8)
    centre = (int(round(box.x + box.w / 2)), int(round(box.y + box.h * 0.55)))
    axes = (max(1, int(round(box.w * 0.32))), max(1, int(round(box.h * 0.40))))
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 1, -1)
    pix = image_bgr[mask.astype(bool)]
    if pix.shape[0] < 10:
        x0, y0 = max(0, box.x), max(0, box.y)
        pix = image_bgr[y0:y0 + max(1, box.h), x0:x0 + max(1, box.w)].reshape(-1, 3)
    lin = _linear(pix)[:, ::-1]  # RGB
    face = lin.mean(0)
    luma = lin @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    lo, hi = np.percentile(luma, [15, 85])
    keep = (luma >= lo) & (luma <= hi)
    skin = lin[keep].mean(0) if keep.sum() >= 10 else face
    return face.astype(np.float64), skin.astype(np.float64)


def _screen_linear(challenge: Challenge, t_ms: np.ndarray, exposure_ms: float) -> np.ndarray:
    """Mean linear RGB of the screen over the exposure ending at each time; NaN before 0 (the
    last step's colour stays on after the end, as the client leaves it during the tail)."""
    ends = np.array([s.end_ms for s in challenge.steps], np.float64)
    cols = np.array([[srgb_to_linear(v) for v in s.colour] for s in challenge.steps])
    t = np.asarray(t_ms, np.float64)[:, None] + np.linspace(-exposure_ms, 0.0, 4)[None, :]
    idx = np.minimum(np.searchsorted(ends, t, side="right"), len(ends) - 1)
    out = cols[idx].mean(axis=1)
    out[np.any(t < 0, axis=1)] = np.nan
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 1e-12 else 0.0


def _correlations(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """(chromaticity r, brightness r) between observed ``y`` and screen ``x`` (both ``(N, 3)``
    linear RGB) under the diffuse model of the module docstring."""
    lum = y.mean(1, keepdims=True)
    chroma = y / np.maximum(lum, 1e-9)
    rho = chroma.mean(0)
    rho = rho / rho.mean()
    lit = (rho[None, :] * x).mean(1, keepdims=True)
    expected = rho[None, :] * (x - lit)
    c = chroma - chroma.mean(0)
    e = expected - expected.mean(0)
    return _pearson(c.ravel(), e.ravel()), _pearson(lum.ravel(), lit.ravel())


def colour_response(means: np.ndarray, timestamps_ms: np.ndarray, challenge: Challenge,
                    params: VerifyParams) -> dict[str, Any]:
    """Search the camera latency and score how well ``means`` (``(N, 3)`` linear RGB per frame,
    NaN rows for frames without a face) follow the challenge; see the module docstring."""
    best: dict[str, Any] = {"score": None, "latency_ms": None, "r_chroma": None,
                            "r_luminance": None, "frames_used": 0, "steps_covered": 0.0}
    curve = []
    ok_rows = np.all(np.isfinite(means), axis=1)
    lat = params.latency_min_ms
    while lat <= params.latency_max_ms + 1e-9:
        x = _screen_linear(challenge, timestamps_ms - lat, params.exposure_ms)
        # the fixed dark reference at the start is in every challenge: only the random part counts
        use = (ok_rows & np.all(np.isfinite(x), axis=1)
               & (timestamps_ms - lat - params.exposure_ms >= challenge.lead_ms))
        n = int(use.sum())
        if n >= params.min_colour_frames:
            rc, rl = _correlations(means[use], x[use])
            score = min(rc, rl)
            steps = {challenge.step_index_at(float(t - lat)) for t in timestamps_ms[use]}
            steps.discard(None)
            total = len(challenge.steps)
            if challenge.lead_ms > 0:
                steps.discard(0)
                total -= 1
            covered = len(steps) / max(1, total)
            curve.append((lat, round(score, 4)))
            if best["score"] is None or score > best["score"]:
                best = {"score": score, "latency_ms": lat, "r_chroma": rc, "r_luminance": rl,
                        "frames_used": n, "steps_covered": covered}
        lat += params.latency_step_ms
    for k in ("score", "r_chroma", "r_luminance"):
        if best[k] is not None:
            best[k] = round(float(best[k]), 4)
    best["curve"] = curve
    return best


# -- the verifier ------------------------------------------------------------------------------

def verify_challenge(
    frames: Sequence[Any],
    timestamps_ms: Sequence[float],
    challenge: Challenge | dict[str, Any],
    *,
    pipeline: Pipeline | None = None,
    detector: FaceDetector | None = None,
    mesher: FaceMesher | None = None,
    params: VerifyParams | None = None,
    elapsed_ms: float | None = None,
    max_frame_pixels: int | None = None,
    max_aspect_ratio: float | None = MAX_ASPECT_RATIO,
    budget_s: float | None = None,
) -> ChallengeReport:
    """Check a challenge clip; see the module docstring for the checks.

    The verification stops at the first decisive failure found before decoding any frame
    (:func:`prechecks`: timing, frames repeated within the clip, a frame size that changes):
    the decision is then ``spoof``, ``stopped`` names the check and the checks not run say
    ``"status": "not_run"``. Past ``budget_s`` it stops where it is with the decision
    ``unknown`` (``stopped="budget"``).

    Parameters
    ----------
    frames : sequence
        BGR ``uint8`` arrays, encoded image bytes or paths (encoded ones are hashed:
        ``frames_sha256``).
    timestamps_ms : sequence of float
        One per frame, ms since the client started the challenge.
    challenge : Challenge or dict
        The issued challenge.
    pipeline : Pipeline, optional
        The passive tests (:class:`facelive.pipeline.Pipeline`); ``None`` skips them (the
        report says ``"status": "skipped"``; a server must pass one).
    detector : FaceDetector, optional
        Reused when given (else created and closed here).
    mesher : FaceMesher, optional
        Reused when given (else created and closed here).
    params : VerifyParams, optional
        The bounds and thresholds (default: :class:`VerifyParams`'s).
    elapsed_ms : float, optional
        The server's own time between issuing the challenge and receiving the frames.
    max_frame_pixels : int, optional
        Largest decoded frame (a larger JPEG is decoded reduced: :func:`decode_frames`);
        ``None``: the library's image limits.
    max_aspect_ratio : float, optional
        Largest long side / short side of a frame.
    budget_s : float, optional
        Wall-clock seconds for the whole verification (``None``: unlimited).

    Returns
    -------
    ChallengeReport
        The decision, the reasons against ``live`` and every check.

    Raises
    ------
    ValueError
        On malformed input (frame and timestamp counts differ, no frames).
    facelive.ImageError
        On an unreadable frame.
    """
    t0 = time.perf_counter()
    params = params or VerifyParams()
    ch = challenge if isinstance(challenge, Challenge) else Challenge.from_dict(challenge)
    if len(frames) != len(timestamps_ms):
        raise ValueError(f"{len(frames)} frames but {len(timestamps_ms)} timestamps")
    if not frames:
        raise ValueError("no frames")
    if len(frames) > params.max_frames * 4:
        raise ValueError(f"{len(frames)} frames is far beyond the limit ({params.max_frames})")
    try:
        ts = np.asarray([float(t) for t in timestamps_ms], np.float64)
    except (TypeError, ValueError):
        raise ValueError("timestamps must be numbers") from None
    budget = Budget(budget_s)
    frames = _encoded(frames)
    hashes = [] if any(isinstance(f, np.ndarray) for f in frames) else [
        sha256_hex(f) for f in frames]
    timing, stopped = prechecks(frames, ts, ch, params, elapsed_ms)
    if stopped is not None:
        return _stopped_report(ch, len(frames), timing, hashes, params, "spoof",
                               ["implausible timing: " + "; ".join(timing["problems"])],
                               stopped, t0)
    try:
        images, _ = decode_frames(frames, max_pixels=max_frame_pixels,
                                  max_aspect_ratio=max_aspect_ratio, budget=budget)
    except OverBudget as exc:
        return _stopped_report(ch, len(frames), timing, hashes, params, "unknown", [str(exc)],
                               "budget", t0)
    del frames

    over: OverBudget | None = None
    own_detector = detector is None
    own_mesher = mesher is None
    if detector is None:
        from facelive.face.detection import FaceDetector

        detector = FaceDetector()
    if mesher is None:
        from facelive.face.mesh import FaceMesher

        mesher = FaceMesher()
    try:
        faces, boxes, marks = _faces(images, detector, mesher, params, budget)
        budget.check("the face checks")
        continuity = _continuity(boxes, marks, params)
        colour, face_means = _colour(images, boxes, ts, ch, params)
        budget.check("the colour check")
        passive = _passive(images, boxes, ts, ch, colour.get("latency_ms"), pipeline, params)
        planarity = _planarity(marks, params)
        budget.check("the passive tests")
        physics = _physics(images, boxes, marks, ts, ch, colour, face_means, params, budget)
    except OverBudget as exc:
        over = exc
    finally:
        if own_detector:
            detector.close()
        if own_mesher:
            mesher.close()
    if over is not None:
        return _stopped_report(ch, len(images), timing, hashes, params, "unknown", [str(over)],
                               "budget", t0)

    reasons: list[str] = []
    undecided = False
    if not timing["passed"]:
        reasons.append("implausible timing: " + "; ".join(timing["problems"]))
    if faces["multiple_face_frames"]:
        reasons.append("multiple faces")
        undecided = True
    if not faces["passed_missing"]:
        reasons.append(f"no face in {faces['missing_face_frames']} of {len(images)} frames")
        undecided = True
    if not continuity["passed"]:
        reasons.append("face jumps between frames")
    if colour["required"] and not colour["passed"]:
        reasons.append("colour response does not follow the challenge")
    if passive["required"] and not passive["passed"]:
        reasons.append("passive tests say spoof" if passive["score"] is not None
                       else "passive tests gave no score")
    if planarity["used_in_decision"] and not planarity["passed"]:
        reasons.append("landmarks move as a plane")
    for name, reason in _PHYSICS_REASONS.items():
        c = physics.get(name)
        if c and c["used_in_decision"] and c["passed"] is False:
            reasons.append(reason)
    decision = "unknown" if undecided else ("spoof" if reasons else "live")
    return ChallengeReport(
        decision=decision, reasons=reasons, mode=ch.mode, weak=ch.mode != "flash",
        nonce=ch.nonce, frames=len(images), timing=timing, faces=faces, continuity=continuity,
        colour=colour, passive=passive, planarity=planarity, frames_sha256=hashes,
        params=asdict(params), ms=(time.perf_counter() - t0) * 1e3, physics=physics)


def _stopped_report(ch: Challenge, frames: int, timing: dict[str, Any], hashes: list[str],
                    params: VerifyParams, decision: str, reasons: list[str], stopped: str,
                    t0: float) -> ChallengeReport:
    """The report of a verification that ended at ``stopped``: the checks not run say so."""
    def not_run() -> dict[str, Any]:
        return {"status": "not_run", "passed": None, "required": False, "score": None}

    return ChallengeReport(
        decision=decision, reasons=reasons, mode=ch.mode, weak=ch.mode != "flash",
        nonce=ch.nonce, frames=frames, timing=timing, faces=not_run(), continuity=not_run(),
        colour=not_run(), passive=not_run(), planarity=not_run(), frames_sha256=hashes,
        params=asdict(params), ms=(time.perf_counter() - t0) * 1e3, stopped=stopped)


def _faces(images: list[np.ndarray], detector: Any, mesher: Any, params: VerifyParams,
           budget: Budget | None = None
           ) -> tuple[dict[str, Any], list[FaceBox | None], list[np.ndarray | None]]:
    from facelive.face.mesh import MeshNotFound

    boxes: list[FaceBox | None] = []
    marks: list[np.ndarray | None] = []
    multi, counts = [], []
    for i, im in enumerate(images):
        if budget is not None:
            budget.check("finding the faces")
        found = detector.detect_all(im)
        counts.append(len(found))
        if len(found) > 1:
            multi.append(i)
        box = found[0] if found else None
        boxes.append(box)
        lm = None
        if box is not None:
            try:
                verts, _ = mesher.reconstruct(im, box)
                lm = mesher.to_image(verts, im.shape, box)
            except MeshNotFound:
                lm = None
        marks.append(lm)
    missing = sum(b is None for b in boxes)
    passed_missing = missing <= params.max_missing_face * len(images)
    return ({
        "faces_per_frame": counts,
        "multiple_face_frames": multi,
        "missing_face_frames": missing,
        "missing_mesh_frames": sum(m is None for m in marks),
        "passed_missing": passed_missing,
        "passed": passed_missing and not multi,
        "min_confidence": getattr(detector, "min_confidence", None),
    }, boxes, marks)


def _continuity(boxes: list[FaceBox | None], marks: list[np.ndarray | None],
                params: VerifyParams) -> dict[str, Any]:
    jumps, scales, shapes, bad = [], [], [], []
    for i in range(1, len(boxes)):
        a, b = boxes[i - 1], boxes[i]
        if a is None or b is None:
            continue
        size = max(1.0, (a.w + b.w) / 2.0)
        shift = float(np.hypot((a.x + a.w / 2) - (b.x + b.w / 2),
                               (a.y + a.h / 2) - (b.y + b.h / 2)) / size)
        ratio = float(max(a.w * a.h, b.w * b.h) / max(1.0, min(a.w * a.h, b.w * b.h))) ** 0.5
        jumps.append(shift)
        scales.append(ratio)
        sd = None
        la, lb = marks[i - 1], marks[i]
        if la is not None and lb is not None:
            sd = shape_distance(la, lb)
            shapes.append(sd)
        if (shift > params.max_jump or ratio > params.max_scale_jump
                or (sd is not None and sd > params.max_shape_jump)):
            bad.append(i)
    return {
        "max_shift": round(max(jumps), 4) if jumps else None,
        "max_scale_ratio": round(max(scales), 4) if scales else None,
        "max_shape_change": round(max(shapes), 4) if shapes else None,
        "jump_frames": bad,
        "passed": not bad,
    }


def _colour(images: list[np.ndarray], boxes: list[FaceBox | None], ts: np.ndarray,
            ch: Challenge, params: VerifyParams) -> tuple[dict[str, Any], np.ndarray]:
    """The colour check's result and the face region's linear RGB per frame (NaN rows without a
    face; for the physical checks)."""
    face = np.full((len(images), 3), np.nan)
    if ch.mode != "flash":
        return {"required": False, "status": "not_applicable", "passed": None, "score": None,
                "note": "non-flash mode: no colour challenge (weaker)"}, face
    skin = np.full((len(images), 3), np.nan)
    for i, (im, b) in enumerate(zip(images, boxes, strict=True)):
        if b is not None:
            face[i], skin[i] = region_means(im, b)
    res = colour_response(face, ts, ch, params)
    skin_res = colour_response(skin, ts, ch, params)
    score = res["score"]
    passed = (score is not None and score >= params.colour_threshold
              and res["steps_covered"] >= params.min_steps_covered)
    res.update(required=True, status="ok" if score is not None else "too_few_frames",
               threshold=params.colour_threshold, passed=bool(passed),
               skin={k: skin_res[k] for k in ("score", "latency_ms", "r_chroma", "r_luminance")})
    return res, face


def _passive(images: list[np.ndarray], boxes: list[FaceBox | None], ts: np.ndarray,
             ch: Challenge, latency: float | None, pipeline: Any, params: VerifyParams
             ) -> dict[str, Any]:
    if pipeline is None:
        return {"required": False, "status": "skipped", "passed": None, "score": None,
                "tests": {}}
    lat = 0.0 if latency is None else float(latency)

    def frames_in(colours: set[tuple[int, int, int]]) -> list[int]:
        out = []
        for i, t in enumerate(ts):
            if boxes[i] is None:
                continue
            cols = {ch.colour_at(float(t - lat + o))
                    for o in (-params.neutral_guard_ms, 0.0, params.neutral_guard_ms)}
            if None not in cols and cols <= colours and len(cols) == 1:
                out.append(i)
        return out

    idx: list[int] = []
    source = "all frames (steady mode: no tint)"
    if ch.mode == "flash":
        idx, source = frames_in({PALETTE["dark"]}), "dark steps (ambient light only)"
        if len(idx) < 3:
            idx, source = frames_in({PALETTE[n] for n in NEUTRAL}), "neutral steps (dark, white)"
    if len(idx) < 3:
        if ch.mode == "flash":
            source = "all frames (too few neutral frames)"
        idx = [i for i in range(len(images)) if boxes[i] is not None]
    if len(idx) > params.passive_frames:
        pick = np.linspace(0, len(idx) - 1, params.passive_frames).round().astype(int)
        idx = [idx[k] for k in pick]
    per_frame, per_test = [], {}
    for i in idx:
        r = pipeline.check_frame(images[i])
        per_frame.append(r.score)
        for name, tr in r.tests.items():
            per_test.setdefault(name, []).append(tr.score)
    scored = [s for s in per_frame if s is not None]
    score = float(np.median(scored)) if scored else None
    thr = float(pipeline.threshold)
    tests = {n: (float(np.median([v for v in vals if v is not None]))
                 if any(v is not None for v in vals) else None)
             for n, vals in per_test.items()}
    return {
        "required": True, "status": "ok" if score is not None else "no_score",
        "score": None if score is None else round(score, 4), "threshold": thr,
        "passed": score is not None and score >= thr, "frames_scored": idx,
        "frame_scores": [None if s is None else round(float(s), 4) for s in per_frame],
        "tests": {n: None if v is None else round(v, 4) for n, v in tests.items()},
        "source": source, "pooling": "median",
    }


def _planarity(marks: list[np.ndarray | None], params: VerifyParams) -> dict[str, Any]:
    idx = [i for i, m in enumerate(marks) if m is not None]
    if len(idx) > params.planar_pairs:
        pick = np.linspace(0, len(idx) - 1, params.planar_pairs).round().astype(int)
        idx = [idx[k] for k in pick]
    res, motions = [], []
    for a in range(len(idx)):
        for b in range(a + 1, len(idx)):
            r, m = homography_residual(marks[idx[a]], marks[idx[b]])  # type: ignore[arg-type]
            if m >= params.planar_min_motion and np.isfinite(r):
                res.append(r)
                motions.append(m)
    residual = float(np.median(res)) if res else None
    used = bool(params.use_planarity)
    passed = None if residual is None else residual >= params.planar_threshold
    return {
        "residual": None if residual is None else round(residual, 5),
        "pairs": len(res),
        "median_motion": round(float(np.median(motions)), 5) if motions else None,
        "threshold": params.planar_threshold,
        "used_in_decision": used and residual is not None,
        "passed": passed,
        "status": "ok" if residual is not None else "too_little_motion",
    }


_PHYSICS_REASONS = {
    "motion": "the face does not move like a head (a still picture?)",
    "falloff": "the background answers the screen like the face (a tint of the whole frame?)",
    "shape": "the screen's light does not follow the face's shape",
}


def _physics(images: list[np.ndarray], boxes: list[FaceBox | None],
             marks: list[np.ndarray | None], ts: np.ndarray, ch: Challenge,
             colour: dict[str, Any], face_means: np.ndarray, params: VerifyParams,
             budget: Budget | None = None) -> dict[str, dict[str, Any]]:
    """The physical checks of :mod:`facelive.challenge.physics`: motion in every mode; falloff
    and shape in flash mode, with the screen's colours at the latency the colour check found
    (not run when it found none). Each says ``used_in_decision`` (its ``use_*`` parameter and a
    measurable result). ``budget`` is checked after each check (:class:`OverBudget`)."""
    from facelive.challenge import physics

    out: dict[str, dict[str, Any]] = {}
    motion = physics.face_motion(images, marks, ts, lag_ms=params.motion_lag_ms,
                                 pairs=params.motion_pairs,
                                 min_residual=params.motion_min_residual)
    motion["used_in_decision"] = bool(params.use_motion and motion["passed"] is not None)
    out["motion"] = motion
    if budget is not None:
        budget.check("the motion check")
    latency = colour.get("latency_ms")
    if ch.mode != "flash" or latency is None:
        return out
    screen = _screen_linear(ch, ts - float(latency), params.exposure_ms)
    screen[ts - float(latency) - params.exposure_ms < ch.lead_ms] = np.nan  # the fixed lead
    falloff = physics.screen_falloff(images, boxes, face_means, screen,
                                     max_ratio=params.falloff_max_ratio,
                                     min_background=params.falloff_min_background)
    falloff["used_in_decision"] = bool(params.use_falloff and falloff["passed"] is not None)
    if budget is not None:
        budget.check("the falloff check")
    shape = physics.shading_response(images, marks, screen,
                                     min_correlation=params.shape_min_correlation)
    shape["used_in_decision"] = bool(params.use_shape and shape["passed"] is not None)
    out["falloff"] = falloff
    out["shape"] = shape
    return out
