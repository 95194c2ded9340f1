"""Delivery across instances: DMs, groups, own other tabs, read markers, new conversations."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from websockets.asyncio.client import connect

from tests.integration.conftest import StackFactory
from tests.support.clients import Api, Socket, send_frame
from tests.support.stack import Stack


async def test_direct_message_reaches_a_user_on_another_instance(stack: Stack, api: Api) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    a = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    b = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})

    await a.send({"type": "send", "conversation_id": dm, "client_msg_id": "m1", "body": "hi bob"})

    ack = await a.next("ack", client_msg_id="m1")
    delivered = await b.next("message")
    assert delivered["message"] == ack["message"]
    assert delivered["message"]["body"] == "hi bob"
    assert delivered["message"]["seq"] == 1
    assert delivered["message"]["sender_name"] == alice.user["display_name"]
    await a.close()
    await b.close()


async def test_group_message_reaches_every_member_and_the_senders_other_tab(
    stack: Stack, api: Api
) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    group = await api.group(alice, bob, carol)
    alice_tab1 = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
    alice_tab2 = await Socket.open(stack.messages[1].ws_url, alice.token, resume={})
    b = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
    c = await Socket.open(stack.messages[0].ws_url, carol.token, resume={})

    await b.send(
        {"type": "send", "conversation_id": group, "client_msg_id": "g1", "body": "hey all"}
    )

    for socket in (alice_tab1, alice_tab2, b, c):
        frame = await socket.next("message")
        assert frame["message"]["body"] == "hey all"
        assert frame["message"]["conversation_id"] == group
    for socket in (alice_tab1, alice_tab2, b, c):
        await socket.close()


async def test_read_marker_is_stored_and_echoed_to_the_users_other_sockets(
    stack: Stack, api: Api
) -> None:
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    for n in range(3):
        await api.ok(
            "POST",
            f"/conversations/{dm}/messages",
            alice,
            json={"body": f"m{n}", "client_msg_id": f"c{n}"},
        )
    bob_tab1 = await Socket.open(stack.messages[0].ws_url, bob.token, resume={})
    bob_tab2 = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
    listed = await api.ok("GET", "/conversations", bob)
    assert listed[0]["unread"] == 3

    await bob_tab1.send({"type": "read", "conversation_id": dm, "seq": 2})

    echo = await bob_tab2.next("read")
    assert echo == {"type": "read", "conversation_id": dm, "seq": 2}
    listed = await api.ok("GET", "/conversations", bob)
    assert listed[0]["unread"] == 1
    assert listed[0]["last_read_seq"] == 2
    # The socket that moved it is not told: the other tab's next read reaches it with nothing
    # before it, where its own echo would have been (both pass through Bob's one channel).
    await bob_tab2.send({"type": "read", "conversation_id": dm, "seq": 3})
    assert await bob_tab1.next("read") == {"type": "read", "conversation_id": dm, "seq": 3}
    assert bob_tab1.of_type("read") == [{"type": "read", "conversation_id": dm, "seq": 3}]
    await bob_tab1.close()
    await bob_tab2.close()


async def test_new_conversation_is_pushed_with_its_messages(stack: Stack, api: Api) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    c = await Socket.open(stack.messages[1].ws_url, carol.token, resume={})
    group = await api.group(alice, bob)
    await api.ok(
        "POST",
        f"/conversations/{group}/messages",
        alice,
        json={"body": "before carol", "client_msg_id": "x1"},
    )

    await api.ok("POST", f"/conversations/{group}/members", bob, json={"user_id": carol.id})

    pushed = await c.next("conversation")
    assert pushed["conversation"]["id"] == group
    assert {m["id"] for m in pushed["conversation"]["members"]} == {alice.id, bob.id, carol.id}
    history = await c.next("message")
    assert history["message"]["body"] == "before carol"
    added = await c.next("message")  # The line that says bob added her.
    assert added["message"]["system"]["kind"] == "added"
    assert added["message"]["system"]["target_id"] == carol.id
    await api.ok(
        "POST",
        f"/conversations/{group}/messages",
        alice,
        json={"body": "welcome", "client_msg_id": "x2"},
    )
    live = await c.next("message")
    assert live["message"]["body"] == "welcome"
    await c.close()


async def test_an_instance_subscribes_only_to_what_its_users_need(stack: Stack, api: Api) -> None:
    alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
    alice_and_bob = await api.direct(alice, bob)
    bob_and_carol = await api.direct(bob, carol)
    prefix = stack.env["LETSCHAT_CHANNEL_PREFIX"]
    client = aioredis.Redis.from_url(stack.env["LETSCHAT_REDIS_URL"], decode_responses=True)
    try:
        a = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
        channels = set(await client.pubsub_channels(f"{prefix}*"))
        assert channels == {f"{prefix}user:{alice.id}", f"{prefix}conversation:{alice_and_bob}"}
        assert f"{prefix}conversation:{bob_and_carol}" not in channels

        await a.close()
        for _ in range(50):
            if not await client.pubsub_channels(f"{prefix}*"):
                break
            await asyncio.sleep(0.05)
        assert await client.pubsub_channels(f"{prefix}*") == []
    finally:
        await client.aclose()


async def test_sockets_are_compressed_only_when_configured(make_stack: StackFactory) -> None:
    plain = make_stack(instances=1, redis=None)
    compressed = make_stack(instances=1, redis=None, LETSCHAT_WS_COMPRESSION="true")

    # The `websockets` client offers permessage-deflate on every handshake.
    async with connect(plain.messages[0].ws_url) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
    async with connect(compressed.messages[0].ws_url) as ws:
        accepted = ws.response.headers["Sec-WebSocket-Extensions"]
        assert accepted.startswith("permessage-deflate")


async def test_a_compressed_socket_gets_its_messages_through_the_writer(
    make_stack: StackFactory,
) -> None:
    """A compressed frame depends on the ones before it, so such a socket is not written to
    directly (prepared frames): its messages, acks and all go through its writer task."""
    compressed = make_stack(instances=1, redis=None, LETSCHAT_WS_COMPRESSION="true")
    api = Api(compressed.auth_url, compressed.messages[0].url)
    try:
        alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
        group = await api.group(alice, bob, carol)
        url = compressed.messages[0].ws_url
        a, b, c = [await Socket.open(url, who.token, resume={}) for who in (alice, bob, carol)]
        assert a.ws.response is not None
        assert a.ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")

        for n in range(3):
            await a.send(send_frame(group, f"m{n}", f"hello {n}"))
            await a.next("ack", client_msg_id=f"m{n}")
        for socket in (a, b, c):
            got = [(await socket.next("message"))["message"]["body"] for _ in range(3)]
            assert got == ["hello 0", "hello 1", "hello 2"]
        for socket in (a, b, c):
            await socket.close()
    finally:
        await api.aclose()
