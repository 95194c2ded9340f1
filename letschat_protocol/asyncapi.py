"""docs/asyncapi.yaml, generated from the protocol models: `python -m letschat_protocol.asyncapi`
writes it (`--check` only says whether the file is current).

The frames' docstrings and field descriptions are the document's prose; what is about the
endpoint rather than a frame (servers, close codes, which frame answers which) is here.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from letschat_protocol import _yaml
from letschat_protocol.client import (
    AuthFrame,
    DeleteFrame,
    EditFrame,
    PingFrame,
    PresenceFrame,
    ReactFrame,
    ReadFrame,
    ResumeFrame,
    SendFrame,
    TypingFrame,
)
from letschat_protocol.codes import CloseCode
from letschat_protocol.models import (
    Conversation,
    Cursor,
    Message,
    Presence,
    Reaction,
    ReplyPreview,
    User,
)
from letschat_protocol.server import (
    AckFrame,
    AuthedFrame,
    ChangeFrame,
    ChangesLimitedFrame,
    ConversationFrame,
    ErrorFrame,
    LeftFrame,
    LimitedFrame,
    MessageFrame,
    PongFrame,
    PresenceNoticeFrame,
    PresenceSettingFrame,
    ReadMarkerFrame,
    ReadyFrame,
    ResetFrame,
    ResumedFrame,
    TypingNoticeFrame,
)

DEFAULT_PATH = Path("docs/asyncapi.yaml")
HEADER = """\
# Generated from letschat_protocol/ by `python -m letschat_protocol.asyncapi`: edit the package,
# not this file (tests/unit/test_protocol_docs.py fails when they differ). The message service's
# WebSocket, described from the service's side: `receive` operations are frames a client sends,
# `send` operations are frames the service sends. docs/protocol.md is the prose version
# (ordering, guarantees, client rules, REST).
"""
INFO_DESCRIPTION = """\
Live delivery for Let's Chat. A client connects to `/ws`, sends an `auth` frame within
5 seconds (answered by `ready`), then a `resume` frame with its per-conversation cursors
(answered by any missed messages and changes, then `resumed`). From `resume` on, new messages
arrive as `message` frames and changes to messages (edits, deletions, reactions) as `change`
frames. Every frame is one JSON object in one text WebSocket message, with a `type`.

Access tokens last 10 minutes. Before the socket's token expires, the client gets a fresh one
over REST (`POST /auth/refresh`) and sends another `auth` frame on the open socket, answered
by `authed`; the socket goes on without a reconnect.

Clients ignore fields they do not know in the service's frames (and frames of a `type` they do
not know): a newer service may add them. The service refuses unknown fields in client frames.

