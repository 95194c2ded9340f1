"""The README's run command: everything on embedded defaults, data kept across restarts."""

from __future__ import annotations

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
