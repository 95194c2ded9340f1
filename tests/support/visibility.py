"""Hidden and unfocused tabs for headless Chromium, which reports every page visible and focused.

Install `INIT_SCRIPT` before the page loads (`await context.add_init_script(INIT_SCRIPT)`), then
`await set_hidden(page, True)` makes the page look like a background tab to the app:
`document.visibilityState` is "hidden", `document.hidden` is true, `document.hasFocus()` is false,
and `blur` then `visibilitychange` fire, in the order Chromium fires them when you switch away.
`set_hidden(page, False)` undoes it (`visibilitychange`, then `focus`). Only what scripts can see
changes: the page keeps rendering and its timers are not throttled. A reload starts visible,
as a reload by a person happens in a tab they are looking at.
"""

from __future__ import annotations

from playwright.async_api import Page

INIT_SCRIPT = """
(() => {
  if (window.__letschatSetHidden) return;
  window.__letschatHidden = false;
  const proto = Document.prototype;
  Object.defineProperty(proto, "hidden", {
    configurable: true,
    get() { return window.__letschatHidden; },
  });
  Object.defineProperty(proto, "visibilityState", {
    configurable: true,
    get() { return window.__letschatHidden ? "hidden" : "visible"; },
  });
  proto.hasFocus = function hasFocus() { return !window.__letschatHidden; };
  window.__letschatSetHidden = (hidden) => {
    hidden = Boolean(hidden);
    if (hidden === window.__letschatHidden) return;
    window.__letschatHidden = hidden;
    if (hidden) window.dispatchEvent(new FocusEvent("blur"));
    document.dispatchEvent(new Event("visibilitychange", { bubbles: true }));
    if (!hidden) window.dispatchEvent(new FocusEvent("focus"));
  };
})();
"""

_FLIP = """
(hidden) => {
  if (!window.__letschatSetHidden) return false;
  window.__letschatSetHidden(hidden);
  return true;
}
"""


async def set_hidden(page: Page, hidden: bool) -> None:
    """Show `page` as a hidden, unfocused tab (or as visible and focused again)."""
    if not await page.evaluate(_FLIP, hidden):
        raise RuntimeError(
            "visibility emulation is not installed in this page: "
            "add tests.support.visibility.INIT_SCRIPT with add_init_script before it loads"
        )
