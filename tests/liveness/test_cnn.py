"""The CNN liveness test: shipped ONNX model, preprocessing, no-face handling, ONNX vs torch."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from facelive import modelstore
from facelive.errors import ModelError
from facelive.liveness import Frame
from facelive.liveness.cnn import CNNTest
from facelive.liveness.probe import ProbeTest
from facelive.types import FaceBox


@pytest.fixture(scope="module")
def cnn() -> CNNTest:
    return CNNTest()


def test_card_and_model_load(cnn):
    info = cnn.info()
    assert info["name"] == "cnn" and info["needs_face"] is True
    assert cnn.size == modelstore.read_json("cnn.json")["input_size"] and cnn.context == 2.0
    assert 0.0 < cnn.threshold < 1.0
    assert (modelstore.MODEL_DIR / "cnn.onnx").stat().st_size <= 20 * 1024 * 1024


CROP_NETWORKS = pytest.mark.parametrize("name, cls", [("cnn", CNNTest), ("probe", ProbeTest)])
"""Both tests that feed the square face crop to an ONNX network (the CNN and the probe)."""


@CROP_NETWORKS
def test_no_face_gives_no_score(name, cls):
    res = cls().score(Frame(np.full((240, 320, 3), 100, np.uint8), face=None))
    assert res.status == "no_face" and res.score is None


def test_scores_a_crop_batch(cnn, rng):
    crops = rng.integers(0, 256, (3, cnn.size, cnn.size, 3), dtype=np.uint8)
    p = cnn.predict_crops(crops)
    assert p.shape == (3,) and np.all((p >= 0) & (p <= 1))
    np.testing.assert_allclose(cnn.predict_crops(crops[1]), p[1:2], atol=1e-5)
    with pytest.raises(ValueError):
        cnn.predict_crops(np.zeros((1, 100, 100, 3), np.uint8))


def test_frame_crop_is_cached_and_scored(cnn, rng):
    img = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    frame = Frame(img, face=FaceBox(120, 80, 60, 70, 0.9))
    res = cnn.score(frame)
    assert res.status == "ok" and 0.0 <= res.score <= 1.0
    assert any(k.startswith("crop:") for k in frame.cache)


@CROP_NETWORKS
def test_tampered_model_is_refused(tmp_path, name, cls):
    for f in (f"{name}.onnx", f"{name}.json", "SHA256SUMS"):
        shutil.copy(modelstore.MODEL_DIR / f, tmp_path / f)
    assert cls(tmp_path / f"{name}.onnx").threshold > 0
    data = bytearray((tmp_path / f"{name}.onnx").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / f"{name}.onnx").write_bytes(bytes(data))
    with pytest.raises(ModelError, match="checksum"):
        cls(tmp_path / f"{name}.onnx")


def test_real_frames_get_sensible_scores(cnn, shared_data):
    from facelive.face.detection import FaceDetector
    from facelive.imageio import load_image

    root = shared_data / "replay-attack" / "devel"
    live = sorted((root / "real").glob("*/frame_*.jpg"))[::60][:5]
    attack = sorted((root / "attack").glob("*/*/frame_*.jpg"))[::300][:5]
    scores = {}
    with FaceDetector() as det:
        for kind, paths in (("live", live), ("attack", attack)):
            s = []
            for p in paths:
                img = load_image(p)
                res = cnn.score(Frame(img, det.detect(img)))
                assert res.status == "ok", (p, res)
                s.append(res.score)
            scores[kind] = np.array(s)
    assert len(scores["live"]) == len(scores["attack"]) == 5
    # devel frames: most are classified correctly at the card's threshold
    assert (scores["live"] >= cnn.threshold).sum() >= 4
    assert (scores["attack"] < cnn.threshold).sum() >= 4
    assert scores["live"].mean() > scores["attack"].mean()


def test_onnx_export_matches_torch(rng):
    torch = pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    pytest.importorskip("onnx")
    from facelive.training.cnn.export import export_onnx, max_abs_difference
    from facelive.training.cnn.model import build_model

    torch.manual_seed(0)
    net = build_model(pretrained=False).eval()
    data = export_onnx(net, 224)
    x = rng.normal(size=(3, 3, 224, 224)).astype(np.float32)
    assert max_abs_difference(net, data, x) < 1e-4
