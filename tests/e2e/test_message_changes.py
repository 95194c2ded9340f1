"""Editing, deleting, reacting and replying in real browsers: live on both sides, and caught
up by a tab that was away."""

from __future__ import annotations

import httpx
from playwright.async_api import Page, expect

from tests.e2e.conftest import App, Device, People, Person, answer_late
from tests.e2e.test_chat import bubbles, chat_row, create_group, send, start_direct


def row(page: Page, text: str):
    """The message (with its reactions and actions) whose body says `text`."""
    return page.locator(".msg-row").filter(has=page.locator(".msg-body").filter(has_text=text))


async def act(person: Person, text: str, action: str) -> None:
    message = row(person.page, text).last
    await message.hover()
    await message.get_by_role("button", name=action).click()


async def test_edit_react_reply_and_delete_show_live_on_both_sides(people: People) -> None:
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "Lunch at noon?")
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "Lunch at noon?")).to_have_count(1)

    # Alice edits in the composer: it opens with the message, Enter saves.
    await act(alice, "Lunch at noon?", "Edit")
    composer = alice.page.get_by_placeholder("Type a message")
    await expect(alice.page.locator(".compose-mode")).to_contain_text("Editing your message")
    await expect(composer).to_have_value("Lunch at noon?")
    await composer.fill("Lunch at **one**?")
    await composer.press("Enter")
    for person in (alice, bob):
        edited = row(person.page, "Lunch at one?")
        await expect(edited.locator("strong")).to_have_text("one")
        await expect(edited.locator(".msg-edited")).to_have_text(" (edited)")
    await expect(alice.page.locator(".compose-mode")).to_have_count(0)

    # Bob reacts from the picker, by name; Alice adds hers by clicking the pill.
    message = row(bob.page, "Lunch at one?")
    await message.hover()
    await message.get_by_role("button", name="Add a reaction").click()
    await bob.page.get_by_label("Find an emoji by name").fill(":tada")
    await expect(bob.page.locator(".emoji-grid .emoji-choice:visible")).to_have_count(1)
    await bob.page.get_by_role("button", name="React with :tada:").click()
    await bob.page.keyboard.press("Escape")
    for person in (alice, bob):
        await expect(row(person.page, "Lunch at one?").locator(".reaction")).to_have_text("🎉1")
    pill = row(alice.page, "Lunch at one?").locator(".reaction")
    await expect(pill).to_have_attribute("title", "Bob")
    await pill.click()
    await expect(pill).to_have_text("🎉2")
    await expect(pill).to_have_attribute("aria-pressed", "true")
    await expect(row(bob.page, "Lunch at one?").locator(".reaction")).to_have_attribute(
        "title", "Alice and you"
    )
    await pill.click()  # Taken back.
    await expect(pill).to_have_text("🎉1")
    await expect(pill).to_have_attribute("aria-pressed", "false")

    # Bob answers it: the reply quotes it, and the quote shows it.
    await act(bob, "Lunch at one?", "Reply")
    await expect(bob.page.locator(".compose-mode")).to_contain_text("Replying to Alice")
    await send(bob, "Works for me")
    for person in (alice, bob):
        reply = row(person.page, "Works for me")
        await expect(reply.locator(".reply-quote")).to_contain_text("Alice")
        await expect(reply.locator(".reply-quote")).to_contain_text("Lunch at one?")
    await row(alice.page, "Works for me").locator(".reply-quote").click()
    await expect(alice.page.locator(".message.flash")).to_contain_text("Lunch at one?")

    # Alice deletes hers, after confirming: it says so where it was, and in the quote.
    await act(alice, "Lunch at one?", "Delete")
    await alice.page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    for person in (alice, bob):
        await expect(person.page.locator(".msg-deleted")).to_have_text("This message was deleted")
        await expect(bubbles(person.page, "Lunch at one?")).to_have_count(0)
        await expect(row(person.page, "Works for me").locator(".reply-quote")).to_contain_text(
            "This message was deleted"
        )
    await alice.shot("changes")


async def test_up_in_an_empty_composer_edits_your_last_message_and_escape_cancels(
    people: People,
) -> None:
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "typo hre")
    await expect(alice.page.locator(".message.mine").last).to_have_attribute("data-status", "sent")
    composer = alice.page.get_by_placeholder("Type a message")

    await composer.press("ArrowUp")
    await expect(composer).to_have_value("typo hre")
    await composer.press("Escape")
    await expect(alice.page.locator(".compose-mode")).to_have_count(0)
    await expect(composer).to_have_value("")

    await composer.press("ArrowUp")
    await expect(composer).to_have_value("typo hre")  # Editing: the message is in the box.
    await composer.fill("typo here")
    await composer.press("Enter")
    await expect(bubbles(alice.page, "typo here")).to_have_count(1)
    await expect(bubbles(alice.page, "typo hre")).to_have_count(0)


