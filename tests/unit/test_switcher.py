"""The quick switcher's ranking: what a person expects Ctrl+K to find first."""

from __future__ import annotations

from letschat_app.model.switcher import choices, score
from letschat_app.state.models import ChatItem, Person


def chat(cid: str, name: str, activity: str, kind: str = "group", partner: str = "") -> ChatItem:
    return ChatItem(
        id=cid, name=name, kind=kind, last_activity=activity, partner_id=partner, member_count=3
    )


def test_a_name_that_starts_with_it_beats_a_word_a_substring_and_scattered_letters() -> None:
    scores = [score("gr", text) for text in ("Grace", "Ada Grace", "Ogre", "Gate Runners")]
    assert None not in scores
    assert scores == sorted(scores, reverse=True)  # type: ignore[type-var]
    assert len(set(scores)) == 4
    assert score("GH", "Grace Hopper") is not None  # Any case; letters in order.
    assert score("hg", "Grace Hopper") is None  # Not in that order.
    assert score("", "anything") == 0.0


def test_conversations_come_first_newest_first_then_people_without_one() -> None:
    chats = [
        chat("c1", "design", "2026-12-01T10:00:00"),
        chat("c2", "Dana", "2026-12-06T10:00:00", kind="direct", partner="dana"),
        chat("c3", "deploys", "2026-12-05T10:00:00"),
    ]
    people = [
        Person(id="dana", username="dana", display_name="Dana"),  # Has a conversation.
        Person(id="dave", username="dave", display_name="Dave"),
    ]
    found = choices("d", chats, people)
    assert [item.label for item in found] == ["Dana", "deploys", "design", "Dave"]
    assert [item.kind for item in found] == ["conversation"] * 3 + ["person"]
    assert found[0].detail == "Direct message"
    assert found[1].detail == "Group · 3 members"
    assert found[3].detail == "@dave · new message"
    # An empty box lists the newest conversations; a username finds a person too.
    assert [item.id for item in choices("", chats, people)][:3] == ["c2", "c3", "c1"]
    assert [item.id for item in choices("dav", chats, people)] == ["dave"]


def test_at_most_eight_and_each_once() -> None:
    chats = [chat(f"c{i}", f"team {i}", f"2026-12-01T10:00:{i:02d}") for i in range(20)]
    people = [Person(id="t", username="team", display_name="Team")] * 3
    found = choices("team", chats, people)
    assert len(found) == 8
    assert len({item.key for item in found}) == 8