History, conversation management and sign-in are REST; see docs/protocol.md and `/docs`.
"""
SERVER_DESCRIPTION = """\
`python -m backend_services.message_service` (port from `LETSCHAT_PORT`, default 8002).
Behind TLS the same endpoint is `wss://`. Browsers must connect from an origin listed in
`LETSCHAT_ALLOWED_ORIGINS`.
"""
CHANNEL_DESCRIPTION = """\
One socket per browser tab. The token is never put in the URL: it travels in the first
frame. Close codes (see `x-close-codes`): 4000-4499 mean "reconnect (with backoff) and
resume"; 4500-4999 mean "do not reconnect with the same token". 1009, 1012 and 1013 are the
RFC 6455 codes for a too-big frame, a restarting server and "try again later".
"""
ORIGIN_DESCRIPTION = """\
Checked against `LETSCHAT_ALLOWED_ORIGINS` (default `http://localhost:3000`,
`http://127.0.0.1:3000`) when present; an unlisted origin gets HTTP 403 instead of
the upgrade. Requests without an Origin header (non-browser clients) are not
checked.
"""

# The examples' cast: every example is a model instance, so it is valid by construction.
ADA = User(id="0a1b2c3d4e5f60718293a4b5c6d7e8f9", username="ada", display_name="Ada Lovelace")
GRACE = User(id="1f2e3d4c5b6a79880796a5b4c3d2e1f0", username="grace", display_name="Grace Hopper")
LUNCH_ID = "9f1c2e4a7b8d4c0e9a1b2c3d4e5f6a7b"
DIRECT_ID = "dm:0a1b2c3d4e5f60718293a4b5c6d7e8f9:1f2e3d4c5b6a79880796a5b4c3d2e1f0"
EPOCH = "5d2c8e1f0a9b7c34"
MESSAGE = Message(
    id="3c4d5e6f708192a3b4c5d6e7f8091a2b",
    conversation_id=LUNCH_ID,
    seq=42,
    sender_id=ADA.id,
    sender_name=ADA.display_name,
    body="Lunch at noon?",
    client_msg_id="c-5b0e7c1e-0001",
    created_at=datetime(2025, 1, 2, 12, 0, 0, 123000, tzinfo=UTC),
)
EDITED = MESSAGE.model_copy(
    update={
        "body": "Lunch at half past twelve?",
        "version": 2,
        "edited_at": datetime(2025, 1, 2, 12, 1, tzinfo=UTC),
        "reactions": [Reaction(emoji="👍", user_ids=[GRACE.id])],
    }
)
REPLY = MESSAGE.model_copy(
    update={
        "id": "4d5e6f708192a3b4c5d6e7f8091a2b3c",
        "seq": 43,
        "sender_id": GRACE.id,
        "sender_name": GRACE.display_name,
        "body": "Works for me",
        "client_msg_id": "c-77aa01",
        "reply_to": ReplyPreview(
            message_id=MESSAGE.id,
            seq=MESSAGE.seq,
            sender_id=ADA.id,
            sender_name=ADA.display_name,
            excerpt=MESSAGE.body,
        ),
    }
)
LUNCH = Conversation(
    id=LUNCH_ID,
    kind="group",
    name="Lunch",
    members=[ADA],
    is_public=True,
    last_seq=0,
    last_message=None,
    unread=0,
    last_read_seq=0,
    created_at=datetime(2025, 1, 2, 11, 59, tzinfo=UTC),
    epoch=EPOCH,
)


@dataclass(frozen=True)
class Frame:
    """One frame as the document shows it: its message, and the operation that carries it."""

    model: type[BaseModel]
    key: str  # Unique among the channel's messages (the service's `read` is `readMarker`).
    title: str
    examples: dict[str, BaseModel]
    summary: str = ""  # Of the operation: what answers the frame (client frames).
    replies: tuple[str, ...] = ()


CLIENT_FRAMES = (
    Frame(
        AuthFrame,
        "auth",
        "Authenticate",
        {"auth": AuthFrame(token="eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl")},  # noqa: S106
        summary=(
            "The first frame of every connection, answered by `ready` or a 45xx close. Sent "
            "again on an open socket with a fresh access token of the same user, it is answered "
            "by `authed`; a token of someone else by `error` `bad_frame`; a token that fails by "
            "the same close as at the start."
        ),
        replies=("ready", "authed", "error"),
    ),
    Frame(
        ResumeFrame,
        "resume",
        "Resume from cursors",
        {
            "resume": ResumeFrame(
                cursors={LUNCH_ID: Cursor(seq=41, epoch=EPOCH, change=17), DIRECT_ID: 7}
            ),
            "first connection": ResumeFrame(),
        },
        summary=(
            "Start live delivery; missed messages (preceded by `limited` where truncated, by "
            "`reset` where the cursor counts in another history), missed changes (preceded by "
            "`changes_limited` where truncated) and then `resumed` follow."
        ),
        replies=("resumed",),
    ),
    Frame(
        SendFrame,
        "send",
        "Send a message",
        {
            "send": SendFrame(
                conversation_id=LUNCH_ID, client_msg_id=MESSAGE.client_msg_id, body=MESSAGE.body
            )
        },
        summary="Stored, then answered by `ack` (or an `error` carrying the same `client_msg_id`).",
        replies=("ack", "error"),
    ),
    Frame(
        EditFrame,
        "edit",
        "Edit your message",
        {"edit": EditFrame(conversation_id=LUNCH_ID, message_id=MESSAGE.id, body=EDITED.body)},
        summary=(
            "Answered by the `change` every member's sockets get (or an `error` carrying the "
            "same `message_id`); nothing when the body is unchanged."
        ),
        replies=("change", "error"),
    ),
    Frame(
        DeleteFrame,
        "delete",
        "Delete a message",
        {"delete": DeleteFrame(conversation_id=LUNCH_ID, message_id=MESSAGE.id)},
        summary="Answered by a `change` showing it deleted (or an `error`).",
        replies=("change", "error"),
    ),
    Frame(
        ReactFrame,
        "react",
        "React to a message",
        {
            "react": ReactFrame(
                conversation_id=LUNCH_ID, message_id=MESSAGE.id, emoji="👍", add=True
            )
        },
        summary=(
            "Answered by a `change` (or an `error`); nothing when the reaction was already so."
        ),
        replies=("change", "error"),
    ),
    Frame(
        ReadFrame,
        "read",
        "Move the read marker",
        {"read": ReadFrame(conversation_id=LUNCH_ID, seq=42)},
        summary=(
            "No answer on success; if the marker moved, the user's other sockets get a `read` "
            "frame."
        ),
    ),
    Frame(
        TypingFrame,
        "typing",
        "You are typing",
        {
            "typing": TypingFrame(conversation_id=LUNCH_ID),
            "stopped": TypingFrame(conversation_id=LUNCH_ID, active=False),
        },
        summary=(
            "No answer on success; the other members' sockets that follow the conversation get "
            "a `typing` frame (at most one per user and conversation every 3 s)."
        ),
    ),
    Frame(
        PresenceFrame,
        "presence",
        "How this tab is used",
        {"away": PresenceFrame(away=True), "back": PresenceFrame(away=False)},
        summary=(
            "No answer; when the user's status changes (online, away), the members of their "
            "conversations get a `presence` frame."
        ),
    ),
    Frame(PingFrame, "ping", "Application-level ping", {"ping": PingFrame()}, replies=("pong",)),
)
SERVER_FRAMES = (
    Frame(ReadyFrame, "ready", "Authenticated", {"ready": ReadyFrame(user=ADA)}),
    Frame(
        AuthedFrame,
        "authed",
        "Re-authenticated",
        {"authed": AuthedFrame(expires_at=datetime(2025, 1, 2, 12, 10, tzinfo=UTC))},
    ),
    Frame(ResumedFrame, "resumed", "Caught up", {"resumed": ResumedFrame()}),
    Frame(
        LimitedFrame,
        "limited",
        "Catch-up truncated",
        {"limited": LimitedFrame(conversation_id=LUNCH_ID, next_seq=1201)},
    ),
    Frame(
        ResetFrame,
        "reset",
        "Start this conversation over",
        {"reset": ResetFrame(conversation_id=LUNCH_ID, epoch=EPOCH)},
    ),
    Frame(
        MessageFrame,
        "message",
        "A message (missed or live)",
        {"message": MessageFrame(message=MESSAGE), "reply": MessageFrame(message=REPLY)},
    ),
    Frame(
        ChangeFrame,
        "change",
        "A message changed (missed or live)",
        {"change": ChangeFrame(conversation_id=LUNCH_ID, change=18, message=EDITED)},
    ),
    Frame(
        ChangesLimitedFrame,
        "changes_limited",
        "Change catch-up truncated",
        {"changes_limited": ChangesLimitedFrame(conversation_id=LUNCH_ID, next_change=901)},
    ),
    Frame(
        AckFrame,
        "ack",
        "Your message is stored",
        {"ack": AckFrame(client_msg_id=MESSAGE.client_msg_id, message=MESSAGE)},
    ),
    Frame(
        ConversationFrame,
        "conversation",
        "A conversation you now belong to",
        {
            "conversation": ConversationFrame(conversation=LUNCH),
            "added by someone": ConversationFrame(
                conversation=LUNCH.model_copy(update={"members": [ADA, GRACE]}), added_by=GRACE
            ),
        },
    ),
    Frame(
        ReadMarkerFrame,
        "readMarker",
        "Your read marker moved",
        {"read": ReadMarkerFrame(conversation_id=LUNCH_ID, seq=42)},
    ),
    Frame(
        LeftFrame, "left", "You left a conversation", {"left": LeftFrame(conversation_id=LUNCH_ID)}
    ),
    Frame(
        TypingNoticeFrame,
        "typingNotice",
        "Someone is typing",
        {"typing": TypingNoticeFrame(conversation_id=LUNCH_ID, user=GRACE, active=True)},
    ),
    Frame(
        PresenceNoticeFrame,
        "presenceNotice",
        "Whether people are there",
        {
            "presence": PresenceNoticeFrame(
                users=[
                    Presence(user_id=GRACE.id, status="online"),
                    Presence(
                        user_id=ADA.id,
                        status="offline",
                        last_seen_at=datetime(2025, 1, 2, 11, 58, tzinfo=UTC),
                    ),
                ]
            )
        },
    ),
    Frame(
        PresenceSettingFrame,
        "presenceSetting",
        "Your appear-offline setting changed",
        {"presence_setting": PresenceSettingFrame(appear_offline=True)},
    ),
    Frame(PongFrame, "pong", "Answer to ping", {"pong": PongFrame()}),
    Frame(
        ErrorFrame,
        "error",
        "A frame could not be handled",
        {
            "rate limited": ErrorFrame(
                code="rate_limited",
                message="You are sending too fast; slow down.",
                frame_type="send",
                conversation_id=LUNCH_ID,
                client_msg_id="c-5b0e7c1e-0002",
                retry_after=1,
            ),
            "bad frame": ErrorFrame(
                code="bad_frame", message="seq: Input should be greater than or equal to 0"
            ),
        },
    ),
)


def document() -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the message service's socket."""
    frames = (*CLIENT_FRAMES, *SERVER_FRAMES)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Let's Chat message service WebSocket",
            "version": "0.1.0",
            "description": INFO_DESCRIPTION,
            "license": {"name": "Proprietary"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "localhost:8002",
                "protocol": "ws",
                "title": "Development message service",
                "description": SERVER_DESCRIPTION,
            }
        },
        "channels": {"ws": _channel(frames)},
        "operations": {
            **{_operation_id("receive", f): _operation("receive", f) for f in CLIENT_FRAMES},
            **{_operation_id("send", f): _operation("send", f) for f in SERVER_FRAMES},
        },
        "components": {
            "messages": {frame.key: _message(frame) for frame in frames},
            "schemas": _schemas(),
        },
    }


