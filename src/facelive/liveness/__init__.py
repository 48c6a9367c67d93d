"""Liveness tests: the interface (:mod:`~facelive.liveness.base`), the built-in tests
(:mod:`~facelive.liveness.quality`, :mod:`~facelive.liveness.cnn`,
:mod:`~facelive.liveness.face3d`) and the registry that finds tests by name
(:mod:`~facelive.liveness.registry`).

A plug-in subclasses :class:`LivenessTest`; importing this package loads no test.
"""

from facelive.liveness.base import Frame, LivenessTest, NoFaceError

__all__ = ["Frame", "LivenessTest", "NoFaceError"]
