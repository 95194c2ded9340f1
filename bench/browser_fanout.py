"""Browser fan-out: K Chromium tabs in one group, one of them typing, beside raw sockets.

One run starts SecantusDB, the auth service, two message-service instances (Redis fan-out) and
the production build of the Reflex app exactly as the E2E tests run it. For every tab count and
hidden share it measures two paths over the same stack, one after the other:

- **raw socket**: K lean WebSocket clients on the message service (a group of their own, split
  over both instances, as in `bench.fanout`), one of them sending at the rate;
- **browser**: K people, each signed in in their own browser context with the group open, one
  of them typing into the composer and pressing Enter at the rate; the chosen share of the other
  tabs is hidden and unfocused (`tests.support.visibility`).

Each path reports per tab-delivery the CPU of the Reflex backend, the message services and the
store (whole process trees, over exactly the send-to-last-shown window), the p50/p99 from Enter
to shown in every other tab, and counts what every tab showed. Everything binds 127.0.0.1,
every wait is bounded, everything started is stopped at the end, on Ctrl-C and errors too.

    .venv/bin/python -m bench.browser_fanout            # 10 and 20 tabs, none and half hidden
    .venv/bin/python -m bench.browser_fanout --tabs 4 --hidden 0 --messages 10   # smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import uuid
from pathlib import Path

import httpx
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright

from bench.browser_paths import POLL_S, Bench, browser_path, raw_path
from bench.browser_report import Outcome, print_report
from bench.cpu import child_pids, tree_pids, wait_for_quiet
from bench.fanout import work_directory
from tests.e2e.conftest import CHROMIUM_ARGS, _reflex, _serving
from tests.support.processes import Process, free_port, start_secantus, wait_until
from tests.support.stack import Stack, running_stack

REDIS_URL = os.environ.get("LETSCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
# A tab the browser closed keeps its Reflex-side live socket this long (TAB_GONE_SECONDS in
# letschat_app/state/live.py, 30 s), plus margin; the next scenario waits for them to go.
LINGER_CAP_S = 60.0


def _ints(text: str) -> list[int]:
    return [int(part) for part in text.split(",") if part.strip()]


def _shares(text: str) -> list[float]:
    return [float(part) for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--tabs", type=_ints, default=[10, 20], help="tabs in the group; a list sweeps")
    add(
        "--hidden",
        type=_shares,
        default=[0.0, 0.5],
        help="share of the tabs that are hidden (never the sender's); a list sweeps",
    )
    add("--rate", type=float, default=2.0, help="messages per second the sender types")
    add("--messages", type=int, default=60, help="messages per path and scenario")
    add("--idle-seconds", type=float, default=10.0, help="idle CPU measured with the tabs open")
    add("--open-concurrency", type=int, default=4, help="tabs loading the app at once")
    add("--quiet-wait", type=float, default=0.0, metavar="SECONDS", help="wait for an idle box")
    add(
        "--profile",
        type=Path,
        metavar="DIR",
        help="py-spy the Reflex backend over each browser window; raw stacks go to DIR",
    )
    add("--keep-logs", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if not args.tabs or min(args.tabs) < 2 or args.messages < 1 or args.rate <= 0:
        parser.error("need --tabs >= 2, --messages >= 1 and --rate > 0")
    if not args.hidden or not all(0 <= share < 1 for share in args.hidden):
        parser.error("--hidden shares must be in [0, 1)")
    return args


def service_overrides() -> dict[str, str]:
    run = uuid.uuid4().hex[:12]
    return {
        "LETSCHAT_CHANNEL_PREFIX": f"bench:{run}:",
        "LETSCHAT_MONGODB_DB": f"bench_{run}",
        # The raw sender may go faster than a person; measure fan-out, not the limiter.
        "LETSCHAT_SEND_BURST": "1000000",
        "LETSCHAT_SEND_RATE_PER_SECOND": "1000000",
        "LETSCHAT_FRAME_BURST": "1000000",
        "LETSCHAT_FRAME_RATE_PER_SECOND": "1000000",
        # Production's sweep interval and log level, as in bench.fanout.
        "LETSCHAT_SESSION_SWEEP_SECONDS": "15",
        "LETSCHAT_LOG_LEVEL": "warning",
    }


def _pid(process: Process) -> int:
    assert process.popen is not None
    return int(process.popen.pid)


def _live_sockets(root_pid: int, port: int) -> int:
    """Established TCP connections from `root_pid`'s process tree to `port` on loopback."""
    inodes = set()
    for pid in tree_pids(root_pid):
        try:
            links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
        except OSError:
            continue
        inodes |= {link[8:-1] for link in links if link.startswith("socket:[")}
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as rows:
            for row in list(rows)[1:]:
                cells = row.split()
                established = cells[3] == "01"
                if established and int(cells[2].rsplit(":", 1)[1], 16) == port:
                    count += cells[9] in inodes
    return count


