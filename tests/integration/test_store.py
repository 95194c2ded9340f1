"""The store against a real MongoDB-wire server: seq allocation, holes and tombstones."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from backend_services.core.errors import EditWindowClosed
from backend_services.core.schemas import User
from backend_services.core.store import Database, Policy, Store
from backend_services.core.store.database import Document
from backend_services.core.store.migrations import SCHEMA_VERSION
from tests.integration.conftest import CommandLog

GRACE = timedelta(seconds=0.3)


@pytest.fixture
def commands() -> CommandLog:
    """The commands the `store` fixture's client starts."""
    return CommandLog()


@pytest.fixture
async def store(mongo_url: str, commands: CommandLog) -> AsyncIterator[Store]:
    database = Database(mongo_url, f"test_{uuid.uuid4().hex[:12]}", event_listeners=[commands])
    store = Store(database, hole_grace=GRACE)
    await store.database.ensure_indexes()
    yield store
    await store.database.client.drop_database(store.database.db.name)
    await store.close()


async def direct(store: Store) -> tuple[User, User, Document]:
    """Alice and Bob, and their conversation's document."""
    alice = await store.users.create(f"a{uuid.uuid4().hex[:8]}", "x", "Alice")
    bob = await store.users.create(f"b{uuid.uuid4().hex[:8]}", "x", "Bob")
    doc, _ = await store.conversations.open_direct(alice.id, bob.id)
    return alice, bob, doc


@pytest.fixture
async def pair(store: Store) -> tuple[User, User, str]:
    alice, bob, doc = await direct(store)
    return alice, bob, doc["_id"]


async def allocate_without_writing(store: Store, conversation_id: str) -> int:
    """What a writer does before it dies: take a seq and never write the message."""
    return await store.states.allocate(conversation_id)


async def test_a_reader_waits_for_a_message_still_being_written(
    store: Store, commands: CommandLog, pair: tuple[User, User, str]
) -> None:
    alice, _, dm = pair
    slow_seq = await allocate_without_writing(store, dm)
    await store.messages.append(dm, alice, "second", "c2")
    (second,), _ = await store.messages.page(dm, before_seq=None, limit=1)
    finds = commands.names.count("find")
    reading = asyncio.create_task(store.messages.read_after(dm, 0, limit=10))
    # It met the hole and looked again: it is waiting, not done (well within the grace).
    for _ in range(50):
        if commands.names.count("find") >= finds + 2:
            break
        await asyncio.sleep(0.004)
    assert commands.names.count("find") >= finds + 2
    assert not reading.done()

    await store.database.db["messages"].insert_one(
        {
            "_id": uuid.uuid4().hex,
            "conversation_id": dm,
            "seq": slow_seq,
            "sender_id": alice.id,
            "sender_name": "Alice",
            "body": "first",
            "client_msg_id": "c1",
            "created_at": second.created_at,
        }
    )

    batch = await reading
    assert [m.body for m in batch.messages] == ["first", "second"]
    assert batch.through_seq == 2


async def test_a_seq_whose_writer_died_is_tombstoned_after_the_grace_period(
    store: Store, pair: tuple[User, User, str]
) -> None:
    alice, bob, dm = pair
    await allocate_without_writing(store, dm)
    await store.messages.append(dm, alice, "after the crash", "c2")

    batch = await store.messages.read_after(dm, 0, limit=10)

    assert [(m.seq, m.body) for m in batch.messages] == [(2, "after the crash")]
    assert batch.through_seq == 2
    page, has_more = await store.messages.page(dm, before_seq=None, limit=10)
    assert [m.seq for m in page] == [2]
    assert not has_more
    view = await store.conversations.view(
        await store.conversations.get_for_member(dm, bob.id), bob.id
    )
    assert view.unread == 1


async def test_a_writer_whose_seq_was_tombstoned_takes_a_fresh_one(
    store: Store, pair: tuple[User, User, str]
) -> None:
    alice, _, dm = pair
    await store.database.db["messages"].insert_one(
        {
            "_id": uuid.uuid4().hex,
            "conversation_id": dm,
            "seq": 1,
            "tombstone": True,
            "sender_id": "",
            "client_msg_id": "~lost~1",
            "created_at": (await store.conversations.get_for_member(dm, alice.id))["created_at"],
        }
    )

    msg, created = await store.messages.append(dm, alice, "late", "c1")

    assert created
    assert msg.seq == 2
    batch = await store.messages.read_after(dm, 0, limit=10)
    assert [m.body for m in batch.messages] == ["late"]


