"""The web app's rules for typing: whom it shows typing, and when it tells the others."""

from __future__ import annotations

from backend_services.core.schemas import User
from letschat_app.model.chat import ChatModel
from letschat_protocol import TypingNoticeFrame
from tests.unit.test_chat_model import CID, ME, conversation, message, model_with

ADA = User(id="ada", username="ada", display_name="Ada")
GRACE = User(id="grace", username="grace", display_name="")
LIN = User(id="lin", username="lin", display_name="Lin")


def opened() -> ChatModel:
    model = model_with(conversation(), conversation("c2"))
    model.open(CID, 0.0)
    model.take_outbox()
    return model


def notice(user: User, active: bool = True, cid: str = CID) -> TypingNoticeFrame:
    return TypingNoticeFrame(conversation_id=cid, user=user, active=active)


def test_typists_are_named_as_a_chat_product_names_them() -> None:
    model = opened()
    assert model.typists.line(CID) == ""
    model.typing_notice(notice(ADA), 1.0)
    assert model.typists.line(CID) == "Ada is typing…"
    model.typing_notice(notice(GRACE), 1.0)  # No display name: the username.
    assert model.typists.line(CID) == "Ada and grace are typing…"
    model.typing_notice(notice(LIN), 1.0)
    assert model.typists.line(CID) == "Several people are typing…"
    assert model.typists.line("c2") == ""


def test_typing_ends_on_a_stop_a_message_from_them_or_after_six_seconds() -> None:
    model = opened()
    model.typing_notice(notice(ADA), 0.0)
    model.typing_notice(notice(GRACE), 0.0)
    model.typing_notice(notice(LIN), 0.0)
    assert model.wants_tick()  # Time alone ends what is shown.
    model.typing_notice(notice(GRACE, active=False), 1.0)
    model.receive(message(1, sender=LIN.id), 1.0)
    assert model.typists.line(CID) == "Ada is typing…"
    model.typing_notice(notice(ADA), 4.0)  # Renewed: shown 6 s from now.
    model.tick(9.9)
    assert model.typists.line(CID) == "Ada is typing…"
    model.tick(10.0)
    assert model.typists.line(CID) == ""
    assert not model.wants_tick()


def test_own_typing_and_other_conversations_are_not_shown_here() -> None:
    model = opened()
    model.typing_notice(notice(User(id=ME, username="me", display_name="Me")), 0.0)
    model.typing_notice(notice(ADA, cid="unknown"), 0.0)
    assert not model.typists
    model.typing_notice(notice(ADA), 0.0)
    model.left(CID)
    assert not model.typists


def test_the_others_are_told_at_most_every_three_seconds_and_a_send_needs_no_stop() -> None:
    model = opened()
    model.typed(0.0)
    model.typed(2.9)
    assert model.take_outbox() == [{"type": "typing", "conversation_id": CID, "active": True}]
    model.typed(3.0)
    assert len(model.take_outbox()) == 1
    assert model.send("hi", 3.5)
    model.stopped_typing(3.6)  # The message ended it: no stop.
    assert [frame["type"] for frame in model.take_outbox()] == ["send"]
    model.typed(3.7)  # Typing again right after a send is told at once.
    assert [frame["type"] for frame in model.take_outbox()] == ["typing"]


def test_a_stop_goes_where_the_typing_was_told_while_it_may_still_show() -> None:
    model = opened()
    model.typed(0.0)
    model.open("c2", 1.0)  # Switched away: the stop is for where they typed.
    model.take_outbox()
    model.stopped_typing(1.0)
    assert model.take_outbox() == [{"type": "typing", "conversation_id": CID, "active": False}]
    model.stopped_typing(1.5)  # Said already.
    model.typed(2.0)
    model.stopped_typing(8.0)  # The others stopped showing it by themselves.
    assert model.take_outbox() == [{"type": "typing", "conversation_id": "c2", "active": True}]
