"""The probe test: a linear probe of frozen ImageNet CNN features, run with ONNX Runtime.

Issue 11 found that fine-tuning the CNN makes it learn each database's capture domain: fine-tuned
on one database it is at chance or inverted on the other. The ImageNet features of the same
network, frozen, transfer: a strongly regularised logistic regression on them separates live
faces from attacks on a database it never saw (the linear-probe evaluation of Kornblith,
Shlens & Le, "Do Better ImageNet Models Transfer Better?", CVPR 2019; why fine-tuning can lose
it: Kumar et al., "Fine-Tuning can Distort Pretrained Features and Underperform
Out-of-Distribution", ICLR 2022). The network is EfficientNet-Lite0 with ImageNet weights; its
1,280-channel head output, averaged over the image, is standardised and weighted by the fitted
linear model, all inside one ONNX graph with output ``[P(attack), P(live)]``
(:mod:`facelive.training.probe` builds it). It reads the same
square face crop as the CNN test (cut once per frame).
"""

from __future__ import annotations

from pathlib import Path

from facelive import modelstore
from facelive.liveness.cnn import CropNetworkTest

MODEL_FILE = "probe.onnx"
CARD_FILE = "probe.json"


class ProbeTest(CropNetworkTest):
    """P(live) from the face crop, by a linear model on frozen ImageNet features."""

    name = "probe"
    model_file = MODEL_FILE
    card_file = CARD_FILE

    def __init__(self, model_path: Path | None = None, threads: int = 1) -> None:
        """Load ``model_path`` (default: ``probe.onnx`` of the first model folder that has one,
        see :func:`facelive.modelstore.find_folder`) and its card ``probe.json``."""
        super().__init__(Path(model_path) if model_path is not None
                         else modelstore.find_folder(MODEL_FILE) / MODEL_FILE, threads)
