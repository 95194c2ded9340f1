"""One browser notification per message however many tabs of the browser receive it, checked on
assets/letschat.js itself in a bare page (no app needed). Tabs are separate renderer processes
whose copies of localStorage learn of each other's writes a moment later (CI once saw two
hidden tabs both notify), and a full storage takes no writes at all: what one tab records there
cannot be what stops the others."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
from playwright.async_api import Browser, Page

from tests.e2e.conftest import RECORD_NOTIFICATIONS
from tests.support.visibility import INIT_SCRIPT as VISIBILITY
from tests.support.visibility import set_hidden

MESSAGES = 60
# localStorage over its quota: every write fails, as Chromium's does when the origin's is used up.
STORAGE_FULL = """
(() => {
  const setItem = Storage.prototype.setItem;
  Storage.prototype.setItem = function (key, value) {
    if (key === "letschat_notified") throw new DOMException("full", "QuotaExceededError");
    return setItem.call(this, key, value);
  };
})();
"""


async def _deliver(page: Page) -> None:
    # What the Reflex backend tells every tab for each new message, as fast as they arrive.
    await page.evaluate(
        """(count) => {
          for (let i = 0; i < count; i++) window.letschat.notify("Alice", "hi " + i, "m" + i);
        }""",
        MESSAGES,
    )


@pytest.mark.parametrize("storage", ["working", "full"])
async def test_tabs_of_one_browser_show_each_message_once(
    browser: Browser, script_site: str, storage: str
) -> None:
    context = await browser.new_context()
    try:
        await context.grant_permissions(["notifications"], origin=script_site)
        await context.add_init_script(VISIBILITY)
        await context.add_init_script(RECORD_NOTIFICATIONS)
        if storage == "full":
            await context.add_init_script(STORAGE_FULL)
        tabs = [await context.new_page() for _ in range(4)]
        for tab in tabs:
            await tab.goto(f"{script_site}/")
            await set_hidden(tab, True)  # Nobody is looking: each tab would notify.
        await asyncio.gather(*(_deliver(tab) for tab in tabs))
        for tab in tabs:
            await tab.wait_for_function(f"window.letschat.notifyChecks >= {MESSAGES}")
        shown = [n["body"] for tab in tabs for n in await tab.evaluate("window.__notifications")]
        assert sorted(shown) == sorted(f"hi {i}" for i in range(MESSAGES))
    finally:
        with contextlib.suppress(Exception):
            await context.close()
