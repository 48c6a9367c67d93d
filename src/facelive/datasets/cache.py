"""Preprocessed samples in one chunked HDF5 file, for training (``facelive dataset cache``).

Layout (all datasets indexed by sample, in listing order):

- ``images``: ``(N, size, size, 3)`` ``uint8`` **BGR**, one chunk per image, gzip level 4;
- ``labels``: ``int8``, 1 = live, 0 = spoof;
- ``keys``, ``attack_types`` (``""`` for live), ``subjects``, ``groups``, ``splits``: UTF-8 strings;
- ``face_boxes``: ``(N, 4)`` ``int32`` x, y, w, h of the face used (-1 when none / not cropping);
- attributes: ``format`` ("facelive-cache"), ``version``, ``source`` (dataset name and root),
  ``args`` (JSON of the build arguments), ``created`` (UTC ISO time), ``facelive_version``,
  ``channel_order`` ("BGR"), ``skipped`` (JSON list of ``[key, reason]`` for samples that could
  not be read).

Frames are fitted to ``size`` x ``size`` with ``fit``: ``"pad"`` (keep the aspect ratio, pad with
black; default), ``"crop"`` (centre square) or ``"stretch"``. With ``face_crop`` each image is
replaced by :func:`facelive.face.detection.square_crop` around the detected face (``context``
times the box); images without a detected face fall back to ``fit`` and get a box of -1.

The file is written to a temporary file beside the target and moved into place with
:func:`os.replace` only when complete, so an interrupted build leaves no (half) file behind.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelive.datasets.base import Sample
from facelive.errors import DatasetError, FaceliveError

FORMAT = "facelive-cache"
VERSION = 1
FITS = ("pad", "crop", "stretch")


def fit_image(image: np.ndarray, size: int, fit: str = "pad") -> np.ndarray:
    """Resize a BGR image to ``(size, size, 3)`` by ``fit`` (pad, crop or stretch)."""
    import cv2

    if fit not in FITS:
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    h, w = image.shape[:2]
    if fit == "crop":
        side = min(h, w)
        y0, x0 = (h - side) // 2, (w - side) // 2
        image, h, w = image[y0:y0 + side, x0:x0 + side], side, side
    if fit == "pad" and h != w:
        scale = size / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(image, (nw, nh), interpolation=interp)
        out = np.zeros((size, size, 3), np.uint8)
        y0, x0 = (size - nh) // 2, (size - nw) // 2
        out[y0:y0 + nh, x0:x0 + nw] = small
        return out
    interp = cv2.INTER_AREA if max(h, w) > size else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(image, (size, size), interpolation=interp))


def build_cache(samples: Sequence[Sample], out: str | Path, *, size: int = 224,
                fit: str = "pad", face_crop: bool = False, context: float = 1.5,
                detector: Any = None, source: str = "", args: dict[str, Any] | None = None,
                progress: bool = True) -> dict[str, Any]:
    """Write ``samples`` (preprocessed) to the HDF5 file ``out`` atomically.

    Unreadable samples are skipped and listed in the ``skipped`` attribute. ``detector`` (an
    object with ``detect(image) -> FaceBox | None``) defaults to
    :class:`facelive.face.detection.FaceDetector` when ``face_crop`` is set. Returns a summary
    (counts, skipped, faces found).
    """
    import h5py

    if size < 8:
        raise DatasetError(f"size must be >= 8, got {size}")
    if fit not in FITS:
        raise DatasetError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    if not samples:
        raise DatasetError("no samples to cache")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    crop, own_detector = None, False
    if face_crop:
        crop, detector, own_detector = _face_cropper(detector, context, size)
    tmp = _temporary_beside(out)
    try:
        with h5py.File(tmp, "w") as f:
            written = _write_images(f, samples, size, fit, crop, detector, progress)
            _write_metadata(f, written, source, {"size": size, "fit": fit,
                                                 "face_crop": face_crop, "context": context,
                                                 **(args or {})})
        os.replace(tmp, out)
    except BaseException:  # interrupted or failed: no half-written file is left behind
        tmp.unlink(missing_ok=True)
        raise
    finally:
        if own_detector and hasattr(detector, "close"):
            detector.close()
    m, live = len(written.kept), int(written.labels.sum())
    return {"path": str(out), "n": m, "live": live, "spoof": m - live,
            "skipped": written.skipped, "faces": written.n_faces if face_crop else None}


@dataclass
class _Written:
    """What :func:`_write_images` stored: the samples kept (in file order), their labels and
    face boxes, the samples skipped (``[key, reason]``) and how many faces were found."""

    kept: list[Sample]
    labels: np.ndarray
    boxes: np.ndarray
    skipped: list[list[str]]
    n_faces: int


def _face_cropper(detector: Any, context: float, size: int
                  ) -> tuple[Callable[[np.ndarray, Any], np.ndarray], Any, bool]:
    """The face crop of a face-cropped cache and its detector.

    Parameters
    ----------
    detector : object or None
        An object with ``detect(image) -> FaceBox | None``; ``None`` makes a
        :class:`facelive.face.detection.FaceDetector`.
    context : float
        The crop's side over the face box's.
    size : int
        The crop's side, in pixels.

    Returns
    -------
    crop : callable
        ``crop(image, box)``: :func:`facelive.face.detection.square_crop` with ``context`` and
        ``size``.
    detector : object
        The detector to use.
    own : bool
        True when the detector was made here (the caller closes it).

    Raises
    ------
    facelive.errors.DatasetError
        When the face detection module cannot be imported.
    """
    try:
        from facelive.face.detection import FaceDetector, square_crop
    except ImportError as exc:
        raise DatasetError(f"face cropping needs facelive.face.detection ({exc})") from None

    def crop(image: np.ndarray, box: Any) -> np.ndarray:
        return square_crop(image, box, context, size)

    if detector is None:
        return crop, FaceDetector(), True
    return crop, detector, False


def _temporary_beside(out: Path) -> Path:
    """A new empty temporary file in ``out``'s folder, with the mode a new file gets.

    Parameters
    ----------
    out : pathlib.Path
        The file it will replace (:func:`os.replace` is atomic within one file system).

    Returns
    -------
    pathlib.Path
        The temporary file (``.<name>.<random>.tmp``).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual mode
    return tmp