async def test_resends_return_the_stored_message_and_sender_has_read_it(
    store: Store, pair: tuple[User, User, str]
) -> None:
    alice, bob, dm = pair
    first, created = await store.messages.append(dm, alice, "  hi  ", "same")
    again, created_again = await store.messages.append(dm, alice, "different body", "same")

    assert created
    assert not created_again
    assert again == first
    assert first.body == "hi"
    conversation = await store.conversations.get_for_member(dm, alice.id)
    alice_view = await store.conversations.view(conversation, alice.id)
    bob_view = await store.conversations.view(conversation, bob.id)
    assert (alice_view.unread, bob_view.unread) == (0, 1)
    assert alice_view.last_message == first
    assert alice_view.name == "Bob"
    assert bob_view.name == "Alice"


async def test_an_upgrade_moves_message_state_out_of_conversations_written_by_0_1(
    store: Store, pair: tuple[User, User, str]
) -> None:
    alice, bob, _ = pair
    db = store.database.db
    created = (await store.conversations.get_for_member(pair[2], alice.id))["created_at"]
    old_messages = [
        {
            "_id": uuid.uuid4().hex,
            "conversation_id": "legacy-group",
            "seq": seq,
            "sender_id": alice.id,
            "sender_name": "Alice",
            "body": f"old {seq}",
            "client_msg_id": f"old-{seq}",
            "created_at": created,
        }
        for seq in (1, 2)
    ]
    await db["messages"].insert_many(old_messages)
    await db["conversations"].insert_one(
        {
            "_id": "legacy-group",
            "kind": "group",
            "name": "Old times",
            "name_lower": "old times",
            "is_public": True,
            "members": [alice.id, bob.id],
            "created_by": alice.id,
            "created_at": created,
            "last_activity_at": created,
            "last_seq": 3,  # Seq 3 was allocated by a writer that never wrote it.
            "last_message_seq": 2,
            "last_message": old_messages[1],
            "reads": {alice.id: 2, bob.id: 1},
        }
    )
    await db["conversations"].create_index(
        [("members", 1), ("last_activity_at", -1)], name="by_member"
    )
    legacy_fields = await db["conversations"].find_one(
        {"_id": "legacy-group"},
        {"_id": 0, "last_seq": 1, "last_message_seq": 1, "last_message": 1, "reads": 1},
    )

    await store.prepare()
    # A start that crashed after writing the new state but before clearing the old fields (and
    # so before recording the new version): the next start moves them again, changing nothing.
    assert legacy_fields is not None
    assert await db["meta"].find_one({"_id": "schema"}) == {
        "_id": "schema",
        "version": SCHEMA_VERSION,
    }
    await db["conversations"].update_one({"_id": "legacy-group"}, {"$set": legacy_fields})
    await db["meta"].delete_one({"_id": "schema"})
    await store.prepare()

    doc = await db["conversations"].find_one({"_id": "legacy-group"})
    assert doc is not None
    assert not {"last_seq", "last_message_seq", "last_message", "reads"} & doc.keys()
    index_names = {index["name"] async for index in await db["conversations"].list_indexes()}
    assert "by_member" not in index_names
    bob_view = await store.conversations.view(doc, bob.id)
    assert (bob_view.last_seq, bob_view.unread, bob_view.last_read_seq) == (2, 1, 1)
    assert bob_view.last_message is not None
    assert bob_view.last_message.body == "old 2"
    alice_view = await store.conversations.view(doc, alice.id)
    assert alice_view.last_read_seq == 2
    msg, _ = await store.messages.append("legacy-group", bob, "new", "new-1")
    assert msg.seq == 4  # After the counter, never reusing the seq allocated before the upgrade.
    alice_view = await store.conversations.view(doc, alice.id)
    assert (alice_view.last_seq, alice_view.unread, alice_view.last_message) == (4, 1, msg)


