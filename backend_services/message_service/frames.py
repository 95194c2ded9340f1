"""Server-to-client WebSocket frames, serialised once and sent as they are to every socket."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from backend_services.core.errors import AppError
from backend_services.core.schemas import Conversation, Message, User


def _frame(type_: str, **fields: Any) -> str:
    return json.dumps({"type": type_, **fields}, separators=(",", ":"))


def message(msg: Message) -> str:
    return f'{{"type":"message","message":{msg.model_dump_json()}}}'


def ack(client_msg_id: str, msg: Message) -> str:
    return (
        f'{{"type":"ack","client_msg_id":{json.dumps(client_msg_id)},'
        f'"message":{msg.model_dump_json()}}}'
    )


def conversation(view: Conversation, added_by: User | None = None) -> str:
    """A conversation the user now belongs to; `added_by`: who put them there, if not they."""
    if added_by is None:
        return f'{{"type":"conversation","conversation":{view.model_dump_json()}}}'
    return (
        f'{{"type":"conversation","conversation":{view.model_dump_json()},'
        f'"added_by":{added_by.model_dump_json()}}}'
    )


def ready(user: User) -> str:
    return f'{{"type":"ready","user":{user.model_dump_json()}}}'


def error(exc: AppError, **context: Any) -> str:
    fields = {**exc.to_dict(), **context}
    if exc.retry_after is not None:
        fields["retry_after"] = exc.retry_after
    return _frame("error", **fields)


def authed(expires_at: datetime) -> str:
    return _frame("authed", expires_at=expires_at.isoformat())


def read(conversation_id: str, seq: int) -> str:
    return _frame("read", conversation_id=conversation_id, seq=seq)


def left(conversation_id: str) -> str:
    return _frame("left", conversation_id=conversation_id)


def limited(conversation_id: str, next_seq: int) -> str:
    return _frame("limited", conversation_id=conversation_id, next_seq=next_seq)


RESUMED = _frame("resumed")
PONG = _frame("pong")


def reset(conversation_id: str, epoch: str) -> str:
    """The client's cursor in this conversation points into a history that is gone: drop what
    it holds of it; the conversation follows from its start, in `epoch`."""
    return (
        f'{{"type":"reset","conversation_id":{json.dumps(conversation_id)},'
        f'"epoch":{json.dumps(epoch)}}}'
    )
