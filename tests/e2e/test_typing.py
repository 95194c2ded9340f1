"""Typing indicators in real browsers: shown to the others while someone types, and gone when
they send, leave the composer, or let it sit."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.conftest import People
from tests.e2e.test_chat import bubbles, chat_row, create_group, send

# Shorter than the 6 s a notice shows by itself, so only the stop can have ended it.
STOP_SHOWS_WITHIN_MS = 4000


async def test_the_others_see_who_is_typing_until_they_send_or_stop(people: People) -> None:
    alice, bob, carol = [await people.sign_up(n) for n in ("alice", "bob", "carol")]
    await create_group(alice, "Lunch", bob, carol)
    for person in (bob, carol):
        await chat_row(person.page, "Lunch").click()
        await expect(person.page.locator("#chat-title")).to_have_text("Lunch")
    composer = alice.page.get_by_placeholder("Type a message")

    await composer.press_sequentially("Noodles", delay=50)
    for person in (bob, carol):
        await expect(person.page.locator("#typing-line")).to_have_text("Alice is typing…")
    await expect(alice.page.locator("#typing-line")).to_have_text("")  # Not to herself.

    # Two at once are both named; the message from one ends theirs at once.
    await bob.page.get_by_placeholder("Type a message").press_sequentially("Su", delay=50)
    await expect(carol.page.locator("#typing-line")).to_have_text("Alice and Bob are typing…")
    await expect(alice.page.locator("#typing-line")).to_have_text("Bob is typing…")
    await composer.press("Enter")
    await expect(bubbles(carol.page, "Noodles")).to_have_count(1)
    await expect(carol.page.locator("#typing-line")).to_have_text("Bob is typing…", timeout=0)

    # Bob leaves the composer without sending: the others stop seeing him typing.
    await bob.page.locator("#chat-title").click()
    for person in (alice, carol):
        await expect(person.page.locator("#typing-line")).to_have_text(
            "", timeout=STOP_SHOWS_WITHIN_MS
        )

    # A notice nobody renews goes by itself; an edit is not typing.
    await send(carol, "ramen")
    await composer.press_sequentially("ok", delay=50)
    await expect(bob.page.locator("#typing-line")).to_have_text("Alice is typing…")
    await expect(bob.page.locator("#typing-line")).to_have_text("", timeout=10_000)
    await composer.fill("")
    await composer.press("ArrowUp")  # Edits her last message.
    await expect(alice.page.locator(".compose-mode")).to_contain_text("Editing your message")
    await expect(composer).to_have_value("Noodles")
    await composer.press_sequentially(" soup", delay=50)
    await composer.press("Enter")
    await expect(bubbles(bob.page, "Noodles soup")).to_have_count(1)
    await expect(bob.page.locator("#typing-line")).to_have_text("", timeout=0)