async def test_rejoining_a_group_starts_afresh_even_after_a_read_that_raced_leaving(
    store: Store, pair: tuple[User, User, str]
) -> None:
    alice, bob, _ = pair
    group = await store.conversations.create_group(alice.id, "Open", [bob.id], is_public=True)
    for n in range(3):
        await store.messages.append(group["_id"], alice, f"m{n}", f"c{n}")
    assert await store.conversations.mark_read(group["_id"], bob.id, 3) == 3
    await store.conversations.leave(group["_id"], bob.id)
    await store.reads.advance(group["_id"], bob.id, 3)  # A mark_read that lost the race.

    doc, added = await store.conversations.join(group["_id"], bob.id)

    assert added
    view = await store.conversations.view(doc, bob.id)
    assert (view.last_read_seq, view.unread) == (0, 3)


async def test_a_conversation_whose_state_was_never_written_gets_it_with_its_first_message(
    store: Store, pair: tuple[User, User, str]
) -> None:
    alice, bob, dm = pair
    await store.database.db["conversation_state"].delete_one({"_id": dm})  # A crash at creation.
    doc = await store.conversations.get_for_member(dm, bob.id)
    assert (await store.conversations.view(doc, bob.id)).last_seq == 0

    msg, _ = await store.messages.append(dm, alice, "first", "c1")

    assert msg.seq == 1
    view = await store.conversations.view(doc, bob.id)
    assert (view.last_seq, view.unread, view.last_message) == (1, 1, msg)
    page, last = await store.conversations.list_page(bob.id, limit=10)
    assert ([c.id for c in page], last) == ([dm], None)


async def test_an_upgrade_gathers_the_read_markers_written_by_version_2(store: Store) -> None:
    """Version 2 kept a document per member and conversation; now one holds a conversation's."""
    db = store.database.db
    await db["reads"].insert_many(
        [
            {"_id": "g1/alice", "conversation_id": "g1", "user_id": "alice", "seq": 4},
            {"_id": "g1/bob", "conversation_id": "g1", "user_id": "bob", "seq": 2},
            {"_id": "dm/alice", "conversation_id": "dm", "user_id": "alice", "seq": 7},
        ]
    )
    # Bob read further after an instance of this version wrote his marker: that one stays.
    await store.reads.advance("g1", "bob", 3)
    await db["meta"].update_one({"_id": "schema"}, {"$set": {"version": 2}}, upsert=True)

    await store.prepare()

    assert await store.reads.get_many("alice", ["g1", "dm", "elsewhere"]) == {"g1": 4, "dm": 7}
    assert await store.reads.get("g1", "bob") == 3
    assert "reads" not in await db.list_collection_names()
    schema = await db["meta"].find_one({"_id": "schema"})
    assert schema is not None
    assert schema["version"] == SCHEMA_VERSION


async def test_an_upgrade_drops_the_revoked_tokens_of_version_3(store: Store) -> None:
    """Version 3 revoked access tokens one by one; now sessions end, and tokens without a
    session are refused, so the old revocations can go."""
    db = store.database.db
    await db["revoked_tokens"].insert_one({"_id": "jti-1", "user_id": "alice"})
    await db["meta"].update_one({"_id": "schema"}, {"$set": {"version": 3}}, upsert=True)

    await store.prepare()

    assert "revoked_tokens" not in await db.list_collection_names()
    schema = await db["meta"].find_one({"_id": "schema"})
    assert schema is not None
    assert schema["version"] == SCHEMA_VERSION == 4


async def test_advancing_a_read_marker_is_one_command_whether_or_not_it_moves(
    logged_store: tuple[Store, CommandLog],
) -> None:
    store, log = logged_store

    async def advance(seq: int) -> tuple[bool, list[str]]:
        log.names.clear()
        moved = await store.reads.advance("conversation", "user", seq)
        return moved, log.names.copy()

    # The first read creates the conversation's markers.
    assert await advance(3) == (True, ["findAndModify"])
    assert await advance(5) == (True, ["findAndModify"])
    assert await advance(5) == (False, ["findAndModify"])
    assert await advance(2) == (False, ["findAndModify"])
    assert await advance(0) == (False, [])  # Nothing read is what no marker says.
    assert await store.reads.get("conversation", "user") == 5


