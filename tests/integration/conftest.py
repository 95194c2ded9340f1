"""Integration fixtures: SecantusDB once per session, a fresh backend (own database and channel
prefix) per test, the shared Redis at LETSCHAT_TEST_REDIS_URL."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from pymongo.monitoring import CommandListener, CommandStartedEvent

from backend_services.core.store import Database, Store
from tests.support.clients import Api
from tests.support.processes import REPO_ROOT, Process, start_secantus
from tests.support.stack import Stack, running_stack

LOG_ROOT = REPO_ROOT / "test-artifacts" / "logs"


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = LOG_ROOT / tmp_path_factory.getbasetemp().name
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def mongo_url(tmp_path_factory: pytest.TempPathFactory, log_dir: Path) -> Iterator[str]:
    proc: Process
    proc, url = start_secantus(tmp_path_factory.mktemp("secantus"), log_dir)
    try:
        yield url
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return os.environ.get("LETSCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


StackFactory = Callable[..., Stack]


@pytest.fixture
def make_stack(mongo_url: str, redis_url: str, log_dir: Path) -> Iterator[StackFactory]:
    """Start a backend with settings overrides (`redis_url=None` for the in-process broker)."""
    with contextlib.ExitStack() as stacks:
        started: list[Stack] = []

        def make(*, instances: int = 2, redis: str | None = redis_url, **overrides: str) -> Stack:
            running = stacks.enter_context(
                running_stack(mongo_url, redis, log_dir, instances=instances, **overrides)
            )
            started.append(running)
            return running

        yield make
        bad = [line for running in started for line in running.bad_log_lines()]
        assert not bad, "\n".join(bad)


@pytest.fixture
def stack(make_stack: StackFactory) -> Stack:
    """Auth service and two message-service instances fanning out through Redis."""
    return make_stack()


@pytest.fixture
async def api(stack: Stack) -> AsyncIterator[Api]:
    client = Api(stack.auth_url, stack.messages[0].url)
    yield client
    await client.aclose()


class CommandLog(CommandListener):
    """The names of the commands a client started."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: object) -> None:
        pass

    def failed(self, event: object) -> None:
        pass


@pytest.fixture
async def logged_store(mongo_url: str) -> AsyncIterator[tuple[Store, CommandLog]]:
    """A store on a database of its own, indexed, whose client logs the commands it starts
    (from the test's first command on)."""
    log = CommandLog()
    database = Database(mongo_url, f"test_{uuid.uuid4().hex[:12]}", event_listeners=[log])
    store = Store(database)
    await database.ensure_indexes()
    log.names.clear()
    yield store, log
    await database.client.drop_database(database.db.name)
    await store.close()
