"""The sequence tracker alone: in order, once, whatever pub/sub does to the stream, with the store
filling what is missing; for a topic (no `prev`) and for a socket behind it (the topic's `prev`)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from backend_services.message_service.sequence import Sequence, Step


def test_in_order_passes_through_and_repeats_are_dropped() -> None:
    seq: Sequence[str] = Sequence()
    assert seq.offer(4, "m4").ready == ["m4"]  # The first one tells where the stream is.
    assert seq.offer(5, "m5").ready == ["m5"]
    assert seq.offer(5, "m5 again") == Step()
    assert seq.offer(3, "m3") == Step()
    assert seq.last == 5


def test_a_gap_says_what_is_missing_and_what_is_missing_may_still_come() -> None:
    seq: Sequence[str] = Sequence(last=2)
    assert seq.offer(4, "m4") == Step([], backfill_from=2)
    assert seq.missing
    assert not seq.filling
    assert seq.offer(5, "m5") == Step([], backfill_from=2)
    assert seq.offer(3, "m3") == Step(["m3", "m4", "m5"])  # Reordered, not lost.
    assert not seq.missing
    assert seq.last == 5


def test_a_gap_backfilled_holds_what_comes_meanwhile() -> None:
    seq: Sequence[str] = Sequence(last=2)
    assert seq.offer(5, "m5") == Step([], backfill_from=2)
    assert seq.start_fill() == 2
    assert seq.offer(6, "m6") == Step()  # Held: the backfill is under way.
    assert [s for s in (3, 4, 5) if seq.fill(s)] == [3, 4, 5]  # m5 came from the store.
    assert seq.filled(5) == Step(["m6"])
    assert not seq.filling
    assert seq.held == 0
    assert seq.last == 6


def test_a_backfill_that_falls_short_asks_again() -> None:
    seq: Sequence[str] = Sequence(last=1)
    seq.offer(9, "m9")
    seq.start_fill()
    assert seq.fill(2)
    assert seq.filled(4) == Step([], backfill_from=4)  # The store had written up to 4 then.
    assert seq.filling
    for s in range(5, 9):
        seq.fill(s)
    assert seq.filled(8) == Step(["m9"])


def test_prev_steps_over_a_hole_the_topic_stepped_over() -> None:
    seq: Sequence[str] = Sequence(last=4)
    assert seq.offer(6, "m6", prev=4).ready == ["m6"]  # 5 is a tombstone.
    assert seq.offer(8, "m8", prev=7) == Step([], backfill_from=6)  # 7 was missed.


def test_a_socket_starts_filling_from_its_cursor() -> None:
    seq: Sequence[str] = Sequence(last=3)
    assert seq.start_fill() == 3
    assert seq.offer(4, "m4", prev=3) == Step()  # Held while the socket catches up.
    assert seq.fill(4) is True
    assert seq.filled(4) == Step()  # The held copy of 4 was passed on from the store.
    assert seq.offer(5, "m5", prev=4).ready == ["m5"]


# --- random interleavings ---------------------------------------------------------------------


@dataclass
class World:
    """A conversation's store and what pub/sub does to its messages on the way to one instance."""

    rng: random.Random
    stored: list[int] = field(default_factory=list)  # Seqs in the store (holes left out).
    written_through: int = 0  # Seqs allocated so far, holes included.

    def write(self) -> int | None:
        """The next seq: stored, or a hole (a sender that died after taking it)."""
        self.written_through += 1
        if self.rng.random() < 0.2:
            return None
        self.stored.append(self.written_through)
        return self.written_through

    def snapshot(self) -> tuple[int, int]:
        return len(self.stored), self.written_through

    def read_after(
        self, after: int, limit: int, as_of: tuple[int, int]
    ) -> tuple[list[int], int, bool]:
        """As the store's read_after, answered as the store stood at `as_of` (a read races the
        writes after it): up to `limit` messages after `after`, how far they cover (holes
        included) and whether there are more."""
        count, written_through = as_of
        after_it = [s for s in self.stored[:count] if s > after]
        found = after_it[:limit]
        if len(after_it) > limit:
            return found, found[-1], True
        return found, max(written_through, after), False


