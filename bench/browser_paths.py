"""The two paths `bench.browser_fanout` measures for each scenario, over the same stack:
K raw sockets on the message service, and K signed-in Chromium tabs with one person typing."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.async_api import Browser

from bench import seed
from bench.browser_report import COLUMNS, Outcome, cpu_line, percentile
from bench.cpu import CpuWindow
from bench.e2e_latency import register
from bench.fanout import letschat_targets
from bench.load import LoadSpec
from bench.profile import Profile, summary
from bench.runner import run_load
from bench.tabs import Tab, close_tabs, open_tabs
from tests.e2e.conftest import _BAD_LOG as BAD_LOG
from tests.support.processes import Process
from tests.support.stack import Stack

# After the last send: give up on the rest once nothing new has shown for this long, and never
# wait longer than the cap (an overloaded path is reported, not awaited).
IDLE_GIVE_UP_S, DRAIN_CAP_S, POLL_S = 10.0, 60.0, 0.25
# Registering hashes a password (bcrypt) in the auth service: a few at a time on two cores.
REGISTER_CONCURRENCY = 4


@dataclass
class Bench:
    """The running system and the processes whose CPU is counted."""

    args: argparse.Namespace
    stack: Stack
    app_url: str
    browser: Browser
    web: Process
    trees: dict[str, int]  # reflex, message1, message2, secantusdb, browser
    redis_url: str
    work: Path

    def cpu_window(self, *names: str) -> CpuWindow:
        """A CPU window over the named process trees, Redis and this process (which drives
        the browser), so that "others" is only what is not part of the benchmark."""
        trees = {name: pid for name, pid in self.trees.items() if name in names}
        mongo_url = self.stack.env["LETSCHAT_MONGODB_URL"]
        return CpuWindow({"bench": os.getpid()}, self.redis_url, mongo_url, trees=trees)

    def bad_log_lines(self) -> list[str]:
        reflex = [f"reflex: {line}" for line in self.web.log().splitlines() if BAD_LOG.search(line)]
        return (self.stack.bad_log_lines() + reflex)[:10]


async def raw_path(bench: Bench, tabs: int, hidden: int) -> Outcome:
    """K raw clients in a group of their own: the floor the browser path adds to."""
    env, args = bench.stack.env, bench.args
    url, db = env["LETSCHAT_MONGODB_URL"], env["LETSCHAT_MONGODB_DB"]
    accounts = seed.mint_tokens(await seed.create_users(url, db, tabs), env["LETSCHAT_JWT_SECRET"])
    message_url = bench.stack.messages[0].url
    group = await asyncio.to_thread(seed.create_group, message_url, accounts[0], accounts[1:])
    setup = seed.GroupSetup(accounts, group, 0.0, message_url)
    spec = LoadSpec(
        system="letschat",
        targets=letschat_targets(bench.stack, accounts),
        senders=1,
        messages=args.messages,
        rate=args.rate,
        conversation_id=group,
        compression=False,
        tag=uuid.uuid4().hex[:8],
        cursors={group: await asyncio.to_thread(setup.last_seq)},
    )
    window = bench.cpu_window("message1", "message2", "secantusdb")
    result = await asyncio.to_thread(run_load, spec, bench.work, window)
    return Outcome(
        tabs=tabs,
        hidden=hidden,
        path="raw socket",
        sent=result["messages"],
        rate=result["achieved_rate"],
        delivered=result["deliveries"] - result["duplicates"],
        lost=result["expected"] - (result["deliveries"] - result["duplicates"]),
        duplicates=result["duplicates"],
        p50_ms=result["p50_ms"],
        p99_ms=result["p99_ms"],
        cpu_s=result["cpu_s"],
        wall_s=result["cpu_wall_s"],
        notes=[
            *([f"error frames: {result['errors']}"] if result["errors"] else []),
            requests_line(window, result["messages"]),
        ],
    )


def requests_line(window: CpuWindow, messages: int) -> str:
    """The store's requests per message sent, by kind ("command" includes drivers' hellos)."""
    counts = {kind: n for kind, n in window.requests.items() if n}
    per = ", ".join(f"{kind} {n / max(1, messages):.2f}" for kind, n in sorted(counts.items()))
    return f"store requests per message: {sum(counts.values()) / max(1, messages):.2f} ({per})"


async def _people(bench: Bench, tabs: int, group_name: str) -> list[dict[str, str]]:
    """Register the tab users over REST (a few at a time: bcrypt) and make the group."""
    gate = asyncio.Semaphore(REGISTER_CONCURRENCY)
    async with httpx.AsyncClient(timeout=60) as http:

        async def one(index: int) -> dict[str, str]:
            async with gate:
                return await register(http, bench.stack.auth_url, f"tab{index:02d}")

        people = list(await asyncio.gather(*(one(i) for i in range(tabs))))
        response = await http.post(
            f"{bench.stack.messages[0].url}/conversations/groups",
            json={
                "name": group_name,
                "member_ids": [p["id"] for p in people[1:]],
                "is_public": False,
            },
            headers={"Authorization": f"Bearer {people[0]['token']}"},
        )
        response.raise_for_status()
    return people


async def _type_at_rate(sender: Tab, prefix: str, count: int, rate: float) -> int:
    """Type message i at start + i / rate (late ones at once, none skipped); return how many."""
    start = time.monotonic()
    for index in range(count):
        delay = start + index / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        await sender.send(f"{prefix}{index}")
    return count


async def _drain(tabs: list[Tab], sent: int) -> None:
    """Until every tab shows every message, or nothing new showed for IDLE_GIVE_UP_S."""
    last, progressed = -1, time.monotonic()
    deadline = progressed + DRAIN_CAP_S
    while time.monotonic() < deadline:
        shown = sum(await asyncio.gather(*(tab.seen_count() for tab in tabs)))
        if shown >= sent * len(tabs):
            return
        if shown != last:
            last, progressed = shown, time.monotonic()
        elif time.monotonic() - progressed > IDLE_GIVE_UP_S:
            return
        await asyncio.sleep(POLL_S)


async def browser_path(bench: Bench, tabs: int, hidden: int) -> Outcome:
    args, tag = bench.args, uuid.uuid4().hex[:6]
    group_name, prefix = f"bench {tag}", f"tabs-{tag}-"
    people = await _people(bench, tabs, group_name)
    opened = await open_tabs(
        bench.browser,
        bench.app_url,
        [(p["name"], p["token"]) for p in people],
        group_name,
        prefix,
        args.open_concurrency,
    )
    try:
        sender, receivers = opened[0], opened[1:]
        for tab in receivers[len(receivers) - hidden :]:
            await tab.set_hidden(True)
        names = ("reflex", "message1", "message2", "secantusdb", "browser")
        idle = bench.cpu_window(*names)
        idle.start()
        await asyncio.sleep(args.idle_seconds)
        idle.stop()
        window = bench.cpu_window(*names)
        profile = None
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            output = args.profile / f"reflex-{tabs}-tabs-{hidden}-hidden.txt"
            profile = Profile(bench.trees["reflex"], output)
            profile.start()
        # One receiver's renderer, as a sample of what a message costs the browser per tab.
        probe = (receivers[: len(receivers) - hidden] or receivers)[0]
        before = await probe.renderer_metrics()
        window.start()
        try:
            sent = await _type_at_rate(sender, prefix, args.messages, args.rate)
            await _drain(opened, sent)
        finally:
            window.stop()
            if profile is not None:
                profile.stop()
        after = await probe.renderer_metrics()
        renderer = ", ".join(
            f"{name} {1000 * (after[name] - before[name]) / max(1, sent):.1f}" for name in after
        )
        kind = "hidden" if probe.hidden else "visible"
        records = [await tab.record() for tab in opened]
        errors = [f"{tab.name}: {e}" for tab in opened for e in tab.console_errors]
    finally:
        await close_tabs(opened)
    outcome = _browser_outcome(bench, tabs, hidden, sent, opened, records, window, idle, errors)
    outcome.notes.append(f"one {kind} tab's renderer, ms per message: {renderer}")
    if profile is not None:
        outcome.notes += summary(profile.output)
    return outcome


def _browser_outcome(
    bench: Bench,
    tabs: int,
    hidden: int,
    sent: int,
    opened: list[Tab],
    records: list[dict[str, dict[str, float]]],
    window: CpuWindow,
    idle: CpuWindow,
    errors: list[str],
) -> Outcome:
    enter = records[0]["enter"]
    typed = [str(n) for n in range(sent)]
    latencies: dict[bool, list[float]] = {False: [], True: []}  # by hidden
    tenths: list[list[float]] = [[] for _ in range(10)]  # by when the message was typed
    lost = duplicates = delivered = 0
    for tab, record in zip(opened, records, strict=True):
        shown = [n for n in typed if n in record["seen"]]
        delivered += len(shown)
        lost += sent - len(shown)
        duplicates += sum(1 for n in shown if record["copies"][n] > 1)
        if tab is not opened[0]:
            for n in (n for n in shown if n in enter):
                latencies[tab.hidden].append(record["seen"][n] - enter[n])
                tenths[int(n) * 10 // sent].append(record["seen"][n] - enter[n])
    every = latencies[False] + latencies[True]
    pressed = sorted(enter.values())
    typing_s = (pressed[-1] - pressed[0]) / 1000 if len(pressed) > 1 else 0.0
    rate = (len(pressed) - 1) / typing_s if typing_s else 0.0
    by_tenth = " ".join(f"{percentile(tenth, 0.5):.0f}" for tenth in tenths if tenth)
    notes = [
        f"idle for {idle.wall_s:.1f} s with the tabs open: {cpu_line(idle.used, idle.wall_s)}",
        f"Enter pressed for {len(enter)} of {sent} messages, over {typing_s:.1f} s",
        f"p50 ms by tenth of the messages (rising = falling behind): {by_tenth}",
        _idle_part(idle, window, delivered),
        requests_line(window, sent),
    ]
    for is_hidden, values in latencies.items():
        if values:
            notes.append(
                f"{'hidden' if is_hidden else 'visible'} tabs: p50 {percentile(values, 0.5):.0f} "
                f"ms, p99 {percentile(values, 0.99):.0f} ms, max {max(values):.0f} ms"
            )
    notes += [f"! console: {error}" for error in errors[:5]]
    notes += [f"! log: {line}" for line in bench.bad_log_lines()]
    return Outcome(
        tabs=tabs,
        hidden=hidden,
        path="browser",
        sent=sent,
        rate=rate,
        delivered=delivered,
        lost=lost,
        duplicates=duplicates,
        p50_ms=percentile(every, 0.5),
        p99_ms=percentile(every, 0.99),
        cpu_s=window.used,
        wall_s=window.wall_s,
        notes=notes,
    )


def _idle_part(idle: CpuWindow, window: CpuWindow, delivered: int) -> str:
    """How much of each per-delivery figure the open tabs cost while nothing was sent: that part
    grows with the window, so a sender slowed down by a busy box inflates it."""
    parts = []
    for column, names in COLUMNS.items():
        idle_rate = sum(idle.used.get(name, 0.0) for name in names) / max(1e-9, idle.wall_s)
        if any(name in idle.used for name in names):
            share = 1000 * idle_rate * window.wall_s / max(1, delivered)
            parts.append(f"{column} {share:.2f}")
    return "of the ms per tab-delivery, idle tabs at the idle rate: " + ", ".join(parts)
