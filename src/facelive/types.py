"""The result types of facelive: what the pipeline returns, the CLI prints and the server answers.

One definition serves every consumer: :class:`LivenessResult` is what
:meth:`facelive.pipeline.Pipeline.check` returns, its :meth:`~LivenessResult.to_dict` is the JSON
object ``facelive check --format json`` prints (key order included), and the web service declares
it as the ``response_model`` of ``POST /v1/liveness`` so that the OpenAPI schema is generated from
it. Normal and error results carry the same keys.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

Status = Literal["ok", "no_face", "error", "timeout"]
"""A test's outcome: ``ok`` (scored), ``no_face``, ``error`` (it raised) or ``timeout``."""
Decision = Literal["live", "spoof", "unknown"]
"""The final verdict; ``unknown`` always comes with ``reason`` or ``error``."""


@dataclass(frozen=True)
class FaceBox:
    """A detected face: top-left corner, width and height in pixels, detector confidence."""

    x: int
    y: int
    w: int
    h: int
    confidence: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass
class TestResult:
    """What one liveness test said about one frame (``score`` is P(live) or None)."""

    __test__ = False  # not a pytest test class
    __pydantic_config__ = {}  # noqa: RUF012 - ``error`` is optional in the JSON (only when set)

    score: float | None
    status: Status
    ms: float
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON form: ``ms`` rounded to microseconds, ``error`` only when there is one."""
        d: dict[str, Any] = {"score": self.score, "status": self.status, "ms": round(self.ms, 3)}
        if self.error is not None:
            d["error"] = self.error
        return d


@dataclass
class LivenessResult:
    """The liveness decision for one image (``path`` is null for in-memory images).

    ``score`` is the final P(live) (fused, or the single test's) and ``threshold`` the operating
    point it was compared with; both are null when there is no decision. ``tests`` maps each test
    to its :class:`TestResult`; ``face`` is the detected face or null. ``error`` is set when the
    image could not be used, ``reason`` when it was used but gave no decision (no face, a test
    failed). ``error_code`` (for example ``truncated_image``) is the machine-readable form of
    ``error``; it is not part of the JSON object, whose keys are the same for every result.
    """

    path: str | None
    decision: Decision
    score: float | None
    threshold: float | None
    tests: dict[str, TestResult]
    face: FaceBox | None
    face_ms: float
    ms: float
    error: str | None = None
    reason: str | None = None
    error_code: ClassVar[str | None] = None  # set per instance by failed(); not a JSON key
    # The API schema (generated from this class) marks every key required: to_dict() always
    # writes all ten, ``error`` and ``reason`` included.
    __pydantic_config__ = {"json_schema_serialization_defaults_required": True}  # noqa: RUF012

    @classmethod
    def failed(cls, path: str | None, message: str, code: str, ms: float) -> LivenessResult:
        """The result for an image that could not be used: ``unknown`` with ``error`` set."""
        result = cls(path=path, decision="unknown", score=None, threshold=None, tests={},
                     face=None, face_ms=0.0, ms=round(ms, 3), error=message, reason=None)
        result.error_code = code  # type: ignore[misc]
        return result

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (the CLI's ``json``/``jsonl`` output and the API's response)."""
        return {
            "path": self.path,
            "decision": self.decision,
            "score": self.score,
            "threshold": self.threshold,
            "tests": {name: r.to_dict() for name, r in self.tests.items()},
            "face": self.face.to_dict() if self.face is not None else None,
            "face_ms": self.face_ms,
            "ms": self.ms,
            "error": self.error,
            "reason": self.reason,
        }
