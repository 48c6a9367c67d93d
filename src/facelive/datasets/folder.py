"""A user's own data: ``live/`` and ``spoof/<attack type>/`` folders of images.

Images directly in ``spoof/`` get the attack type ``"unknown"``. Deeper folders are allowed; the
first folder level below ``live/`` or ``spoof/<type>/`` is taken as the subject (``"unknown"``
when images lie directly there). When the root holds ``train/``, ``devel/`` or ``test/`` folders,
each is read as that split with the same layout; otherwise everything is split ``test``.
Every image is its own group.
"""

from __future__ import annotations

from pathlib import Path

from facelive.datasets.base import SPLITS, Dataset, Sample
from facelive.errors import DatasetError
from facelive.imageio import iter_image_paths


class FolderDataset(Dataset):
    """Reader of the ``live/`` + ``spoof/<type>/`` layout (see the module docstring)."""

    name = "folder"

    def __init__(self, root: str | Path, *, split: str | None = None,
                 protocol: str | None = None) -> None:
        super().__init__(root, split=split, protocol=protocol)

    def _list(self) -> list[Sample]:
        split_dirs = [s for s in SPLITS if (self.root / s).is_dir()]
        if split_dirs:
            bases = [(s, self.root / s) for s in split_dirs if self.split in (None, s)]
            if not bases:
                raise DatasetError(f"folder: no {self.split}/ folder in {self.root}")
        else:
            if self.split not in (None, "test"):
                raise DatasetError(
                    f"folder: {self.root} has no train/devel/test folders; it is one 'test' split"
                )
            bases = [("test", self.root)]
        out: list[Sample] = []
        for split, base in bases:
            if not (base / "live").is_dir() and not (base / "spoof").is_dir():
                raise DatasetError(f"folder: {base} has neither live/ nor spoof/")
            live = base / "live"
            if live.is_dir():
                for p in iter_image_paths([live]):
                    out.append(self._sample(p, live, "live", None, split))
            spoof = base / "spoof"
            if spoof.is_dir():
                for p in iter_image_paths([spoof]):
                    rel = p.relative_to(spoof).parts
                    if len(rel) == 1:
                        out.append(self._sample(p, spoof, "spoof", "unknown", split))
                    else:
                        out.append(self._sample(p, spoof / rel[0], "spoof", rel[0], split))
        return out

    def _sample(self, path: Path, base: Path, label: str, atype: str | None,
                split: str) -> Sample:
        parts = path.relative_to(base).parts
        key = path.relative_to(self.root).as_posix()
        return Sample(key=key, label=label, attack_type=atype,
                      subject=parts[0] if len(parts) > 1 else "unknown", group=key,
                      split=split, path=path)
