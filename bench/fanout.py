"""Group fan-out: the message service (two instances over Redis) against a bare relay.

One run starts SecantusDB, the auth service and two message-service instances, seeds `--clients`
users in one group, connects every user's socket (split over both instances) from a separate
load-generator process, sends `--messages` at `--rate` per second into the group, and measures
every (message, recipient) delivery. It then does the same against `bench.relay`, a bare
`websockets.broadcast` relay: the ceiling. Everything binds 127.0.0.1 and is torn down at the end.

    .venv/bin/python -m bench.fanout                          # 1,000 clients
    .venv/bin/python -m bench.fanout --clients 50 --messages 20   # smoke run, well under a minute
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from backend_services.core.schemas import MAX_GROUP_MEMBERS
from bench import seed
from bench.cpu import CpuWindow
from bench.load import LoadSpec, Target
from bench.report import print_report
from tests.support.processes import Service, free_port, start_secantus
from tests.support.stack import Stack, running_stack

REDIS_URL = "redis://127.0.0.1:6379/0"
SYSTEMS = ("relay", "letschat")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Group fan-out: message service vs a bare websockets relay."
    )
    parser.add_argument("--clients", type=int, default=1000, help="sockets (and group members)")
    parser.add_argument("--messages", type=int, default=300, help="messages sent per system")
    parser.add_argument("--rate", type=float, default=50.0, help="messages per second, in total")
    parser.add_argument("--senders", type=int, default=4, help="sockets that send, round-robin")
    parser.add_argument(
        "--systems", default=",".join(SYSTEMS), help="comma-separated: relay, letschat"
    )
    parser.add_argument(
        "--compression",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="clients offer permessage-deflate, as browsers do (default: on)",
    )
    parser.add_argument(
        "--send-queue-size", type=int, default=None, help="LETSCHAT_SEND_QUEUE_SIZE override"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    args.systems = [name.strip() for name in args.systems.split(",") if name.strip()]
    if unknown := set(args.systems) - set(SYSTEMS):
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    if not 1 <= args.senders <= args.clients:
        parser.error("--senders must be between 1 and --clients")
    if args.clients > MAX_GROUP_MEMBERS or args.messages < 1 or args.rate <= 0:
        parser.error(f"need 1 <= --clients <= {MAX_GROUP_MEMBERS}, --messages >= 1, --rate > 0")
    return args


# --- the load generator process ---------------------------------------------------------------


def run_load(spec: LoadSpec, work: Path, cpu: CpuWindow) -> dict[str, Any]:
    """Run `bench.load` as its own process; sample CPU over its send-and-drain window."""
    spec_path, result_path = work / f"{spec.system}-spec.json", work / f"{spec.system}-result.json"
    spec.dump(spec_path)
    # Connecting, sending at the rate, the drain give-up, and a generous margin for a busy box.
    limit_s = 180 + 3 * spec.messages / spec.rate
    with (work / f"load-{spec.system}.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bench.load", str(spec_path), str(result_path)],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
    watchdog = threading.Timer(limit_s, process.kill)
    watchdog.start()
    try:
        cpu.pids = {**cpu.pids, "load generator": process.pid}
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "phase send":
                cpu.start()
            elif line.strip() == "phase done":
                cpu.stop()
        code = process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    if code != 0 or not result_path.exists():
        raise RuntimeError(f"load generator failed ({code}); see {work}/load-{spec.system}.log")
    result: dict[str, Any] = json.loads(result_path.read_text())
    result["cpu_s"], result["cpu_wall_s"] = cpu.used, cpu.wall_s
    return result


def _spec(args: argparse.Namespace, system: str, targets: list[Target], cid: str) -> LoadSpec:
    return LoadSpec(
        system=system,
        targets=targets,
        senders=args.senders,
        messages=args.messages,
        rate=args.rate,
        conversation_id=cid,
        compression=args.compression,
    )


# --- the bare relay ---------------------------------------------------------------------------


def relay_phase(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    port = free_port()
    relay = Service(
        "relay",
        [sys.executable, "-m", "bench.relay", "--port", str(port)],
        work / "relay.log",
        port=port,
    )
    relay.start()
    try:
        relay.wait_ready()
        targets = [Target(relay.ws_url) for _ in range(args.clients)]
        cpu = CpuWindow({"relay": _pid(relay)})
        return run_load(_spec(args, "relay", targets, "relay"), work, cpu)
    finally:
        relay.stop()


# --- the message service ----------------------------------------------------------------------


def service_overrides(args: argparse.Namespace) -> dict[str, str]:
    run = uuid.uuid4().hex[:12]
    overrides = {
        "LETSCHAT_CHANNEL_PREFIX": f"bench:{run}:",
        "LETSCHAT_MONGODB_DB": f"bench_{run}",
        # The senders are a handful of users sending far more than a person would: the per-user
        # token bucket (30 burst, 10/s by default) would measure the limiter, not fan-out.
        "LETSCHAT_SEND_BURST": str(args.messages + 100),
        "LETSCHAT_SEND_RATE_PER_SECOND": "100000",
        # Production's sweep interval, not the tests' 0.5 s.
        "LETSCHAT_SESSION_SWEEP_SECONDS": "15",
        "LETSCHAT_SEQ_HOLE_GRACE_SECONDS": "2",
        "LETSCHAT_LOG_LEVEL": "warning",
    }
    if args.send_queue_size is not None:
        overrides["LETSCHAT_SEND_QUEUE_SIZE"] = str(args.send_queue_size)
    return overrides


def seed_group(stack: Stack, clients: int) -> tuple[list[seed.Account], str, float]:
    """Create the users and their group; return them, the group id and the seconds it took."""
    started = time.monotonic()
    env = stack.env
    accounts = asyncio.run(
        seed.create_users(env["LETSCHAT_MONGODB_URL"], env["LETSCHAT_MONGODB_DB"], clients)
    )
    accounts = seed.mint_tokens(accounts, env["LETSCHAT_JWT_SECRET"])
    creator = seed.login(stack.auth_url, accounts[0])
    group = seed.create_group(stack.messages[0].url, creator, accounts[1:])
    return [creator, *accounts[1:]], group, time.monotonic() - started


def letschat_phase(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    secantus, mongo_url = start_secantus(work / "secantus", work)
    try:
        with running_stack(mongo_url, REDIS_URL, work, **service_overrides(args)) as stack:
            accounts, group, seed_s = seed_group(stack, args.clients)
            instances = stack.messages
            # Alternate instances so senders and recipients are spread over both.
            targets = [
                Target(instances[index % len(instances)].ws_url, account.token)
                for index, account in enumerate(accounts)
            ]
            pids = {f"message{i + 1}": _pid(s) for i, s in enumerate(instances)}
            cpu = CpuWindow({**pids, "secantusdb": _pid(secantus)}, redis_url=REDIS_URL)
            result = run_load(_spec(args, "letschat", targets, group), work, cpu)
            result["seed_s"] = seed_s
            result["bad_log_lines"] = stack.bad_log_lines()[:10]
            return result
    finally:
        secantus.stop()


def _pid(process: Service | Any) -> int:
    assert process.popen is not None
    return int(process.popen.pid)


# --- main -------------------------------------------------------------------------------------


@contextlib.contextmanager
def work_directory(keep: bool) -> Iterator[Path]:
    work = Path(tempfile.mkdtemp(prefix="letschat-bench-"))
    failed = True
    try:
        yield work
        failed = False
    finally:
        if keep or failed:
            print(f"logs kept in {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    phases = {"relay": relay_phase, "letschat": letschat_phase}
    results: list[dict[str, Any]] = []
    try:
        with work_directory(args.keep_logs) as work:
            for system in args.systems:
                print(
                    f"running {system}: {args.clients} clients, {args.messages} messages "
                    f"at {args.rate:g}/s ...",
                    file=sys.stderr,
                    flush=True,
                )
                results.append(phases[system](args, work))
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped", file=sys.stderr)
        return 130
    print_report(results, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