async def test_keys_typed_while_an_edit_starts_or_ends_are_kept(people: People) -> None:
    # ↑ asks the app's backend for the message, which comes back as a new composer holding it;
    # what is typed meanwhile is not lost to it, nor typed before it. Saving or leaving the
    # edit comes back as a new composer too, and what is typed meanwhile is the next message.
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await start_direct(alice, bob)
    await answer_late(alice.page)
    await chat_row(bob.page, "Alice").click()
    composer = alice.page.get_by_placeholder("Type a message")

    # ↑ with no message of hers to edit: the Enter typed before that answer sends.
    await composer.press("ArrowUp")
    await alice.page.keyboard.type("see you at")
    await alice.page.keyboard.press("Enter")
    await expect(bubbles(bob.page, "see you at")).to_have_count(1)
    await expect(alice.page.locator(".message.mine").last).to_have_attribute("data-status", "sent")
    await expect(composer).to_have_value("")

    await composer.press("ArrowUp")
    await alice.page.keyboard.type(" noon")
    await expect(alice.page.locator(".compose-mode")).to_contain_text("Editing your message")
    await expect(composer).to_have_value("see you at noon")
    await alice.page.keyboard.type("!")  # Typing goes on at the end.
    await expect(composer).to_have_value("see you at noon!")
    await composer.press("Enter")
    await expect(bubbles(bob.page, "see you at noon!")).to_have_count(1)
    await expect(alice.page.locator(".message.mine")).to_have_count(1)  # Edited, not sent anew.

    # Enter too before the message is in the composer: the edit is saved then, and what was
    # typed is not sent as a new message; what is typed after the Enter is the next message.
    await expect(composer).to_have_attribute("data-editing", "false")
    await expect(composer).to_have_value("")
    await composer.press("ArrowUp")
    await alice.page.keyboard.type(" sharp")
    await alice.page.keyboard.press("Enter")
    await alice.page.keyboard.type("ok")
    await expect(bubbles(bob.page, "see you at noon! sharp")).to_have_text("see you at noon! sharp")
    await expect(composer).to_have_attribute("data-editing", "false")
    await expect(composer).to_have_value("ok")
    await composer.fill("")

    # Typing on at once after Enter saved an edit, or Escape left one: that is the next
    # message, and it stays when the composer turns back into a new message's.
    for leave, edited in (("Enter", "see you at noon! sharp?"), ("Escape", None)):
        await composer.press("ArrowUp")
        await expect(composer).to_have_attribute("data-editing", "true")
        await alice.page.keyboard.type("?")
        await alice.page.keyboard.press(leave)
        await alice.page.keyboard.type("bring snacks")
        await expect(composer).to_have_attribute("data-editing", "false")
        await expect(composer).to_have_value("bring snacks")
        if edited:
            await expect(bubbles(bob.page, edited)).to_have_count(1)
        await composer.fill("")
    # Escape before the message is in the box: the edit is left as soon as it is, with what
    # was typed before the Escape; what follows it is the next message, Enter sends it.
    await composer.press("ArrowUp")
    await alice.page.keyboard.type(" dropped")
    await alice.page.keyboard.press("Escape")
    await alice.page.keyboard.type("new one")
    await alice.page.keyboard.press("Enter")
    await expect(bubbles(bob.page, "new one")).to_have_count(1)
    await expect(composer).to_have_attribute("data-editing", "false")
    await expect(composer).to_have_value("")

    # Once this one is in, so is anything sent or saved before it.
    await send(alice, "over")
    await expect(bob.page.locator(".message .msg-body")).to_have_text(
        ["see you at noon! sharp?", "new one", "over"]
    )


async def test_a_tab_that_was_away_sees_the_edit_the_reaction_and_the_deletion(
    people: People, app: App
) -> None:
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await start_direct(alice, bob)
    for text in ("keep me", "edit me", "delete me"):
        await send(alice, text)
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "delete me")).to_have_count(1)
    await bob.page.close()

    # Made elsewhere (Alice's phone) while Bob is away.
    phone = Device(app, alice)
    async with httpx.AsyncClient(base_url=app.stack.messages[0].url, timeout=30) as http:
        headers = {"Authorization": f"Bearer {await phone.token()}"}
        (conversation,) = (await http.get("/conversations", headers=headers)).json()
        path = f"/conversations/{conversation['id']}/messages"
        messages = {
            m["body"]: m["id"] for m in (await http.get(path, headers=headers)).json()["messages"]
        }
        changes = [
            ("PATCH", messages["edit me"], {"body": "edited while you were away"}),
            ("POST", f"{messages['keep me']}/reactions", {"emoji": "👍", "add": True}),
            ("DELETE", messages["delete me"], None),
        ]
        for method, where, body in changes:
            response = await http.request(method, f"{path}/{where}", headers=headers, json=body)
            assert response.status_code == 200, response.text

    bob.page = await bob.context.new_page()
    await bob.page.goto(f"{app.url}/")
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "edited while you were away")).to_have_count(1)
    await expect(row(bob.page, "keep me").locator(".reaction")).to_have_text("👍1")
    await expect(bob.page.locator(".msg-deleted")).to_have_count(1)
    await expect(bubbles(bob.page, "delete me")).to_have_count(0)


