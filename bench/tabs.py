"""The browser side of `bench.browser_fanout`: one signed-in Chromium tab per person, each
recording in the page when every benchmark message first shows and how many copies of it the
page ever shows at once, and in the sender's tab when Enter was pressed for each."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from playwright.async_api import Browser, BrowserContext, CDPSession, Page

from tests.support import visibility

# Installed before the app loads. Message bodies are "<prefix><index>". The observer scans every
# bubble on each DOM change, so a message shown twice at once (a duplicate) is counted too.
RECORDER = """
(() => {
  const prefix = %(prefix)s;
  const record = { seen: {}, copies: {}, enter: {} };
  window.__bench = record;
  const now = () => performance.timeOrigin + performance.now();
  const indexOf = (text) => {
    if (!text || !text.startsWith(prefix)) return -1;
    const n = Number(text.slice(prefix.length));
    return Number.isInteger(n) ? n : -1;
  };
  new MutationObserver(() => {
    const t = now();
    const counts = {};
    for (const body of document.querySelectorAll(".message .msg-body")) {
      const n = indexOf(body.textContent);
      if (n >= 0) counts[n] = (counts[n] || 0) + 1;
    }
    for (const [n, count] of Object.entries(counts)) {
      if (!(n in record.seen)) record.seen[n] = t;
      record.copies[n] = Math.max(record.copies[n] || 0, count);
    }
  }).observe(document, { childList: true, subtree: true, characterData: true });
  // Capture phase: this runs before the app's own Enter handler sends the message.
  document.addEventListener("keydown", (event) => {
    const box = event.target;
    if (event.key !== "Enter" || event.shiftKey || !box || box.id !== "composer") return;
    const n = indexOf(box.value.trim());
    if (n >= 0 && !(n in record.enter)) record.enter[n] = now();
  }, true);
})();
"""
# Signed in before the app reads its storage, as if the person had logged in earlier.
SIGNED_IN = """
if (location.origin === %(origin)s) localStorage.setItem("letschat_token", %(token)s);
"""
OPEN_TIMEOUT_MS = 90_000


RENDERER_METRICS = {
    "script": "ScriptDuration",
    "style": "RecalcStyleDuration",
    "layout": "LayoutDuration",
    "tasks": "TaskDuration",
}


@dataclass
class Tab:
    """One person's tab: its own browser context, so its own localStorage."""

    name: str
    context: BrowserContext
    page: Page
    hidden: bool = False
    console_errors: list[str] = field(default_factory=list)
    _cdp: CDPSession | None = None

    async def record(self) -> dict[str, dict[str, float]]:
        """What the page recorded: seen/copies/enter, keyed by message index (as a string)."""
        return dict(await self.page.evaluate("window.__bench"))

    async def seen_count(self) -> int:
        return int(await self.page.evaluate("Object.keys(window.__bench.seen).length"))

    async def send(self, text: str) -> None:
        """Type `text` into the composer and press Enter, as a person would."""
        composer = self.page.locator("#composer")
        await composer.fill(text)
        await composer.press("Enter")

    async def set_hidden(self, hidden: bool) -> None:
        await visibility.set_hidden(self.page, hidden)
        self.hidden = hidden

    async def renderer_metrics(self) -> dict[str, float]:
        """The tab's renderer time since the first call, in seconds, by kind (CDP
        `Performance.getMetrics`): script, style, layout and all its main-thread tasks."""
        if self._cdp is None:
            self._cdp = await self.context.new_cdp_session(self.page)
            await self._cdp.send("Performance.enable")  # Counting starts here.
        answer = await self._cdp.send("Performance.getMetrics")
        metrics = {m["name"]: float(m["value"]) for m in answer["metrics"]}
        return {name: metrics.get(key, 0.0) for name, key in RENDERER_METRICS.items()}


async def open_tab(
    browser: Browser, app_url: str, name: str, token: str, group: str, prefix: str
) -> Tab:
    """A signed-in tab with `group` open and its live connection up."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    origin = app_url.rstrip("/")
    await context.add_init_script(visibility.INIT_SCRIPT)
    await context.add_init_script(RECORDER % {"prefix": json.dumps(prefix)})
    await context.add_init_script(
        SIGNED_IN % {"origin": json.dumps(origin), "token": json.dumps(token)}
    )
    page = await context.new_page()
    tab = Tab(name, context, page)
    page.on("console", lambda m: tab.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda exc: tab.console_errors.append(str(exc)))
    try:
        await page.goto(f"{origin}/", timeout=OPEN_TIMEOUT_MS)
        connected = page.locator("#connection").filter(has_text="Connected")
        await connected.wait_for(timeout=OPEN_TIMEOUT_MS)
        await page.locator(".chat-row").filter(has_text=group).click(timeout=OPEN_TIMEOUT_MS)
        await page.locator("#composer").wait_for(timeout=OPEN_TIMEOUT_MS)
        await connected.wait_for(timeout=OPEN_TIMEOUT_MS)
    except BaseException:
        await context.close()
        raise
    return tab


async def open_tabs(
    browser: Browser,
    app_url: str,
    people: list[tuple[str, str]],
    group: str,
    prefix: str,
    concurrency: int,
) -> list[Tab]:
    """Open a tab for each (name, token), a few at a time: loading the app is the heavy part."""
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str, token: str) -> Tab:
        async with gate:
            return await open_tab(browser, app_url, name, token, group, prefix)

    results = await asyncio.gather(*(one(n, t) for n, t in people), return_exceptions=True)
    tabs = [r for r in results if isinstance(r, Tab)]
    failure = next((r for r in results if isinstance(r, BaseException)), None)
    if failure is not None:
        await close_tabs(tabs)
        raise failure
    return tabs


async def close_tabs(tabs: list[Tab]) -> None:
    await asyncio.gather(*(tab.context.close() for tab in tabs), return_exceptions=True)
