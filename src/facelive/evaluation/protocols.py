"""Generalisation protocols: train on one capture domain, test on another.

In-domain numbers (Replay-Attack devel) say little about a camera, room or session never seen in
training. Each protocol split names a **source** (where a test's model is trained and its
threshold chosen) and a **target** (scored once, at the source's threshold):

============== =========================================================== ========================
name           source: train part / threshold part (subject-disjoint)      target
============== =========================================================== ========================
cross-session  NUAA s01: subjects other than 0003/0006/0009 /               NUAA s02
               0003, 0006, 0009                                            (all subjects)
nuaa-to-ra     NUAA, both sessions: the same subject split                 Replay-Attack devel
ra-to-nuaa     Replay-Attack train / Replay-Attack devel                   NUAA, both sessions
============== =========================================================== ========================

NUAA here is the official *training* list (the only part the developers have); its file names'
fourth field is the capture session. Held-out subjects *of a training session* are not a
generalisation check (same camera, lighting and session), so no split uses them as a target.

This module only selects samples (:class:`Universe`, :func:`protocol_split`,
:func:`subject_halves`); training the source models is :mod:`facelive.training.generalisation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facelive.datasets.base import Sample
from facelive.errors import DatasetError

PROTOCOLS = ("cross-session", "nuaa-to-ra", "ra-to-nuaa")
"""The generalisation protocol splits, in report order (``all`` selects every one)."""

DESCRIPTIONS = {
    "cross-session": "NUAA s01 -> NUAA s02",
    "nuaa-to-ra": "NUAA -> Replay-Attack devel",
    "ra-to-nuaa": "Replay-Attack -> NUAA",
}
CROSS_DATABASE = ("nuaa-to-ra", "ra-to-nuaa")

PARTS = ("nuaa", "ra-train", "ra-devel")
"""The sample sets of a :class:`Universe`, in order."""


def expand_protocols(names: str | Sequence[str]) -> list[str]:
    """``"all"`` or comma-separated protocol names -> list of names (validated, in order)."""
    items = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    if "all" in items:
        return list(PROTOCOLS)
    bad = [n for n in items if n not in PROTOCOLS]
    if bad or not items:
        raise DatasetError(f"unknown protocol(s) {', '.join(bad) or '(none)'}; use "
                           f"{', '.join(PROTOCOLS)} or all")
    return [n for n in PROTOCOLS if n in items]


def session_of(sample: Sample) -> str:
    """A NUAA sample's capture session (``"01"``, ``"02"``): the file name's fourth field."""
    s = sample.info.get("session")
    if s is None:
        name = Path(sample.key).name.split("_")
        if len(name) < 5:
            raise DatasetError(f"{sample.key}: no session field in the NUAA file name")
        s = name[3]
    return s


@dataclass
class Universe:
    """Every sample the protocols use, concatenated: NUAA (train list), Replay-Attack train,
    Replay-Attack devel. Per-sample arrays (features, scores) are computed once over it."""

    samples: list[Sample]
    part: np.ndarray  # "nuaa" | "ra-train" | "ra-devel"
    domain: np.ndarray  # capture domain: "nuaa-s01", "nuaa-s02", "ra"
    subject: np.ndarray  # database-prefixed subject id ("nuaa/0001", "ra/client003")
    sizes: dict[str, int]

    @classmethod
    def from_parts(cls, nuaa: Sequence[Sample], ra_train: Sequence[Sample],
                   ra_devel: Sequence[Sample]) -> Universe:
        samples = [*nuaa, *ra_train, *ra_devel]
        part = np.array(["nuaa"] * len(nuaa) + ["ra-train"] * len(ra_train)
                        + ["ra-devel"] * len(ra_devel), dtype=object)
        domain = np.array([f"nuaa-s{session_of(s)}" for s in nuaa]
                          + ["ra"] * (len(ra_train) + len(ra_devel)), dtype=object)
        subject = np.array([f"{'nuaa' if p == 'nuaa' else 'ra'}/{s.subject}"
                            for s, p in zip(samples, part, strict=True)], dtype=object)
        return cls(samples, part, domain, subject,
                   {"nuaa": len(nuaa), "ra-train": len(ra_train), "ra-devel": len(ra_devel)})

    @classmethod
    def load(cls, nuaa_root: str | Path, replay_root: str | Path) -> Universe:
        from facelive.datasets import open_dataset

        return cls.from_parts(open_dataset("nuaa", nuaa_root, split="train").samples(),
                              open_dataset("replay-attack", replay_root, split="train").samples(),
                              open_dataset("replay-attack", replay_root, split="devel").samples())

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def is_live(self) -> np.ndarray:
        return np.array([s.is_live for s in self.samples])

    def select(self, mask: np.ndarray) -> list[Sample]:
        return [self.samples[i] for i in np.flatnonzero(mask)]

    def part_slice(self, name: str) -> slice:
        """Where part ``name`` lies in :attr:`samples`."""
        start = 0
        for p in PARTS:
            if p == name:
                return slice(start, start + self.sizes[p])
            start += self.sizes[p]
        raise KeyError(name)


@dataclass(frozen=True)
class ProtocolSplit:
    """Boolean masks over a :class:`Universe`: where the source models train, where their
    thresholds (and fusions) are chosen, and the target scored at those thresholds."""

    name: str
    description: str
    train: np.ndarray
    devel: np.ndarray
    target: np.ndarray
    source: str
    target_name: str


def nuaa_heldout(universe: Universe) -> np.ndarray:
    """NUAA samples of the held-back subjects (every third: 0003, 0006, 0009)."""
    from facelive.datasets.nuaa import nuaa_subject_split

    nuaa = universe.part == "nuaa"
    ids = sorted({s.subject for s, n in zip(universe.samples, nuaa, strict=True) if n})
    _, held = nuaa_subject_split(ids)
    return nuaa & np.array([s.subject in set(held) for s in universe.samples])


def protocol_split(name: str, universe: Universe) -> ProtocolSplit:
    """The masks of protocol split ``name`` (one of :data:`PROTOCOLS`)."""
    nuaa = universe.part == "nuaa"
    held = nuaa_heldout(universe)
    s01, s02 = universe.domain == "nuaa-s01", universe.domain == "nuaa-s02"
    if name == "cross-session":
        train, devel, target = nuaa & s01 & ~held, s01 & held, s02
        src, tgt = "NUAA s01", "NUAA s02"
    elif name == "nuaa-to-ra":
        train, devel, target = nuaa & ~held, held, universe.part == "ra-devel"
        src, tgt = "NUAA", "Replay-Attack devel"
    elif name == "ra-to-nuaa":
        train, devel, target = (universe.part == "ra-train", universe.part == "ra-devel", nuaa)
        src, tgt = "Replay-Attack", "NUAA"
    else:
        raise DatasetError(f"unknown protocol {name!r} (use {', '.join(PROTOCOLS)})")
    for what, m in (("train", train), ("devel", devel), ("target", target)):
        live = universe.is_live[m]
        if not live.any() or live.all():
            raise DatasetError(f"protocol {name}: the {what} part needs live and attack samples")
    return ProtocolSplit(name, DESCRIPTIONS[name], train, devel, target, src, tgt)


def subject_halves(universe: Universe, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split ``mask``'s subjects into two deterministic halves (sorted ids, alternating):
    ``(calibration, evaluation)`` masks. Used to measure calibration on a target: calibrate on
    the live frames of the first half, evaluate on the second."""
    ids = sorted(set(universe.subject[mask]))
    if len(ids) < 2:
        raise DatasetError("subject_halves: need at least two subjects")
    first = set(ids[0::2])
    in_first = np.array([s in first for s in universe.subject])
    return mask & in_first, mask & ~in_first
