"""What the speed work changed must not change results.

- MediaPipe is imported through its public package (``facelive.face.detection._import_mediapipe``):
  the detector and the mesh use the process's own ``mediapipe.solutions``;
- the CNN's table look-up preprocessing gives the float32 arithmetic's values bit for bit;
- the int8 CNN is the default, the float one stays available, and they agree on real crops;
- the pipeline submits the longest face test first (and learns which one that is);
- the INT8 quantisation step runs (``onnxruntime.quantization``; needs ``onnx``);
- the benchmarks' frame set is fixed and named.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from facelive import modelstore
from facelive.errors import ModelError
from facelive.liveness import Frame, LivenessTest
from facelive.pipeline import Pipeline
from facelive.types import FaceBox

REPO = Path(__file__).resolve().parents[2]


def test_mediapipe_is_the_public_package() -> None:
    """The detector and the mesh use ``mediapipe.solutions`` as any other code in the process
    sees it (no stand-in modules), from a version that still ships the legacy solutions."""
    code = """
from facelive.face.detection import FaceDetector, _import_mediapipe
from facelive.face.mesh import mesh_triangles
det = FaceDetector()
assert mesh_triangles().shape == (854, 3)
import mediapipe as mp
from packaging.version import Version
assert Version("0.10.21") <= Version(mp.__version__) < Version("0.10.30"), mp.__version__
assert _import_mediapipe() is mp.solutions
assert det._mp.face_detection is mp.solutions.face_detection
assert mp.solutions.hands.Hands and mp.solutions.drawing_utils.draw_landmarks
assert mp.tasks.vision.FaceLandmarker and mp.Image
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=False)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]


def test_mediapipe_imported_first_is_used_as_is() -> None:
    code = """
import mediapipe as mp
from facelive.face.detection import _import_mediapipe
assert _import_mediapipe().face_mesh is mp.solutions.face_mesh
print("ok")
"""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=False)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-3000:]


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

    img = load_image(REPO / "examples" / "astronaut.jpg")
    with FaceDetector() as det:
        box = det.detect(img)
    scores = [CNNTest(precision=p).score(Frame(img, box)).score for p in ("int8", "fp32")]
    assert abs(scores[0] - scores[1]) < 0.1, scores


class Sleeper(LivenessTest):
    needs_face = True

    def __init__(self, name: str, delay: float, log: list[str]) -> None:
        self.name, self.delay, self.log = name, delay, log

    def score_frame(self, frame: Frame) -> float:
        self.log.append(self.name)
        time.sleep(self.delay)
        return 0.9


class Box:
    def detect(self, image: np.ndarray) -> FaceBox:
        return FaceBox(10, 10, 30, 30, 0.9)


def test_the_longest_face_test_starts_first() -> None:
    log: list[str] = []
    short, long = Sleeper("short", 0.02, log), Sleeper("long", 0.08, log)
    pipe = Pipeline([short, long], fusion=None, detector=Box(), workers=1)
    img = np.zeros((64, 64, 3), np.uint8)
    pipe.check(img)
    assert log == ["short", "long"]  # nothing known yet: the declared order
    log.clear()
    pipe.check(img)
    assert log == ["long", "short"]
    assert pipe._expected_ms["long"] > pipe._expected_ms["short"]
    pipe.close()
    assert threading.active_count() < 50


def test_quantize_onnx_gives_a_working_int8_graph(rng) -> None:
    pytest.importorskip("onnx")
    import onnxruntime as ort

    from facelive.liveness.face3d import MODEL_FILE
    from facelive.training.cnn.quantize import quantize_onnx

    grids = rng.random((4, 2, 32, 32, 32)).astype(np.float32)
    grids[:, 0] = grids[:, 0] > 0.9
    src = modelstore.model_path(MODEL_FILE)
    name = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"]).get_inputs()[0].name

    def batches():
        return iter({name: grids[i:i + 1]} for i in range(len(grids)))

    data = quantize_onnx(src, batches, exclude_ops=("Gemm", "Softmax"))
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    probs = sess.run(None, {name: grids})[0]
    assert probs.shape == (4, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert any(n.op_type.startswith("QLinear") for n in _nodes(data))


def _nodes(data: bytes) -> list:
    import onnx

    return list(onnx.load_from_string(data).graph.node)


def test_benchmark_frames_are_fixed_and_named(monkeypatch, tmp_path) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        import _frames
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
    monkeypatch.setattr(_frames, "DATA", tmp_path)  # no research data: the example + variants
    frames = _frames.frame_set(4)
    assert [f.name for f in frames] == ["astronaut", "mirrored", "darker", "brighter"]
    assert all(f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8 for f in frames)
    assert "example + variants (4)" in _frames.describe(frames)
    s = _frames.stats([1.0, 2.0, 3.0, 4.0, 100.0])
    assert s["median"] == 3.0 and s["n"] == 5 and s["p10"] < s["median"] < s["p90"]
