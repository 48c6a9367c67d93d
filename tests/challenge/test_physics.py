"""The physical checks' building blocks on controlled inputs: the screen share recovered from a
diffuse surface's chromaticity, Lambert's cosine from the mesh's normals, optical flow that a
homography explains (a plane) or not (a non-rigid motion), and the falloff of a whole-frame tint
against a face-only one."""

from __future__ import annotations

import random
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelive.challenge import physics
from facelive.challenge.sequence import new_challenge, srgb_to_linear
from facelive.challenge.simulate import face_mask, tint_frame
from facelive.challenge.verify import region_means

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def astronaut():
    from facelive.face.detection import FaceDetector
    from facelive.face.mesh import FaceMesher

    img = cv2.imread(str(REPO / "examples" / "astronaut.jpg"))
    with FaceDetector() as det, FaceMesher() as mesher:
        box = det.detect(img)
        verts, _ = mesher.reconstruct(img, box)
        return img, box, mesher.to_image(verts, img.shape, box)


def _screen(n: int, rng: np.random.Generator) -> np.ndarray:
    ch = new_challenge(rng=random.Random(int(rng.integers(0, 1000))))
    cols = [np.array([srgb_to_linear(v) for v in s.colour]) for s in ch.steps]
    return np.array([cols[i % len(cols)] for i in range(n)])


def test_screen_share_is_the_screens_light_over_the_ambient(rng) -> None:
    x = _screen(60, rng)
    rho = np.array([0.55, 0.4, 0.3])
    for share in (0.05, 0.3):
        y = rho * (1.0 + share * x) * rng.uniform(0.8, 1.2, (60, 1))  # auto exposure cancels
        y += rng.normal(0, 1e-4, y.shape)
        est = physics.screen_share(y, x)
        assert est == pytest.approx(share, rel=0.3)
    assert physics.screen_share(np.tile(rho, (60, 1)), x) == pytest.approx(0.0, abs=1e-6)
    grey = np.repeat(x[:, :1], 3, axis=1)  # no chromatic change on the screen
    assert physics.screen_share(rho * (1 + 0.3 * grey), grey) is None


def test_lambert_cosine_from_the_mesh(astronaut) -> None:
    _, _, verts = astronaut
    cos = physics.facing(verts)
    assert cos.shape == (468,) and np.all((cos >= 0) & (cos <= 1))
    assert min(cos[4], cos[10], cos[151]) > 0.9  # the nose and the forehead face the camera
    assert cos[234] < 0.4 and cos[454] < 0.4  # the face's sides turn away


def test_flow_of_a_plane_is_a_homography_and_a_bent_face_is_not(astronaut) -> None:
    img, box, verts = astronaut
    h, w = img.shape[:2]
    hom = np.array([[1.01, 0.01, 1.3], [-0.008, 0.995, -0.7], [1e-5, -1e-5, 1.0]])
    plane = cv2.warpPerspective(img, hom, (w, h), borderMode=cv2.BORDER_REPLICATE)
    pts = verts[:, :2]
    assert physics.flow_residual(img, plane, pts, sigma=5.0) < 0.12
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    bump = 3.0 * np.sin(xx / 25.0) * np.exp(-((xx - box.x - box.w / 2) ** 2
                                            + (yy - box.y - box.h / 2) ** 2) / (box.w ** 2))
    bent = cv2.remap(img, xx + bump, yy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert physics.flow_residual(img, bent, pts, sigma=5.0) > 0.3


def test_whole_frame_tint_fails_the_falloff(astronaut) -> None:
    img, box, _ = astronaut
    x = _screen(40, np.random.default_rng(1))
    masks = {"face": face_mask(img.shape, box, background=0.05),
             "whole": np.ones(img.shape[:2], np.float32)}
    out = {}
    for name, m in masks.items():
        frames = [tint_frame(img, m, c, 0.35) for c in x]
        means = np.array([region_means(f, box)[0] for f in frames])
        out[name] = physics.screen_falloff(frames, [box] * len(frames), means, x)
    assert out["face"]["passed"] and out["face"]["ratio"] < 0.2
    assert out["whole"]["passed"] is False and out["whole"]["ratio"] > 0.8
    tight = img[box.y:box.y + box.h, box.x:box.x + box.w]  # no room behind: not measured
    from facelive.types import FaceBox

    inner = FaceBox(0, 0, tight.shape[1], tight.shape[0], 1.0)
    res = physics.screen_falloff([tight] * 10, [inner] * 10, np.ones((10, 3)), x[:10])
    assert res["passed"] is None and res["status"] == "too_little_background"
