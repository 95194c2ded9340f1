"""The web app backend's /metrics moves as people chat: their tabs' sockets to the message
service, the frames through them."""

from __future__ import annotations

import httpx
from playwright.async_api import expect
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import App, People
from tests.e2e.test_chat import bubbles, chat_row, send, start_direct


async def samples(app: App) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with httpx.AsyncClient(timeout=10) as http:
        response = await http.get(f"{app.url}/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


async def test_the_web_backend_counts_its_tabs_sockets_and_frames(people: People, app: App) -> None:
    before = await samples(app)
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "counted")
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "counted")).to_have_count(1)
    after = await samples(app)

    live = ("letschat_web_live_sockets", ())
    assert after[live] >= before.get(live, 0) + 2  # alice's and bob's tabs.
    message = ("letschat_web_frames_received_total", (("type", "message"),))
    assert after[message] >= before.get(message, 0) + 2  # The message, in both tabs.
    ack = ("letschat_web_frames_received_total", (("type", "ack"),))
    assert after[ack] >= before.get(ack, 0) + 1
