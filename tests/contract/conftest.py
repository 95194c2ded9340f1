"""Contract fixtures: one test body, every implementation of an interface."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest

from backend_services.core.broker import Broker
from backend_services.core.broker.memory import MemoryBroker
from backend_services.core.broker.redis import RedisBroker

REDIS_URL = os.environ.get("LETSCHAT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture(params=["memory", "redis"])
async def broker(request: pytest.FixtureRequest) -> AsyncIterator[Broker]:
    implementation: Broker = MemoryBroker() if request.param == "memory" else RedisBroker(REDIS_URL)
    await implementation.connect()
    yield implementation
    await implementation.disconnect()


@pytest.fixture
def channel() -> str:
    """A channel name no other test (or deployment sharing this Redis) uses."""
    return f"test:{uuid.uuid4().hex}:"
