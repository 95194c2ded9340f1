"""The web app's rules for messages that change: edits, deletions, reactions and replies."""

from __future__ import annotations

from backend_services.core.schemas import Reaction, ReplyPreview, User
from letschat_app.model.chat import ChatModel
from letschat_app.state.models import expand_shortcodes, link_mentions
from tests.unit.test_chat_model import CID, ME, OTHER, conversation, cursor, message, model_with


def opened(*seqs: int) -> ChatModel:
    model = model_with(conversation(last_seq=max(seqs)))
    model.open(CID, 0.0)
    model.add_page(CID, [message(seq) for seq in seqs], has_older=False)
    model.take_outbox()
    return model


def shown(model: ChatModel, seq: int) -> dict[str, object]:
    (item,) = [m for m in model.timeline(CID).messages() if m.seq == seq]
    return vars(item)


def test_a_change_shows_the_message_as_it_is_now_and_moves_the_change_cursor() -> None:
    model = opened(1, 2)
    edited = message(2).model_copy(
        update={"body": "message 2, edited", "version": 1, "edited_at": message(2).created_at}
    )

    model.change(5, edited)

    assert shown(model, 2)["body"] == "message 2, edited"
    assert shown(model, 2)["edited"] is True
    assert model.chats[CID].preview == "message 2, edited"
    assert model.resume_cursors() == {CID: cursor(2, change=5)}


def test_of_two_copies_the_higher_version_shows_whatever_comes_last() -> None:
    model = opened(1)
    reacted = message(1).model_copy(
        update={"version": 2, "reactions": [Reaction(emoji="👍", user_ids=[OTHER, ME])]}
    )
    model.change(2, reacted)
    model.change(1, message(1).model_copy(update={"version": 1, "body": "older"}))
    model.receive(message(1), 1.0)  # A replay of the message as sent.

    item = shown(model, 1)
    assert item["version"] == 2
    assert item["body"] == "message 1"
    (reaction,) = item["reactions"]  # type: ignore[misc]
    assert (reaction.emoji, reaction.count, reaction.mine) == ("👍", 2, True)
    assert reaction.who == "Bob and you"
    assert model.change_cursors[CID] == 2


def test_a_change_that_comes_before_its_message_shows_it_and_the_message_adds_nothing() -> None:
    model = opened(1)
    model.change(1, message(2).model_copy(update={"version": 1, "body": "edited at once"}))
    model.receive(message(2), 1.0)

    assert [m.seq for m in model.timeline(CID).messages()] == [1, 2]
    assert shown(model, 2)["body"] == "edited at once"


def test_a_change_to_a_message_outside_the_window_changes_nothing_there() -> None:
    model = opened(5, 6)
    model.change(1, message(2).model_copy(update={"version": 1, "body": "old, edited"}))

    assert [m.seq for m in model.timeline(CID).messages()] == [5, 6]


def test_a_deleted_message_shows_deleted_in_the_stream_and_the_sidebar() -> None:
    model = opened(1, 2)
    model.change(1, message(2).model_copy(update={"version": 1, "body": "", "deleted": True}))

    assert shown(model, 2)["deleted"] is True
    assert model.chats[CID].preview == "This message was deleted"


def test_edit_delete_and_react_go_for_own_and_shown_messages_only() -> None:
    model = opened(1)
    model.receive(message(2, sender=ME, cmid="mine"), 1.0)
    model.take_outbox()

    assert not model.edit(f"{CID}-1", "not mine")
    assert not model.delete(f"{CID}-1")
    assert not model.edit(f"{CID}-2", "message 2")  # Unchanged.
    assert not model.edit(f"{CID}-2", "x" * 4001)
    assert not model.react("unknown", "👍", add=True)
    assert model.edit(f"{CID}-2", "  fixed  ")
    assert model.delete(f"{CID}-2")
    assert model.react(f"{CID}-1", "👍", add=True)
    assert model.take_outbox() == [
        {"type": "edit", "conversation_id": CID, "message_id": f"{CID}-2", "body": "fixed"},
        {"type": "delete", "conversation_id": CID, "message_id": f"{CID}-2"},
        {
            "type": "react",
            "conversation_id": CID,
            "message_id": f"{CID}-1",
            "emoji": "👍",
            "add": True,
        },
    ]


