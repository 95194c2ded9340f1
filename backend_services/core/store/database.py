"""The MongoDB connection and the indexes every collection relies on."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

logger = logging.getLogger("letschat.store")
# A database container or a just-launched SecantusDB may take a while to accept connections.
STARTUP_WAIT_SECONDS = 60.0

Document = dict[str, Any]


def stored_now() -> datetime:
    """The current UTC time at the precision MongoDB stores (milliseconds), so what a write
    returns equals what a later read returns."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        IndexModel([("username", ASCENDING)], unique=True, name="username_unique"),
    ],
    "conversations": [
        IndexModel([("members", ASCENDING), ("last_activity_at", DESCENDING)], name="by_member"),
        IndexModel([("is_public", ASCENDING), ("name_lower", ASCENDING)], name="public_by_name"),
    ],
    "messages": [
        IndexModel(
            [("conversation_id", ASCENDING), ("seq", ASCENDING)], unique=True, name="seq_unique"
        ),
        IndexModel(
            [
                ("conversation_id", ASCENDING),
                ("sender_id", ASCENDING),
                ("client_msg_id", ASCENDING),
            ],
            unique=True,
            name="client_msg_id_unique",
        ),
    ],
    "revoked_tokens": [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry"),
    ],
    "login_failures": [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry"),
    ],
}


class Database:
    """Owns the client; `connect` is cheap (pymongo connects lazily), `close` must be awaited."""

    def __init__(self, url: str, name: str, *, timeout_ms: int = 5000) -> None:
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            url,
            tz_aware=True,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            appname="letschat",
        )
        self.db: AsyncDatabase[Document] = self.client[name]

    async def prepare(self) -> None:
        """Wait for the server (it may still be starting), then create the indexes."""
        deadline = time.monotonic() + STARTUP_WAIT_SECONDS
        while True:
            try:
                await self.ping()
                break
            except PyMongoError:
                if time.monotonic() > deadline:
                    raise
                logger.info("waiting for MongoDB at startup")
                await asyncio.sleep(1)
        await self.ensure_indexes()

    async def ensure_indexes(self) -> None:
        """Create the indexes (idempotent); run at every service start."""
        for collection, indexes in INDEXES.items():
            await self.db[collection].create_indexes(indexes)

    async def ping(self) -> None:
        """Raise if the server cannot be reached."""
        await self.client.admin.command("ping")

    async def close(self) -> None:
        await self.client.close()
