"""Injection attacks on the screen-flash challenge, from naive to informed, and the realistic live
simulation they are measured against.

A client that injects video (a virtual camera, a tampered page, a script speaking the HTTP API)
receives the whole colour sequence before it films, so it can render any response it likes. Each
tier is a way of doing so that someone has tried or would try first:

========== ====================================================================================
tier       what the attacker sends
========== ====================================================================================
recorded   a recording of the person (the live simulation) made under *another* challenge
tint       a still photo tinted as a whole by the overlay's current colour (a 25-line fake camera)
still      ``simulate_clip`` of a still photo (the face ellipse lit, a slow drift of the image)
video      ``simulate_clip``'s even tint on a moving face (a video of the person, animated)
informed   a renderer that knows the checks: the live simulation's own physics (head turning in
           3D, Lambert's law on the mesh's normals, inverse-square falloff) applied to the photo
live       not an attack: :func:`~facelive.challenge.simulate.simulate_live_clip`, the bona fide
           user the checks must let through
========== ====================================================================================

:func:`run_tier` verifies ``sessions`` clips of a tier, each under a fresh challenge, with a
source face drawn from :func:`load_sources` (``examples/astronaut.jpg`` and, given the research
data, one real frame per Replay-Attack devel live video) and the camera's parameters drawn per
session, and counts the sessions that come out ``live``. ``facelive challenge attack`` prints the
table; ``docs/challenge.md`` has the measured one.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facelive.challenge.sequence import Challenge, new_challenge
from facelive.challenge.simulate import _screen_linear as screen_at
from facelive.challenge.simulate import (
    frame_times,
    simulate_clip,
    simulate_live_clip,
    tint_frame,
)

if TYPE_CHECKING:
    from facelive.challenge.verify import VerifyParams
    from facelive.face.detection import FaceDetector
    from facelive.face.mesh import FaceMesher
    from facelive.pipeline import Pipeline
    from facelive.types import FaceBox

__all__ = ["TIERS", "Source", "TierResult", "attack_clip", "load_sources", "run_tier"]

TIERS = ("recorded", "tint", "still", "video", "informed", "live")
"""The tiers, naive to informed, then the bona fide simulation."""

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "astronaut.jpg"


@dataclass(frozen=True)
class Source:
    """A face to film or to animate: the image, its face box, its Face Mesh vertices (image
    pixels) and a name."""

    image: np.ndarray
    box: FaceBox
    vertices: np.ndarray
    name: str


@dataclass
class TierResult:
    """One tier's outcome over its sessions."""

    tier: str
    sessions: int
    live: int
    reasons: Counter = field(default_factory=Counter)
    scores: dict[str, list[float | None]] = field(default_factory=dict)

    @property
    def pass_rate(self) -> float:
        """Share of sessions that came out ``live``."""
        return self.live / self.sessions if self.sessions else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary: counts, the reasons seen (how many sessions each) and the median
        of each check's statistic."""
        med = {}
        for k, vals in self.scores.items():
            v = [x for x in vals if x is not None]
            med[k] = round(float(np.median(v)), 4) if v else None
        return {"tier": self.tier, "sessions": self.sessions, "live": self.live,
                "pass_rate": round(self.pass_rate, 3), "reasons": dict(self.reasons),
                "median_scores": med}


def load_sources(detector: FaceDetector, mesher: FaceMesher, data: Path | None = None,
                 limit: int = 20, images: list[Path] | None = None) -> list[Source]:
    """The source faces: ``images`` (default ``examples/astronaut.jpg``, when the repository is
    there) and, when ``data`` (the research data folder) is given, the first frame of
    Replay-Attack devel live videos (real webcam frames, 320 x 240); at most ``limit`` with a
    face. Nothing derived from them is kept."""
    import cv2

    from facelive.face.mesh import MeshNotFound

    named = [(Path(p), Path(p).stem) for p in (images or [EXAMPLE])]
    if data is not None:  # a Replay-Attack frame is named after its video
        real = Path(data) / "replay-attack" / "devel" / "real"
        named += [(sorted(v.glob("*.jpg"))[0], v.name) for v in sorted(real.glob("*"))
                  if any(v.glob("*.jpg"))]
    out: list[Source] = []
    for path, name in named:
        if len(out) >= limit:
            break
        img = cv2.imread(str(path)) if path.is_file() else None
        if img is None:
            continue
        box = detector.detect(img)
        if box is None:
            continue
        try:
            verts, _ = mesher.reconstruct(img, box)
        except MeshNotFound:
            continue
        out.append(Source(img, box, mesher.to_image(verts, img.shape, box), name))
    return out


