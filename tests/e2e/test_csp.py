"""The Content-Security-Policy in a real browser: every page is sent a strict one, nothing the
app does trips it (sign up, log in, a conversation, toasts, notifications, the account dialog),
and it is enforced, not only reported: a script injected into the page does not run."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
from playwright.async_api import expect

from tests.e2e.conftest import PASSWORD, App, People, Person
from tests.e2e.test_chat import bubbles, chat_row, send, start_direct

# Each violation the page sees goes to the test, across navigations and reloads (and is kept in
# the page too, for waiting on).
RECORD_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  const seen =
    `${event.disposition} ${event.effectiveDirective}: ${event.blockedURI || "?"} ` +
    `at ${event.sourceFile}:${event.lineNumber} (${event.sample})`;
  window.__cspViolations.push(seen);
  window.__cspViolation(seen);
}, true);
"""
# A script of someone else's, as an XSS would add it.
INJECT_SCRIPT = """() => {
  const script = document.createElement("script");
  script.textContent = "window.__injected = 'script';";
  document.body.appendChild(script);
  const img = document.createElement("img");
  img.setAttribute("onerror", "window.__injected = 'handler';");
  img.src = "data:,not-an-image";
  document.body.appendChild(img);
}"""
# How Chromium logs them (older versions: "Refused to execute inline script because ...").
REFUSED = re.compile(r"^(Executing|Refused to execute) inline (script|event handler)\b")


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        assert name not in parsed, f"{name} given twice in {policy!r}"
        parsed[name] = sources
    return parsed


def assert_strict_page_policy(policy: str | None, app: App) -> None:
    assert policy, "no Content-Security-Policy"
    found = directives(policy)
    assert found["object-src"] == ["'none'"]
    assert found["base-uri"] == ["'none'"]
    assert found["frame-ancestors"] == ["'none'"]
    assert found["form-action"] == ["'self'"]
    assert sorted(found["img-src"]) == sorted(["'self'", "data:", "blob:"])
    assert found["default-src"] == ["'self'"]
    scripts = found["script-src"]
    assert "'unsafe-inline'" not in scripts
    assert all(
        source in ("'self'", "'unsafe-eval'")
        or re.fullmatch(r"'sha256-[A-Za-z0-9+/]{43}='", source)
        for source in scripts
    ), scripts
    assert any(source.startswith("'sha256-") for source in scripts), scripts
    backend = urlsplit(app.url).netloc
    assert set(found["connect-src"]) <= {"'self'", f"http://{backend}", f"ws://{backend}"}


def test_every_page_and_backend_response_carries_the_policy(app: App) -> None:
    revalidated = 0
    with httpx.Client(base_url=app.url, timeout=10) as http:
        for path in ("/login", "/", "/no-such-page"):
            response = http.get(path, follow_redirects=True)
            assert response.headers["content-type"].startswith("text/html"), path
            assert_strict_page_policy(response.headers.get("content-security-policy"), app)
            assert response.headers["x-content-type-options"] == "nosniff"
            # A reload revalidates: a 304's headers replace the cached page's, so it must not
            # carry another policy (a deny-all one blanked reloaded pages).
            validators = {
                header: response.headers[source]
                for source, header in (
                    ("etag", "if-none-match"),
                    ("last-modified", "if-modified-since"),
                )
                if source in response.headers
            }
            if validators:
                again = http.get(str(response.url), headers=validators)
                if again.status_code == 304:
                    revalidated += 1
                    policy = again.headers.get("content-security-policy")
                    assert policy is None or policy == response.headers["content-security-policy"]
        assert revalidated  # The pages are cached and revalidated, as a reload does.
        ping = http.get("/ping")
        assert ping.status_code == 200
        assert directives(ping.headers["content-security-policy"])["default-src"] == ["'none'"]
        assert directives(ping.headers["content-security-policy"])["frame-ancestors"] == ["'none'"]
        assert ping.headers["x-content-type-options"] == "nosniff"


async def recorded(people: People, name: str, violations: list[str]) -> Person:
    person = await people.open(name)

    def record(violation: str) -> None:
        violations.append(violation)

    await person.context.expose_function("__cspViolation", record)
    await person.context.add_init_script(RECORD_VIOLATIONS)
    return person


async def test_a_whole_conversation_trips_no_policy_and_an_injected_script_is_blocked(
    people: People, app: App
) -> None:
    violations: list[str] = []
    alice = await recorded(people, "alice", violations)
    page = alice.page
    response = await page.goto(f"{app.url}/login")
    assert response is not None
    assert_strict_page_policy(await response.header_value("content-security-policy"), app)
    await page.get_by_role("button", name="Create an account").click()
    await page.get_by_label("Username").fill(alice.username)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_label("Display name (optional)").fill("Alice")
    await page.get_by_role("button", name="Sign up").click()
    await expect(page.locator("#connection")).to_have_text("Connected")

    # Bob signed up somewhere else and logs in here.
    bob = await recorded(people, "bob", violations)
    bob.username = (await people.sign_up("bob")).username
    await bob.page.goto(f"{app.url}/login")
    await bob.page.get_by_label("Username").fill(bob.username)
    await bob.page.get_by_label("Password").fill(PASSWORD)
    await bob.page.get_by_role("button", name="Log in").click()
    await expect(bob.page.locator("#connection")).to_have_text("Connected")
    await bob.context.grant_permissions(["notifications"], origin=app.url)
    await bob.page.get_by_role("button", name="Menu").click()
    await bob.page.get_by_role("menuitem", name="Turn on notifications").click()

    await start_direct(alice, bob)
    await send(alice, "Is this page locked down?")
    await expect(bubbles(alice.page, "Is this page locked down?")).to_have_count(1)
    toast = bob.page.locator("[data-sonner-toast]").filter(has_text="Alice")
    await expect(toast).to_contain_text("Is this page locked down?")
    await toast.get_by_role("button", name="Open").click()
    await expect(bob.page.locator("#chat-title")).to_have_text("Alice")
    await expect(bubbles(bob.page, "Is this page locked down?")).to_have_count(1)
    await send(bob, "Tight as a drum.")
    await expect(bubbles(alice.page, "Tight as a drum.")).to_have_count(1)
    await expect(chat_row(alice.page, "Bob")).to_contain_text("Tight as a drum.")

    await bob.page.get_by_role("button", name="Menu").click()
    await bob.page.get_by_role("menuitem", name="Sessions and password").click()
    await expect(bob.page.get_by_role("dialog")).to_be_visible()
    await expect(bob.page.locator(".device-row")).to_have_count(2)
    await bob.page.get_by_role("dialog").get_by_role("button", name="Close", exact=True).click()
    await expect(bob.page.get_by_role("dialog")).to_be_hidden()

    await bob.page.reload()
    await expect(bob.page.locator("#connection")).to_have_text("Connected")
    assert violations == []

    await page.evaluate(INJECT_SCRIPT)
    # An inline script runs as it is inserted: had the policy let it, the flag would be set now.
    assert await page.evaluate("window.__injected") is None
    await page.wait_for_function("window.__cspViolations.length >= 2")
    assert await page.evaluate("window.__injected") is None  # nor the handler, later
    seen = await page.evaluate("window.__cspViolations")
    assert sorted(v.split(":")[0] for v in seen) == [
        "enforce script-src-attr",
        "enforce script-src-elem",
    ], seen
    # Chromium says so in the console too; those two lines are this test's, not the app's.
    refused = [line for line in alice.console_errors if REFUSED.match(line)]
    assert len(refused) == 2, alice.console_errors
    for line in refused:
        alice.console_errors.remove(line)
