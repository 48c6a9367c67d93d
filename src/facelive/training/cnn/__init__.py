"""Training of the 2D CNN test (:mod:`facelive.liveness.cnn`): crops (:mod:`.data`), model
(:mod:`.model`), augmentation (:mod:`.augment`), training loop (:mod:`.train`), ONNX export
(:mod:`.export`), end-to-end evaluation (:mod:`.evaluate`) and ``facelive train cnn`` (:mod:`.cli`).
Modules that need torch import it at their top; ``cli``, ``data`` and ``evaluate`` do not."""
