"""The README's run command on a fresh clone: everything on embedded defaults, the URLs to open
once it is ready, nothing misleading on the way, data kept across restarts; its production mode;
and a clear word when a port is taken."""

from __future__ import annotations

import ipaddress
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.support.clients import PASSWORD, unique_name
from tests.support.processes import REPO_ROOT, Process, free_port, wait_until

READY = "Let's Chat is ready."
# Lines about things this project is not or does not do (Reflex's first-run advice for a uv
# project, registries and files it cannot reach here), and a shutdown that had to kill.
MISLEADING = re.compile(r"uv run|uv pip|npmmirror|AGENTS\.md|SIGKILL|Traceback")


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


def fresh_clone(into: Path) -> Path:
    """The project's files as a clone has them (no .web, .data or .venv); the tools scripts/setup
    installs are shared."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO_ROOT / name
        if source.is_file():
            (into / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / name)
    (into / ".tools").symlink_to(REPO_ROOT / ".tools")
    return into


def _launcher(
    data_dir: Path,
    log_path: Path,
    ports: dict[str, int],
    *args: str,
    root: Path = REPO_ROOT,
) -> Process:
    env = {name: str(port) for name, port in ports.items()}
    env.update(
        {"LETSCHAT_DATA_DIR": str(data_dir), "LETSCHAT_MONGODB_URL": "", "LETSCHAT_REDIS_URL": ""}
    )
    return Process(
        "launcher", [sys.executable, str(root / "scripts" / "run.py"), *args], log_path, env
    )


def free_ports() -> dict[str, int]:
    """A free port for each of the launcher's port variables."""
    names = ("AUTH", "MESSAGE", "EMBEDDED_MONGODB", "FRONTEND", "REFLEX_BACKEND")
    return {f"LETSCHAT_{name}_PORT": free_port() for name in names}


def refused_launch(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """scripts/run with `env`, expected to refuse before it starts anything."""
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "run.py")],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _stop(launcher: Process) -> None:
    """Ctrl+C: the launcher stops every process it started, in time."""
    launcher.signal(signal.SIGINT)
    assert launcher.wait(60) is not None


@pytest.mark.timeout(900)
def test_run_command_serves_everything_and_keeps_data_across_restarts(
    tmp_path: Path, log_dir: Path
) -> None:
    ports = free_ports()
    auth, messages = ports["LETSCHAT_AUTH_PORT"], ports["LETSCHAT_MESSAGE_PORT"]
    web_port = ports["LETSCHAT_FRONTEND_PORT"]
    username = unique_name("q")
    clone = fresh_clone(tmp_path / "clone")
    data = tmp_path / "data"
    for attempt in range(2):
        # The first run is the README's command as it is on a fresh clone, web app included;
        # the restart only needs the services.
        log = log_dir / f"launcher-{attempt}.log"
        launcher = _launcher(data, log, ports, *([] if attempt == 0 else ["--no-web"]), root=clone)
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
                # It says when it is ready, where to go and in which mode.
                logged = launcher.log
                wait_until(lambda logged=logged: READY in logged(), 60, "the ready banner")
                assert f"http://localhost:{web_port}" in launcher.log()
                assert "development (hot reload" in launcher.log()
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
            _stop(launcher)
        bad = [line for line in launcher.log().splitlines() if MISLEADING.search(line)]
        assert not bad, "\n".join(bad)
    assert (data / "secantus").is_dir()


@pytest.mark.timeout(600)
def test_production_mode_serves_the_built_app_on_one_port(tmp_path: Path, log_dir: Path) -> None:
    ports = free_ports()
    web_port = ports["LETSCHAT_FRONTEND_PORT"]
    launcher = _launcher(tmp_path, log_dir / "launcher-prod.log", ports, "--prod")
    launcher.start()
    try:
        wait_until(lambda: READY in launcher.log() or not launcher.running, 480, "the ready banner")
        assert launcher.running, launcher.log()[-4000:]
        assert "production build (what users get)" in launcher.log()
        page = httpx.get(f"http://127.0.0.1:{web_port}/login", follow_redirects=True, timeout=10)
        assert page.status_code == 200
        # The exported build: bundled assets, not the development server's modules.
        assert "/@vite/client" not in page.text, page.text[:2000]
        assert "/assets/" in page.text, page.text[:2000]
        assert httpx.get(f"http://127.0.0.1:{web_port}/ping", timeout=10).status_code == 200
        assert not _listening(ports["LETSCHAT_REFLEX_BACKEND_PORT"])  # One port serves both.
    finally:
        _stop(launcher)
    bad = [line for line in launcher.log().splitlines() if MISLEADING.search(line)]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("squatted", ["LETSCHAT_FRONTEND_PORT", "LETSCHAT_EMBEDDED_MONGODB_PORT"])
def test_a_taken_port_is_named_with_its_variable_and_nothing_starts(
    tmp_path: Path, squatted: str
) -> None:
    ports = free_ports()
    env = {name: str(port) for name, port in ports.items()}
    env |= {
        "LETSCHAT_DATA_DIR": str(tmp_path),
        "LETSCHAT_MONGODB_URL": "",
        "LETSCHAT_REDIS_URL": "",
    }
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", ports[squatted]))
        squatter.listen()
        done = refused_launch(env)
    assert done.returncode == 1
    role = {
        "LETSCHAT_FRONTEND_PORT": "the web app",
        "LETSCHAT_EMBEDDED_MONGODB_PORT": "the embedded database",
    }
    assert f"port {ports[squatted]} is taken ({squatted}, {role[squatted]})" in done.stderr
    assert re.search(rf"{squatted}=\d+ scripts/run", done.stderr), done.stderr
    assert not (tmp_path / "secantus").exists()  # Nothing was started.
    for name, other in ports.items():
        if name != squatted:
            assert not _listening(other), name


def test_a_port_that_is_not_one_is_named_with_its_variable(tmp_path: Path) -> None:
    env = {
        "LETSCHAT_DATA_DIR": str(tmp_path),
        "LETSCHAT_MONGODB_URL": "",
        "LETSCHAT_REDIS_URL": "",
        "LETSCHAT_AUTH_PORT": "80o1",
        "LETSCHAT_MESSAGE_PORT": str(free_port()),
        "LETSCHAT_EMBEDDED_MONGODB_PORT": str(free_port()),
        "LETSCHAT_FRONTEND_PORT": str(free_port()),
    }
    env["LETSCHAT_REFLEX_BACKEND_PORT"] = env["LETSCHAT_FRONTEND_PORT"]
    done = refused_launch(env)
    assert done.returncode == 1
    assert "LETSCHAT_AUTH_PORT='80o1' is not a port" in done.stderr, done.stderr
    assert "LETSCHAT_REFLEX_BACKEND_PORT and LETSCHAT_FRONTEND_PORT are both" in done.stderr
    assert "Traceback" not in done.stderr
