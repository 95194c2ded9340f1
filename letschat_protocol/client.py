"""Frames a client sends on the socket: strict, like every model of what clients send.

The service reads them only through `parse_client_frame` (or `client_frame_adapter`): an unknown
`type`, an unknown field or a wrong type is a `ValidationError`, answered with `bad_frame`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter

from letschat_protocol.models import (
    ClientModel,
    ClientMsgId,
    Cursor,
    ObjectIdStr,
    Seq,
    require_type,
)


class ClientFrameModel(ClientModel):
    """A frame a client sends: its `type` names it (and picks its model)."""

    model_config = ConfigDict(json_schema_extra=require_type)


class AuthFrame(ClientFrameModel):
    """Must be the first frame, within 5 s of connecting. May be sent again on an open socket
    with a fresh access token of the same user, before the current one expires."""

    type: Literal["auth"] = "auth"
    token: Annotated[str, StringConstraints(min_length=1, max_length=4096)] = Field(
        description=(
            "The `access_token` from `POST /auth/login`, `/auth/register` or `/auth/refresh`."
        )
    )


class ResumeFrame(ClientFrameModel):
    """Cursors are the highest seq received per conversation; a missing one counts as 0."""

    type: Literal["resume"] = "resume"
    # A bare seq is a cursor whose history the client does not know (it is checked only for
    # running past the stored history).
    cursors: Annotated[dict[ObjectIdStr, Seq | Cursor], Field(max_length=10_000)] = Field(
        default={},
        description=(
            "Conversation id -> highest seq received, with the epoch it counts in (a bare seq: "
            "the epoch is not known). Missing conversations start from 0; ids of conversations "
            "the user does not belong to are ignored."
        ),
    )


class SendFrame(ClientFrameModel):
    """Idempotent per sender, conversation and `client_msg_id`; reuse it on retries."""

    type: Literal["send"] = "send"
    conversation_id: ObjectIdStr
    client_msg_id: ClientMsgId
    body: str = Field(
        description=(
            "Trimmed by the service; empty gives `validation_error`, more than 4000 characters "
            "`message_too_long`."
        )
    )
    reply_to: ObjectIdStr | None = Field(
        default=None,
        description=(
            "The id of the message in this conversation it answers (`not_found` if there is "
            "none, `message_deleted` if it was deleted)."
        ),
    )


class EditFrame(ClientFrameModel):
    """Replace the body of your own message, within the edit window. The edited message comes
    to every member's sockets as a `change` frame (also to this one: that is the answer); an
    edit to the body it has already changes nothing and sends nothing."""

    type: Literal["edit"] = "edit"
    conversation_id: ObjectIdStr
    message_id: ObjectIdStr
    body: str = Field(description="The new body, with the limits of `send`.")


class DeleteFrame(ClientFrameModel):
    """Delete a message: your own, or any in a group you created. Its body is gone from the
    store; a `change` frame shows it deleted. Deleting it again changes nothing."""

    type: Literal["delete"] = "delete"
    conversation_id: ObjectIdStr
    message_id: ObjectIdStr


class ReactFrame(ClientFrameModel):
    """Add (`add: true`) or take back (`add: false`) your reaction; both are idempotent, so a
    retry never toggles twice. Emoji come from the service's set (`unknown_emoji`)."""

    type: Literal["react"] = "react"
    conversation_id: ObjectIdStr
    message_id: ObjectIdStr
    emoji: Annotated[str, StringConstraints(min_length=1, max_length=16)]
    add: bool


class ReadFrame(ClientFrameModel):
    """Never moves backwards and never past what this socket has been sent in the conversation
    (for a socket that does not follow it live yet: its newest message). Clients send at most
    one a second per conversation, for the newest seq the user has seen."""

    type: Literal["read"] = "read"
    conversation_id: ObjectIdStr
    seq: Seq


class TypingFrame(ClientFrameModel):
    """The user is typing in a conversation (`active: true`), or stopped without sending
    (`active: false`: the composer lost focus or was emptied). Nothing is stored. Send it at
    most once every 3 s while typing: the service passes on at most that many per user and
    conversation, and a `message` from the user ends their typing for everyone anyway."""

    type: Literal["typing"] = "typing"
    conversation_id: ObjectIdStr
    active: bool = True


class PresenceFrame(ClientFrameModel):
    """How this tab is used: `away` when it has been hidden, or without input for 5 minutes;
    not away again at the next input. A socket counts as not away until it says so. Send it
    when it changes."""

    type: Literal["presence"] = "presence"
    away: bool


class PingFrame(ClientFrameModel):
    """An application-level ping, answered by `pong`."""

    type: Literal["ping"] = "ping"


ClientFrame = Annotated[
    AuthFrame
    | ResumeFrame
    | SendFrame
    | ReadFrame
    | EditFrame
    | DeleteFrame
    | ReactFrame
    | TypingFrame
    | PresenceFrame
    | PingFrame,
    Field(discriminator="type"),
]
client_frame_adapter: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


def parse_client_frame(text: str | bytes) -> ClientFrame:
    """The frame in one text message; `ValidationError` if it is not exactly one of ours."""
    return client_frame_adapter.validate_json(text)
