"""Two (or three) people chatting in real browsers on the real app and services."""

from __future__ import annotations

import asyncio
import re
import signal
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from playwright.async_api import Page, expect
from pymongo import AsyncMongoClient

from tests.e2e.conftest import RECORD_NOTIFICATIONS, App, Device, People, Person
from tests.support.processes import Service
from tests.support.visibility import INIT_SCRIPT as VISIBILITY
from tests.support.visibility import set_hidden


def chat_row(page: Page, name: str):
    return page.locator(".chat-row").filter(has_text=name)


async def start_direct(person: Person, other: Person) -> None:
    page = person.page
    await page.get_by_role("button", name="New chat").click()
    await page.get_by_placeholder("Username").fill(other.username)
    await (
        page.locator(".person-row")
        .filter(has_text=other.username)
        .get_by_role("button", name="Message")
        .click()
    )
    await expect(page.locator("#chat-title")).to_have_text(other.name.capitalize())


async def send(person: Person, text: str) -> None:
    composer = person.page.get_by_placeholder("Type a message")
    await composer.fill(text)
    await composer.press("Enter")


def bubbles(page: Page, text: str):
    return page.locator(".message .msg-body").filter(has_text=text)


async def test_a_direct_message_arrives_live_with_a_popup_and_sessions_survive_reload(
    people: People, app: App
) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")

    await start_direct(alice, bob)
    await send(alice, "Hi Bob! Lunch?")

    await expect(bubbles(alice.page, "Hi Bob! Lunch?")).to_have_count(1)
    await expect(alice.page.locator(".message.mine").last).to_have_attribute("data-status", "sent")
    toast = bob.page.locator("[data-sonner-toast]").filter(has_text="Alice")
    await expect(toast).to_contain_text("Hi Bob! Lunch?")
    await expect(chat_row(bob.page, "Alice").locator(".unread-badge")).to_have_text("1")
    await expect(bob.page).to_have_title("(1) Let's Chat")
    await bob.shot("popup")
    await toast.get_by_role("button", name="Open").click()
    await expect(bob.page.locator("#chat-title")).to_have_text("Alice")
    await expect(bubbles(bob.page, "Hi Bob! Lunch?")).to_have_count(1)
    await expect(bob.page).to_have_title("Let's Chat")
    await bob.shot("conversation")

    for person in (alice, bob):
        await person.page.reload()
        await expect(person.page).to_have_url(f"{app.url}/")
        await expect(person.page.locator("#connection")).to_have_text("Connected")
    await expect(chat_row(alice.page, "Bob")).to_contain_text("You: Hi Bob! Lunch?")


async def create_group(owner: Person, name: str, *members: Person) -> None:
    page = owner.page
    await page.get_by_role("button", name="New group").click()
    await page.get_by_placeholder("Group name").fill(name)
    for other in members:
        await page.get_by_placeholder("Add people by username").fill(other.username)
        await (
            page.locator(".person-row")
            .filter(has_text=other.username)
            .get_by_role("button", name="Add")
            .click()
        )
    await page.get_by_role("button", name="Create group").click()
    await expect(page.locator("#chat-title")).to_have_text(name)


async def test_a_group_with_three_people(people: People) -> None:
    alice, bob, carol = [await people.sign_up(n) for n in ("alice", "bob", "carol")]
    await create_group(alice, "Launch team", bob, carol)

    await expect(chat_row(carol.page, "Launch team")).to_be_visible()
    await chat_row(carol.page, "Launch team").click()
    await send(carol, "Ship it on Friday?")

    for person in (alice, carol):
        await expect(bubbles(person.page, "Ship it on Friday?")).to_have_count(1)
    await expect(chat_row(bob.page, "Launch team").locator(".unread-badge")).to_have_text("1")
    await chat_row(bob.page, "Launch team").click()
    await bob.page.get_by_role("button", name="Members").click()
    await expect(bob.page.locator(".member-row")).to_have_count(3)
    await bob.shot("group-members")


