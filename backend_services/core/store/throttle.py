"""Login throttling, shared by every auth instance through the database."""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from backend_services.core.store.database import Database

# Concurrent first attempts for one key race to insert its window; the losers count on it.
_UPSERT_ATTEMPTS = 3


class LoginThrottle:
    """Counts login attempts per key (a username, or a client address) in a fixed window."""

    def __init__(self, database: Database, *, max_failures: int, window_seconds: int) -> None:
        self._failures = database.db["login_failures"]
        self._max_failures = max_failures
        self._window_seconds = window_seconds

    async def attempt(self, key: str, now: datetime) -> int | None:
        """Count an attempt for `key` before it is checked; seconds to wait if over the limit.

        Counting first, in one atomic `$inc`, is what stops concurrent guesses: a check made
        before any of them was recorded would let every one of them through.
        """
        window_end = now + timedelta(seconds=self._window_seconds)
        # A window that has expired (but not yet been swept by the TTL monitor) starts over.
        await self._failures.delete_one({"_id": key, "expires_at": {"$lte": now}})
        doc = None
        for _ in range(_UPSERT_ATTEMPTS):
            try:
                doc = await self._failures.find_one_and_update(
                    {"_id": key},
                    {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": window_end}},
                    upsert=True,
                    return_document=ReturnDocument.AFTER,
                )
            except DuplicateKeyError:
                continue
            break
        if doc is None:  # Some servers return no post-image for a racing upsert; read it.
            doc = await self._failures.find_one({"_id": key})
        if doc is None or doc["count"] <= self._max_failures:
            return None
        return max(1, int((doc["expires_at"] - now).total_seconds() + 0.999))

    async def reset(self, key: str) -> None:
        """A successful login: the key starts afresh."""
        await self._failures.delete_one({"_id": key})

    async def forgive(self, key: str) -> None:
        """A successful login: its attempt does not count against `key`, but the failures before
        it still do (for a client address, where one good login must not wipe a flood's count)."""
        await self._failures.update_one({"_id": key, "count": {"$gt": 0}}, {"$inc": {"count": -1}})
