"""What scripts/container-test checks on the running compose stack, from inside its network
namespace, through the load balancer as users reach it:

1. a chat between two sockets that landed on different message replicas;
2. the replica holding one of them killed: that client resumes on the other, missing nothing
   and getting nothing twice;
3. a browser signs up and chats through the load balancer;
4. the Reflex replica holding that browser's tab killed: the tab reconnects to the other, still
   signed in, and shows what was sent meanwhile.

Replicas are told apart by their own /metrics (sockets open), read on their container
addresses, which only the private network reaches. Every wait is bounded.

    python checks.py --base http://localhost:8080 --project letschat
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Locator, Page, async_playwright, expect
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CHROMIUM_ARGS  # noqa: E402

# Debian's Chromium here; "playwright" for the one Playwright downloads (the GitHub workflow).
CHROMIUM = os.environ.get("CHECKS_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "container test password"  # noqa: S105 - a throwaway account in a throwaway stack
WAIT_S = 60.0


def step(text: str) -> None:
    print(f"ok    {text}", flush=True)


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out: {what}")
        await asyncio.sleep(0.25)


def docker(*args: str) -> str:
    done = subprocess.run(
        ["docker", *args], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


def replicas(project: str, service: str) -> dict[str, str]:
    """Running containers of a compose service: name -> address on the compose network."""
    names = docker(
        "ps",
        "--filter",
        f"label=com.docker.compose.project={project}",
        "--filter",
        f"label=com.docker.compose.service={service}",
        "--format",
        "{{.Names}}",
    ).split()
    found = {}
    for name in names:
        networks = json.loads(
            docker("inspect", "--format", "{{json .NetworkSettings.Networks}}", name)
        )
        found[name] = next(iter(networks.values()))["IPAddress"]
    return found


async def gauge(address: str, port: int, name: str) -> float:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(f"http://{address}:{port}/metrics")
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return 0.0


class Client:
    """Someone on a raw socket through the load balancer."""

    def __init__(self, base: str, account: dict[str, Any]) -> None:
        self.base = base
        self.account = account
        self.ws: ClientConnection | None = None
        self.bodies: list[str] = []
        self.cursor = 0
        self._reader: asyncio.Task[None] | None = None

    @property
    def token(self) -> str:
        return str(self.account["access_token"])

    async def open(self, conversation_id: str) -> None:
        url = self.base.replace("http", "ws", 1) + "/ws"
        self.ws = await connect(url, open_timeout=10, origin=self.base)  # type: ignore[arg-type]
        await self.ws.send(json.dumps({"type": "auth", "token": self.token}))
        await self._expect("ready")
        cursors = {conversation_id: self.cursor} if self.cursor else {}
        await self.ws.send(json.dumps({"type": "resume", "cursors": cursors}))
        self._reader = asyncio.create_task(self._read())

    async def _expect(self, kind: str) -> dict[str, Any]:
        assert self.ws is not None
        async with asyncio.timeout(10):
            while True:
                frame = json.loads(await self.ws.recv())
                if frame["type"] == kind:
                    return dict(frame)

    async def _read(self) -> None:
        assert self.ws is not None
        with contextlib.suppress(ConnectionClosed):
            await self._frames()

    async def _frames(self) -> None:
        assert self.ws is not None
        async for raw in self.ws:
            frame = json.loads(raw)
            if frame["type"] == "message":
                message = frame["message"]
                if message["seq"] > self.cursor:
                    self.cursor = message["seq"]
                self.bodies.append(message["body"])

    async def send(self, conversation_id: str, body: str) -> None:
        assert self.ws is not None
        frame = {
            "type": "send",
            "conversation_id": conversation_id,
            "client_msg_id": uuid.uuid4().hex,
            "body": body,
        }
        await self.ws.send(json.dumps(frame))

    async def closed(self) -> bool:
        return self._reader is not None and self._reader.done()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            self._reader.cancel()


async def register(http: httpx.AsyncClient, base: str, name: str) -> dict[str, Any]:
    response = await http.post(
        f"{base}/auth/register",
        json={"username": f"{name}{uuid.uuid4().hex[:8]}", "password": PASSWORD},
    )
    response.raise_for_status()
    return dict(response.json())


async def sockets_on(project: str) -> dict[str, float]:
    return {
        name: await gauge(address, 8002, "letschat_ws_connections")
        for name, address in replicas(project, "message").items()
    }


async def chat_across_replicas_and_survive_a_kill(base: str, project: str) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        alice_account = await register(http, base, "alice")
        bob_account = await register(http, base, "bob")
        created = await http.post(
            f"{base}/api/conversations/direct",
            json={"user_id": bob_account["user"]["id"]},
            headers={"Authorization": f"Bearer {alice_account['access_token']}"},
        )
        created.raise_for_status()
        dm = created.json()["id"]
    alice, bob = Client(base, alice_account), Client(base, bob_account)
    before = await sockets_on(project)
    await alice.open(dm)
    await until("alice's socket counted", lambda: _moved(project, before, 1))
    alice_on = next(n for n, v in (await sockets_on(project)).items() if v > before.get(n, 0))
    for _ in range(6):  # The load balancer takes turns; a few tries land on the other one.
        await bob.open(dm)
        now = await sockets_on(project)
        others = [n for n in now if n != alice_on and now[n] > before.get(n, 0)]
        if others:
            bob_on = others[0]
            break
        await bob.close()
        await until("bob's socket gone", lambda: _moved(project, before, 1))
    else:
        raise AssertionError("bob's socket never landed on the other message replica")
    await alice.send(dm, "hello across replicas")
    await until("bob got alice's message", _has(bob, "hello across replicas"))
    step(f"a chat between sockets on {alice_on} and {bob_on}")

    docker("kill", bob_on)
    await until("bob's socket closed with its replica", bob.closed)
    missed = [f"while you were away {n}" for n in range(3)]
    for body in missed:
        await alice.send(dm, body)
    await bob.open(dm)  # Through the load balancer: to the replica that is left.
    await until("bob resumed what he missed", _has(bob, missed[-1]))
    expected = ["hello across replicas", *missed]
    assert bob.bodies == expected, bob.bodies
    step(f"{bob_on} killed: bob resumed on {alice_on}, nothing lost or doubled")
    await alice.close()
    await bob.close()
    docker("start", bob_on)  # As the orchestrator would restart it.


async def _moved(project: str, before: dict[str, float], by: int) -> bool:
    now = await sockets_on(project)
    return sum(now.values()) - sum(before.values()) >= by


def _has(client: Client, body: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return body in client.bodies

    return check


async def sign_up(page: Page, base: str, name: str) -> str:
    """Sign up in the browser; the username."""
    username = f"{name}{uuid.uuid4().hex[:8]}"
    await page.goto(f"{base}/login")
    await page.get_by_role("button", name="Create an account").click()
    await page.get_by_label("Username").fill(username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.locator("#connection")).to_have_text("Connected", timeout=30_000)
    return username


def in_log(page: Page, text: str) -> Locator:
    """A message in the open conversation (not its popup or its sidebar preview)."""
    return page.get_by_role("log").get_by_text(text)


async def browser_session_survives_a_reflex_replica(base: str, project: str) -> None:
    killed: list[str] = []
    async with async_playwright() as playwright:
        executable = None if CHROMIUM == "playwright" else CHROMIUM
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            page = await (await browser.new_context()).new_page()
            carol = await sign_up(page, base, "carol")
            step("a browser signed up through the load balancer and connected")
            async with httpx.AsyncClient(timeout=30) as http:
                dave = await register(http, base, "dave")
                people = await http.get(
                    f"{base}/users",
                    params={"q": carol},
                    headers={"Authorization": f"Bearer {dave['access_token']}"},
                )
                (carol_id,) = [p["id"] for p in people.json() if p["username"] == carol]
                created = await http.post(
                    f"{base}/api/conversations/direct",
                    json={"user_id": carol_id},
                    headers={"Authorization": f"Bearer {dave['access_token']}"},
                )
                dm = created.json()["id"]
                headers = {"Authorization": f"Bearer {dave['access_token']}"}
                sent = await http.post(
                    f"{base}/api/conversations/{dm}/messages",
                    json={"body": "before the replica goes", "client_msg_id": "c1"},
                    headers=headers,
                )
                sent.raise_for_status()
                row = page.locator(".chat-row").filter(has_text=dave["user"]["username"])
                await row.click()
                await expect(in_log(page, "before the replica goes")).to_be_visible()
                holders = {
                    name: await gauge(address, 8000, "letschat_web_live_sockets")
                    for name, address in replicas(project, "frontend").items()
                }
                holding = [name for name, count in holders.items() if count >= 1]
                assert len(holders) == 2, holders
                assert len(holding) == 1, holders
                docker("kill", holding[0])
                killed.append(holding[0])
                sent = await http.post(
                    f"{base}/api/conversations/{dm}/messages",
                    json={"body": "while the replica was gone", "client_msg_id": "c2"},
                    headers=headers,
                )
                sent.raise_for_status()
            await expect(in_log(page, "while the replica was gone")).to_be_visible(timeout=60_000)
            # The tab's events (and its stream from the message service) are the other
            # replica's now.
            (survivor,) = [n for n in replicas(project, "frontend") if n != holding[0]]
            address = replicas(project, "frontend")[survivor]
            assert await gauge(address, 8000, "letschat_web_live_sockets") >= 1
            await expect(page.locator("#connection")).to_have_text("Connected")
            await expect(in_log(page, "before the replica goes")).to_be_visible()
            step(f"{holding[0]} killed: the tab reconnected to the other replica, signed in")

            # And carol logs in anew, in another browser, through the load balancer.
            other = await (await browser.new_context()).new_page()
            await other.goto(f"{base}/login")
            await other.get_by_label("Username").fill(carol)
            await other.get_by_label("Password").fill(PASSWORD)
            await other.get_by_role("button", name="Log in").click()
            await expect(other.locator("#connection")).to_have_text("Connected", timeout=30_000)
            await expect(other.locator(".chat-row").filter(has_text="dave")).to_have_count(1)
            step("a browser logged in through the load balancer and found the conversation")
        finally:
            await browser.close()
            for name in killed:  # As the orchestrator would restart it.
                docker("start", name)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="http://localhost:8080")
    parser.add_argument("--project", default="letschat")
    args = parser.parse_args()
    await chat_across_replicas_and_survive_a_kill(args.base, args.project)
    await browser_session_survives_a_reflex_replica(args.base, args.project)
    print("all container checks passed", flush=True)


if __name__ == "__main__":
    asyncio.run(main())
