"""The composer is one box for every conversation: what is typed in one and not sent stays with
it, and an edit or an answer started in one ends when another is opened."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, Locator, Page, expect

from tests.e2e.conftest import App, People, answer_late
from tests.e2e.test_chat import bubbles, chat_row, send, start_direct
from tests.e2e.test_message_changes import act, row


async def go_to(page: Page, name: str, draft: str) -> None:
    """Open the conversation with `name` from the sidebar: its composer holds `draft`."""
    await chat_row(page, name).click()
    await expect(page.locator("#chat-title")).to_have_text(name)
    await expect(page.locator("#composer")).to_have_value(draft)


async def test_a_draft_stays_with_the_conversation_it_was_typed_in(people: People) -> None:
    alice, bob, carol = [await people.sign_up(n) for n in ("alice", "bob", "carol")]
    await start_direct(alice, bob)
    await start_direct(alice, carol)
    page = alice.page
    title, composer = page.locator("#chat-title"), page.locator("#composer")

    await composer.fill("for Carol, later")
    await go_to(page, "Bob", "")
    await composer.fill("for Bob")
    await go_to(page, "Carol", "for Carol, later")

    # Alt+↑/↓ between conversations too; a draft sent is a draft no more.
    await composer.press("Alt+ArrowDown")
    await expect(title).to_have_text("Bob")
    await expect(composer).to_have_value("for Bob")
    await composer.press("Enter")
    await expect(bubbles(page, "for Bob")).to_have_count(1)
    await expect(composer).to_have_value("")
    # (Rows are drawn by place: Bob's moves to the top, so click once it is there.)
    await expect(page.locator(".chat-row").first).to_contain_text("for Bob")
    await go_to(page, "Carol", "for Carol, later")
    await go_to(page, "Bob", "")

    # A reload keeps them.
    await page.reload()
    await go_to(page, "Carol", "for Carol, later")

    # Nothing meant for one of them reached the other.
    await send(alice, "only this")
    await chat_row(carol.page, "Alice").click()
    await expect(carol.page.locator(".message .msg-body")).to_have_text(["only this"])
    await chat_row(bob.page, "Alice").click()
    await expect(bob.page.locator(".message .msg-body")).to_have_text(["for Bob"])


async def test_an_edit_ends_with_its_conversation_and_an_answer_waits_there(people: People) -> None:
    alice, bob, carol = [await people.sign_up(n) for n in ("alice", "bob", "carol")]
    await start_direct(alice, bob)
    await send(alice, "Lunch at noon?")
    await start_direct(alice, carol)
    page = alice.page
    title, composer = page.locator("#chat-title"), page.locator("#composer")
    mode = page.locator(".compose-mode")

    await chat_row(page, "Bob").click()
    await expect(title).to_have_text("Bob")
    await composer.fill("a draft for Bob")
    await act(alice, "Lunch at noon?", "Edit")
    await expect(composer).to_have_value("Lunch at noon?")
    await expect(composer).to_have_attribute("data-editing", "true")

    # Carol's conversation: a new message, not the edit of one in Bob's.
    await chat_row(page, "Carol").click()
    await expect(title).to_have_text("Carol")
    await expect(mode).to_have_count(0)
    await expect(composer).to_have_attribute("data-editing", "false")
    await expect(composer).to_have_value("")
    await send(alice, "Hi Carol")
    await expect(bubbles(page, "Hi Carol")).to_have_count(1)
    await expect(page.locator(".chat-row").first).to_contain_text("Hi Carol")

    # Back in Bob's the message is as it was and the draft is there again; saving an edit
    # brings it back too.
    await go_to(page, "Bob", "a draft for Bob")
    await expect(bubbles(page, "Lunch at noon?")).to_have_count(1)
    await expect(row(page, "Lunch at noon?").locator(".msg-edited")).to_have_count(0)
    await act(alice, "Lunch at noon?", "Edit")
    await expect(composer).to_have_value("Lunch at noon?")
    await composer.fill("Lunch at one?")
    await composer.press("Enter")
    await expect(row(page, "Lunch at one?").locator(".msg-edited")).to_have_count(1)
    await expect(composer).to_have_attribute("data-editing", "false")
    await expect(composer).to_have_value("a draft for Bob")

    # An answer waits in its conversation, with the draft.
    await act(alice, "Lunch at one?", "Reply")
    await expect(mode).to_contain_text("Replying to")
    await chat_row(page, "Carol").click()
    await expect(title).to_have_text("Carol")
    await expect(mode).to_have_count(0)
    await send(alice, "no quote")
    await expect(bubbles(page, "no quote")).to_have_count(1)
    await expect(row(page, "no quote").locator(".reply-quote")).to_have_count(0)
    await expect(page.locator(".chat-row").first).to_contain_text("no quote")
    await go_to(page, "Bob", "a draft for Bob")
    await expect(mode).to_contain_text("Replying to")
    await composer.press("Enter")
    await expect(row(page, "a draft for Bob").locator(".reply-quote")).to_contain_text(
        "Lunch at one?"
    )


async def test_what_is_typed_right_after_alt_arrow_is_for_where_it_goes(
    people: People, app: App
) -> None:
    # Alt+↑/↓ leaves the focus in the composer, and the page shows the next conversation a state
    # round trip later (0.4 s here, as on a busy box): what is typed meanwhile is for that one.
    # ↑ in an empty composer edits your last message, but not with Alt. An edit going on ends
    # with the switch.
    alice, bob, carol = [await people.sign_up(n) for n in ("alice", "bob", "carol")]
    await start_direct(alice, bob)
    await send(alice, "Lunch?")
    await start_direct(alice, carol)
    page = alice.page
    title, composer = page.locator("#chat-title"), page.locator("#composer")
    await answer_late(page)
    await chat_row(page, "Carol").click()
    await expect(title).to_have_text("Carol")
    await composer.fill("for Carol")
    await composer.press("Alt+ArrowDown")
    await page.keyboard.type("hi Bob")
    await expect(title).to_have_text("Bob")
    await expect(composer).to_have_value("hi Bob")
    await composer.fill("")

    await composer.press("Alt+ArrowUp")
    await page.keyboard.type(" and more")
    await expect(title).to_have_text("Carol")
    await expect(composer).to_have_value("for Carol and more")
    await expect(composer).to_have_attribute("data-editing", "false")

    await chat_row(page, "Bob").click()
    await expect(title).to_have_text("Bob")
    await act(alice, "Lunch?", "Edit")
    await expect(composer).to_have_attribute("data-editing", "true")
    await composer.press("End")
    await composer.press("Alt+ArrowUp")
    await page.keyboard.type("!")
    await expect(title).to_have_text("Carol")
    await expect(composer).to_have_attribute("data-editing", "false")
    await expect(composer).to_have_value("for Carol and more!")
    await go_to(page, "Bob", "")
    await expect(bubbles(page, "Lunch?")).to_have_count(1)
    await expect(row(page, "Lunch?").locator(".msg-edited")).to_have_count(0)

    # The login page, visited while signed in, sends you back; the drafts stay.
    await page.goto(f"{app.url}/login")
    await expect(title).to_have_count(0)
    await go_to(page, "Carol", "for Carol and more!")


@pytest.fixture
async def bare(browser: Browser, script_site: str) -> AsyncIterator[tuple[Page, Locator]]:
    """A page with letschat.js alone, and where its composer goes."""
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{script_site}/")
        yield page, page.locator("#composer")
    finally:
        await context.close()


# The composer as the app renders it (a new box each call, as React mounts one for a new key),
# and the buttons letschat.js clicks to tell the app that the user types (counted here). The
# form is sent as the app's is: what it held is recorded, then it is reset.
COMPOSER = """([user, conversation, editing]) => {
  document.getElementById("composer")?.form.remove();
  const form = document.createElement("form");
  form.innerHTML = '<textarea id="composer" data-limit="4000"></textarea>';
  const box = form.firstChild;
  box.setAttribute("data-user", user);
  box.setAttribute("data-conversation", conversation);
  box.setAttribute("data-editing", editing ? "true" : "false");
  box.defaultValue = editing || "";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    window.sent.push([box.getAttribute("data-conversation"), box.value]);
    form.reset();
  });
  document.body.prepend(form);
  if (!document.getElementById("typing-on")) {
    window.sent = [];
    window.typingSaid = 0;
    const typing = document.createElement("button");
    typing.id = "typing-on";
    typing.addEventListener("click", () => { window.typingSaid++; });
    document.body.append(typing);
  }
}"""
# The page shows `conversation` in the same box (null: some other change of the page); once
# letschat.js has seen it (a mutation observer's callback runs before the next task), what the
# box holds and how often the user was said to be typing.
SHOW = """async (conversation) => {
  const box = document.getElementById("composer");
  if (conversation !== null) box.setAttribute("data-conversation", conversation);
  else document.body.append(document.createElement("div"));
  await new Promise((resolve) => setTimeout(resolve, 0));
  return [box.value, window.typingSaid];
}"""
# The quick switcher with one match, which closes when chosen, as the app's does.
SWITCHER = """() => {
  const dialog = document.createElement("div");
  dialog.id = "switcher";
  dialog.setAttribute("role", "dialog");
  dialog.setAttribute("data-state", "open");
  dialog.innerHTML = '<input id="switcher-input"><div id="switcher-list" data-query="">' +
    '<button class="switch-item" type="button">Bob</button></div>';
  dialog.querySelector("button").addEventListener("click", () => dialog.remove());
  document.body.append(dialog);
  dialog.querySelector("input").focus();
}"""


async def opened_b(page: Page, box: Locator, typed_ahead: str) -> None:
    """The app opens B as it does for the switcher's choice: the call to focus the composer
    first, then the page showing B. What was typed after the choice's Enter (Enter included)
    is sent there, and the focus is there."""
    await page.evaluate("window.letschat.focusComposer('B')")
    await page.evaluate(COMPOSER, ["u1", "B", ""])
    await page.wait_for_function("window.sent.length > 0")
    assert await page.evaluate("window.sent") == [["B", typed_ahead]]
    await expect(box).to_be_focused()


async def test_the_draft_script_on_its_own(bare: tuple[Page, Locator]) -> None:
    page, box = bare
    await page.evaluate(COMPOSER, ["u1", "A", ""])
    await box.fill("draft for A")
    await box.evaluate("box => box.blur()")  # Typing ends: a new start would be said.
    said = await page.evaluate("window.typingSaid")

    # Editing a message in A, the switcher's choice and what is typed after its Enter come
    # before the page shows B: the call to focus the composer comes first, while the box is
    # still A's edit; those keys are for B's composer, once it is there.
    await page.evaluate(COMPOSER, ["u1", "A", "Lunch at noon?"])
    await page.evaluate(SWITCHER)
    await page.keyboard.press("Enter")
    await page.keyboard.type("see you")
    await page.keyboard.press("Enter")
    await opened_b(page, box, "see you")
    await expect(box).to_have_value("")
    await box.fill("for B")
    await box.evaluate("box => box.blur()")
    # Drafts put back are not typing; another change of the page is no switch.
    assert await page.evaluate(SHOW, "A") == ["draft for A", said + 1]
    assert await page.evaluate(SHOW, None) == ["draft for A", said + 1]
    assert await page.evaluate(SHOW, "B") == ["for B", said + 1]

    # An edit saved in A: the app may draw its box again before the new one comes, and React
    # then gives it back its default value, the message, which is not typed in the next one.
    await page.evaluate(SHOW, "A")
    await page.evaluate(COMPOSER, ["u1", "A", "Lunch at noon?"])
    await box.press("End")
    await box.type("!")
    await box.press("Enter")
    await expect(box).to_have_value("")
    await box.evaluate("box => { box.defaultValue = 'Lunch at noon?'; }")
    await page.evaluate(SHOW, None)
    await page.evaluate(COMPOSER, ["u1", "A", ""])
    await expect(box).to_have_value("draft for A")
    assert (await page.evaluate("window.sent"))[-1] == ["A", "Lunch at noon?!"]

    # Kept across a reload, per user; a message sent is no longer a draft; logged out, the
    # drafts are gone.
    await page.reload()
    await page.evaluate(COMPOSER, ["u1", "B", ""])
    await expect(box).to_have_value("for B")
    await box.press("Enter")
    await expect(box).to_have_value("")
    assert (await page.evaluate(SHOW, "A"))[0] == "draft for A"
    assert (await page.evaluate(SHOW, "B"))[0] == ""
    await page.evaluate(COMPOSER, ["u2", "A", ""])
    await expect(box).to_have_value("")
    await page.evaluate(
        "async () => { document.body.innerHTML = '<form id=login-form></form>';"
        " await new Promise((resolve) => setTimeout(resolve, 0)); }"
    )
    await page.reload()
    await page.evaluate(COMPOSER, ["u1", "A", ""])
    await expect(box).to_have_value("")


async def test_keys_typed_after_the_switchers_choice_wait_for_its_conversation(
    bare: tuple[Page, Locator],
) -> None:
    # An answer that puts the focus in the composer (a reply started just before, say) can
    # come after the switcher's Enter and before the conversation chosen is open: it neither
    # takes what was typed since nor the focus, which the conversation chosen gets.
    page, box = bare
    await page.evaluate(COMPOSER, ["u1", "A", ""])
    await page.evaluate(SWITCHER)
    await page.keyboard.press("Enter")
    await page.keyboard.type("for B")
    await page.evaluate(
        "() => new Promise((resolve) => { window.letschat.focusComposer();"
        " requestAnimationFrame(() => requestAnimationFrame(resolve)); })"
    )
    await expect(box).to_have_value("")
    await expect(box).not_to_be_focused()
    await page.keyboard.type(" too")
    await page.keyboard.press("Enter")
    await opened_b(page, box, "for B too")


# The sidebar's rows, A open; a click only records where it would go (the app opens it later).
SIDEBAR = """() => {
  const sidebar = document.createElement("div");
  sidebar.id = "sidebar";
  for (const id of ["A", "B", "C"]) {
    const row = document.createElement("div");
    row.className = "chat-row";
    row.dataset.conversation = id;
    row.setAttribute("aria-current", id === "A" ? "true" : "false");
    row.addEventListener("click", () => { window.opening = id; });
    sidebar.append(row);
  }
  document.body.append(sidebar);
}"""


async def test_a_draft_switched_by_alt_arrow_gives_way_to_what_the_page_shows(
    bare: tuple[Page, Locator],
) -> None:
    # Alt+↓ puts the next conversation's draft in the box at once. If the page then shows some
    # other conversation (another was clicked meanwhile), the box holds that one's draft.
    page, box = bare
    await page.evaluate(SIDEBAR)
    await page.evaluate(COMPOSER, ["u1", "C", ""])
    await box.fill("for C")
    await page.evaluate(SHOW, "B")
    await box.fill("for B")
    await page.evaluate(SHOW, "A")
    await box.fill("for A")
    await box.press("Alt+ArrowDown")
    assert await page.evaluate("window.opening") == "B"
    await expect(box).to_have_value("for B")
    assert (await page.evaluate(SHOW, "C"))[0] == "for C"
    assert (await page.evaluate(SHOW, "A"))[0] == "for A"
