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


def _launcher(data_dir: Path, log_dir: Path, ports: dict[str, int]) -> Process:
    env = {name: str(port) for name, port in ports.items()}
    env.update(
        {"LETSCHAT_DATA_DIR": str(data_dir), "LETSCHAT_MONGODB_URL": "", "LETSCHAT_REDIS_URL": ""}
    )
    return Process(
        "launcher",
        [sys.executable, str(REPO_ROOT / "scripts" / "run.py")],
        log_dir / "launcher.log",
        env=env,
    )


def test_run_command_serves_everything_and_keeps_data_across_restarts(
    tmp_path: Path, log_dir: Path
) -> None:
    ports = {
        "LETSCHAT_AUTH_PORT": free_port(),
        "LETSCHAT_MESSAGE_PORT": free_port(),
        "LETSCHAT_EMBEDDED_MONGODB_PORT": free_port(),
    }
    auth, messages = ports["LETSCHAT_AUTH_PORT"], ports["LETSCHAT_MESSAGE_PORT"]
    username = unique_name("q")
    for attempt in range(2):
        launcher = _launcher(tmp_path, log_dir, ports)
        launcher.start()
        try:
            wait_until(lambda: _ready(auth) and _ready(messages), 60, "the launched services")
            if attempt == 0:
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
            assert launcher.wait(30) is not None
    assert (tmp_path / "secantus").is_dir()
