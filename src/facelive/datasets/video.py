"""Lazy access to sampled frames of video files (OpenCV), shared by the video-based readers."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facelive.errors import DatasetError

VIDEO_SUFFIXES = (".mov", ".avi", ".mp4", ".mkv")


def frame_count(path: Path) -> int:
    """Number of frames of a video (container header; decoded count when the header has none)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DatasetError(f"{path}: cannot open video")
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if n <= 0:
            n = 0
            while cap.grab():
                n += 1
        return n
    finally:
        cap.release()


def sampled_indices(n_frames: int, step: int, max_frames: int | None = None) -> list[int]:
    """Frame indices 0, step, 2*step, ... below ``n_frames`` (at most ``max_frames``)."""
    if step < 1:
        raise DatasetError(f"frame_step must be >= 1, got {step}")
    idx = list(range(0, max(n_frames, 0), step))
    return idx[:max_frames] if max_frames is not None else idx


class VideoFrames:
    """Decode selected frames of one video at a time and keep them for the next requests.

    Readers list frames video by video, so sequential access decodes each video once: the first
    request for a video reads it from the start up to its last wanted frame and keeps the wanted
    frames (BGR uint8); the cache holds one video.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._path: Path | None = None
        self._frames: dict[int, np.ndarray] = {}

    def get(self, path: Path, index: int, wanted: tuple[int, ...]) -> np.ndarray:
        with self._lock:
            if self._path != path or index not in self._frames:
                self._frames = self._decode(path, wanted if index in wanted else (index,))
                self._path = path
            frame = self._frames.get(index)
        if frame is None:
            raise DatasetError(f"{path}: frame {index} could not be decoded", code="dataset_error")
        return frame.copy()

    @staticmethod
    def _decode(path: Path, wanted: tuple[int, ...]) -> dict[int, np.ndarray]:
        import cv2

        if not path.is_file():
            raise DatasetError(f"{path}: video not found")
        cap = cv2.VideoCapture(str(path))
        out: dict[int, np.ndarray] = {}
        try:
            if not cap.isOpened():
                raise DatasetError(f"{path}: cannot open video")
            want = set(wanted)
            last = max(want)
            i = 0
            while i <= last:
                if i in want:
                    ok, img = cap.read()
                    if not ok:
                        break
                    if img is not None and img.ndim == 3 and img.shape[2] == 3:
                        out[i] = np.ascontiguousarray(img, dtype=np.uint8)
                elif not cap.grab():
                    break
                i += 1
        finally:
            cap.release()
        return out


_SHARED = VideoFrames()


def _load_frame(path: Path, index: int, wanted: tuple[int, ...]) -> np.ndarray:
    return _SHARED.get(path, index, wanted)


def frame_loader(path: Path, index: int, wanted: tuple[int, ...]) -> Callable[[], np.ndarray]:
    """A zero-argument loader for frame ``index`` of ``path`` (``wanted``: its siblings); a
    ``functools.partial`` of a module function, so that a sample pickles (and travels to a Dask
    worker, which decodes the frame from its own process-wide cache)."""
    return functools.partial(_load_frame, path, index, wanted)
