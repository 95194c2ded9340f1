"""Faults between the services and what they depend on, through `tests.support.faults` proxies:
a stalled MongoDB is answered quickly and honestly, the service recovers by itself, a write
the database applied but never confirmed still reaches everyone once, and a `left` event Redis
lost on its way to an instance does not leave that user's socket in the conversation."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis.asyncio as redis

from backend_services.core.schemas import User
from backend_services.core.store import Store
from backend_services.message_service import frames
from backend_services.message_service.envelope import Envelope
from tests.support.clients import Account, Api, Socket, assert_error, send_frame
from tests.support.faults import FaultProxy, fault_proxy, finds_in, inserts_into
from tests.support.stack import Stack, running_stack

# What the stack below is given: every MongoDB operation ends within this.
MONGODB_TIMEOUT_S = 2.0
REDIS_TIMEOUT_S = 1.0


@pytest.fixture
def mongo_proxy(mongo_url: str) -> Iterator[tuple[FaultProxy, str]]:
    """A fault proxy in front of the session's SecantusDB, and the URL that goes through it."""
    upstream = urlsplit(mongo_url)
    host, port = upstream.hostname or "127.0.0.1", upstream.port or 27017
    with fault_proxy(host, port, wire="mongo") as proxy:
        yield proxy, mongo_url.replace(f":{port}/", f":{proxy.port}/")


@pytest.fixture
def redis_proxy(redis_url: str) -> Iterator[tuple[FaultProxy, str]]:
    """A fault proxy in front of the shared Redis, and the URL that goes through it."""
    upstream = urlsplit(redis_url)
    host, port = upstream.hostname or "127.0.0.1", upstream.port or 6379
    with fault_proxy(host, port) as proxy:
        yield proxy, redis_url.replace(f":{port}/", f":{proxy.port}/")


@pytest.fixture
def stalled_stack(
    mongo_proxy: tuple[FaultProxy, str], redis_url: str, log_dir: Path
) -> Iterator[tuple[FaultProxy, Stack]]:
    proxy, url = mongo_proxy
    with running_stack(
        url,
        redis_url,
        log_dir,
        instances=1,
        LETSCHAT_MONGODB_TIMEOUT_MS=str(int(MONGODB_TIMEOUT_S * 1000)),
    ) as stack:
        yield proxy, stack


@pytest.fixture
def split_stack(
    mongo_url: str, redis_proxy: tuple[FaultProxy, str], redis_url: str, log_dir: Path
) -> Iterator[tuple[FaultProxy, Stack]]:
    """Two instances: the first hears Redis directly, the second through the proxy."""
    proxy, proxied = redis_proxy
    with running_stack(
        mongo_url,
        redis_url,
        log_dir,
        per_instance=[{}, {"LETSCHAT_REDIS_URL": proxied}],
        LETSCHAT_MEMBERSHIP_RECHECK_SECONDS="0.5",
        LETSCHAT_REDIS_TIMEOUT_MS=str(int(REDIS_TIMEOUT_S * 1000)),
    ) as stack:
        yield proxy, stack


async def _ready(http: httpx.AsyncClient, url: str) -> int:
    return (await http.get(f"{url}/readyz", timeout=10)).status_code


async def test_a_stalled_mongodb_is_answered_within_the_timeout_and_recovers_by_itself(
    stalled_stack: tuple[FaultProxy, Stack],
) -> None:
    proxy, stack = stalled_stack
    service = stack.messages[0]
    api = Api(stack.auth_url, service.url)
    try:
        alice, bob = await api.register("alice"), await api.register("bob")
        dm = await api.direct(alice, bob)
        socket = await Socket.open(service.ws_url, alice.token, resume={dm: 0})

        proxy.blackhole()

        started = time.monotonic()
        await socket.send(send_frame(dm, "while-stalled", "are you there?"))
        error = await socket.next("error", client_msg_id="while-stalled", timeout=15)
        assert error["code"] == "service_unavailable"
        assert time.monotonic() - started < MONGODB_TIMEOUT_S + 2
        async with httpx.AsyncClient() as http:
            for url in (service.url, stack.auth_url):  # Out of the load balancer, quickly.
                asked = time.monotonic()
                assert await _ready(http, url) == 503
                assert time.monotonic() - asked < 2.0
            response = await api.call("GET", "/conversations", alice)
            assert_error(response, 503, "service_unavailable")
            assert (await http.get(f"{service.url}/healthz")).status_code == 200

            proxy.heal()

            for _ in range(100):  # Recovery needs nobody: the instance is ready again...
                if await _ready(http, service.url) == 200:
                    break
                await asyncio.sleep(0.2)
            assert await _ready(http, service.url) == 200
        # ...and the same socket sends again; the retry of the stalled send is stored once.
        await socket.send(send_frame(dm, "while-stalled", "are you there?"))
        await socket.next("ack", client_msg_id="while-stalled", timeout=15)
        bodies = [m["body"] for m in await api.messages(alice, dm)]
        assert bodies == ["are you there?"]
        await socket.close()
    finally:
        await api.aclose()


