"""Run Let's Chat locally: every process in one terminal, on embedded defaults.

Without LETSCHAT_MONGODB_URL it starts SecantusDB (a MongoDB-wire server) with its data under
./.data/, so messages survive a restart. Without LETSCHAT_REDIS_URL there is one message-service
instance with the in-process broker; with it, two instances (8002 and 8003) fan out through Redis.
Then the Reflex app: in development mode (hot reload) on :3000 with its backend on :8000, or with
--prod its production build (exported frontend, production backend) on :3000 alone.

It checks every port before it starts anything (scripts/preflight.py) and prints the URLs to
open once everything answers.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
import shlex
import sys
import threading
import time
from pathlib import Path

import httpx
from honcho.manager import Manager
from honcho.printer import Message, Printer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from preflight import (
    LOOPBACK,
    ROOT,
    data_dir,
    initialise_web,
    port_problems,
    ports_of,
    web_environment,
)

READY_POLL_SECONDS = 0.5
# If something still does not answer after this, say what (then keep waiting).
READY_PATIENCE_SECONDS = 90.0


def _python_module(module: str) -> str:
    return f"{shlex.quote(sys.executable)} -m {module}"


def plan(
    env: dict[str, str], *, web: bool = True, prod: bool = False
) -> dict[str, tuple[str, dict[str, str]]]:
    """Process name -> (command, extra environment)."""
    ports = ports_of(env)
    processes: dict[str, tuple[str, dict[str, str]]] = {}
    services: dict[str, str] = {}  # What every service gets besides its port.
    if not env.get("LETSCHAT_MONGODB_URL"):
        port = ports["LETSCHAT_EMBEDDED_MONGODB_PORT"]
        storage = data_dir(env) / "secantus"
        processes["mongodb"] = (
            f"{_python_module('backend_services.embedded_mongo')} --host 127.0.0.1 --port {port} "
            f"--storage-path {shlex.quote(str(storage))} --log-level WARNING",
            {},
        )
        # No retryable writes on the embedded server: SecantusDB keeps a record of each one and
        # scans them all on every write, so its writes slow down as they add up. Nothing relies
        # on the driver's retry: a failed send is resent by its client with the same id.
        services["LETSCHAT_MONGODB_URL"] = (
            f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"
        )
    message = _python_module("backend_services.message_service")
    processes["auth"] = (
        _python_module("backend_services.auth_service"),
        {**services, "LETSCHAT_PORT": ports["LETSCHAT_AUTH_PORT"]},
    )
    processes["message"] = (message, {**services, "LETSCHAT_PORT": ports["LETSCHAT_MESSAGE_PORT"]})
    if env.get("LETSCHAT_REDIS_URL"):
        processes["message2"] = (
            message,
            {**services, "LETSCHAT_PORT": ports["LETSCHAT_SECOND_MESSAGE_PORT"]},
        )
    if web:
        frontend = ports["LETSCHAT_FRONTEND_PORT"]
        backend = frontend if prod else ports["LETSCHAT_REFLEX_BACKEND_PORT"]
        mode = "--env prod --single-port" if prod else "--env dev"
        processes["web"] = (
            f"{shlex.quote(str(Path(sys.executable).parent / 'reflex'))} run {mode} "
            f"--frontend-port {frontend} --backend-port {backend} "
            f"--backend-host {shlex.quote(env.get('LETSCHAT_WEB_HOST') or LOOPBACK)}",
            {
                **web_environment(env),
                "LETSCHAT_AUTH_URL": f"http://127.0.0.1:{ports['LETSCHAT_AUTH_PORT']}",
                "LETSCHAT_MESSAGE_URL": f"http://127.0.0.1:{ports['LETSCHAT_MESSAGE_PORT']}",
                # rxconfig.py builds the app's URLs from these.
                "LETSCHAT_FRONTEND_PORT": frontend,
                "LETSCHAT_REFLEX_BACKEND_PORT": backend,
            },
        )
    return processes


def _reachable(host: str) -> str:
    """Where this machine reaches a server bound to `host`, as a URL's host part."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host  # A name.
    if address.is_unspecified:
        return LOOPBACK
    return f"[{address}]" if address.version == 6 else str(address)