async def test_messages_sent_while_away_appear_once_with_an_unread_badge(
    people: People, app: App
) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "first")
    await expect(chat_row(bob.page, "Alice")).to_be_visible()
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "first")).to_have_count(1)

    await bob.page.close()
    for n in range(1, 4):
        await send(alice, f"while you were away {n}")
        await expect(alice.page.locator(".message.mine").last).to_have_attribute(
            "data-status", "sent"
        )

    bob.page = await bob.context.new_page()
    await bob.page.goto(f"{app.url}/")
    await expect(chat_row(bob.page, "Alice").locator(".unread-badge")).to_have_text("3")
    await chat_row(bob.page, "Alice").click()
    for n in range(1, 4):
        await expect(bubbles(bob.page, f"while you were away {n}")).to_have_count(1)
    await expect(bob.page.locator("#first-unread")).to_be_visible()
    await expect(bob.page.locator(".message .msg-body")).to_have_count(4)


async def test_a_retried_send_after_a_failure_appears_once(
    people: People, message_service: Service
) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "warming up")
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "warming up")).to_have_count(1)

    message_service.signal(signal.SIGSTOP)  # The service hangs: no ack comes back.
    try:
        await send(alice, "are you there?")
        failed = alice.page.locator(".message.mine").filter(has_text="are you there?")
        await expect(failed).to_have_attribute("data-status", "failed")
        await expect(failed).to_contain_text("Not sent")
        await alice.shot("send-failed")
        await failed.get_by_role("button", name="Retry").click()
    finally:
        message_service.signal(signal.SIGCONT)

    for person in (alice, bob):
        await expect(bubbles(person.page, "are you there?")).to_have_count(1)
    await expect(alice.page.locator(".message.mine").last).to_have_attribute("data-status", "sent")
    await bob.page.reload()
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "are you there?")).to_have_count(1)


async def test_logging_out_in_one_tab_logs_out_the_other(people: People, app: App) -> None:
    alice = await people.sign_up("alice")
    second_tab = await alice.context.new_page()
    await second_tab.goto(f"{app.url}/")
    await expect(second_tab.locator("#connection")).to_have_text("Connected")

    await alice.page.get_by_role("button", name="Log out").click()

    await expect(alice.page).to_have_url(re.compile(r"/login/?$"))
    await expect(second_tab).to_have_url(re.compile(r"/login/?$"))
    await expect(second_tab.get_by_role("button", name="Log in")).to_be_visible()
    await second_tab.goto(f"{app.url}/")
    await expect(second_tab).to_have_url(re.compile(r"/login/?$"))


async def test_markup_in_messages_is_shown_as_text(people: People) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    await chat_row(bob.page, "Alice").wait_for()
    payloads = [
        "<script>alert('xss')</script>",
        '<img src=x onerror="alert(1)">',
        "[click me](javascript:alert(1))",
        '<a href="javascript:alert(1)">link</a>',
    ]
    for payload in payloads:
        await send(alice, payload)
    await chat_row(bob.page, "Alice").click()
    # HTML shows as the text it is; a markdown link to javascript: is no link at all.
    shown = [payloads[0], payloads[1], "click me", payloads[3]]
    for person in (alice, bob):
        for text in shown:
            await expect(bubbles(person.page, text)).to_have_count(1)
        texts = await person.page.locator(".message .msg-body").all_inner_texts()
        assert texts[-4:] == shown
        assert await person.page.locator("#messages img, #messages script").count() == 0
        assert await person.page.locator("#messages a[href]").count() == 0
        assert person.dialogs == []


