"""Group fan-out: the message service (two instances over Redis) against a bare relay.

One run starts a bare `websockets.broadcast` relay (the ceiling), then SecantusDB, the auth
service and two message-service instances with `--clients` users in one group. For each system
and each `--rate`, a separate load-generator process connects every client (split over both
instances), sends `--messages` into the group at that rate and times every (message, recipient)
delivery. Against the message service every client also sends `read` frames as the web app
does (`bench/reads.py`; `--no-reads` turns them off). Everything binds 127.0.0.1, every wait is
bounded, and everything started is stopped at the end, on Ctrl-C and on errors too.

    .venv/bin/python -m bench.fanout                                # 1,000 clients
    .venv/bin/python -m bench.fanout --clients 50 --messages 20     # smoke run, < 1 minute
    .venv/bin/python -m bench.fanout --rate 10,20,40                # find the knee
    .venv/bin/python -m bench.fanout --no-reads                     # deliveries alone
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend_services.core.schemas import MAX_GROUP_MEMBERS
from bench import seed
from bench.cpu import CpuWindow, wait_for_quiet
from bench.load import LoadSpec, Target
from bench.report import print_report
from bench.runner import run_load
from tests.support.processes import Process, Service, free_port, start_secantus
from tests.support.stack import Stack, running_stack

REDIS_URL = "redis://127.0.0.1:6379/0"
SYSTEMS = ("relay", "letschat")


def _rates(text: str) -> list[float]:
    rates = [float(part) for part in text.split(",") if part.strip()]
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError("rates must be positive numbers, comma-separated")
    return rates


def _systems(text: str) -> list[str]:
    systems = [part.strip() for part in text.split(",") if part.strip()]
    if not systems or set(systems) - set(SYSTEMS):
        raise argparse.ArgumentTypeError(f"systems are {', '.join(SYSTEMS)}")
    return systems


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--clients", type=int, default=1000, help="sockets, all members of the one group")
    add("--messages", type=int, default=300, help="messages per system and rate")
    # 10/s x 1,000 recipients is what the relay serves with room to spare on 2 cores.
    add("--rate", type=_rates, default=[10.0], help="messages/s in total; a list sweeps")
    add("--senders", type=int, default=4, help="sockets that send, round-robin")
    add("--systems", type=_systems, default=list(SYSTEMS), help="relay,letschat")
    add(
        "--compression",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="clients offer permessage-deflate (as browsers do) and both systems accept it; "
        "default: off on both, the message service's default (LETSCHAT_WS_COMPRESSION)",
    )
    add(
        "--reads",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="receivers send `read` as the web app does: at most one every 2 s each, for the "
        "newest seq received, only if it moved (default); --no-reads measures delivery alone",
    )
    add(
        "--mongo-options",
        default="",
        metavar="OPTIONS",
        help="URI options appended to the services' SecantusDB URL, e.g. retryWrites=false",
    )
    add("--send-queue-size", type=int, help="LETSCHAT_SEND_QUEUE_SIZE for the services")
    add(
        "--group-via",
        choices=("store", "rest"),
        default="rest",
        help="create the group with POST /conversations/groups (default), or directly with "
        "ConversationStore.create_group",
    )
    add(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="before each measurement, wait up to this long for other jobs to leave the CPU",
    )
    add("--keep-logs", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_GROUP_MEMBERS:
        parser.error(f"--clients must be between 1 and {MAX_GROUP_MEMBERS}")
    if not 1 <= args.senders <= args.clients or args.messages < 1:
        parser.error("need 1 <= --senders <= --clients and --messages >= 1")
    return args


@dataclass
class System:
    """A running system under test: where its clients connect and which processes it is."""

    name: str
    targets: list[Target]
    conversation_id: str
    pids: dict[str, int]
    redis_url: str | None = None
    cursors: Callable[[], dict[str, int]] = dict
    extra: dict[str, Any] = field(default_factory=dict)
    bad_log_lines: Callable[[], list[str]] = list


def _pid(process: Process) -> int:
    assert process.popen is not None
    return int(process.popen.pid)


@contextlib.contextmanager
def relay_system(args: argparse.Namespace, work: Path) -> Iterator[System]:
    port = free_port()
    command = [sys.executable, "-m", "bench.relay", "--port", str(port)]
    relay = Service("relay", command, work / "relay.log", port=port)
    relay.start()
    try:
        relay.wait_ready()
        targets = [Target(relay.ws_url) for _ in range(args.clients)]
        yield System("relay", targets, "relay", {"relay": _pid(relay)})
    finally:
        relay.stop()


def service_overrides(args: argparse.Namespace) -> dict[str, str]:
    run = uuid.uuid4().hex[:12]
    overrides = {
        "LETSCHAT_CHANNEL_PREFIX": f"bench:{run}:",
        "LETSCHAT_MONGODB_DB": f"bench_{run}",
        # A handful of senders send far more than any person: the per-user token bucket
        # (30 burst, 10/s by default) would measure the limiter, not fan-out.
        "LETSCHAT_SEND_BURST": "1000000",
        "LETSCHAT_SEND_RATE_PER_SECOND": "1000000",
        "LETSCHAT_FRAME_BURST": "1000000",
        "LETSCHAT_FRAME_RATE_PER_SECOND": "1000000",
        # Production's sweep interval, not the tests' 0.5 s.
        "LETSCHAT_SESSION_SWEEP_SECONDS": "15",
        "LETSCHAT_SEQ_HOLE_GRACE_SECONDS": "2",
        "LETSCHAT_LOG_LEVEL": "warning",
    }
    # Like for like: the relay accepts whatever the clients offer, so the service does too.
    overrides["LETSCHAT_WS_COMPRESSION"] = "true" if args.compression else "false"
    if args.send_queue_size is not None:
        overrides["LETSCHAT_SEND_QUEUE_SIZE"] = str(args.send_queue_size)
    return overrides


def letschat_targets(stack: Stack, accounts: list[seed.Account]) -> list[Target]:
    # Alternate instances, so senders and recipients are spread over both.
    instances = stack.messages
    return [
        Target(instances[index % len(instances)].ws_url, account.token)
        for index, account in enumerate(accounts)
    ]


@contextlib.contextmanager
def letschat_system(args: argparse.Namespace, work: Path) -> Iterator[System]:
    secantus, mongo_url = start_secantus(work / "secantus", work)
    if args.mongo_options:
        mongo_url = f"{mongo_url}&{args.mongo_options}"
    try:
        with running_stack(mongo_url, REDIS_URL, work, **service_overrides(args)) as stack:
            setup = seed.seed_group(stack, args.clients, via=args.group_via)
            pids = {f"message{i + 1}": _pid(s) for i, s in enumerate(stack.messages)}
            yield System(
                "letschat",
                letschat_targets(stack, setup.accounts),
                setup.group_id,
                {**pids, "secantusdb": _pid(secantus)},
                redis_url=REDIS_URL,
                cursors=lambda: {setup.group_id: setup.last_seq()},
                extra={"seed_s": setup.seconds, "group_via": args.group_via},
                bad_log_lines=lambda: stack.bad_log_lines()[:10],
            )
    finally:
        secantus.stop()


def measure(args: argparse.Namespace, system: System, rate: float, work: Path) -> dict[str, Any]:
    if args.quiet_wait > 0:
        wait_for_quiet(args.quiet_wait)
    spec = LoadSpec(
        system=system.name,
        targets=system.targets,
        senders=args.senders,
        messages=args.messages,
        rate=rate,
        conversation_id=system.conversation_id,
        compression=args.compression,
        tag=uuid.uuid4().hex[:8],
        cursors=system.cursors(),
        reads=args.reads,
    )
    result = run_load(spec, work, CpuWindow(dict(system.pids), redis_url=system.redis_url))
    result.update(system.extra, bad_log_lines=system.bad_log_lines())
    return result


@contextlib.contextmanager
def work_directory(keep: Callable[[], bool]) -> Iterator[Path]:
    """A fresh directory for logs, removed at the end unless `keep()` or something raised."""
    work = Path(tempfile.mkdtemp(prefix="letschat-bench-"))
    failed = True
    try:
        yield work
        failed = False
    finally:
        if keep() or failed:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    systems = {"relay": relay_system, "letschat": letschat_system}
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    try:
        with work_directory(lambda: args.keep_logs or bool(failures)) as work:
            for name in args.systems:
                with systems[name](args, work) as system:
                    for rate in args.rate:
                        print(
                            f"{name}: {args.clients} clients, {args.messages} messages at "
                            f"{rate:g}/s",
                            file=sys.stderr,
                            flush=True,
                        )
                        try:
                            results.append(measure(args, system, rate, work))
                        except RuntimeError as exc:  # One failed load run; report the rest.
                            failures.append(f"{name} at {rate:g}/s: {exc}")
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print_report(results, failures, args)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
