"""The result types of facelive: what the pipeline returns, the CLI prints and the server answers.

One definition serves every consumer: :class:`LivenessResult` is what
:meth:`facelive.pipeline.Pipeline.check` returns, its :meth:`~LivenessResult.to_dict` is the JSON
object ``facelive check --format json`` prints (key order included), and the web service declares
it as the ``response_model`` of ``POST /v1/liveness`` so that the OpenAPI schema is generated from
it. Every result carries the same keys, except ``path``, which only a result for a file has.

The object is versioned: its ``schema_version`` is :data:`SCHEMA_VERSION`, raised whenever a key
is renamed, removed or changes meaning (``CHANGELOG.md`` lists each change).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any, Final, Literal, get_args

__all__ = ["Decision", "FaceBox", "LivenessResult", "REASON_CODES", "ReasonCode",
           "SCHEMA_VERSION", "Status", "TestResult", "Verdict"]

SCHEMA_VERSION: Final = "2"
"""Version of the JSON object (``schema_version``); version 1 had no such key."""

Status = Literal["ok", "no_face", "error", "timeout"]
"""A test's outcome: ``ok`` (scored), ``no_face`` (no face to judge: none found, several found
and refused, or none in the test's own crop), ``error`` (it raised) or ``timeout``."""
Decision = Literal["live", "spoof", "unknown"]
"""The final verdict; ``unknown`` always comes with ``reason_code``."""
Verdict = Literal["live", "spoof"]
"""One test's own verdict: its score against its own threshold."""

ReasonCode = Literal["no_face", "multiple_faces", "unreadable_image", "detection_error",
                     "test_error", "test_timeout", "missing_scores"]
"""Why a result has no decision (``reason_code``; set exactly when ``decision`` is ``unknown``).

======================  ====================================================================
``no_face``             a selected test needs a face and none was found (``face_count`` 0)
``multiple_faces``      more than one face (``face_count``); one person per check, so no
                        face is judged (the pipeline's ``faces="refuse"``, the default)
``unreadable_image``    the image could not be used (``error`` says why, ``error_code`` is the
                        specific code, e.g. ``truncated_image``); ``facelive check`` only: the
                        server answers 4xx instead
``detection_error``     the face detector failed on the image (``error`` set); ``facelive
                        check`` only: the server answers 422 instead
``test_error``          a test raised (its ``status`` is ``error``) and the decision rule
                        needs its score
``test_timeout``        a test overran its time budget (``status`` ``timeout``) and the
                        decision rule needs its score
``missing_scores``      any other missing score (e.g. a test found no face in its own crop),
                        or scores the fusion cannot combine
======================  ====================================================================

``test_error`` is given before ``test_timeout`` and ``missing_scores`` when several apply.
"""
REASON_CODES: Final[tuple[str, ...]] = get_args(ReasonCode)
"""Every :data:`ReasonCode`, in the order documented."""


def _schema_required_except(*optional: str, description: str | None = None) -> Any:
    """A ``json_schema_extra`` hook: every property required except ``optional``, which are
    omitted (never null) when unset; the schema's ``description`` replaced by ``description``
    (the class docstring is written for Python)."""

    def hook(schema: dict[str, Any]) -> None:
        props = schema["properties"]
        schema["required"] = [k for k in props if k not in optional]
        for key in optional:
            prop = props[key]
            kinds = [s for s in prop.pop("anyOf", []) if s != {"type": "null"}]
            prop.pop("default", None)
            if len(kinds) == 1:
                prop.update(kinds[0])
        if description is not None:
            schema["description"] = description

    return hook


@dataclass(frozen=True)
class FaceBox:
    """A detected face: top-left corner, width and height in pixels, detector confidence."""

    x: int
    y: int
    w: int
    h: int
    confidence: float

    def to_dict(self) -> dict[str, float]:
        """JSON form: ``{"x", "y", "w", "h", "confidence"}``."""
        return asdict(self)


@dataclass
class TestResult:
    """What one liveness test said about one frame.

    ``verdict`` is derived from ``score`` and ``threshold`` when not given; the pipeline sets
    ``threshold`` (the test's own operating point) on every result it returns. Under a fusion the
    final decision may differ from a test's verdict: the fusion weighs the tests' scores.
    """

    __test__ = False  # not a pytest test class
    __pydantic_config__ = {  # noqa: RUF012 - ``error`` is in the JSON only when set
        "use_attribute_docstrings": True,
        "json_schema_extra": _schema_required_except("error"),
    }

    score: float | None
    """P(live) in [0, 1], or null when the test gave no score."""
    status: Status
    """``ok`` (scored), ``no_face``, ``error`` (it raised) or ``timeout``."""
    ms: float
    """Time the test took, in milliseconds."""
    error: str | None = None
    """What went wrong (present only when something did)."""
    threshold: float | None = None
    """The test's own operating point: live when ``score >= threshold``."""
    verdict: Verdict | None = None
    """``live`` or ``spoof``: ``score`` against ``threshold``; null without a score."""

    def __post_init__(self) -> None:
        if self.verdict is None and self.score is not None and self.threshold is not None:
            self.verdict = "live" if self.score >= self.threshold else "spoof"

    def judged(self, threshold: float | None) -> TestResult:
        """This result at ``threshold``, with the verdict that follows from it.

        Parameters
        ----------
        threshold : float or None
            The test's operating point on P(live).

        Returns
        -------
        TestResult
            A copy with ``threshold`` and ``verdict`` set (``verdict`` null without a score).
        """
        return replace(self, threshold=None if threshold is None else float(threshold),
                       verdict=None)

    def to_dict(self) -> dict[str, Any]:
        """JSON form, in this key order: ``verdict``, ``score``, ``threshold``, ``status``,
        ``ms`` (rounded to microseconds), and ``error`` only when there is one."""
        d: dict[str, Any] = {"verdict": self.verdict, "score": self.score,
                             "threshold": self.threshold, "status": self.status,
                             "ms": round(self.ms, 3)}
        if self.error is not None:
            d["error"] = self.error
        return d