async def test_a_message_is_stored_in_two_commands_and_its_sender_marker_moves_apart(
    logged_store: tuple[Store, CommandLog],
) -> None:
    store, log = logged_store
    alice, _, doc = await direct(store)
    dm = doc["_id"]

    async def send(
        client_msg_id: str, *, known_member: bool = True, sender_read: bool = False
    ) -> tuple[int, bool, list[str]]:
        log.names.clear()
        msg, created = await store.messages.append(
            dm, alice, "hi", client_msg_id, known_member=known_member, sender_read=sender_read
        )
        return msg.seq, created, sorted(log.names)

    # From a live socket: the counter gives the seq, the insert stores it; the message service
    # moves the sender's marker with its batch of markers.
    stored = ["findAndModify", "insert"]
    assert await send("one") == (1, True, stored)
    # Membership asked for, and the sender's marker moved at once (a REST send).
    assert await send("two", known_member=False, sender_read=True) == (
        2,
        True,
        sorted(["find", "findAndModify", *stored]),
    )
    assert await store.reads.get(dm, alice.id) == 2
    # A resend is found by the unique index; its seq becomes a tombstone, so no reader
    # waits for it and the conversation goes on from the next seq.
    assert await send("one") == (1, False, sorted(["find", "insert", *stored]))
    assert (await send("four"))[0] == 4
    batch = await store.messages.read_after(dm, 0, limit=10)
    assert [m.seq for m in batch.messages] == [1, 2, 4]
    assert batch.through_seq == 4


async def test_a_view_finds_the_newest_message_behind_the_counter_and_keeps_it(
    logged_store: tuple[Store, CommandLog],
) -> None:
    store, log = logged_store
    alice, bob, doc = await direct(store)
    dm = doc["_id"]

    async def preview() -> tuple[int, str | None, list[str]]:
        log.names.clear()
        view = await store.conversations.view(doc, bob.id)
        body = None if view.last_message is None else view.last_message.body
        return view.last_seq, body, [n for n in log.names if n in ("find", "update")]

    assert await preview() == (0, None, ["find", "find", "find"])  # users, state, markers
    for n in range(3):
        await store.messages.append(dm, alice, f"m{n}", f"c{n}", known_member=True)
    # The counter ran ahead: the newest message is read, and kept.
    last_seq, body, names = await preview()
    assert (last_seq, body) == (3, "m2")
    assert names.count("update") == 1
    # Nothing sent since: the state alone answers.
    assert (await preview())[2] == ["find", "find", "find"]
    # A seq counted but never written (its writer died) is not a message: the view shows the
    # newest one written, and a tombstone is never a preview.
    await store.states.allocate(dm)
    assert (await preview())[:2] == (3, "m2")
    await store.messages.append(dm, alice, "m5", "c5", known_member=True)
    _, created = await store.messages.append(dm, alice, "m5", "c5", known_member=True)
    assert not created  # A resend: its seq, 6, is a tombstone.
    assert (await preview())[:2] == (6, "m5")


async def test_many_read_markers_move_in_one_command_per_conversation_and_each_says_if_it_moved(
    logged_store: tuple[Store, CommandLog],
) -> None:
    store, log = logged_store
    await store.reads.advance("c1", "ahead", 9)
    await store.reads.advance("c1", "behind", 2)
    log.names.clear()

    marks = [("c1", "ahead", 5), ("c1", "behind", 4), ("c2", "new", 3), ("c1", "zero", 0)]
    moved = await store.reads.advance_many(marks)

    assert moved == [False, True, True, False]
    assert log.names == ["findAndModify", "findAndModify"]  # c1's three marks, and c2's.
    stored = {(c, u): await store.reads.get(c, u) for c, u, _ in marks}
    assert stored == {
        ("c1", "ahead"): 9,
        ("c1", "behind"): 4,
        ("c2", "new"): 3,
        ("c1", "zero"): 0,
    }
    log.names.clear()
    assert await store.reads.advance_many([("c1", "behind", 6)]) == [True]
    assert log.names == ["findAndModify"]


