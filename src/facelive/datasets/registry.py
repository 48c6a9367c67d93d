"""Databases by name: :func:`open_dataset` picks the reader (one module per database)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facelive.datasets.base import Dataset
from facelive.datasets.folder import FolderDataset
from facelive.datasets.mask3d import Mask3D
from facelive.datasets.nuaa import NUAA
from facelive.datasets.replay_attack import ReplayAttack
from facelive.errors import DatasetError

_ALIASES = {
    "nuaa": "nuaa",
    "replay-attack": "replay-attack", "replay_attack": "replay-attack", "replay": "replay-attack",
    "replayattack": "replay-attack",
    "3dmad": "3dmad", "mask3d": "3dmad", "3d-mad": "3dmad",
    "folder": "folder",
}
_READERS: dict[str, type[Dataset]] = {
    "nuaa": NUAA, "replay-attack": ReplayAttack, "3dmad": Mask3D, "folder": FolderDataset,
}
DATASET_NAMES = tuple(_READERS)


def open_dataset(name: str, root: str | Path, *, split: str | None = None,
                 protocol: str | None = None, **options: Any) -> Dataset:
    """Open database ``name`` (nuaa, replay-attack, 3dmad, folder) stored at ``root``.

    ``split=None`` selects every split found. ``options`` go to the reader (e.g. ``subjects``,
    ``frame_step``, ``support``); an unknown option raises :class:`DatasetError`.
    """
    key = _ALIASES.get(str(name).lower())
    if key is None:
        raise DatasetError(f"unknown dataset {name!r} (use one of {', '.join(DATASET_NAMES)})")
    cls = _READERS[key]
    try:
        return cls(root, split=split, protocol=protocol, **options)
    except TypeError as exc:
        raise DatasetError(f"{key}: {exc}") from None
