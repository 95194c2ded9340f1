"""Edits, deletions, reactions and replies: fanned out over two instances, caught up on resume
(socket and REST) in order and exactly once, and refused with typed errors."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from backend_services.core.store import Store
from letschat_protocol.emoji import EMOJI
from tests.integration.conftest import StackFactory
from tests.support.clients import Account, Api, Socket, assert_error
from tests.support.stack import Stack

Frame = dict[str, Any]


async def post(api: Api, account: Account, conversation_id: str, body: str, **extra: Any) -> Frame:
    sent: Frame = await api.ok(
        "POST",
        f"/conversations/{conversation_id}/messages",
        account,
        json={"body": body, "client_msg_id": uuid.uuid4().hex, **extra},
    )
    return sent


def message_path(conversation_id: str, message_id: str) -> str:
    return f"/conversations/{conversation_id}/messages/{message_id}"


async def cursor_of(api: Api, account: Account, conversation_id: str) -> Frame:
    view = await api.ok("GET", f"/conversations/{conversation_id}", account)
    return {"seq": view["last_seq"], "epoch": view["epoch"], "change": view["last_change"]}


async def test_changes_reach_every_members_sockets_on_both_instances(
    stack: Stack, api: Api
) -> None:
    alice, bob, carol, dave = [await api.register(n) for n in ("alice", "bob", "carol", "dave")]
    group = await api.group(alice, bob, carol)
    outsider_dm = await api.direct(dave, carol)
    sockets = {
        "alice": await Socket.open(stack.messages[0].ws_url, alice.token, resume={}),
        "bob": await Socket.open(stack.messages[1].ws_url, bob.token, resume={}),
        "carol": await Socket.open(stack.messages[0].ws_url, carol.token, resume={}),
    }
    dave_socket = await Socket.open(stack.messages[1].ws_url, dave.token, resume={})
    sent = await post(api, alice, group, "lunch at noon?")
    mid = sent["id"]

    await sockets["alice"].send(
        {"type": "edit", "conversation_id": group, "message_id": mid, "body": "lunch at **one**?"}
    )
    for socket in sockets.values():
        edited = await socket.next("change", conversation_id=group)
        assert edited["change"] == 1
        assert edited["message"]["id"] == mid
        assert edited["message"]["body"] == "lunch at **one**?"
        assert edited["message"]["version"] == 1
        assert edited["message"]["edited_at"]

    reacted = await api.ok(
        "POST", f"{message_path(group, mid)}/reactions", bob, json={"emoji": "👍", "add": True}
    )
    assert reacted["reactions"] == [{"emoji": "👍", "user_ids": [bob.id]}]
    for socket in sockets.values():
        frame = await socket.next("change", conversation_id=group, change=2)
        assert frame["message"]["reactions"] == reacted["reactions"]
        assert frame["message"]["version"] == 2

    await sockets["alice"].send({"type": "delete", "conversation_id": group, "message_id": mid})
    for socket in sockets.values():
        frame = await socket.next("change", conversation_id=group, change=3)
        assert frame["message"]["deleted"] is True
        assert frame["message"]["body"] == ""
        assert "reactions" not in frame["message"]

    # The store keeps no text of it: the history, the change log and the list's preview.
    (stored,) = await api.messages(bob, group)
    assert stored["deleted"] is True
    assert stored["body"] == ""
    listed = await api.ok("GET", f"/conversations/{group}", carol)
    assert listed["last_message"]["body"] == ""
    assert listed["last_change"] == 3
    changes = await api.ok("GET", f"/conversations/{group}/changes", carol)
    assert [c["change"] for c in changes["changes"]] == [1, 2, 3]
    assert all(c["message"]["body"] == "" for c in changes["changes"])
    assert changes["last_change"] == 3
    assert changes["has_more"] is False

    # Dave is in none of it: a message to him arrives after all three, and no change before it.
    await post(api, carol, outsider_dm, "hi dave")
    await dave_socket.next("message", timeout=10)
    assert dave_socket.of_type("change") == []
    for socket in [*sockets.values(), dave_socket]:
        await socket.close()


async def test_a_socket_offline_during_an_edit_a_delete_and_a_reaction_gets_all_three_on_resume(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    group = await api.group(alice, bob)
    first = await post(api, alice, group, "first")
    second = await post(api, alice, group, "second")
    cursor = await cursor_of(api, bob, group)
    assert cursor == {"seq": 2, "epoch": cursor["epoch"], "change": 0}

    await api.ok("PATCH", message_path(group, first["id"]), alice, json={"body": "first, edited"})
    await api.ok("DELETE", message_path(group, second["id"]), alice)
    await api.ok(
        "POST",
        f"{message_path(group, first['id'])}/reactions",
        alice,
        json={"emoji": "🎉", "add": True},
    )
    third = await post(api, alice, group, "third")

    # On the other instance than the changes were made on, from the cursors Bob had.
    bob_socket = await Socket.open(stack.messages[1].ws_url, bob.token, resume={group: cursor})
    frames = [f for f in bob_socket.frames if f["type"] in {"message", "change", "resumed"}]
    assert [(f["type"], f.get("change")) for f in frames] == [
        ("message", None),
        ("change", 1),
        ("change", 2),
        ("change", 3),
        ("resumed", None),
    ]
    assert frames[0]["message"]["id"] == third["id"]
    edited, deleted, reacted = (f["message"] for f in frames[1:4])
    # Each message as it is now: the first edited and reacted to, the second deleted.
    assert edited["body"] == reacted["body"] == "first, edited"
    assert edited["reactions"] == [{"emoji": "🎉", "user_ids": [alice.id]}]
    assert deleted["deleted"] is True
    assert deleted["body"] == ""

    # Live from there: one more change comes once, with the next number.
    await api.ok(
        "POST",
        f"{message_path(group, first['id'])}/reactions",
        bob,
        json={"emoji": "🎉", "add": True},
    )
    live = await bob_socket.next("change", change=4)
    assert live["message"]["reactions"] == [{"emoji": "🎉", "user_ids": [alice.id, bob.id]}]
    await bob_socket.close()

    # A reload (cursors from the views) gets nothing already seen.
    reload = await Socket.open(
        stack.messages[0].ws_url, bob.token, resume={group: await cursor_of(api, bob, group)}
    )
    assert reload.of_type("change") == []
    assert reload.of_type("message") == []
    # REST catch-up from the same cursor the socket had.
    page = await api.ok(
        "GET", f"/conversations/{group}/changes", bob, params={"after_change": 2, "limit": 1}
    )
    assert [c["change"] for c in page["changes"]] == [3]
    assert page["has_more"] is True
    assert page["last_change"] == 3
    await reload.close()


async def test_a_cursor_without_a_change_follows_changes_from_now(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    sent = await post(api, alice, dm, "hello")
    await api.ok("PATCH", message_path(dm, sent["id"]), alice, json={"body": "hello there"})
    bob_socket = await Socket.open(stack.messages[0].ws_url, bob.token, resume={dm: 1})
    assert bob_socket.of_type("change") == []

    await api.ok("PATCH", message_path(dm, sent["id"]), alice, json={"body": "hello again"})

    frame = await bob_socket.next("change")
    assert frame["change"] == 2
    assert frame["message"]["body"] == "hello again"
    assert frame["message"]["version"] == 2
    await bob_socket.close()


async def test_concurrent_reactions_on_two_instances_all_count_and_number_without_gaps(
    stack: Stack, api: Api
) -> None:
    people = [await api.register(f"p{n}") for n in range(8)]
    group = await api.group(people[0], *people[1:])
    sent = await post(api, people[0], group, "react to me")
    watcher = await Socket.open(stack.messages[0].ws_url, people[0].token, resume={})
    clients = [Api(stack.auth_url, instance.url) for instance in stack.messages]

    async def react(index: int, person: Account) -> None:
        await clients[index % 2].ok(
            "POST",
            f"{message_path(group, sent['id'])}/reactions",
            person,
            json={"emoji": "🔥", "add": True},
        )

    await asyncio.gather(*(react(n, p) for n, p in enumerate(people)))

    await watcher.wait_for(lambda frames: len([f for f in frames if f["type"] == "change"]) == 8)
    numbers = [f["change"] for f in watcher.of_type("change")]
    assert numbers == sorted(numbers)
    assert len(set(numbers)) == 8
    (stored,) = await api.messages(people[1], group)
    assert sorted(stored["reactions"][0]["user_ids"]) == sorted(p.id for p in people)
    assert stored["version"] == 8
    changes = await api.ok("GET", f"/conversations/{group}/changes", people[1])
    assert changes["last_change"] == max(numbers)
    await watcher.close()
    for client in clients:
        await client.aclose()


async def test_reactions_are_idempotent_and_limited(api: Api) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    group = await api.group(alice, bob, carol)
    sent = await post(api, alice, group, "pick some")
    path = f"{message_path(group, sent['id'])}/reactions"

    twice = [await api.ok("POST", path, bob, json={"emoji": "👀", "add": True}) for _ in range(2)]
    assert twice[0] == twice[1]
    assert twice[1]["version"] == 1
    removed = await api.ok("POST", path, bob, json={"emoji": "👀", "add": False})
    assert "reactions" not in removed
    again = await api.ok("POST", path, bob, json={"emoji": "👀", "add": False})
    assert again["version"] == 2

    assert_error(
        await api.call("POST", path, bob, json={"emoji": "🦄", "add": True}), 422, "unknown_emoji"
    )
    assert_error(
        await api.call("POST", path, bob, json={"emoji": "👀", "add": "yes"}),
        422,
        "validation_error",
    )
    emoji = list(EMOJI.values())
    for choice in emoji[:10]:
        await api.ok("POST", path, bob, json={"emoji": choice, "add": True})
    assert_error(
        await api.call("POST", path, bob, json={"emoji": emoji[10], "add": True}),
        409,
        "too_many_reactions",
    )
    for choice in emoji[10:20]:
        await api.ok("POST", path, alice, json={"emoji": choice, "add": True})
    refused = await api.call("POST", path, alice, json={"emoji": emoji[20], "add": True})
    assert_error(refused, 409, "too_many_reactions")
    # An emoji already there still takes more people.
    joined = await api.ok("POST", path, carol, json={"emoji": emoji[0], "add": True})
    assert len(joined["reactions"]) == 20


async def test_who_may_change_what(make_stack: StackFactory) -> None:
    stack = make_stack(instances=1, LETSCHAT_EDIT_WINDOW_SECONDS="2")
    api = Api(stack.auth_url, stack.messages[0].url)
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    group = await api.group(alice, bob, carol)  # Alice created it.
    dm = await api.direct(bob, carol)
    bobs = await post(api, bob, group, "bob says")
    carols = await post(api, carol, dm, "carol says")

    edit = {"body": "changed"}
    assert_error(
        await api.call("PATCH", message_path(group, bobs["id"]), carol, json=edit),
        403,
        "not_your_message",
    )
    assert_error(
        await api.call("DELETE", message_path(group, bobs["id"]), carol), 403, "not_your_message"
    )
    assert_error(
        await api.call("DELETE", message_path(dm, carols["id"]), bob), 403, "not_your_message"
    )
    # Not a member: the conversation is not found, as if it did not exist.
    outsider = await api.register("eve")
    assert_error(
        await api.call("PATCH", message_path(group, bobs["id"]), outsider, json=edit),
        404,
        "not_found",
    )
    assert_error(
        await api.call("PATCH", message_path(group, "0" * 32), bob, json=edit), 404, "not_found"
    )
    # A message of another conversation is not found in this one.
    assert_error(
        await api.call("PATCH", message_path(group, carols["id"]), carol, json=edit),
        404,
        "not_found",
    )
    assert_error(
        await api.call("PATCH", message_path(group, bobs["id"]), bob, json={"body": "  "}),
        422,
        "validation_error",
    )
    assert_error(
        await api.call("PATCH", message_path(group, bobs["id"]), bob, json={"body": "x" * 4001}),
        422,
        "message_too_long",
    )

    # The group's creator deletes Bob's message; then nobody edits or reacts to it.
    deleted = await api.ok("DELETE", message_path(group, bobs["id"]), alice)
    assert deleted["deleted"] is True
    assert (await api.ok("DELETE", message_path(group, bobs["id"]), bob)) == deleted
    assert_error(
        await api.call("PATCH", message_path(group, bobs["id"]), bob, json=edit),
        409,
        "message_deleted",
    )
    assert_error(
        await api.call(
            "POST",
            f"{message_path(group, bobs['id'])}/reactions",
            carol,
            json={"emoji": "👍", "add": True},
        ),
        409,
        "message_deleted",
    )

    # Past the edit window (2 s here) the sender's edit is refused.
    late = await post(api, bob, group, "soon too old")
    await api.ok("PATCH", message_path(group, late["id"]), bob, json={"body": "in time"})
    await asyncio.sleep(2.5)  # The window is a duration: only waiting it out shows it closes.
    assert_error(
        await api.call("PATCH", message_path(group, late["id"]), bob, json=edit),
        403,
        "edit_window_closed",
    )
    await api.aclose()


async def test_socket_change_errors_echo_the_message(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    sent = await post(api, alice, dm, "mine")
    socket = await Socket.open(stack.messages[0].ws_url, bob.token, resume={})

    await socket.send(
        {"type": "edit", "conversation_id": dm, "message_id": sent["id"], "body": "yours?"}
    )
    error = await socket.next("error")
    assert error == {
        "type": "error",
        "code": "not_your_message",
        "message": "Only its sender can edit a message.",
        "frame_type": "edit",
        "conversation_id": dm,
        "message_id": sent["id"],
    }
    await socket.send(
        {"type": "react", "conversation_id": dm, "message_id": sent["id"], "emoji": "x", "add": 1}
    )
    bad = await socket.next("error")
    assert bad["code"] == "bad_frame"
    assert bad["message_id"] == sent["id"]
    await socket.close()


async def test_a_reply_quotes_the_message_and_loses_the_quote_when_it_is_deleted(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    group = await api.group(alice, bob)
    other = await api.direct(alice, bob)
    original = await post(api, alice, group, "what time is lunch? " + "x" * 300)
    socket = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})

    await socket.send(
        {
            "type": "send",
            "conversation_id": group,
            "client_msg_id": "r1",
            "body": "noon",
            "reply_to": original["id"],
        }
    )
    ack = await socket.next("ack", client_msg_id="r1")
    quote = ack["message"]["reply_to"]
    assert quote == {
        "message_id": original["id"],
        "seq": original["seq"],
        "sender_id": alice.id,
        "sender_name": alice.user["display_name"],
        "excerpt": original["body"][:200],
    }
    assert_error(
        await api.call(
            "POST",
            f"/conversations/{other}/messages",
            bob,
            json={"body": "elsewhere", "client_msg_id": "r2", "reply_to": original["id"]},
        ),
        404,
        "not_found",
    )

    await api.ok("DELETE", message_path(group, original["id"]), alice)
    page = await api.messages(bob, group)
    reply = next(m for m in page if m["id"] == ack["message"]["id"])
    assert reply["reply_to"]["excerpt"] == ""
    assert reply["reply_to"]["deleted"] is True
    assert_error(
        await api.call(
            "POST",
            f"/conversations/{group}/messages",
            bob,
            json={"body": "to a ghost", "client_msg_id": "r3", "reply_to": original["id"]},
        ),
        409,
        "message_deleted",
    )
    await socket.close()


async def test_a_change_whose_publish_was_lost_still_reaches_the_sockets(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    sent = await post(api, alice, dm, "hello")
    sockets = [
        await Socket.open(instance.ws_url, bob.token, resume={}) for instance in stack.messages
    ]
    # Stored, never published (as if the instance died right after the write): each instance's
    # sweep finds its topic behind the change counter and reads the store.
    store = Store.connect(stack.env["LETSCHAT_MONGODB_URL"], stack.env["LETSCHAT_MONGODB_DB"])
    try:
        _, lost = await store.changes.edit(dm, alice.id, sent["id"], "hello, quietly")
    finally:
        await store.close()
    for socket in sockets:
        frame = await socket.next("change", change=lost)
        assert frame["message"]["body"] == "hello, quietly"

    # A later change, published, comes next and once.
    await api.ok("PATCH", message_path(dm, sent["id"]), alice, json={"body": "hello, loudly"})
    for socket in sockets:
        frame = await socket.next("change", change=lost + 1)
        assert [f["change"] for f in socket.of_type("change")] == [lost, lost + 1]
        await socket.close()
