"""The web app's chat rules, without a browser: cursors, windows, unread, reads, sends."""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime

from backend_services.core.schemas import Conversation, Message, User
from letschat_app.model.chat import READ_INTERVAL_SECONDS, TOAST_REFRESH_SECONDS, ChatModel
from letschat_app.model.sidebar import CHUNK as SIDEBAR_CHUNK
from letschat_app.model.sidebar import CHUNKS as SIDEBAR_CHUNKS
from letschat_app.model.timeline import CHUNK, SLOTS, Timeline
from letschat_app.state.models import MessageItem, mentions
from letschat_protocol.models import MAX_BODY_CHARS

ME, OTHER, CID = "me", "bob", "c1"
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def message(seq: int, sender: str = OTHER, cid: str = CID, cmid: str = "") -> Message:
    return Message(
        id=f"{cid}-{seq}",
        conversation_id=cid,
        seq=seq,
        sender_id=sender,
        sender_name=sender.title(),
        body=f"message {seq}",
        client_msg_id=cmid or f"x{seq}",
        created_at=NOW,
    )


def conversation(
    cid: str = CID, last_seq: int = 0, read: int = 0, epoch: str = "e1"
) -> Conversation:
    members = [User(id=ME, username="me", display_name="Me")]
    return Conversation(
        id=cid,
        kind="group",
        name=cid,
        members=members,
        is_public=False,
        created_at=NOW,
        last_seq=last_seq,
        last_read_seq=read,
        unread=last_seq - read,
        last_message=message(last_seq, cid=cid) if last_seq else None,
        epoch=epoch,
    )


def cursor(seq: int, epoch: str = "e1", change: int | None = 0) -> dict[str, int | str]:
    """A cursor as it goes on the wire (a conversation first seen counts its changes from
    its `last_change`, 0 here; one that started over, from whenever it resumes: None)."""
    wire: dict[str, int | str] = {"seq": seq, "epoch": epoch}
    if change is not None:
        wire["change"] = change
    return wire


def model_with(*conversations: Conversation) -> ChatModel:
    model = ChatModel(ME, "Me")
    model.load(conversations, 0.0)
    return model


def reads(model: ChatModel) -> list[int]:
    return [f["seq"] for f in model.take_outbox() if f["type"] == "read"]


def test_a_later_conversation_list_never_moves_a_cursor_past_what_the_tab_received() -> None:
    model = model_with(conversation(last_seq=5))
    model.receive(message(6), 1.0)
    # Meanwhile the socket dropped and 7..9 were stored; the list (a reload) says 9.
    model.load([conversation(last_seq=9)], 2.0)
    assert model.resume_cursors() == {CID: cursor(6)}
    for seq in (7, 8, 9):  # The resume replays them: shown once, not counted twice.
        model.receive(message(seq), 3.0)
    assert model.resume_cursors() == {CID: cursor(9)}
    assert model.chats[CID].unread == 9


def test_an_ack_ahead_of_the_stream_does_not_move_the_cursor() -> None:
    model = model_with(conversation(last_seq=5, read=5))
    model.open(CID, 0.0)
    model.add_page(CID, [message(seq) for seq in range(1, 6)], has_older=False)
    model.send("mine", 1.0)
    ((client_msg_id, _),) = model.pending.items()
    # Stored as 9 after 6..8, which this tab's stream has not brought yet; then it reconnects.
    model.receive(message(9, sender=ME, cmid=client_msg_id), 2.0, ack=True)
    assert model.resume_cursors() == {CID: cursor(5)}
    for seq in (6, 7, 8):  # The resume brings what came before it...
        model.receive(message(seq), 3.0)
    model.receive(message(9, sender=ME, cmid=client_msg_id), 3.0)  # ...and it, once.
    assert model.resume_cursors() == {CID: cursor(9)}
    assert [m.seq for m in model.timeline(CID).messages()] == list(range(1, 10))


def test_a_conversation_first_seen_in_the_list_resumes_from_the_list() -> None:
    model = model_with(conversation(last_seq=40, read=40))
    assert model.resume_cursors() == {CID: cursor(40)}


