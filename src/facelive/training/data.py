"""Training data for the CNN test: dataset listing and a face-crop cache.

Listing reads the official folder layouts directly (NUAA: Tan et al., ECCV 2010; Replay-Attack:
Chingovska et al., BIOSIG 2012) in a fixed order. :func:`build_crop_cache` detects the face once
per image and writes the centred square crop (:func:`facelive.face.square_crop`) as JPEG plus a
``manifest.json``. The cache holds images derived from research-only data: keep it in a
git-ignored folder, never commit it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from facelive.errors import DatasetError

LIVE, SPOOF = 1, 0


@dataclass(frozen=True)
class Item:
    """One image of a dataset, with what training and evaluation need to know about it."""

    path: str
    dataset: str  # "nuaa" | "replay-attack"
    split: str  # "train" | "devel"
    label: int  # 1 live, 0 attack
    attack_type: str  # "live", "print", "mobile", "highdef"
    subject: str
    group: str  # video (Replay-Attack) or subject+session (NUAA): frames of one capture


_RA_TYPE = re.compile(r"attack_(print|mobile|highdef)_client(\d+)")
_RA_CLIENT = re.compile(r"client(\d+)")


def _nuaa_items(root: Path) -> list[Item]:
    items: list[Item] = []
    for list_name, folder, label in (
        ("client_train_raw.txt", "ClientRaw", LIVE),
        ("imposter_train_raw.txt", "ImposterRaw", SPOOF),
    ):
        lst = root / list_name
        if not lst.is_file():
            raise DatasetError(f"NUAA list {lst} is missing (is {root} the NUAA folder?)")
        for line in lst.read_text(errors="replace").splitlines():
            rel = line.strip().replace("\\", "/")
            if not rel:
                continue
            p = root / folder / rel
            parts = Path(rel).stem.split("_")
            if len(parts) != 5:
                raise DatasetError(f"unexpected NUAA file name {rel!r} in {lst}")
            subject, session = parts[0], parts[3]
            items.append(
                Item(str(p), "nuaa", "train", label, "live" if label else "print", subject,
                     f"nuaa-{subject}-{session}-{label}")
            )
    return items


def _ra_items(root: Path, splits: tuple[str, ...]) -> list[Item]:
    items: list[Item] = []
    for split in splits:
        base = root / split
        if not base.is_dir():
            raise DatasetError(f"Replay-Attack split folder {base} is missing")
        for p in sorted(base.glob("*/**/*.jpg")):
            video = p.parent.name
            rel = p.relative_to(base).parts
            live = rel[0] == "real"
            m = _RA_TYPE.search(video)
            if not live and m is None:
                raise DatasetError(f"cannot parse the attack type of {video!r}")
            c = _RA_CLIENT.search(video)
            subject = c.group(1) if c else video
            items.append(
                Item(str(p), "replay-attack", split, LIVE if live else SPOOF,
                     "live" if live else m.group(1), subject,
                     "/".join(rel[:-1]))  # type: ignore[union-attr]
            )
    if not items:
        raise DatasetError(f"no frames found under {root}")
    return items


def list_items(nuaa: Path | None, replay_attack: Path | None,
               ra_splits: tuple[str, ...] = ("train", "devel")) -> list[Item]:
    """List NUAA (official train list) and Replay-Attack (``ra_splits``) images."""
    items: list[Item] = []
    if nuaa is not None:
        items += _nuaa_items(Path(nuaa))
    if replay_attack is not None:
        items += _ra_items(Path(replay_attack), ra_splits)
    return items


def subsample_nuaa(items: list[Item], step: int = 2) -> list[Item]:
    """Keep every ``step``-th NUAA frame of each capture (consecutive ones are near-duplicates)."""
    from collections import defaultdict

    groups: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        if it.dataset == "nuaa":
            groups[it.group].append(it)
    keep: set[str] = set()
    for v in groups.values():
        v = sorted(v, key=lambda it: int(Path(it.path).stem.split("_")[-1]))
        keep.update(it.path for it in v[::step])
    return [it for it in items if it.dataset != "nuaa" or it.path in keep]


def nuaa_heldout_subjects() -> tuple[str, ...]:
    """NUAA subjects held back from the NUAA-trained models, for cross-dataset evaluation."""
    return ("0003", "0006", "0009")


def build_crop_cache(
    items: list[Item],
    out_dir: Path,
    *,
    context: float = 2.0,
    size: int = 224,
    quality: int = 92,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Detect, crop and save every item under ``out_dir``; write and return the manifest.

    Images where no face is found are listed under ``"no_face"`` and left out of training.
    """
    import cv2

    from facelive.face import FaceDetector, crop_window, square_crop
    from facelive.imageio import load_image

    out_dir = Path(out_dir)
    (out_dir / "img").mkdir(parents=True, exist_ok=True)
    records: list[dict] = []
    no_face: list[str] = []
    with FaceDetector() as det:
        for i, it in enumerate(items):
            img = load_image(it.path)
            box = det.detect(img)
            if box is None:
                no_face.append(it.path)
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
                    raise RuntimeError(f"cannot encode the crop of {it.path}")
                (out_dir / "img" / name).write_bytes(buf.tobytes())
                rec = asdict(it)
                rec.update(file=f"img/{name}", box=[box.x, box.y, box.w, box.h],
                           pad_fraction=round(float(pad), 4))
                records.append(rec)
            if progress is not None:
                progress(i + 1, len(items))
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
