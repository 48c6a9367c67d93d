"""Server-side screen-colour challenges: a random, single-use sequence of screen colours.

The server draws a :class:`Challenge` (nonce and colour steps) with the operating system's CSPRNG
(:mod:`secrets`); the browser plays it full screen while it films the face, and
:func:`facelive.challenge.verify.verify_challenge` checks that the face's colour followed it in
time. The idea is Tang et al.'s "Face Flashing" (Tang, Wang, Zhang et al., "Face Flashing: a Secure
Liveness Detection Protocol based on Light Reflections", NDSS 2018): light from the screen reflects
off the face, so a video recorded before the challenge was drawn cannot show it.

Photosensitive safety (WCAG 2.3.1, "Three Flashes or Below Threshold"), enforced by
:func:`check_photosensitive` on every challenge this module makes or accepts:

1. **At most 3 colour changes in any one-second window.** Every step lasts at least
   :data:`MIN_STEP_MS` (350 ms > 1000/3 ms), so any closed 1 s window holds at most 3 changes.
   WCAG counts a *flash* as a pair of opposing changes and allows 3 flashes (6 changes) per
   second, so this is at least twice as strict as the criterion.
2. **No saturated red.** WCAG 2.2's working definition of a red flash is a pair of opposing
   transitions to or from a state with ``R/(R+G+B) >= 0.8``; no colour here may have
   ``R/(R+G+B)`` above :data:`MAX_RED_RATIO` (0.6, in sRGB values and in linear light), so no
   transition can involve a saturated red. The palette's reddest colours (yellow, magenta) are at
   0.5.
3. **No full black.** The dark step is a dark grey (:data:`PALETTE`), which softens the largest
   luminance change (white <-> dark) a little; with rule 1 this is below the general-flash rate in
   any case.

Non-flash mode (``mode="steady"``): one neutral colour for the whole capture, no changes at all,
for users or sites that cannot show colour changes. It is **much weaker**: nothing unpredictable
reaches the pixels, so a replayed or injected video is not caught by the colour check (only the
nonce's single use, the timing, continuity and the passive tests remain). A site must opt in to it
explicitly; :func:`facelive.challenge.verify.verify_challenge` marks such reports ``"weak": true``.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "Challenge", "Step", "ChallengeError", "PALETTE", "NEUTRAL", "MIN_STEP_MS", "MAX_RED_RATIO",
    "MAX_CHANGES_PER_SECOND", "new_challenge", "check_photosensitive", "srgb_to_linear",
    "red_ratio",
]

Mode = Literal["flash", "steady"]

MIN_STEP_MS = 350
"""Shortest step: more than 1000/3 ms, so that no one-second window holds more than 3 changes."""
MAX_CHANGES_PER_SECOND = 3
MAX_RED_RATIO = 0.6
"""Largest ``R/(R+G+B)`` allowed for a colour (WCAG 2.2 calls >= 0.8 a saturated red)."""

PALETTE: dict[str, tuple[int, int, int]] = {
    "white": (255, 255, 255),
    "dark": (40, 40, 40),
    "blue": (30, 60, 255),
    "green": (40, 255, 60),
    "yellow": (255, 230, 20),
    "cyan": (20, 230, 255),
    "magenta": (230, 30, 255),
}
"""The screen colours (sRGB 0-255) a flash challenge draws from: bright and dark neutrals for the
luminance response, saturated non-red colours for the chromaticity response."""
NEUTRAL = ("white", "dark")
CHROMATIC = ("blue", "green", "yellow", "cyan", "magenta")
STEADY_COLOUR = (230, 230, 230)
"""The one colour of the non-flash (steady) mode: a light grey."""


class ChallengeError(ValueError):
    """A challenge is malformed or breaks the photosensitive rules."""


def srgb_to_linear(value: float) -> float:
    """One sRGB component in [0, 255] to linear light in [0, 1] (IEC 61966-2-1)."""
    c = float(value) / 255.0
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def red_ratio(rgb: tuple[int, int, int], linear: bool = False) -> float:
    """``R / (R + G + B)`` of an sRGB colour (in linear light when ``linear``); 0 for black."""
    vals = [srgb_to_linear(v) for v in rgb] if linear else [float(v) for v in rgb]
    total = sum(vals)
    return vals[0] / total if total > 0 else 0.0


@dataclass(frozen=True)
class Step:
    """One screen colour (sRGB 0-255) shown from ``start_ms`` for ``duration_ms``.

    Parameters
    ----------
    colour : tuple of int
        ``(R, G, B)``, each 0-255.
    start_ms : int
        When it appears, in ms since the challenge started playing.
    duration_ms : int
        How long it stays.
    name : str, optional
        A label (``"dark"``, ``"white"``, ...), for reports.
    """

    colour: tuple[int, int, int]
    start_ms: int
    duration_ms: int
    name: str = ""

    @property
    def end_ms(self) -> int:
        """When the step ends (``start_ms + duration_ms``)."""
        return self.start_ms + self.duration_ms

    def to_dict(self) -> dict[str, Any]:
        """The step as JSON-able data (``colour``, ``start_ms``, ``duration_ms``, ``name``)."""
        return {"colour": list(self.colour), "start_ms": self.start_ms,
                "duration_ms": self.duration_ms, "name": self.name}


@dataclass(frozen=True)
class Challenge:
    """A server-issued challenge; JSON-able with :meth:`to_dict` / :meth:`from_dict`.

    ``steps`` follow each other without gaps from ``start_ms`` 0; the client shows step ``k``'s
    colour full screen from ``start_ms`` to ``start_ms + duration_ms`` (ms since it started
    playing), and keeps filming until ``capture_ms`` (the sequence plus a tail that lets the last
    step's reflection arrive through the camera's latency). ``created_at`` is Unix time in seconds.
    ``lead_ms`` is the length of the fixed dark reference at the start (the same in every
    challenge, so the colour check ignores it: only the random part counts).

    Parameters
    ----------
    nonce : str
        Single-use, random; the upload must carry it.
    steps : tuple of Step
        The colours, contiguous from 0 ms.
    created_at : float
        Unix time in seconds.
    mode : {"flash", "steady"}, optional
        ``flash``: random colours; ``steady``: one light-grey step (much weaker, opt-in).
    tail_ms : int, optional
        How long the client keeps filming after the last step.
    lead_ms : int, optional
        The dark reference at the start (within the first step).
    version : int, optional
        The format's version.
    extra : dict, optional
        Other data carried with the challenge.

    See Also
    --------
    new_challenge : draws one.
    """

    nonce: str
    steps: tuple[Step, ...]
    created_at: float
    mode: Mode = "flash"
    tail_ms: int = 500
    lead_ms: int = 0
    version: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_ms(self) -> int:
        """The length of the colour sequence, in ms."""
        return self.steps[-1].end_ms if self.steps else 0

    @property
    def capture_ms(self) -> int:
        """How long the client films: the sequence plus ``tail_ms``."""
        return self.total_ms + self.tail_ms

    def colour_at(self, t_ms: float) -> tuple[int, int, int] | None:
        """The colour on screen ``t_ms`` after the start.

        Parameters
        ----------
        t_ms : float
            Time since the challenge started playing.

        Returns
        -------
        tuple of int or None
            ``(R, G, B)``; ``None`` before 0; the last step's colour after the end (the client
            leaves it on during the tail).
        """
        if t_ms < 0 or not self.steps:
            return None
        for s in self.steps:
            if t_ms < s.end_ms:
                return s.colour
        return self.steps[-1].colour

    def step_index_at(self, t_ms: float) -> int | None:
        """The index of the step on screen ``t_ms`` after the start (as :meth:`colour_at`)."""
        if t_ms < 0 or not self.steps:
            return None
        for i, s in enumerate(self.steps):
            if t_ms < s.end_ms:
                return i
        return len(self.steps) - 1

    def to_dict(self) -> dict[str, Any]:
        """The challenge as JSON-able data: what the browser receives and the signed result
        records.

        Returns
        -------
        dict
        """
        d: dict[str, Any] = {
            "version": self.version,
            "nonce": self.nonce,
            "mode": self.mode,
            "created_at": self.created_at,
            "total_ms": self.total_ms,
            "capture_ms": self.capture_ms,
            "tail_ms": self.tail_ms,
            "lead_ms": self.lead_ms,
            "steps": [s.to_dict() for s in self.steps],
        }
        if self.extra:
            d["extra"] = dict(self.extra)
        return d

    def to_json(self) -> str:
        """:meth:`to_dict` as compact JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Challenge:
        """Parse and validate (structure and the photosensitive rules).

        Parameters
        ----------
        d : dict
            As :meth:`to_dict` makes it.

        Returns
        -------
        Challenge

        Raises
        ------
        ChallengeError
            When the data is malformed or breaks :func:`check_photosensitive`.
        """
        if not isinstance(d, dict):
            raise ChallengeError("a challenge must be a JSON object")
        try:
            nonce = d["nonce"]
            raw_steps = d["steps"]
            created_at = float(d.get("created_at", 0.0))
            mode = d.get("mode", "flash")
            tail_ms = int(d.get("tail_ms", 500))
            lead_ms = int(d.get("lead_ms", 0))
            version = int(d.get("version", 1))
        except (KeyError, TypeError, ValueError) as exc:
            raise ChallengeError(f"malformed challenge: {exc!r}") from None
        if not isinstance(nonce, str) or not nonce:
            raise ChallengeError("the challenge's nonce must be a non-empty string")
        if mode not in ("flash", "steady"):
            raise ChallengeError(f"unknown challenge mode {mode!r}")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise ChallengeError("the challenge needs a non-empty list of steps")
        steps = []
        for i, s in enumerate(raw_steps):
            try:
                colour = tuple(int(c) for c in s["colour"])
                start, dur = int(s["start_ms"]), int(s["duration_ms"])
                name = str(s.get("name", ""))
            except (KeyError, TypeError, ValueError) as exc:
                raise ChallengeError(f"malformed step {i}: {exc!r}") from None
            if len(colour) != 3 or not all(0 <= c <= 255 for c in colour):
                raise ChallengeError(f"step {i}: colour must be three integers in 0-255")
            steps.append(Step(colour, start, dur, name))  # type: ignore[arg-type]
        ch = cls(nonce=nonce, steps=tuple(steps), created_at=created_at, mode=mode,
                 tail_ms=tail_ms, lead_ms=lead_ms, version=version,
                 extra=dict(d.get("extra") or {}))
        if not 0 <= lead_ms <= ch.steps[0].duration_ms:
            raise ChallengeError("lead_ms must lie within the first step")
        check_photosensitive(ch)
        return ch

    @classmethod
    def from_json(cls, text: str | bytes) -> Challenge:
        """:meth:`from_dict` of JSON text; raises :class:`ChallengeError` on invalid JSON too."""
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as exc:
            raise ChallengeError(f"the challenge is not JSON: {exc}") from None