def test_a_cursor_keeps_the_epoch_it_counts_in_until_a_reset_starts_it_over() -> None:
    model = model_with(conversation(last_seq=20, read=20))
    model.open(CID, 0.0)
    model.add_page(CID, [message(seq) for seq in range(11, 21)], has_older=True)
    model.set_seen(True, 0.0)
    model.send("still unsent", 1.0)
    model.take_outbox()
    # A later list in a new epoch (restored meanwhile) does not move what the cursor counts in:
    # the next resume still says which history the tab holds.
    model.load([conversation(last_seq=23, read=10, epoch="e2")], 2.0)
    assert model.resume_cursors() == {CID: cursor(20)}

    model.reset(CID, "e2")
    assert model.resume_cursors() == {CID: cursor(0, "e2", change=None)}
    timeline = model.timeline(CID)
    assert timeline.messages() == []
    assert [p.body for p in timeline.pending] == ["still unsent"]
    for seq in range(1, 24):  # The conversation from its start, in the new history.
        model.receive(message(seq), 3.0)
    assert [m.seq for m in timeline.messages()][-3:] == [21, 22, 23]
    assert model.resume_cursors() == {CID: cursor(23, "e2", change=None)}
    model.load([conversation(last_seq=23, epoch="e2")], 4.0)  # Fetched after a reset.
    assert model.resume_cursors() == {CID: cursor(23, "e2")}
    model.resend_all(4.0)  # And the unsent message goes again.
    assert [f["body"] for f in model.take_outbox() if f["type"] == "send"] == ["still unsent"]


def test_the_open_conversation_shows_every_message_once_in_order_whatever_the_replays() -> None:
    model = model_with(conversation(last_seq=0))
    model.open(CID, 0.0)
    model.add_page(CID, [], has_older=False)
    rng = random.Random(7)
    arrivals = [seq for seq in range(1, 120) for _ in range(rng.randint(1, 3))]
    rng.shuffle(arrivals)
    for seq in arrivals:
        model.receive(message(seq), 1.0)
    shown = [m.seq for m in model.timeline(CID).messages()]
    assert shown == list(range(1, 120))


def test_the_window_is_bounded_and_slides_with_new_messages() -> None:
    timeline = Timeline()
    for seq in range(1, CHUNK * SLOTS * 3):
        timeline.add(item(seq), live=True)
    assert len(timeline) <= CHUNK * SLOTS
    assert timeline.has_older
    assert timeline.newest_seq == CHUNK * SLOTS * 3 - 1
    assert len(set(timeline.order())) == len(timeline.order()) <= SLOTS
    in_slot_order = [m.seq for slot in timeline.order() for m in timeline.slot(slot)]
    assert in_slot_order == [m.seq for m in timeline.messages()] == sorted(in_slot_order)


