"""The stream as people read it: runs of messages under one name and avatar, day lines, and
messages as plain text where markdown does not render (previews, popups, notifications)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from letschat_app.model.timeline import CHUNK, GROUP_SECONDS, SLOTS, Timeline, zone
from letschat_app.state.models import MessageItem, avatar_color, initials, plain

START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def item(seq: int, sender: str, minute: float) -> MessageItem:
    moment = START + timedelta(minutes=minute)
    return MessageItem(key=f"m{seq}", seq=seq, sender_id=sender, timestamp=moment.isoformat())


def shown(timeline: Timeline) -> list[tuple[int, bool]]:
    return [(m.seq, m.continues) for index in timeline.order() for m in timeline.slot(index)]


def test_a_run_from_one_sender_within_minutes_goes_under_its_first_message() -> None:
    timeline = Timeline()
    late = GROUP_SECONDS / 60 + 1
    for message in [
        item(1, "a", 0),
        item(2, "a", 1),  # Under 1.
        item(3, "b", 2),  # Someone else.
        item(4, "a", 3),
        item(5, "a", 3 + late),  # Too long after 4.
        item(6, "a", 3 + late + 0.5),
    ]:
        timeline.add(message, live=True)
    assert shown(timeline) == [(1, False), (2, True), (3, False), (4, False), (5, False), (6, True)]


def test_across_buckets_and_when_older_messages_arrive_above() -> None:
    timeline = Timeline()
    first = CHUNK * 3
    timeline.add(item(first, "a", 10), live=True)
    timeline.add(item(first + 1, "a", 10.5), live=True)
    timeline.take_changes()
    # An older page: its last message is the same sender's, a minute before.
    timeline.add(item(first - 1, "a", 9.5), live=False)
    changed, _ = timeline.take_changes()
    assert (first // CHUNK) % SLOTS in changed  # The bucket whose first message now goes under.
    assert shown(timeline) == [(first - 1, False), (first, True), (first + 1, True)]


def test_a_send_not_yet_stored_goes_under_my_last_message() -> None:
    timeline = Timeline()
    timeline.add(item(1, "me", 0), live=True)
    timeline.add_pending(MessageItem(key="p", sender_id="me", status="pending", mine=True))
    assert [m.continues for m in timeline.unsent()] == [True]


def test_avatars_have_initials_and_a_colour_that_follows_the_person() -> None:
    assert initials("Ada Lovelace") == "AL"
    assert initials("bob") == "BO"
    assert initials(" ") == "?"
    assert avatar_color("u1") == avatar_color("u1")
    assert len({avatar_color(f"u{n}") for n in range(50)}) > 5


def test_days_begin_where_the_viewer_lives_and_a_run_ends_with_its_day() -> None:
    timeline = Timeline()
    # 22:58 and 23:01 UTC on 1 December: one evening in London, but 23:58 and 00:01 in Berlin.
    evening = datetime(2026, 12, 1, 22, 58, tzinfo=UTC)
    for seq, moment in enumerate([evening, evening + timedelta(minutes=3)], start=1):
        message = MessageItem(key=f"m{seq}", seq=seq, sender_id="a", timestamp=moment.isoformat())
        timeline.add(message, live=True)

    def days(name: str) -> list[tuple[bool, bool]]:
        timeline.zone = zone(name)
        return [(m.day_start, m.continues) for m in timeline.slot(timeline.order()[0])]

    assert days("Europe/London") == [(True, False), (False, True)]
    assert days("Europe/Berlin") == [(True, False), (True, False)]
    assert days("no/such zone") == days("UTC") == days("Europe/London")


def test_previews_and_popups_show_what_the_markdown_shows_without_its_marks() -> None:
    assert plain("**bold** _italic_ ~~gone~~ `code`") == "bold italic gone code"
    assert plain("see [the docs](https://example.com) now") == "see the docs now"
    assert plain("> quoted\n\n- one\n- two\n# Title\n1. first") == "quoted one two Title first"
    # What is not a mark stays: snake_case, a lone star, arithmetic.
    assert plain("snake_case_name and 2 * 3 and a*b") == "snake_case_name and 2 * 3 and a*b"
    assert plain("<b>html</b> stays text") == "<b>html</b> stays text"