async def test_a_send_stored_without_its_reply_is_delivered_once_when_retried(
    stalled_stack: tuple[FaultProxy, Stack],
) -> None:
    proxy, stack = stalled_stack
    service = stack.messages[0]
    api = Api(stack.auth_url, service.url)
    try:
        alice, bob = await api.register("alice"), await api.register("bob")
        dm = await api.direct(alice, bob)
        sender = await Socket.open(service.ws_url, alice.token, resume={dm: 0})
        receiver = await Socket.open(service.ws_url, bob.token, resume={dm: 0})
        await sender.send(send_frame(dm, "before", "first"))
        await receiver.next("message", timeout=10)

        # The database stores the message; its reply (and a retry's) never comes back.
        proxy.drop_replies(inserts_into("messages"), count=2)
        await sender.send(send_frame(dm, "unheard", "did this arrive?"))
        error = await sender.next("error", client_msg_id="unheard", timeout=15)
        assert error["code"] == "service_unavailable"
        assert proxy.dropped_replies >= 1
        assert [m["body"] for m in await api.messages(bob, dm)] == ["first", "did this arrive?"]
        proxy.heal()

        await sender.send(send_frame(dm, "unheard", "did this arrive?"))  # The client's retry.
        ack = await sender.next("ack", client_msg_id="unheard", timeout=15)
        delivered = await receiver.next("message", timeout=10)
        assert delivered["message"]["body"] == "did this arrive?"
        assert delivered["message"] == ack["message"]
        (view,) = [c for c in await api.ok("GET", "/conversations", bob) if c["id"] == dm]
        assert view["last_message"]["body"] == "did this arrive?"
        assert view["unread"] == 2

        # Once: a later message comes after it and nothing else does.
        await sender.send(send_frame(dm, "after", "and this one"))
        await receiver.wait_for(
            lambda frames: any(
                f.get("type") == "message" and f["message"]["body"] == "and this one"
                for f in frames
            )
        )
        assert [m["body"] for m in receiver.messages(dm)] == [
            "first",
            "did this arrive?",
            "and this one",
        ]
        await sender.close()
        await receiver.close()
    finally:
        await api.aclose()


async def _resumed(url: str, token: str, cursors: dict[str, int]) -> tuple[Socket, list[int]]:
    """A socket that reached `resumed` the way the protocol tells a client to get there: an
    error answering `resume` is asked again, a close is reconnected (with the same cursors:
    nothing was received meanwhile). Also the close codes met on the way."""
    closes: list[int] = []
    for _ in range(5):
        socket = await Socket.open(url, token)
        for _ in range(3):
            asked = len(socket.frames)
            await socket.send({"type": "resume", "cursors": cursors})
            with contextlib.suppress(AssertionError):  # Closed while waiting.
                await socket.wait_for(
                    lambda frames, asked=asked: any(
                        f.get("type") == "resumed"
                        or (f.get("type") == "error" and f.get("frame_type") == "resume")
                        for f in frames[asked:]
                    ),
                    timeout=15,
                )
            if socket.of_type("resumed"):
                return socket, closes
            if socket.close_code is not None:
                break
        closes.append(await socket.wait_closed() or 0)
    raise AssertionError(f"never resumed; closes: {closes}")


async def test_a_resume_the_store_fails_partway_leaves_no_conversation_behind(
    stalled_stack: tuple[FaultProxy, Stack],
) -> None:
    proxy, stack = stalled_stack
    service = stack.messages[0]
    api = Api(stack.auth_url, service.url)
    try:
        alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
        with_bob, with_carol = await api.direct(alice, bob), await api.direct(alice, carol)

        # The first conversation's catch-up gets no answer from the store; the other's does.
        proxy.drop_replies(finds_in("messages"))
        socket, closes = await _resumed(service.ws_url, alice.token, {with_bob: 0, with_carol: 0})
        assert proxy.dropped_replies == 1

        for sender, dm, body in ((bob, with_bob, "hi"), (carol, with_carol, "yo")):
            message = {"body": body, "client_msg_id": f"m-{body}"}
            await api.ok("POST", f"/conversations/{dm}/messages", sender, json=message)
        await socket.wait_for(lambda frames: len(socket.messages()) == 2, timeout=15)
        assert closes == [1013]  # The failed resume was retried on a new socket.
        await socket.close()
    finally:
        await api.aclose()


