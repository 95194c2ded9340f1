"""What a conversation's popup says: who wrote, or how many messages wait."""

from __future__ import annotations

from letschat_app.state.models import ChatItem, popup_text
from tests.unit.test_chat_model import message

DIRECT = ChatItem(id="c1", kind="direct", name="Bob")
GROUP = ChatItem(id="c1", kind="group", name="design")


def test_one_message_names_its_sender_and_where() -> None:
    assert popup_text(message(1), 1, DIRECT) == ("Bob", "message 1")
    assert popup_text(message(1), 1, GROUP) == ("Bob in design", "message 1")


def test_several_say_how_many_and_show_the_newest() -> None:
    assert popup_text(message(3), 3, DIRECT) == ("3 new messages from Bob", "message 3")
    assert popup_text(message(3), 3, GROUP) == ("3 new messages in design", "Bob: message 3")


def test_the_text_is_plain_and_short() -> None:
    long = message(1).model_copy(update={"body": "**bold** " + "x" * 200})
    title, body = popup_text(long, 1, DIRECT)
    assert body.startswith("bold x")
    assert len(body) == 141
    assert body.endswith("…")
    assert title == "Bob"
