"""A login flood from one address: what a legitimate login from elsewhere costs meanwhile.

One run starts SecantusDB and the auth service (trusting X-Forwarded-For from 127.0.0.1, as it
trusts its load balancer), then, for each configuration, measures a person logging in from one
address `--logins` times, first on a quiet service and then while `--workers` concurrent clients
flood it from another address with made-up usernames for as long as that takes. The peer is the
same service with the per-address limit lifted (`LETSCHAT_LOGIN_MAX_FAILURES_PER_ADDRESS` huge),
which is what a throttle counting per username alone does with a fresh username per attempt.

    .venv/bin/python -m bench.login_flood                  # 8 workers, 10 logins
    .venv/bin/python -m bench.login_flood --workers 4 --logins 5

Limit: under the flood, the median legitimate login takes at most twice as long as on the quiet
service, and the flood is answered 429 from the per-address limit on.
"""

from __future__ import annotations

import argparse
import asyncio
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
NO_LIMIT = "1000000"


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
    http: httpx.AsyncClient, url: str, username: str, count: int
) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        status = await _login(http, url, username, PASSWORD, PERSON)
        times.append((time.perf_counter() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"the legitimate login answered {status}")
    return times


async def _measure(name: str, url: str, logins: int, workers: int) -> Outcome:
    async with httpx.AsyncClient(timeout=60) as http:
        username = f"person{uuid.uuid4().hex[:8]}"
        response = await http.post(
            f"{url}/auth/register", json={"username": username, "password": PASSWORD}
        )
        response.raise_for_status()
        quiet = await _timed_logins(http, url, username, logins)
        flood: Counter[int] = Counter()
        done = asyncio.Event()

        async def flooder() -> None:
            while not done.is_set():  # Bounded: it stops when the measured logins are done.
                made_up = f"nobody{uuid.uuid4().hex[:10]}"
                flood[await _login(http, url, made_up, "guess", FLOODER)] += 1

        tasks = [asyncio.create_task(flooder()) for _ in range(workers)]
        try:
            await asyncio.sleep(1.0)  # Let the flood build up first.
            flooded = await _timed_logins(http, url, username, logins)
        finally:
            done.set()
            await asyncio.gather(*tasks)
    return Outcome(name, quiet, flooded, flood)


async def run(args: argparse.Namespace) -> list[Outcome]:
    outcomes = []
    with work_directory(lambda: False) as work:
        secantus, mongo_url = start_secantus(work / "secantus", work)
        try:
            for name, per_address in (
                ("per-address limit", None),
                ("no address limit (peer)", NO_LIMIT),
            ):
                overrides = {"LETSCHAT_TRUSTED_PROXIES": "127.0.0.1"}
                if per_address is not None:
                    overrides["LETSCHAT_LOGIN_MAX_FAILURES_PER_ADDRESS"] = per_address
                with running_stack(mongo_url, None, work, instances=1, **overrides) as stack:
                    print(f"{name} ...", file=sys.stderr)
                    outcomes.append(await _measure(name, stack.auth_url, args.logins, args.workers))
        finally:
            secantus.stop()
    return outcomes


def report(outcomes: list[Outcome], workers: int) -> bool:
    print(f"legitimate logins from one address while {workers} clients flood from another")
    columns = ("quiet p50", "flooded p50", "flooded max")
    print(f"{'service':<26} {columns[0]:>10} {columns[1]:>12} {columns[2]:>12} {'x':>6}  flood")
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