async def _wait_for_lingering_tabs(bench: Bench) -> None:
    port = bench.stack.messages[0].port
    for _ in range(int(LINGER_CAP_S / POLL_S)):
        if not _live_sockets(bench.trees["reflex"], port):
            return
        await asyncio.sleep(POLL_S)


def _driver_pid() -> int:
    """Playwright's driver, a child of this process; the browser runs under it."""
    for pid in child_pids(os.getpid()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"playwright" in cmdline.read():
                    return pid
        except OSError:
            continue
    raise RuntimeError("Playwright's driver process not found")


def _scenarios(args: argparse.Namespace) -> list[tuple[int, int]]:
    """(tabs, hidden tabs): a share of the tabs, rounded, never the sender's."""
    pairs = [(k, min(k - 1, round(k * share))) for k in args.tabs for share in args.hidden]
    return list(dict.fromkeys(pairs))


async def measure_all(
    args: argparse.Namespace, stack: Stack, web: Process, servers: dict[str, int], work: Path
) -> tuple[list[Outcome], list[str]]:
    """Every scenario, raw path then browser path, in one browser; failures are reported."""
    outcomes: list[Outcome] = []
    failures: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        try:
            trees = {**servers, "browser": _driver_pid()}
            bench = Bench(args, stack, _app_url(web), browser, web, trees, REDIS_URL, work)
            for tabs, hidden in _scenarios(args):
                for path in (raw_path, browser_path):
                    await _wait_for_lingering_tabs(bench)
                    if args.quiet_wait > 0:
                        await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
                    label = f"{tabs} tabs, {hidden} hidden, {path.__name__}"
                    print(f"{label} ...", file=sys.stderr, flush=True)
                    try:
                        outcomes.append(await path(bench, tabs, hidden))
                    except (RuntimeError, TimeoutError, httpx.HTTPError, PlaywrightError) as exc:
                        failures.append(f"{label}: {exc!r}"[:2000])
        finally:
            await browser.close()
    return outcomes, failures


def _app_url(web: Process) -> str:
    return f"http://127.0.0.1:{web.env['LETSCHAT_FRONTEND_PORT']}"


async def run(args: argparse.Namespace, work: Path) -> tuple[list[Outcome], list[str]]:
    secantus, mongo_url = start_secantus(work / "secantus", work)
    try:
        with running_stack(mongo_url, REDIS_URL, work, **service_overrides()) as stack:
            port = free_port()
            web = _reflex(stack, port, work)
            web.start()
            try:
                print("building and starting the app (about a minute) ...", file=sys.stderr)
                await asyncio.to_thread(wait_until, lambda: _serving(web, port), 300, "the app")
                servers = {
                    "reflex": _pid(web),
                    **{f"message{i + 1}": _pid(s) for i, s in enumerate(stack.messages)},
                    "secantusdb": _pid(secantus),
                }
                return await measure_all(args, stack, web, servers, work)
            finally:
                web.stop()
    finally:
        secantus.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    failures: list[str] = []
    try:
        with work_directory(lambda: args.keep_logs or bool(failures)) as work:
            outcomes, failures = asyncio.run(run(args, work))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print_report(outcomes, failures, args.rate, args.messages)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
