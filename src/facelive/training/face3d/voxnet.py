"""The 3D test's network: a VoxNet-style 3D CNN, and its ONNX export.

VoxNet (Maturana & Scherer, "VoxNet: A 3D Convolutional Neural Network for Real-Time Object
Recognition", IROS 2015): conv 32 filters 5^3 stride 2, conv 32 filters 3^3, max-pool 2^3, dense
128, dense 2, on a 32^3 grid. Changes: two input channels (occupancy, shading; see
:mod:`facelive.liveness.face3d.voxel`) and batch normalisation after each convolution (trains in
a few CPU minutes). About 0.9 M parameters, about 70 M multiply-adds per grid. Requires torch.
"""

from __future__ import annotations

import io

import numpy as np
import torch
from torch import nn


class VoxNet(nn.Module):
    """``(N, C, G, G, G)`` grids -> 2 logits (0 attack, 1 live)."""

    def __init__(self, channels: int = 2, grid: int = 32, dropout: float = 0.4) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv3d(channels, 32, 5, stride=2),
            nn.BatchNorm3d(32),
            nn.LeakyReLU(0.1),
            nn.Dropout3d(0.2),
            nn.Conv3d(32, 32, 3),
            nn.BatchNorm3d(32),
            nn.LeakyReLU(0.1),
            nn.MaxPool3d(2),
            nn.Dropout3d(0.3),
        )
        side = ((grid - 5) // 2 + 1 - 2) // 2
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * side**3, 128),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(128, 2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class _Softmax(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def export_onnx(net: VoxNet, channels: int = 2, grid: int = 32, opset: int = 17
                ) -> tuple[bytes, float]:
    """ONNX bytes of ``net`` + softmax (input ``input`` (N, C, G, G, G), output ``prob`` (N, 2)),
    and the largest |P_torch - P_onnx| on random grids; refuses a disagreement over 1e-4."""
    import onnxruntime as ort

    wrapper = _Softmax(net.eval()).eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(
            wrapper, (torch.zeros(1, channels, grid, grid, grid),), buf, opset_version=opset,
            input_names=["input"], output_names=["prob"],
            dynamic_axes={"input": {0: "batch"}, "prob": {0: "batch"}},
            do_constant_folding=True, dynamo=False,
        )
    data = buf.getvalue()
    x = (np.random.default_rng(0).random((4, channels, grid, grid, grid)) > 0.9).astype(np.float32)
    with torch.no_grad():
        ref = wrapper(torch.from_numpy(x)).numpy()
    got = ort.InferenceSession(data, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    diff = float(np.abs(ref - got).max())
    if diff > 1e-4:
        raise RuntimeError(f"ONNX and PyTorch disagree by {diff:g}")
    return data, diff
