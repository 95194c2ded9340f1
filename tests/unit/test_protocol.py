"""The protocol package's own promises: client frames strict, server frames lenient, one
serialisation of each frame, and nothing but pydantic under it."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from letschat_protocol import (
    AuthFrame,
    CloseCode,
    Message,
    MessageFrame,
    ReadFrame,
    ResumeFrame,
    SendFrame,
    parse_client_frame,
    parse_server_frame,
)
from letschat_protocol.server import ErrorFrame, frame_text

ROOT = Path(__file__).resolve().parents[2]
MESSAGE = Message(
    id="m1",
    conversation_id="c1",
    seq=1,
    sender_id="u1",
    sender_name="Ada",
    body="hi",
    client_msg_id="x1",
    created_at=datetime(2026, 12, 1, tzinfo=UTC),
)


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "ping", "extra": 1}',
        '{"type": "read", "conversation_id": "c1", "seq": "5"}',
        '{"type": "send", "conversation_id": "c1", "body": "no client_msg_id"}',
        '{"type": "resume", "cursors": {"c1": {"seq": 1, "epoch": "e", "x": 1}}}',
        '{"type": "shout"}',
        '{"token": "no type"}',
    ],
)
def test_client_frames_are_strict(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_client_frame(text)


def test_the_frames_the_web_app_builds_are_what_the_service_parses() -> None:
    built = [
        AuthFrame(token="t"),
        ResumeFrame(cursors={"c1": 3}),
        SendFrame(conversation_id="c1", client_msg_id="x1", body="hi"),
        ReadFrame(conversation_id="c1", seq=2),
    ]
    assert [parse_client_frame(frame.model_dump_json()) for frame in built] == built


def test_server_frames_ignore_fields_and_types_they_do_not_know() -> None:
    raw = {"type": "message", "message": {**MESSAGE.model_dump(mode="json"), "new": 1}, "x": 2}
    assert parse_server_frame(json.dumps(raw)) == MessageFrame(message=MESSAGE)
    assert parse_server_frame('{"type": "poll", "conversation_id": "c1"}') is None
    # A new error code reaches the client as it is.
    error = parse_server_frame('{"type": "error", "code": "too_many_tabs", "message": "m"}')
    assert error == ErrorFrame(code="too_many_tabs", message="m")


def test_a_known_frame_that_does_not_parse_is_an_error() -> None:
    with pytest.raises(ValidationError):
        parse_server_frame('{"type": "message", "message": {"id": "m1"}}')


def test_a_frame_leaves_out_absent_optional_fields_and_serialises_as_pydantic_would() -> None:
    frame = ErrorFrame(code="bad_frame", message="m")
    assert (
        frame_text(frame)
        == frame.model_dump_json()
        == ('{"type":"error","code":"bad_frame","message":"m"}')
    )


def test_close_codes_say_whether_to_reconnect() -> None:
    assert CloseCode.SLOW_CONSUMER.reconnect
    assert CloseCode.TRY_AGAIN_LATER.reconnect
    assert not CloseCode.TOKEN_EXPIRED.reconnect
    assert all(code.description for code in CloseCode)


def test_the_protocol_imports_nothing_but_pydantic_and_the_standard_library() -> None:
    allowed = {"pydantic", "pydantic_core", "typing_extensions", "annotated_types"}
    allowed |= {"typing_inspection", "letschat_protocol"}
    script = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import letschat_protocol, letschat_protocol.asyncapi\n"
        "print('\\n'.join(sorted({m.split('.')[0] for m in set(sys.modules) - before})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    imported = set(result.stdout.split())
    private = {name for name in imported if name.startswith("_")}  # The interpreter's own.
    foreign = {n for n in imported - allowed - private if n not in sys.stdlib_module_names}
    assert not foreign, f"letschat_protocol imports {sorted(foreign)}"
