"""Redis only fans out: when it goes away and comes back, every instance catches up from MongoDB."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.integration.conftest import StackFactory
from tests.support.clients import Api, Socket
from tests.support.processes import Process, free_port, start_redis, wait_until


def _ready(url: str) -> int:
    return httpx.get(f"{url}/readyz", timeout=2).status_code


async def test_a_redis_restart_loses_nothing(make_stack: StackFactory, log_dir: Path) -> None:
    port = free_port()
    redis: Process = start_redis(log_dir, port)
    try:
        stack = make_stack(redis=f"redis://127.0.0.1:{port}/0")
        api = Api(stack.auth_url, stack.messages[0].url)
        alice, bob = await api.register("alice"), await api.register("bob")
        dm = await api.direct(alice, bob)
        a = await Socket.open(stack.messages[0].ws_url, alice.token, resume={})
        b = await Socket.open(stack.messages[1].ws_url, bob.token, resume={})
        await a.send(
            {"type": "send", "conversation_id": dm, "client_msg_id": "m0", "body": "before"}
        )
        await b.wait_for(lambda _: len(b.messages(dm)) == 1)

        redis.stop()
        wait_until(lambda: _ready(stack.messages[1].url) == 503, 10, "readyz to report Redis down")
        for n in range(1, 4):
            await a.send(
                {
                    "type": "send",
                    "conversation_id": dm,
                    "client_msg_id": f"m{n}",
                    "body": f"during {n}",
                }
            )
            await a.next("ack", client_msg_id=f"m{n}")  # Stored in MongoDB, so acked.
        redis = start_redis(log_dir, port)

        await b.wait_for(lambda _: len(b.messages(dm)) == 4, timeout=20)
        wait_until(lambda: _ready(stack.messages[1].url) == 200, 20, "readyz to recover")
        await a.send(
            {"type": "send", "conversation_id": dm, "client_msg_id": "m4", "body": "after"}
        )
        await b.wait_for(lambda _: len(b.messages(dm)) == 5)
        await a.wait_for(lambda _: len(a.messages(dm)) == 5)  # The sender's own instance too.
        bodies = ["before", "during 1", "during 2", "during 3", "after"]
        assert [m["body"] for m in b.messages(dm)] == bodies
        assert [m["body"] for m in a.messages(dm)] == bodies
        await a.close()
        await b.close()
        await api.aclose()
    finally:
        redis.stop()