async def test_a_conversation_joined_live_whose_catch_up_fails_is_resumed_after_a_reconnect(
    stalled_stack: tuple[FaultProxy, Stack],
) -> None:
    proxy, stack = stalled_stack
    service = stack.messages[0]
    api = Api(stack.auth_url, service.url)
    try:
        alice, bob = await api.register("alice"), await api.register("bob")
        socket = await Socket.open(service.ws_url, alice.token, resume={})

        proxy.drop_replies(finds_in("messages"))  # Alice's catch-up in the new group.
        group = await api.group(bob, alice)
        await socket.next("conversation", timeout=10)
        assert await socket.wait_closed(timeout=15) == 1013
        assert proxy.dropped_replies == 1

        socket, _ = await _resumed(service.ws_url, alice.token, {group: 0})
        await api.ok(
            "POST",
            f"/conversations/{group}/messages",
            bob,
            json={"body": "welcome", "client_msg_id": "m-welcome"},
        )
        await socket.next("message", timeout=15)
        assert [m["body"] for m in socket.messages(group)] == ["welcome"]
        await socket.close()
    finally:
        await api.aclose()


async def test_a_lost_left_event_stops_the_leavers_socket_at_the_next_recheck(
    split_stack: tuple[FaultProxy, Stack],
) -> None:
    proxy, stack = split_stack
    first, second = stack.messages
    api = Api(stack.auth_url, first.url)
    try:
        alice, bob, carol = [await api.register(n) for n in ("alice", "bob", "carol")]
        group = await api.group(alice, bob, carol)
        sender = await Socket.open(first.ws_url, alice.token, resume={group: 0})
        leaver = await Socket.open(second.ws_url, bob.token, resume={group: 0})
        stayer = await Socket.open(second.ws_url, carol.token, resume={group: 0})
        await sender.send(send_frame(group, "m1", "before"))
        for socket in (leaver, stayer):
            await socket.next("message", timeout=10)

        # What Redis sends the second instance is lost while bob leaves on the first.
        proxy.blackhole("down")
        await api.ok("POST", f"/conversations/{group}/leave", bob)
        proxy.heal()

        left = await leaver.next("left", timeout=15)
        assert left["conversation_id"] == group
        await sender.send(send_frame(group, "m2", "after bob left"))
        await stayer.wait_for(
            lambda frames: any(
                f.get("type") == "message" and f["message"]["client_msg_id"] == "m2" for f in frames
            ),
            timeout=15,
        )
        # The same instance fans each message out to all its sockets at once: bob's
        # would have it by now. (The line that says he left may have reached him, repaired
        # before the recheck stopped his socket: it is about him.)
        said = [m["body"] for m in leaver.messages(group) if "system" not in m]
        assert said == ["before"]
        for socket in (sender, leaver, stayer):
            await socket.close()
    finally:
        await api.aclose()


async def test_a_stalled_redis_costs_a_send_its_timeout_and_nothing_is_lost(
    split_stack: tuple[FaultProxy, Stack],
) -> None:
    proxy, stack = split_stack
    healthy, stalled = stack.messages
    api = Api(stack.auth_url, healthy.url)
    try:
        alice, bob = await api.register("alice"), await api.register("bob")
        dm = await api.direct(alice, bob)
        on_stalled = await Socket.open(stalled.ws_url, alice.token, resume={dm: 0})
        on_healthy = await Socket.open(healthy.ws_url, bob.token, resume={dm: 0})

        proxy.blackhole()
        started = time.monotonic()
        await on_stalled.send(send_frame(dm, "during-1", "sent through a stalled Redis"))
        await on_stalled.next("ack", client_msg_id="during-1", timeout=15)
        assert time.monotonic() - started < REDIS_TIMEOUT_S + 2
        async with httpx.AsyncClient() as http:
            asked = time.monotonic()
            assert await _ready(http, stalled.url) == 503
            assert time.monotonic() - asked < 2.0
            await on_healthy.send(send_frame(dm, "during-2", "sent while the other stalls"))
            await on_healthy.next("ack", client_msg_id="during-2", timeout=15)

            proxy.heal()

            for _ in range(100):  # It comes back by itself...
                if await _ready(http, stalled.url) == 200:
                    break
                await asyncio.sleep(0.2)
            assert await _ready(http, stalled.url) == 200
        # ...and each side gets what the other sent meanwhile, once, in order.
        for socket in (on_stalled, on_healthy):
            await socket.wait_for(
                lambda frames: len([f for f in frames if f.get("type") == "message"]) >= 2,
                timeout=20,
            )
        await on_stalled.send(send_frame(dm, "after", "and after"))
        for socket in (on_stalled, on_healthy):
            await socket.wait_for(
                lambda frames: any(
                    f.get("type") == "message" and f["message"]["body"] == "and after"
                    for f in frames
                ),
                timeout=15,
            )
            assert [m["body"] for m in socket.messages(dm)] == [
                "sent through a stalled Redis",
                "sent while the other stalls",
                "and after",
            ]
        await on_stalled.close()
        await on_healthy.close()
    finally:
        await api.aclose()


