"""Dataset readers: synthetic trees written here (real .jpg/.mov/.hdf5) and the shared data."""

from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest

from facelive.datasets import Sample, nuaa_subject_split, open_dataset
from facelive.errors import DatasetError, ImageError


def _jpg(path: Path, value: int = 128, size: tuple[int, int] = (48, 64)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((*size, 3), value, np.uint8)
    assert cv2.imwrite(str(path), img)


def _mov(path: Path, n: int = 30) -> None:
    """A real QuickTime file whose frame i has grey level 8*i."""
    path.parent.mkdir(parents=True, exist_ok=True)
    w = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (64, 48))
    for i in range(n):
        w.write(np.full((48, 64, 3), 8 * i, np.uint8))
    w.release()
    assert path.stat().st_size > 0


# ----------------------------------------------------------------------------------- NUAA
def _nuaa(root: Path) -> None:
    live = ["0001/0001_00_00_01_0.jpg", "0001/0001_00_00_01_1.jpg", "0002/0002_01_05_01_3.jpg"]
    spoof = ["0001/0001_00_00_01_0.jpg", "0002/0002_00_00_01_7.jpg", "0003/0003_00_00_01_2.jpg"]
    for e in live:
        _jpg(root / "ClientRaw" / e)
    for e in spoof[:2]:  # the third attack entry is listed but missing
        _jpg(root / "ImposterRaw" / e, 30)
    (root / "client_train_raw.txt").write_bytes("\r\n".join(live).encode() + b"\r\n")
    # backslash separators, LF endings, a blank line
    (root / "imposter_train_raw.txt").write_text("\n".join(e.replace("/", "\\") for e in spoof)
                                                 + "\n\n")


def test_nuaa_lists_crlf_backslash_and_missing(tmp_path: Path) -> None:
    _nuaa(tmp_path)
    ds = open_dataset("nuaa", tmp_path, split="train")
    ss = ds.samples()
    assert [s.label for s in ss].count("live") == 3
    assert [s.label for s in ss].count("spoof") == 2
    assert ds.missing == ["ImposterRaw/0003/0003_00_00_01_2.jpg"]
    s = next(s for s in ss if s.label == "spoof")
    assert s.attack_type == "print" and s.attack_medium == "photo" and s.subject == "0001"
    assert s.group == s.key == "ImposterRaw/0001/0001_00_00_01_0.jpg"
    assert s.info["session"] == "01"
    img = s.load()
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert len({x.key for x in ss}) == len(ss)
    live = next(s for s in ss if s.is_live)
    assert live.attack_type is None and live.split == "train"


def test_nuaa_subjects_filter_and_split_helper(tmp_path: Path) -> None:
    _nuaa(tmp_path)
    ds = open_dataset("nuaa", tmp_path, subjects=["0002"])
    assert {s.subject for s in ds.samples()} == {"0002"} and len(ds) == 2
    assert nuaa_subject_split([f"{i:04d}" for i in range(9, 0, -1)]) == (
        ["0001", "0002", "0004", "0005", "0007", "0008"], ["0003", "0006", "0009"])
    train, held = nuaa_subject_split(tmp_path, every=2)
    assert (train, held) == (["0001"], ["0002"])


def test_nuaa_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset("nuaa", tmp_path / "nope")
    with pytest.raises(DatasetError, match="no list files"):
        open_dataset("nuaa", tmp_path).samples()
    with pytest.raises(DatasetError, match="no devel"):
        open_dataset("nuaa", tmp_path, split="devel")
    with pytest.raises(DatasetError, match="unknown dataset"):
        open_dataset("casia", tmp_path)
    with pytest.raises(DatasetError):
        open_dataset("nuaa", tmp_path, bogus_option=1)


# --------------------------------------------------------------------------- Replay-Attack
REAL = "client001_session01_webcam_authenticate_controlled_1"
ATTACKS = [
    "attack_print_client001_session01_highdef_photo_adverse",
    "attack_mobile_client001_session01_mobile_video_controlled",
    "attack_highdef_client002_session01_highdef_photo_controlled",
]


