"""Face detection and face crops shared by every face-based liveness test.

Detection uses MediaPipe 0.10.21 BlazeFace (Bazarevsky et al., "BlazeFace: Sub-millisecond Neural
Face Detection on Mobile GPUs", 2019), whose weights ship inside the ``mediapipe`` wheel, so it runs
offline: the short-range model first, the full-range model when the short-range one finds nothing.

:func:`square_crop` cuts a square centred on the face box with a context margin (side =
``context * max(w, h)``). The 2019 thesis anchored a ``max(w, h)`` square at the box's top-left,
which skews the crop; here the square is centred, shifted inside the image where it fits, and
replicate-padded where it does not (zero padding would be a label shortcut: attack faces are
closer to the camera, so their crops need padding more often).
"""

from __future__ import annotations

import threading
from typing import Any

import cv2
import numpy as np

from facelive.errors import ImageError
from facelive.types import FaceBox

__all__ = ["DEFAULT_MIN_CONFIDENCE", "FaceDetector", "square_crop", "crop_window",
           "centred_square_crop"]


_MP_LOCK = threading.RLock()
_MP_SOLUTIONS: Any | None = None


def _import_mediapipe() -> Any:
    """MediaPipe's legacy solutions, ``mp.solutions`` (``face_detection`` and ``face_mesh`` are
    the ones used), imported on first use through the package's public API (log level: see
    :func:`facelive.runtime.quiet_native_logs`).

    ``import mediapipe`` takes about 0.65 s, most of it in modules facelive does not use (the
    drawing utilities import ``matplotlib.pyplot``; the Tasks API); it is paid once per process,
    when the first detector or mesher is made, not when this module is imported.
    """
    global _MP_SOLUTIONS
    with _MP_LOCK:
        if _MP_SOLUTIONS is None:
            import mediapipe as mp

            _MP_SOLUTIONS = mp.solutions
        return _MP_SOLUTIONS


def _check_image(image_bgr: np.ndarray) -> np.ndarray:
    if not isinstance(image_bgr, np.ndarray):
        raise ImageError(f"expected a BGR uint8 array, got {type(image_bgr).__name__}")
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3 or image_bgr.size == 0:
        raise ImageError(f"expected an (H, W, 3) BGR image, got shape {image_bgr.shape}")
    if image_bgr.dtype != np.uint8:
        raise ImageError(f"expected a uint8 image, got {image_bgr.dtype}")
    return image_bgr


DEFAULT_MIN_CONFIDENCE = 0.7
"""Default detection cut. At 0.5 BlazeFace finds "faces" in white noise and random texture (14 of
300 generated non-faces), at 0.7 in none, while 7,089 of the 7,091 frames of the development data
still get a face (``experiments/face_confidence.py``; table in ``docs/model-cards/cnn.md``)."""


class FaceDetector:
    """BlazeFace face detector (short-range model, full-range fallback); thread-safe.

    A face counts when its confidence is at least ``min_confidence`` (default
    :data:`DEFAULT_MIN_CONFIDENCE`). MediaPipe graphs are not thread-safe, so every call runs under
    one lock. Use one detector per process (or per worker); :meth:`close` frees the graphs.
    """

    detect_side: int = 320
    """Images are downscaled to at most this many pixels on their longer side before detection
    (BlazeFace looks at 128x128 / 192x192 anyway); boxes are mapped back to the full image."""

    def __init__(self, min_confidence: float = DEFAULT_MIN_CONFIDENCE) -> None:
        if not 0.0 <= float(min_confidence) <= 1.0:
            raise ValueError(f"min_confidence must be in [0, 1], got {min_confidence}")
        self.min_confidence = float(min_confidence)
        self._mp = _import_mediapipe()
        self._lock = threading.Lock()
        self._models: dict[int, Any] = {}

    def _model(self, selection: int) -> Any:
        m = self._models.get(selection)
        if m is None:
            m = self._mp.face_detection.FaceDetection(
                model_selection=selection, min_detection_confidence=self.min_confidence
            )
            self._models[selection] = m
        return m

    def _boxes(self, result: Any, width: int, height: int) -> list[FaceBox]:
        boxes: list[FaceBox] = []
        for det in result.detections or []:
            score = float(det.score[0]) if det.score else 0.0
            if score < self.min_confidence:  # MediaPipe's own cut lets lower scores through
                continue
            rb = det.location_data.relative_bounding_box
            x0 = max(0, int(round(rb.xmin * width)))
            y0 = max(0, int(round(rb.ymin * height)))
            x1 = min(width, int(round((rb.xmin + rb.width) * width)))
            y1 = min(height, int(round((rb.ymin + rb.height) * height)))
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            boxes.append(FaceBox(x0, y0, x1 - x0, y1 - y0, score))
        boxes.sort(key=lambda b: b.w * b.h, reverse=True)
        return boxes

    def detect_all(self, image_bgr: np.ndarray) -> list[FaceBox]:
        """All faces in a BGR uint8 image, clamped to the image, sorted largest first."""
        image = _check_image(image_bgr)
        h, w = image.shape[:2]
        scale = min(1.0, self.detect_side / max(h, w))
        if scale < 1.0:
            small = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                               interpolation=cv2.INTER_AREA)
        else:
            small = image
        rgb = cv2.cvtColor(small, cv2.COLOR_BGR2RGB)  # 0.01 ms; a numpy [..., ::-1] copy: 0.46
        # relative boxes from the small image, mapped onto the full-size one
        with self._lock:
            boxes = self._boxes(self._model(0).process(rgb), w, h)
            if not boxes:
                boxes = self._boxes(self._model(1).process(rgb), w, h)
        return boxes

    def detect(self, image_bgr: np.ndarray) -> FaceBox | None:
        """The largest face, or ``None`` when there is none."""
        boxes = self.detect_all(image_bgr)
        return boxes[0] if boxes else None

    def close(self) -> None:
        """Release the MediaPipe graphs (idempotent)."""
        with self._lock:
            for m in self._models.values():
                m.close()
            self._models = {}

    def __enter__(self) -> FaceDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def crop_window(
    image_shape: tuple[int, ...], box: FaceBox, context: float
) -> tuple[int, int, int]:
    """The square ``(x0, y0, side)`` that :func:`square_crop` cuts, in image coordinates.

    The square is centred on the box with side ``context * max(w, h)``; on each axis it is shifted
    inside the image when it fits there, else it covers the whole axis, centred as far as possible
    on the face (the part outside the image is padded).
    """
    if context <= 0:
        raise ValueError(f"context must be > 0, got {context}")
    height, width = int(image_shape[0]), int(image_shape[1])
    side = max(1, int(round(context * max(box.w, box.h))))
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0

    def place(centre: float, extent: int) -> int:
        start = int(round(centre - side / 2.0))
        if side <= extent:
            return min(max(start, 0), extent - side)
        return min(max(start, extent - side), 0)  # covers the axis; overhang on both sides

    return place(cx, width), place(cy, height), side


