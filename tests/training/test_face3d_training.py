"""Training the 3D test: VoxNet shapes, ONNX export agreement, augmentation, a tiny fit."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="needs the [train] extra (torch)")

from facelive.face.mesh import MESH_VERTICES  # noqa: E402
from facelive.liveness.face3d.voxel import normalise_vertices  # noqa: E402
from facelive.training.face3d.train import (  # noqa: E402
    GRID,
    augment_mesh,
    fit_voxnet,
    make_grids,
    predict,
)
from facelive.training.face3d.voxnet import VoxNet, export_onnx  # noqa: E402


def _meshes(rng, n, depth):
    """Synthetic 'faces': a paraboloid patch of the given depth over a jittered grid."""
    u = rng.uniform(-1, 1, (n, MESH_VERTICES, 2))
    z = depth[:, None] * (1 - (u**2).sum(-1))
    v = np.concatenate([u, z[..., None]], axis=-1) * 100 + 128
    g = np.clip(0.5 + 0.3 * u[..., 0], 0, 1)
    return v.astype(np.float32), g.astype(np.float32)


def test_voxnet_shapes_and_onnx_agreement():
    net = VoxNet()
    out = net.eval()(torch.zeros(2, 2, GRID, GRID, GRID))
    assert out.shape == (2, 2)
    data, diff = export_onnx(net)
    assert diff < 1e-5 and len(data) < 5e6


def test_augmentation_keeps_the_face_in_the_grid(rng):
    """Rotated, scaled and mirrored faces still fall (almost) entirely inside the grid."""
    from facelive.face.mesh import mesh_triangles
    from facelive.liveness.face3d.voxel import GRID_FILL, surface_samples

    v, g = _meshes(rng, 1, np.array([0.5]))
    n = normalise_vertices(v[0])
    tri = mesh_triangles()
    dropped = []
    for _ in range(50):
        a, ga = augment_mesh(n, g[0].astype(float), rng)
        assert 0 < ga.min() and ga.max() <= 1
        pts, _ = surface_samples(a, ga, tri, 4)
        dropped.append(np.mean(np.any(np.abs(pts * GRID_FILL) >= 1.0, axis=1)))
    assert np.mean(dropped) < 0.01 and np.max(dropped) < 0.05


@pytest.mark.slow
def test_fit_separates_flat_from_deep_meshes(rng):
    """A few hundred steps tell a flat surface (a print) from a deep one (a face)."""
    n = 64
    depth = np.r_[np.full(n // 2, 0.02), np.full(n // 2, 0.6)]
    v, g = _meshes(rng, n, depth)
    y = (depth > 0.1).astype(int)
    net = fit_voxnet(v, g, y, y.astype(str), epochs=3, per_epoch=256, batch=32, lr=3e-3)
    ok = np.ones(n, bool)
    ok[0] = False
    p = predict(net, v, g, ok)
    assert np.isnan(p[0]) and np.all((p[1:] >= 0) & (p[1:] <= 1))
    assert p[1:][y[1:] == 1].min() > p[1:][y[1:] == 0].max()


def test_make_grids_is_deterministic_without_rng(rng):
    v, g = _meshes(rng, 2, np.array([0.3, 0.3]))
    a = make_grids(v, g)
    np.testing.assert_array_equal(a, make_grids(v, g))
    assert a.shape == (2, 2, GRID, GRID, GRID)
