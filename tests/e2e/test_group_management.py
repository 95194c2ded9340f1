"""Managing a group in real browsers: lines in the stream for who was added, removed or left
and for a new name, a member count that follows, and leaving only after saying so."""

from __future__ import annotations

from playwright.async_api import expect

from tests.e2e.conftest import People
from tests.e2e.test_chat import chat_row, create_group


async def test_a_group_changes_in_front_of_its_members(people: People) -> None:
    alice, bob, carol = [await people.sign_up(n) for n in ("alice", "bob", "carol")]
    await create_group(alice, "Lunch", bob)
    await chat_row(bob.page, "Lunch").click()
    subtitle = bob.page.locator("#chat-subtitle")
    await expect(subtitle).to_have_text("2 members")
    lines = bob.page.locator("#messages .system-line")

    # Alice adds Carol from the members dialog: Bob sees the line and the count move.
    page = alice.page
    await page.get_by_role("button", name="Members").click()
    await page.get_by_placeholder("Username").fill(carol.username)
    await (
        page.locator(".person-row")
        .filter(has_text=carol.username)
        .get_by_role("button", name="Add")
        .click()
    )
    await expect(lines.last).to_have_text("Alice added Carol")
    await expect(subtitle).to_have_text("3 members")

    # She renames and describes it: the new name everywhere, and a line.
    await page.get_by_role("textbox", name="Group name").fill("Lunch club")
    await page.get_by_role("textbox", name="Description").fill("Where we eat")
    await page.get_by_role("button", name="Save").click()
    await expect(lines.last).to_have_text("Alice renamed the group to Lunch club")
    await expect(bob.page.locator("#chat-title")).to_have_text("Lunch club")
    await expect(chat_row(carol.page, "Lunch club")).to_have_count(1)

    # She removes Carol: gone from Carol's list, a line for Bob, two members again.
    await page.get_by_role("button", name="Remove Carol").click()
    await expect(lines.last).to_have_text("Alice removed Carol")
    await expect(subtitle).to_have_text("2 members")
    await expect(chat_row(carol.page, "Lunch club")).to_have_count(0)
    await page.keyboard.press("Escape")

    # Bob leaves, after saying so (staying first: nothing happens).
    await bob.page.get_by_role("button", name="Members").click()
    await expect(bob.page.get_by_role("textbox", name="Group name")).to_have_count(0)  # Not his.
    await expect(bob.page.get_by_role("dialog")).to_contain_text("Where we eat")
    await bob.page.get_by_role("button", name="Leave group").click()
    confirm = bob.page.get_by_role("alertdialog")
    await expect(confirm).to_contain_text("Leave Lunch club?")
    await confirm.get_by_role("button", name="Stay").click()
    await expect(chat_row(bob.page, "Lunch club")).to_have_count(1)
    await bob.page.get_by_role("button", name="Leave group").click()
    await bob.page.get_by_role("alertdialog").get_by_role("button", name="Leave").click()
    await expect(chat_row(bob.page, "Lunch club")).to_have_count(0)
    await expect(page.locator("#messages .system-line").last).to_have_text("Bob left")
    await expect(page.locator("#chat-subtitle")).to_have_text("1 member")
