"""Jobs that run every so often for as long as the app does, each in a task of its own."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from pymongo.errors import PyMongoError

from backend_services.core.errors import ServiceUnavailable

logger = logging.getLogger("letschat.periodic")


@contextlib.asynccontextmanager
async def every(
    seconds: float, job: Callable[[], Awaitable[None]], name: str
) -> AsyncIterator[None]:
    """Run `job` `seconds` apart (the first a period after entering) until the block ends,
    then cancel it and wait for it. A failed run is logged and the next goes ahead as planned:
    a job that repairs what was lost must outlast a store that is down for a while."""
    task = asyncio.create_task(_repeat(seconds, job, name), name=name)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.wait({task})


async def _repeat(seconds: float, job: Callable[[], Awaitable[None]], name: str) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await job()
        except (PyMongoError, ServiceUnavailable) as exc:  # The store is down: it happens.
            logger.warning("%s failed (%r); trying again in %g s", name, exc, seconds)
        except Exception:
            logger.exception("%s failed; trying again in %g s", name, seconds)
