"""A store failure gets one answer, whichever edge meets it: REST's 503, the socket's error frame
and its 1013 close all say `service_unavailable` in the same words (one mapping, `web.as_app_error`,
not one per edge). The failures are single replies the fault proxy throws away, so each costs
the stack's MongoDB timeout and nothing else fails meanwhile."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.integration.test_faults import (  # noqa: F401 - fixtures, found by name
    mongo_proxy,
    stalled_stack,
)
from tests.support.clients import Api, Socket, assert_error
from tests.support.faults import FaultProxy
from tests.support.stack import Stack

# Long enough for a dropped reply to time out (test_faults gives the stack 2 s).
ANSWER_WITHIN_S = 15


def looks_up_one(collection: str) -> Callable[[dict[str, Any]], bool]:
    """A `drop_replies` match: a `find_one` in `collection` (what a membership check and a
    session lookup are), not a batch lookup a periodic job might make meanwhile."""
    return lambda command: command.get("find") == collection and command.get("limit") == 1


def answer(frame: dict[str, Any]) -> dict[str, Any]:
    """What an error frame says, without what it echoes of the frame it answers."""
    return {"code": frame["code"], "message": frame["message"]}


async def test_a_store_failure_is_service_unavailable_on_rest_and_the_socket_alike(
    stalled_stack: tuple[FaultProxy, Stack],  # noqa: F811
) -> None:
    proxy, stack = stalled_stack
    service = stack.messages[0]
    api = Api(stack.auth_url, service.url)
    try:
        alice, bob = await api.register("alice"), await api.register("bob")
        dm = await api.direct(alice, bob)
        # Signed in, not resumed: its `read` takes the path REST takes, a membership check.
        socket = await Socket.open(service.ws_url, bob.token)

        proxy.drop_replies(looks_up_one("conversations"))
        response = await api.call("POST", f"/conversations/{dm}/read", bob, json={"seq": 0})
        rest = assert_error(response, 503, "service_unavailable")
        assert set(rest) == {"code", "message"}

        proxy.drop_replies(looks_up_one("conversations"))
        await socket.send({"type": "read", "conversation_id": dm, "seq": 0})
        error = await socket.next("error", frame_type="read", timeout=ANSWER_WITHIN_S)
        assert answer(error) == rest
        assert error["conversation_id"] == dm

        # Checking a token: REST's bearer, an open socket's new `auth`, a new socket's first.
        proxy.drop_replies(looks_up_one("sessions"))
        response = await api.call("GET", "/conversations", bob)
        assert assert_error(response, 503, "service_unavailable") == rest

        proxy.drop_replies(looks_up_one("sessions"))
        await socket.send({"type": "auth", "token": bob.token})
        error = await socket.next("error", frame_type="auth", timeout=ANSWER_WITHIN_S)
        assert answer(error) == rest

        proxy.drop_replies(looks_up_one("sessions"))
        fresh = await Socket.open(service.ws_url)
        await fresh.send({"type": "auth", "token": bob.token})
        assert await fresh.wait_closed(timeout=ANSWER_WITHIN_S) == 1013
        assert fresh.ws.close_reason == rest["message"]
        assert proxy.dropped_replies == 5

        # Nothing stays broken: the same socket and REST are answered as usual again.
        await socket.send({"type": "read", "conversation_id": dm, "seq": 0})
        await socket.send({"type": "ping"})
        await socket.next("pong", timeout=ANSWER_WITHIN_S)
        assert [f["frame_type"] for f in socket.of_type("error")] == ["read", "auth"]
        await api.ok("POST", f"/conversations/{dm}/read", bob, json={"seq": 0})
        await socket.close()
    finally:
        await api.aclose()


async def test_a_socket_that_left_before_the_store_answered_its_auth_leaves_no_traceback(
    stalled_stack: tuple[FaultProxy, Stack],  # noqa: F811
) -> None:
    proxy, stack = stalled_stack
    service = stack.messages[0]
    api = Api(stack.auth_url, service.url)
    try:
        alice = await api.register("alice")
        proxy.blackhole()
        gone = await Socket.open(service.ws_url)
        await gone.send({"type": "auth", "token": alice.token})
        await gone.close()  # As a client whose handshake timed out does.
        gave_up = "store unavailable on a socket's auth frame"
        for _ in range(ANSWER_WITHIN_S * 10):  # The service gives up on the store...
            if gave_up in service.log():
                break
            await asyncio.sleep(0.1)
        assert gave_up in service.log()
        proxy.heal()
        # ...and, before it serves the next socket, has closed that one, quietly.
        socket = await Socket.open(service.ws_url, alice.token, resume={})
        await socket.close()
        assert stack.bad_log_lines() == []
    finally:
        await api.aclose()