async def test_first_writes_of_one_marker_from_two_places_report_exactly_one_move_each(
    store: Store,
) -> None:
    """Two instances storing the first read of a conversation at once collide on `_id`; the
    retry makes each answer true to what is stored."""
    for round_ in range(20):
        conversation = f"c{round_}"
        low, high = await asyncio.gather(
            store.reads.advance_many([(conversation, "u", 5)]),
            store.reads.advance_many([(conversation, "u", 7)]),
        )
        assert high == [True]
        assert await store.reads.get(conversation, "u") == 7
        del low  # It moved if it got there first, and did not otherwise.


async def crash_after_the_message(store: Store, dm: str, message_id: str, body: str) -> int:
    """A change whose writer updated the message and died before entering the change."""
    number = await store.states.allocate_change(dm)
    await store.database.db["messages"].update_one(
        {"_id": message_id}, {"$set": {"body": body, "version": 1, "change": number}}
    )
    return number


async def test_a_change_whose_writer_died_is_entered_from_its_message_after_the_grace_period(
    store: Store, pair: tuple[User, User, str]
) -> None:
    alice, _, dm = pair
    first, _ = await store.messages.append(dm, alice, "first", "c1")
    second, _ = await store.messages.append(dm, alice, "second", "c2")
    lost = await crash_after_the_message(store, dm, first.id, "first, edited")
    _, after = await store.changes.edit(dm, alice.id, second.id, "second, edited")

    batch = await store.changes.read_after(dm, 0, limit=10)

    assert [(c.change, c.message.body) for c in batch.changes] == [
        (lost, "first, edited"),
        (after, "second, edited"),
    ]
    assert batch.through == after == 2


async def test_a_change_number_whose_writer_died_before_the_message_is_tombstoned(
    store: Store, pair: tuple[User, User, str]
) -> None:
    alice, _, dm = pair
    sent, _ = await store.messages.append(dm, alice, "hello", "c1")
    await store.states.allocate_change(dm)  # The writer died right after.
    _, number = await store.changes.react(dm, alice.id, sent.id, "👍", add=True)

    batch = await store.changes.read_after(dm, 0, limit=10)

    assert [c.change for c in batch.changes] == [number] == [2]
    assert batch.through == 2
    assert await store.database.db["changes"].count_documents({"tombstone": True}) == 1


async def test_a_change_whose_number_was_declared_lost_is_entered_under_a_new_one(
    store: Store, pair: tuple[User, User, str]
) -> None:
    alice, _, dm = pair
    sent, _ = await store.messages.append(dm, alice, "hello", "c1")
    # A reader declared the next number lost before this (very slow) writer entered it.
    await store.database.db["changes"].insert_one(
        {
            "_id": uuid.uuid4().hex,
            "conversation_id": dm,
            "seq": 1,
            "tombstone": True,
            "created_at": sent.created_at,
        }
    )

    edited, number = await store.changes.edit(dm, alice.id, sent.id, "hello, edited")

    assert number == 2
    stored = await store.database.db["messages"].find_one({"_id": sent.id})
    assert stored is not None
    assert stored["change"] == 2
    batch = await store.changes.read_after(dm, 0, limit=10)
    assert [(c.change, c.message.body) for c in batch.changes] == [(2, edited.body)]


async def test_two_changes_decided_on_the_same_version_never_undo_each_other(
    store: Store, mongo_url: str, pair: tuple[User, User, str]
) -> None:
    alice, bob, dm = pair
    sent, _ = await store.messages.append(dm, alice, "hello", "c1")
    # Another instance: its own client, so the two do not take turns in one process.
    other = Store(Database(mongo_url, store.database.db.name), hole_grace=GRACE)
    try:
        await asyncio.gather(
            *(
                s.changes.react(dm, user.id, sent.id, emoji, add=True)
                for s in (store, other)
                for user in (alice, bob)
                for emoji in ("👍", "🎉")
            )
        )
    finally:
        await other.close()

    stored = await store.database.db["messages"].find_one({"_id": sent.id})
    assert stored is not None
    assert stored["version"] == 4
    assert {r["emoji"]: sorted(r["user_ids"]) for r in stored["reactions"]} == {
        "👍": sorted([alice.id, bob.id]),
        "🎉": sorted([alice.id, bob.id]),
    }
    batch = await store.changes.read_after(dm, 0, limit=20)
    assert len(batch.changes) == 4
    assert batch.changes[-1].message.version == 4


