"""The path a person takes: nothing lost in the tab, and unread means unread."""

from __future__ import annotations

import asyncio
import contextlib
import re

import httpx
from playwright.async_api import Page, expect

from tests.e2e.conftest import RECORD_NOTIFICATIONS, App, Device, People, Person, watch
from tests.e2e.test_chat import bubbles, chat_row, only_conversation, send, start_direct
from tests.support.visibility import INIT_SCRIPT as VISIBILITY
from tests.support.visibility import set_hidden


async def post(http: httpx.AsyncClient, app: App, device: Device, cid: str, body: str) -> None:
    """Send as a raw client on the other instance, as someone on another device would."""
    response = await http.post(
        f"{app.stack.messages[1].url}/conversations/{cid}/messages",
        json={"body": body, "client_msg_id": body.replace(" ", "-")},
        headers={"Authorization": f"Bearer {await device.token()}"},
    )
    assert response.status_code == 201, response.text


async def unread_on_server(app: App, device: Device, *, settles_at: int) -> object:
    """The REST unread count of the user's one conversation, once it is `settles_at` (or
    whatever it is after 10 s)."""
    unread = None
    for _ in range(100):
        unread = (await only_conversation(app, await device.token()))["unread"]
        if unread == settles_at:
            break
        await asyncio.sleep(0.1)
    return unread


async def shown_bodies(page: Page) -> list[str]:
    return await page.locator(".message .msg-body").all_inner_texts()


async def dm_with_chat_open(people: People, app: App) -> tuple[Person, Person, Device, str]:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "hello")
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "hello")).to_have_count(1)
    device = Device(app, alice)
    cid = str((await only_conversation(app, await device.token()))["id"])
    return alice, bob, device, cid


async def test_reloading_while_messages_arrive_shows_every_message_once_in_order(
    people: People, app: App
) -> None:
    _, bob, device, cid = await dm_with_chat_open(people, app)
    sent: list[str] = []
    reloading = True

    async def keep_sending() -> None:
        async with httpx.AsyncClient() as http:
            while reloading and len(sent) < 180:
                body = f"r-{len(sent):03d}"
                await post(http, app, device, cid, body)
                sent.append(body)
                await asyncio.sleep(0.1)

    sender = asyncio.create_task(keep_sending())
    try:
        reloads = 0
        # At least 20 reloads, and as many as it takes for 40 messages to arrive among them.
        while reloads < 20 or (len(sent) <= 40 and reloads < 60):
            await bob.page.reload()
            await expect(bob.page.locator("#connection")).to_have_text("Connected")
            await expect(bob.page.locator("#chat-title")).to_have_text("Alice")
            reloads += 1
    finally:
        reloading = False
        await sender
    assert len(sent) > 40, "the sender should have kept sending through the reloads"

    await expect(bubbles(bob.page, sent[-1])).to_have_count(1)
    await expect(bob.page.locator(".message .msg-body")).to_have_count(1 + len(sent))
    assert await shown_bodies(bob.page) == ["hello", *sent]


async def test_a_dropped_page_connection_catches_up_and_sends_what_was_typed_offline(
    people: People, app: App
) -> None:
    alice, bob, device, cid = await dm_with_chat_open(people, app)

    await bob.context.set_offline(True)
    await expect(bob.page.locator("#connection")).to_have_text("Offline")
    async with httpx.AsyncClient() as http:
        for n in range(5):
            await post(http, app, device, cid, f"while offline {n}")
    await send(bob, "typed offline")
    waiting = bob.page.locator('.message[data-status="waiting"]').filter(has_text="typed offline")
    await expect(waiting).to_have_text(re.compile("Waiting for connection"))
    await bob.context.set_offline(False)

    await expect(bob.page.locator("#connection")).to_have_text("Connected")
    # Chromium reports each attempt to reconnect while offline; those are expected here.
    bob.console_errors[:] = [e for e in bob.console_errors if "ERR_INTERNET_DISCONNECTED" not in e]
    await expect(bubbles(alice.page, "typed offline")).to_have_count(1)
    await expect(bob.page.locator(".message.mine").last).to_have_attribute("data-status", "sent")
    await expect(waiting).to_have_count(0)
    expected = ["hello", *(f"while offline {n}" for n in range(5)), "typed offline"]
    await expect(bob.page.locator(".message .msg-body")).to_have_count(len(expected))
    assert await shown_bodies(bob.page) == expected


