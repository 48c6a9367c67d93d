"""Server-issued screen-colour challenges (issue 14): draw a sequence
(:mod:`~facelive.challenge.sequence`), verify a filmed clip against it
(:mod:`~facelive.challenge.verify`), and simulate clips for tests
(:mod:`~facelive.challenge.simulate`). See ``docs/challenge.md``."""

from facelive.challenge.sequence import Challenge, ChallengeError, Step, new_challenge

__all__ = ["Challenge", "ChallengeError", "Step", "new_challenge"]
