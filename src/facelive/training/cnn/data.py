"""Training data for the CNN test: sample selection and a face-crop cache.

Samples come from the dataset readers (:func:`facelive.datasets.open_dataset`): NUAA (Tan et al.,
ECCV 2010) official train list and Replay-Attack (Chingovska et al., BIOSIG 2012) train/devel.
:func:`list_samples` tags each sample with its database (``sample.info["dataset"]``) and groups
NUAA images by capture (subject x session x label) instead of one group per image, so that
:func:`subsample_nuaa` and capture-level metrics see the frames of one capture together.
:func:`build_crop_cache` detects the face once per image and writes the centred square crop
(:func:`facelive.face.detection.square_crop`) as JPEG plus a ``manifest.json``. The cache holds
images derived from research-only data: keep it in a git-ignored folder, never commit it.

The dataset readers are imported lazily: ``load_crop_cache`` and ``nuaa_heldout_subjects`` are
all that ``experiments/device_train_cnn.py`` needs on a machine that only has the crops.
"""

from __future__ import annotations

import dataclasses
import json
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from facelive.errors import DatasetError

if TYPE_CHECKING:
    from facelive.datasets import Sample

NUAA_TRAIN_SUBJECTS = tuple(f"{i:04d}" for i in range(1, 10))
"""Subjects of the NUAA official train list (the only NUAA part the project uses)."""


def dataset_of(sample: Sample) -> str:
    """The database a sample of :func:`list_samples` comes from (``"nuaa"``/``"replay-attack"``)."""
    return sample.info.get("dataset", "")


def _nuaa_capture(sample: Sample) -> str:
    """NUAA capture id: subject, session (from the file name) and label."""
    return f"nuaa/{sample.subject}/{sample.info.get('session', '?')}/{sample.label}"


def with_dataset(sample: Sample, dataset: str, group: str | None = None) -> Sample:
    """``sample`` tagged with its database (and optionally regrouped)."""
    return dataclasses.replace(sample, meta=(*sample.meta, ("dataset", dataset)),
                               group=sample.group if group is None else group)


def list_samples(nuaa: Path | None, replay_attack: Path | None,
                 ra_splits: Sequence[str] = ("train", "devel"),
                 nuaa_subjects: Sequence[str] | None = None) -> list[Sample]:
    """NUAA (official train list, optionally only ``nuaa_subjects``) and Replay-Attack
    (``ra_splits``) samples, tagged with their database and NUAA grouped by capture."""
    from facelive.datasets import open_dataset

    out: list[Sample] = []
    if nuaa is not None:
        ds = open_dataset("nuaa", nuaa, split="train", subjects=nuaa_subjects)
        smp = ds.samples()
        if ds.missing:
            raise DatasetError(f"nuaa: {len(ds.missing)} listed files are missing "
                               f"(first: {ds.missing[0]})")
        out += [with_dataset(s, "nuaa", _nuaa_capture(s)) for s in smp]
    if replay_attack is not None:
        for split in ra_splits:
            smp = open_dataset("replay-attack", replay_attack, split=split).samples()
            if not smp:
                raise DatasetError(f"replay-attack: no frames in {Path(replay_attack) / split}")
            out += [with_dataset(s, "replay-attack") for s in smp]
    return out


def subsample_nuaa(samples: list[Sample], step: int = 2) -> list[Sample]:
    """Keep every ``step``-th NUAA frame of each capture (consecutive ones are near-duplicates).

    Frames are ordered by the image number that ends the NUAA file name; other samples are kept.
    """
    groups: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        if dataset_of(s) == "nuaa":
            groups[s.group].append(s)
    keep: set[str] = set()
    for v in groups.values():
        v = sorted(v, key=lambda s: int(Path(s.key).stem.split("_")[-1]))
        keep.update(s.key for s in v[::step])
    return [s for s in samples if dataset_of(s) != "nuaa" or s.key in keep]


def nuaa_heldout_subjects() -> tuple[str, ...]:
    """NUAA subjects held back from the NUAA-trained models (0003, 0006, 0009).

    The same as ``facelive.datasets.nuaa_subject_split(NUAA_TRAIN_SUBJECTS)[1]`` (a test checks
    it), kept as a constant so that crop-cache users need not import the dataset readers.
    """
    return ("0003", "0006", "0009")


def crop_record(sample: Sample) -> dict:
    """The crop-cache manifest fields of a sample (label 1 live / 0 attack; ``attack_type``
    ``"live"`` for live samples), as :func:`load_crop_cache` users expect them."""
    return {"path": str(sample.path), "key": sample.key, "dataset": dataset_of(sample),
            "split": sample.split, "label": int(sample.is_live),
            "attack_type": sample.attack_type or "live", "subject": sample.subject,
            "group": sample.group}


def build_crop_cache(
    samples: list[Sample],
    out_dir: Path,
    *,
    context: float = 2.0,
    size: int = 224,
    quality: int = 92,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Detect, crop and save every sample under ``out_dir``; write and return the manifest.

    Images where no face is found are listed (by path) under ``"no_face"`` and left out of
    training.
    """
    import cv2

    from facelive.face.detection import FaceDetector, crop_window, square_crop

    out_dir = Path(out_dir)
    (out_dir / "img").mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    no_face: list[str] = []
    with FaceDetector() as det:
        for i, smp in enumerate(samples):
            img = smp.load()
            box = det.detect(img)
            if box is None:
                no_face.append(str(smp.path))
            else:
                crop = square_crop(img, box, context, size)
                x0, y0, side = crop_window(img.shape, box, context)
                h, w = img.shape[:2]
                pad = 1.0 - (
                    max(0, min(x0 + side, w) - max(x0, 0))
                    * max(0, min(y0 + side, h) - max(y0, 0))
                ) / float(side * side)
                name = f"{len(records):05d}.jpg"
                ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, quality])
                if not ok:
                    raise DatasetError(f"cannot encode the crop of {smp.key}")
                (out_dir / "img" / name).write_bytes(buf.tobytes())
                rec = crop_record(smp)
                rec.update(file=f"img/{name}", box=[box.x, box.y, box.w, box.h],
                           pad_fraction=round(float(pad), 4))
                records.append(rec)
            if progress is not None:
                progress(i + 1, len(samples))
    manifest = {"context": context, "size": size, "quality": quality,
                "records": records, "no_face": no_face}
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=0))
    return manifest


def load_crop_cache(cache_dir: Path) -> tuple[dict, np.ndarray]:
    """Read a crop cache: the manifest and an ``(N, S, S, 3)`` uint8 BGR array of its crops."""
    import cv2

    cache_dir = Path(cache_dir)
    mf = cache_dir / "manifest.json"
    if not mf.is_file():
        raise DatasetError(f"{mf} is missing: build the crop cache first")
    manifest = json.loads(mf.read_text())
    s = int(manifest["size"])
    arr = np.empty((len(manifest["records"]), s, s, 3), np.uint8)
    for i, r in enumerate(manifest["records"]):
        im = cv2.imread(str(cache_dir / r["file"]), cv2.IMREAD_COLOR)
        if im is None or im.shape != (s, s, 3):
            raise DatasetError(f"bad crop {cache_dir / r['file']}")
        arr[i] = im
    return manifest, arr