async def test_a_small_markdown_subset_is_formatted_and_links_open_apart(people: People) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(
        alice, "**bold** _italic_ ~~gone~~ `code`, see www.example.com or [mail](mailto:a@b.c)"
    )
    await send(
        alice, "> quoted\n\n- one\n- two\n\n```\nblock = 1\n```\n![pixel](http://127.0.0.1:9/p.png)"
    )
    await chat_row(bob.page, "Alice").click()
    body = bob.page.locator(".message .msg-body")
    await expect(body).to_have_count(2)
    first, second = body.nth(0), body.nth(1)
    await expect(first.locator("strong")).to_have_text("bold")
    await expect(first.locator("em")).to_have_text("italic")
    await expect(first.locator("del")).to_have_text("gone")
    await expect(first.locator("code")).to_have_text("code")
    links = first.locator("a")
    await expect(links).to_have_count(2)
    for index, href in enumerate(["http://www.example.com", "mailto:a@b.c"]):
        await expect(links.nth(index)).to_have_attribute("href", href)
        await expect(links.nth(index)).to_have_attribute("target", "_blank")
        await expect(links.nth(index)).to_have_attribute("rel", "noopener noreferrer")
    await expect(second.locator("blockquote")).to_have_text("quoted")
    await expect(second.locator("li")).to_have_text(["one", "two"])
    await expect(second.locator("pre")).to_have_text("block = 1")
    assert await second.locator("img").count() == 0  # No image loads from a message.


async def test_the_layout_works_at_phone_width(people: People) -> None:
    alice = await people.sign_up("alice", width=390, height=844)
    bob = await people.sign_up("bob")
    await start_direct(bob, alice)
    await send(bob, "on your phone?")
    page = alice.page
    await expect(page.locator("#sidebar")).to_be_visible()
    await expect(page.locator("#conversation")).to_be_hidden()
    await alice.shot("phone-sidebar")

    await chat_row(page, "Bob").click()

    await expect(page.locator("#sidebar")).to_be_hidden()
    await expect(bubbles(page, "on your phone?")).to_be_visible()
    await expect(page.get_by_placeholder("Type a message")).to_be_visible()
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390
    await alice.shot("phone-conversation")
    await page.get_by_role("button", name="Back to conversations").click()
    await expect(page.locator("#sidebar")).to_be_visible()


async def test_a_session_ended_elsewhere_returns_to_the_login_page_saying_why(
    people: People, app: App
) -> None:
    alice = await people.sign_up("alice")
    phone = Device(app, alice)
    headers = {"Authorization": f"Bearer {await phone.token()}"}

    async with httpx.AsyncClient() as http:
        listed = await http.get(f"{app.stack.auth_url}/auth/sessions", headers=headers)
        page_session = next(s["id"] for s in listed.json() if not s["current"])
        response = await http.delete(
            f"{app.stack.auth_url}/auth/sessions/{page_session}", headers=headers
        )
        assert response.status_code == 204

    await expect(alice.page).to_have_url(re.compile(r"/login/?$"))
    notice = "This session was ended from another of your devices. Please log in again."
    await expect(alice.page.get_by_text(notice)).to_be_visible()
    for key in ("letschat_token", "letschat_refresh"):
        assert await alice.page.evaluate(f"localStorage.getItem('{key}')") in ("", None)


async def test_after_a_backend_restart_the_app_reconnects_and_shows_what_was_missed(
    people: People, app: App, message_service: Service
) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "before the restart")
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, "before the restart")).to_have_count(1)
    device = Device(app, alice)
    conversation_id = await _conversation_id(app, await device.token())

    message_service.stop()  # SIGTERM: sockets are closed with 1012.
    await expect(bob.page.locator("#connection")).to_have_text("Reconnecting…")
    async with httpx.AsyncClient() as http:
        for n in range(3):
            response = await http.post(
                f"{app.stack.messages[1].url}/conversations/{conversation_id}/messages",
                json={"body": f"during the restart {n}", "client_msg_id": f"restart-{n}"},
                headers={"Authorization": f"Bearer {await device.token()}"},
            )
            assert response.status_code == 201, response.text
    message_service.restart()

    await expect(bob.page.locator("#connection")).to_have_text("Connected", timeout=30_000)
    for n in range(3):
        await expect(bubbles(bob.page, f"during the restart {n}")).to_have_count(1)
    await expect(bob.page.locator(".message .msg-body")).to_have_count(4)


