"""The web app's rules for presence: what it shows of whether people are there, and what it
tells the service of this tab."""

from __future__ import annotations

from datetime import UTC, datetime

from backend_services.core.schemas import Conversation, User
from letschat_app.model.presence import presence_line
from letschat_app.model.timeline import zone
from letschat_protocol import Presence
from tests.unit.test_chat_model import ME, conversation, model_with

ADA = User(id="ada", username="ada", display_name="Ada")
GRACE = User(id="grace", username="grace", display_name="Grace")
MOMENT = datetime(2026, 12, 7, 15, 30, tzinfo=UTC)


def direct_with(other: User) -> Conversation:
    me = User(id=ME, username="me", display_name="Me")
    return conversation("dm").model_copy(
        update={"kind": "direct", "name": other.display_name, "members": [me, other]}
    )


def group_of(*others: User) -> Conversation:
    me = User(id=ME, username="me", display_name="Me")
    return conversation("g").model_copy(update={"members": [me, *others]})


def seen(hour: int, minute: int, day: int = 7, month: int = 12, year: int = 2026) -> Presence:
    at = datetime(year, month, day, hour, minute, tzinfo=UTC)
    return Presence(user_id="ada", status="offline", last_seen_at=at)


def test_the_line_says_a_day_and_a_time_that_stay_true() -> None:
    assert presence_line(Presence(user_id="ada", status="online"), UTC, MOMENT) == "Online"
    assert presence_line(Presence(user_id="ada", status="away"), UTC, MOMENT) == "Away"
    assert presence_line(seen(14, 5), UTC, MOMENT) == "Last seen today at 14:05"
    assert presence_line(seen(23, 59, day=6), UTC, MOMENT) == "Last seen yesterday at 23:59"
    assert presence_line(seen(9, 0, day=3), UTC, MOMENT) == "Last seen Dec 3"
    assert presence_line(seen(9, 0, day=3, year=2025), UTC, MOMENT) == "Last seen Dec 3, 2025"
    assert presence_line(Presence(user_id="ada", status="offline"), UTC, MOMENT) == "Offline"
    assert presence_line(None, UTC, MOMENT) == ""
    # A status from a newer service: there, somehow.
    assert presence_line(Presence(user_id="ada", status="busy"), UTC, MOMENT) == "Online"
    # In the viewer's zone: in Tokyo it is the 8th already, and 16:00 UTC on the 6th was 01:00
    # on the 7th.
    assert presence_line(seen(16, 0, day=6), zone("Asia/Tokyo"), MOMENT) == (
        "Last seen yesterday at 01:00"
    )


def test_a_direct_conversation_shows_the_other_persons_presence() -> None:
    model = model_with(direct_with(ADA), group_of(ADA))
    model.places.take_changes()
    assert model.chats["dm"].presence == ""
    assert model.partner_line("dm", MOMENT) == ""
    model.presence_notice([Presence(user_id="ada", status="away")])
    assert model.chats["dm"].presence == "away"
    assert model.chats["g"].presence == ""  # A group has no one other person.
    assert model.places.take_changes()  # The sidebar row is drawn again...
    model.presence_notice([Presence(user_id="ada", status="away")])
    assert not model.places.take_changes()  # ...only when something changed.
    assert model.partner_line("dm", MOMENT) == "Away"
    model.upsert(direct_with(ADA))  # The list fetched again keeps it.
    assert model.chats["dm"].presence == "away"


def test_the_member_list_shows_everyone_with_their_presence_when_it_changes() -> None:
    model = model_with(group_of(ADA, GRACE))
    assert model.take_people_change("g")
    assert not model.take_people_change("g")
    model.presence_notice(
        [Presence(user_id="ada", status="online"), Presence(user_id=ME, status="online")]
    )
    assert model.take_people_change("g")
    people = model.people("g", MOMENT)
    assert [(p.display_name, p.presence, p.presence_text) for p in people] == [
        ("Me", "online", "Online"),
        ("Ada", "online", "Online"),
        ("Grace", "", ""),
    ]
    model.presence_notice([Presence(user_id="nobody-here", status="online")])
    assert not model.take_people_change("g")


def test_the_tab_tells_when_it_is_away_and_again_after_each_resume() -> None:
    model = model_with(group_of(ADA))
    model.take_outbox()
    model.set_away(False)  # Not away already: nothing to say.
    assert model.take_outbox() == []
    model.set_away(True)
    assert model.take_outbox() == [{"type": "presence", "away": True}]
    model.resumed(1.0)  # A new socket counts as there until told.
    assert model.take_outbox() == [{"type": "presence", "away": True}]
    model.set_away(False)
    model.take_outbox()
    model.resumed(2.0)
    assert model.take_outbox() == []


def test_nothing_known_of_a_conversation_left() -> None:
    model = model_with(group_of(ADA))
    model.left("g")
    assert model.people("g", MOMENT) == []
