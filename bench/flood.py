"""A frame flood: what one socket flooding `ping` or `read` frames costs another user's send.

One run starts SecantusDB and two single-instance stacks one after the other: ours, where every
frame of a socket takes from one budget (LETSCHAT_FRAME_BURST 200, then
LETSCHAT_FRAME_RATE_PER_SECOND 50) and frames over it are dropped unread, and the peer, the same
service with a budget too large to matter (what every socket had before: only `send` was
limited). On each, Alice sends `--sends` messages to Bob, `--spacing` seconds apart, and the
time from each `send` to its `ack` is measured: on a quiet service, then while Mallory's
socket floods `ping` frames, then `read` frames, as fast as one client can write them.

    .venv/bin/python -m bench.flood                  # 40 sends a phase
    .venv/bin/python -m bench.flood --sends 20

Limit: with the budget, the flooded median send-to-ack is at most 1.5x the quiet one (or within
25 ms of it), and the flooder is answered `rate_limited`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

from bench.fanout import work_directory
from tests.support.processes import start_secantus
from tests.support.stack import Stack, running_stack

PASSWORD = "correct horse battery"  # noqa: S105 - a bench account's
# The peer: a budget no flood from one client reaches.
NO_BUDGET = {"LETSCHAT_FRAME_BURST": "1000000000", "LETSCHAT_FRAME_RATE_PER_SECOND": "1e9"}
FLOODS = ("ping", "read")


@dataclass
class Phase:
    name: str
    ack_ms: list[float]
    flood_frames: int = 0
    rate_limited: int = 0

    @property
    def median(self) -> float:
        return statistics.median(self.ack_ms)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.ack_ms, n=10)[-1]


@dataclass
class Outcome:
    name: str
    phases: list[Phase] = field(default_factory=list)

    def slowdown(self, flood: str) -> float:
        quiet = self.phases[0].median
        return next(p.median for p in self.phases if p.name == flood) / quiet


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sends", type=int, default=40, help="measured sends per phase")
    parser.add_argument("--spacing", type=float, default=0.1, help="seconds between sends")
    args = parser.parse_args(argv)
    if not 5 <= args.sends <= 500 or not 0.01 <= args.spacing <= 2:
        parser.error("--sends must be 5-500 and --spacing 0.01-2")
    return args


async def _account(http: httpx.AsyncClient, stack: Stack, name: str) -> dict[str, str]:
    response = await http.post(
        f"{stack.auth_url}/auth/register",
        json={"username": f"{name}{uuid.uuid4().hex[:8]}", "password": PASSWORD},
    )
    response.raise_for_status()
    body = response.json()
    return {"id": body["user"]["id"], "token": body["access_token"]}


async def _socket(stack: Stack, token: str) -> ClientConnection:
    ws = await connect(stack.messages[0].ws_url, open_timeout=10, max_size=2**22)
    await ws.send(json.dumps({"type": "auth", "token": token}))
    while json.loads(await ws.recv())["type"] != "ready":
        pass
    await ws.send(json.dumps({"type": "resume", "cursors": {}}))
    while json.loads(await ws.recv())["type"] != "resumed":
        pass
    return ws


async def _timed_sends(ws: ClientConnection, dm: str, count: int, spacing: float) -> list[float]:
    times = []
    for _ in range(count):
        client_msg_id = uuid.uuid4().hex
        frame = {"type": "send", "conversation_id": dm, "client_msg_id": client_msg_id}
        started = time.perf_counter()
        await ws.send(json.dumps({**frame, "body": "hello"}))
        async with asyncio.timeout(30):
            while True:
                reply = json.loads(await ws.recv())
                if reply["type"] == "ack" and reply["client_msg_id"] == client_msg_id:
                    break
        times.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(spacing)
    return times


async def _phase(
    stack: Stack,
    alice: ClientConnection,
    mallory_token: str,
    dms: tuple[str, str],
    kind: str,
    args: argparse.Namespace,
) -> Phase:
    """Alice's sends to Bob (`dms[0]`), while Mallory floods (reads of her DM, `dms[1]`)."""
    dm, mallory_dm = dms
    if kind == "quiet":
        return Phase(kind, await _timed_sends(alice, dm, args.sends, args.spacing))
    phase = Phase(kind, [])
    read_frame = {"type": "read", "conversation_id": mallory_dm, "seq": 1}
    flood = json.dumps({"type": "ping"} if kind == "ping" else read_frame)
    mallory = await _socket(stack, mallory_token)
    done = asyncio.Event()

    async def write() -> None:
        with contextlib.suppress(Exception):
            while not done.is_set():  # Bounded: it stops when the measured sends are done.
                await mallory.send(flood)
                phase.flood_frames += 1
                if phase.flood_frames % 100 == 0:
                    await asyncio.sleep(0)  # Let the measured client run too.

    async def read() -> None:
        with contextlib.suppress(Exception):
            async for raw in mallory:
                if '"rate_limited"' in str(raw):
                    phase.rate_limited += 1

    tasks = [asyncio.create_task(write()), asyncio.create_task(read())]
    try:
        await asyncio.sleep(0.5)  # The flood under way first.
        phase.ack_ms = await _timed_sends(alice, dm, args.sends, args.spacing)
    finally:
        done.set()
        await mallory.close()
        await asyncio.gather(*tasks)
    return phase