async def test_at_offers_the_members_and_a_mention_is_marked(people: People) -> None:
    alice, bob, carol = [await people.sign_up(n) for n in ("alice", "bob", "carol")]
    await create_group(alice, "Design", bob, carol)
    composer = alice.page.get_by_placeholder("Type a message")

    await composer.fill("thanks @")
    menu = alice.page.locator("#mention-menu")
    await expect(menu.get_by_role("option")).to_have_count(2)  # Not Alice herself.
    await composer.press_sequentially("ca")
    await expect(menu.get_by_role("option")).to_have_count(1)
    await expect(menu.get_by_role("option")).to_contain_text("Carol")
    await composer.press("Enter")  # Takes Carol; does not send.
    await expect(composer).to_have_value(f"thanks @{carol.username} ")
    await expect(menu).to_be_hidden()
    await composer.press_sequentially("see `@bob` here")
    await composer.press("Escape")
    await composer.press("Enter")

    for person in (alice, carol):
        if person is carol:
            await chat_row(carol.page, "Design").click()
        mention = person.page.locator(".msg-body a.md-link")
        await expect(mention).to_have_text(f"@{carol.username}")
        await expect(mention).to_have_attribute("href", f"#mention-{carol.username}")
        await expect(person.page.locator(".msg-body code")).to_have_text("@bob")
    await expect(chat_row(bob.page, "Design").locator(".mention-badge")).to_have_count(0)


async def test_a_groups_creator_deletes_anyones_message_and_others_only_their_own(
    people: People,
) -> None:
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await create_group(alice, "Moderated", bob)
    await chat_row(bob.page, "Moderated").click()
    await send(bob, "spam spam spam")
    await send(alice, "welcome")
    await expect(bubbles(bob.page, "welcome")).to_have_count(1)

    bobs_view = row(bob.page, "welcome")
    await bobs_view.hover()
    await expect(bobs_view.get_by_role("button", name="Delete")).to_have_count(0)

    # Escape is a "no".
    await act(alice, "spam spam spam", "Delete")
    await expect(alice.page.get_by_role("alertdialog")).to_be_visible()
    await alice.page.keyboard.press("Escape")
    await expect(alice.page.get_by_role("alertdialog")).to_have_count(0)
    await send(alice, "kept it for now")  # Anything sent before it would have come first.
    await expect(bubbles(bob.page, "kept it for now")).to_have_count(1)
    await expect(bubbles(bob.page, "spam spam spam")).to_have_count(1)

    await act(alice, "spam spam spam", "Delete")
    await alice.page.get_by_role("alertdialog").get_by_role("button", name="Delete").click()
    for person in (alice, bob):
        await expect(person.page.locator(".msg-deleted")).to_have_count(1)
        await expect(bubbles(person.page, "spam spam spam")).to_have_count(0)


async def test_a_messages_actions_are_reached_with_the_keyboard(people: People) -> None:
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "react without a mouse")
    await chat_row(bob.page, "Alice").click()
    message = row(bob.page, "react without a mouse")
    await expect(message).to_have_count(1)

    actions = message.locator(".msg-actions")
    await expect(actions).to_have_css("opacity", "0")  # At rest, out of sight.
    await message.get_by_role("button", name="Reply").focus()  # Focusable: Tab stops there.
    await expect(actions).to_have_css("opacity", "1")
    await bob.page.keyboard.press("Enter")
    await expect(bob.page.locator(".compose-mode")).to_contain_text("Replying to Alice")


async def test_on_a_touch_screen_who_reacted_is_a_tap_away(people: People) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob", width=390, height=844, touch=True)
    await start_direct(alice, bob)
    await send(alice, "pick a place")
    message = row(alice.page, "pick a place")
    await message.hover()
    await message.get_by_role("button", name="Add a reaction").click()
    # One of the common ones, at the top (each was overlapped by the next, which took its
    # clicks).
    await alice.page.get_by_role("button", name="React with 👍").click()
    await alice.page.keyboard.press("Escape")
    await expect(row(alice.page, "pick a place").locator(".who-reacted")).to_be_hidden()

    await chat_row(bob.page, "Alice").tap()
    on_phone = row(bob.page, "pick a place")
    await expect(on_phone.locator(".reaction")).to_have_text("👍1")
    await on_phone.get_by_role("button", name="Who reacted").tap()
    await expect(bob.page.locator(".who-row")).to_have_text("👍Alice")
