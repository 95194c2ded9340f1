"""Frames the service sends on the socket: read leniently, like every model of what it sends.

`parse_server_frame` drops fields it does not know and answers None for a `type` it does not
know, so a service that adds either keeps working with the clients of the release before.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, field_serializer
from pydantic.json_schema import SkipJsonSchema

from letschat_protocol.client import ClientFrame
from letschat_protocol.models import (
    Conversation,
    Message,
    Presence,
    ServiceModel,
    User,
    require_type,
)

# The `type`s of the client frames, which an error frame echoes.
CLIENT_FRAME_TYPES = [
    get_args(model.model_fields["type"].annotation)[0]
    for model in get_args(get_args(ClientFrame)[0])
]


def _absent(value: object) -> bool:
    return value is None


class ServerFrameModel(ServiceModel):
    """A frame the service sends: its `type` names it (and picks its model)."""

    model_config = ConfigDict(json_schema_extra=require_type)


class ReadyFrame(ServerFrameModel):
    """The signed-in user. Send `resume` next."""

    type: Literal["ready"] = "ready"
    user: User


class AuthedFrame(ServerFrameModel):
    """Answers an `auth` frame on an already authenticated socket: the socket now runs on the
    new token (and its session) until `expires_at`, when a later check closes it with 4502
    unless another `auth` came first. Nothing else changes: cursors, followed conversations and
    pending sends carry on."""

    type: Literal["authed"] = "authed"
    expires_at: datetime = Field(
        description=(
            "When the new access token expires: UTC, ISO 8601 with a `+00:00` offset, whole "
            "seconds. Send the next `auth` before then."
        ),
        json_schema_extra={"format": "date-time"},
    )

    @field_serializer("expires_at")
    def _offset(self, expires_at: datetime) -> str:
        # As it always was on the wire: `+00:00`, not pydantic's `Z`.
        return expires_at.isoformat()


class ResumedFrame(ServerFrameModel):
    """Every conversation has been caught up to its newest message; live delivery continues."""

    type: Literal["resumed"] = "resumed"


class LimitedFrame(ServerFrameModel):
    """Only the newest messages (300 by default) follow for this conversation, starting at
    `next_seq`. Fetch older ones with
    `GET /conversations/{conversation_id}/messages?before_seq={next_seq}`."""

    type: Literal["limited"] = "limited"
    conversation_id: str
    next_seq: int = Field(
        description="The seq the following catch-up starts at; older ones were left out.",
        json_schema_extra={"minimum": 1},
    )


class ResetFrame(ServerFrameModel):
    """The resumed cursor counts in another history of the conversation than the stored one
    (a restore from a backup): drop what you hold of it, count from 0 in `epoch`; its messages
    follow from the start, as for a new conversation."""

    type: Literal["reset"] = "reset"
    conversation_id: str
    epoch: str = Field(description="The epoch to count in from now on.")


class MessageFrame(ServerFrameModel):
    """A stored message, missed (during catch-up) or live. In each conversation seqs only
    increase on one socket; they can skip numbers. Deduplicate by `message.id`."""

    type: Literal["message"] = "message"
    message: Message


class ChangeFrame(ServerFrameModel):
    """A message changed (edited, deleted, reacted to): missed (during catch-up) or live.
    Numbered per conversation by `change`, apart from seqs; in each conversation the numbers
    only increase on one socket and may skip. Replace your copy of `message` unless yours has
    a higher `version`."""

    type: Literal["change"] = "change"
    conversation_id: str
    change: int = Field(json_schema_extra={"minimum": 1})
    message: Message


class ChangesLimitedFrame(ServerFrameModel):
    """Only the newest changes (as many as `limited` allows messages) follow for this
    conversation, starting at `next_change`: reload the messages you hold to see the older
    ones' effects."""

    type: Literal["changes_limited"] = "changes_limited"
    conversation_id: str
    next_change: int = Field(json_schema_extra={"minimum": 1})


class AckFrame(ServerFrameModel):
    """Answers a `send` (also a repeated one: then it carries the message stored the first
    time). The same message also arrives as a `message` frame; deduplicate by id."""

    type: Literal["ack"] = "ack"
    client_msg_id: str
    message: Message


class ConversationFrame(ServerFrameModel):
    """Sent to the user's sockets when they create, are added to, or join a conversation (also
    before `resume`). On a resumed socket, its messages follow as `message` frames."""

    type: Literal["conversation"] = "conversation"
    conversation: Conversation
    added_by: User | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=_absent,
        description="Who added you, when someone else did; absent when you created or joined it.",
    )