async def test_someone_added_to_a_group_is_told_by_whom_and_can_leave_at_once(
    people: People, app: App
) -> None:
    alice, bob = [await people.sign_up(n) for n in ("alice", "bob")]
    page = alice.page
    await page.get_by_role("button", name="New group").click()
    await page.get_by_placeholder("Group name").fill("Crypto deals")
    await page.get_by_placeholder("Add people by username").fill(bob.username)
    await (
        page.locator(".person-row")
        .filter(has_text=bob.username)
        .get_by_role("button", name="Add")
        .click()
    )
    await page.get_by_role("button", name="Create group").click()
    await expect(page.locator("#chat-title")).to_have_text("Crypto deals")
    # The creator is not told she added herself.
    await expect(page.locator("[data-sonner-toast]").filter(has_text="added you")).to_have_count(0)

    notice = bob.page.locator("[data-sonner-toast]").filter(
        has_text="Alice added you to #Crypto deals"
    )
    await expect(notice).to_have_count(1)
    await expect(chat_row(bob.page, "Crypto deals")).to_be_visible()
    await bob.shot("added-to-group-notice")
    await notice.get_by_role("button", name="Leave").click()

    await expect(chat_row(bob.page, "Crypto deals")).to_have_count(0)
    await expect(notice).to_have_count(0)
    bob_device = Device(app, bob)
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{app.stack.messages[0].url}/conversations",
            headers={"Authorization": f"Bearer {await bob_device.token()}"},
        )
    assert response.json() == []


async def _conversation_id(app: App, token: str) -> str:
    return str((await only_conversation(app, token))["id"])


async def only_conversation(app: App, token: str) -> dict[str, object]:
    """The one conversation `token`'s user belongs to, as the REST list shows it."""
    async with httpx.AsyncClient() as http:
        response = await http.get(
            f"{app.stack.messages[1].url}/conversations",
            headers={"Authorization": f"Bearer {token}"},
        )
    [conversation] = response.json()
    return dict(conversation)


async def test_reading_in_one_tab_clears_the_badge_in_another(people: People, app: App) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    other_tab = await bob.context.new_page()
    await other_tab.goto(f"{app.url}/")
    await start_direct(alice, bob)
    await send(alice, "read me")
    for page in (bob.page, other_tab):
        await expect(chat_row(page, "Alice").locator(".unread-badge")).to_have_text("1")

    await chat_row(bob.page, "Alice").click()

    await expect(chat_row(other_tab, "Alice").locator(".unread-badge")).to_have_count(0)
    await expect(other_tab).to_have_title("Let's Chat")
    # Each tab shows what it opened, with what was typed in it.
    carol = await people.sign_up("carol")
    await start_direct(carol, bob)
    await bob.page.locator("#composer").fill("typed in the first tab")
    await chat_row(other_tab, "Carol").click()
    await expect(other_tab.locator("#chat-title")).to_have_text("Carol")
    await expect(other_tab.locator("#composer")).to_have_value("")
    await expect(bob.page.locator("#chat-title")).to_have_text("Alice")
    await expect(bob.page.locator("#composer")).to_have_value("typed in the first tab")


async def test_wrong_credentials_and_a_taken_name_are_explained_inline(
    people: People, app: App
) -> None:
    alice = await people.sign_up("alice")
    stranger = await people.open("stranger")
    page = stranger.page
    await page.goto(f"{app.url}/login")
    await page.get_by_label("Username").fill(alice.username)
    await page.get_by_label("Password").fill("not the password")
    await page.get_by_role("button", name="Log in").click()
    await expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")

    await page.get_by_role("button", name="Create an account").click()
    await page.get_by_label("Username").fill(alice.username)
    await page.get_by_label("Password").fill("another good password")
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.get_by_role("alert")).to_contain_text("taken")
    await expect(page).to_have_url(re.compile(r"/login/?$"))