async def test_a_tab_restored_after_sleep_shows_what_came_meanwhile_once_in_order(
    people: People, app: App
) -> None:
    _, bob, device, cid = await dm_with_chat_open(people, app)
    cdp = await bob.context.new_cdp_session(bob.page)

    # The lid closes: no script runs in the page and the network is gone.
    await cdp.send("Page.setWebLifecycleState", {"state": "frozen"})
    await bob.context.set_offline(True)
    async with httpx.AsyncClient() as http:
        for n in range(10):
            await post(http, app, device, cid, f"while asleep {n}")
    # It opens again.
    await bob.context.set_offline(False)
    await cdp.send("Page.setWebLifecycleState", {"state": "active"})

    bob.console_errors[:] = [e for e in bob.console_errors if "ERR_INTERNET_DISCONNECTED" not in e]
    await expect(bob.page.locator("#connection")).to_have_text("Connected")
    expected = ["hello", *(f"while asleep {n}" for n in range(10))]
    await expect(bubbles(bob.page, "while asleep 9")).to_have_count(1)
    await expect(bob.page.locator(".message .msg-body")).to_have_count(len(expected))
    assert await shown_bodies(bob.page) == expected
    # And it goes on live.
    async with httpx.AsyncClient() as http:
        await post(http, app, device, cid, "good morning")
    await expect(bubbles(bob.page, "good morning")).to_have_count(1)
    assert await shown_bodies(bob.page) == [*expected, "good morning"]


async def test_a_hidden_tab_counts_the_open_conversation_as_unread_until_it_is_back(
    people: People, app: App
) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await bob.context.add_init_script(VISIBILITY)
    await bob.page.reload()
    await start_direct(alice, bob)
    await send(alice, "hello")
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "hello")).to_have_count(1)
    device = Device(app, bob)

    await set_hidden(bob.page, True)
    await send(alice, "while you were away")

    page = bob.page
    await expect(bubbles(page, "while you were away")).to_have_count(1)
    await expect(chat_row(page, "Alice").locator(".unread-badge")).to_have_text("1")
    await expect(page).to_have_title("(1) Let's Chat")
    await expect(page.locator("#first-unread")).to_have_count(1)
    await expect(page.locator("[data-sonner-toast]").filter(has_text="away")).to_have_count(1)
    # Reads are stored in rounds (the message service batches them): wait for Bob's first one.
    assert await unread_on_server(app, device, settles_at=1) == 1

    await set_hidden(page, False)  # Focus comes back: now it is read, here and on the server.
    await expect(chat_row(page, "Alice").locator(".unread-badge")).to_have_count(0)
    await expect(page).to_have_title("Let's Chat")
    await expect(page.locator("[data-sonner-toast]").filter(has_text="away")).to_have_count(0)
    assert await unread_on_server(app, device, settles_at=0) == 0


async def test_two_hidden_tabs_raise_one_notification_and_a_read_elsewhere_clears_toasts(
    people: People, app: App
) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await bob.context.grant_permissions(["notifications"], origin=app.url)
    await bob.context.add_init_script(VISIBILITY)
    await bob.context.add_init_script(RECORD_NOTIFICATIONS)
    await bob.page.reload()
    await bob.page.get_by_role("button", name="Menu").click()
    await bob.page.get_by_role("menuitem", name="Turn on notifications").click()
    await bob.page.keyboard.press("Escape")
    second = await bob.context.new_page()
    watch(bob, second)
    await second.goto(f"{app.url}/")
    await expect(second.locator("#connection")).to_have_text("Connected")
    await bob.page.get_by_role("button", name="Menu").click()  # The choice reached both tabs:
    await expect(bob.page.get_by_role("menuitem", name="Turn off notifications")).to_be_visible()
    await bob.page.keyboard.press("Escape")
    for page in (bob.page, second):
        await set_hidden(page, True)
    await start_direct(alice, bob)

    await send(alice, "ping once")
    for page in (bob.page, second):
        toast = page.locator("[data-sonner-toast]").filter(has_text="ping once")
        await expect(toast).to_have_count(1)
        await page.wait_for_function("window.letschat.notifyChecks >= 1")
    counts = [len(await page.evaluate("window.__notifications")) for page in (bob.page, second)]
    assert sorted(counts) == [0, 1]

    # Bob reads it in a third tab: the toasts in the two hidden tabs go away.
    third = await bob.context.new_page()
    watch(bob, third)
    await third.goto(f"{app.url}/")
    await chat_row(third, "Alice").click()
    await expect(bubbles(third, "ping once")).to_have_count(1)
    for page in (bob.page, second):
        toast = page.locator("[data-sonner-toast]").filter(has_text="ping once")
        await expect(toast).to_have_count(0)
        await expect(chat_row(page, "Alice").locator(".unread-badge")).to_have_count(0)
    with contextlib.suppress(Exception):
        await third.close()
