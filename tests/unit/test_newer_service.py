"""The web app keeps working against a newer service (a rolling deploy): fields it does not know
are ignored, in REST answers and in socket frames, and so are frames of a type it does not know.

Only the web app's own functions are used here (no protocol import), so the same file runs
against any release of it.
"""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from letschat_app import api_client
from letschat_app.model.chat import ChatModel
from letschat_app.state.live import LiveState

ME, OTHER, CID = "me", "bob", "c1"
# What a newer service might add: a field on a message, on a user, on the frame itself.
MESSAGE = {
    "id": "m6",
    "conversation_id": CID,
    "seq": 6,
    "sender_id": OTHER,
    "sender_name": "Bob",
    "body": "hello",
    "client_msg_id": "x6",
    "created_at": "2026-12-01T10:00:00.000000Z",
    "pins": [{"by": "u2", "count": 2}],
}
CONVERSATION: dict[str, Any] = {
    "id": CID,
    "kind": "group",
    "name": "Lunch",
    "members": [{"id": ME, "username": "me", "display_name": "Me"}],
    "is_public": False,
    "last_seq": 5,
    "last_message": None,
    "unread": 0,
    "last_read_seq": 5,
    "created_at": "2026-12-01T09:00:00Z",
    "epoch": "e1",
}


class FakeSocket:
    """The `websockets` connection the live socket reads, holding the texts the service sent."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.sent: list[str] = []

    async def recv(self) -> str:
        if not self.texts:
            await asyncio.Event().wait()  # Nothing more arrives.
        return self.texts.pop(0)

    async def send(self, text: str) -> None:
        self.sent.append(text)


def test_a_rest_message_and_conversation_with_fields_the_app_does_not_know_are_read() -> None:
    message = api_client.parse_message(MESSAGE)
    assert (message.id, message.seq, message.body) == ("m6", 6, "hello")
    newer = {
        **CONVERSATION,
        "last_message": MESSAGE,
        "members": [{**CONVERSATION["members"][0], "avatar": "me.png"}],
        "topic": "food",
    }
    conversation = api_client.parse_conversation(newer)
    assert conversation.last_message == message
    assert [m.display_name for m in conversation.members] == ["Me"]


async def test_a_page_of_history_with_fields_the_app_does_not_know_is_read() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"messages": [MESSAGE], "has_more": False, "next": 9})

    previous = api_client._client
    api_client._client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    try:
        messages, has_more = await api_client.older_messages("token", CID, None)
    finally:
        await api_client._client.aclose()
        api_client._client = previous
    assert [m.id for m in messages] == ["m6"]
    assert has_more is False


@pytest.mark.parametrize("kind", ["message", "ack"])
async def test_a_live_frame_with_fields_the_app_does_not_know_reaches_the_tab(kind: str) -> None:
    model = ChatModel(ME, "Me")
    model.load([api_client.parse_conversation(CONVERSATION)], 0.0)
    frame: dict[str, Any] = {"type": kind, "message": MESSAGE, "trace_id": "t-1"}
    if kind == "ack":
        frame["client_msg_id"] = MESSAGE["client_msg_id"]
    texts = [
        json.dumps({"type": "typing", "conversation_id": CID, "user_id": OTHER}),  # A new type.
        json.dumps(frame),
        json.dumps({"type": "resumed", "took_ms": 12}),
    ]
    socket = api_client.LiveSocket(FakeSocket(texts))

    batch = await anext(aiter(socket.frames(idle_timeout=1.0)))
    # The tab's own dispatch, without Reflex: only what it touches of the state.
    tab = SimpleNamespace(error="", _popup=lambda _model, popup: popup.message.id)
    events, resumed, unknown = LiveState._apply(tab, model, batch, 1.0)

    assert resumed is True
    assert unknown is False
    assert events == ["m6"]  # Bob's message is news: it pops up.
    assert model.chats[CID].last_seq == 6
    assert model.chats[CID].unread == 1
    # An ack does not move the cursor: the message follows in the stream (protocol section 9).
    assert model.resume_cursors()[CID]["seq"] == (6 if kind == "message" else 5)