async def test_public_groups_can_be_found_joined_and_left(people: People) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    page = alice.page
    await page.get_by_role("button", name="New group").click()
    await page.get_by_placeholder("Group name").fill(f"Open {alice.username}")
    await page.get_by_role("checkbox").check()
    await page.get_by_role("button", name="Create group").click()
    await expect(page.locator("#chat-title")).to_have_text(f"Open {alice.username}")
    await send(alice, "welcome, anyone")

    await bob.page.get_by_role("button", name="Browse groups").click()
    await bob.page.get_by_placeholder("Search groups").fill(f"Open {alice.username}")
    await (
        bob.page.locator(".group-row")
        .filter(has_text=f"Open {alice.username}")
        .get_by_role("button", name="Join")
        .click()
    )
    await expect(bob.page.locator("#chat-title")).to_have_text(f"Open {alice.username}")
    await expect(bubbles(bob.page, "welcome, anyone")).to_have_count(1)

    await bob.page.get_by_role("button", name="Members").click()
    await bob.page.get_by_role("button", name="Leave group").click()
    await bob.page.get_by_role("alertdialog").get_by_role("button", name="Leave").click()
    await expect(chat_row(bob.page, f"Open {alice.username}")).to_have_count(0)


async def test_shift_enter_makes_a_new_line_and_enter_sends(people: People) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    composer = alice.page.get_by_placeholder("Type a message")
    await composer.type("first line")
    await composer.press("Shift+Enter")
    await composer.type("second line")
    await expect(alice.page.locator(".message")).to_have_count(0)
    await composer.press("Enter")
    await expect(bubbles(alice.page, "first line")).to_have_text("first line\nsecond line")
    await expect(composer).to_have_value("")


async def test_a_message_over_the_limit_stays_whole_in_the_composer_with_a_count(
    people: People,
) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    page = alice.page
    composer = page.get_by_placeholder("Type a message")
    counter = page.locator("#composer-count")
    long = "x" * 4500  # A paste: nothing of it is cut off.
    await composer.fill(long)
    await expect(counter).to_have_text("500 characters over the limit of 4,000")
    await expect(composer).to_have_attribute("aria-invalid", "true")
    send_button = page.get_by_role("button", name="Send")
    await expect(send_button).to_have_attribute("aria-disabled", "true")
    await composer.press("Enter")
    await send_button.click(force=True)  # Past the "disabled" look: still held back.
    await expect(composer).to_have_value(long)
    near = "é" * 3990  # Counted as people count characters.
    await composer.fill(near)
    await expect(counter).to_have_text("10 characters left")
    await composer.press("Enter")
    await expect(bubbles(page, near)).to_have_count(1)
    await expect(counter).to_have_text("")
    await expect(composer).to_have_value("")
    # Only the message that fitted went: the long one was never sent.
    await chat_row(bob.page, "Alice").click()
    await expect(bubbles(bob.page, near)).to_have_count(1)
    assert await bob.page.locator(".message .msg-body").all_inner_texts() == [near]


async def test_a_run_of_messages_shows_its_sender_once_with_times_on_hover(
    people: People,
) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    for text in ("one", "two", "three"):
        await send(alice, text)
    await chat_row(bob.page, "Alice").click()
    page = bob.page
    await expect(bubbles(page, "three")).to_have_count(1)
    await expect(page.locator(".message.theirs")).to_have_count(3)
    await expect(page.locator(".message.theirs .msg-sender")).to_have_count(1)
    await expect(page.locator(".msg-avatar")).to_have_count(1)
    await expect(page.locator(".msg-avatar")).to_have_text("AL")
    await expect(page.locator(".message.theirs.continues")).to_have_count(2)
    grouped_time = page.locator(".message.continues .msg-time").last
    await expect(grouped_time).to_be_hidden()
    await page.locator(".message.continues").last.hover()
    await expect(grouped_time).to_be_visible()
    # The full date and time, as a tooltip.
    title = await grouped_time.get_attribute("title")
    assert title is not None
    assert re.fullmatch(r"\w+day, \d{1,2} \w+ \d{4}, \d{2}:\d{2}", title), title
    # Someone else speaks: Alice's next message starts a run of its own.
    await send(bob, "hi")
    await send(alice, "four")
    await expect(bubbles(page, "four")).to_have_count(1)
    await expect(page.locator(".message.theirs .msg-sender")).to_have_count(2)
    await expect(page.locator(".msg-avatar")).to_have_count(2)


