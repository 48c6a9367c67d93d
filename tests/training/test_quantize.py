"""The INT8 quantisation step (``onnxruntime.quantization``; needs ``onnx``) gives a working
graph."""

from __future__ import annotations

import numpy as np
import pytest

from facelive import modelstore


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
