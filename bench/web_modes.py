"""`python -m bench.web_modes`: the web app's first page load and chat switching, in development
mode (`scripts/run`) and the production build (`scripts/run --prod`), quiet and with the box busy.

Each mode runs the README's command on ports and data of its own, filled by `scripts/demo`
first. Then Chromium (a new browser context per load: nothing cached) opens /login, and times
how long until the login form shows and until maya is logged in and connected (typing
included, the same in both modes); the first load after start is reported on its own, since a
development server compiles on it. In the last context she switches between her six
conversations, `--rounds` times round: a switch is timed from the click until the
conversation's title and newest message show. "Busy" repeats it all with one busy loop per core
running (bounded: each stops by itself).

The issue that asked for the production mode measured development mode at 4-8 s for the first
page and up to 760 ms per switch; the table prints both modes side by side from the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.e2e.conftest import CHROMIUM_ARGS
from tests.support.processes import REPO_ROOT, Process, free_port, wait_until

READY = "Let's Chat is ready."
PASSWORD = "letschat-demo"  # noqa: S105 - scripts/demo_team.toml, a demo account
WHO = "maya"
START_TIMEOUT_S = 600.0
STEP_TIMEOUT_MS = 60_000


@dataclass
class Figures:
    first_form: float = 0.0  # The first load after start: the login form shows.
    first_ready: float = 0.0  # ... and maya is logged in and connected.
    forms: list[float] = field(default_factory=list)  # The other cold loads.
    readies: list[float] = field(default_factory=list)
    switches: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class Running:
    url: str  # The web app.
    auth_url: str
    message_url: str


@contextlib.contextmanager
def launched(mode: str, work: Path) -> Iterator[Running]:
    """scripts/run (with --prod for "prod") on the demo team."""
    ports = {
        name: str(free_port())
        for name in (
            "LETSCHAT_AUTH_PORT",
            "LETSCHAT_MESSAGE_PORT",
            "LETSCHAT_EMBEDDED_MONGODB_PORT",
            "LETSCHAT_FRONTEND_PORT",
            "LETSCHAT_REFLEX_BACKEND_PORT",
        )
    }
    env = {**ports, "LETSCHAT_DATA_DIR": str(work / mode / "data"), "LETSCHAT_MONGODB_URL": ""}
    env["LETSCHAT_REDIS_URL"] = ""
    seeded = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "demo.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=False,
    )
    if seeded.returncode != 0:
        raise RuntimeError(f"scripts/demo failed:\n{seeded.stderr}")
    args = [sys.executable, str(REPO_ROOT / "scripts" / "run.py")]
    launcher = Process(
        f"run-{mode}", [*args, "--prod"] if mode == "prod" else args, work / f"{mode}.log", env
    )
    launcher.start()
    try:
        wait_until(
            lambda: READY in launcher.log() or not launcher.running, START_TIMEOUT_S, "the app"
        )
        if not launcher.running:
            raise RuntimeError(f"scripts/run stopped:\n{launcher.log()[-4000:]}")
        yield Running(
            f"http://127.0.0.1:{ports['LETSCHAT_FRONTEND_PORT']}",
            f"http://127.0.0.1:{ports['LETSCHAT_AUTH_PORT']}",
            f"http://127.0.0.1:{ports['LETSCHAT_MESSAGE_PORT']}",
        )
    finally:
        launcher.signal(signal.SIGINT)
        launcher.wait(60)


@contextlib.contextmanager
def busy(on: bool, seconds: float) -> Iterator[None]:
    """One busy loop per core while inside (each also ends by itself after `seconds`)."""
    loops = []
    if on:
        code = (
            f"import time\nend = time.monotonic() + {seconds}\nwhile time.monotonic() < end: pass"
        )
        loops = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(os.cpu_count() or 1)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


async def load_and_log_in(browser: Browser, url: str) -> tuple[float, float, Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    started = time.perf_counter()
    await page.goto(f"{url}/login", wait_until="commit", timeout=STEP_TIMEOUT_MS)
    await expect(page.get_by_role("button", name="Log in")).to_be_visible(timeout=STEP_TIMEOUT_MS)
    form = time.perf_counter() - started
    await page.get_by_label("Username").fill(WHO)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Log in").click()
    await expect(page.locator("#connection")).to_have_text("Connected", timeout=STEP_TIMEOUT_MS)
    return form, time.perf_counter() - started, page


def fragment(body: str) -> str:
    """A stretch of plain words from a message, as its rendered bubble shows them."""
    runs = re.findall(r"[A-Za-z0-9][A-Za-z0-9 ,.'-]{6,}", body)
    return max(runs, key=len)[:24].strip() if runs else body[:12]


async def switch_round(page: Page, newest: dict[str, str], figures: Figures) -> None:
    for name, text in newest.items():
        row = page.locator(".chat-row").filter(has_text=name).first
        started = time.perf_counter()
        await row.click()
        await expect(page.locator("#chat-title")).to_have_text(name, timeout=STEP_TIMEOUT_MS)
        await expect(page.locator(".message .msg-body").last).to_contain_text(
            text, timeout=STEP_TIMEOUT_MS
        )
        figures.switches.append(time.perf_counter() - started)


async def measure(browser: Browser, app: Running, args: argparse.Namespace) -> Figures:
    figures = Figures()
    newest = await newest_texts(app)
    for index in range(args.loads + 1):
        form, ready, page = await load_and_log_in(browser, app.url)
        if index == 0:
            figures.first_form, figures.first_ready = form, ready
        else:
            figures.forms.append(form)
            figures.readies.append(ready)
        if index < args.loads:
            await page.context.close()
    for _ in range(args.rounds):
        await switch_round(page, newest, figures)
    await page.context.close()
    return figures


async def newest_texts(app: Running) -> dict[str, str]:
    """maya's conversations: name -> a fragment of the newest message, from the services."""
    async with httpx.AsyncClient(timeout=30) as http:
        login = await http.post(
            f"{app.auth_url}/auth/login", json={"username": WHO, "password": PASSWORD}
        )
        login.raise_for_status()
        token = login.json()["access_token"]
        listed = await http.get(
            f"{app.message_url}/conversations", headers={"Authorization": f"Bearer {token}"}
        )
        listed.raise_for_status()
    return {c["name"]: fragment(c["last_message"]["body"]) for c in listed.json()}