async def test_days_are_marked_in_the_stream(people: People, app: App) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    await send(alice, "from the other day")
    await expect(alice.page.locator('.message.mine[data-status="sent"]')).to_have_count(1)
    # As if sent three days ago.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        app.stack.env["LETSCHAT_MONGODB_URL"]
    )
    try:
        messages = client[app.stack.env["LETSCHAT_MONGODB_DB"]]["messages"]
        three_days_ago = datetime.now(UTC) - timedelta(days=3)
        result = await messages.update_one(
            {"body": "from the other day"}, {"$set": {"created_at": three_days_ago}}
        )
        assert result.modified_count == 1
    finally:
        await client.close()
    await send(alice, "and today")
    # A new tab reads the conversation from the store.
    tab = await bob.context.new_page()
    await tab.goto(f"{app.url}/")
    await chat_row(tab, "Alice").click()
    await expect(bubbles(tab, "and today")).to_have_count(1)
    labels = tab.locator(".day-line .day-label")
    await expect(labels).to_have_count(2)
    weekday = await tab.evaluate(  # In the browser's own time zone.
        "iso => new Date(iso).toLocaleDateString('en-US', {weekday: 'long'})",
        three_days_ago.isoformat(),
    )
    assert await labels.all_inner_texts() == [weekday, "Today"]
    # A message from days ago does not group with today's, though the sender is the same.
    await expect(tab.locator(".message.theirs .msg-sender")).to_have_count(2)


async def _bob_muted_alice_and_looks_elsewhere(people: People) -> tuple[Person, Person]:
    """Bob has muted his conversation with Alice and is looking at one with Carol."""
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    carol = await people.sign_up("carol")
    await start_direct(alice, bob)
    await send(alice, "first")
    await chat_row(bob.page, "Alice").click()
    await bob.page.get_by_role("button", name="Mute").click()
    await expect(bob.page.get_by_role("button", name="Unmute")).to_be_visible()
    await start_direct(bob, carol)
    return alice, bob


async def test_a_muted_conversation_gets_no_popup_and_no_title_count(people: People) -> None:
    alice, bob = await _bob_muted_alice_and_looks_elsewhere(people)

    await send(alice, "psst, muted")

    await expect(chat_row(bob.page, "Alice")).to_contain_text("psst, muted")
    await expect(chat_row(bob.page, "Alice").locator(".unread-badge")).to_have_text("1")
    # Unread, yet neither a popup nor a count in the title.
    await expect(bob.page).to_have_title("Let's Chat")
    assert await bob.page.locator("[data-sonner-toast]").filter(has_text="psst").count() == 0


async def test_a_mention_gets_through_a_mute_and_marks_the_conversation(people: People) -> None:
    alice, bob = await _bob_muted_alice_and_looks_elsewhere(people)

    await send(alice, f"@{bob.username} can you look at this?")

    toast = bob.page.locator("[data-sonner-toast]").filter(has_text="can you look at this?")
    await expect(toast).to_have_count(1)
    row = chat_row(bob.page, "Alice")
    await expect(row.locator(".mention-badge")).to_have_text("@")
    await row.click()
    await expect(row.locator(".mention-badge")).to_have_count(0)