def test_a_new_message_changes_one_slot_and_the_order_only_when_the_window_slides() -> None:
    timeline = Timeline()
    for seq in range(1, 50):
        timeline.add(item(seq), live=True)
    timeline.take_changes()
    timeline.add(item(50), live=True)  # A new bucket.
    changed, order = timeline.take_changes()
    assert changed == {50 // CHUNK % SLOTS}
    assert order
    timeline.add(item(51), live=True)
    assert timeline.take_changes() == ({51 // CHUNK % SLOTS}, False)
    assert timeline.slot(51 // CHUNK % SLOTS)[-1].seq == 51


def test_paging_far_back_lets_the_newest_go_and_live_messages_wait() -> None:
    timeline = Timeline()
    newest = CHUNK * SLOTS * 2
    timeline.add(item(newest), live=True)
    for seq in range(newest - 1, 0, -1):
        timeline.add(item(seq), live=False)
    assert not timeline.at_newest
    assert not timeline.add(item(newest + 1), live=True)
    assert timeline.oldest_seq == 1


def test_a_message_in_the_open_conversation_of_a_tab_not_seen_is_unread_and_pops_up() -> None:
    model = model_with(conversation(last_seq=3, read=3))
    model.open(CID, 0.0)
    model.take_outbox()
    popup = model.receive(message(4), 1.0)
    assert popup is not None
    assert model.chats[CID].unread == 1
    assert model.total_unread == 1
    assert model.first_unread_seq == 4
    assert reads(model) == []
    model.set_seen(True, 2.0)  # Coming back reads it, at once.
    assert model.chats[CID].unread == 0
    assert reads(model) == [4]
    assert len(model.take_dismissed()) == 1


def test_a_busy_conversation_is_read_every_two_seconds_not_every_second() -> None:
    """The service stores a marker at most every 2 s: a read a second would be half wasted."""
    model = model_with(conversation(last_seq=0))
    model.open(CID, 0.0)
    model.set_seen(True, 0.0)
    model.take_outbox()
    sent_at = []
    for n in range(1, 41):  # Two messages a second for twenty seconds.
        now = 10.0 + n / 2
        model.receive(message(n), now)
        model.tick(now)
        sent_at += [now for _ in reads(model)]
    gaps = [later - earlier for earlier, later in itertools.pairwise(sent_at)]
    assert len(sent_at) <= 11
    assert min(gaps) >= 2.0


def test_a_seen_tab_reads_at_most_once_an_interval_and_sends_the_rest_when_due() -> None:
    model = model_with(conversation(last_seq=0))
    model.open(CID, 0.0)
    model.set_seen(True, 0.0)
    model.take_outbox()
    sent = []
    for n in range(1, 11):  # Ten messages in a second.
        now = 10.0 + n / 10
        assert model.receive(message(n), now) is None
        model.tick(now)
        sent += reads(model)
    assert model.chats[CID].unread == 0
    assert len(sent) <= 2
    model.tick(11.0 + READ_INTERVAL_SECONDS)
    sent += reads(model)
    assert sent[-1] == 10


def test_leaving_or_hiding_sends_the_read_held_back() -> None:
    model = model_with(conversation(last_seq=0))
    model.open(CID, 0.0)
    model.set_seen(True, 0.0)
    model.receive(message(1), 5.0)
    model.receive(message(2), 5.1)
    assert reads(model) == [1]
    model.set_seen(False, 5.2)
    assert reads(model) == [2]


def test_a_read_never_runs_ahead_of_the_stream() -> None:
    model = model_with(conversation(last_seq=5))
    model.receive(message(6), 1.0)
    model.load([conversation(last_seq=9)], 2.0)
    model.open(CID, 3.0)  # Read as far as the list says: the service knows only up to 6 here.
    assert reads(model) == [6]
    interval = READ_INTERVAL_SECONDS
    model.receive(message(7), 3.1)
    model.receive(message(8), 3.0 + interval)
    model.receive(message(9), 3.1 + interval)
    model.tick(3.2 + 2 * interval)
    assert reads(model) == [8, 9]


def test_a_read_from_another_tab_recounts_and_dismisses_the_toast() -> None:
    model = model_with(conversation(cid="a", last_seq=0), conversation(cid="b", last_seq=0))
    model.open("b", 0.0)
    model.add_page("a", [], has_older=False)
    for seq in (1, 2, 3):
        assert model.receive(message(seq, cid="a"), 1.0) is not None
    model.read_elsewhere("a", 2)
    assert model.chats["a"].unread == 1
    assert model.take_dismissed() == set()
    model.read_elsewhere("a", 3)
    assert model.chats["a"].unread == 0
    assert model.take_dismissed() == {"chat-a-1"}


def test_a_busy_conversation_updates_its_toast_at_most_every_refresh_but_notifies_each() -> None:
    model = model_with(conversation(cid="a", last_seq=0), conversation(cid="b", last_seq=0))
    model.open("b", 0.0)
    shown = []  # (time, seq announced, toast or only the notification)
    for n in range(1, 21):  # Twenty messages over five seconds.
        now = 10.0 + n / 4
        popup = model.receive(message(n, cid="a"), now)
        assert popup is not None  # Every message can notify...
        shown.append((now, popup.message.seq, popup.toast))
        model.tick(now)
        shown += [(now, p.message.seq, p.toast) for p in model.take_due_popups()]
    toasts = [(at, seq) for at, seq, toast in shown if toast]
    assert toasts[0] == (10.25, 1)  # ...the first one pops up at once...
    gaps = [later[0] - earlier[0] for earlier, later in itertools.pairwise(toasts)]
    assert min(gaps) >= TOAST_REFRESH_SECONDS  # ...and then at most every refresh interval.
    assert model.wants_tick()
    model.tick(15.0 + TOAST_REFRESH_SECONDS)  # The last update comes after the burst,
    [last] = model.take_due_popups()
    assert (last.message.seq, last.count, last.toast) == (20, 20, True)  # counting all of them.
    assert last.toast_id == "chat-a-1"  # The same toast, updated.
    assert not model.wants_tick()


def test_reading_drops_a_toast_update_still_waiting() -> None:
    model = model_with(conversation(cid="a", last_seq=0), conversation(cid="b", last_seq=0))
    model.open("b", 0.0)
    assert model.receive(message(1, cid="a"), 1.0).toast  # type: ignore[union-attr]
    assert not model.receive(message(2, cid="a"), 1.5).toast  # type: ignore[union-attr]
    model.read_elsewhere("a", 2)
    assert model.take_dismissed() == {"chat-a-1"}
    model.tick(1.0 + TOAST_REFRESH_SECONDS)
    assert model.take_due_popups() == []
    assert not model.wants_tick()
    # The next message starts a fresh toast, at once.
    popup = model.receive(message(3, cid="a"), 3.5)
    assert popup is not None
    assert (popup.toast, popup.toast_id) == (True, "chat-a-3")


def test_a_muted_conversation_counts_but_does_not_pop_up() -> None:
    model = model_with(conversation(last_seq=0))
    model.set_muted({CID})
    assert model.receive(message(1), 0.0) is None
    assert model.chats[CID].unread == 1
    assert model.total_unread == 0


def test_my_own_messages_are_read_and_confirm_the_pending_send() -> None:
    model = model_with(conversation(last_seq=2, read=0))
    model.open(CID, 0.0)
    model.take_outbox()
    model.send("  hello  ", 1.0)
    [frame] = model.take_outbox()
    assert frame["body"] == "hello"
    assert [p.status for p in model.timeline(CID).pending] == ["pending"]
    model.receive(message(3, sender=ME, cmid=frame["client_msg_id"]), 1.5)
    assert model.timeline(CID).pending == []
    assert model.pending == {}
    assert model.chats[CID].unread == 0
    assert reads(model) == []  # The service counts a send as read.


def test_unacked_sends_fail_only_after_the_timeout_and_go_again_on_resume() -> None:
    model = model_with(conversation())
    model.open(CID, 0.0)
    model.send("one", 1.0)
    model.take_outbox()
    model.expire(5.0, timeout=10.0)
    assert model.timeline(CID).pending[0].status == "pending"
    model.expire(12.0, timeout=10.0)
    assert model.timeline(CID).pending[0].status == "failed"
    model.resend_all(13.0)
    assert [f["body"] for f in model.take_outbox()] == ["one"]


def test_limited_resets_the_window_so_it_is_fetched_afresh() -> None:
    model = model_with(conversation(last_seq=3))
    model.open(CID, 0.0)
    model.add_page(CID, [message(1), message(2), message(3)], has_older=False)
    model.limited(CID)
    assert model.timeline(CID).messages() == []
    assert model.open(CID, 1.0)  # Needs its newest page again.


def test_leaving_a_conversation_forgets_it() -> None:
    model = model_with(conversation())
    model.open(CID, 0.0)
    model.left(CID)
    assert model.active_id == ""
    assert model.resume_cursors() == {}


def item(seq: int) -> MessageItem:
    return MessageItem(key=str(seq), id=str(seq), seq=seq, body=str(seq))


def test_a_message_changes_one_sidebar_chunk_and_the_order_only_if_its_chat_moved() -> None:
    chats = [conversation(cid=f"c{n:02d}", last_seq=1) for n in range(3 * SIDEBAR_CHUNK)]
    model = model_with(*chats)
    assert model.places.take_changes() == {0, 1, 2}
    first_order = model.places.order([c.id for c in model.ordered_chats()])
    assert sorted(first_order) == list(range(3 * SIDEBAR_CHUNK))

    later = message(2, cid="c17")
    later = later.model_copy(update={"created_at": NOW.replace(hour=1)})
    model.receive(later, 1.0)
    assert model.places.take_changes() == {17 // SIDEBAR_CHUNK}
    order = model.places.order([c.id for c in model.ordered_chats()])
    assert order[0] == model.places.index("c17")
    chunk = model.places.chunk(17 // SIDEBAR_CHUNK, model.chats)
    assert [c.id for c in chunk] == [f"c{n:02d}" for n in range(16, 24)]
    assert chunk[1].preview == "message 2"


def test_sidebar_places_are_stable_and_reused_after_leaving() -> None:
    model = model_with(conversation(cid="a"), conversation(cid="b"), conversation(cid="c"))
    places = {cid: model.places.index(cid) for cid in "abc"}
    model.left("b")
    assert [c.id for c in model.places.chunk(0, model.chats)] == ["a", "", "c"]
    model.upsert(conversation(cid="d"))
    assert model.places.index("d") == places["b"]
    assert model.places.index("a") == places["a"]


def test_conversations_past_the_last_chunk_share_it() -> None:
    count = SIDEBAR_CHUNK * SIDEBAR_CHUNKS + 5
    model = model_with(*(conversation(cid=f"c{n:03d}") for n in range(count)))
    last = model.places.chunk(SIDEBAR_CHUNKS - 1, model.chats)
    assert len(last) == SIDEBAR_CHUNK + 5
    shown = [c.id for k in range(SIDEBAR_CHUNKS) for c in model.places.chunk(k, model.chats)]
    assert sorted(shown) == sorted(model.chats)


def test_an_idle_tab_wants_a_tick_only_while_time_can_change_something() -> None:
    model = model_with(conversation(last_seq=0))
    assert not model.wants_tick()
    model.open(CID, 0.0)
    model.set_seen(True, 0.0)
    model.receive(message(1), 5.0)
    model.receive(message(2), 5.1)  # Held back by the limit.
    assert model.wants_tick()
    model.tick(5.2 + READ_INTERVAL_SECONDS)
    assert not model.wants_tick()
    model.send("hi", 7.0)
    assert model.wants_tick()  # Its ack may time out.


def test_a_message_longer_than_the_limit_is_not_queued_and_not_cut() -> None:
    model = model_with(conversation(last_seq=0))
    model.open(CID, 0.0)
    model.take_outbox()
    assert model.send("x" * (MAX_BODY_CHARS + 1), 1.0) is False
    assert model.take_outbox() == []
    assert model.timeline(CID).pending == []
    assert model.send(f"  {'x' * MAX_BODY_CHARS}  ", 1.0) is True  # Trimmed, it fits.
    [frame] = model.take_outbox()
    assert len(frame["body"]) == MAX_BODY_CHARS


def test_a_mention_pops_up_in_a_muted_conversation_and_marks_it_until_read() -> None:
    model = ChatModel(ME, "Me", "ada.l")
    model.load([conversation(last_seq=0)], 0.0)
    model.set_muted({CID})
    plain_news = message(1)
    assert model.receive(plain_news, 1.0) is None  # Muted.
    mention = message(2).model_copy(update={"body": "@Ada.L can you look?"})
    popup = model.receive(mention, 2.0)
    assert popup is not None
    assert popup.message.seq == 2
    chat = model.chats[CID]
    assert chat.mentioned_seq > chat.last_read_seq
    model.load([conversation(last_seq=2)], 3.0)  # A fresh list keeps the mark.
    assert model.chats[CID].mentioned_seq == 2
    model.read_elsewhere(CID, 2)
    chat = model.chats[CID]
    assert chat.mentioned_seq <= chat.last_read_seq


def test_only_a_whole_at_username_is_a_mention() -> None:
    assert mentions("hi @ada.l!", "ada.l")
    assert mentions("(@ADA.L)", "ada.l")
    assert not mentions("hi @ada.lovelace", "ada.l")
    assert not mentions("mail ada.l@example.com", "ada.l")
    assert not mentions("hi @ada", "ada.l")
    assert not mentions("@ada.l", "")
