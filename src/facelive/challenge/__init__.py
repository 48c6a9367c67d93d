"""Server-issued screen-colour challenges: draw a sequence
(:mod:`~facelive.challenge.sequence`), verify a filmed clip against it
(:mod:`~facelive.challenge.verify`, with the physical checks of
:mod:`~facelive.challenge.physics`), simulate clips (:mod:`~facelive.challenge.simulate`) and
attack the challenge (:mod:`~facelive.challenge.attacks`). See ``docs/challenge.md``.

>>> ch = new_challenge()                          # drawn with the OS's CSPRNG
>>> len(ch.steps), ch.steps[0].duration_ms        # a 1 s dark reference, then 9 colours
(10, 1000)
>>> Challenge.from_json(ch.to_json()) == ch       # what the browser gets, parsed and checked
True
"""

from facelive.challenge.sequence import Challenge, ChallengeError, Step, new_challenge

__all__ = ["Challenge", "ChallengeError", "Step", "new_challenge"]