def table(results: dict[tuple[str, str], Figures]) -> str:
    def ms(value: float) -> str:
        return f"{value * 1000:,.0f}"

    lines = [
        "| mode | box | first load: form / logged in (ms) | later loads: form / logged in, "
        "median (ms) | switch median / p90 / max (ms) | switches |",
        "|---|---|---|---|---|---|",
    ]
    for (mode, box), f in results.items():
        switches = sorted(f.switches)
        p90 = switches[min(len(switches) - 1, int(len(switches) * 0.9))]
        lines.append(
            f"| {mode} | {box} | {ms(f.first_form)} / {ms(f.first_ready)} | "
            f"{ms(statistics.median(f.forms))} / {ms(statistics.median(f.readies))} | "
            f"{ms(statistics.median(switches))} / {ms(p90)} / {ms(switches[-1])} | "
            f"{len(switches)} |"
        )
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> None:
    results: dict[tuple[str, str], Figures] = {}
    with tempfile.TemporaryDirectory(prefix="web-modes-") as scratch:
        work = Path(scratch)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
            )
            try:
                for mode in args.modes:
                    for box in args.boxes:
                        # Started afresh for each: its first load is the first after start.
                        with launched(mode, work / box) as app, busy(box == "busy", seconds=600):
                            results[(mode, box)] = await measure(browser, app, args)
                        print(f"{mode} {box}: done", flush=True)
            finally:
                await browser.close()
    print(table(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["dev", "prod"], choices=["dev", "prod"])
    parser.add_argument("--boxes", nargs="+", default=["quiet", "busy"], choices=["quiet", "busy"])
    parser.add_argument("--loads", type=int, default=5, help="cold loads after the first")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the six conversations")
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