def square_crop(image_bgr: np.ndarray, box: FaceBox, context: float, size: int) -> np.ndarray:
    """Centred square crop of side ``context * max(w, h)`` around ``box``, resized to ``size``.

    Shifted inside the image where possible, replicate-padded otherwise (see the module docstring).
    Returns a ``(size, size, 3)`` uint8 array in the input's channel order.
    """
    image = _check_image(image_bgr)
    x0, y0, side = crop_window(image.shape, box, context)
    return _cut_square(image, box, x0, y0, side, size, cv2.BORDER_REPLICATE, cv2.INTER_LINEAR)


def _cut_square(image: np.ndarray, box: FaceBox, x0: int, y0: int, side: int, size: int,
                border: int, enlarge: int) -> np.ndarray:
    """The ``side``-pixel square at ``(x0, y0)`` of ``image``, padded with ``border`` where it
    leaves the image, resized to ``size`` (area interpolation when shrinking, ``enlarge`` when
    enlarging)."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    height, width = image.shape[:2]
    x1, y1 = x0 + side, y0 + side
    ix0, iy0 = max(x0, 0), max(y0, 0)
    ix1, iy1 = min(x1, width), min(y1, height)
    if ix1 <= ix0 or iy1 <= iy0:
        raise ValueError(f"face box {box} lies outside the {width}x{height} image")
    patch = image[iy0:iy1, ix0:ix1]
    pads = (iy0 - y0, y1 - iy1, ix0 - x0, x1 - ix1)
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, borderType=border)
    interp = cv2.INTER_AREA if side > size else enlarge
    return np.ascontiguousarray(cv2.resize(patch, (size, size), interpolation=interp))


def centred_square_crop(image_bgr: np.ndarray, box: FaceBox, context: float,
                        size: int) -> np.ndarray:
    """Square crop of side ``context * max(w, h)`` centred on ``box`` (never shifted), the part
    outside the image filled with reflected pixels, resized to ``size``.

    This is the crop convention of the MiniFASNet family (Minivision's Silent-Face project, used
    by :mod:`facelive.liveness.minifas`): OpenCV ``BORDER_REFLECT_101`` padding, area
    interpolation when shrinking and Lanczos when enlarging. Unlike :func:`square_crop` the face
    stays at the centre of the crop wherever it sits in the frame.

    Parameters
    ----------
    image_bgr : ndarray
        ``(H, W, 3)`` uint8 image.
    box : FaceBox
        The face box; its longer side times ``context`` is the crop's side.
    context : float
        Crop side over the box's longer side (> 0).
    size : int
        Output side in pixels (>= 1).

    Returns
    -------
    ndarray
        ``(size, size, 3)`` uint8 crop in the input's channel order.
    """
    image = _check_image(image_bgr)
    if context <= 0:
        raise ValueError(f"context must be > 0, got {context}")
    side = max(1, int(round(context * max(box.w, box.h))))
    x0 = int(round(box.x + box.w / 2.0 - side / 2.0))
    y0 = int(round(box.y + box.h / 2.0 - side / 2.0))
    return _cut_square(image, box, x0, y0, side, size, cv2.BORDER_REFLECT_101,
                       cv2.INTER_LANCZOS4)
