"""NUAA Photograph Imposter Database (Tan, Li, Liu, Jiang, ECCV 2010).

Layout: ``ClientRaw/<ID>/<ID>_<glasses>_<pos>_<session>_<n>.jpg`` (live) and ``ImposterRaw/...``
(printed photographs), indexed by the official lists ``client_train_raw.txt``,
``imposter_train_raw.txt`` (split ``train``) and ``client_test_raw.txt``, ``imposter_test_raw.txt``
(split ``test``). Lists use CRLF or LF and ``/`` or ``\\`` separators; entries whose files are
absent are collected in :attr:`NUAA.missing`. The ``face`` and ``normalized`` variants
(``ClientFace``/``client_train_face.txt``, ``ClientNormalized``/``client_train_normalized.txt``)
are read the same way. Every image is its own group (NUAA has no videos).
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from facelive.datasets.base import Dataset, Sample
from facelive.errors import DatasetError

_VARIANTS = {  # variant -> (live folder, attack folder, list suffix)
    "raw": ("ClientRaw", "ImposterRaw", "raw"),
    "face": ("ClientFace", "ImposterFace", "face"),
    "normalized": ("ClientNormalized", "ImposterNormalized", "normalized"),
}
_SPLIT_WORD = {"train": "train", "test": "test"}


def _read_list(path: Path) -> list[str]:
    """Entries of an official list file, normalised to ``ID/file.jpg`` (order kept)."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    out = []
    for line in text.splitlines():
        entry = line.strip().replace("\\", "/").strip("/")
        if entry:
            out.append(entry)
    return out


class NUAA(Dataset):
    """Reader of the NUAA database (see the module docstring).

    Options: ``subjects`` keeps only these subject ids (``"0001"``...); ``variant`` is ``"raw"``
    (default), ``"face"`` or ``"normalized"``. ``protocol`` is not used (NUAA has one).
    """

    name = "nuaa"

    def __init__(self, root: str | Path, *, split: str | None = None,
                 protocol: str | None = None, subjects: Collection[str] | None = None,
                 variant: str = "raw") -> None:
        super().__init__(root, split=split, protocol=protocol)
        if split == "devel":
            raise DatasetError("nuaa: the database has no devel split (use train or test)")
        if variant not in _VARIANTS:
            raise DatasetError(f"nuaa: unknown variant {variant!r} (use raw, face or normalized)")
        if protocol not in (None, "", "grandtest", "print"):
            raise DatasetError(f"nuaa: unknown protocol {protocol!r} (NUAA has only print attacks)")
        self.variant = variant
        self.subjects = None if subjects is None else {str(s) for s in subjects}

    def list_file(self, label: str, split: str) -> Path:
        word = "client" if label == "live" else "imposter"
        return self.root / f"{word}_{_SPLIT_WORD[split]}_{_VARIANTS[self.variant][2]}.txt"

    def _list(self) -> list[Sample]:
        live_dir, spoof_dir, _ = _VARIANTS[self.variant]
        splits = [self.split] if self.split else ["train", "test"]
        found_any = False
        out: list[Sample] = []
        for split in splits:
            for label, folder in (("live", live_dir), ("spoof", spoof_dir)):
                lst = self.list_file(label, split)
                if not lst.is_file():
                    if self.split is not None:
                        raise DatasetError(f"nuaa: list file {lst} not found")
                    continue
                found_any = True
                for entry in _read_list(lst):
                    rel = f"{folder}/{entry}"
                    path = self.root / rel
                    parts = entry.split("/")
                    stem = Path(parts[-1]).stem
                    fields = stem.split("_")
                    subject = parts[0] if len(parts) > 1 else fields[0]
                    if self.subjects is not None and subject not in self.subjects:
                        continue
                    if not path.is_file():
                        self.missing.append(rel)
                        continue
                    meta: tuple[tuple[str, str], ...] = ()
                    if len(fields) == 5:
                        meta = (("glasses", fields[1]), ("position", fields[2]),
                                ("session", fields[3]))
                    out.append(Sample(
                        key=rel, label=label,
                        attack_type=None if label == "live" else "print",
                        subject=subject, group=rel, split=split, path=path,
                        attack_medium=None if label == "live" else "photo", meta=meta,
                    ))
        if not found_any:
            raise DatasetError(
                f"nuaa: no list files (client_train_{_VARIANTS[self.variant][2]}.txt...) "
                f"in {self.root}"
            )
        return out

    def subject_ids(self) -> list[str]:
        """Sorted subject ids present in the listing."""
        return sorted({s.subject for s in self.samples()})


def nuaa_subject_split(subjects: Collection[str] | str | Path, *, every: int = 3,
                       ) -> tuple[list[str], list[str]]:
    """Deterministic subject-disjoint split of NUAA for cross-dataset checks.

    ``subjects`` is a collection of subject ids or a NUAA root (its train-list subjects are used).
    The ids are sorted and every ``every``-th one, starting with the ``every``-th, is held out:
    with the 9 subjects of the official train split (0001-0009) and ``every=3`` the held-out
    subjects are 0003, 0006 and 0009. Returns ``(train_subjects, heldout_subjects)``.
    """
    if every < 2:
        raise DatasetError("nuaa_subject_split: every must be >= 2")
    if isinstance(subjects, (str, Path)):
        ids = NUAA(subjects, split="train").subject_ids()
    else:
        ids = sorted({str(s) for s in subjects})
    held = ids[every - 1::every]
    train = [s for s in ids if s not in held]
    return train, held
