"""The README's run command: everything on embedded defaults, data kept across restarts."""

from __future__ import annotations

import ipaddress
import signal
import sys
from pathlib import Path

import httpx

from tests.support.clients import PASSWORD, unique_name
from tests.support.processes import REPO_ROOT, Process, free_port, wait_until


def _ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _serves_page(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _listening(port: int) -> set[str]:
    """The local addresses of sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, _, hex_port = local.partition(":")
            if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                # The kernel prints each 32-bit word in host (little-endian) order.
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add(str(ipaddress.ip_address(words)))
    return found


def _launcher(data_dir: Path, log_dir: Path, ports: dict[str, int], *, web: bool) -> Process:
    env = {name: str(port) for name, port in ports.items()}
    env.update(
        {"LETSCHAT_DATA_DIR": str(data_dir), "LETSCHAT_MONGODB_URL": "", "LETSCHAT_REDIS_URL": ""}
    )
    args = [sys.executable, str(REPO_ROOT / "scripts" / "run.py")]
    return Process("launcher", args if web else [*args, "--no-web"], log_dir / "launcher.log", env)


def test_run_command_serves_everything_and_keeps_data_across_restarts(
    tmp_path: Path, log_dir: Path
) -> None:
    ports = {
        "LETSCHAT_AUTH_PORT": free_port(),
        "LETSCHAT_MESSAGE_PORT": free_port(),
        "LETSCHAT_EMBEDDED_MONGODB_PORT": free_port(),
        "LETSCHAT_FRONTEND_PORT": free_port(),
        "LETSCHAT_REFLEX_BACKEND_PORT": free_port(),
    }
    auth, messages = ports["LETSCHAT_AUTH_PORT"], ports["LETSCHAT_MESSAGE_PORT"]
    web_port = ports["LETSCHAT_FRONTEND_PORT"]
    username = unique_name("q")
    for attempt in range(2):
        # The first run is the README's command as it is, web app included; the restart only
        # needs the services.
        launcher = _launcher(tmp_path, log_dir, ports, web=attempt == 0)
        launcher.start()
        try:
            wait_until(lambda: _ready(auth) and _ready(messages), 60, "the launched services")
            if attempt == 0:
                wait_until(lambda: _serves_page(web_port), 300, "the web app's first page")
                # Every process listens on this machine only, the web app's as the services.
                for port in ports.values():
                    assert _listening(port) <= {"127.0.0.1", "::1"}, (port, _listening(port))
                for port in (web_port, ports["LETSCHAT_REFLEX_BACKEND_PORT"], auth, messages):
                    assert _listening(port), port
                response = httpx.post(
                    f"http://127.0.0.1:{auth}/auth/register",
                    json={"username": username, "password": PASSWORD},
                )
                assert response.status_code == 201, response.text
            else:  # Same data directory: the account is still there.
                response = httpx.post(
                    f"http://127.0.0.1:{auth}/auth/login",
                    json={"username": username, "password": PASSWORD},
                )
                assert response.status_code == 200, response.text
        finally:
            launcher.signal(signal.SIGINT)
            assert launcher.wait(60) is not None
    assert (tmp_path / "secantus").is_dir()
