"""The challenge verifier on synthetic clips built from real face images.

A real face image is "filmed" under the issued colours by the realistic live simulation
(``simulate_live_clip``: the head turns a little in 3D, the screen's light follows Lambert's law on
the mesh's normals and falls off with distance, auto exposure, a camera latency, sensor noise,
JPEG). Such a clip passes; a static image, a clip that followed another sequence (frames re-sent
from an earlier session), one shifted beyond the latency bound, two faces and a jumping face each
fail with their reason. ``examples/astronaut.jpg`` always; Replay-Attack live frames for the whole
check (passive tests included) when the research data is present. The injection attacks are in
``test_attacks.py``.
"""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelive.challenge.sequence import PALETTE, Challenge, new_challenge
from facelive.challenge.simulate import simulate_live_clip
from facelive.challenge.verify import (
    VerifyParams,
    check_timing,
    homography_residual,
    shape_distance,
    verify_challenge,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def face_tools():
    from facelive.face.detection import FaceDetector
    from facelive.face.mesh import FaceMesher

    det, mesher = FaceDetector(), FaceMesher()
    yield det, mesher
    det.close()
    mesher.close()


def _source(img, face_tools):
    det, mesher = face_tools
    box = det.detect(img)
    assert box is not None
    verts, _ = mesher.reconstruct(img, box)
    return img, box, mesher.to_image(verts, img.shape, box)


@pytest.fixture(scope="module")
def astronaut(face_tools):
    return _source(cv2.imread(str(REPO / "examples" / "astronaut.jpg")), face_tools)


@pytest.fixture(scope="module")
def challenge() -> Challenge:
    return new_challenge(rng=random.Random(7))


def _verify(frames, ts, ch, face_tools, **kw):
    det, mesher = face_tools
    return verify_challenge(frames, ts, ch, detector=det, mesher=mesher, **kw)


def _clip(img, box, verts, ch, seed=0, **kw):
    kw.setdefault("fps", 10.0)
    return simulate_live_clip(img, box, ch, verts, rng=np.random.default_rng(seed), **kw)


def test_live_clip_passes_and_latency_is_estimated(astronaut, challenge, face_tools) -> None:
    frames, ts = _clip(*astronaut, challenge, latency_ms=180.0)
    rep = _verify(frames, ts, challenge, face_tools)
    d = rep.to_dict()
    assert rep.decision == "live", rep.reasons
    assert rep.reasons == [] and not rep.weak
    assert d["colour"]["passed"] and d["colour"]["score"] > 0.8
    assert abs(d["colour"]["latency_ms"] - 180.0) <= 40.0
    assert d["colour"]["skin"]["score"] > 0.8
    assert d["timing"]["passed"] and d["faces"]["passed"] and d["continuity"]["passed"]
    assert d["passive"]["status"] == "skipped" and not d["passive"]["required"]
    assert d["planarity"]["used_in_decision"] is False
    assert {n for n, c in d["physics"].items() if c["passed"]} == {"motion", "falloff", "shape"}
    assert rep.checks()["motion"] and rep.checks()["falloff"] and rep.checks()["shape"]
    assert d["nonce"] == challenge.nonce and d["frames"] == len(frames)


@pytest.mark.parametrize("latency", [0.0, 450.0])
def test_latency_bounds_are_inclusive(astronaut, challenge, face_tools, latency) -> None:
    frames, ts = _clip(*astronaut, challenge, seed=1, latency_ms=latency)
    rep = _verify(frames, ts, challenge, face_tools)
    assert rep.colour["passed"], rep.colour


def test_static_image_fails(astronaut, challenge, face_tools) -> None:
    frames, ts = _clip(*astronaut, challenge, seed=2, strength=0.0, motion_deg=0.0)
    rep = _verify(frames, ts, challenge, face_tools)
    assert rep.decision == "spoof"
    assert rep.reasons[0] == "colour response does not follow the challenge"
    assert rep.physics["motion"]["passed"] is False
    assert rep.colour["score"] < 0.5


def test_clip_of_another_sequence_fails(astronaut, challenge, face_tools) -> None:
    # a replay of frames filmed in an earlier session, under that session's challenge
    for seed in (11, 12, 13):
        earlier = new_challenge(rng=random.Random(seed))
        frames, ts = _clip(*astronaut, earlier, seed=seed)
        ts = [t for t in ts if t <= challenge.capture_ms]
        frames = frames[:len(ts)]
        rep = _verify(frames, ts, challenge, face_tools)
        assert "colour response does not follow the challenge" in rep.reasons, rep.colour
        assert rep.decision == "spoof"


def test_clip_shifted_beyond_the_latency_bound_fails(astronaut, challenge, face_tools) -> None:
    frames, ts = _clip(*astronaut, challenge, seed=3, latency_ms=1200.0)
    rep = _verify(frames, ts, challenge, face_tools)
    assert "colour response does not follow the challenge" in rep.reasons
    # the same clip passes once the bound allows its latency (it is the right sequence)
    wide = VerifyParams(latency_max_ms=1300.0, max_overrun_ms=3000.0)
    rep2 = _verify(frames, ts, challenge, face_tools, params=wide)
    assert rep2.colour["passed"] and abs(rep2.colour["latency_ms"] - 1200.0) <= 40


def test_two_faces_give_no_decision(astronaut, challenge, face_tools) -> None:
    img = astronaut[0]
    frames, ts = _clip(*astronaut, challenge, seed=4)
    doubled = [np.concatenate([f, img], axis=1) for f in frames]  # a photo beside the face
    rep = _verify(doubled, ts, challenge, face_tools)
    assert rep.decision == "unknown"
    assert "multiple faces" in rep.reasons
    assert rep.faces["multiple_face_frames"]


def test_face_that_jumps_fails(astronaut, challenge, face_tools) -> None:
    img = astronaut[0]
    frames, ts = _clip(*astronaut, challenge, seed=5)
    h, w = img.shape[:2]
    jumped = []
    for i, f in enumerate(frames):  # halfway through, the face is elsewhere: a cut
        canvas = np.full((h, w + 200, 3), 127, np.uint8)
        x0 = 0 if i < len(frames) // 2 else 200
        canvas[:, x0:x0 + w] = f
        jumped.append(canvas)
    rep = _verify(jumped, ts, challenge, face_tools)
    assert rep.decision == "spoof"
    assert "face jumps between frames" in rep.reasons
    assert rep.continuity["jump_frames"] == [len(frames) // 2]


def test_whole_check_pools_the_passive_tests(astronaut, challenge, face_tools) -> None:
    from facelive.pipeline import Pipeline

    frames, ts = _clip(*astronaut, challenge, seed=6)
    params = VerifyParams(passive_frames=3)
    for threshold, decision in ((0.0, "live"), (1.0, "spoof")):
        with Pipeline(threshold=threshold) as pipe:
            rep = _verify(frames, ts, challenge, face_tools, pipeline=pipe, params=params)
            tests = set(pipe.test_names)
        p = rep.passive
        assert p["required"] and p["status"] == "ok" and p["pooling"] == "median"
        assert p["source"].startswith("dark steps")
        assert len(p["frames_scored"]) == 3
        lat = rep.colour["latency_ms"]
        assert all(challenge.colour_at(ts[i] - lat) == PALETTE["dark"]
                   for i in p["frames_scored"])
        assert p["score"] == pytest.approx(float(np.median(p["frame_scores"])), abs=1e-4)
        assert set(p["tests"]) == tests and p["threshold"] == threshold
        assert rep.colour["passed"]
        # live only when every required check passes, the passive tests included
        assert rep.decision == decision
        assert rep.reasons == ([] if decision == "live" else ["passive tests say spoof"])
        assert rep.scores()["passive"] == p["score"]
        assert set(rep.scores()) >= {"colour", "passive", "planarity"} | {
            f"passive.{t}" for t in tests}


def test_steady_mode_is_weak(astronaut, face_tools) -> None:
    ch = new_challenge(mode="steady")
    frames, ts = _clip(*astronaut, ch, seed=8)
    rep = _verify(frames, ts, ch, face_tools)
    assert rep.weak and rep.mode == "steady"
    assert rep.colour["status"] == "not_applicable" and not rep.colour["required"]
    assert rep.decision == "live"  # nothing in the pixels is checked: weaker by design


def test_bytes_frames_are_hashed(astronaut, challenge, face_tools) -> None:
    import hashlib

    frames, ts = _clip(*astronaut, challenge, seed=9)
    blobs = [cv2.imencode(".jpg", f)[1].tobytes() for f in frames]
    rep = _verify(blobs, ts, challenge, face_tools)
    assert rep.frames_sha256 == [hashlib.sha256(b).hexdigest() for b in blobs]
    assert rep.colour["passed"]


def test_bad_input_raises(astronaut, challenge, face_tools) -> None:
    frames, ts = _clip(*astronaut, challenge, seed=10)
    with pytest.raises(ValueError, match="timestamps"):
        _verify(frames, ts[:-1], challenge, face_tools)
    with pytest.raises(ValueError):
        _verify([], [], challenge, face_tools)


# -- timing ------------------------------------------------------------------------------------

def _stamps(ch: Challenge, fps: float = 10.0, end: float | None = None) -> list[float]:
    end = ch.capture_ms if end is None else end
    return [round(t, 1) for t in np.arange(0.0, end, 1000.0 / fps)]


def test_timing_accepts_a_plausible_clip(challenge) -> None:
    r = check_timing(_stamps(challenge), challenge, VerifyParams())
    assert r["passed"], r["problems"]
    assert r["fps"] == pytest.approx(10.0, abs=0.1)


@pytest.mark.parametrize("case,needle", [
    ("few", "frames (at least"),
    ("backwards", "not increasing"),
    ("gap", "a gap of"),
    ("fast", "fps"),
    ("short", "before the sequence's end"),
    ("late start", "first frame at"),
    ("long", "past"),
    ("clock", "passed on the server"),
])
def test_timing_refuses(challenge, case: str, needle: str) -> None:
    p = VerifyParams()
    ts = _stamps(challenge)
    elapsed = None
    if case == "few":
        ts = ts[:5]
    elif case == "backwards":
        ts[10], ts[11] = ts[11], ts[10]
    elif case == "gap":
        ts = ts[:20] + ts[25:]
    elif case == "fast":
        ts = _stamps(challenge, fps=100.0)
    elif case == "short":
        ts = _stamps(challenge, end=challenge.total_ms - 600)
    elif case == "late start":
        ts = [t + 400 for t in ts]
    elif case == "long":
        ts = _stamps(challenge, fps=5.0, end=challenge.capture_ms + 3000)
    elif case == "clock":
        elapsed = challenge.capture_ms / 2
    r = check_timing(ts, challenge, p, elapsed_ms=elapsed)
    assert not r["passed"]
    assert any(needle in m for m in r["problems"]), r["problems"]


# -- geometry helpers --------------------------------------------------------------------------

def _face_points(rng: np.random.Generator) -> np.ndarray:
    pts = rng.uniform(-1, 1, (468, 3)).astype(np.float64)
    pts[33] = (-0.6, -0.3, 0.0)
    pts[263] = (0.6, -0.3, 0.0)
    return pts * 50 + np.array([160, 120, 0])


def test_homography_residual_is_zero_for_a_plane_and_not_for_depth(rng) -> None:
    a = _face_points(rng)
    a[:, 2] = 0.0  # flat
    h = np.array([[1.05, 0.08, 3.0], [-0.04, 0.97, -2.0], [2e-4, 1e-4, 1.0]])
    ph = np.c_[a[:, :2], np.ones(len(a))] @ h.T
    b = a.copy()
    b[:, :2] = ph[:, :2] / ph[:, 2:]
    res, motion = homography_residual(a, b)
    assert res < 1e-6 and motion > 0.01
    # a 3D point cloud rotated about the vertical axis is no homography
    c = _face_points(rng)
    c[:, 2] = rng.uniform(-40, 40, len(c))
    th = np.deg2rad(15)
    centre = c.mean(0)
    x = (c - centre) @ np.array([[np.cos(th), 0, np.sin(th)], [0, 1, 0],
                                 [-np.sin(th), 0, np.cos(th)]]).T + centre
    res3d, _ = homography_residual(c, x)
    assert res3d > 0.05


def test_shape_distance_ignores_similarity_transforms(rng) -> None:
    a = _face_points(rng)
    th = np.deg2rad(20)
    rot = np.array([[np.cos(th), -np.sin(th)], [np.sin(th), np.cos(th)]])
    b = a.copy()
    b[:, :2] = 1.3 * a[:, :2] @ rot.T + np.array([40.0, -10.0])
    assert shape_distance(a, b) < 1e-9
    assert shape_distance(a, _face_points(np.random.default_rng(99))) > 0.1


# -- research data -----------------------------------------------------------------------------

@pytest.mark.data
def test_replay_attack_live_frames_pass_the_whole_check(shared_data, face_tools) -> None:
    from facelive.pipeline import Pipeline

    det, _ = face_tools
    videos = sorted((shared_data / "replay-attack" / "devel" / "real").glob("*"))[:12]
    ch = new_challenge(rng=random.Random(21))
    passed = 0
    with Pipeline() as pipe:
        for v in videos:
            img = cv2.imread(str(sorted(v.glob("*.jpg"))[2]))
            box = det.detect(img)
            base = pipe.check_frame(img)
            if box is None or base.score is None or base.score < (pipe.threshold + 1) / 2:
                continue  # a frame the passive tests already doubt is no test of the challenge
            frames, ts = _clip(*_source(img, face_tools), ch, seed=len(v.name),
                               latency_ms=120.0, strength=0.3)
            rep = _verify(frames, ts, ch, face_tools, pipeline=pipe)
            assert rep.decision == "live", (v.name, rep.reasons, rep.colour["score"])
            # the same frames re-sent against another session's challenge fail
            other = new_challenge(rng=random.Random(22))
            keep = [i for i, t in enumerate(ts) if t <= other.capture_ms]
            rep2 = _verify([frames[i] for i in keep], [ts[i] for i in keep], other, face_tools)
            assert "colour response does not follow the challenge" in rep2.reasons
            passed += 1
            if passed == 2:
                break
    assert passed == 2
