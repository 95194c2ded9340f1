"""Read markers over the socket: bounded by what the socket was sent, echoed only when they move,
and checked against the store where the socket cannot vouch for them."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from backend_services.core.schemas import User
from backend_services.core.store import Store
from tests.integration.conftest import StackFactory
from tests.support.clients import Account, Api, Socket, send_frame
from tests.support.processes import free_port, start_redis
from tests.support.stack import Stack


async def post_messages(api: Api, sender: Account, conversation_id: str, count: int) -> None:
    for _ in range(count):
        await api.ok(
            "POST",
            f"/conversations/{conversation_id}/messages",
            sender,
            json={"body": "hello", "client_msg_id": uuid.uuid4().hex},
        )


async def delivered(socket: Socket, conversation_id: str, seq: int) -> None:
    """Wait until the socket has been sent message `seq` of the conversation."""
    await socket.wait_for(lambda _: seq in [m["seq"] for m in socket.messages(conversation_id)])


def read(conversation_id: str, seq: int) -> dict[str, Any]:
    return {"type": "read", "conversation_id": conversation_id, "seq": seq}


async def test_a_read_that_does_not_move_the_marker_is_not_echoed(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    reader = await Socket.open(stack.messages[0].ws_url, bob.token, resume={})
    other_tab = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
    await post_messages(api, alice, dm, 4)
    await delivered(reader, dm, 4)

    await reader.send(read(dm, 2))
    assert await other_tab.next("read") == read(dm, 2)
    await reader.send(read(dm, 2))  # Where the marker is.
    await reader.send(read(dm, 1))  # Behind it.
    await reader.send(read(dm, 3))

    # Frames from one socket are handled in order, so a stale echo would come first.
    assert await other_tab.next("read") == read(dm, 3)
    # REST tells every socket, and also only when the marker moves.
    for seq in (3, 2, 4):
        await api.ok("POST", f"/conversations/{dm}/read", bob, json={"seq": seq})
    assert await other_tab.next("read") == read(dm, 4)
    assert await reader.next("read") == read(dm, 4)
    assert reader.of_type("read") == [read(dm, 4)]
    await reader.close()
    await other_tab.close()


async def test_a_read_is_cut_to_what_the_socket_was_sent(
    make_stack: StackFactory, mongo_url: str
) -> None:
    # No sweep during the test: a message stored behind the service's back stays undelivered.
    stack = make_stack(LETSCHAT_SESSION_SWEEP_SECONDS="600")
    api = Api(stack.auth_url, stack.messages[0].url)
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    await post_messages(api, alice, dm, 2)
    reader = await Socket.open(stack.messages[0].ws_url, bob.token, resume={})
    other_tab = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
    assert [m["seq"] for m in reader.messages(dm)] == [1, 2]  # Caught up before `resumed`.
    store = Store.connect(mongo_url, stack.env["LETSCHAT_MONGODB_DB"])
    try:
        await store.messages.append(dm, User(**alice.user), "never published", "unseen")
    finally:
        await store.close()

    await reader.send(read(dm, 3))

    assert await other_tab.next("read") == read(dm, 2)
    [view] = await api.ok("GET", "/conversations", bob)
    assert (view["last_seq"], view["last_read_seq"], view["unread"]) == (3, 2, 1)
    # The next message shows the socket the gap; once it was sent seq 3, the same read reaches it.
    await post_messages(api, alice, dm, 1)
    await delivered(reader, dm, 4)
    await reader.send(read(dm, 3))
    assert await other_tab.next("read") == read(dm, 3)
    await reader.close()
    await other_tab.close()
    await api.aclose()


async def test_a_read_where_the_socket_does_not_follow_is_checked_against_the_store(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    group = await api.group(alice, bob)
    await post_messages(api, alice, group, 2)
    other_tab = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
    # Authenticated but not resumed: it follows nothing yet, so the store vouches for the read.
    reader = await Socket.open(stack.messages[0].ws_url, bob.token)

    await reader.send(read(group, 9))
    assert await other_tab.next("read") == read(group, 2)  # Cut to the newest message.

    await api.ok("POST", f"/conversations/{group}/leave", bob)
    await other_tab.next("left", conversation_id=group)
    missing = uuid.uuid4().hex
    for conversation_id in (group, missing):
        await other_tab.send(read(conversation_id, 2))
    left_error = await other_tab.next("error", conversation_id=group)
    missing_error = await other_tab.next("error", conversation_id=missing)

    assert left_error["code"] == "not_found"
    assert left_error["frame_type"] == "read"
    assert {**left_error, "conversation_id": missing} == missing_error
    await reader.close()
    await other_tab.close()


async def test_a_senders_marker_follows_what_their_socket_sent(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    await post_messages(api, bob, dm, 2)
    tab = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    await delivered(tab, dm, 2)

    await tab.send(send_frame(dm, "reply"))
    ack = await tab.next("ack", client_msg_id="reply")

    # Stored with the instance's next batch of markers: wait for it, bounded.
    for _ in range(100):
        [view] = await api.ok("GET", "/conversations", alice)
        if view["last_read_seq"] >= 3:
            break
        await asyncio.sleep(0.05)
    assert (ack["message"]["seq"], view["last_read_seq"], view["unread"]) == (3, 3, 0)
    await tab.close()


async def _heard_before(pubsub: PubSub, marker: str) -> list[str]:
    """The channels of what `pubsub` hears before `marker`, published after them: Redis hands
    a subscriber everything in the order it was published, so nothing earlier is still to come.
    (Counting every publish would count the listeners' own echoes too, one per instance every
    few seconds.)"""
    heard: list[str] = []
    async with asyncio.timeout(10):
        while True:
            event = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if event is None:
                continue
            if event["data"] == marker.encode():
                return heard
            heard.append(event["channel"].decode())


async def test_an_echo_goes_through_redis_only_when_another_instance_listens(
    make_stack: StackFactory, log_dir: Path
) -> None:
    """Most people have one socket, the one that read: their echoes need no broker at all."""
    port = free_port()
    private = start_redis(log_dir, port)  # Its channels' listeners are this test's alone.
    try:
        stack = make_stack(redis=f"redis://127.0.0.1:{port}/0")
        api = Api(stack.auth_url, stack.messages[0].url)
        alice, bob = await api.register("alice"), await api.register("bob")
        dm = await api.direct(alice, bob)
        here = stack.messages[0].ws_url
        reader = await Socket.open(here, bob.token, resume={})
        same_instance_tab = await Socket.open(here, bob.token, resume={})
        await post_messages(api, alice, dm, 3)
        await delivered(reader, dm, 3)
        # A pattern subscription hears every user channel, yet is no listener to the instances
        # (PUBSUB NUMSUB counts only subscriptions by name).
        users = f"{stack.env['LETSCHAT_CHANNEL_PREFIX']}user:"
        redis = aioredis.Redis(port=port)
        pubsub = redis.pubsub()
        await pubsub.psubscribe(f"{users}*")
        subscribed = await pubsub.get_message(timeout=5)
        assert subscribed is not None
        assert subscribed["type"] == "psubscribe"

        await reader.send(read(dm, 1))
        # Bob's channel has no listener elsewhere: the tab beside the reader gets it directly.
        assert await same_instance_tab.next("read") == read(dm, 1)

        other_instance_tab = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
        await reader.send(read(dm, 2))
        assert await other_instance_tab.next("read") == read(dm, 2)
        assert await same_instance_tab.next("read", seq=2) == read(dm, 2)
        # Rounds run one after another, so the first echo was decided before this one: only
        # the second went through Redis.
        await redis.publish(f"{users}nobody", "marker")
        assert await _heard_before(pubsub, "marker") == [f"{users}{bob.id}"]
        await pubsub.aclose()
        await redis.aclose()
        for socket in (reader, same_instance_tab, other_instance_tab):
            await socket.close()
        await api.aclose()
    finally:
        private.stop()