class ReadMarkerFrame(ServerFrameModel):
    """The user's read marker in a conversation moved, from another of their sockets (a `read`
    frame) or from REST (`POST /conversations/{id}/read`, then to all their sockets). A `read`
    that leaves the marker where it is sends nothing."""

    type: Literal["read"] = "read"
    conversation_id: str
    seq: int = Field(
        description="Where the marker now is (it may be past the seq that was asked for).",
        json_schema_extra={"minimum": 0},
    )


class TypingNoticeFrame(ServerFrameModel):
    """Another member is typing in a conversation this socket follows (`active: true`; show it
    for 6 s unless another notice renews it), or stopped (`active: false`). A `message` from
    them ends it too. Ephemeral: never stored, never caught up on `resume`."""

    type: Literal["typing"] = "typing"
    conversation_id: str
    user: User
    active: bool


class PresenceNoticeFrame(ServerFrameModel):
    """Whether people are there: after `resumed` (and when this socket starts following a
    conversation), everyone you share a direct conversation or a group of up to 50 members
    with; then each change of theirs, once per such conversation you share (apply them in
    order, per person). `GET /conversations/{id}/presence` gives a bigger group's members."""

    type: Literal["presence"] = "presence"
    users: list[Presence]


class PresenceSettingFrame(ServerFrameModel):
    """Your "appear offline" setting changed (`PUT /presence/me`, from any of your devices)."""

    type: Literal["presence_setting"] = "presence_setting"
    appear_offline: bool


class LeftFrame(ServerFrameModel):
    """Live delivery for it has stopped on this socket; drop it from the list."""

    type: Literal["left"] = "left"
    conversation_id: str


class PongFrame(ServerFrameModel):
    """The answer to `ping`."""

    type: Literal["pong"] = "pong"


class ErrorFrame(ServerFrameModel):
    """The socket stays open. Context fields echo the frame the error is about."""

    type: Literal["error"] = "error"
    # A string, not an ErrorCode: a client must understand the codes of a newer service too.
    code: str = Field(
        description=(
            "An error code (docs/protocol.md lists them): on the socket usually bad_frame, "
            "validation_error, message_too_long, not_found, rate_limited, service_unavailable "
            "or internal_error."
        )
    )
    message: str = Field(description="Human-readable; may be shown to the user.")
    # Optional fields are left out, not sent as null.
    frame_type: str | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=_absent,
        description="The type of the frame this answers; absent when the frame did not parse.",
        json_schema_extra={"enum": CLIENT_FRAME_TYPES},
    )
    conversation_id: str | SkipJsonSchema[None] = Field(
        default=None, exclude_if=_absent, description="Echoed from the frame, when it had one."
    )
    client_msg_id: str | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=_absent,
        description="Echoed from a `send` frame; match it to the pending message.",
    )
    message_id: str | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=_absent,
        description="Echoed from an `edit`, `delete` or `react` frame.",
    )
    retry_after: int | SkipJsonSchema[None] = Field(
        default=None,
        exclude_if=_absent,
        description="With `rate_limited`, seconds until a send will be accepted again.",
        json_schema_extra={"minimum": 1},
    )


ServerFrame = Annotated[
    ReadyFrame
    | AuthedFrame
    | ResumedFrame
    | LimitedFrame
    | ResetFrame
    | MessageFrame
    | ChangeFrame
    | ChangesLimitedFrame
    | AckFrame
    | ConversationFrame
    | ReadMarkerFrame
    | LeftFrame
    | TypingNoticeFrame
    | PresenceNoticeFrame
    | PresenceSettingFrame
    | PongFrame
    | ErrorFrame,
    Field(discriminator="type"),
]
server_frame_adapter: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)


def frame_text(frame: ServerFrameModel) -> str:
    """`frame` as one text message: `model_dump_json()`, without its per-call handling of
    options (a third of the cost of a message frame, which the service makes for every
    message it fans out)."""
    return frame.__pydantic_serializer__.to_json(frame).decode()


def parse_server_frame(text: str | bytes) -> ServerFrame | None:
    """The frame in one text message, or None if its `type` is not one this release knows.

    Unknown fields are dropped. A known frame that does not parse is a `ValidationError`.
    """
    try:
        # Lax, as JSON arrives (the models are strict for the service that builds them).
        return server_frame_adapter.validate_json(text, strict=False)
    except ValidationError as exc:
        if [error["type"] for error in exc.errors()] == ["union_tag_invalid"]:
            return None
        raise
