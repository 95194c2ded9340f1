"""What the services cost while nothing happens: CPU per second of each process, idle sockets open.

An idle cost is paid by every instance all day, and at a chat's usual low rates it is a good part
of what each delivery costs (`bench.browser_fanout` counts it in). One run starts SecantusDB, the
auth service and two message-service instances with `--sockets` users in one group, each with a
socket open and resumed (alternating over the instances), plus a peer: stock uvicorn serving an
empty app, as it idles out of the box. Then it measures `--seconds` of nothing.

    .venv/bin/python -m bench.idle                 # 20 sockets, 60 s
    .venv/bin/python -m bench.idle --seconds 20    # quicker, coarser (CPU comes in 10 ms ticks)

Limit: each of our services idles at no more than the stock uvicorn peer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from bench import seed
from bench.cpu import CpuWindow, wait_for_quiet
from bench.fanout import REDIS_URL, work_directory
from tests.support.clients import Socket
from tests.support.processes import Process, free_port, start_secantus, wait_until
from tests.support.stack import running_stack

PEER = "stock uvicorn"


async def hello(scope: object, receive: object, send: object) -> None:
    """The peer's app: it never gets a request."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=20, help="idle sockets, one per user")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the idle window")
    parser.add_argument("--quiet-wait", type=float, default=30.0, help="wait for an idle box")
    return parser.parse_args(argv)


@contextlib.contextmanager
def stock_uvicorn(work: Path) -> Iterator[Process]:
    port = free_port()
    peer = Process(
        PEER,
        [
            sys.executable,
            "-m",
            "uvicorn",
            "bench.idle:hello",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--lifespan",
            "off",
        ],
        work / "stock-uvicorn.log",
    )
    peer.start()
    try:
        wait_until(lambda: _listening(port) or not peer.running, 30, "stock uvicorn")
        yield peer
    finally:
        peer.stop()


def _listening(port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


async def _open_sockets(
    urls: list[str], accounts: list[seed.Account], group_id: str
) -> list[Socket]:
    sockets = []
    for index, account in enumerate(accounts):
        url = urls[index % len(urls)]
        sockets.append(await Socket.open(url, account.token, resume={group_id: 0}))
    return sockets


def measure(args: argparse.Namespace, work: Path) -> dict[str, float]:
    secantus, mongo_url = start_secantus(work / "secantus", work)
    try:
        with (
            running_stack(
                mongo_url,
                REDIS_URL,
                work,
                LETSCHAT_LOG_LEVEL="warning",
                LETSCHAT_SESSION_SWEEP_SECONDS="15",
            ) as stack,
            stock_uvicorn(work) as peer,
        ):
            setup = seed.seed_group(stack, args.sockets, via="rest")
            pids = {
                "auth": stack.auth,
                **{f"message{i + 1}": s for i, s in enumerate(stack.messages)},
                "secantusdb": secantus,
                PEER: peer,
            }
            cpu = CpuWindow({name: p.popen.pid for name, p in pids.items() if p.popen})

            async def idle() -> None:
                sockets = await _open_sockets(
                    [s.ws_url for s in stack.messages], setup.accounts, setup.group_id
                )
                try:
                    await asyncio.sleep(3)  # Let the resumes and their store reads settle.
                    if args.quiet_wait > 0:
                        await asyncio.to_thread(wait_for_quiet, args.quiet_wait)
                    cpu.start()
                    await asyncio.sleep(args.seconds)
                    cpu.stop()
                    closed = [s for s in sockets if s.close_code is not None]
                    if closed:
                        raise RuntimeError(f"{len(closed)} sockets closed while idle")
                finally:
                    for socket in sockets:
                        await socket.close()

            asyncio.run(idle())
            return {name: 1000 * cpu.used[name] / cpu.wall_s for name in pids} | {
                "others": 1000 * cpu.used["others"] / cpu.wall_s
            }
    finally:
        secantus.stop()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    with work_directory(lambda: False) as work:
        rates = measure(args, work)
    print(
        f"Idle CPU, {args.sockets} sockets open over two message instances, "
        f"{args.seconds:g} s (ms of CPU per second; 10 ms ticks)"
    )
    print("| process | ms/s |\n| ------- | ---- |")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.2f} |")
    limit = rates[PEER]
    services = [name for name in rates if name == "auth" or name.startswith("message")]
    over = [name for name in services if rates[name] > limit]
    verdict = "MISSED by " + ", ".join(over) if over else "met"
    print(f"limit: each service idles at <= {PEER} ({limit:.2f} ms/s): {verdict}")
    print(f"({time.monotonic() - started:.0f} s in all)")
    return 1 if over else 0


if __name__ == "__main__":
    raise SystemExit(main())