async def test_a_deleted_messages_text_leaves_every_quote_and_preview_of_it(
    store: Store, pair: tuple[User, User, str]
) -> None:
    alice, bob, dm = pair
    original, _ = await store.messages.append(dm, alice, "the secret plan", "c1")
    reply, _ = await store.messages.append(dm, bob, "love it", "c2", reply_to=original.id)
    view = await store.conversations.view(
        await store.conversations.get_for_member(dm, bob.id), bob.id
    )
    assert view.last_message is not None
    assert view.last_message.reply_to is not None
    assert view.last_message.reply_to.excerpt == "the secret plan"

    await store.changes.delete(dm, alice.id, original.id)

    view = await store.conversations.view(
        await store.conversations.get_for_member(dm, bob.id), bob.id
    )
    assert view.last_message is not None
    assert view.last_message.reply_to is not None
    assert view.last_message.reply_to.excerpt == ""
    stored = await store.database.db["messages"].find_one({"_id": reply.id})
    assert stored is not None
    assert stored["reply_to"]["excerpt"] == ""
    # A delete that stopped before the quotes is finished by the next one.
    await store.database.db["messages"].update_one(
        {"_id": reply.id}, {"$set": {"reply_to.excerpt": "the secret plan"}}
    )
    _, again = await store.changes.delete(dm, alice.id, original.id)
    assert again is None
    stored = await store.database.db["messages"].find_one({"_id": reply.id})
    assert stored is not None
    assert stored["reply_to"]["excerpt"] == ""
    raw = [
        doc async for doc in store.database.db["messages"].find({"body": {"$regex": "secret"}})
    ] + [
        doc
        async for doc in store.database.db["conversation_state"].find(
            {"last_message.reply_to.excerpt": {"$regex": "secret"}}
        )
    ]
    assert raw == []


async def test_a_reply_stored_while_its_original_is_deleted_keeps_no_quote_of_it(
    store: Store, pair: tuple[User, User, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob, dm = pair
    original, _ = await store.messages.append(dm, alice, "the secret plan", "c1")
    allocate = store.states.allocate

    async def deleted_meanwhile(conversation_id: str) -> int:
        # After the reply read its quote, before it is stored.
        await store.changes.delete(dm, alice.id, original.id)
        return await allocate(conversation_id)

    monkeypatch.setattr(store.states, "allocate", deleted_meanwhile)
    reply, _ = await store.messages.append(dm, bob, "love it", "c2", reply_to=original.id)

    assert reply.reply_to is not None
    assert (reply.reply_to.excerpt, reply.reply_to.deleted) == ("", True)
    stored = await store.database.db["messages"].find_one({"_id": reply.id})
    assert stored is not None
    assert stored["reply_to"]["excerpt"] == ""


async def test_with_a_delete_window_a_groups_creator_still_deletes_any_message(
    mongo_url: str,
) -> None:
    database = Database(mongo_url, f"test_{uuid.uuid4().hex[:12]}")
    store = Store(database, hole_grace=GRACE, policy=Policy(delete_window=timedelta(0)))
    await database.ensure_indexes()
    try:
        alice = await store.users.create(f"a{uuid.uuid4().hex[:8]}", "x", "Alice")
        bob = await store.users.create(f"b{uuid.uuid4().hex[:8]}", "x", "Bob")
        group = await store.conversations.create_group(alice.id, "g", [bob.id], is_public=False)
        group_id = group["_id"]
        mine, _ = await store.messages.append(group_id, alice, "mine", "c1")
        bobs, _ = await store.messages.append(group_id, bob, "bob's", "c2")
        own, _ = await store.messages.append(group_id, bob, "bob's own", "c3")

        for message in (mine, bobs):
            deleted, _ = await store.changes.delete(group_id, alice.id, message.id)
            assert deleted.deleted
        with pytest.raises(EditWindowClosed):
            await store.changes.delete(group_id, bob.id, own.id)
    finally:
        await database.client.drop_database(database.db.name)
        await store.close()
