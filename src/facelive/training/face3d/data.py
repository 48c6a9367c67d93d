"""Face meshes of a database's frames, for training the 3D test (cached on disk, never committed).

Every frame goes through the same steps as at run time
(:class:`facelive.liveness.face3d.Face3DTest`): BlazeFace detection, the square crop, MediaPipe Face
Mesh, and the grey level under each vertex. The meshes (468 x 3 vertices plus 468 grey levels per
frame, about 7.5 kB) are cached in ``$FACELIVE_CACHE`` (default ``~/.cache/facelive``) under a key
that hashes the sample keys, :data:`MESH_RECIPE` and the detector's and mesher's settings (bump the
recipe when the reconstruction code changes what it returns), so augmentation and voxelisation can
be redone at training time without MediaPipe.
Works without torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facelive.arraycache import cached_arrays, digest
from facelive.datasets import Sample
from facelive.errors import FaceliveError
from facelive.face.mesh import MESH_VERTICES

MESH_RECIPE = "1"
"""Bump when detection, cropping or reconstruction changes what :func:`extract_meshes` returns
(the cache key includes it and the mesher's settings)."""


def _recipe() -> str:
    from facelive.face.detection import DEFAULT_MIN_CONFIDENCE, FaceDetector
    from facelive.face.mesh import FaceMesher

    m = FaceMesher.__init__.__defaults__
    return f"{MESH_RECIPE}/{DEFAULT_MIN_CONFIDENCE}/{FaceDetector.detect_side}/{m}"


def extract_meshes(samples: Sequence[Sample], *, name: str, use_cache: bool = True
                   ) -> dict[str, np.ndarray]:
    """``vertices`` (N, 468, 3), ``intensity`` (N, 468) and ``status`` (N,) for ``samples``.

    ``status``: 0 ok, 1 no face (BlazeFace), 2 no mesh (Face Mesh), 3 unreadable image. Rows
    that are not ok hold NaN.
    """
    from rich.progress import Progress

    from facelive.face.detection import FaceDetector
    from facelive.face.mesh import FaceMesher, MeshNotFound

    def compute() -> dict[str, np.ndarray]:
        n = len(samples)
        verts = np.full((n, MESH_VERTICES, 3), np.nan, np.float32)
        inten = np.full((n, MESH_VERTICES), np.nan, np.float32)
        status = np.zeros(n, np.int8)
        with FaceDetector() as det, FaceMesher() as mesher, Progress() as progress:
            task = progress.add_task(f"face meshes of {name}", total=n)
            for i, s in enumerate(samples):
                try:
                    img = s.load()
                except FaceliveError:  # Sample.load's errors: unreadable or missing image
                    status[i] = 3
                    progress.advance(task)
                    continue
                box = det.detect(img)
                if box is None:
                    status[i] = 1
                else:
                    try:
                        verts[i], inten[i] = mesher.shaded_mesh(img, box)
                    except MeshNotFound:
                        status[i] = 2
                progress.advance(task)
        return {"vertices": verts, "intensity": inten, "status": status}

    keys = "\n".join(s.key for s in samples)
    key = f"meshes-{name}-{digest([keys, _recipe()])}"
    return cached_arrays(key, compute, use_cache=use_cache)


def shipped_face3d_scores(vertices: np.ndarray, intensity: np.ndarray, ok: np.ndarray
                          ) -> np.ndarray:
    """The shipped (or ``--models``) face3d model's P(live) on cached meshes (NaN where
    ``ok`` is false): the run-time voxelisation and ONNX graph, batched."""
    from facelive.face.mesh import mesh_triangles
    from facelive.liveness.face3d import Face3DTest
    from facelive.liveness.face3d.voxel import face_voxels

    test = Face3DTest()
    tri = mesh_triangles()
    out = np.full(len(ok), np.nan)
    idx = np.flatnonzero(ok)
    try:
        for i in range(0, len(idx), 64):
            j = idx[i:i + 64]
            grids = np.stack([face_voxels(vertices[k], intensity[k], tri, test.grid, test.steps)
                              for k in j])
            out[j] = test.predict_voxels(grids)
    finally:
        test.close()
    return out
