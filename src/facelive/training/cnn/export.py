"""ONNX export of the CNN liveness network, with a PyTorch-vs-ONNX Runtime agreement check.

Exports opset 17 with a dynamic batch axis; the graph includes the softmax (output
``[P(attack), P(live)]``). EfficientNet-Lite uses ReLU6: never call the library's
``set_swish(False)`` before export (it swaps in Swish and silently changes the network).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from facelive.training.cnn.model import ExportWrapper, LivenessNet, build_model


def load_state(path: Path, key: str | None = None, image_size: int = 224) -> LivenessNet:
    """A network from a state dict file (fp16 or fp32; a dict of several when ``key`` is given)."""
    obj = torch.load(Path(path), map_location="cpu", weights_only=True)
    state = obj[key] if key is not None else obj
    net = build_model(pretrained=False, image_size=image_size)
    ref = net.state_dict()
    net.load_state_dict({k: v.to(ref[k].dtype) for k, v in state.items()})
    return net.eval()


def export_onnx(net: LivenessNet, image_size: int = 224, opset: int = 17) -> bytes:
    """The ONNX bytes of ``net`` + softmax; input ``input`` (N, 3, S, S), output ``prob`` (N, 2)."""
    wrapper = ExportWrapper(net.eval()).eval()
    buf = io.BytesIO()
    dummy = torch.zeros(1, 3, image_size, image_size)
    with torch.no_grad():
        torch.onnx.export(
            wrapper, (dummy,), buf, opset_version=opset, input_names=["input"],
            output_names=["prob"], dynamic_axes={"input": {0: "batch"}, "prob": {0: "batch"}},
            do_constant_folding=True, dynamo=False,
        )
    return buf.getvalue()


def max_abs_difference(net: LivenessNet, onnx_bytes: bytes, inputs: np.ndarray) -> float:
    """Largest |P_torch - P_onnx| over ``inputs`` (normalised float32, (N, 3, S, S))."""
    import onnxruntime as ort

    sess = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref = torch.softmax(net.eval()(torch.from_numpy(inputs)), 1).numpy()
    got = sess.run(None, {"input": inputs})[0]
    return float(np.abs(ref - got).max())


def write_model(net: LivenessNet, *, context: float, image_size: int = 224,
                threshold: float = 0.5, version: str = "1", folder: Path | None = None,
                extra: dict | None = None, check_inputs: np.ndarray | None = None) -> dict:
    """Export ``net`` to ``cnn.onnx`` and write its card ``cnn.json`` (both checksummed).

    Refuses to write when ONNX Runtime and PyTorch disagree by more than 1e-4 on
    ``check_inputs`` (default: four random normalised images).
    """
    from facelive import modelstore
    from facelive.training.cnn.model import MEAN, STD

    data = export_onnx(net, image_size)
    if len(data) > 20 * 1024 * 1024:
        raise RuntimeError(f"ONNX model is {len(data) / 1e6:.1f} MB, over the 20 MB limit")
    if check_inputs is None:
        check_inputs = np.random.default_rng(0).normal(size=(4, 3, image_size, image_size))
    diff = max_abs_difference(net, data, check_inputs.astype(np.float32))
    if diff > 1e-4:
        raise RuntimeError(f"ONNX and PyTorch disagree by {diff:g}")
    card = {
        "name": "cnn",
        "version": version,
        "architecture": "EfficientNet-Lite0 (ImageNet) + dense-BN-LeakyReLU(0.3)-dropout(0.3)-2",
        "input": "RGB float32 (N, 3, S, S), (x/255 - mean) / std",
        "output": "softmax [P(attack), P(live)]",
        "input_size": image_size,
        "context": context,
        "mean": list(MEAN),
        "std": list(STD),
        "threshold": threshold,
        "onnx_max_abs_diff_vs_torch": diff,
        "licence": "weights derived from research-only data (NUAA, Replay-Attack): "
                   "research use only",
    }
    card.update(extra or {})
    modelstore.write_bytes("cnn.onnx", data, folder)
    modelstore.write_json("cnn.json", card, folder)
    return card
