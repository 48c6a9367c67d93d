"""HDF5 training cache: round trip, face crops, atomic writes, the `facelive dataset` command."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from facelive.cli import main
from facelive.datasets import Sample, open_dataset
from facelive.datasets.cache import CachedDataset, build_cache, fit_image
from facelive.errors import DatasetError
from facelive.types import FaceBox


def _tree(root: Path) -> None:
    for name, val, shape in (("live/a.png", 200, (60, 80)), ("live/b.png", 180, (64, 64)),
                             ("spoof/print/c.png", 40, (80, 60)),
                             ("spoof/replay/d.png", 90, (50, 50))):
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        img = np.full((*shape, 3), val, np.uint8)
        img[..., 2] = 7  # red channel marks BGR order
        cv2.imwrite(str(p), img)


def test_fit_image() -> None:
    img = np.full((60, 120, 3), 255, np.uint8)
    pad = fit_image(img, 32, "pad")
    assert pad.shape == (32, 32, 3) and pad[0, 0].tolist() == [0, 0, 0]
    assert pad[16, 16].tolist() == [255, 255, 255] and pad[8:24].min() == 255
    assert fit_image(img, 32, "crop").min() == 255
    assert fit_image(img, 32, "stretch").shape == (32, 32, 3)
    with pytest.raises(ValueError):
        fit_image(img, 32, "zoom")


def test_cache_round_trip(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    (tmp_path / "d" / "spoof" / "print" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    ds = open_dataset("folder", tmp_path / "d")
    out = tmp_path / "c.h5"
    res = build_cache(ds.samples(), out, size=32, source="folder:test", progress=False)
    assert res["n"] == 4 and res["live"] == 2 and res["spoof"] == 2 and len(res["skipped"]) == 1
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    with CachedDataset(out) as c:
        assert len(c) == 4 and c.image_size == 32
        assert c.labels.tolist() == [1, 1, 0, 0]
        assert c.keys == ["live/a.png", "live/b.png", "spoof/print/c.png", "spoof/replay/d.png"]
        assert c.attack_types == [None, None, "print", "replay"]
        assert c.splits == ["test"] * 4 and c.groups == c.keys
        assert c.args["size"] == 32 and c.source == "folder:test"
        assert c.skipped[0][0] == "spoof/print/broken.png"
        assert c.attrs["channel_order"] == "BGR"
        assert c[1].shape == (32, 32, 3) and c[1][16, 16].tolist() == [180, 180, 7]
        assert c[0][16, 16].tolist() == [200, 200, 7] and c[0][0, 0].tolist() == [0, 0, 0]
        batches = list(c.batches(3))
        assert [b.images.shape[0] for b in batches] == [3, 1]
        assert batches[0].labels.tolist() == [1, 1, 0]
        shuffled = list(c.batches(2, shuffle=True, seed=1))
        idx = np.concatenate([b.indices for b in shuffled])
        assert sorted(idx.tolist()) == [0, 1, 2, 3]
        for b in shuffled:  # images follow their indices, whatever the order
            for img, i in zip(b.images, b.indices, strict=True):
                assert np.array_equal(img, c[i])
        assert c.read([3, 0, 3]).shape == (3, 32, 32, 3)
        sub = list(c.batches(8, indices=[2, 3]))
        assert sub[0].labels.tolist() == [0, 0]


class _FakeDetector:
    def detect(self, image: np.ndarray) -> FaceBox | None:
        if image.mean() < 100:
            return None
        return FaceBox(x=10, y=10, w=20, h=20, confidence=0.9)


def test_cache_face_crop(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    samples = open_dataset("folder", tmp_path / "d").samples()
    res = build_cache(samples, tmp_path / "f.h5", size=24, face_crop=True,
                      detector=_FakeDetector(), context=1.0, progress=False)
    assert res["faces"] == 2
    with CachedDataset(tmp_path / "f.h5") as c:
        assert c.face_boxes[:2].tolist() == [[10, 10, 20, 20]] * 2
        assert c.face_boxes[2:].tolist() == [[-1, -1, -1, -1]] * 2
        assert c.args["face_crop"] is True
        assert c[0].min() > 0  # a crop inside the image: no padding


def test_interrupted_build_leaves_no_file(tmp_path: Path) -> None:
    _tree(tmp_path / "d")
    samples = open_dataset("folder", tmp_path / "d").samples()
    out = tmp_path / "c.h5"
    out.write_bytes(b"previous content")

    def boom() -> np.ndarray:
        raise KeyboardInterrupt

    bad = [*samples[:2], Sample(key="x", label="live", attack_type=None, subject="s",
                                group="x", split="test", loader=boom)]
    with pytest.raises(KeyboardInterrupt):
        build_cache(bad, out, size=16, progress=False)
    assert out.read_bytes() == b"previous content"  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.h5", "d"]  # no temp file left
    out.unlink()
    with pytest.raises(DatasetError):
        build_cache([], out, size=16, progress=False)
    with pytest.raises(DatasetError):  # nothing readable
        build_cache([Sample(key="y", label="live", attack_type=None, subject="s", group="y",
                            split="test", path=tmp_path / "none.png")], out, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_cached_dataset_rejects_other_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        CachedDataset(tmp_path / "none.h5")
    (tmp_path / "x.h5").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not an HDF5"):
        CachedDataset(tmp_path / "x.h5")
    import h5py

    with h5py.File(tmp_path / "y.h5", "w") as f:
        f["a"] = [1]
    with pytest.raises(DatasetError, match="not a facelive cache"):
        CachedDataset(tmp_path / "y.h5")


def test_cli_dataset_cache_and_info(tmp_path: Path, capsys) -> None:
    _tree(tmp_path / "d")
    out = tmp_path / "o" / "c.h5"
    assert main(["dataset", "cache", "--dataset", "folder", "--root", str(tmp_path / "d"),
                 "--out", str(out), "--size", "16", "--quiet"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["n"] == 4 and out.is_file()
    assert main(["dataset", "info", "--dataset", "folder", "--root", str(tmp_path / "d")]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["splits"]["test"]["live"] == 2
    assert info["splits"]["test"]["attack_types"] == {"print": 1, "replay": 1}
    assert main(["dataset", "info", "--dataset", "folder", "--root", str(tmp_path / "no")]) == 2
    assert main(["dataset", "cache", "--dataset", "folder", "--root", str(tmp_path / "d"),
                 "--out", str(out), "--frame-step", "2"]) == 2


@pytest.mark.data
def test_cache_shared_replay_subset(shared_data: Path, tmp_path: Path) -> None:
    ds = open_dataset("replay-attack", shared_data / "replay-attack", split="devel",
                      protocol="print")
    samples = ds.samples()[::60]
    build_cache(samples, tmp_path / "r.h5", size=64, progress=False)
    with CachedDataset(tmp_path / "r.h5") as c:
        assert len(c) == len(samples) and c.keys == [s.key for s in samples]
        assert c.groups == [s.group for s in samples]