_RESULT_DESCRIPTION = (
    "The liveness decision for one image. `decision` is `live`, `spoof` or `unknown`; `unknown` "
    "always comes with `reason_code` (one of " + ", ".join(f"`{c}`" for c in REASON_CODES)
    + ") and its text in `reason` (or, for an image that could not be used, in `error` with "
    "`error_code`: `facelive check` only, the API answers 4xx instead). Each test reports its "
    "own `verdict`, `score` and `threshold`. One image does not prove presence: it shows "
    "that this picture looks like a live face, not that anyone is in front of a camera now; "
    "where that matters use the screen-flash challenge (`/v1/sessions`, see "
    "docs/integration-web.md and docs/challenge.md). `schema_version` is \""
    + SCHEMA_VERSION + "\"."
)


@dataclass
class LivenessResult:
    """The liveness decision for one image.

    ``score`` is the final P(live) (fused, or the single test's) and ``threshold`` the operating
    point it was compared with; both are null when there is no decision. ``tests`` maps each test
    to its :class:`TestResult` (its own verdict, score and threshold). A result without a
    decision (``unknown``) has a ``reason_code`` (one of :data:`REASON_CODES`) and either
    ``reason`` (the image was used but gave no decision) or ``error`` and ``error_code`` (the
    image could not be used).

    One image does not prove presence: a result says that this picture looks like a live face
    (or a print, or a replayed screen), not that anyone is in front of a camera now; a tampered
    browser or a virtual camera can send any picture. Where that matters, use the screen-flash
    challenge (``docs/challenge.md``; the HTTP flow in ``docs/integration-web.md``).

    :meth:`to_dict` is the JSON object (schema :data:`SCHEMA_VERSION`); ``path`` is in it only
    for a file (not for bytes, arrays or uploads).
    """

    __pydantic_config__ = {  # noqa: RUF012 - the API schema, generated from this class
        "use_attribute_docstrings": True,
        "json_schema_extra": _schema_required_except("path", description=_RESULT_DESCRIPTION),
    }

    path: str | None
    """The image file (present only for a file)."""
    decision: Decision
    """``live``, ``spoof`` or ``unknown`` (no decision: see ``reason_code``)."""
    score: float | None
    """The final P(live) (fused, or the single test's); null without a decision."""
    threshold: float | None
    """The operating point ``score`` was compared with (live when ``score >= threshold``)."""
    tests: dict[str, TestResult]
    """Each test's own verdict, score, threshold, status and time, by test name."""
    face: FaceBox | None
    """The face that was judged, or null."""
    face_ms: float
    """Face detection time, in milliseconds."""
    ms: float
    """Total time for the image, in milliseconds."""
    error: str | None = None
    """Why the image could not be used, or null."""
    reason: str | None = None
    """Why a usable image got no decision (e.g. ``multiple faces (2)``), or null."""
    reason_code: ReasonCode | None = None
    """Machine-readable cause of an ``unknown`` decision, or null when there is a decision."""
    face_count: int | None = None
    """Faces found; null when no face was looked for (no selected test needs one)."""
    error_code: str | None = None
    """Machine-readable form of ``error`` (e.g. ``truncated_image``), or null."""
    schema_version: Literal["2"] = SCHEMA_VERSION
    """Version of this object's shape."""

    @classmethod
    def failed(cls, path: str | None, message: str, code: str, ms: float,
               reason_code: ReasonCode = "unreadable_image") -> LivenessResult:
        """The result for an image that could not be used.

        Parameters
        ----------
        path : str or None
            The image file, if any.
        message : str
            The human-readable error.
        code : str
            Its machine-readable form (e.g. ``truncated_image``).
        ms : float
            Time spent, in milliseconds.
        reason_code : ReasonCode, optional
            ``unreadable_image`` (default) or ``detection_error``.

        Returns
        -------
        LivenessResult
            ``unknown``, with ``error``, ``error_code`` and ``reason_code`` set.
        """
        return cls(path=path, decision="unknown", score=None, threshold=None, tests={},
                   face=None, face_ms=0.0, ms=round(ms, 3), error=message, reason=None,
                   reason_code=reason_code, error_code=code)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object (the CLI's ``json``/``jsonl`` output and the API's response).

        Returns
        -------
        dict
            In this key order: ``schema_version``, ``path`` (only for a file), ``decision``,
            ``score``, ``threshold``, ``reason``, ``reason_code``, ``face_count``, ``tests``,
            ``face``, ``face_ms``, ``ms``, ``error``, ``error_code``.
        """
        d: dict[str, Any] = {"schema_version": self.schema_version}
        if self.path is not None:
            d["path"] = self.path
        d.update({
            "decision": self.decision,
            "score": self.score,
            "threshold": self.threshold,
            "reason": self.reason,
            "reason_code": self.reason_code,
            "face_count": self.face_count,
            "tests": {name: r.to_dict() for name, r in self.tests.items()},
            "face": self.face.to_dict() if self.face is not None else None,
            "face_ms": self.face_ms,
            "ms": self.ms,
            "error": self.error,
            "error_code": self.error_code,
        })
        return d