def check_photosensitive(challenge: Challenge) -> None:
    """Check the photosensitive rules of the module docstring (WCAG 2.3.1).

    Contiguous steps from 0, every step at least :data:`MIN_STEP_MS` long (so at most 3 changes
    in any closed one-second window, verified explicitly too), and no colour with
    ``R/(R+G+B) > MAX_RED_RATIO`` in sRGB or linear light.

    Parameters
    ----------
    challenge : Challenge
        The challenge to check.

    Raises
    ------
    ChallengeError
        Naming the first rule broken.
    """
    t = 0
    for i, s in enumerate(challenge.steps):
        if s.start_ms != t:
            raise ChallengeError(f"step {i} starts at {s.start_ms} ms, expected {t} ms")
        if s.duration_ms < MIN_STEP_MS:
            raise ChallengeError(f"step {i} lasts {s.duration_ms} ms; the photosensitive rule "
                                 f"needs at least {MIN_STEP_MS} ms per colour")
        for linear in (False, True):
            if red_ratio(s.colour, linear) > MAX_RED_RATIO:
                raise ChallengeError(f"step {i}: colour {s.colour} is too red "
                                     f"(R/(R+G+B) > {MAX_RED_RATIO})")
        t = s.end_ms
    changes = [s.start_ms for prev, s in zip(challenge.steps, challenge.steps[1:], strict=False)
               if s.colour != prev.colour]
    for k, start in enumerate(changes):
        in_window = sum(1 for c in changes[k:] if c <= start + 1000)
        if in_window > MAX_CHANGES_PER_SECOND:
            raise ChallengeError(f"{in_window} colour changes within one second from {start} ms "
                                 f"(at most {MAX_CHANGES_PER_SECOND})")


