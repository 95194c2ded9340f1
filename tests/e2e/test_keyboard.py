"""Everything without a mouse: the quick switcher (Ctrl+K), the sidebar's arrows, Alt+↑/↓
between conversations, and dialogs that give the focus back when they close."""

from __future__ import annotations

from playwright.async_api import Page, expect

from tests.e2e.conftest import People, answer_late
from tests.e2e.test_chat import bubbles, chat_row, create_group, send, start_direct


def title(page: Page):
    return page.locator("#chat-title")


async def test_the_quick_switcher_finds_conversations_and_people(people: People) -> None:
    alice, bob, carol = [await people.sign_up(n) for n in ("alice", "bob", "carol")]
    await create_group(alice, "Design reviews", bob)
    await start_direct(alice, bob)
    page = alice.page

    # Ctrl+K, a few letters of the group, Enter: it opens, ready to type in.
    await page.keyboard.press("Control+k")
    box = page.get_by_role("combobox", name="Conversation or person")
    await expect(box).to_be_focused()
    await box.press_sequentially("desrev", delay=30)
    await expect(page.locator("#switcher .switch-item").first).to_contain_text("Design reviews")
    await box.press("Enter")
    await expect(title(page)).to_have_text("Design reviews")
    await expect(page.locator("#composer")).to_be_focused()

    # ↓ picks the second match: both conversations show for an empty box, newest first.
    await page.keyboard.press("Control+k")
    items = page.locator("#switcher .switch-item")
    await expect(items).to_have_count(2)
    await expect(items.nth(0)).to_contain_text("Bob")
    await box.press("ArrowDown")
    await expect(items.nth(1)).to_have_attribute("aria-selected", "true")
    await box.press("Enter")
    await expect(title(page)).to_have_text("Design reviews")

    # Someone she has never written to: Enter starts the conversation.
    await page.keyboard.press("Control+k")
    await box.press_sequentially(carol.username[:8], delay=30)
    await expect(items.first).to_contain_text("new message")
    await box.press("Enter")
    await expect(title(page)).to_have_text("Carol")
    await send(alice, "Hi Carol")
    await chat_row(carol.page, "Alice").click()
    await expect(bubbles(carol.page, "Hi Carol")).to_have_count(1)

    # Enter at once, before the matches for what was typed have come: it waits for them,
    # rather than opening what was first for the empty box (Carol's, the newest).
    await page.keyboard.press("Control+k")
    await box.fill("bob")
    await box.press("Enter")
    await expect(title(page)).to_have_text("Bob")

    # Escape closes it and the focus goes back where it was.
    await page.locator("#composer").focus()
    await page.keyboard.press("Control+k")
    await expect(box).to_be_focused()
    await page.keyboard.press("Escape")
    await expect(page.locator("#switcher")).to_have_count(0)
    await expect(page.locator("#composer")).to_be_focused()


