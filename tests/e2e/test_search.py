"""Message search in a real browser: "/" opens it, Enter searches, a result opens its
conversation at the message; from a conversation's header it searches only there."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.conftest import People, answer_late
from tests.e2e.test_chat import bubbles, chat_row, create_group, send, start_direct


async def test_search_finds_messages_and_opens_them_in_context(people: People) -> None:
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await create_group(alice, "Food", bob)
    await send(alice, "Pizza on Friday?")
    await start_direct(alice, bob)
    await send(alice, "Lunch at the **pizza** place")
    await send(alice, "something else entirely")
    page = bob.page
    await chat_row(page, "Alice").click()
    await expect(bubbles(page, "something else entirely")).to_have_count(1)

    # "/" from anywhere but a text box.
    await page.locator("#chat-title").click()
    await page.keyboard.press("/")
    box = page.get_by_role("textbox", name="Search")
    await expect(box).to_be_focused()
    await box.fill("PIZZA")
    await box.press("Enter")
    results = page.locator("#search-results .search-result")
    await expect(results).to_have_count(2)
    await expect(results.nth(0)).to_contain_text("Lunch at the pizza place")  # Newest first.
    await expect(results.nth(0)).to_contain_text("Alice")
    await expect(results.nth(1)).to_contain_text("Food")
    await results.nth(1).click()
    await expect(page.locator("#chat-title")).to_have_text("Food")
    await expect(page.locator(".message.flash")).to_contain_text("Pizza on Friday?")

    # In this conversation only, from its header; a search for nothing found says so.
    await page.get_by_role("button", name="Search this conversation").click()
    await expect(page.get_by_role("dialog")).to_contain_text("Search in Food")
    await box.fill("pizza")
    await box.press("Enter")
    await expect(results).to_have_count(1)
    await expect(results.first).to_contain_text("Pizza on Friday?")
    await box.fill("nowhere-to-be-found")
    await box.press("Enter")
    await expect(page.get_by_text("No messages found.")).to_be_visible()
    # A search that asks for nothing is answered with why.
    await box.fill("in:#food")
    await box.press("Enter")
    await expect(page.get_by_role("dialog")).to_contain_text("Search for some words")


async def test_what_is_typed_right_after_slash_is_searched(people: People) -> None:
    # On a busy box the dialog opens a state round trip after "/": the words and the Enter
    # typed meanwhile are searched once it has.
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "Lunch at the pizza place")
    page = bob.page
    await answer_late(page)
    await chat_row(page, "Alice").click()
    await expect(bubbles(page, "Lunch at the pizza place")).to_have_count(1)

    await page.locator("#chat-title").click()
    await page.keyboard.press("/")
    await page.keyboard.type("pizza")
    await page.keyboard.press("Enter")
    results = page.locator("#search-results .search-result")
    await expect(results).to_have_count(1)
    await expect(results.first).to_contain_text("Lunch at the pizza place")
    await expect(page.get_by_role("textbox", name="Search")).to_have_value("pizza")