def test_replay_attack_videos(tmp_path: Path) -> None:
    _mov(tmp_path / "devel" / "real" / f"{REAL}.mov")
    _mov(tmp_path / "devel" / "real" / "client001_session01_webcam_enroll_controlled_1.mov")
    for a in ATTACKS:
        _mov(tmp_path / "devel" / "attack" / "fixed" / f"{a}.mov")
    _mov(tmp_path / "devel" / "attack" / "hand" / f"{ATTACKS[0]}.mov")
    ds = open_dataset("replay-attack", tmp_path, split="devel", frame_step=10)
    ss = ds.samples()
    # enroll videos are not part of the protocol; 30 frames / step 10 -> 3 frames per video
    assert len(ss) == 3 * (1 + 4)
    assert sum(s.is_live for s in ss) == 3
    groups = {s.group for s in ss}
    assert len(groups) == 5  # fixed and hand versions of an attack are different groups
    s = next(s for s in ss if s.attack_type == "mobile" and s.info["frame"] == "20")
    assert s.attack_medium == "video" and s.subject == "client001"
    assert s.key.endswith(".mov#00020") and s.info["support"] == "fixed"
    img = s.load()
    assert img.shape == (48, 64, 3) and img.dtype == np.uint8
    assert abs(float(img.mean()) - 160) < 12  # frame 20 really is frame 20
    assert abs(float(ss[0].load().mean()) - 0) < 12
    # protocols and support filter
    assert {s.attack_type for s in open_dataset(
        "replay", tmp_path, protocol="photo", frame_step=10) if not s.is_live} == {
        "print", "highdef"}
    assert {s.attack_type for s in open_dataset(
        "replay", tmp_path, protocol="video", frame_step=10) if not s.is_live} == {"mobile"}
    hand = open_dataset("replay-attack", tmp_path, support="hand", frame_step=15)
    assert [s.info.get("support") for s in hand if not s.is_live] == ["hand", "hand"]
    assert len(open_dataset("replay-attack", tmp_path, frame_step=10, max_frames=1)) == 5
    assert len(open_dataset("replay-attack", tmp_path, subjects=["client002"], frame_step=10)) == 3
    with pytest.raises(DatasetError, match="unknown protocol"):
        open_dataset("replay-attack", tmp_path, protocol="mask")
    with pytest.raises(DatasetError, match="not found"):
        open_dataset("replay-attack", tmp_path, split="test").samples()


def test_replay_attack_frame_folders_and_bad_names(tmp_path: Path) -> None:
    for i in (0, 79):
        _jpg(tmp_path / "train" / "real" / REAL / f"frame_{i:05d}.jpg")
        _jpg(tmp_path / "train" / "attack" / "hand" / ATTACKS[2] / f"frame_{i:05d}.jpg")
    (tmp_path / "train" / "attack" / "hand" / "not_a_replay_name").mkdir()
    ds = open_dataset("replay-attack", tmp_path)
    ss = ds.samples()
    assert len(ss) == 4 and ds.splits() == ["train"]
    assert ss[1].key == f"train/real/{REAL}/frame_00079.jpg" and ss[1].info["frame"] == "79"
    assert ss[2].group == f"train/attack/hand/{ATTACKS[2]}" and ss[2].attack_type == "highdef"
    assert ds.skipped and "not_a_replay_name" in ds.skipped[0]
    assert ss[3].load().shape == (48, 64, 3)


def test_replay_attack_corrupt_video_is_skipped(tmp_path: Path) -> None:
    p = tmp_path / "test" / "real" / f"{REAL}.mov"
    p.parent.mkdir(parents=True)
    p.write_bytes(b"not a video at all")
    ds = open_dataset("replay-attack", tmp_path, split="test")
    assert ds.samples() == [] and len(ds.skipped) == 1


# ------------------------------------------------------------------------------------ 3DMAD
def _mad_file(path: Path, n: int = 6, channel_first: bool = True) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    color = np.zeros((n, 3, 48, 64), np.uint8)
    color[:, 0] = 200  # R channel
    color[:, 2] = np.arange(n, dtype=np.uint8)[:, None, None] * 10  # B encodes the frame
    if not channel_first:
        color = np.moveaxis(color, 1, -1)
    with h5py.File(path, "w") as f:
        f["Color_Data"] = color
        f["Depth_Data"] = np.zeros((n, 48, 64), np.uint16)
        f["Eye_Pos"] = np.zeros((n, 4), np.uint16)


def test_mask3d(tmp_path: Path) -> None:
    _mad_file(tmp_path / "session01" / "Data" / "01_01_01.hdf5")
    _mad_file(tmp_path / "session03" / "Data" / "01_03_02.hdf5", channel_first=False)
    _mad_file(tmp_path / "session01" / "Data" / "09_02_01.hdf5")
    (tmp_path / "session01" / "Data" / "junk.hdf5").write_bytes(b"")
    ds = open_dataset("3dmad", tmp_path, frame_step=2)
    ss = ds.samples()
    assert len(ss) == 9 and ds.skipped and ds.splits() == ["train", "devel"]
    mask = [s for s in ss if not s.is_live]
    assert len(mask) == 3 and mask[0].attack_type == "mask" and mask[0].subject == "01"
    img = mask[1].load()  # frame 2, channel-last file
    assert img.shape == (48, 64, 3) and img[0, 0].tolist() == [20, 0, 200]  # BGR
    img = ss[2].load()  # frame 4 of a channel-first file
    assert img[0, 0].tolist() == [40, 0, 200]
    assert len({s.group for s in ss}) == 3
    assert len(open_dataset("3dmad", tmp_path, split="devel", frame_step=2)) == 3
    assert {s.subject for s in open_dataset("3dmad", tmp_path, subjects=[9])} == {"09"}


