"""Typing notices over two instances: to the other members' sockets only, at most one per user
and conversation every 3 s, let through again by a send, never stored, refused with typed
errors.

Every "nothing arrived" below is read after a later notice from the same sender on the same
conversation channel, which Redis delivers in order."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from tests.support.clients import Api, Socket
from tests.support.stack import Stack

Frame = dict[str, Any]


def typing(conversation_id: str, active: bool = True) -> Frame:
    return {"type": "typing", "conversation_id": conversation_id, "active": active}


def notices(socket: Socket, conversation_id: str) -> list[tuple[str, bool]]:
    return [
        (frame["user"]["id"], frame["active"])
        for frame in socket.of_type("typing")
        if frame["conversation_id"] == conversation_id
    ]


async def test_typing_reaches_the_other_members_on_both_instances_and_nobody_else(
    stack: Stack, api: Api
) -> None:
    alice, bob, carol, dave = [await api.register(n) for n in ("alice", "bob", "carol", "dave")]
    group = await api.group(alice, bob, carol)
    elsewhere = await api.direct(dave, carol)
    first, second = stack.messages[0].ws_url, stack.messages[1].ws_url
    alice_socket = await Socket.open(first, alice.token, resume={})
    alice_other_tab = await Socket.open(second, alice.token, resume={})
    bob_socket = await Socket.open(second, bob.token, resume={})
    carol_socket = await Socket.open(first, carol.token, resume={})
    dave_socket = await Socket.open(second, dave.token, resume={})

    await alice_socket.send(typing(group))
    for socket in (bob_socket, carol_socket):
        notice = await socket.next("typing", conversation_id=group)
        assert notice["user"] == alice.user
        assert notice["active"] is True
    await alice_socket.send(typing(group, active=False))
    for socket in (bob_socket, carol_socket):
        stopped = await socket.next("typing", conversation_id=group, active=False)
        assert stopped["user"]["id"] == alice.id

    # Dave follows no part of the group; a notice in his own conversation reaches him after
    # everything above was published.
    await carol_socket.send(typing(elsewhere))
    await dave_socket.next("typing", conversation_id=elsewhere)
    assert notices(dave_socket, group) == []
    # Alice's own sockets never hear of her typing; they hear carol's in the group.
    await carol_socket.send(typing(group))
    for socket in (alice_socket, alice_other_tab):
        await socket.next("typing", conversation_id=group)
        assert notices(socket, group) == [(carol.id, True)]
    # Nothing of it was stored: the conversation has no messages.
    assert await api.messages(bob, group) == []
    for socket in (alice_socket, alice_other_tab, bob_socket, carol_socket, dave_socket):
        await socket.close()


async def test_typing_is_passed_on_once_per_interval_and_again_after_a_send(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    group = await api.group(alice, bob)
    alice_socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    bob_socket = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})

    # A client typing faster than the interval: one notice, then the stop that follows.
    for _ in range(5):
        await alice_socket.send(typing(group))
    await alice_socket.send(typing(group, active=False))
    await bob_socket.next("typing", conversation_id=group, active=False)
    assert notices(bob_socket, group) == [(alice.id, True), (alice.id, False)]

    # A stop with nothing to stop is not passed on, nor a restart within the interval (a
    # client flipping between the two would otherwise pass every frame): the web app says it
    # types again every 3 s, and one of those goes.
    await alice_socket.send(typing(group, active=False))
    async with asyncio.timeout(10):
        while len(notices(bob_socket, group)) < 3:
            await alice_socket.send(typing(group))
            await asyncio.sleep(0.5)  # As a client resends while its user types.
    assert notices(bob_socket, group)[2] == (alice.id, True)
    await alice_socket.send(typing(group))  # Within the interval: held back...
    client_msg_id = uuid.uuid4().hex
    await alice_socket.send(
        {"type": "send", "conversation_id": group, "client_msg_id": client_msg_id, "body": "hi"}
    )
    await alice_socket.next("ack", client_msg_id=client_msg_id)
    await alice_socket.send(typing(group))  # ...but after a send it goes at once.
    await bob_socket.next("message")
    expected = [(alice.id, True), (alice.id, False), (alice.id, True), (alice.id, True)]
    await bob_socket.wait_for(lambda _: notices(bob_socket, group) == expected)
    # The message came between the two notices.
    kinds = [f["type"] for f in bob_socket.frames if f["type"] in {"typing", "message"}]
    assert kinds[-2:] == ["message", "typing"]
    await alice_socket.close()
    await bob_socket.close()


async def test_bad_typing_frames_get_typed_errors(stack: Stack, api: Api) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    theirs = await api.direct(bob, carol)
    ours = await api.direct(alice, bob)
    alice_socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    bob_socket = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})

    await alice_socket.send(typing(theirs))  # Not hers: the same answer as no conversation.
    error = await alice_socket.next("error", frame_type="typing")
    assert (error["code"], error["conversation_id"]) == ("not_found", theirs)
    await alice_socket.send(typing("f" * 32))
    assert (await alice_socket.next("error", frame_type="typing"))["code"] == "not_found"
    await alice_socket.send({"type": "typing", "conversation_id": ours, "active": "yes"})
    assert (await alice_socket.next("error", frame_type="typing"))["code"] == "bad_frame"
    await alice_socket.send({"type": "typing"})
    assert (await alice_socket.next("error", frame_type="typing"))["code"] == "bad_frame"
    await alice_socket.send({"type": "typing", "conversation_id": ours, "who": "x"})
    assert (await alice_socket.next("error", frame_type="typing"))["code"] == "bad_frame"

    # None of them reached bob; the good one after them does, alone.
    await alice_socket.send(typing(ours))
    await bob_socket.next("typing", conversation_id=ours)
    assert notices(bob_socket, ours) == [(alice.id, True)]
    assert notices(bob_socket, theirs) == []
    # The socket is still open and in order.
    await alice_socket.send({"type": "ping"})
    await alice_socket.next("pong")
    await alice_socket.close()
    await bob_socket.close()