def _channel(frames: tuple[Frame, ...]) -> dict[str, Any]:
    return {
        "address": "/ws",
        "title": "The message service socket",
        "description": CHANNEL_DESCRIPTION,
        "servers": [{"$ref": "#/servers/local"}],
        "messages": {f.key: {"$ref": f"#/components/messages/{f.key}"} for f in frames},
        "bindings": {
            "ws": {
                "method": "GET",
                "headers": {
                    "type": "object",
                    "properties": {"Origin": {"type": "string", "description": ORIGIN_DESCRIPTION}},
                },
                "bindingVersion": "0.1.0",
            }
        },
        "x-close-codes": [
            {
                "code": int(code),
                "name": code.name,
                "range": (
                    "rfc6455"
                    if code < 4000
                    else "reconnect"
                    if code.reconnect
                    else "do-not-reconnect"
                ),
                "reconnect": code.reconnect,
                "description": code.description,
            }
            for code in sorted(CloseCode)
        ],
    }


def _operation_id(action: str, frame: Frame) -> str:
    return f"{action}{frame.key[0].upper()}{frame.key[1:]}"


def _operation(action: str, frame: Frame) -> dict[str, Any]:
    operation: dict[str, Any] = {"action": action, "title": frame.title}
    if frame.summary:
        operation["summary"] = frame.summary
    operation["channel"] = {"$ref": "#/channels/ws"}
    operation["messages"] = [{"$ref": f"#/channels/ws/messages/{frame.key}"}]
    if frame.replies:
        operation["reply"] = {
            "channel": {"$ref": "#/channels/ws"},
            "messages": [{"$ref": f"#/channels/ws/messages/{key}"} for key in frame.replies],
        }
    return operation


