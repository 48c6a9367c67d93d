"""Score fusion: the model (:mod:`~facelive.fusion.model`) that turns several tests' P(live) into
one. Its training is :mod:`facelive.training.fusion`."""

from facelive.fusion.model import (
    FUSION_MODEL,
    MISSING_POLICIES,
    FusionModel,
    LinearFusion,
    load_fusion,
    logit,
)

__all__ = ["FUSION_MODEL", "MISSING_POLICIES", "FusionModel", "LinearFusion", "load_fusion",
           "logit"]