def _write_images(f: Any, samples: Sequence[Sample], size: int, fit: str,
                  crop: Callable[[np.ndarray, Any], np.ndarray] | None, detector: Any,
                  progress: bool) -> _Written:
    """Load, fit (or face-crop) and store every readable sample's image in ``f["images"]``.

    Parameters
    ----------
    f : h5py.File
        The cache being written.
    samples : sequence of Sample
        What to store, in order; unreadable ones are skipped.
    size : int
        The stored images' side.
    fit : str
        How an image without a face crop is fitted (:func:`fit_image`).
    crop : callable or None
        ``crop(image, box)`` for a face-cropped cache (see :func:`_face_cropper`), else
        ``None``.
    detector : object
        The face detector when ``crop`` is given.
    progress : bool
        Show a progress bar.

    Returns
    -------
    _Written
        The samples kept and skipped, labels, face boxes (-1 where none) and faces found.

    Raises
    ------
    facelive.errors.DatasetError
        When no sample could be read.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    n = len(samples)
    images = f.create_dataset("images", shape=(n, size, size, 3), dtype=np.uint8,
                              chunks=(1, size, size, 3), compression="gzip",
                              compression_opts=4, maxshape=(n, size, size, 3))
    done = _Written([], np.zeros(n, np.int8), np.full((n, 4), -1, np.int32), [], 0)
    cols = (TextColumn("caching"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*cols, disable=not progress) as bar:
        task = bar.add_task("caching", total=n)
        for smp in samples:
            bar.advance(task)
            try:
                img = smp.load()
            except FaceliveError as exc:
                done.skipped.append([smp.key, exc.message])
                continue
            i = len(done.kept)
            box = detector.detect(img) if crop is not None else None
            if box is not None and crop is not None:
                img = crop(img, box)
                done.boxes[i] = (box.x, box.y, box.w, box.h)
                done.n_faces += 1
            else:
                img = fit_image(img, size, fit)
            images[i] = img
            done.labels[i] = 1 if smp.is_live else 0
            done.kept.append(smp)
    m = len(done.kept)
    if m == 0:
        raise DatasetError(f"no sample could be read ({len(done.skipped)} skipped)")
    images.resize(m, axis=0)
    done.labels, done.boxes = done.labels[:m], done.boxes[:m]
    return done


def _write_metadata(f: Any, written: _Written, source: str, args: dict[str, Any]) -> None:
    """Store the labels, face boxes, the kept samples' strings and the file's attributes.

    Parameters
    ----------
    f : h5py.File
        The cache being written (its images already stored).
    written : _Written
        What :func:`_write_images` stored.
    source : str
        The ``source`` attribute (dataset name and root).
    args : dict
        The build arguments (the ``args`` attribute, as JSON).
    """
    import h5py

    from facelive import __version__

    kept = written.kept
    f["labels"] = written.labels
    f["face_boxes"] = written.boxes
    text = h5py.string_dtype("utf-8")
    for name, values in (("keys", [s.key for s in kept]),
                         ("attack_types", [s.attack_type or "" for s in kept]),
                         ("subjects", [s.subject for s in kept]),
                         ("groups", [s.group for s in kept]),
                         ("splits", [s.split for s in kept])):
        f.create_dataset(name, data=np.array(values, dtype=object), dtype=text)
    f.attrs.update({
        "format": FORMAT, "version": VERSION, "source": source,
        "args": json.dumps(args, default=str),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "facelive_version": __version__, "channel_order": "BGR",
        "skipped": json.dumps(written.skipped),
    })


@dataclass
class Batch:
    """A batch read from a cache: images ``(B, S, S, 3)`` BGR uint8, labels (1 live), indices."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


