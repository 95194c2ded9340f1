"""The MongoDB connection and the indexes every collection relies on."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import pymongo
from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError
from pymongo.monitoring import CommandListener, ServerHeartbeatListener

logger = logging.getLogger("letschat.store")
# A database container or a just-launched SecantusDB may take a while to accept connections.
STARTUP_WAIT_SECONDS = 60.0
# Every operation ends within this (pymongo's client-side timeout: selecting a server, writing,
# waiting for the reply), so a stalled database is answered `service_unavailable`, not a hang.
DEFAULT_TIMEOUT_MS = 5000
# How long closing the client may spend telling the server its sessions ended.
CLOSE_TIMEOUT_SECONDS = 0.5

# Two upserts of the same new document can race; the loser fails with a duplicate key once, and
# its retry finds the document.
UPSERT_ATTEMPTS = 3

Document = dict[str, Any]


# What `stored_now` says instead of the clock, within `writing_at`.
_written_at: ContextVar[datetime | None] = ContextVar("letschat_written_at", default=None)


def stored_now() -> datetime:
    """The current UTC time at the precision MongoDB stores (milliseconds), so what a write
    returns equals what a later read returns."""
    now = _written_at.get() or datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@contextmanager
def writing_at(moment: datetime) -> Iterator[None]:
    """Date what the store writes in this context (and the tasks it starts) `moment`, not now:
    for history written after the fact, such as the demo team's week (scripts/demo)."""
    if moment.tzinfo is None:
        raise ValueError("writing_at needs an aware datetime")
    token = _written_at.set(moment.astimezone(UTC))
    try:
        yield
    finally:
        _written_at.reset(token)


async def upsert(
    collection: AsyncCollection[Document],
    key: str,
    update: Document,
    *,
    projection: Document | None = None,
) -> Document:
    """Apply `update` to the document `_id == key`, creating it if needed; return it after."""
    for attempt in range(1, UPSERT_ATTEMPTS + 1):
        try:
            doc = await collection.find_one_and_update(
                {"_id": key},
                update,
                projection=projection,
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            if attempt == UPSERT_ATTEMPTS:
                raise
            continue
        if doc is not None:  # Always, for an upsert returning the document after.
            return doc
    raise RuntimeError(f"upsert of {key!r} returned nothing")


# SecantusDB answers an `$in` over a thousand ids in super-linear time; lookups in batches of this
# size stay near-linear (and cost MongoDB nothing worth measuring).
LOOKUP_BATCH = 50


async def find_by_ids(
    collection: AsyncCollection[Document],
    ids: Iterable[str],
    projection: Document | None = None,
) -> list[Document]:
    """The documents whose `_id` is among `ids` (in no particular order)."""
    unique = list(dict.fromkeys(ids))
    batches = [unique[i : i + LOOKUP_BATCH] for i in range(0, len(unique), LOOKUP_BATCH)]

    async def batch_of(keys: list[str]) -> list[Document]:
        return [doc async for doc in collection.find({"_id": {"$in": keys}}, projection)]

    found = await asyncio.gather(*(batch_of(keys) for keys in batches))
    return [doc for docs in found for doc in docs]


INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        IndexModel([("username", ASCENDING)], unique=True, name="username_unique"),
    ],
    "conversations": [
        IndexModel([("members", ASCENDING)], name="members"),
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
        # Finding a change whose entry was lost, and the replies that quote a deleted message:
        # partial, so the messages nobody changed or answered cost these indexes nothing (a
        # sparse compound index would hold every message: each has a conversation_id).
        IndexModel(
            [("conversation_id", ASCENDING), ("change", ASCENDING)],
            partialFilterExpression={"change": {"$exists": True}},
            name="by_change",
        ),
        IndexModel([("reply_to.message_id", ASCENDING)], sparse=True, name="by_reply_to"),
        # Search (store/search.py): a word, or a sender, and when, walked back in windows.
        IndexModel([("terms", ASCENDING), ("created_at", DESCENDING)], name="by_term"),
        IndexModel([("sender_id", ASCENDING), ("created_at", DESCENDING)], name="by_sender"),
    ],
    "changes": [
        IndexModel(
            [("conversation_id", ASCENDING), ("seq", ASCENDING)],
            unique=True,
            name="change_unique",
        ),
    ],
    "sessions": [
        IndexModel([("user_id", ASCENDING)], name="by_user"),
        IndexModel([("ended_at", ASCENDING)], name="by_end"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry"),
    ],
    "login_failures": [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry"),
    ],
    "quotas": [
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expiry"),
    ],
}


class Database:
    """Owns the client; `connect` is cheap (pymongo connects lazily), `close` must be awaited."""

    def __init__(
        self,
        url: str,
        name: str,
        *,
        timeout_ms: int = DEFAULT_TIMEOUT_MS,
        event_listeners: Sequence[CommandListener | ServerHeartbeatListener] = (),
    ) -> None:
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            url,
            tz_aware=True,
            timeoutMS=timeout_ms,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            appname="letschat",
            event_listeners=event_listeners,
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
        # Closing tells the server which sessions end, a courtesy (it expires them anyway): a
        # server already gone (stopped with the services, as Ctrl+C in scripts/run does) must
        # not hold the shutdown for the whole operation timeout.
        with pymongo.timeout(CLOSE_TIMEOUT_SECONDS):
            await self.client.close()
