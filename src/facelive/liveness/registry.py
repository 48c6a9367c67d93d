"""Liveness tests by name: the built-in ones and plug-ins from the ``facelive.tests`` entry points.

Third-party tests register a zero-argument factory (usually the class) in the entry-point group
``facelive.tests``; :func:`available_tests` lists built-in and installed tests by name and
:func:`load_test` instantiates one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib.metadata import entry_points

from facelive.liveness.base import LivenessTest
from facelive.liveness.cnn import CNNTest
from facelive.liveness.face3d import Face3DTest
from facelive.liveness.minifas import MiniFASTest
from facelive.liveness.probe import ProbeTest
from facelive.liveness.quality import QualityTest

ENTRY_POINT_GROUP = "facelive.tests"
DEFAULT_TESTS = ("cnn", "probe", "minifas")
"""The tests run when none are named, fused by the shipped fusion model: the fine-tuned CNN
(near-perfect on the cameras it was trained on, weak on new ones), the probe and the MiniFAS test
(trained on CelebA-Spoof's 10,177 people: the test that carries new cameras). ``quality`` and
``face3d`` are built in and fused when named (e.g. ``--tests quality,cnn,probe,minifas``):
quality is the weakest test on every protocol split and the most expensive one; face3d is at
chance or inverted wherever it is trained on NUAA (docs/results.md, "Generalisation")."""


def _builtin_tests() -> dict[str, Callable[[], LivenessTest]]:
    return {"quality": QualityTest, "cnn": CNNTest, "probe": ProbeTest, "face3d": Face3DTest,
            "minifas": MiniFASTest}


def available_tests() -> dict[str, Callable[[], LivenessTest]]:
    """Built-in tests plus those installed under the ``facelive.tests`` entry-point group."""
    tests = _builtin_tests()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name not in tests:
            tests[ep.name] = ep.load
    return tests


def unknown_tests_message(names: Sequence[str]) -> str | None:
    """``None`` when every name is an available test, else the message to show the user."""
    known = available_tests()
    unknown = [n for n in names if n not in known]
    if names and not unknown:
        return None
    return (f"unknown test(s) {', '.join(unknown) or '(none)'}; "
            f"available: {', '.join(sorted(known))}")


def parse_test_names(text: str | None) -> list[str] | None:
    """Split a comma-separated list of test names (``None``/empty: ``None``, the defaults)."""
    if not text:
        return None
    return [n.strip() for n in text.split(",") if n.strip()]


def load_test(name: str) -> LivenessTest:
    """Instantiate the test registered under ``name``."""
    tests = available_tests()
    if name not in tests:
        raise KeyError(f"unknown test {name!r}; available: {', '.join(sorted(tests))}")
    factory = tests[name]
    obj = factory()
    if not isinstance(obj, LivenessTest) and callable(obj):  # entry point loaded a class
        obj = obj()
    if not isinstance(obj, LivenessTest):
        raise TypeError(f"test {name!r} is not a facelive.liveness.base.LivenessTest")
    return obj
