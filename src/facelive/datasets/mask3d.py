"""3D Mask Attack Database, 3DMAD (Erdogmus and Marcel, BTAS 2013).

One HDF5 file per recording, ``NN_SS_RR.hdf5`` (subject NN = 01-17, session SS, recording RR),
anywhere below the root (the distribution stores them in ``session0X/Data/``). Sessions 01 and 02
are bona fide, 03 is the mask attack. Each file holds ``Color_Data`` (N, 3, 480, 640)
``uint8`` RGB, channel-first (channel-last files are also accepted), ``Depth_Data`` and
``Eye_Pos``. Every ``frame_step``-th frame is a sample (default 10 of the 300 frames); the group is
the recording.

Splits: the database defines no train/devel/test partition; facelive uses a fixed,
subject-disjoint one: subjects 01-07 ``train``, 08-12 ``devel``, 13-17 ``test``
(:data:`SPLIT_SUBJECTS`; pass ``split_subjects`` to use another).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from pathlib import Path

import numpy as np

from facelive.datasets.base import SPLITS, Dataset, Sample
from facelive.datasets.video import sampled_indices
from facelive.errors import DatasetError

SPLIT_SUBJECTS: dict[str, tuple[str, ...]] = {
    "train": tuple(f"{i:02d}" for i in range(1, 8)),
    "devel": tuple(f"{i:02d}" for i in range(8, 13)),
    "test": tuple(f"{i:02d}" for i in range(13, 18)),
}
_NAME = re.compile(r"^(?P<subject>\d{2})_(?P<session>\d{2})_(?P<rec>\d{2})$")


def _color_frame(path: Path, index: int) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            ds = f["Color_Data"]
            frame = np.asarray(ds[index])
    except (OSError, KeyError) as exc:
        raise DatasetError(f"{path}: cannot read Color_Data[{index}] ({exc})") from None
    if frame.ndim == 3 and frame.shape[0] == 3 and frame.shape[-1] != 3:
        frame = np.moveaxis(frame, 0, -1)  # channel-first (3, H, W) -> (H, W, 3)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise DatasetError(f"{path}: unexpected Color_Data frame shape {frame.shape}")
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(frame[:, :, ::-1])  # RGB -> BGR


class Mask3D(Dataset):
    """Reader of 3DMAD (see the module docstring).

    Options: ``subjects`` (ids ``"01"``...), ``frame_step``, ``max_frames``, ``split_subjects``.
    """

    name = "3dmad"
    has_videos = True

    def __init__(self, root: str | Path, *, split: str | None = None,
                 protocol: str | None = None, subjects: Collection[str] | None = None,
                 frame_step: int = 10, max_frames: int | None = None,
                 split_subjects: Mapping[str, Collection[str]] | None = None) -> None:
        super().__init__(root, split=split, protocol=protocol)
        if protocol not in (None, "", "grandtest", "mask"):
            raise DatasetError(f"3dmad: unknown protocol {protocol!r} (3DMAD has mask attacks)")
        if frame_step < 1:
            raise DatasetError("3dmad: frame_step must be >= 1")
        self.subjects = None if subjects is None else {f"{int(s):02d}" for s in subjects}
        self.frame_step = frame_step
        self.max_frames = max_frames
        sp = split_subjects or SPLIT_SUBJECTS
        self._split_of = {f"{int(s):02d}": k for k, v in sp.items() for s in v}

    def _list(self) -> list[Sample]:
        import h5py

        files = sorted(self.root.rglob("*.hdf5")) + sorted(self.root.rglob("*.h5"))
        if not files:
            raise DatasetError(f"3dmad: no NN_SS_RR.hdf5 files below {self.root}")
        out: list[Sample] = []
        for path in files:
            rel = path.relative_to(self.root).as_posix()
            m = _NAME.match(path.stem)
            if m is None:
                self.skipped.append(f"{rel}: name is not NN_SS_RR.hdf5")
                continue
            subject, session = m["subject"], m["session"]
            split = self._split_of.get(subject)
            if split is None or (self.split and split != self.split):
                continue
            if self.subjects is not None and subject not in self.subjects:
                continue
            if session not in ("01", "02", "03"):
                self.skipped.append(f"{rel}: session {session} is not 01-03")
                continue
            try:
                with h5py.File(path, "r") as f:
                    if "Color_Data" not in f:
                        self.skipped.append(f"{rel}: no Color_Data")
                        continue
                    n = int(f["Color_Data"].shape[0])
            except OSError as exc:
                self.skipped.append(f"{rel}: cannot open ({exc})")
                continue
            live = session in ("01", "02")
            group = rel.rsplit(".", 1)[0]
            for i in sampled_indices(n, self.frame_step, self.max_frames):
                out.append(Sample(
                    key=f"{rel}#{i:05d}", label="live" if live else "spoof",
                    attack_type=None if live else "mask", subject=subject, group=group,
                    split=split, path=path, attack_medium=None if live else "mask",
                    meta=(("session", session), ("recording", m["rec"]), ("frame", str(i))),
                    loader=lambda p=path, k=i: _color_frame(p, k),
                ))
        return sorted(out, key=lambda s: SPLITS.index(s.split))