class CachedDataset:
    """Lazy reader of a cache file written by :func:`build_cache`.

    Metadata arrays are read on open; images only when asked (:meth:`batches`, indexing).
    Usable as a context manager; :meth:`close` releases the file.
    """

    def __init__(self, path: str | Path) -> None:
        import h5py

        self.path = Path(path)
        if not self.path.is_file():
            raise DatasetError(f"{self.path}: cache file not found")
        try:
            self._f = h5py.File(self.path, "r")
        except OSError as exc:
            raise DatasetError(f"{self.path}: not an HDF5 file ({exc})") from None
        if self._f.attrs.get("format") != FORMAT:
            self._f.close()
            raise DatasetError(f"{self.path}: not a facelive cache file")
        f = self._f
        self.labels: np.ndarray = f["labels"][()]
        self.keys: list[str] = [s.decode() if isinstance(s, bytes) else s for s in f["keys"][()]]
        self.attack_types: list[str | None] = [
            (s.decode() if isinstance(s, bytes) else s) or None for s in f["attack_types"][()]]
        self.subjects = [s.decode() if isinstance(s, bytes) else s for s in f["subjects"][()]]
        self.groups = [s.decode() if isinstance(s, bytes) else s for s in f["groups"][()]]
        self.splits = [s.decode() if isinstance(s, bytes) else s for s in f["splits"][()]]
        self.face_boxes: np.ndarray = f["face_boxes"][()]
        self.args: dict[str, Any] = json.loads(f.attrs["args"])
        self.source: str = str(f.attrs["source"])
        self.skipped: list[list[str]] = json.loads(f.attrs["skipped"])
        self.attrs = dict(f.attrs)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __getitem__(self, i: int) -> np.ndarray:
        return self._f["images"][int(i)]

    @property
    def image_size(self) -> int:
        return int(self._f["images"].shape[1])

    def read(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Images at ``indices`` (any order), as one array."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0:
            s = self.image_size
            return np.zeros((0, s, s, 3), np.uint8)
        order = np.argsort(idx)
        uniq, inverse = np.unique(idx[order], return_inverse=True)
        data = self._f["images"][uniq]  # h5py wants increasing indices
        out = np.empty((idx.size, *data.shape[1:]), np.uint8)
        out[order] = data[inverse]
        return out

    def batches(self, batch_size: int, *, shuffle: bool = False, seed: int | None = None,
                indices: Sequence[int] | np.ndarray | None = None) -> Iterator[Batch]:
        """Yield :class:`Batch` objects of at most ``batch_size`` samples.

        ``indices`` restricts to a subset (e.g. one split); ``shuffle`` permutes with ``seed``.
        """
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        idx = np.arange(len(self)) if indices is None else np.asarray(indices, dtype=np.int64)
        if shuffle:
            idx = np.random.default_rng(seed).permutation(idx)
        for start in range(0, idx.size, batch_size):
            b = idx[start:start + batch_size]
            yield Batch(self.read(b), self.labels[b].astype(np.int64), b)

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> CachedDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
