"""The app lifespan's periodic jobs: each runs a period apart in its own task, goes on after a
failed run, and is cancelled and awaited when the lifespan ends."""

from __future__ import annotations

import asyncio
import logging

import pytest
from pymongo.errors import PyMongoError

from backend_services.message_service.periodic import every

PERIOD = 0.01


async def test_a_job_runs_every_period_until_the_block_ends() -> None:
    runs = 0
    third = asyncio.Event()
    tasks: set[asyncio.Task[object] | None] = set()

    async def job() -> None:
        nonlocal runs
        runs += 1
        tasks.add(asyncio.current_task())
        if runs == 3:
            third.set()

    async with every(PERIOD, job, "counting"):
        assert runs == 0  # The first run waits a period: the app has only just started.
        async with asyncio.timeout(5):
            await third.wait()
    (task,) = tasks
    assert task is not None
    assert task.done()  # Cancelled and awaited with the block, not merely abandoned.


@pytest.mark.parametrize(
    ("error", "level", "traceback"),
    [
        (RuntimeError("a bug"), logging.ERROR, True),
        (PyMongoError("timed out"), logging.WARNING, False),  # The store is down: it happens.
    ],
)
async def test_a_failed_run_is_logged_and_the_next_goes_ahead(
    caplog: pytest.LogCaptureFixture, error: Exception, level: int, traceback: bool
) -> None:
    runs = 0
    recovered = asyncio.Event()

    async def job() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise error
        recovered.set()

    with caplog.at_level(logging.WARNING, logger="letschat.periodic"):
        async with every(PERIOD, job, "flaky"):
            async with asyncio.timeout(5):
                await recovered.wait()
    [record] = caplog.records
    assert record.getMessage().startswith("flaky failed")
    assert record.levelno == level
    assert (record.exc_info is not None) == traceback


async def test_a_run_in_progress_is_cancelled_and_awaited_at_the_end() -> None:
    started, finished = asyncio.Event(), asyncio.Event()

    async def slow() -> None:
        started.set()
        try:
            await asyncio.sleep(60)
        finally:
            finished.set()

    async with every(PERIOD, slow, "slow"):
        async with asyncio.timeout(5):
            await started.wait()
    assert finished.is_set()