async def test_keys_typed_right_after_ctrl_k_go_to_the_switcher(people: People) -> None:
    # On a busy box the switcher opens a state round trip after Ctrl+K. What is typed meanwhile
    # is given to it when it opens: not typed into the composer (where Enter would send it), nor
    # into a switcher still closing after a choice, and an Enter typed meanwhile opens the match.
    alice, bob, carol = [await people.sign_up(n) for n in ("alice", "bob", "carol")]
    await create_group(alice, "Design reviews", bob)
    await start_direct(alice, carol)
    await start_direct(alice, bob)
    page = alice.page
    await answer_late(page)
    await chat_row(page, "Bob").click()
    await expect(title(page)).to_have_text("Bob")
    composer = page.locator("#composer")
    await composer.focus()

    # From the composer: Ctrl+K, the name and Enter at once, faster than the box can open;
    # what is typed after the Enter is for the conversation it opens. A draft left in the
    # composer is not sent with it: it stays with Bob.
    await composer.fill("a draft")
    await page.keyboard.press("Control+k")
    await page.keyboard.type("desrev")
    await page.keyboard.press("Enter")
    await page.keyboard.type("hello team")
    await page.keyboard.press("Enter")
    await page.keyboard.type(" and more")
    await expect(title(page)).to_have_text("Design reviews")
    await expect(page.locator(".message.mine .msg-body")).to_have_text(["hello team"])
    await expect(composer).to_have_value(" and more")
    await expect(composer).to_be_focused()
    await composer.fill("")

    # Enter chooses, and Ctrl+K comes before the switcher has closed for that choice: Bob's
    # conversation opens, then the switcher again, with what was typed after Ctrl+K in it.
    await page.keyboard.press("Control+k")
    box = page.get_by_role("combobox", name="Conversation or person")
    await expect(box).to_be_focused()
    await page.keyboard.type("bob")
    await page.keyboard.press("Enter")
    await page.keyboard.press("Control+k")
    await page.keyboard.type("carol")
    await expect(box).to_have_value("carol")
    await expect(title(page)).to_have_text("Bob")
    await expect(composer).to_have_value("a draft")
    await page.keyboard.press("Enter")
    await expect(title(page)).to_have_text("Carol")
    await expect(composer).to_be_focused()

    # Ctrl+K, ↓ and Enter at once: the second of the conversations, newest first (Design
    # reviews has the newest message, then the newest conversation, Bob's).
    await page.keyboard.press("Control+k")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    await expect(title(page)).to_have_text("Bob")

    # Nothing typed for the switcher was sent: once this is in, so is anything before it.
    await send(alice, "marker")
    await expect(page.locator(".message.mine .msg-body")).to_have_text(["marker"])

    # Ctrl+K and Escape at once: once it has opened for that Ctrl+K, it closes again, and
    # what is typed after the Escape goes to the composer. An ↑ meanwhile does not start an
    # edit behind the switcher.
    opener = page.locator("#open-switcher")
    openings = int(await opener.get_attribute("data-opened") or 0)
    await page.keyboard.press("Control+k")
    await page.keyboard.press("ArrowUp")
    await page.keyboard.press("Escape")
    await page.keyboard.type("hi")
    await expect(opener).to_have_attribute("data-opened", str(openings + 1))
    await expect(page.locator("#switcher")).to_have_count(0)
    await expect(composer).to_be_focused()
    await expect(composer).to_have_value("hi")
    await expect(composer).to_have_attribute("data-editing", "false")


async def test_the_sidebar_and_alt_arrows_move_between_conversations(people: People) -> None:
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await create_group(alice, "Alpha", bob)
    await create_group(alice, "Beta", bob)
    page = alice.page
    await expect(title(page)).to_have_text("Beta")
    rows = page.locator("#sidebar .chat-row")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_have_attribute("aria-current", "true")  # Beta, the newest.

    # Alt+↓ from the composer opens the next one down, Alt+↑ comes back.
    await page.locator("#composer").focus()
    await page.keyboard.press("Alt+ArrowDown")
    await expect(title(page)).to_have_text("Alpha")
    await page.keyboard.press("Alt+ArrowUp")
    await expect(title(page)).to_have_text("Beta")

    # The open conversation's row is where Tab stops; ↓ moves, Enter opens.
    await rows.nth(0).focus()
    await page.keyboard.press("ArrowDown")
    await expect(rows.nth(1)).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(title(page)).to_have_text("Alpha")


async def test_escape_on_a_dialog_gives_the_focus_back(people: People) -> None:
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "Delete me?")
    page = alice.page
    message = page.locator(".msg-row").filter(has=page.locator(".msg-body", has_text="Delete me?"))
    delete = message.get_by_role("button", name="Delete")
    await delete.focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("alertdialog")).to_be_visible()
    await page.keyboard.press("Escape")
    await expect(page.get_by_role("alertdialog")).to_have_count(0)
    await expect(delete).to_be_focused()
