"""Which typing notices an instance passes on (`TypingGate`), on a clock the test moves."""

from __future__ import annotations

from backend_services.message_service.typing import TypingGate


def test_one_notice_per_interval_per_user_and_conversation() -> None:
    gate = TypingGate(interval=3, lasts=6)
    assert gate.passes("ada", "c1", True, now=0)
    assert not gate.passes("ada", "c1", True, now=2.9)
    assert gate.passes("ada", "c2", True, now=2.9)  # Another conversation...
    assert gate.passes("bob", "c1", True, now=2.9)  # ...or another person: their own.
    assert gate.passes("ada", "c1", True, now=3)


def test_a_stop_goes_only_while_others_still_show_the_typing() -> None:
    gate = TypingGate(interval=3, lasts=6)
    assert not gate.passes("ada", "c1", False, now=0)  # Nothing to stop.
    assert gate.passes("ada", "c1", True, now=1)
    assert gate.passes("ada", "c1", False, now=2)
    assert not gate.passes("ada", "c1", False, now=2.5)  # Stopped already.
    assert gate.passes("ada", "c1", True, now=4)
    assert not gate.passes("ada", "c1", False, now=10)  # Shown 6 s: gone by itself.


def test_alternating_starts_and_stops_pass_no_more_than_starts_alone() -> None:
    # A client flipping between "typing" and "stopped" as fast as its frame budget allows.
    gate = TypingGate(interval=3, lasts=6)
    passed = [gate.passes("ada", "c1", n % 2 == 0, now=n * 0.02) for n in range(300)]
    assert passed.count(True) == 2 * 2  # Per 3 s: one start and the stop after it.


def test_a_send_lets_the_next_notice_through() -> None:
    gate = TypingGate(interval=3, lasts=6)
    assert gate.passes("ada", "c1", True, now=0)
    gate.sent("ada", "c1")
    assert gate.passes("ada", "c1", True, now=0.5)
    assert not gate.passes("ada", "c1", True, now=1)


def test_what_it_keeps_is_bounded() -> None:
    gate = TypingGate(interval=3, lasts=6)
    for n in range(100):
        assert gate.passes("ada", f"c{n}", True, now=n * 0.01)
    assert len(gate) == 100
    assert gate.passes("ada", "c-last", True, now=7)  # The others' notices are over.
    assert len(gate) == 1
    gate.forget("ada")
    assert len(gate) == 0
    gate.sent("ada", "c1")  # Nothing to forget: no error.
    assert len(gate) == 0