def test_mask3d_empty(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no NN_SS_RR"):
        open_dataset("3dmad", tmp_path).samples()


# ----------------------------------------------------------------------------------- folder
def test_folder_dataset(tmp_path: Path) -> None:
    _jpg(tmp_path / "live" / "a.jpg")
    _jpg(tmp_path / "live" / "bob" / "b.png")
    _jpg(tmp_path / "spoof" / "print" / "c.jpg")
    _jpg(tmp_path / "spoof" / "replay" / "d.jpg")
    _jpg(tmp_path / "spoof" / "e.jpg")
    (tmp_path / "live" / "notes.txt").write_text("x")
    ds = open_dataset("folder", tmp_path)
    ss = ds.samples()
    assert len(ss) == 5 and {s.split for s in ss} == {"test"}
    assert sorted(str(s.attack_type) for s in ss) == ["None", "None", "print", "replay", "unknown"]
    assert next(s for s in ss if s.key == "live/bob/b.png").subject == "bob"
    assert isinstance(ss[0], Sample) and ss[0].load().dtype == np.uint8
    with pytest.raises(DatasetError, match="one 'test' split"):
        open_dataset("folder", tmp_path, split="train").samples()


def test_folder_dataset_with_splits_and_errors(tmp_path: Path) -> None:
    _jpg(tmp_path / "train" / "live" / "a.jpg")
    _jpg(tmp_path / "devel" / "spoof" / "mask" / "b.jpg")
    assert [s.split for s in open_dataset("folder", tmp_path)] == ["train", "devel"]
    assert len(open_dataset("folder", tmp_path, split="devel")) == 1
    (tmp_path / "other").mkdir()
    with pytest.raises(DatasetError, match="neither live"):
        open_dataset("folder", tmp_path / "other").samples()
    bad = tmp_path / "train" / "live" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff garbage")
    ds = open_dataset("folder", tmp_path, split="train")
    s = next(s for s in ds if s.key.endswith("broken.jpg"))
    with pytest.raises(ImageError):
        s.load()


# ------------------------------------------------------------------------------ shared data
@pytest.mark.data
def test_shared_nuaa_counts(shared_data: Path) -> None:
    ds = open_dataset("nuaa", shared_data / "nuaa", split="train")
    ss = ds.samples()
    assert sum(s.is_live for s in ss) == 1743
    assert sum(not s.is_live for s in ss) == 1748
    assert ds.missing == [] and len({s.subject for s in ss}) == 9
    assert ss[0].load().shape == (480, 640, 3)


@pytest.mark.data
@pytest.mark.parametrize("split", ["train", "devel"])
def test_shared_replay_attack_counts(shared_data: Path, split: str) -> None:
    root = shared_data / "replay-attack"
    ds = open_dataset("replay-attack", root, split=split)
    ss = ds.samples()
    assert sum(s.is_live for s in ss) == 300
    assert sum(not s.is_live for s in ss) == 1500
    assert len({s.group for s in ss if s.is_live}) == 60
    assert len({s.group for s in ss if not s.is_live}) == 300
    assert len({s.subject for s in ss}) == 15
    per_type = {t: sum(s.attack_type == t for s in ss) for t in ("print", "mobile", "highdef")}
    assert per_type == {"print": 300, "mobile": 600, "highdef": 600}
    assert sum(s.attack_medium == "photo" for s in ss) == 900
    assert sum(s.attack_medium == "video" for s in ss) == 600
    assert ds.missing == [] and ds.skipped == []
    for protocol, n_spoof in [("print", 300), ("mobile", 600), ("highdef", 600),
                              ("photo", 900), ("video", 600), ("grandtest", 1500)]:
        p = open_dataset("replay-attack", root, split=split, protocol=protocol).samples()
        assert (sum(s.is_live for s in p), sum(not s.is_live for s in p)) == (300, n_spoof)
    fixed = open_dataset("replay-attack", root, split=split, support="fixed").samples()
    assert sum(not s.is_live for s in fixed) == 750
    assert ss[0].load().shape == (240, 320, 3)


@pytest.mark.data
def test_shared_replay_attack_subject_disjoint(shared_data: Path) -> None:
    ds = open_dataset("replay-attack", shared_data / "replay-attack")
    by = {sp: {s.subject for s in ds.samples() if s.split == sp} for sp in ("train", "devel")}
    assert not by["train"] & by["devel"]
