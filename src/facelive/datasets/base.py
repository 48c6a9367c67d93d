"""The dataset-reader interface shared by every database module.

A :class:`Dataset` lists :class:`Sample` records; a sample knows its label, presentation-attack
instrument (PAI) species, subject, recording ("group") and split, and loads its image lazily as a
BGR ``uint8`` array (see :mod:`facelive.imageio`). Readers never load pixels while listing.

Label vocabulary: ``"live"`` (bona fide) or ``"spoof"`` (attack). ``attack_type`` is the PAI
species (``"print"``, ``"mobile"``, ``"highdef"``, ``"mask"``, or a folder name), ``None`` for live
samples; ``attack_medium`` is the coarser kind where a database has one (``"photo"``/``"video"``
for Replay-Attack and NUAA, ``"mask"`` for 3DMAD).
"""

from __future__ import annotations

import abc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facelive.errors import DatasetError
from facelive.imageio import load_image

LABELS = ("live", "spoof")
SPLITS = ("train", "devel", "test")


@dataclass(frozen=True)
class Sample:
    """One image (or one video frame) of a dataset."""

    key: str
    """Unique, stable id: path relative to the dataset root (``"file.mov#00025"`` for frames)."""
    label: str
    """``"live"`` or ``"spoof"``."""
    attack_type: str | None
    """PAI species; ``None`` for live samples."""
    subject: str
    """Client / subject id as the database writes it (``"0001"``, ``"client001"``, ``"01"``)."""
    group: str
    """Recording id: frames of one video share it; a still image is its own group."""
    split: str
    """``"train"``, ``"devel"`` or ``"test"``."""
    path: Path | None = None
    """Source file (image, video or HDF5 file), if any."""
    attack_medium: str | None = None
    """Coarse attack kind (``"photo"``, ``"video"``, ``"mask"``), ``None`` for live samples."""
    meta: tuple[tuple[str, str], ...] = ()
    """Further database-specific fields as ``(name, value)`` pairs (see :attr:`info`)."""
    loader: Callable[[], np.ndarray] | None = field(default=None, compare=False, repr=False)
    """Decodes the pixels; ``None`` means :func:`facelive.imageio.load_image` on :attr:`path`."""

    def load(self) -> np.ndarray:
        """Decode the image: ``(H, W, 3)`` BGR ``uint8``. Raises a :class:`FaceliveError`."""
        if self.loader is not None:
            return self.loader()
        if self.path is None:
            raise DatasetError(f"{self.key}: sample has neither a path nor a loader")
        return load_image(self.path)

    @property
    def is_live(self) -> bool:
        return self.label == "live"

    @property
    def info(self) -> dict[str, str]:
        """:attr:`meta` as a dict."""
        return dict(self.meta)


class Dataset(abc.ABC):
    """A database split (or several splits) opened from a folder.

    Subclasses set :attr:`name` and implement :meth:`_list`; :meth:`samples` caches the listing.
    ``missing`` holds entries that the database's lists name but that are absent on disk, and
    ``skipped`` entries found on disk that could not be interpreted (each with the reason); both
    are reported, not fatal.
    """

    name: str = "dataset"
    has_videos: bool = False
    """True when samples are frames of videos (video-level metrics make sense)."""

    def __init__(self, root: str | Path, *, split: str | None = None,
                 protocol: str | None = None) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.name}: dataset folder {self.root} does not exist")
        if split is not None and split not in SPLITS:
            raise DatasetError(f"{self.name}: unknown split {split!r} (use one of {SPLITS})")
        self.split = split
        self.protocol = protocol
        self.missing: list[str] = []
        self.skipped: list[str] = []
        self._samples: list[Sample] | None = None

    @abc.abstractmethod
    def _list(self) -> list[Sample]:
        """List the samples (no pixel decoding)."""

    def samples(self) -> list[Sample]:
        """All samples of the selected split(s) and protocol, in a stable order."""
        if self._samples is None:
            self.missing = []
            self.skipped = []
            self._samples = self._list()
        return list(self._samples)

    def __len__(self) -> int:
        return len(self.samples())

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples())

    def splits(self) -> list[str]:
        """Splits present in the listing."""
        return sorted({s.split for s in self.samples()}, key=SPLITS.index)

    def summary(self) -> dict[str, Any]:
        """Counts per split, label and attack type (for ``facelive dataset info``)."""
        out: dict[str, Any] = {"dataset": self.name, "root": str(self.root),
                               "protocol": self.protocol, "splits": {}}
        for sp in self.splits():
            ss = [s for s in self.samples() if s.split == sp]
            types = Counter(s.attack_type for s in ss if not s.is_live)
            out["splits"][sp] = {
                "live": sum(s.is_live for s in ss),
                "spoof": sum(not s.is_live for s in ss),
                "attack_types": dict(sorted(types.items())),
                "groups_live": len({s.group for s in ss if s.is_live}),
                "groups_spoof": len({s.group for s in ss if not s.is_live}),
                "subjects": len({s.subject for s in ss}),
            }
        out["missing"] = len(self.missing)
        out["skipped"] = len(self.skipped)
        return out

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, "
                f"protocol={self.protocol!r})")