def test_a_reply_quotes_the_message_while_pending_and_once_stored() -> None:
    model = opened(1)

    assert model.send("**yes**", 1.0, reply_to=f"{CID}-1")

    (frame,) = model.take_outbox()
    assert frame["reply_to"] == f"{CID}-1"
    (pending,) = model.timeline(CID).pending
    assert (pending.reply_id, pending.reply_name, pending.reply_excerpt) == (
        f"{CID}-1",
        "Bob",
        "message 1",
    )
    stored = message(2, sender=ME, cmid=frame["client_msg_id"]).model_copy(
        update={
            "reply_to": ReplyPreview(
                message_id=f"{CID}-1", seq=1, sender_id=OTHER, sender_name="Bob", excerpt=""
            )
        }
    )
    model.receive(stored, 2.0)
    assert shown(model, 2)["reply_excerpt"] == "This message was deleted"
    assert model.timeline(CID).pending == []


def test_replies_shown_quoting_a_message_quote_it_deleted_once_it_is() -> None:
    model = opened(1)
    quote = ReplyPreview(
        message_id=f"{CID}-1", seq=1, sender_id=OTHER, sender_name="Bob", excerpt="message 1"
    )
    model.receive(message(2).model_copy(update={"reply_to": quote}), 1.0)
    assert shown(model, 2)["reply_excerpt"] == "message 1"

    model.change(1, message(1).model_copy(update={"version": 1, "body": "", "deleted": True}))

    assert shown(model, 2)["reply_excerpt"] == "This message was deleted"


def test_mentions_are_marked_outside_code_and_links_only() -> None:
    assert link_mentions("hi @Alice and @bob.") == (
        "hi [@Alice](#mention-alice) and [@bob](#mention-bob)."
    )
    for plain_text in (
        "mail a@b.com",
        "see https://x.com/@user",
        "@ab",
        "@@x",
        "no one",
        "[see @bob](https://example.com)",
        "``@code``",
    ):
        assert link_mentions(plain_text) == plain_text
    assert link_mentions("`@code` and\n```\n@block\n```\n~~~\n@tilde\n~~~\n@out") == (
        "`@code` and\n```\n@block\n```\n~~~\n@tilde\n~~~\n[@out](#mention-out)"
    )
    assert link_mentions("    @indented\n@out") == "    @indented\n[@out](#mention-out)"


def test_a_typed_link_to_a_mention_is_not_shown_as_one() -> None:
    assert link_mentions("[the boss](#mention-bob)") == "[the boss](#not-a-mention-bob)"
    assert link_mentions("[x](  #MENTION-bob) @carol") == (
        "[x](#not-a-mention-bob) [@carol](#mention-carol)"
    )


def test_shortcodes_become_emoji_as_words_of_their_own_outside_code() -> None:
    assert expand_shortcodes("great :tada: :thumbsup:") == "great 🎉 👍"
    for kept in ("`std::x::y`", "sync::lock::Mutex", "1:100:2", "a:tada:b", "`:tada:`", ":nope:"):
        assert expand_shortcodes(kept) == kept


def test_the_creator_of_a_group_may_delete_anyones_message_others_only_theirs() -> None:
    mine = opened(1)
    assert not mine.delete(f"{CID}-1")
    moderated = model_with(
        conversation(last_seq=1).model_copy(update={"created_by": ME}),
    )
    moderated.open(CID, 0.0)
    moderated.add_page(CID, [message(1)], has_older=False)
    moderated.take_outbox()
    assert moderated.delete(f"{CID}-1")
    assert moderated.take_outbox() == [
        {"type": "delete", "conversation_id": CID, "message_id": f"{CID}-1"}
    ]


def test_the_composer_offers_the_other_members_of_the_open_conversation() -> None:
    other = User(id=OTHER, username="bob", display_name="Bob")
    listed = conversation(last_seq=1)
    model = model_with(listed.model_copy(update={"members": [*listed.members, other]}))
    assert [(p.username, p.display_name) for p in model.members[CID]] == [("bob", "Bob")]


def test_a_reply_to_a_message_deleted_meanwhile_goes_without_its_quote() -> None:
    model = opened(1)
    model.change(1, message(1).model_copy(update={"version": 1, "body": "", "deleted": True}))

    assert model.send("answering anyway", 1.0, reply_to=f"{CID}-1")

    (frame,) = model.take_outbox()
    assert "reply_to" not in frame
    (pending,) = model.timeline(CID).pending
    assert pending.reply_id == ""
