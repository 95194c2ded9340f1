"""The benchmark's receivers read as the web app does: the newest seq, at most every interval."""

from __future__ import annotations

from bench.reads import ReadPacer, message_seq
from letschat_app.model.chat import READ_INTERVAL_SECONDS


def test_the_benchmark_paces_reads_as_the_web_app_does() -> None:
    assert ReadPacer().interval == READ_INTERVAL_SECONDS


def test_the_first_message_is_read_at_once_and_the_rest_of_that_second_together() -> None:
    pacer = ReadPacer(interval=1.0)
    assert pacer.receive(1, now=10.0) == 1
    assert pacer.receive(2, now=10.3) is None
    assert pacer.receive(3, now=10.6) is None
    assert pacer.behind
    assert pacer.due(10.9) is None
    assert pacer.due(11.0) == 3  # The newest, once the second is up.
    assert not pacer.behind


def test_nothing_is_read_again_unless_something_new_arrived() -> None:
    pacer = ReadPacer(interval=1.0)
    assert pacer.receive(5, now=0.0) == 5
    assert pacer.due(5.0) is None
    assert pacer.receive(4, now=6.0) is None  # Older than what was read: nothing moves.
    assert pacer.receive(6, now=7.0) == 6


def test_the_seq_is_read_from_a_message_frame() -> None:
    frame = (
        '{"type":"message","message":{"id":"a1","conversation_id":"c1","seq":42,'
        '"sender_id":"u1","sender_name":"A","body":"\\"seq\\":7","client_msg_id":"m1"}}'
    )
    assert message_seq(frame) == 42
    assert message_seq('{"type":"pong"}') is None
