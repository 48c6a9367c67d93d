"""The 3D liveness test: single-image face reconstruction, voxelised, classified by a VoxNet.

The 2019 thesis reconstructed the face with VRN (5.4 s per image) and trained a VoxNet that never
learned. Here: MediaPipe Face Mesh reconstructs 468 3D vertices from the face crop
(:mod:`facelive.face.mesh`, about 8 ms), the surface is voxelised into a 32^3 grid with an
occupancy and a shading channel (:mod:`facelive.liveness.face3d.voxel`), and a VoxNet-style 3D CNN
(Maturana & Scherer, IROS 2015; :mod:`facelive.training.face3d.voxnet`) outputs
``[P(attack), P(live)]`` through ONNX Runtime.

A face box in which Face Mesh finds no face gives status ``no_face`` (never a guess).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from facelive import modelstore
from facelive.errors import ModelError
from facelive.face.mesh import FaceMesher, MeshNotFound, mesh_triangles
from facelive.liveness.base import Frame, LivenessTest, NoFaceError
from facelive.liveness.face3d.voxel import face_voxels

MODEL_FILE = "face3d.onnx"
CARD_FILE = "face3d.json"
_CARD_KEYS = ("grid", "steps", "context", "crop_size", "threshold", "version")


class Face3DTest(LivenessTest):
    """P(live) from the reconstructed 3D face surface (ONNX Runtime, CPU)."""

    name = "face3d"
    needs_face = True
    needs_landmarks = True

    def __init__(self, model_path: Path | None = None, threads: int = 1) -> None:
        """Load the VoxNet (``model_path``: an ``.onnx`` file with its ``.json`` card beside it,
        both in that folder's ``SHA256SUMS``; default: the shipped model)."""
        self._session, self.card = modelstore.load_onnx(model_path, MODEL_FILE, CARD_FILE,
                                                        _CARD_KEYS, threads)
        self._input = self._session.get_inputs()[0].name
        try:
            self.grid = int(self.card["grid"])
            self.steps = int(self.card["steps"])
            self.threshold = float(self.card["threshold"])
            self.version = str(self.card["version"])
            self._mesher = FaceMesher(context=float(self.card["context"]),
                                      size=int(self.card["crop_size"]))
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{CARD_FILE}: bad value: {exc}") from None
        if self.grid < 8 or self.steps < 1:
            raise ModelError(f"{CARD_FILE}: grid {self.grid} / steps {self.steps} out of range")
        self._triangles = mesh_triangles()
        self._lock = threading.Lock()

    def voxels(self, frame: Frame) -> np.ndarray:
        """The VoxNet input ``(2, G, G, G)`` of ``frame``'s face; sets ``frame.landmarks`` (the
        mesh in the image's pixel coordinates)."""
        if frame.face is None:
            raise NoFaceError("no face box")
        try:
            vertices, intensity = self._mesher.shaded_mesh(frame.image, frame.face)
        except MeshNotFound as exc:
            raise NoFaceError(str(exc)) from None
        frame.landmarks = self._mesher.to_image(vertices, frame.image.shape, frame.face)
        return face_voxels(vertices, intensity, self._triangles, self.grid, self.steps)

    def predict_voxels(self, grids: np.ndarray) -> np.ndarray:
        """P(live) for a batch of voxel grids ``(N, 2, G, G, G)`` float32."""
        x = np.asarray(grids, np.float32)
        if x.ndim == 4:
            x = x[None]
        if x.shape[1:] != (2, self.grid, self.grid, self.grid):
            raise ValueError(f"expected (N, 2, {self.grid}, {self.grid}, {self.grid}) grids, "
                             f"got {x.shape}")
        with self._lock:
            probs = self._session.run(None, {self._input: x})[0]
        return probs[:, 1].astype(np.float64)

    def score_frame(self, frame: Frame) -> float:
        """P(live) of the face in ``frame`` (``frame.face`` must be set)."""
        return float(self.predict_voxels(self.voxels(frame))[0])

    def close(self) -> None:
        self._mesher.close()

    def info(self) -> dict[str, Any]:
        d = super().info()
        d.update(grid=self.grid, reconstruction="MediaPipe Face Mesh (468 vertices)")
        return d