class Consumer:
    """A Sequence driven the way the hub drives one: live offers as they come, and a backfill
    (which takes a while: one batch per step) when asked."""

    def __init__(self, world: World, last: int | None, upstream: Consumer | None = None) -> None:
        self.world, self.seq = world, Sequence[int](last=last)
        self.out: list[int] = []
        self.prev: int | None = None  # What it passed on last (the `prev` of the next).
        self.backfill: int | None = None
        self.as_of = world.snapshot()  # When the backfill's read reached the store.
        self.downstream: list[Consumer] = []
        self.upstream = upstream
        if upstream is not None:
            upstream.downstream.append(self)
            self.backfill = self.seq.start_fill()  # A socket resumes from its cursor.

    def take(self, step: Step[int]) -> None:
        for item in step.ready:
            self.emit(item)
        if step.backfill_from is None:
            return
        if self.seq.filling:  # A backfill that has to read on.
            self.backfill, self.as_of = step.backfill_from, self.world.snapshot()
        elif self.upstream is not None:
            self.start_backfill()  # A socket's topic delivers in order: a gap is a loss.
        # A topic waits for what is missing: it may come yet (`wait_over`).

    def start_backfill(self) -> None:
        self.backfill, self.as_of = self.seq.start_fill(), self.world.snapshot()

    def wait_over(self) -> None:
        """As the hub's timer: a topic still missing something backfills."""
        if self.seq.missing:
            self.start_backfill()

    def emit(self, item: int) -> None:
        prev, self.prev = self.prev, item
        self.out.append(item)
        for consumer in self.downstream:
            consumer.take(consumer.seq.offer(item, item, prev))

    def offer(self, item: int) -> None:
        self.take(self.seq.offer(item, item))

    def step_backfill(self) -> None:
        assert self.backfill is not None
        limit = self.world.rng.randint(1, 4)
        found, through, more = self.world.read_after(self.backfill, limit, self.as_of)
        self.as_of = self.world.snapshot()
        self.backfill = None
        for item in found:
            if self.seq.fill(item):
                self.emit(item)
        if more:
            self.backfill = self.seq.last
            return
        self.take(self.seq.filled(through))
        upstream = self.upstream
        if self.backfill is None and upstream is not None and upstream.seq.last is None:
            # As the hub does: a socket that caught up tells its topic where the stream is.
            upstream.seq.last = upstream.prev = self.seq.last

    def settle(self) -> None:
        while self.backfill is not None:
            self.step_backfill()


@pytest.mark.parametrize("seed", range(500))
def test_random_interleavings_deliver_every_stored_message_once_in_order(seed: int) -> None:
    rng = random.Random(seed)
    world = World(rng)
    for _ in range(rng.randint(0, 5)):  # History before the instance heard of it.
        world.write()
    topic = Consumer(world, last=None)
    cursor = rng.randint(0, world.written_through)
    socket = Consumer(world, last=cursor, upstream=topic)
    published: list[int] = []
    loss = rng.choice([0.0, 0.15])  # Half the runs lose nothing on the way.
    for _ in range(rng.randint(1, 40)):
        stored = world.write()
        if stored is not None and rng.random() >= loss:  # Else a hole, or lost by pub/sub.
            published.append(stored)
            if rng.random() < 0.1:
                published.append(stored)  # Repeated.
            if len(published) > 1 and rng.random() < 0.15:
                published[-1], published[-2] = published[-2], published[-1]  # Reordered.
        while published and rng.random() < 0.7:
            topic.offer(published.pop(0))
        if rng.random() < 0.3:
            topic.wait_over()
        for consumer in (topic, socket):
            if consumer.backfill is not None and rng.random() < 0.5:
                consumer.step_backfill()
    for item in published:
        topic.offer(item)
    topic.wait_over()
    socket.settle()
    topic.settle()
    expected = [s for s in world.stored if s > cursor]
    if not loss:  # Nothing was lost: no sweep is needed.
        assert socket.out == expected
    if topic.seq.last is not None and topic.seq.last < world.written_through:
        # The periodic sweep: the store is ahead.
        topic.start_backfill()
        topic.settle()
    socket.settle()

    assert socket.out == expected
    assert topic.seq.held == 0
    assert socket.seq.held == 0
    assert not topic.seq.filling
    assert not socket.seq.filling
