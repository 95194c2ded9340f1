"""axe-core on the login and chat pages, in the light and the dark theme: no serious or
critical violation. axe-core comes from the npm registry (scripts/setup puts it in .tools)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import App, People
from tests.e2e.test_chat import chat_row, send, start_direct

AXE = Path(__file__).resolve().parents[2] / ".tools" / "axe" / "node_modules" / "axe-core"
FAILING_IMPACTS = {"serious", "critical"}


async def violations(page: Page, scheme: str) -> list[str]:
    """What axe finds on the page as it is now, serious or worse, one line each (in the theme
    `scheme`, which the page must show)."""
    theme = await page.evaluate("() => document.documentElement.classList.contains('dark')")
    assert theme == (scheme == "dark"), f"the page is not in its {scheme} theme"
    # Evaluated over the DevTools protocol: the page's Content-Security-Policy (rightly) lets no
    # script tag of ours run.
    await page.evaluate((AXE / "axe.min.js").read_text(encoding="utf-8") + "\n;true")
    raw = await page.evaluate(
        """async () => {
            const result = await axe.run(document, { resultTypes: ["violations"] });
            return JSON.stringify(result.violations);
        }"""
    )
    found = []
    for violation in json.loads(raw):
        if violation["impact"] not in FAILING_IMPACTS:
            continue
        for node in violation["nodes"]:
            found.append(
                f"{violation['impact']} {violation['id']}: {node['target']} "
                f"({node.get('failureSummary', '').splitlines()[-1:]})"
            )
    return found


def assert_clean(found: list[str]) -> None:
    assert not found, "axe found:\n" + "\n".join(found)


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_login_page_has_no_serious_violations(
    people: People, app: App, scheme: str
) -> None:
    person = await people.open("visitor")
    await person.page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    await person.page.goto(f"{app.url}/login")
    await expect(person.page.get_by_role("button", name="Log in")).to_be_visible()
    assert_clean(await violations(person.page, scheme))
    await person.page.get_by_role("button", name="Create an account").click()
    await expect(person.page.get_by_label("Display name (optional)")).to_be_visible()
    assert_clean(await violations(person.page, scheme))


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_the_chat_page_has_no_serious_violations(people: People, scheme: str) -> None:
    alice, bob = await people.sign_up("alice"), await people.sign_up("bob")
    await alice.page.emulate_media(color_scheme=scheme)  # type: ignore[arg-type]
    await start_direct(alice, bob)
    await send(alice, "Hello **Bob**, see https://example.com")
    await chat_row(bob.page, "Alice").click()
    await send(bob, "Hi Alice")
    await expect(
        alice.page.locator(".message .msg-body").filter(has_text="Hi Alice")
    ).to_have_count(1)
    assert_clean(await violations(alice.page, scheme))
    # The message list is a live region and scrolls from the keyboard.
    messages = alice.page.locator("#messages")
    await expect(messages).to_have_attribute("role", "log")
    assert await messages.get_attribute("tabindex") == "0"
    await expect(alice.page.locator("main")).to_have_count(1)
