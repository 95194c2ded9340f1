"""Putting one conversation's messages in order, for a topic and a socket alike.

Messages reach an instance through pub/sub, which may lose, repeat or reorder them, and reach a
socket through its topic or from the store. A `Sequence` is where one such stream stands: the
last seq passed on in order, and what came early. It does no I/O. When something is missing it
says after which seq, and holds what comes later; the missing one may yet come (pub/sub
reorders), and the caller decides when to stop waiting for it: it starts a backfill
(`start_fill`), reads the store and hands the messages back (`fill`), then says how far the
read went (`filled`), and what was held follows.

A seq follows `last` when it is `last + 1`, or when the offer says which seq came just before it
(`prev`) and `last` has reached that: a topic passes on what it delivered before each message,
so a socket steps over holes (tombstones) the topic has already stepped over.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class Step(Generic[T]):
    """What an offer (or the end of a backfill) lets through, in order; and, if something is
    still missing, the seq after which to read the store (`backfill_from`)."""

    ready: list[T] = field(default_factory=list)
    backfill_from: int | None = None


@dataclass(slots=True)
class Sequence(Generic[T]):
    # The last seq passed on in order; None until known (a topic learns it from its first
    # message, a socket is given its cursor).
    last: int | None = None
    # A backfill is under way: offers are held until it ends.
    filling: bool = False
    _held: dict[int, tuple[int | None, T]] = field(default_factory=dict)

    @property
    def held(self) -> int:
        return len(self._held)

    def advance(self, seq: int, prev: int | None = None) -> bool:
        """The usual offer, without building a `Step`: if `seq` comes right after `last`,
        nothing is held and no backfill is under way, it is passed on (True). Otherwise nothing
        changes, and `offer` decides."""
        last = self.last
        if last is None or self._held or self.filling or seq <= last:
            return False
        if not _follows(seq, prev, last):
            return False
        self.last = seq
        return True

    def offer(self, seq: int, item: T, prev: int | None = None) -> Step[T]:
        """A message from the live stream. What was passed on already is dropped; what comes
        early is held, and `backfill_from` says after which seq something is missing."""
        if self.advance(seq, prev):
            return Step([item])
        last = self.last
        if last is None:
            if self.filling:
                self._held.setdefault(seq, (prev, item))
                return Step()
            self.last = seq
            return Step([item])
        if seq <= last:
            return Step()
        self._held.setdefault(seq, (prev, item))
        if self.filling:
            return Step()
        step = Step[T]()
        self._release(step)
        if self._held:
            step.backfill_from = self.last
        return step

    @property
    def missing(self) -> bool:
        """Something came early and waits for what is missing before it."""
        return bool(self._held) and not self.filling

    def start_fill(self) -> int | None:
        """Hold what is offered from now on, until `filled`; returns where to read from."""
        self.filling = True
        return self.last

    def stop_fill(self) -> None:
        """The backfill failed: offers are taken again, and the next gap starts another."""
        self.filling = False

    def fill(self, seq: int) -> bool:
        """A message read from the store, in order: whether it is new (to be passed on).
        Stored messages are contiguous, so each one read after `last` follows it."""
        if self.last is not None and seq <= self.last:
            return False
        self.last = seq
        self._held.pop(seq, None)
        return True

    def filled(self, through_seq: int) -> Step[T]:
        """The read reached `through_seq` (holes included) and found nothing more. Held offers
        that now follow are passed on; if one still does not, read again from `backfill_from`."""
        self.last = through_seq if self.last is None else max(self.last, through_seq)
        step = Step[T]()
        self._release(step)
        if self._held:
            step.backfill_from = self.last
        else:
            self.filling = False
        return step

    def _release(self, step: Step[T]) -> None:
        assert self.last is not None  # noqa: S101 - every caller has set it
        for seq in sorted(self._held):
            prev, item = self._held[seq]
            if seq <= self.last:
                del self._held[seq]
            elif _follows(seq, prev, self.last):
                del self._held[seq]
                step.ready.append(item)
                self.last = seq
            else:
                return


def _follows(seq: int, prev: int | None, last: int) -> bool:
    """Whether `seq` (offered after `prev`) comes right after `last`, which is below it."""
    return seq == last + 1 or (prev is not None and last >= prev)