async def _direct(http: httpx.AsyncClient, stack: Stack, token: str, other: str) -> str:
    response = await http.post(
        f"{stack.messages[0].url}/conversations/direct",
        json={"user_id": other},
        headers={"Authorization": f"Bearer {token}"},
    )
    response.raise_for_status()
    return str(response.json()["id"])


async def _measure(name: str, stack: Stack, args: argparse.Namespace) -> Outcome:
    outcome = Outcome(name)
    async with httpx.AsyncClient(timeout=30) as http:
        alice, bob, mallory = [await _account(http, stack, n) for n in ("alice", "bob", "mal")]
        dm = await _direct(http, stack, alice["token"], bob["id"])
        # Mallory floods reads of her own conversation with Alice, as any member may.
        mallory_dm = await _direct(http, stack, alice["token"], mallory["id"])
    sender = await _socket(stack, alice["token"])
    try:
        await _timed_sends(sender, mallory_dm, 1, 0)  # Something for Mallory to read.
        await _timed_sends(sender, dm, 5, args.spacing)  # Warm up.
        for kind in ("quiet", *FLOODS):
            print(f"{name}: {kind} ...", file=sys.stderr)
            dms = (dm, mallory_dm)
            outcome.phases.append(await _phase(stack, sender, mallory["token"], dms, kind, args))
    finally:
        await sender.close()
    return outcome


async def run(args: argparse.Namespace) -> list[Outcome]:
    outcomes = []
    with work_directory(lambda: False) as work:
        secantus, mongo_url = start_secantus(work / "secantus", work)
        try:
            peers: tuple[tuple[str, dict[str, Any]], ...] = (
                ("frame budget", {}),
                ("no budget (peer)", NO_BUDGET),
            )
            for name, overrides in peers:
                with running_stack(mongo_url, None, work, instances=1, **overrides) as stack:
                    outcomes.append(await _measure(name, stack, args))
        finally:
            secantus.stop()
    return outcomes


def report(outcomes: list[Outcome], args: argparse.Namespace) -> bool:
    print(f"Alice's send-to-ack while Mallory's socket floods ({args.sends} sends a phase)")
    print(f"{'service':<18} {'phase':<6} {'p50':>8} {'p90':>8} {'x quiet':>8} {'flood frames':>13}")
    for o in outcomes:
        for p in o.phases:
            print(
                f"{o.name:<18} {p.name:<6} {p.median:>6.1f}ms {p.p90:>6.1f}ms"
                f" {p.median / o.phases[0].median:>8.2f} {p.flood_frames:>13}"
                + (f"  ({p.rate_limited} rate_limited)" if p.name != "quiet" else "")
            )
    ours = outcomes[0]
    quiet = ours.phases[0].median
    met = all(
        (p.median <= 1.5 * quiet or p.median <= quiet + 25) and p.rate_limited > 0
        for p in ours.phases[1:]
    )
    worst = max(ours.slowdown(flood) for flood in FLOODS)
    print(
        "limit: with the budget each flooded p50 <= 1.5x quiet (or +25 ms) and the flooder is "
        f"answered rate_limited: {'MET' if met else 'NOT MET'} (worst {worst:.2f}x)"
    )
    return met


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    outcomes = asyncio.run(run(args))
    return 0 if report(outcomes, args) else 1


if __name__ == "__main__":
    sys.exit(main())
