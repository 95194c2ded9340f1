"""Real servers for tests: SecantusDB, redis-server and our services as uvicorn processes."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
# Generous: a cold Python start with FastAPI and pymongo takes a second or two on a busy box.
START_TIMEOUT = 30.0


# Where free ports are looked for: below the range the kernel gives outgoing connections. A port
# from that range (what binding port 0 returns) can be taken as the local port of any client
# socket between this check and the server's own bind, which then fails: tests open thousands.
LISTEN_PORTS = (10_000, 32_768)
_handed_out: set[int] = set()


def ephemeral_ports() -> tuple[int, int]:
    """The range the kernel picks outgoing connections' local ports from."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32_768, 60_999  # Linux's default.


def free_port() -> int:
    """A port nothing listens on, outside the ephemeral range, not handed out before."""
    low, high = LISTEN_PORTS
    ephemeral = ephemeral_ports()
    for _ in range(500):
        port = random.randrange(low, high)
        if port in _handed_out or ephemeral[0] <= port <= ephemeral[1]:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    with socket.socket() as sock:  # A crowded box: what the kernel offers, as before.
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(predicate: object, timeout: float, what: str, interval: float = 0.05) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _tcp_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Process:
    """A child process with its output in a log file, stopped (and reaped) on `stop`."""

    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.popen = subprocess.Popen(
            self.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **self.env},
            cwd=REPO_ROOT,
        )
        log.close()

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.running:
            assert self.popen is not None
            self.popen.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int | None:
        assert self.popen is not None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(5)

    def stop(self) -> None:
        if self.popen is None:
            return
        if self.running:
            self.popen.terminate()
        self.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown hooks, sockets dropped mid-flight."""
        self.signal(signal.SIGKILL)
        self.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


# The embedded store as scripts/run starts it (with its findAndModify repair), and as published.
EMBEDDED_MONGO = (sys.executable, "-m", "backend_services.embedded_mongo")
STOCK_SECANTUS = (str(Path(sys.executable).parent / "secantusd-py"),)


def start_secantus(
    data_dir: Path,
    log_dir: Path,
    port: int | None = None,
    *,
    command: Sequence[str] = EMBEDDED_MONGO,
) -> tuple[Process, str]:
    port = port or free_port()
    proc = Process(
        "secantus",
        [*command, "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(data_dir)],
        log_dir / f"secantus-{port}.log",
    )
    proc.start()
    wait_until(lambda: _tcp_open(port) or not proc.running, START_TIMEOUT, "SecantusDB")
    if not proc.running:
        raise RuntimeError(f"SecantusDB exited:\n{proc.log()}")
    # Without retryable writes, as scripts/run uses SecantusDB (see there why).
    return proc, f"mongodb://127.0.0.1:{port}/?directConnection=true&retryWrites=false"


def start_redis(log_dir: Path, port: int | None = None) -> Process:
    """A private redis-server (for tests that stop or restart Redis)."""
    port = port or free_port()
    proc = Process(
        f"redis-{port}",
        [
            shutil.which("redis-server") or "redis-server",
            "--bind",
            "127.0.0.1",
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        log_dir / f"redis-{port}.log",
    )
    proc.start()
    wait_until(lambda: _tcp_open(port) or not proc.running, START_TIMEOUT, "redis-server")
    if not proc.running:
        raise RuntimeError(f"redis-server exited:\n{proc.log()}")
    return proc


@dataclass
class Service(Process):
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def wait_ready(self) -> None:
        def ready() -> bool:
            if not self.running:
                raise RuntimeError(f"{self.name} exited:\n{self.log()}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200
            return False

        wait_until(ready, START_TIMEOUT, f"{self.name} /readyz")

    def restart(self) -> None:
        self.start()
        self.wait_ready()


def service_process(
    module: str, name: str, env: Mapping[str, str], log_dir: Path, port: int | None = None
) -> Service:
    """A not-yet-started `python -m backend_services.<module>` on a free port."""
    port = port or free_port()
    return Service(
        name,
        [sys.executable, "-m", f"backend_services.{module}"],
        log_dir / f"{name}-{port}.log",
        env={**env, "LETSCHAT_PORT": str(port)},
        port=port,
    )


@contextlib.contextmanager
def stopping(*processes: Process) -> Iterator[None]:
    try:
        yield
    finally:
        for proc in processes:
            proc.stop()
