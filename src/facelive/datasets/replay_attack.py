"""Idiap Replay-Attack database (Chingovska, Anjos, Marcel, BIOSIG 2012).

Two layouts are read, also mixed:

- the official tree ``{train,devel,test}/real/*.mov`` and
  ``{train,devel,test}/attack/{fixed,hand}/*.mov``;
  every ``frame_step``-th frame is a sample (default 25, i.e. one per second of the 25 fps videos);
- the same tree with each video replaced by a folder of frames ``<video>/frame_NNNNN.jpg`` (every
  frame in the folder is a sample; ``NNNNN`` is the frame index in the original video).

A sample is one frame; its ``group`` is the video (path relative to the root, without suffix), so
the fixed and hand versions of an attack are different groups. Names carry the attack kind:
``attack_<print|mobile|highdef>_client<NNN>_session<NN>_<device>_<photo|video>_<lighting>``.
The ``enroll`` folder is not part of the anti-spoofing protocols and is not read.

Protocols (as in the database's own package): ``grandtest`` (all attacks, default), ``print``,
``mobile``, ``highdef`` (one PAI species), ``photo`` (print + mobile photo + highdef photo),
``video`` (mobile video + highdef video). Live samples belong to every protocol. ``support``
keeps only ``"fixed"`` or ``"hand"`` attacks.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from facelive.datasets.base import SPLITS, Dataset, Sample
from facelive.datasets.video import VIDEO_SUFFIXES, frame_count, frame_loader, sampled_indices
from facelive.errors import DatasetError
from facelive.imageio import IMAGE_SUFFIXES

PROTOCOLS = ("grandtest", "print", "mobile", "highdef", "photo", "video")
_ATTACK = re.compile(
    r"^attack_(?P<type>print|mobile|highdef)_(?P<client>client\d+)_session(?P<session>\d+)_"
    r"(?P<device>[a-z0-9]+)_(?P<medium>photo|video)_(?P<light>controlled|adverse)$"
)
_REAL = re.compile(
    r"^(?P<client>client\d+)_session(?P<session>\d+)_(?P<device>[a-z0-9]+)_"
    r"(?P<purpose>authenticate|enroll)_(?P<light>controlled|adverse)_(?P<take>\d+)$"
)
_FRAME_NO = re.compile(r"(\d+)$")


def _in_protocol(protocol: str, attack_type: str, medium: str) -> bool:
    if protocol == "grandtest":
        return True
    if protocol in ("photo", "video"):
        return medium == protocol
    return attack_type == protocol


class ReplayAttack(Dataset):
    """Reader of Replay-Attack (see the module docstring).

    Options: ``support`` (``"fixed"``, ``"hand"`` or None for both), ``subjects`` (client ids such
    as ``"client001"``), ``frame_step`` and ``max_frames`` (video layout only).
    """

    name = "replay-attack"
    has_videos = True

    def __init__(self, root: str | Path, *, split: str | None = None,
                 protocol: str | None = None, support: str | None = None,
                 subjects: Collection[str] | None = None, frame_step: int = 25,
                 max_frames: int | None = None) -> None:
        super().__init__(root, split=split, protocol=protocol or "grandtest")
        if self.protocol not in PROTOCOLS:
            raise DatasetError(
                f"replay-attack: unknown protocol {protocol!r} (use one of {', '.join(PROTOCOLS)})"
            )
        if support not in (None, "fixed", "hand"):
            raise DatasetError(f"replay-attack: support must be fixed or hand, not {support!r}")
        if frame_step < 1:
            raise DatasetError("replay-attack: frame_step must be >= 1")
        self.support = support
        self.subjects = None if subjects is None else {str(s) for s in subjects}
        self.frame_step = frame_step
        self.max_frames = max_frames

    def _list(self) -> list[Sample]:
        splits = [self.split] if self.split else [s for s in SPLITS if (self.root / s).is_dir()]
        if self.split and not (self.root / self.split).is_dir():
            raise DatasetError(f"replay-attack: split folder {self.root / self.split} not found")
        if not splits:
            raise DatasetError(f"replay-attack: no train/devel/test folder in {self.root}")
        out: list[Sample] = []
        for split in splits:
            base = self.root / split
            if not (base / "real").is_dir() and not (base / "attack").is_dir():
                raise DatasetError(f"replay-attack: {base} has neither real/ nor attack/")
            out.extend(self._entries(split, base / "real", None))
            for support in ("fixed", "hand"):
                if self.support in (None, support):
                    out.extend(self._entries(split, base / "attack" / support, support))
        return out

    def _entries(self, split: str, folder: Path, support: str | None) -> list[Sample]:
        if not folder.is_dir():
            return []
        out: list[Sample] = []
        for entry in sorted(folder.iterdir()):
            is_video = entry.is_file() and entry.suffix.lower() in VIDEO_SUFFIXES
            if not (entry.is_dir() or is_video):
                continue
            name = entry.stem if is_video else entry.name
            rel_group = entry.relative_to(self.root).with_suffix("").as_posix() if is_video \
                else entry.relative_to(self.root).as_posix()
            m = (_ATTACK if support else _REAL).match(name)
            if m is None:
                self.skipped.append(f"{rel_group}: name not recognised")
                continue
            g = m.groupdict()
            if self.subjects is not None and g["client"] not in self.subjects:
                continue
            if support:
                if not _in_protocol(self.protocol or "grandtest", g["type"], g["medium"]):
                    continue
                label, atype, medium = "spoof", g["type"], g["medium"]
            else:
                if g["purpose"] != "authenticate":
                    continue
                label, atype, medium = "live", None, None
            meta = [("session", g["session"]), ("device", g["device"]), ("lighting", g["light"])]
            if support:
                meta.append(("support", support))
            common = dict(label=label, attack_type=atype, subject=g["client"], group=rel_group,
                          split=split, attack_medium=medium)
            if is_video:
                try:
                    n = frame_count(entry)
                except DatasetError as exc:
                    self.skipped.append(f"{rel_group}: {exc}")
                    continue
                wanted = tuple(sampled_indices(n, self.frame_step, self.max_frames))
                for i in wanted:
                    out.append(Sample(
                        key=f"{rel_group}{entry.suffix}#{i:05d}", path=entry,
                        meta=(*meta, ("frame", str(i))),
                        loader=frame_loader(entry, i, wanted), **common,
                    ))
            else:
                frames = sorted(f for f in entry.iterdir()
                                if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
                if not frames:
                    self.missing.append(f"{rel_group}: no frames")
                for f in frames:
                    num = _FRAME_NO.search(f.stem)
                    fmeta = (*meta, ("frame", str(int(num.group(1))))) if num else tuple(meta)
                    out.append(Sample(key=f.relative_to(self.root).as_posix(), path=f,
                                      meta=fmeta, **common))
        return out
