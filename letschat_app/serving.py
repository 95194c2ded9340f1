"""How the Reflex backend's granian server runs: its Rust runtime on one thread.

Reflex 0.10 builds granian's `Server` itself and reads none of its runtime options from the
environment (only GRANIAN_WORKERS and GRANIAN_LOG_LEVEL), and granian gives every ASGI app its
multi-threaded runtime, so a worker hands each frame of every socket between threads. Its
single-threaded runtime keeps the worker's I/O on one thread (with 20 tabs in one group,
back-to-back runs gave 0.71 against 0.77 ms of backend CPU per delivered message, within this
box's run-to-run spread; bench/README.md).

`LETSCHAT_GRANIAN_RUNTIME_MODE` chooses: `st` (the default here), `mt`, or `auto` (granian's
own choice). rxconfig.py installs this before Reflex starts its server.

The development frontend (`reflex run --env dev`: React Router's Vite server) listens where
`LETSCHAT_WEB_HOST` says, 127.0.0.1 unless told otherwise, like every other process of
`scripts/run`: Reflex's own command passes a bare `--host`, which means every interface.
"""

from __future__ import annotations

import os
from typing import Any

import granian.server
from granian.constants import RuntimeModes
from reflex_base.constants.installer import PackageJson

RUNTIME_MODE_VARIABLE = "LETSCHAT_GRANIAN_RUNTIME_MODE"
WEB_HOST_VARIABLE = "LETSCHAT_WEB_HOST"
DEFAULT_WEB_HOST = "127.0.0.1"
_GranianServer: Any = granian.server.Server


class Server(_GranianServer):  # type: ignore[misc]
    """granian's server, with the runtime mode chosen here unless the caller chose one."""

    runtime_mode_default = RuntimeModes.auto

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("runtime_mode", self.runtime_mode_default)
        super().__init__(*args, **kwargs)


def web_host() -> str:
    """Where the web app's development servers listen."""
    return os.environ.get(WEB_HOST_VARIABLE, "").strip() or DEFAULT_WEB_HOST


def install() -> RuntimeModes:
    """Make `granian.server.Server`, which Reflex looks up when it starts the backend, run
    in the configured mode; return that mode. A wrong value fails here, with its name. The
    development frontend's command (written into .web/package.json) listens on `web_host()`."""
    commands: Any = PackageJson.Commands
    commands.DEV = f"react-router dev --host {web_host()}"
    raw = os.environ.get(RUNTIME_MODE_VARIABLE, RuntimeModes.st.value)
    try:
        mode = RuntimeModes(raw.strip().lower())
    except ValueError:
        choices = ", ".join(m.value for m in RuntimeModes)
        raise ValueError(f"{RUNTIME_MODE_VARIABLE} must be one of {choices}, not {raw!r}") from None
    Server.runtime_mode_default = mode
    granian.server.Server = Server
    return mode
