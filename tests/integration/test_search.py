"""Message search over REST on real servers: words, phrases, from: and in:, newest first and
paged, only in the conversations the caller is in now, up to date with edits and deletions, and
typed errors for bad searches."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend_services.core.search import terms
from backend_services.core.store import Store
from backend_services.core.store import search as search_store
from tests.support.clients import Account, Api, assert_error
from tests.support.stack import Stack

Frame = dict[str, Any]


async def post(api: Api, account: Account, conversation_id: str, body: str) -> Frame:
    sent: Frame = await api.ok(
        "POST",
        f"/conversations/{conversation_id}/messages",
        account,
        json={"body": body, "client_msg_id": uuid.uuid4().hex},
    )
    return sent


async def search(api: Api, account: Account, q: str, **params: Any) -> Frame:
    page: Frame = await api.ok("GET", "/search", account, params={"q": q, **params})
    return page


def bodies(page: Frame) -> list[str]:
    return [message["body"] for message in page["messages"]]


async def test_words_phrases_from_and_in_find_the_callers_messages_newest_first(
    stack: Stack, api: Api
) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    group = await api.ok(
        "POST",
        "/conversations/groups",
        alice,
        json={"name": "Food Club", "member_ids": [bob.id, carol.id]},
    )
    food = group["id"]
    direct = await api.direct(alice, bob)
    theirs = await api.direct(bob, carol)
    await post(api, alice, food, "Lunch at noon?")
    await post(api, bob, food, "lunch is at NOON today, and the café is open")
    await post(api, bob, direct, "private lunch plans")
    await post(api, carol, theirs, "lunch without alice")  # Not hers to find.
    await post(api, carol, food, "dinner instead")

    assert bodies(await search(api, alice, "lunch")) == [
        "private lunch plans",
        "lunch is at NOON today, and the café is open",
        "Lunch at noon?",
    ]
    assert bodies(await search(api, alice, "NOON Lunch")) == [
        "lunch is at NOON today, and the café is open",
        "Lunch at noon?",
    ]
    assert bodies(await search(api, alice, '"lunch at"')) == ["Lunch at noon?"]
    assert bodies(await search(api, alice, 'the "NOON today"')) == [
        "lunch is at NOON today, and the café is open"
    ]
    assert bodies(await search(api, alice, "CAFÉ")) == [
        "lunch is at NOON today, and the café is open"
    ]
    assert bodies(await search(api, alice, f"lunch from:{bob.user['username']}")) == [
        "private lunch plans",
        "lunch is at NOON today, and the café is open",
    ]
    assert bodies(await search(api, alice, f"from:@{carol.user['username']}")) == ["dinner instead"]
    assert bodies(await search(api, alice, "lunch in:#food club")) == []  # Two words: "club".
    assert bodies(await search(api, alice, 'lunch in:"food club"')) == [
        "lunch is at NOON today, and the café is open",
        "Lunch at noon?",
    ]
    assert bodies(await search(api, alice, f"lunch in:@{bob.user['username']}")) == [
        "private lunch plans"
    ]
    assert bodies(await search(api, alice, "lunch", conversation_id=direct)) == [
        "private lunch plans"
    ]
    assert bodies(await search(api, alice, "lunch from:nobody-by-that-name")) == []
    found = await search(api, alice, "dinner")
    assert found["messages"][0]["conversation_id"] == food
    assert "next_cursor" not in found
    assert "terms" not in found["messages"][0]  # What it is found by stays in the store.


async def test_leaving_a_group_takes_its_messages_out_of_your_searches(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    group = await api.group(alice, bob)
    await post(api, alice, group, "the secret plan")
    assert bodies(await search(api, bob, "secret")) == ["the secret plan"]
    await api.ok("POST", f"/conversations/{group}/leave", bob)
    assert bodies(await search(api, bob, "secret")) == []
    assert_error(
        await api.call("GET", "/search", bob, params={"q": "secret", "conversation_id": group}),
        404,
        "not_found",
    )
    assert bodies(await search(api, alice, "secret")) == ["the secret plan"]


async def test_edits_and_deletions_change_what_is_found(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    direct = await api.direct(alice, bob)
    sent = await post(api, alice, direct, "meet at the station")
    gone = await post(api, alice, direct, "meet at the bridge")
    path = f"/conversations/{direct}/messages"
    await api.ok("PATCH", f"{path}/{sent['id']}", alice, json={"body": "meet at the harbour"})
    await api.ok("DELETE", f"{path}/{gone['id']}", alice)
    assert bodies(await search(api, bob, "station")) == []
    assert bodies(await search(api, bob, "harbour")) == ["meet at the harbour"]
    assert bodies(await search(api, bob, "bridge")) == []
    assert bodies(await search(api, bob, "meet")) == ["meet at the harbour"]
    # All of hers: the deleted one is not among them.
    assert bodies(await search(api, bob, f"from:{alice.user['username']}")) == [
        "meet at the harbour"
    ]


async def test_pages_follow_each_other_without_gaps_or_repeats(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    direct = await api.direct(alice, bob)
    for n in range(25):
        await post(api, alice, direct, f"standup note {n}")
    first = await search(api, bob, "standup", limit=10)
    second = await search(api, bob, "standup", limit=10, cursor=first["next_cursor"])
    third = await search(api, bob, "standup", limit=10, cursor=second["next_cursor"])
    seen = bodies(first) + bodies(second) + bodies(third)
    assert seen == [f"standup note {n}" for n in reversed(range(25))]
    assert "next_cursor" not in third


async def test_bad_searches_get_typed_errors(stack: Stack, api: Api) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    theirs = await api.direct(bob, carol)

    async def refused(status: int, code: str, **params: Any) -> None:
        assert_error(await api.call("GET", "/search", alice, params=params), status, code)

    await refused(422, "validation_error")  # No q.
    await refused(422, "validation_error", q="")
    await refused(422, "validation_error", q="in:#somewhere")  # Asks for nothing.
    await refused(422, "validation_error", q="x" * 201)
    await refused(422, "validation_error", q=" ".join(f"w{n}" for n in range(11)))
    await refused(422, "validation_error", q="lunch", cursor="not-a-cursor")
    await refused(422, "validation_error", q="lunch", limit=0)
    await refused(422, "validation_error", q="lunch", limit=51)
    await refused(404, "not_found", q="lunch", conversation_id=theirs)
    # Made-up cursors: out of any time a message has, or past any seq.
    for forged in (
        search_store.Cursor(datetime(1, 1, 1, tzinfo=UTC), "x").encode(),
        search_store.Cursor(datetime(2999, 1, 1, tzinfo=UTC), "x").encode(),
        search_store.Cursor(datetime(2026, 1, 1, tzinfo=UTC), "x", 2**60).encode(),
    ):
        await refused(422, "validation_error", q="lunch", cursor=forged)
    ours = await api.direct(alice, bob)
    far = search_store.Cursor(datetime(2026, 1, 1, tzinfo=UTC), "x", 2**52).encode()
    page = await search(api, alice, "lunch", conversation_id=ours, cursor=far)
    assert page["messages"] == []  # At once: the walk starts at the conversation's newest seq.
    await refused(404, "not_found", q="lunch", conversation_id="f" * 32)
    assert_error(await api.call("GET", "/search", params={"q": "lunch"}), 401, "unauthorized")
    # An unclosed quote is read as words.
    assert bodies(await search(api, alice, '"unclosed quote')) == []


async def test_messages_stored_before_search_are_found_once_indexed(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    direct = await api.direct(alice, bob)
    await post(api, alice, direct, "a new message")
    store = Store.connect(stack.env["LETSCHAT_MONGODB_URL"], stack.env["LETSCHAT_MONGODB_DB"])
    try:
        messages = store.database.db["messages"]
        # As an earlier version stored them: no words.
        await messages.insert_many(
            [
                {
                    "_id": uuid.uuid4().hex,
                    "conversation_id": direct,
                    "seq": seq,
                    "sender_id": alice.id,
                    "sender_name": "Alice",
                    "body": f"an old message {seq}",
                    "client_msg_id": uuid.uuid4().hex,
                    "created_at": datetime(2025, 6, 1, 12, seq, tzinfo=UTC),
                }
                for seq in range(2, 4)
            ]
            # A seq whose writer died: no body, nothing to find it by.
            + [
                {
                    "_id": uuid.uuid4().hex,
                    "conversation_id": direct,
                    "seq": 4,
                    "tombstone": True,
                    "sender_id": "",
                    "client_msg_id": "~lost~4",
                    "created_at": datetime(2025, 6, 1, 13, tzinfo=UTC),
                }
            ]
        )
        # ...with the counter where they left it.
        await store.database.db["conversation_state"].update_one(
            {"_id": direct}, {"$set": {"last_seq": 4}}
        )
        assert bodies(await search(api, bob, "old")) == []
        await store.database.db["meta"].delete_one({"_id": "search_terms"})
        assert await store.search.index_older() == 3  # The tombstone's words: none.
        assert await store.search.index_older() == 0  # Once per database.
    finally:
        await store.close()
    assert bodies(await search(api, bob, "old message")) == ["an old message 3", "an old message 2"]


async def test_windows_and_pages_cover_every_match_once(
    logged_store: tuple[Store, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against the store, with small windows and a small page budget: every match comes once,
    newest first, across windows and pages, walking by time (several conversations) and by seq
    (one); a page that read its budget without filling up says where to go on."""
    store, _ = logged_store
    monkeypatch.setattr(search_store, "MAX_EXAMINED", 120)
    monkeypatch.setattr(search_store, "SEQ_WINDOW", 25)
    monkeypatch.setattr(search_store, "FIRST_WINDOW", timedelta(minutes=10))
    start = datetime(2026, 11, 1, tzinfo=UTC)
    docs = []
    for conversation in ("a", "b"):
        for seq in range(1, 301):
            body = f"note {seq}" + (" needle" if seq % 7 == 0 or seq == 1 else "")
            docs.append(
                {
                    "_id": f"{conversation}{seq:04d}",
                    "conversation_id": conversation,
                    "seq": seq,
                    "sender_id": "ada",
                    "sender_name": "Ada",
                    "body": body,
                    "terms": terms(body),
                    "client_msg_id": f"{conversation}{seq}",
                    "created_at": start + timedelta(minutes=seq * 3 + (conversation == "b")),
                }
            )
    await store.database.db["messages"].insert_many(docs)
    for conversation in ("a", "b"):
        await store.database.db["conversation_state"].insert_one(
            {"_id": conversation, "last_seq": 300}
        )

    async def everything(places: list[str]) -> tuple[list[str], int]:
        seen: list[str] = []
        cursor, pages = None, 0
        while True:
            found = await store.search.find(
                places, words=["needle"], phrases=[], before=cursor, limit=10
            )
            seen += [message.id for message in found.messages]
            pages += 1
            if found.next is None:
                return seen, pages
            cursor = found.next

    expected = sorted(
        (doc for doc in docs if "needle" in doc["terms"]),
        key=lambda doc: doc["created_at"],
        reverse=True,
    )
    both, pages = await everything(["a", "b"])
    assert both == [doc["_id"] for doc in expected]
    assert pages > len(both) // 10  # Some pages stopped at the budget, not at 10.
    one, _ = await everything(["a"])
    assert one == [doc["_id"] for doc in expected if doc["conversation_id"] == "a"]
    assert one[-1] == "a0001"  # The oldest, past every window.