def readiness_checks(env: dict[str, str], *, web: bool, prod: bool) -> dict[str, str]:
    """What must answer 200 before the app is ready: name -> URL."""
    ports = ports_of(env)
    host = _reachable(env.get("LETSCHAT_HOST") or LOOPBACK)
    checks = {
        "auth": f"http://{host}:{ports['LETSCHAT_AUTH_PORT']}/readyz",
        "message": f"http://{host}:{ports['LETSCHAT_MESSAGE_PORT']}/readyz",
    }
    if env.get("LETSCHAT_REDIS_URL"):
        checks["message2"] = f"http://{host}:{ports['LETSCHAT_SECOND_MESSAGE_PORT']}/readyz"
    if web:
        web_host = _reachable(env.get("LETSCHAT_WEB_HOST") or LOOPBACK)
        backend = ports["LETSCHAT_FRONTEND_PORT" if prod else "LETSCHAT_REFLEX_BACKEND_PORT"]
        checks["web backend"] = f"http://{web_host}:{backend}/ping"
        checks["web app"] = f"http://{web_host}:{ports['LETSCHAT_FRONTEND_PORT']}/login"
    return checks


def demo_command(env: dict[str, str]) -> str:
    """scripts/demo as another terminal must run it to reach this database."""
    given = [
        f"{name}={shlex.quote(env[name])}"
        for name in ("LETSCHAT_EMBEDDED_MONGODB_PORT", "LETSCHAT_DATA_DIR", "LETSCHAT_MONGODB_DB")
        if env.get(name)
    ]
    return " ".join([*given, "scripts/demo"])


def ready_banner(env: dict[str, str], *, web: bool, prod: bool) -> str:
    ports = ports_of(env)
    auth, message = ports["LETSCHAT_AUTH_PORT"], ports["LETSCHAT_MESSAGE_PORT"]
    lines = ["", "Let's Chat is ready."]
    if web:
        lines.append(f"  Open       http://localhost:{ports['LETSCHAT_FRONTEND_PORT']}")
        lines.append(
            "  Mode       production build (what users get)"
            if prod
            else "  Mode       development (hot reload, slower pages; --prod: the production build)"
        )
    lines.append(
        f"  API docs   http://127.0.0.1:{auth}/docs (auth), http://127.0.0.1:{message}/docs"
    )
    if env.get("LETSCHAT_MONGODB_URL"):
        lines.append("  Stop       Ctrl+C")
    else:
        lines += [
            f"  Demo team  {demo_command(env)} (another terminal): people, history, logins",
            f"  Stop       Ctrl+C; the data stays in {data_dir(env) / 'secantus'}",
            "             (stop, then delete that folder to start afresh)",
        ]
    return "\n".join(lines) + "\n\n"


def announce_when_ready(
    manager: Manager, checks: dict[str, str], banner: str, stop: threading.Event
) -> None:
    """Print `banner` through the manager once every check answers 200 (and what is still
    waited for, if it takes long)."""

    def say(text: str) -> None:
        now = datetime.datetime.now()
        manager.events.put(Message(type="line", data=text, time=now, name="ready", colour=None))

    pending = dict(checks)
    patience = time.monotonic() + READY_PATIENCE_SECONDS
    with httpx.Client(timeout=5, follow_redirects=True) as client:
        while pending and not stop.is_set():
            for name, url in list(pending.items()):
                try:
                    if client.get(url).status_code == 200:
                        del pending[name]
                except Exception:  # noqa: S112 - not up yet, or refusing: ask again
                    continue
            if pending and time.monotonic() > patience:
                say(f"still waiting for: {', '.join(f'{n} ({u})' for n, u in pending.items())}\n")
                patience = time.monotonic() + READY_PATIENCE_SECONDS
            stop.wait(READY_POLL_SECONDS)
    if not pending and not stop.is_set():
        say(banner)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the processes and exit")
    parser.add_argument("--no-web", action="store_true", help="only the backend services")
    parser.add_argument(
        "--prod",
        action="store_true",
        help="the web app's production build (built on start), as users get it",
    )
    args = parser.parse_args()
    env = dict(os.environ)
    web = not args.no_web
    processes = plan(env, web=web, prod=args.prod)
    if args.dry_run:
        for name, (command, extra) in processes.items():
            print(f"{name}: {' '.join(f'{k}={v}' for k, v in extra.items())} {command}".strip())
        return 0
    if problems := port_problems(env, web=web, prod=args.prod):
        for problem in problems:
            print(f"scripts/run: {problem}", file=sys.stderr)
        return 1
    if "mongodb" in processes:
        (data_dir(env) / "secantus").parent.mkdir(parents=True, exist_ok=True)
    if web:
        initialise_web(env, lambda text: print(text, flush=True))
    manager = Manager(Printer(sys.stdout))
    for name, (command, extra) in processes.items():
        manager.add_process(name, command, env={**env, **extra}, cwd=str(ROOT))
    stop = threading.Event()
    checks = readiness_checks(env, web=web, prod=args.prod)
    banner = ready_banner(env, web=web, prod=args.prod)
    watcher = threading.Thread(
        target=announce_when_ready, args=(manager, checks, banner, stop), daemon=True
    )
    watcher.start()
    try:
        manager.loop()
    finally:
        stop.set()
    return int(manager.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
