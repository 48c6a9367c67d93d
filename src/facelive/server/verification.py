"""Admission of challenge clips to verification: a bounded queue, its own slots, per-tenant caps.

A clip's verification takes seconds of CPU and hundreds of MiB; it must never take the capacity
that answers ``POST /v1/liveness``. One :class:`VerifyQueue` per server process admits clips at
upload time, without waiting, and runs them in ``verify_slots`` slots of their own (pipeline
processes or threads apart from ``/v1/liveness``'s, :mod:`facelive.server.state`):

- at most ``verify_slots`` clips are verified at once and ``verify_queue`` more wait, in arrival
  order; one more upload is refused at once with 503 ``verify_busy`` and ``Retry-After``, before
  the session is touched (its nonce is not used: the browser may send the same clip again);
- at most ``verify_per_key`` clips of one tenant (API key id) wait or run at once; one more is
  refused with 429 ``too_many_verifications`` and ``Retry-After``, so one tenant cannot fill the
  queue of the others.

The counts live on the event loop (admission is synchronous, without an ``await`` between the
check and the count), so no two uploads can take the last place. They are per server process:
with ``--workers N`` or replicas each process has its own queue and caps.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from facelive.server.errors import ApiError, retry_after

__all__ = ["VerifyQueue", "Ticket"]

T = TypeVar("T")


@dataclass(eq=False)
class Ticket:
    """One admitted clip's place (queued, then running) until :meth:`VerifyQueue.release`."""

    key_id: str
    released: bool = False


class VerifyQueue:
    """The verification slots and queue of one server process (see the module docstring).

    Parameters
    ----------
    slots : int
        Clips verified at once.
    queue : int
        Clips that may wait for a slot.
    per_key : int
        Clips of one tenant waiting or running at once (``0``: no cap).
    retry_after_s : int
        The ``Retry-After`` of the refusals (at least one second).
    """

    def __init__(self, slots: int, queue: int, per_key: int = 0, retry_after_s: int = 1) -> None:
        self.slots = max(1, int(slots))
        self.queue = max(0, int(queue))
        self.per_key = max(0, int(per_key))
        self.retry_after_s = retry_after_s
        self.admitted = 0
        self.running = 0
        self._per_key: dict[str, int] = {}
        self._sem: anyio.Semaphore | None = None

    @property
    def waiting(self) -> int:
        """Clips admitted and not yet running."""
        return self.admitted - self.running

    def held_by(self, key_id: str) -> int:
        """Clips of ``key_id`` waiting or running."""
        return self._per_key.get(key_id, 0)

    def admit(self, key_id: str, take: bool = True) -> Ticket:
        """Take a place for one clip of ``key_id`` or refuse at once: 429
        ``too_many_verifications`` (the tenant's cap) or 503 ``verify_busy`` (slots and queue
        full), both with ``Retry-After``. ``take=False`` only checks (the ticket returned holds
        nothing: never release it)."""
        headers = retry_after(self.retry_after_s)
        if self.per_key and self.held_by(key_id) >= self.per_key:
            raise ApiError(429, "too_many_verifications",
                           f"this API key already has {self.per_key} clips waiting or being "
                           "verified; send the frames again later (Retry-After)", headers)
        if self.admitted >= self.slots + self.queue:
            raise ApiError(503, "verify_busy",
                           f"all {self.slots} verification slots and {self.queue} queue places "
                           "are taken; send the frames again later (Retry-After)", headers)
        if not take:
            return Ticket(key_id, released=True)
        self.admitted += 1
        self._per_key[key_id] = self.held_by(key_id) + 1
        return Ticket(key_id)

    def release(self, ticket: Ticket) -> None:
        """Give ``ticket``'s place back (once; later calls do nothing)."""
        if ticket.released:
            return
        ticket.released = True
        self.admitted -= 1
        left = self.held_by(ticket.key_id) - 1
        if left > 0:
            self._per_key[ticket.key_id] = left
        else:
            self._per_key.pop(ticket.key_id, None)

    async def run(self, ticket: Ticket, work: Callable[[], Awaitable[T]]) -> T:
        """Wait for a slot (in arrival order), run ``work()`` in it, then release ``ticket``
        (also when ``work`` fails or the wait is cancelled)."""
        if self._sem is None:
            self._sem = anyio.Semaphore(self.slots)
        try:
            async with self._sem:
                self.running += 1
                try:
                    return await work()
                finally:
                    self.running -= 1
        finally:
            self.release(ticket)
