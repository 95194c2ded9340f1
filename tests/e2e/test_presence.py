"""Presence in real browsers: on avatars and in a direct conversation's header, away when a
tab is hidden or unused, offline for someone who appears offline, and in a group's members."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.e2e.conftest import People
from tests.e2e.test_chat import chat_row, create_group, start_direct

HIDE = """() => {
  Object.defineProperty(document, "visibilityState", { value: "hidden", configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""
SHOW = """() => {
  Object.defineProperty(document, "visibilityState", { value: "visible", configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
}"""


def dot(page: Page, name: str):
    return chat_row(page, name).locator(".presence-dot")


async def test_presence_shows_online_away_and_offline(people: People) -> None:
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await start_direct(alice, bob)
    subtitle = alice.page.locator("#chat-subtitle")
    await expect(subtitle).to_have_text("Online")
    await expect(dot(alice.page, "Bob")).to_have_attribute("data-status", "online")
    await expect(dot(bob.page, "Alice")).to_have_attribute("aria-label", "Online")

    # Bob's tab is hidden: away; shown again: online.
    await bob.page.evaluate(HIDE)
    await expect(subtitle).to_have_text("Away")
    await expect(dot(alice.page, "Bob")).to_have_attribute("data-status", "away")
    await bob.page.evaluate(SHOW)
    await expect(subtitle).to_have_text("Online")

    # Unused for a while (here 2 s instead of 5 minutes): away, until he moves the mouse.
    await bob.page.add_init_script("window.LETSCHAT_AWAY_AFTER_MS = 2000")
    await bob.page.reload()
    await expect(bob.page.locator("#connection")).to_have_text("Connected")
    await expect(subtitle).to_have_text("Away", timeout=15_000)
    await bob.page.mouse.move(200, 200)
    await bob.page.mouse.move(220, 240)
    await expect(subtitle).to_have_text("Online")

    # He appears offline: offline for alice, whatever his tab does; then back.
    await bob.page.get_by_role("button", name="Menu").click()
    await bob.page.get_by_role("menuitem", name="Appear offline").click()
    await expect(subtitle).to_contain_text("Last seen today at", timeout=10_000)
    await expect(dot(alice.page, "Bob")).to_have_attribute("data-status", "offline")
    await bob.page.get_by_role("button", name="Menu").click()
    await expect(bob.page.get_by_role("menuitem", name="Show me as online")).to_be_visible()
    await bob.page.get_by_role("menuitem", name="Show me as online").click()
    await expect(subtitle).to_have_text("Online")


async def test_a_groups_members_show_whether_they_are_there(people: People) -> None:
    alice, bob, carol = [await people.sign_up(n) for n in ("alice", "bob", "carol")]
    await create_group(alice, "Lunch", bob, carol)
    await expect(alice.page.locator("#chat-subtitle")).to_have_text("3 members")
    await carol.page.evaluate(HIDE)
    await alice.page.get_by_role("button", name="Members").click()
    rows = alice.page.locator(".member-row")
    await expect(rows).to_have_count(3)
    for name, status, line in (
        ("Alice", "online", "Online"),
        ("Bob", "online", "Online"),
        ("Carol", "away", "Away"),
    ):
        row = rows.filter(has_text=name)
        await expect(row).to_have_attribute("data-presence", status)
        await expect(row.locator(".member-presence")).to_have_text(line)
    # Live while it is open.
    await carol.page.evaluate(SHOW)
    await expect(rows.filter(has_text="Carol")).to_have_attribute("data-presence", "online")
