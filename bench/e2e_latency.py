"""End-to-end latency: alice presses Send, how long until the message is visible in bob's page?

Runs the real stack (SecantusDB, Redis, auth, two message-service instances, the production
build of the Reflex app) and two Chromium pages, and in the same run the same figure for a raw
WebSocket client talking to the message service directly (the floor the UI adds to).

    .venv/bin/python -m bench.e2e_latency --messages 200

Only loopback is used; every loop is bounded. Target: p50 <= 100 ms, p99 <= 250 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright
from websockets.asyncio.client import connect

from tests.e2e.conftest import CHROMIUM_ARGS, PASSWORD, _reflex, _serving
from tests.support.processes import free_port, start_secantus, wait_until
from tests.support.stack import running_stack

# Records, in bob's page, when each numbered message first shows up.
OBSERVER = """
window.__seen = {};
new MutationObserver(() => {
  for (const el of document.querySelectorAll('.message .msg-body')) {
    const m = /^bench-(\\d+)$/.exec(el.textContent);
    if (m && !(m[1] in window.__seen)) {
      window.__seen[m[1]] = performance.timeOrigin + performance.now();
    }
  }
}).observe(document.body, {childList: true, subtree: true, characterData: true});
"""
# In alice's page: type the text and press Enter (the app's own key handler sends it).
PRESS_SEND = """
(text) => {
  const box = document.getElementById('composer');
  box.value = text;
  const t0 = performance.timeOrigin + performance.now();
  box.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}));
  return t0;
}
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def report(name: str, latencies: list[float], sent: int) -> str:
    if not latencies:
        return f"{name:<22} {sent:>5} {0:>9}       -       -       -"
    return (
        f"{name:<22} {sent:>5} {len(latencies):>9} {statistics.median(latencies):>7.1f} "
        f"{percentile(latencies, 99):>7.1f} {max(latencies):>7.1f}"
    )


async def register(http: httpx.AsyncClient, auth_url: str, name: str) -> dict[str, str]:
    username = f"{name}{uuid.uuid4().hex[:8]}"
    response = await http.post(
        f"{auth_url}/auth/register",
        json={"username": username, "password": PASSWORD, "display_name": name.title()},
    )
    response.raise_for_status()
    body = response.json()
    return {"id": body["user"]["id"], "token": body["access_token"], "name": name.title()}


async def open_app(page: Page, url: str, token: str, chat_name: str) -> None:
    await page.goto(f"{url}/login")
    await page.evaluate("(t) => localStorage.setItem('letschat_token', t)", token)
    await page.goto(f"{url}/")
    await page.locator("#connection").filter(has_text="Connected").wait_for(timeout=30_000)
    await page.locator(".chat-row").filter(has_text=chat_name).click()
    await page.locator("#composer").wait_for()


async def ui_latencies(url: str, alice: dict, bob: dict, count: int, gap: float) -> list[float]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        alice_page = await (await browser.new_context()).new_page()
        bob_page = await (await browser.new_context()).new_page()
        await open_app(alice_page, url, alice["token"], bob["name"])
        await open_app(bob_page, url, bob["token"], alice["name"])
        await bob_page.evaluate(OBSERVER)
        pressed: dict[int, float] = {}
        for n in range(count):
            pressed[n] = await alice_page.evaluate(PRESS_SEND, f"bench-{n}")
            await asyncio.sleep(gap)
        deadline = time.monotonic() + 30
        seen: dict[str, float] = {}
        while time.monotonic() < deadline:
            seen = await bob_page.evaluate("window.__seen")
            if len(seen) >= count:
                break
            await asyncio.sleep(0.2)
        await browser.close()
    return [seen[str(n)] - pressed[n] for n in range(count) if str(n) in seen]


async def raw_latencies(
    ws_url: str, dm: str, last_seq: int, alice: dict, bob: dict, count: int, gap: float
) -> list[float]:
    async with connect(ws_url) as sender, connect(ws_url) as receiver:
        for ws, who in ((sender, alice), (receiver, bob)):
            await ws.send(json.dumps({"type": "auth", "token": who["token"]}))
            await ws.recv()
            # Everything sent so far is old news: resume from the conversation's newest seq.
            await ws.send(json.dumps({"type": "resume", "cursors": {dm: last_seq}}))
        sent: dict[str, float] = {}
        received: dict[str, float] = {}

        async def receive() -> None:
            while len(received) < count:
                frame = json.loads(await receiver.recv())
                if frame.get("type") == "message" and frame["message"]["body"] in sent:
                    received[frame["message"]["body"]] = time.perf_counter()

        reader = asyncio.create_task(receive())
        for n in range(count):
            body = f"raw-{n}"
            sent[body] = time.perf_counter()
            await sender.send(
                json.dumps(
                    {"type": "send", "conversation_id": dm, "client_msg_id": body, "body": body}
                )
            )
            await asyncio.sleep(gap)
        try:
            await asyncio.wait_for(reader, 30)
        except TimeoutError:
            reader.cancel()
    return [(received[b] - sent[b]) * 1000 for b in sent if b in received]


async def run(count: int, gap: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="letschat-bench-"))
    secantus, mongo_url = start_secantus(work / "db", work)
    redis_url = os.environ.get("LETSCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    # A person typing is far below the send limit; the benchmark is not.
    overrides = {
        "LETSCHAT_SEND_BURST": "100000",
        "LETSCHAT_SEND_RATE_PER_SECOND": "100000",
        "LETSCHAT_FRAME_BURST": "100000",
        "LETSCHAT_FRAME_RATE_PER_SECOND": "100000",
    }
    try:
        with running_stack(mongo_url, redis_url, work, **overrides) as stack:
            port = free_port()
            web = _reflex(stack, port, work)
            web.start()
            try:
                wait_until(lambda: _serving(web, port), 300, "the Reflex app")
                async with httpx.AsyncClient() as http:
                    alice = await register(http, stack.auth_url, "alice")
                    bob = await register(http, stack.auth_url, "bob")
                    response = await http.post(
                        f"{stack.messages[0].url}/conversations/direct",
                        json={"user_id": bob["id"]},
                        headers={"Authorization": f"Bearer {alice['token']}"},
                    )
                    dm = response.json()["id"]
                ui = await ui_latencies(f"http://127.0.0.1:{port}", alice, bob, count, gap)
                async with httpx.AsyncClient() as http:
                    listed = await http.get(
                        f"{stack.messages[0].url}/conversations/{dm}",
                        headers={"Authorization": f"Bearer {bob['token']}"},
                    )
                last_seq = int(listed.json()["last_seq"])
                raw = await raw_latencies(
                    stack.messages[0].ws_url, dm, last_seq, alice, bob, count, gap
                )
            finally:
                web.stop()
    finally:
        secantus.stop()
    print(f"\nSend -> visible, {count} messages, one every {gap * 1000:.0f} ms (milliseconds)")
    print(f"{'path':<22} {'sent':>5} {'delivered':>9} {'p50':>7} {'p99':>7} {'max':>7}")
    print(report("browser -> browser", ui, count))
    print(report("raw WebSocket client", raw, count))
    print("target (browser): p50 <= 100 ms, p99 <= 250 ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--gap-ms", type=float, default=150, help="pause between sends")
    args = parser.parse_args()
    asyncio.run(run(args.messages, args.gap_ms / 1000))


if __name__ == "__main__":
    main()
