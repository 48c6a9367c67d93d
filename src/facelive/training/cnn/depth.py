"""Pseudo-depth maps: the auxiliary target of the CNN.

Liu, Jourabloo & Liu, "Learning Deep Models for Face Anti-Spoofing: Binary or Auxiliary
Supervision", CVPR 2018: besides the live/attack label, the network regresses a face depth map,
the face's 3D shape for a live face and a flat (all-zero) map for a print or a screen, which
pushes it towards the geometry of the face rather than the capture domain's colours and noise.
Their targets come from a fitted 3D face model; ours from MediaPipe Face Mesh
(:class:`facelive.face.mesh.FaceMesher`) run on each live training crop, rasterised with the mesh's
triangles (nearer triangles painted last) and normalised to ``[0, 1]`` per face (1 nearest).

Only training uses this module (the shipped network's graph has no depth output). The maps are
derived from research-only images: they live in the git-ignored disk cache, never in the repo.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

DEPTH_SIZE = 32
"""Side of the stored depth maps (pixels); training resamples them to the depth head's grid."""


def depth_map(vertices: np.ndarray, crop_size: int, size: int = DEPTH_SIZE) -> np.ndarray:
    """``(size, size)`` float32 depth map of a face mesh given in a ``crop_size`` crop's pixels.

    Depth is ``-z`` (MediaPipe's ``z`` is negative towards the camera) scaled to ``[0, 1]`` over
    the face; every triangle is filled with its mean depth, far ones first; 0 off the face.
    """
    import cv2

    from facelive.face.mesh import mesh_triangles

    v = np.asarray(vertices, np.float64)
    d = -v[:, 2]
    span = float(d.max() - d.min())
    d = (d - d.min()) / span if span > 0 else np.zeros_like(d)
    render = 4 * size  # render finer, then area-average: smooth edges
    xy = np.round(v[:, :2] * (render / float(crop_size)) * 16).astype(np.int32)  # 4 bits subpixel
    tris = mesh_triangles()
    tri_depth = d[tris].mean(axis=1)
    out = np.zeros((render, render), np.float32)
    for t in np.argsort(tri_depth):
        cv2.fillConvexPoly(out, xy[tris[t]], float(tri_depth[t]), lineType=cv2.LINE_8, shift=4)
    return cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)


def depth_targets(crops: np.ndarray, labels: np.ndarray, size: int = DEPTH_SIZE,
                  progress: Callable[[int, int], None] | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Depth maps ``(N, size, size)`` of uint8 BGR face crops and a validity mask ``(N,)``.

    Attacks (label 0) get a flat zero map; live crops the Face Mesh depth of :func:`depth_map`,
    invalid (no depth loss) where Face Mesh finds no face.
    """
    from facelive.face.mesh import FaceMesher, MeshNotFound

    n = len(crops)
    maps = np.zeros((n, size, size), np.float32)
    valid = np.ones(n, bool)
    with FaceMesher() as mesher:
        for i in range(n):
            if labels[i] == 1:
                try:
                    maps[i] = depth_map(mesher.reconstruct_crop(crops[i]), crops.shape[1], size)
                except MeshNotFound:
                    valid[i] = False
            if progress is not None:
                progress(i + 1, n)
    return maps, valid
