"""The CNN's two precisions: the int8 model is the default, the float one stays available (and a
re-trained float model in the models folder takes over), they agree on a real face, and the
table look-up preprocessing gives the float32 arithmetic's values bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from facelive import modelstore
from facelive.errors import ModelError
from facelive.liveness import Frame
from helpers import EXAMPLE


def test_cnn_preprocess_is_the_arithmetic_bit_for_bit(rng) -> None:
    from facelive.liveness.cnn import CNNTest

    cnn = CNNTest()
    s = cnn.size
    crops = rng.integers(0, 256, (3, s, s, 3), dtype=np.uint8)
    x = crops[..., ::-1].transpose(0, 3, 1, 2).astype(np.float32) / 255.0
    want = (x - cnn._mean) / cnn._std
    got = cnn.preprocess(crops)
    assert got.dtype == np.float32 and got.shape == (3, 3, s, s) and got.flags.c_contiguous
    assert np.array_equal(got, want)
    assert np.array_equal(cnn.preprocess(crops[1:2, ::-1]), want[1:2, :, ::-1])  # strided input


def test_int8_cnn_is_the_default_and_the_float_one_stays(monkeypatch) -> None:
    from facelive.liveness.cnn import PRECISION_ENV, CNNTest, default_model_path

    int8, fp32 = CNNTest(), CNNTest(precision="fp32")
    assert int8.precision == "int8" and int8.model_file == "cnn.onnx"
    assert fp32.precision == "fp32" and fp32.model_file == "cnn_fp32.onnx"
    assert int8.card["quantization"]["float_model_sha256"] == modelstore.sha256_bytes(
        modelstore.read_bytes("cnn_fp32.onnx"))
    monkeypatch.setenv(PRECISION_ENV, "fp32")
    assert CNNTest().precision == "fp32"
    monkeypatch.setenv(PRECISION_ENV, "fp16")
    with pytest.raises(ModelError, match="FACELIVE_CNN_PRECISION"):
        default_model_path()


def test_a_retrained_float_cnn_in_the_models_folder_wins(tmp_path, monkeypatch) -> None:
    from facelive.liveness.cnn import CNNTest, default_model_path

    modelstore.write_bytes("cnn.onnx", modelstore.read_bytes("cnn_fp32.onnx"), tmp_path)
    modelstore.write_bytes("cnn.json", modelstore.read_bytes("cnn_fp32.json"), tmp_path)
    monkeypatch.setenv(modelstore.MODELS_ENV, str(tmp_path))
    assert default_model_path() == default_model_path("fp32") == tmp_path / "cnn.onnx"
    assert CNNTest().precision == "fp32"
    only_int8 = tmp_path / "int8"
    for name in ("cnn.onnx", "cnn.json"):
        modelstore.write_bytes(name, modelstore.read_bytes(name, modelstore.MODEL_DIR), only_int8)
    monkeypatch.setenv(modelstore.MODELS_ENV, str(only_int8))
    with pytest.raises(ModelError, match="cnn_fp32.onnx is missing"):
        default_model_path("fp32")


def test_int8_and_float_cnn_agree_on_a_real_face() -> None:
    from facelive.face.detection import FaceDetector
    from facelive.imageio import load_image
    from facelive.liveness.cnn import CNNTest

    img = load_image(EXAMPLE)
    with FaceDetector() as det:
        box = det.detect(img)
    scores = [CNNTest(precision=p).score(Frame(img, box)).score for p in ("int8", "fp32")]
    assert abs(scores[0] - scores[1]) < 0.1, scores
