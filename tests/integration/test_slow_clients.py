"""Clients that send slowly are answered 408 and dropped, on every service: one that sends
nothing, one that trickles a request's headers, one that never finishes a body. A socket that
completed its handshake is not hurried. And what every answer says about itself."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from tests.integration.conftest import StackFactory
from tests.support.clients import Api, Socket
from tests.support.stack import Stack

HEAD_SECONDS = 1.0
BODY_SECONDS = 1.0
# However slow the box, a deadline of a second is kept within this.
SLACK_SECONDS = 3.0
# A trickling client gives up by itself after this: the bound of every loop below.
PATIENCE_SECONDS = 12.0


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    return make_stack(
        instances=1,
        LETSCHAT_REQUEST_HEAD_TIMEOUT_SECONDS=str(HEAD_SECONDS),
        LETSCHAT_REQUEST_BODY_TIMEOUT_SECONDS=str(BODY_SECONDS),
    )


def _urls(stack: Stack) -> list[tuple[str, int]]:
    return [("auth", stack.auth.port), ("message", stack.messages[0].port)]


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection (bounded by PATIENCE)."""
    async with asyncio.timeout(PATIENCE_SECONDS):
        return await reader.read()


async def test_a_client_that_sends_nothing_is_dropped(stack: Stack) -> None:
    for name, port in _urls(stack):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        answer = await _answer(reader)
        assert answer.startswith(b"HTTP/1.1 408"), (name, answer)
        assert time.monotonic() - started < HEAD_SECONDS + SLACK_SECONDS, name
        writer.close()


async def test_headers_trickled_past_the_deadline_are_answered_408(stack: Stack) -> None:
    for name, port in _urls(stack):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        closed = asyncio.ensure_future(_answer(reader))
        for line in range(int(PATIENCE_SECONDS / 0.25)):  # A header every 250 ms, never the end.
            if closed.done():
                break
            writer.write(f"X-Slow-{line}: yes\r\n".encode())
            await asyncio.wait({closed}, timeout=0.25)
        answer = await closed
        elapsed = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), (name, answer)
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body["code"] == "request_timeout", name
        assert elapsed < HEAD_SECONDS + SLACK_SECONDS, (name, elapsed)
        writer.close()


async def test_a_body_that_never_ends_is_answered_408(stack: Stack) -> None:
    for name, port, path in (
        ("auth", stack.auth.port, "/auth/login"),
        ("message", stack.messages[0].port, "/conversations/direct"),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            'Content-Length: 100\r\n\r\n{"username": '.encode()
        )
        started = time.monotonic()
        answer = await _answer(reader)
        assert b" 408 " in answer.split(b"\r\n", 1)[0], (name, answer)
        body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
        assert body == {
            "code": "request_timeout",
            "message": "The request was not sent in time; send it again.",
        }, name
        assert time.monotonic() - started < BODY_SECONDS + SLACK_SECONDS, name
        writer.close()


async def test_requests_in_time_and_open_sockets_are_left_alone(stack: Stack) -> None:
    api = Api(stack.auth_url, stack.messages[0].url)
    try:
        alice = await api.register("alice")
        socket = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
        reader, writer = await asyncio.open_connection("127.0.0.1", stack.messages[0].port)
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        writer.write(request)
        assert (await reader.readuntil(b'"ok"}')).startswith(b"HTTP/1.1 200")
        # Past both deadlines: the socket still answers, and the kept-alive connection
        # serves its next request.
        await asyncio.sleep(HEAD_SECONDS + BODY_SECONDS)
        await socket.send({"type": "ping"})
        await socket.next("pong")
        writer.write(request)
        assert (await reader.readuntil(b'"ok"}')).startswith(b"HTTP/1.1 200")
        writer.close()
        await socket.close()
    finally:
        await api.aclose()


async def test_every_answer_says_nosniff_and_json_can_never_run_as_a_page(stack: Stack) -> None:
    async with httpx.AsyncClient() as http:
        for url in (stack.auth_url, stack.messages[0].url):
            for path, page in (("/healthz", False), ("/conversations", False), ("/docs", True)):
                response = await http.get(f"{url}{path}")
                assert response.headers["x-content-type-options"] == "nosniff", (url, path)
                policy = response.headers.get("content-security-policy", "")
                assert ("default-src 'none'" in policy) is not page, (url, path, policy)
                if not page:
                    assert "frame-ancestors 'none'" in policy
