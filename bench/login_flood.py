"""A login flood: what a legitimate login costs meanwhile.

One run starts SecantusDB and the auth service (trusting X-Forwarded-For from 127.0.0.1, as it
trusts its load balancer), then measures a person logging in `--logins` times, a second apart,
first on a quiet service and then while `--workers` concurrent clients flood it with made-up
usernames, in two ways:

- **from one address**, as one attacker does: the per-address count ends it with 429s, and one
  bcrypt per address at a time leaves the other core to everyone else meanwhile;
- **from a new address per attempt** (the peer), which is what every flood looked like before
  (a fresh username per attempt was never counted, and any loopback client could rotate
  X-Forwarded-For): nothing here can tell those attempts from real people.

    .venv/bin/python -m bench.login_flood                  # 8 workers, 10 logins
    .venv/bin/python -m bench.login_flood --workers 4 --logins 5

Limit: under the one-address flood the median legitimate login takes at most twice as long as
on the quiet service, and the flood is answered 429.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass

import httpx

from bench.fanout import work_directory
from tests.support.processes import start_secantus
from tests.support.stack import running_stack

PASSWORD = "correct horse battery"  # noqa: S105 - a bench account's
PERSON, FLOODER = "198.51.100.10", "203.0.113.66"


@dataclass
class Outcome:
    name: str
    quiet_ms: list[float]
    flooded_ms: list[float]
    flood: Counter[int]

    @property
    def slowdown(self) -> float:
        return statistics.median(self.flooded_ms) / statistics.median(self.quiet_ms)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=8, help="concurrent flooding clients")
    parser.add_argument("--logins", type=int, default=10, help="legitimate logins per phase")
    args = parser.parse_args(argv)
    if not 1 <= args.workers <= 64 or not 1 <= args.logins <= 100:
        parser.error("--workers must be 1-64 and --logins 1-100")
    return args


async def _login(
    http: httpx.AsyncClient, url: str, username: str, password: str, address: str
) -> int:
    response = await http.post(
        f"{url}/auth/login",
        json={"username": username, "password": password},
        headers={"X-Forwarded-For": address},
    )
    return response.status_code


async def _timed_logins(
    http: httpx.AsyncClient, url: str, username: str, count: int, spacing: float = 0.0
) -> list[float]:
    times = []
    for n in range(count):
        if n:
            await asyncio.sleep(spacing)  # Pacing: a login now and then, over the whole flood.
        started = time.perf_counter()
        status = await _login(http, url, username, PASSWORD, PERSON)
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"the legitimate login answered {status}")
    return times


async def _measure(name: str, url: str, logins: int, workers: int, rotate: bool) -> Outcome:
    async with httpx.AsyncClient(timeout=60) as http:
        username = f"person{uuid.uuid4().hex[:8]}"
        response = await http.post(
            f"{url}/auth/register", json={"username": username, "password": PASSWORD}
        )
        response.raise_for_status()
        quiet = await _timed_logins(http, url, username, logins)
        flood: Counter[int] = Counter()
        done = asyncio.Event()

        attempts = itertools.count(1)

        async def flooder() -> None:
            while not done.is_set():  # Bounded: it stops when the measured logins are done.
                n = next(attempts)
                address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}" if rotate else FLOODER
                made_up = f"nobody{uuid.uuid4().hex[:10]}"
                flood[await _login(http, url, made_up, "guess", address)] += 1

        tasks = [asyncio.create_task(flooder()) for _ in range(workers)]
        try:
            await asyncio.sleep(1.0)  # Let the flood build up first.
            flooded = await _timed_logins(http, url, username, logins, spacing=1.0)
        finally:
            done.set()
            await asyncio.gather(*tasks)
    return Outcome(name, quiet, flooded, flood)


async def run(args: argparse.Namespace) -> list[Outcome]:
    outcomes = []
    with work_directory(lambda: False) as work:
        secantus, mongo_url = start_secantus(work / "secantus", work)
        try:
            overrides = {"LETSCHAT_TRUSTED_PROXIES": "127.0.0.1"}
            with running_stack(mongo_url, None, work, instances=1, **overrides) as stack:
                for name, rotate in (("one address", False), ("an address each (peer)", True)):
                    print(f"flood from {name} ...", file=sys.stderr)
                    outcome = await _measure(
                        name, stack.auth_url, args.logins, args.workers, rotate
                    )
                    outcomes.append(outcome)
        finally:
            secantus.stop()
    return outcomes


def report(outcomes: list[Outcome], workers: int) -> bool:
    print(f"legitimate logins while {workers} clients flood with made-up usernames")
    columns = ("quiet p50", "flooded p50", "flooded max")
    print(f"{'flood from':<26} {columns[0]:>10} {columns[1]:>12} {columns[2]:>12} {'x':>6}  flood")
    for o in outcomes:
        answers = ", ".join(f"{status}: {n}" for status, n in sorted(o.flood.items()))
        quiet, flooded = statistics.median(o.quiet_ms), statistics.median(o.flooded_ms)
        print(
            f"{o.name:<26} {quiet:>8.0f}ms {flooded:>10.0f}ms"
            f" {max(o.flooded_ms):>10.0f}ms {o.slowdown:>6.2f}  {answers}"
        )
    ours = outcomes[0]
    met = ours.slowdown <= 2.0 and ours.flood[429] > 0
    print(
        f"limit: flooded p50 <= 2x quiet and the flood gets 429s: "
        f"{'MET' if met else 'NOT MET'} ({ours.slowdown:.2f}x, {ours.flood[429]} answered 429)"
    )
    return met


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    outcomes = asyncio.run(run(args))
    return 0 if report(outcomes, args.workers) else 1


if __name__ == "__main__":
    sys.exit(main())