def new_challenge(
    *,
    mode: Mode = "flash",
    steps: int = 10,
    min_step_ms: int = 400,
    max_step_ms: int = 700,
    lead_ms: int = 1000,
    tail_ms: int = 500,
    steady_ms: int = 3000,
    rng: secrets.SystemRandom | Any | None = None,
    now: float | None = None,
) -> Challenge:
    """Draw a challenge.

    Flash mode: ``steps`` colours (default 10, about 6 s in all). The first is a dark reference
    step of ``lead_ms`` (the face under ambient light only: the frames the passive tests are
    scored on, see ``docs/challenge.md``); the others have durations drawn uniformly from
    ``[min_step_ms, max_step_ms]`` in 50 ms units, consecutive colours differ, and the sequence
    holds (after the reference) at least one white, one dark and two chromatic steps, so that
    both the luminance and the chromaticity response are exercised. Steady mode: one light-grey
    step of ``steady_ms``.

    Parameters
    ----------
    mode : {"flash", "steady"}, optional
        Random colours, or one light-grey step (much weaker, opt-in).
    steps : int, optional
        Flash mode: the number of steps, the dark reference included.
    min_step_ms, max_step_ms : int, optional
        Flash mode: the range of the random durations (at least :data:`MIN_STEP_MS`).
    lead_ms : int, optional
        Flash mode: the dark reference step's length.
    tail_ms : int, optional
        How long the client keeps filming after the last step.
    steady_ms : int, optional
        Steady mode: the step's length.
    rng : random.Random, optional
        Defaults to :class:`secrets.SystemRandom` (pass a seeded ``random.Random`` only in
        tests).
    now : float, optional
        ``created_at`` (default: the clock).

    Returns
    -------
    Challenge
        With a fresh random nonce; it passes :func:`check_photosensitive`.
    """
    rng = rng or secrets.SystemRandom()
    created = time.time() if now is None else float(now)
    nonce = secrets.token_urlsafe(18)
    if mode == "steady":
        if steady_ms < MIN_STEP_MS:
            raise ChallengeError(f"steady_ms must be at least {MIN_STEP_MS}")
        ch = Challenge(nonce, (Step(STEADY_COLOUR, 0, int(steady_ms), "grey"),), created,
                       "steady", int(tail_ms))
        check_photosensitive(ch)
        return ch
    if mode != "flash":
        raise ChallengeError(f"unknown challenge mode {mode!r}")
    if steps < 4:
        raise ChallengeError("a flash challenge needs at least 4 steps")
    if min_step_ms < MIN_STEP_MS or max_step_ms < min_step_ms or lead_ms < MIN_STEP_MS:
        raise ChallengeError(f"step durations must satisfy {MIN_STEP_MS} <= min <= max and "
                             f"lead_ms >= {MIN_STEP_MS}")
    while True:
        names = ["dark"]
        while len(names) < steps:
            names.append(rng.choice([n for n in PALETTE if n != names[-1]]))
        if ("white" in names and "dark" in names[1:]
                and sum(n in CHROMATIC for n in names) >= 2):
            break
    units = list(range(min_step_ms // 50, max_step_ms // 50 + 1))
    out, t = [], 0
    for i, n in enumerate(names):
        dur = int(lead_ms) if i == 0 else max(min_step_ms, min(max_step_ms,
                                                              50 * rng.choice(units)))
        out.append(Step(PALETTE[n], t, dur, n))
        t += dur
    ch = Challenge(nonce, tuple(out), created, "flash", int(tail_ms), int(lead_ms))
    check_photosensitive(ch)
    return ch
