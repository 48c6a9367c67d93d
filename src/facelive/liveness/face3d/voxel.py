"""Voxelising a reconstructed face mesh for a VoxNet-style 3D CNN.

VoxNet (Maturana & Scherer, IROS 2015) classifies a 32^3 occupancy grid. Here the grid holds the
face surface: the mesh's triangles are sampled on a regular barycentric pattern, the samples are
centred on the mesh's centroid and scaled by the face's half-width/height (so the grid is invariant
to where the face is and how large it is, but keeps its depth-to-width ratio), and binned into
``size^3`` voxels with two channels:

0. occupancy: 1 where the surface passes through the voxel;
1. shading: mean grey level (0-1) of the image under the surface in that voxel, interpolated from
   the vertices' grey levels (a real face's shading follows its 3D shape; a print or a screen
   shows shading that does not).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["CHANNELS", "normalise_vertices", "surface_samples", "voxelise", "face_voxels"]

CHANNELS = ("occupancy", "shading")
GRID_FILL = 0.9
"""The face's half-extent maps to this fraction of the grid's half-side (a margin for rotation)."""


def normalise_vertices(vertices: np.ndarray) -> np.ndarray:
    """Centre ``(V, 3)`` vertices on their centroid and divide by the larger of the x and y
    half-extents (z scaled alike): the face spans 2 units on its wider image axis, about
    [-1, 1] (the centroid is not the box centre; :data:`GRID_FILL` leaves the margin)."""
    v = np.asarray(vertices, np.float64)
    if v.ndim != 2 or v.shape[1] != 3 or len(v) < 3 or not np.all(np.isfinite(v)):
        raise ValueError(f"expected finite (V, 3) vertices, got {v.shape}")
    v = v - v.mean(axis=0)
    half = max(np.ptp(v[:, 0]), np.ptp(v[:, 1])) / 2.0
    if half <= 0:
        raise ValueError("degenerate mesh: zero extent")
    return v / half


def _barycentric(n: int) -> np.ndarray:
    """Barycentric weights ``(P, 3)`` of a regular pattern with ``n`` steps per triangle edge."""
    w = [(i, j, n - i - j) for i in range(n + 1) for j in range(n + 1 - i)]
    return np.asarray(w, np.float64) / n


def surface_samples(vertices: np.ndarray, values: np.ndarray, triangles: np.ndarray,
                    steps: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Points on every triangle (``steps`` subdivisions per edge) and their interpolated values."""
    bary = _barycentric(steps)  # (P, 3)
    pts = np.matmul(bary, vertices[triangles])  # (P, 3) @ (T, 3 corners, 3 xyz) -> (T, P, 3)
    vals = values[triangles] @ bary.T  # (T, P)
    return pts.reshape(-1, 3), vals.reshape(-1)


def voxelise(points: np.ndarray, values: np.ndarray, size: int = 32) -> np.ndarray:
    """Bin normalised points (about [-1, 1]) into a ``(2, size, size, size)`` float32 grid.

    Axis order ``(channel, z, y, x)``. Points that fall outside the grid are dropped.
    """
    idx = np.floor((points * GRID_FILL + 1.0) / 2.0 * size).astype(np.int64)
    inside = np.all((idx >= 0) & (idx < size), axis=1)
    idx, vals = idx[inside], values[inside]
    flat = (idx[:, 2] * size + idx[:, 1]) * size + idx[:, 0]
    n = size**3
    count = np.bincount(flat, minlength=n)
    total = np.bincount(flat, weights=vals, minlength=n)
    grid = np.zeros((2, n), np.float32)
    hit = count > 0
    grid[0, hit] = 1.0
    grid[1, hit] = total[hit] / count[hit]
    return grid.reshape(2, size, size, size)


def face_voxels(vertices: np.ndarray, intensity: np.ndarray, triangles: np.ndarray,
                size: int = 32, steps: int = 4,
                augment: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]
                | None = None) -> np.ndarray:
    """The VoxNet input of one face: normalise, sample the surface, voxelise.

    ``augment`` (training only) maps the normalised vertices and their grey levels to perturbed
    copies before the surface is sampled.
    """
    v = normalise_vertices(vertices)
    vals = np.asarray(intensity, np.float64)
    if vals.shape != (len(v),):
        raise ValueError(f"expected {len(v)} vertex intensities, got {vals.shape}")
    if augment is not None:
        v, vals = augment(v, vals)
    pts, pv = surface_samples(v, vals, triangles, steps)
    return voxelise(pts, pv, size)
