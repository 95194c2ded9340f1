"""The web app backend's /metrics moves as people chat: their tabs' sockets to the message
service, the frames through them."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.conftest import App, People
from tests.e2e.test_chat import bubbles, chat_row, send, start_direct
from tests.support.metrics import scrape


async def test_the_web_backend_counts_its_tabs_sockets_and_frames(people: People, app: App) -> None:
    before = await scrape(f"{app.url}/metrics")
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "counted")
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "counted")).to_have_count(1)
    after = await scrape(f"{app.url}/metrics")

    live = ("letschat_web_live_sockets", ())
    assert after[live] >= before.get(live, 0) + 2  # alice's and bob's tabs.
    message = ("letschat_web_frames_received_total", (("type", "message"),))
    assert after[message] >= before.get(message, 0) + 2  # The message, in both tabs.
    ack = ("letschat_web_frames_received_total", (("type", "ack"),))
    assert after[ack] >= before.get(ack, 0) + 1
