"""Broker envelopes: what one instance publishes, another reads back; the previous release's
events too (a rolling deploy); anything else is refused, not half-read."""

from __future__ import annotations

import json

import pytest

from backend_services.message_service.envelope import BadEnvelope, Envelope

FRAME = '{"type":"message","message":{"conversation_id":"c1","seq":7,"body":"a\\nb"}}'


@pytest.mark.parametrize(
    "envelope",
    [
        Envelope("message", "c1", FRAME, seq=7),
        Envelope("read", "c1", '{"type":"read","conversation_id":"c1","seq":3}', exclude="s1"),
        Envelope("left", "c1", '{"type":"left","conversation_id":"c1"}'),
        Envelope("conversation", "c1", '{"type":"conversation","conversation":{}}'),
        Envelope("typing", "c1", '{"type":"typing","conversation_id":"c1"}', exclude="u1"),
    ],
)
def test_an_envelope_reads_back_as_it_was_written(envelope: Envelope) -> None:
    text = envelope.encode()
    assert Envelope.decode(text) == envelope
    assert text.endswith("\n" + envelope.frame)  # The frame is passed on as it is.


def test_the_previous_releases_events_are_read() -> None:
    assert Envelope.decode(FRAME) == Envelope("message", "c1", FRAME, seq=7)
    frame = '{"type":"read","conversation_id":"c1","seq":3}'
    old = json.dumps({"kind": "read", "frame": frame, "id": "c1", "exclude": None})
    assert Envelope.decode(old) == Envelope("read", "c1", frame)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        '{"kind":"message","conversation_id":"c1"}\n{}',  # A message without its seq.
        '{"kind":"message","conversation_id":"c1","seq":"7"}\n{}',
        '{"kind":"poll","conversation_id":"c1"}\n{}',
        '{"kind":"read","conversation_id":5}\n{}',
        '{"type":"message","message":{"seq":1}}',
        '{"kind":"left","id":"c1"}',
        "[1, 2]",
    ],
)
def test_anything_else_is_refused(text: str) -> None:
    with pytest.raises(BadEnvelope):
        Envelope.decode(text)
