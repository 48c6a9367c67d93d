"""What one clip may cost the verifier: it stops at the first decisive failure before decoding a
frame, decodes frames at a bounded size and ends as ``unknown`` past its wall-clock budget.

Decoding is counted by wrapping :func:`facelive.imageio.decode_image` (what
:func:`~facelive.challenge.verify.decode_frames` calls); face detection by a detector that
counts its calls. The clips are large on purpose (150 frames of 1000x1000, the size of the
clip-flood attack), so that a verifier that decoded them would be caught by the counts, not by a
timer.
"""

from __future__ import annotations

import random
import time
import tracemalloc
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import facelive.imageio
from facelive.challenge.sequence import Challenge, new_challenge
from facelive.challenge.verify import VerifyParams, decode_frames, verify_challenge
from facelive.errors import ImageError, ImageTooLargeError
from facelive.types import FaceBox

REPO = Path(__file__).resolve().parents[2]


class CountingDetector:
    """Finds one centred face in every frame and counts the frames it was shown; ``delay_s``
    sleeps per frame (a slow detector, for the budget)."""

    min_confidence = 0.5

    def __init__(self, delay_s: float = 0.0) -> None:
        self.calls, self.delay_s = 0, delay_s

    def detect_all(self, image: np.ndarray) -> list[FaceBox]:
        self.calls += 1
        time.sleep(self.delay_s)
        h, w = image.shape[:2]
        return [FaceBox(x=w // 4, y=h // 4, w=w // 2, h=h // 2, confidence=0.9)]


class NoMesh:
    def reconstruct(self, image: np.ndarray, box: FaceBox) -> Any:
        from facelive.face.mesh import MeshNotFound

        raise MeshNotFound("no mesh in this test")


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """The number of frames decoded (``decodes[0]``), counted at the decoder."""
    count = [0]
    real = facelive.imageio.decode_image

    def counting(*args: Any, **kw: Any) -> np.ndarray:
        count[0] += 1
        return real(*args, **kw)

    monkeypatch.setattr(facelive.imageio, "decode_image", counting)
    return count


@pytest.fixture(scope="module")
def challenge() -> Challenge:
    return new_challenge(rng=random.Random(23))


@pytest.fixture(scope="module")
def big_frames() -> list[bytes]:
    """150 distinct 1000x1000 JPEGs (noise: about 20 MB in all, the attack's size)."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (1000, 1000, 3), np.uint8)
    base = cv2.GaussianBlur(base, (0, 0), 3)
    out = []
    for i in range(150):
        f = base.copy()
        f[i, :] ^= 0xFF
        out.append(cv2.imencode(".jpg", f, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes())
    return out


def _plausible(ch: Challenge, n: int) -> list[float]:
    step = ch.capture_ms / (n - 1)
    return [i * step for i in range(n)]


def _verify(frames, ts, ch, det=None, **kw):
    return verify_challenge(frames, ts, ch, detector=det or CountingDetector(), mesher=NoMesh(),
                            elapsed_ms=ch.capture_ms + 1000.0, **kw)


# -- stops before decoding -----------------------------------------------------------------------

def test_bad_timing_stops_before_any_frame_is_decoded(big_frames, challenge, decodes) -> None:
    det = CountingDetector()
    t0 = time.perf_counter()
    rep = _verify(big_frames, [float(i) for i in range(150)], challenge, det,
                  max_frame_pixels=1_000_000)
    seconds = time.perf_counter() - t0
    assert rep.decision == "spoof" and rep.stopped == "timing"
    assert rep.reasons[0].startswith("implausible timing:") and "fps" in rep.reasons[0]
    assert decodes[0] == 0 and det.calls == 0
    assert rep.faces["status"] == rep.colour["status"] == rep.passive["status"] == "not_run"
    checks = rep.checks()
    assert checks["timing"] is False and checks["faces"] is None and checks["colour"] is None
    assert rep.to_dict()["stopped"] == "timing" and len(rep.frames_sha256) == 150
    assert seconds < 10.0  # hashing 20 MB, nothing else (decoding and meshing took 4 s)


def test_garbage_frames_with_bad_timing_are_never_opened(challenge, decodes) -> None:
    junk = [bytes([i % 256]) * 80_000 for i in range(150)]  # not images at all
    rep = _verify(junk, [0.0] * 150, challenge, max_frame_pixels=1_000_000)
    assert rep.decision == "spoof" and rep.stopped == "timing" and decodes[0] == 0


def test_too_few_frames_stop_before_decoding(big_frames, challenge, decodes) -> None:
    rep = _verify(big_frames[:5], _plausible(challenge, 5), challenge)
    assert rep.stopped == "timing" and "5 frames (at least 12)" in rep.reasons[0]
    assert decodes[0] == 0


def test_repeated_frames_stop_before_decoding(big_frames, challenge, decodes) -> None:
    frames = [big_frames[0]] * 100 + big_frames[:50]
    det = CountingDetector()
    rep = _verify(frames, _plausible(challenge, 150), challenge, det)
    assert rep.decision == "spoof" and rep.stopped == "duplicate_frames"
    assert rep.timing["duplicate_frames"] == 100
    assert "repeat an earlier frame" in rep.reasons[0]
    assert decodes[0] == 0 and det.calls == 0
    # a few repeats (a camera slower than the capture) are no failure by themselves
    ok = _verify(big_frames[:140] + big_frames[:10], _plausible(challenge, 150), challenge,
                 max_frame_pixels=250_000)
    assert ok.stopped is None and ok.timing["duplicate_frames"] == 10
    assert VerifyParams().max_duplicate_share == 0.5


def test_a_frame_size_change_stops_before_decoding(challenge, decodes) -> None:
    a = cv2.imencode(".jpg", np.full((240, 320, 3), 90, np.uint8))[1].tobytes()
    b = cv2.imencode(".jpg", np.full((480, 640, 3), 90, np.uint8))[1].tobytes()
    frames = [a if i % 7 else b for i in range(60)]
    frames = [f + bytes([i]) for i, f in enumerate(frames)]  # distinct bytes, same images
    rep = _verify(frames, _plausible(challenge, 60), challenge)
    assert rep.stopped == "frame_size" and "frame size changes" in rep.reasons[0]
    assert decodes[0] == 0


def test_an_unreadable_header_is_refused_before_decoding(big_frames, challenge,
                                                         decodes) -> None:
    frames = big_frames[:59] + [b"not an image"]
    with pytest.raises(ImageError, match="frame 59"):
        _verify(frames, _plausible(challenge, 60), challenge)
    assert decodes[0] == 0


# -- bounded decoding ----------------------------------------------------------------------------

def test_frames_are_decoded_at_most_max_pixels() -> None:
    img = cv2.resize(cv2.imread(str(REPO / "examples" / "astronaut.jpg")), (2000, 2000))
    jpg = cv2.imencode(".jpg", img)[1].tobytes()
    images, hashes = decode_frames([jpg] * 3, max_pixels=1_000_000)
    assert [im.shape for im in images] == [(1000, 1000, 3)] * 3 and len(hashes) == 3
    assert max(im.nbytes for im in images) <= 3 * 1_000_000
    # the reduced decode is the picture, not noise: close to a full decode scaled down
    full = cv2.resize(img, (1000, 1000), interpolation=cv2.INTER_AREA)
    assert float(np.abs(images[0].astype(int) - full).mean()) < 3.0
    small, _ = decode_frames([jpg], max_pixels=300_000)
    assert small[0].shape == (500, 500, 3)  # 1/4 per side: the largest scale that fits
    png = cv2.imencode(".png", img[:1200, :1200])[1].tobytes()
    with pytest.raises(ImageTooLargeError, match="only a JPEG is decoded reduced"):
        decode_frames([png], max_pixels=1_000_000)
    with pytest.raises(ImageTooLargeError):  # over 64 times the decoded size
        decode_frames([jpg], max_pixels=60_000)


def test_decoding_a_clip_of_large_frames_keeps_memory_bounded() -> None:
    """Ten 3000x3000 JPEGs (9 MP each: 27 MB per frame decoded in full) at 1 MP: the arrays
    numpy allocates while decoding stay near 10 x 3 MB."""
    rng = np.random.default_rng(1)
    big = cv2.resize(rng.integers(0, 256, (300, 300, 3), np.uint8), (3000, 3000))
    frames = [cv2.imencode(".jpg", big, [cv2.IMWRITE_JPEG_QUALITY, 70])[1].tobytes()] * 10
    tracemalloc.start()
    try:
        images, _ = decode_frames(frames, max_pixels=1_000_000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert all(im.shape[0] * im.shape[1] <= 1_000_000 for im in images)
    assert peak < 10 * 3_000_000 + 12_000_000, peak  # a full-size decode alone is 27 MB


# -- the wall-clock budget -----------------------------------------------------------------------

def test_past_its_budget_the_verification_ends_as_unknown(challenge) -> None:
    frames = [cv2.imencode(".jpg", np.full((120, 160, 3), i, np.uint8))[1].tobytes()
              for i in range(60)]
    det = CountingDetector(delay_s=0.05)  # 3 s for the clip; the budget is 0.3 s
    t0 = time.perf_counter()
    rep = _verify(frames, _plausible(challenge, 60), challenge, det, budget_s=0.3)
    assert time.perf_counter() - t0 < 2.5
    assert rep.decision == "unknown" and rep.stopped == "budget"
    assert rep.reasons == ["verification stopped at its 0.3 s budget (finding the faces)"]
    assert det.calls < 60 and rep.checks()["faces"] is None
    rep0 = _verify(frames, _plausible(challenge, 60), challenge, budget_s=1e-9)
    assert rep0.stopped == "budget" and "decoding the frames" in rep0.reasons[0]


def test_the_budget_holds_between_the_physical_checks(challenge, monkeypatch) -> None:
    import facelive.challenge.physics as physics

    real = physics.face_motion

    def slow_motion(*args: Any, **kw: Any) -> dict[str, Any]:
        time.sleep(2.0)  # a motion check that outlives the budget
        return real(*args, **kw)

    monkeypatch.setattr(physics, "face_motion", slow_motion)
    frames = [cv2.imencode(".jpg", np.full((120, 160, 3), i, np.uint8))[1].tobytes()
              for i in range(60)]
    rep = _verify(frames, _plausible(challenge, 60), challenge, budget_s=1.5)
    assert rep.decision == "unknown" and rep.stopped == "budget"
    assert rep.reasons == ["verification stopped at its 1.5 s budget (the motion check)"]
