"""System lines in the web app: shown as such, no popup, no "You:", and their group fetched
again."""

from __future__ import annotations

from backend_services.core.schemas import Message, SystemEvent
from letschat_app.model.chat import ChatModel
from tests.unit.test_chat_model import CID, ME, OTHER, conversation, message, model_with


def system(seq: int, sender: str = OTHER) -> Message:
    event = SystemEvent(kind="added", actor_id=sender, actor_name="Bob", target_name="Cy")
    return message(seq, sender=sender).model_copy(update={"body": "Bob added Cy", "system": event})


def test_a_system_line_pops_up_nowhere_and_asks_for_its_group_again() -> None:
    model: ChatModel = model_with(conversation(last_seq=0))
    assert model.receive(system(1), 1.0) is None
    assert model.stale == {CID}
    chat = model.chats[CID]
    assert chat.preview == "Bob added Cy"
    assert chat.last_seq == 1
    model.stale.clear()
    model.receive(system(1), 2.0)  # A replay: nothing new.
    assert model.stale == set()


def test_your_own_system_line_is_not_you_colon_and_stands_apart_in_the_stream() -> None:
    model = model_with(conversation(last_seq=0))
    model.open(CID, 0.0)
    model.receive(message(1, sender=ME), 1.0)
    model.receive(system(2, sender=ME), 1.0)
    assert model.chats[CID].preview == "Bob added Cy"
    model.receive(message(3, sender=ME), 1.0)
    assert model.chats[CID].preview == "You: message 3"
    items = model.timeline(CID).messages()
    assert [(item.seq, item.system, item.continues) for item in items] == [
        (1, False, False),
        (2, True, False),
        (3, False, False),  # Not under the system line, though from the same person.
    ]
