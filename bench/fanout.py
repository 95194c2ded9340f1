"""Group fan-out: the message service against a bare relay and two socket.io peers.

One run measures, one system after another: a bare `websockets.broadcast` relay (the ceiling);
Let's Chat (the auth service and two message-service instances with `--clients` users in one
group); and the peers in `bench/peers/` (python-socketio and Node.js socket.io, two instances
each). Every system but the relay fans out through Redis and stores each message in a fresh
SecantusDB of its own before fanning it out. For each system and each `--rate`, a separate
load-generator process connects every client (split over both instances), sends `--messages`
into the group at that rate and times every (message, recipient) delivery. Against the message
service every client also sends `read` frames as the web app does (`bench/reads.py`;
`--no-reads` turns them off). Everything binds 127.0.0.1, every wait is bounded, and everything
started is stopped at the end, on Ctrl-C and on errors too.

    .venv/bin/python -m bench.fanout                                # 1,000 clients
    .venv/bin/python -m bench.fanout --clients 50 --messages 20     # smoke run
    .venv/bin/python -m bench.fanout --rate 10,20,40,60             # find the knee
    .venv/bin/python -m bench.fanout --systems letschat,node        # some of the systems
    .venv/bin/python -m bench.fanout --no-reads                     # deliveries alone
    .venv/bin/python -m bench.fanout --workloads plain,mixed        # + edits and reactions
    .venv/bin/python -m bench.fanout --systems letschat --workloads plain,typing,presence

`--workloads mixed` measures Let's Chat a second time with 10 % of the messages followed by an
edit and 20 % by a reaction (bench/changes.py), reported as "letschat mixed" beside the plain
rows; the peers have no edits or reactions to compare. `typing` and `presence` add what
people's comings and goings send (bench/ephemeral.py) and report the server CPU they took.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from backend_services.core.schemas import MAX_GROUP_MEMBERS
from bench import seed
from bench.cpu import CpuWindow, wait_for_quiet
from bench.load import LoadSpec, Target
from bench.peers import PEERS, running_peer, socketio_url
from bench.report import SYSTEMS, print_report
from bench.runner import run_load
from tests.support.processes import Process, Service, free_port, start_secantus
from tests.support.stack import _BAD_LOG as BAD_LOG
from tests.support.stack import Stack, running_stack

REDIS_URL = "redis://127.0.0.1:6379/0"


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


# The mixed workload's shares of edits and reactions, per message sent.
MIXED_EDITS, MIXED_REACTIONS = 0.1, 0.2
WORKLOADS = ("plain", "mixed", "typing", "presence")


def _workloads(text: str) -> list[str]:
    workloads = [part.strip() for part in text.split(",") if part.strip()]
    if not workloads or set(workloads) - set(WORKLOADS):
        raise argparse.ArgumentTypeError(f"workloads are {', '.join(WORKLOADS)}")
    return workloads


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--clients", type=int, default=1000, help="sockets, all members of the one group")
    add("--messages", type=int, default=300, help="messages per system and rate")
    # 10/s x 1,000 recipients is what the relay serves with room to spare on 2 cores.
    add("--rate", type=_rates, default=[10.0], help="messages/s in total; a list sweeps")
    add("--senders", type=int, default=4, help="sockets that send, round-robin")
    add("--systems", type=_systems, default=list(SYSTEMS), help=",".join(SYSTEMS))
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
        help="URI options appended to the SecantusDB URL of every system that stores (Let's "
        "Chat and the peers), e.g. w=1",
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
    add(
        "--workloads",
        type=_workloads,
        default=["plain"],
        help="plain (messages only); Let's Chat also: mixed (10%% edits, 20%% reactions), "
        "typing (each sender typing every 3 s), presence (2 away/back changes a second)",
    )
    add(
        "--rounds",
        type=int,
        default=1,
        help="measure every system this many times per rate, taking turns (all systems run "
        "at once; each round starts with the next system), and judge by the medians: on a box "
        "whose speed drifts, one system measured minutes after another is not a pairing",
    )
    add("--keep-logs", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_GROUP_MEMBERS:
        parser.error(f"--clients must be between 1 and {MAX_GROUP_MEMBERS}")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds must be between 1 and 20")
    if args.rounds > 1 and args.workloads != ["plain"]:
        parser.error("--rounds measures the plain workload")
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
    mongo_url: str | None = None  # Its store, whose requests each measurement counts.
    protocol: str = ""  # What its clients speak (bench.load); empty: its name.
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


@contextlib.contextmanager
def running_store(args: argparse.Namespace, work: Path, system: str) -> Iterator[tuple[int, str]]:
    """A fresh SecantusDB for `system` alone, so no system pays for another's data: its pid and
    the URL (with `--mongo-options`) every process of the system uses."""
    secantus, mongo_url = start_secantus(work / f"secantus-{system}", work)
    if args.mongo_options:
        mongo_url = f"{mongo_url}&{args.mongo_options}"
    try:
        yield _pid(secantus), mongo_url
    finally:
        secantus.stop()


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
        # The creator adds every other client to the group at once; the hourly allowance of
        # adds (200) would refuse the group.
        "LETSCHAT_ADDS_PER_HOUR": "1000000",
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
    with (
        running_store(args, work, "letschat") as (store_pid, mongo_url),
        running_stack(mongo_url, REDIS_URL, work, **service_overrides(args)) as stack,
    ):
        setup = seed.seed_group(stack, args.clients, via=args.group_via)
        pids = {f"message{i + 1}": _pid(s) for i, s in enumerate(stack.messages)}
        yield System(
            "letschat",
            letschat_targets(stack, setup.accounts),
            setup.group_id,
            {**pids, "secantusdb": store_pid},
            redis_url=REDIS_URL,
            mongo_url=mongo_url,
            cursors=lambda: {setup.group_id: setup.last_seq()},
            extra={"seed_s": setup.seconds, "group_via": args.group_via},
            bad_log_lines=lambda: stack.bad_log_lines()[:10],
        )


def _bad_log_lines(services: list[Service]) -> list[str]:
    return [
        f"{service.name}: {line}"
        for service in services
        for line in service.log().splitlines()
        if BAD_LOG.search(line)
    ][:10]


def peer_system(
    peer: str,
) -> Callable[[argparse.Namespace, Path], contextlib.AbstractContextManager[System]]:
    """The context manager that runs `peer` (bench/peers) with its own store, as a System."""

    @contextlib.contextmanager
    def system(args: argparse.Namespace, work: Path) -> Iterator[System]:
        run = uuid.uuid4().hex[:12]
        with (
            running_store(args, work, peer) as (store_pid, mongo_url),
            running_peer(
                peer,
                work,
                mongo_url=mongo_url,
                db_name=f"bench_{run}",
                redis_url=REDIS_URL,
                channel=f"bench:{run}:{peer}",
                compression=args.compression,
            ) as instances,
        ):
            # Alternate instances, as for Let's Chat.
            targets = [
                Target(socketio_url(instances[index % len(instances)]))
                for index in range(args.clients)
            ]
            yield System(
                peer,
                targets,
                f"bench-{run}",
                {**{i.name: _pid(i) for i in instances}, "secantusdb": store_pid},
                redis_url=REDIS_URL,
                mongo_url=mongo_url,
                protocol="socketio",
                bad_log_lines=lambda: _bad_log_lines(instances),
            )

    return system


def measure(
    args: argparse.Namespace, system: System, rate: float, work: Path, workload: str = "plain"
) -> dict[str, Any]:
    if args.quiet_wait > 0:
        wait_for_quiet(args.quiet_wait)
    mixed = workload == "mixed"
    spec = LoadSpec(
        system=system.name if workload == "plain" else f"{system.name} {workload}",
        targets=system.targets,
        senders=args.senders,
        messages=args.messages,
        rate=rate,
        conversation_id=system.conversation_id,
        compression=args.compression,
        tag=uuid.uuid4().hex[:8],
        cursors=system.cursors(),
        reads=args.reads,
        protocol=system.protocol or system.name,
        edits=MIXED_EDITS if mixed else 0.0,
        reactions=MIXED_REACTIONS if mixed else 0.0,
        typing=workload == "typing",
        presence=workload == "presence",
    )
    window = CpuWindow(dict(system.pids), redis_url=system.redis_url, mongo_url=system.mongo_url)
    result = run_load(spec, work, window)
    result.update(system.extra, bad_log_lines=system.bad_log_lines())
    if system.mongo_url is not None:
        result["store_requests"] = window.requests
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


Start = Callable[[argparse.Namespace, Path], contextlib.AbstractContextManager[System]]
# What starting or stopping a system can raise (reported; the other systems are still measured).
STOP_ERRORS = (RuntimeError, OSError, httpx.HTTPError, subprocess.SubprocessError)


def measure_system(
    args: argparse.Namespace, name: str, start: Start, work: Path
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every rate against one system; what failed (to start, or one load run) is reported."""
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    try:
        with start(args, work) as system:
            # Only Let's Chat has edits and reactions to mix in.
            workloads = args.workloads if name == "letschat" else ["plain"]
            for rate in args.rate:
                for workload in workloads:
                    print(
                        f"{name} ({workload}): {args.clients} clients, {args.messages} "
                        f"messages at {rate:g}/s",
                        file=sys.stderr,
                        flush=True,
                    )
                    try:
                        results.append(measure(args, system, rate, work, workload))
                    except RuntimeError as exc:  # One failed load run; report the rest.
                        failures.append(f"{name} ({workload}) at {rate:g}/s: {exc}")
    except STOP_ERRORS as exc:
        failures.append(f"{name} did not start or stop cleanly: {exc!r}"[:2000])
    return results, failures