async def test_scrolling_up_loads_older_messages_without_moving_the_view(
    people: People, app: App
) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await start_direct(alice, bob)
    device = Device(app, alice)
    conversation_id = await _conversation_id(app, await device.token())
    # Alice writes the history from another device while this page is closed: it is paged in
    # when the conversation opens, not pushed.
    await alice.page.close()
    async with httpx.AsyncClient() as http:
        for n in range(70):
            while True:
                response = await http.post(
                    f"{app.stack.messages[1].url}/conversations/{conversation_id}/messages",
                    json={"body": f"history {n}", "client_msg_id": f"h{n}"},
                    headers={"Authorization": f"Bearer {await device.token()}"},
                )
                if response.status_code != 429:
                    break
                await asyncio.sleep(1)
            assert response.status_code == 201, response.text
    alice.page = await alice.context.new_page()
    await alice.page.goto(f"{app.url}/")
    await expect(alice.page.locator("#connection")).to_have_text("Connected")
    await chat_row(alice.page, "Bob").click()
    await expect(bubbles(alice.page, "history 69")).to_be_visible()
    await expect(alice.page.locator(".message")).to_have_count(50)
    await expect(alice.page.get_by_role("button", name="Jump to newest")).to_be_hidden()

    await alice.page.locator("#messages").evaluate(
        "list => { list.scrollTop = -list.scrollHeight; }"
    )

    await expect(alice.page.locator(".message")).to_have_count(70)
    # The reader stays where they were (at "history 20"), not thrown to the top of the new page.
    await expect(bubbles(alice.page, "history 20")).to_be_in_viewport()
    await expect(bubbles(alice.page, "history 0")).not_to_be_in_viewport()
    await expect(alice.page.locator("#load-older")).to_have_count(0)

    jump = alice.page.get_by_role("button", name="Jump to newest")
    await jump.click()
    await expect(bubbles(alice.page, "history 69")).to_be_in_viewport()
    await expect(bubbles(alice.page, "history 20")).not_to_be_in_viewport()
    await expect(jump).to_be_hidden()  # At the newest: nothing to jump to.


async def test_opted_in_notifications_reach_a_hidden_tab_only(people: People, app: App) -> None:
    alice = await people.sign_up("alice")
    bob = await people.sign_up("bob")
    await bob.context.grant_permissions(["notifications"], origin=app.url)
    await bob.context.add_init_script(VISIBILITY)
    await bob.context.add_init_script(RECORD_NOTIFICATIONS)
    await bob.page.reload()
    await expect(bob.page.locator("#connection")).to_have_text("Connected")
    await set_hidden(bob.page, True)
    await start_direct(alice, bob)

    await send(alice, "before opting in")
    await expect(chat_row(bob.page, "Alice")).to_contain_text("before opting in")
    await bob.page.get_by_role("button", name="Menu").click()
    await bob.page.get_by_role("menuitem", name="Turn on notifications").click()
    await bob.page.get_by_role("button", name="Menu").click()  # The choice has been applied:
    await expect(bob.page.get_by_role("menuitem", name="Turn off notifications")).to_be_visible()
    await bob.page.keyboard.press("Escape")
    await send(alice, "while hidden")

    shown = bob.page.locator("[data-sonner-toast]").filter(has_text="while hidden")
    await expect(shown).to_have_count(1)
    await expect(shown).to_be_hidden()  # Not rendered while nobody can see it...
    await bob.page.wait_for_function("window.__notifications.length > 0")
    assert await bob.page.evaluate("window.__notifications") == [
        {"title": "Alice", "body": "while hidden"}
    ]

    await set_hidden(bob.page, False)
    await expect(shown).to_be_visible()  # ...and there when the tab is back.
    await send(alice, "while looking")
    looking = bob.page.locator("[data-sonner-toast]").filter(has_text="while looking")
    await expect(looking).to_have_count(1)  # The popup, from the same update as any notification.
    assert len(await bob.page.evaluate("window.__notifications")) == 1
