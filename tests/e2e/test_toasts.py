"""Popups without noise: one per conversation, counting what waits, below the headers."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.conftest import People
from tests.e2e.test_chat import chat_row, create_group, send, start_direct


async def test_messages_from_one_conversation_share_one_popup(people: People) -> None:
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await create_group(bob, "Elsewhere", alice)
    await start_direct(alice, bob)
    await chat_row(bob.page, "Elsewhere").click()  # Bob looks at another conversation.
    for text in ("one", "two", "three"):
        await send(alice, f"message {text}")
    toasts = bob.page.locator("[data-sonner-toast]")
    await expect(toasts.filter(has_text="3 new messages from Alice")).to_have_count(1)
    await expect(toasts.filter(has_text="3 new messages from Alice")).to_contain_text(
        "message three"
    )
    await expect(toasts).to_have_count(1)
    # It sits below the headers: their buttons stay clickable.
    toast_box = await toasts.first.bounding_box()
    menu_box = await bob.page.get_by_role("button", name="Menu").bounding_box()
    header_box = await bob.page.locator("#chat-title").bounding_box()
    assert toast_box is not None
    assert menu_box is not None
    assert header_box is not None
    assert toast_box["y"] > menu_box["y"] + menu_box["height"]
    assert toast_box["y"] > header_box["y"] + header_box["height"]
    # Read in another tab (here: opened): it goes.
    await chat_row(bob.page, "Alice").click()
    await expect(toasts).to_have_count(0)