async def _following_a_dm(api: Api, ws_url: str) -> tuple[Account, Account, str, Socket]:
    """Alice's socket follows her DM with Bob, and has had its first message (from Bob): the
    instance knows where the conversation's stream is."""
    alice, bob = await api.register("alice"), await api.register("bob")
    dm = await api.direct(alice, bob)
    socket = await Socket.open(ws_url, alice.token, resume={dm: 0})
    await api.ok(
        "POST",
        f"/conversations/{dm}/messages",
        bob,
        json={"body": "m1", "client_msg_id": "c1"},
    )
    await socket.next("message", timeout=10)
    return alice, bob, dm, socket


async def test_a_message_reordered_on_the_way_is_waited_for_and_a_lost_one_read_from_the_store(
    stalled_stack: tuple[FaultProxy, Stack], mongo_url: str, redis_url: str
) -> None:
    """Two senders' messages cross on their way to an instance all the time: the later seq
    waits for the earlier one instead of sending the instance to the store; one that pub/sub
    lost is read from the store after the wait."""
    proxy, stack = stalled_stack
    service = stack.messages[0]
    api = Api(stack.auth_url, service.url)
    store = Store.connect(mongo_url, stack.env["LETSCHAT_MONGODB_DB"])
    broker = redis.from_url(redis_url)
    try:
        _, bob, dm, socket = await _following_a_dm(api, service.ws_url)
        sender = User(**bob.user)
        stored = [
            (await store.messages.append(dm, sender, f"m{n}", f"c{n}", known_member=True))[0]
            for n in (2, 3, 4, 5)
        ]
        channel = f"{stack.env['LETSCHAT_CHANNEL_PREFIX']}conversation:{dm}"

        async def publish(index: int) -> None:
            msg = stored[index]
            envelope = Envelope("message", dm, frames.message(msg), msg.seq)
            await broker.publish(channel, envelope.encode())

        reads_before = proxy.count(finds_in("messages"))
        await publish(1)  # 3 before 2.
        await publish(0)
        await socket.wait_for(lambda _: len(socket.messages(dm)) == 3, timeout=10)
        assert proxy.count(finds_in("messages")) == reads_before

        await publish(3)  # 5; 4 never comes.
        await socket.wait_for(lambda _: len(socket.messages(dm)) == 5, timeout=10)
        assert [m["seq"] for m in socket.messages(dm)] == [1, 2, 3, 4, 5]
        assert proxy.count(finds_in("messages")) > reads_before
        await socket.close()
    finally:
        await broker.aclose()
        await store.close()
        await api.aclose()


async def test_a_newest_message_whose_publish_was_lost_arrives_with_the_sweep(
    stalled_stack: tuple[FaultProxy, Stack], mongo_url: str
) -> None:
    """No later message reveals the gap: the sweep (every 0.5 s here) finds the topic behind
    the counter it read the time before, and reads the store."""
    _, stack = stalled_stack
    service = stack.messages[0]
    api = Api(stack.auth_url, service.url)
    store = Store.connect(mongo_url, stack.env["LETSCHAT_MONGODB_DB"])
    try:
        _, bob, dm, socket = await _following_a_dm(api, service.ws_url)
        # Stored, never published: as if pub/sub had lost it.
        await store.messages.append(dm, User(**bob.user), "m2", "c2", known_member=True)
        await socket.wait_for(lambda _: len(socket.messages(dm)) == 2, timeout=10)
        assert [m["body"] for m in socket.messages(dm)] == ["m1", "m2"]
        await socket.close()
    finally:
        await store.close()
        await api.aclose()
