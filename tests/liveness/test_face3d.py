"""The 3D test: face mesh reconstruction, voxelisation (known values), the shipped VoxNet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facelive.face.detection import FaceDetector
from facelive.face.mesh import MESH_VERTICES, FaceMesher, MeshNotFound, mesh_triangles
from facelive.imageio import load_image
from facelive.liveness import Frame
from facelive.liveness.face3d import Face3DTest
from facelive.liveness.face3d.voxel import (
    face_voxels,
    normalise_vertices,
    surface_samples,
    voxelise,
)
from facelive.liveness.registry import available_tests
from facelive.types import FaceBox

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "astronaut.jpg"


# --- voxelisation --------------------------------------------------------------------------
def test_normalise_centres_and_scales():
    v = np.array([[0, 0, 0], [4, 0, 1], [4, 2, 0], [0, 2, -1]], float) * 3 + 7
    n = normalise_vertices(v)
    np.testing.assert_allclose(n.mean(axis=0), 0, atol=1e-12)
    assert np.ptp(n[:, 0]) == pytest.approx(2.0)  # the wider axis spans [-1, 1]
    assert np.ptp(n[:, 1]) == pytest.approx(1.0)  # aspect and depth ratio kept
    assert np.ptp(n[:, 2]) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [np.zeros((5, 2)), np.zeros((2, 3)), np.full((4, 3), np.nan),
                                 np.ones((4, 3))])
def test_normalise_rejects_degenerate_meshes(bad):
    with pytest.raises(ValueError):
        normalise_vertices(bad)


def test_surface_samples_interpolate_linearly():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], float)
    vals = np.array([0.0, 1.0, 2.0])  # f(x, y) = x + 2y, linear
    pts, pv = surface_samples(v, vals, np.array([[0, 1, 2]]), steps=4)
    assert len(pts) == 15  # (4 + 1)(4 + 2) / 2 points on a 4-step pattern
    assert np.all(pts[:, :2] >= -1e-12) and np.all(pts[:, 0] + pts[:, 1] <= 1 + 1e-12)
    np.testing.assert_allclose(pv, pts[:, 0] + 2 * pts[:, 1], atol=1e-12)


def test_voxelise_known_cells():
    # with GRID_FILL 0.9 and size 10: index = floor((0.9 p + 1) / 2 * 10)
    pts = np.array([[0.0, 0.0, 0.0], [0.01, 0.0, 0.0], [-1.0, 1.0, 0.5], [5.0, 0.0, 0.0]])
    vals = np.array([0.2, 0.4, 0.9, 1.0])
    g = voxelise(pts, vals, size=10)
    assert g.shape == (2, 10, 10, 10) and g.dtype == np.float32
    assert g[0].sum() == 2  # two cells hit; the point at x = 5 lies outside and is dropped
    assert g[0, 5, 5, 5] == 1 and g[1, 5, 5, 5] == pytest.approx(0.3)  # mean of 0.2 and 0.4
    assert g[0, 7, 9, 0] == 1 and g[1, 7, 9, 0] == pytest.approx(0.9)  # (z, y, x) order


def test_face_voxels_ignore_position_and_size(rng):
    tri = mesh_triangles()
    v = rng.normal(size=(MESH_VERTICES, 3))
    g = rng.random(MESH_VERTICES)
    a = face_voxels(v, g, tri)
    b = face_voxels(v * 2.5 + np.array([100.0, -40.0, 3.0]), g, tri)
    np.testing.assert_array_equal(a, b)
    assert a[0].sum() > 100 and 0 <= a[1].min() and a[1].max() <= 1
    with pytest.raises(ValueError):
        face_voxels(v, g[:-1], tri)


def test_mesh_triangles_are_the_tessellation():
    from collections import Counter

    tri = mesh_triangles()
    assert tri.shape == (854, 3) and tri.min() >= 0 and tri.max() < MESH_VERTICES
    assert len({tuple(t) for t in tri}) == len(tri)
    edges = Counter(tuple(sorted(e)) for t in tri for e in ((t[0], t[1]), (t[1], t[2]),
                                                           (t[0], t[2])))
    # a closed-off surface: every edge borders one or two faces, except around the two
    # 3-cliques of the edge graph that are not faces (documented in mesh_triangles)
    over = {e for e, n in edges.items() if n > 2}
    assert len(over) == 6 and all(n <= 3 for n in edges.values())


# --- reconstruction and the test ----------------------------------------------------------
@pytest.fixture(scope="module")
def astronaut() -> tuple[np.ndarray, FaceBox]:
    img = load_image(EXAMPLE)
    with FaceDetector() as det:
        box = det.detect(img)
    assert box is not None
    return img, box


@pytest.fixture(scope="module")
def face3d() -> Face3DTest:
    t = Face3DTest()
    yield t
    t.close()


def test_mesh_of_a_real_face(astronaut):
    img, box = astronaut
    with FaceMesher() as m:
        v, crop = m.reconstruct(img, box)
        _, inten = m.shaded_mesh(img, box)
    assert v.shape == (MESH_VERTICES, 3) and crop.shape == (256, 256, 3)
    assert np.all((v[:, :2] >= 0) & (v[:, :2] < 256))
    # the face fills a good part of the crop (context 1.6) and has depth
    assert 80 < np.ptp(v[:, 0]) < 256 and np.ptp(v[:, 2]) > 20
    assert inten.shape == (MESH_VERTICES,) and 0 <= inten.min() and inten.max() <= 1


def test_no_mesh_in_noise(rng):
    noise = rng.integers(0, 256, (256, 256, 3), dtype=np.uint8)
    with FaceMesher() as m, pytest.raises(MeshNotFound):
        m.reconstruct_crop(noise)


def test_face3d_scores_a_face(face3d, astronaut):
    img, box = astronaut
    frame = Frame(img, face=box)
    res = face3d.score(frame)
    assert res.status == "ok" and 0.0 <= res.score <= 1.0
    assert frame.landmarks is not None and frame.landmarks.shape == (MESH_VERTICES, 3)
    lm = frame.landmarks  # in the image's pixels: around the detected face box
    assert box.x - 0.2 * box.w < np.median(lm[:, 0]) < box.x + 1.2 * box.w
    assert box.y - 0.2 * box.h < np.median(lm[:, 1]) < box.y + 1.2 * box.h
    assert np.ptp(lm[:, 0]) > 0.6 * box.w
    info = face3d.info()
    assert info["name"] == "face3d" and info["needs_face"] and 0 < info["threshold"] < 1


def test_face3d_never_guesses_without_a_face(face3d, rng):
    noise = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    assert face3d.score(Frame(noise, face=None)).status == "no_face"
    res = face3d.score(Frame(noise, face=FaceBox(100, 60, 120, 120, 0.9)))  # box on noise
    assert res.status == "no_face" and res.score is None and "Face Mesh" in res.error


def test_face3d_checks_grid_shape(face3d):
    with pytest.raises(ValueError):
        face3d.predict_voxels(np.zeros((1, 1, 32, 32, 32), np.float32))
    p = face3d.predict_voxels(np.zeros((3, 2, 32, 32, 32), np.float32))
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1))


def test_face3d_is_a_builtin_test():
    assert "face3d" in available_tests()


def test_bad_model_files_are_refused(tmp_path):
    from facelive import modelstore
    from facelive.errors import ModelError

    card = modelstore.read_json("face3d.json")
    modelstore.write_bytes("face3d.onnx", modelstore.read_bytes("face3d.onnx"), tmp_path)
    modelstore.write_json("face3d.json", {k: v for k, v in card.items() if k != "grid"}, tmp_path)
    with pytest.raises(ModelError, match="lacks grid"):
        Face3DTest(tmp_path / "face3d.onnx")
    modelstore.write_json("face3d.json", card, tmp_path)
    modelstore.write_bytes("face3d.onnx", b"not an onnx graph", tmp_path)  # valid checksum
    with pytest.raises(ModelError, match="cannot load"):
        Face3DTest(tmp_path / "face3d.onnx")


def test_real_frames_rank_live_above_attacks(face3d, shared_data):
    """Replay-Attack devel (the threshold's own data): live frames score higher on average."""
    root = shared_data / "replay-attack" / "devel"
    live = sorted((root / "real").glob("*/frame_*.jpg"))[::30][:10]
    attack = sorted((root / "attack").glob("*/*/frame_*.jpg"))[::150][:10]
    scores: dict[str, list[float]] = {"live": [], "attack": []}
    with FaceDetector() as det:
        for kind, paths in (("live", live), ("attack", attack)):
            for p in paths:
                img = load_image(p)
                res = face3d.score(Frame(img, det.detect(img)))
                if res.status == "ok":
                    scores[kind].append(res.score)
    assert len(scores["live"]) >= 8 and len(scores["attack"]) >= 8
    assert np.mean(scores["live"]) > np.mean(scores["attack"]) + 0.2


def test_batched_scores_from_cached_meshes_match_the_test(face3d, astronaut):
    """The fusion and the protocols score face3d from cached meshes in batches
    (facelive.training.face3d.data.shipped_face3d_scores); that must equal the run-time test."""
    from facelive.training.face3d.data import shipped_face3d_scores

    img, box = astronaut
    with FaceMesher() as m:
        v, g = m.shaded_mesh(img, box)
    verts = np.stack([v, v, np.full_like(v, np.nan)])
    inten = np.stack([g, g, np.full_like(g, np.nan)])
    got = shipped_face3d_scores(verts, inten, np.array([True, True, False]))
    want = face3d.score_frame(Frame(img, face=box))
    assert got[0] == pytest.approx(want, abs=1e-6) and got[1] == got[0]
    assert np.isnan(got[2])
