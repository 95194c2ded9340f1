"""Server-to-client WebSocket frames, serialised once and sent as they are to every socket.

Each is a `letschat_protocol.server` model, so what the service sends is what clients parse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend_services.core.errors import AppError
from backend_services.core.schemas import Change, Conversation, Message, Presence, User
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
    frame_text,
)


def message(msg: Message) -> str:
    return frame_text(MessageFrame(message=msg))


def change(entry: Change) -> str:
    return frame_text(
        ChangeFrame(
            conversation_id=entry.message.conversation_id,
            change=entry.change,
            message=entry.message,
        )
    )


def changes_limited(conversation_id: str, next_change: int) -> str:
    return frame_text(ChangesLimitedFrame(conversation_id=conversation_id, next_change=next_change))


def ack(client_msg_id: str, msg: Message) -> str:
    return frame_text(AckFrame(client_msg_id=client_msg_id, message=msg))


def conversation(view: Conversation, added_by: User | None = None) -> str:
    """A conversation the user now belongs to; `added_by`: who put them there, if not they."""
    return frame_text(ConversationFrame(conversation=view, added_by=added_by))


def ready(user: User) -> str:
    return frame_text(ReadyFrame(user=user))


def error(exc: AppError, **context: Any) -> str:
    """`context` echoes the frame the error answers: frame_type, conversation_id, client_msg_id,
    message_id."""
    return frame_text(
        ErrorFrame(code=exc.code.value, message=exc.message, retry_after=exc.retry_after, **context)
    )


def authed(expires_at: datetime) -> str:
    return frame_text(AuthedFrame(expires_at=expires_at))


def read(conversation_id: str, seq: int) -> str:
    return frame_text(ReadMarkerFrame(conversation_id=conversation_id, seq=seq))


def typing(conversation_id: str, user: User, active: bool) -> str:
    return frame_text(TypingNoticeFrame(conversation_id=conversation_id, user=user, active=active))


def presence(entries: list[Presence]) -> str:
    return frame_text(PresenceNoticeFrame(users=entries))


def presence_setting(appear_offline: bool) -> str:
    return frame_text(PresenceSettingFrame(appear_offline=appear_offline))


def left(conversation_id: str) -> str:
    return frame_text(LeftFrame(conversation_id=conversation_id))


def limited(conversation_id: str, next_seq: int) -> str:
    return frame_text(LimitedFrame(conversation_id=conversation_id, next_seq=next_seq))


RESUMED = frame_text(ResumedFrame())
PONG = frame_text(PongFrame())


def reset(conversation_id: str, epoch: str) -> str:
    """The client's cursor in this conversation points into a history that is gone: drop what
    it holds of it; the conversation follows from its start, in `epoch`."""
    return frame_text(ResetFrame(conversation_id=conversation_id, epoch=epoch))