def _message(frame: Frame) -> dict[str, Any]:
    message: dict[str, Any] = {
        "name": frame.model.model_fields["type"].default,
        "title": frame.title,
    }
    if frame.model.__doc__:
        message["summary"] = _prose(frame.model.__doc__)
    message["payload"] = {"$ref": f"#/components/schemas/{frame.model.__name__}"}
    message["examples"] = [
        {"name": name, "payload": example.model_dump(mode="json")}
        for name, example in frame.examples.items()
    ]
    return message


def _schemas() -> dict[str, Any]:
    """Client frames as the service validates them, service frames as it serialises them."""
    modes: list[tuple[type[BaseModel], JsonSchemaMode]] = [
        *((f.model, "validation") for f in CLIENT_FRAMES),
        *((f.model, "serialization") for f in SERVER_FRAMES),
    ]
    _, top = models_json_schema(modes, ref_template="#/components/schemas/{model}")
    definitions: dict[str, Any] = top["$defs"]
    return {name: _tidy(schema) for name, schema in definitions.items()}


def _tidy(schema: Any) -> Any:
    """Drop what pydantic adds for its own UIs (titles) and `default: null` on fields that are
    left out rather than sent as null."""
    if isinstance(schema, list):
        return [_tidy(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    tidy: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "title" or (key == "default" and value is None):
            continue
        if key == "properties":
            tidy[key] = {name: _tidy(field) for name, field in value.items()}
        elif key == "description" and isinstance(value, str):
            tidy[key] = _prose(value)
        else:
            tidy[key] = _tidy(value)
    return tidy


def _prose(text: str) -> str:
    """A docstring as the document shows it: dedented, and ending in a line break if it has
    several lines (so it reads back from a block scalar as written)."""
    text = inspect.cleandoc(text)
    return f"{text}\n" if "\n" in text else text


def render() -> str:
    return HEADER + _yaml.dump(document())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="fail if the file is not current")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != text:
            print(f"{args.path} is out of date: run python -m letschat_protocol.asyncapi")
            return 1
        return 0
    args.path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