def _camera(rng: np.random.Generator) -> dict[str, Any]:
    """A camera drawn per session: frame rate, latency, noise, JPEG quality."""
    return {"fps": float(rng.uniform(8.0, 15.0)), "latency_ms": float(rng.uniform(50, 300)),
            "noise": float(rng.uniform(1.0, 4.0)), "jpeg_quality": int(rng.integers(75, 93))}


def _live_scene(rng: np.random.Generator) -> dict[str, Any]:
    """A bona fide scene drawn per session (the ranges are ``docs/challenge.md``'s)."""
    return {"strength": float(rng.uniform(0.15, 0.4)),
            "face_distance_cm": float(rng.uniform(25, 50)),
            "background_distance_cm": float(rng.uniform(100, 300)),
            "motion_deg": float(rng.uniform(0.3, 1.5)),
            "auto_exposure": float(rng.uniform(0.0, 0.5))}


def _tint_still(src: Source, challenge: Challenge, rng: np.random.Generator, fps: float,
                latency_ms: float, noise: float, jpeg_quality: int, strength: float = 0.35
                ) -> tuple[list[np.ndarray], list[float]]:
    """The fake camera: every frame is the photo with the whole frame tinted by the overlay's
    colour ``latency_ms`` earlier."""
    import cv2

    times = frame_times(challenge.capture_ms, fps, 4.0, rng)
    ones = np.ones(src.image.shape[:2], np.float32)
    frames = []
    for t in times:
        img = tint_frame(src.image, ones, screen_at(challenge, t - latency_ms, 30.0), strength)
        img = np.clip(img.astype(np.float32) + rng.normal(0, noise, img.shape), 0, 255)
        ok, buf = cv2.imencode(".jpg", img.astype(np.uint8),
                               [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        frames.append(cv2.imdecode(buf, cv2.IMREAD_COLOR))
    return frames, times


def attack_clip(tier: str, src: Source, challenge: Challenge, rng: np.random.Generator
                ) -> tuple[list[np.ndarray], list[float]]:
    """Frames and timestamps that ``tier`` sends for ``challenge``, from ``src``.

    Raises
    ------
    ValueError
        On an unknown tier.
    """
    cam = _camera(rng)
    if tier == "recorded":
        earlier = new_challenge(rng=random.Random(int(rng.integers(0, 2**31))))
        frames, times = simulate_live_clip(src.image, src.box, earlier, src.vertices,
                                           rng=rng, **cam, **_live_scene(rng))
        keep = [i for i, t in enumerate(times) if t <= challenge.capture_ms]
        return [frames[i] for i in keep], [times[i] for i in keep]
    if tier == "tint":
        return _tint_still(src, challenge, rng, **cam)
    if tier == "still":
        return simulate_clip(src.image, src.box, challenge, strength=0.35, drift_px=0.3,
                             rng=rng, **cam)
    if tier == "video":
        return simulate_live_clip(src.image, src.box, challenge, src.vertices,
                                  shading="ellipse", strength=0.35,
                                  motion_deg=float(rng.uniform(0.3, 1.5)), auto_exposure=0.0,
                                  rng=rng, **cam)
    if tier in ("informed", "live"):
        return simulate_live_clip(src.image, src.box, challenge, src.vertices, rng=rng, **cam,
                                  **_live_scene(rng))
    raise ValueError(f"unknown tier {tier!r} (one of {', '.join(TIERS)})")


def run_tier(tier: str, sessions: int, sources: list[Source], *, detector: FaceDetector,
             mesher: FaceMesher, pipeline: Pipeline | None = None,
             params: VerifyParams | None = None, seed: int = 0) -> TierResult:
    """Verify ``sessions`` clips of ``tier``, each under a new challenge, the source faces taken
    in turn; returns how many came out ``live``, the reasons given and each check's statistic."""
    from facelive.challenge.verify import verify_challenge

    if not sources:
        raise ValueError("no source faces")
    rng = np.random.default_rng([seed, TIERS.index(tier) if tier in TIERS else 99])
    out = TierResult(tier=tier, sessions=0, live=0)
    for k in range(sessions):
        ch = new_challenge(rng=random.Random(int(rng.integers(0, 2**31))))
        frames, ts = attack_clip(tier, sources[k % len(sources)], ch, rng)
        rep = verify_challenge(frames, ts, ch, detector=detector, mesher=mesher,
                               pipeline=pipeline, params=params)
        out.sessions += 1
        out.live += rep.decision == "live"
        for r in rep.reasons:
            out.reasons[r.split(":")[0]] += 1
        for name, value in rep.scores().items():
            if name.startswith("passive."):
                continue
            out.scores.setdefault(name, []).append(value)
    return out
