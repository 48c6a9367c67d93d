"""Single-image 3D face reconstruction: MediaPipe Face Mesh on the detected face.

MediaPipe 0.10.21 Face Mesh (Kartynnik et al., "Real-time Facial Surface Geometry from Monocular
Video on Mobile GPUs", CVPR Workshops 2019) regresses 468 3D vertices of a canonical face mesh
from one RGB image; its weights ship inside the ``mediapipe`` wheel, so it runs offline in about
8 ms on one CPU core. It replaces the 2019 thesis's VRN volumetric regression (Jackson et al.,
ICCV 2017), which took 5.4 s per image.

:class:`FaceMesher` runs it on a square crop around the pipeline's face box (so the face is found
once, by :class:`facelive.face.detection.FaceDetector`) and returns the vertices in the crop's
pixel units:
``x`` right, ``y`` down, ``z`` towards the camera negative (MediaPipe's convention), with ``z``
scaled like ``x``. :func:`mesh_triangles` lists the mesh's triangles.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from typing import Any

import cv2
import numpy as np

from facelive.face.detection import _check_image, _import_mediapipe, crop_window, square_crop
from facelive.types import FaceBox

__all__ = ["MESH_VERTICES", "FaceMesher", "MeshNotFound", "mesh_triangles"]

MESH_VERTICES = 468
"""Vertices of the canonical MediaPipe face mesh (without the 10 iris points)."""


class MeshNotFound(Exception):
    """Face Mesh found no face in the crop around the detected face box."""


@lru_cache(maxsize=1)
def mesh_triangles() -> np.ndarray:
    """The face mesh's triangles, ``(T, 3)`` int32 vertex indices.

    MediaPipe publishes the tessellation as an edge list (``FACEMESH_TESSELATION``); the triangles
    are its 854 3-cliques. Two of them, (49, 64, 129) and (279, 294, 358), are not faces of the
    mesh but triangles spanned by face edges; they are sampled too, the same way in training and
    at run time (the 3D test's model was trained with them).
    """
    mp = _import_mediapipe()
    edges = mp.face_mesh.FACEMESH_TESSELATION
    nbrs: list[set[int]] = [set() for _ in range(MESH_VERTICES)]
    for a, b in edges:
        if a != b:
            nbrs[a].add(b)
            nbrs[b].add(a)
    tris = {
        tuple(sorted((a, b, c)))
        for a in range(MESH_VERTICES)
        for b in nbrs[a] if b > a
        for c in nbrs[a] & nbrs[b] if c > b
    }
    return np.array(sorted(tris), dtype=np.int32)


class FaceMesher:
    """MediaPipe Face Mesh (static-image mode) on a square crop around a face box; thread-safe.

    Parameters
    ----------
    context: side of the square crop in units of the face box's longer side (1.6 leaves Face
        Mesh's own detector a margin around the face).
    size: the crop is resized to ``size`` x ``size`` pixels before reconstruction.
    min_confidence: Face Mesh's own detection cut inside the crop.
    """

    def __init__(self, context: float = 1.6, size: int = 256,
                 min_confidence: float = 0.5) -> None:
        self.context = float(context)
        self.size = int(size)
        self.min_confidence = float(min_confidence)
        self._mp = _import_mediapipe()
        self._lock = threading.Lock()
        self._graph: Any | None = None
        self._closed = False

    def _model(self) -> Any:
        if self._closed:
            raise RuntimeError("FaceMesher is closed")
        if self._graph is None:
            self._graph = self._mp.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=False,
                min_detection_confidence=self.min_confidence)
        return self._graph

    def crop(self, image_bgr: np.ndarray, box: FaceBox) -> np.ndarray:
        """The square crop Face Mesh sees (BGR uint8, ``size`` x ``size``)."""
        return square_crop(_check_image(image_bgr), box, self.context, self.size)

    def reconstruct_crop(self, crop_bgr: np.ndarray) -> np.ndarray:
        """``(468, 3)`` float32 vertices, in the crop's pixels, of the face in ``crop_bgr``.

        Raises :class:`MeshNotFound` when Face Mesh finds no face.
        """
        crop = _check_image(crop_bgr)
        h, w = crop.shape[:2]
        rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)  # a tenth of numpy's [..., ::-1] copy
        with self._lock:
            result = self._model().process(rgb)
        faces = result.multi_face_landmarks
        if not faces:
            raise MeshNotFound("Face Mesh found no face in the face crop")
        pts = np.array([(p.x, p.y, p.z) for p in faces[0].landmark[:MESH_VERTICES]], np.float32)
        pts *= np.array([w, h, w], np.float32)
        return pts

    def reconstruct(self, image_bgr: np.ndarray, box: FaceBox) -> tuple[np.ndarray, np.ndarray]:
        """Crop around ``box`` and reconstruct: ``(vertices, crop)`` (see
        :meth:`reconstruct_crop`)."""
        crop = self.crop(image_bgr, box)
        return self.reconstruct_crop(crop), crop

    def shaded_mesh(self, image_bgr: np.ndarray, box: FaceBox) -> tuple[np.ndarray, np.ndarray]:
        """``(vertices, intensity)``: the mesh and the grey level under each vertex
        (:func:`vertex_intensity`), the input of
        :func:`facelive.liveness.face3d.voxel.face_voxels`."""
        vertices, crop = self.reconstruct(image_bgr, box)
        return vertices, vertex_intensity(crop, vertices)

    def to_image(self, vertices: np.ndarray, image_shape: tuple[int, ...], box: FaceBox
                 ) -> np.ndarray:
        """Map vertices from the crop of :meth:`crop` back to the image's pixel coordinates."""
        x0, y0, side = crop_window(image_shape, box, self.context)
        k = side / self.size
        return (vertices * np.float32(k) + np.array([x0, y0, 0], np.float32)).astype(np.float32)

    def close(self) -> None:
        """Free the graph; later calls raise (a frame still being scored gets an error)."""
        with self._lock:
            self._closed = True
            if self._graph is not None:
                self._graph.close()
                self._graph = None

    def __enter__(self) -> FaceMesher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def vertex_intensity(crop_bgr: np.ndarray, vertices: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Grey level in [0, 1] of the (Gaussian-smoothed) crop under each vertex, ``(V,)`` float32."""
    grey = cv2.cvtColor(_check_image(crop_bgr), cv2.COLOR_BGR2GRAY).astype(np.float32) / 255.0
    if sigma > 0:
        grey = cv2.GaussianBlur(grey, (0, 0), sigma)
    mx = np.ascontiguousarray(vertices[:, 0:1], np.float32)
    my = np.ascontiguousarray(vertices[:, 1:2], np.float32)
    out = cv2.remap(grey, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return out[:, 0].astype(np.float32)
