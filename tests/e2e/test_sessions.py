"""Sessions that last: access tokens of seconds (conftest.ACCESS_TOKEN_SECONDS) renew unseen,
and ending a session from another device says so on the first."""

from __future__ import annotations

import asyncio
import re
import time

from playwright.async_api import Page, expect

from tests.e2e.conftest import ACCESS_TOKEN_SECONDS, PASSWORD, People, Person
from tests.e2e.test_chat import bubbles, chat_row, send, start_direct

# Records every text the connection badge shows, from the moment it is installed.
WATCH_BADGE = """
() => {
  window.__badges = [];
  const badge = document.querySelector("#connection");
  const note = () => window.__badges.push(badge.innerText);
  new MutationObserver(note).observe(badge, {subtree: true, childList: true, characterData: true});
}
"""


async def watch_badge(page: Page) -> None:
    await expect(page.locator("#connection")).to_have_text("Connected")
    await page.evaluate(WATCH_BADGE)


async def badges(page: Page) -> list[str]:
    return [str(text) for text in await page.evaluate("window.__badges")]


async def stored_token(person: Person) -> str:
    return str(await person.page.evaluate("localStorage.getItem('letschat_token')"))


async def log_in(person: Person, url: str) -> None:
    page = person.page
    await page.goto(f"{url}/login")
    await page.get_by_label("Username").fill(person.username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#connection")).to_have_text("Connected")


async def sign_up_as(person: Person, url: str) -> None:
    page = person.page
    await page.goto(f"{url}/login")
    await page.get_by_role("button", name="Create an account").click()
    await page.get_by_label("Username").fill(person.username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.locator("#connection")).to_have_text("Connected")


async def open_settings(page: Page) -> None:
    await page.get_by_role("button", name="Menu").click()
    await page.get_by_role("menuitem", name="Sessions and password").click()
    await expect(page.get_by_role("dialog")).to_be_visible()


async def test_chatting_across_several_token_expiries_and_a_reload_is_never_interrupted(
    people: People,
) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "m-00")
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "m-00")).to_have_count(1)
    for person in (alice, bob):
        await watch_badge(person.page)
    seen = {person.name: {await stored_token(person)} for person in (alice, bob)}
    sent = ["m-00"]
    ends = time.monotonic() + 3.5 * ACCESS_TOKEN_SECONDS  # Three renewals at least.

    while time.monotonic() < ends:
        await asyncio.sleep(0.7)  # Pacing: a conversation, not a flood (the view keeps ~200).
        body = f"m-{len(sent):02d}"
        await send(alice if len(sent) % 3 else bob, body)
        sent.append(body)
        for person in (alice, bob):
            await expect(bubbles(person.page, body)).to_have_count(1)
            seen[person.name].add(await stored_token(person))
        if len(sent) == 8:  # Bob reloads mid-conversation: still signed in, nothing lost.
            shown_before = await badges(bob.page)
            await bob.page.reload()
            await watch_badge(bob.page)
            await expect(bob.page.locator("#chat-title")).to_have_text("Alice")
            assert shown_before == [], shown_before

    for person in (alice, bob):
        page = person.page
        assert "/login" not in page.url
        assert await badges(page) == [], f"{person.name}'s badge: {await badges(page)}"
        assert len(seen[person.name]) >= 3, f"{person.name}: {len(seen[person.name])} tokens"
        await expect(page.locator(".message .msg-body")).to_have_count(len(sent))
        assert await page.locator(".message .msg-body").all_inner_texts() == sent
        await expect(page.locator('.message[data-status="failed"]')).to_have_count(0)
        toasts = page.locator("[data-sonner-toast]").filter(has_text=re.compile("log in", re.I))
        await expect(toasts).to_have_count(0)


async def test_ending_a_session_from_another_device_sends_it_to_the_login_page(
    people: People,
) -> None:
    laptop = await people.sign_up("alice")
    phone = await people.open("alice")
    phone.username = laptop.username
    await log_in(phone, people.app.url)

    await open_settings(phone.page)
    rows = phone.page.locator(".device-row")
    await expect(rows).to_have_count(2)
    await expect(rows.filter(has_text="This device")).to_have_count(1)
    await (
        rows.filter(has_not_text="This device")
        .get_by_role("button", name=re.compile("Log out"))
        .click()
    )

    await expect(laptop.page).to_have_url(re.compile(r"/login/?$"))
    await expect(
        laptop.page.get_by_text("This session was ended from another of your devices.")
    ).to_be_visible()
    await expect(rows).to_have_count(1)
    await expect(phone.page.get_by_text("That device was logged out.")).to_be_visible()
    # The phone itself goes on.
    await phone.page.keyboard.press("Escape")
    await expect(phone.page.locator("#connection")).to_have_text("Connected")


async def test_a_new_password_logs_out_every_other_device(people: People) -> None:
    laptop = await people.sign_up("alice")
    phone = await people.open("alice")
    phone.username = laptop.username
    await log_in(phone, people.app.url)
    await open_settings(phone.page)
    page = phone.page

    await page.get_by_label("Current password").fill("not my password")
    await page.get_by_label("New password", exact=True).fill("a brand new passphrase")
    await page.get_by_label("Repeat the new password").fill("a brand new passphrase")
    await page.get_by_role("button", name="Change password").click()
    await expect(page.get_by_text("That is not your current password.")).to_be_visible()
    await expect(laptop.page.locator("#connection")).to_have_text("Connected")

    await page.get_by_label("Current password").fill(PASSWORD)
    await page.get_by_role("button", name="Change password").click()

    await expect(page.get_by_text("1 other device was logged out.")).to_be_visible()
    await expect(laptop.page).to_have_url(re.compile(r"/login/?$"))
    await expect(laptop.page.get_by_text("Your password was changed")).to_be_visible()
    await expect(page.locator(".device-row")).to_have_count(1)


async def test_the_sessions_list_shows_where_each_browser_really_is(people: People) -> None:
    # Each browser reaches the Reflex backend through a load balancer that reports its address;
    # the backend passes it on, and the auth service believes it from the backend only.
    laptop = await people.open("alice")
    await laptop.context.set_extra_http_headers({"X-Forwarded-For": "198.51.100.7"})
    await sign_up_as(laptop, people.app.url)
    phone = await people.open("alice")
    phone.username = laptop.username
    await phone.context.set_extra_http_headers({"X-Forwarded-For": "2001:db8:4242::9"})
    await log_in(phone, people.app.url)

    await open_settings(phone.page)

    rows = phone.page.locator(".device-row")
    await expect(rows.filter(has_text="This device")).to_contain_text("near 2001:db8:4242::/48")
    await expect(rows.filter(has_not_text="This device")).to_contain_text("near 198.51.100.0/24")