def measure_in_turns(
    args: argparse.Namespace, starts: dict[str, Start], work: Path
) -> tuple[list[dict[str, Any]], list[str]]:
    """Every system running at once, measured in turns: per rate, `args.rounds` rounds of one
    measurement each, each round starting one system further along. Results carry `round`."""
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    try:
        with contextlib.ExitStack() as running:
            systems = _start_all(args, starts, work, running, failures)
            for rate in args.rate:
                for round_ in range(1, args.rounds + 1):
                    turn = round_ % len(systems) if systems else 0
                    for system in systems[turn:] + systems[:turn]:
                        print(
                            f"{system.name}: {args.clients} clients, {args.messages} messages "
                            f"at {rate:g}/s (round {round_} of {args.rounds})",
                            file=sys.stderr,
                            flush=True,
                        )
                        try:
                            results.append(measure(args, system, rate, work) | {"round": round_})
                        except STOP_ERRORS as exc:  # One failed load run; report the rest.
                            failures.append(
                                f"{system.name} at {rate:g}/s, round {round_}: {exc!r}"[:2000]
                            )
    except STOP_ERRORS as exc:
        failures.append(f"a system did not stop cleanly: {exc!r}"[:2000])
    return results, failures


def _start_all(
    args: argparse.Namespace,
    starts: dict[str, Start],
    work: Path,
    running: contextlib.ExitStack,
    failures: list[str],
) -> list[System]:
    systems = []
    for name in args.systems:
        try:
            systems.append(running.enter_context(starts[name](args, work)))
        except STOP_ERRORS as exc:
            failures.append(f"{name} did not start: {exc!r}"[:2000])
    return systems


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    systems = {
        "relay": relay_system,
        "letschat": letschat_system,
        **{peer: peer_system(peer) for peer in PEERS},
    }
    results: list[dict[str, Any]] = []
    failures: list[str] = []
    try:
        with work_directory(lambda: args.keep_logs or bool(failures)) as work:
            if args.rounds > 1:
                results, failures = measure_in_turns(args, systems, work)
            else:
                for name in args.systems:
                    measured, failed = measure_system(args, name, systems[name], work)
                    results += measured
                    failures += failed
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print_report(results, failures, args)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
