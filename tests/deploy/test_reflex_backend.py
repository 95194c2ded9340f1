"""The frontend `app` image's command, run as the image runs it (without Docker).

`reflex run --env prod --backend-only` from a copy of the app, with only the folders the image
makes writable: it must answer the image's health check, write nowhere else, and stop promptly
on SIGTERM.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.deploy.conftest import BIN, ROOT, dockerfile

STARTUP_SECONDS = 90
STOP_SECONDS = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_the_reflex_backend_starts_answers_its_health_check_and_stops(tmp_path: Path) -> None:
    stage = dockerfile("Dockerfile.frontend")["app"]
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    shutil.copy(ROOT / "rxconfig.py", app_dir)
    for folder in ["letschat_app", "assets"]:
        shutil.copytree(
            ROOT / folder, app_dir / folder, ignore=shutil.ignore_patterns("__pycache__")
        )
    before = {p.relative_to(app_dir) for p in app_dir.rglob("*")}
    port = free_port()
    env = {
        **stage.env(),
        # The image's PATH names /opt/venv; here the project's venv stands in for it.
        "PATH": f"{BIN}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": str(tmp_path / "home"),
        "LETSCHAT_REFLEX_BACKEND_PORT": str(port),
    }
    command = stage.exec_form("CMD")
    log = (tmp_path / "reflex.log").open("w")
    process = subprocess.Popen(
        [str(BIN / command[0]), *command[1:]],
        cwd=app_dir,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            assert process.poll() is None, (tmp_path / "reflex.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "reflex.log").read_text()
                time.sleep(0.3)
        healthcheck = stage.healthcheck()[1:]
        subprocess.run(
            [str(BIN / healthcheck[0]), *healthcheck[1:]], env=env, check=True, timeout=10
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        finally:
            log.close()
    # ECS stops a task with SIGTERM: the backend must stop by itself, cleanly, in time (a
    # crash on the way out, or a kill after the timeout, would not give 0).
    assert process.returncode == 0, (tmp_path / "reflex.log").read_text()
    # The image makes only these writable for the app user (Dockerfile.frontend).
    written = {p.relative_to(app_dir) for p in app_dir.rglob("*")} - before
    assert {path.parts[0] for path in written} <= {".web", ".states"}, sorted(map(str, written))
